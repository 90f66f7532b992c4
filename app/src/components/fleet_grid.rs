//! The fleet: a filterable grid of device cards, drawn only where it is visible so that 10,000
//! devices scroll smoothly.

use leptos::html::Div;
use leptos::prelude::*;

use super::device_card::DeviceCard;
use crate::link::Link;

/// Height of one grid row (a card and its gap), in pixels.
const ROW: usize = 132;
/// Width of one grid column, in pixels.
const COL: usize = 196;

/// The device grid with its filter.
#[component]
pub fn FleetGrid() -> impl IntoView {
    let link = expect_context::<Link>();
    let store = link.store;
    let filter = RwSignal::new(String::new());
    let scroll_top = RwSignal::new(0_usize);
    let size = RwSignal::new((900_usize, 600_usize));
    let viewport = NodeRef::<Div>::new();

    // With a filter, the ids passing it (each device's signal is read, so a group change
    // re-filters); without one, the list itself is sliced and nothing is copied.
    let filtered = Memo::new(move |_| {
        let f = filter.get();
        if f.trim().is_empty() {
            return None;
        }
        Some(store.device_ids.with(|ids| {
            ids.iter()
                .filter(|id| store.device(id).is_some_and(|d| d.with(|d| d.matches(&f))))
                .cloned()
                .collect::<Vec<_>>()
        }))
    });
    let shown_len = move || match filtered.with(|f| f.as_ref().map(Vec::len)) {
        Some(n) => n,
        None => store.device_ids.with(Vec::len),
    };
    let measure = move || {
        if let Some(el) = viewport.get_untracked() {
            size.set((px(el.client_width()), px(el.client_height())));
            scroll_top.set(px(el.scroll_top()));
        }
    };
    Effect::new(move |_| {
        // Measure once mounted and whenever the window resizes.
        measure();
    });
    let on_resize = leptos::prelude::window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || on_resize.remove());

    let columns = move || (size.get().0 / COL).max(1);
    let window = move || {
        let cols = columns();
        let total = shown_len();
        let rows = total.div_ceil(cols);
        let first_row = (scroll_top.get() / ROW).saturating_sub(2);
        let shown_rows = size.get().1.div_ceil(ROW) + 4;
        let start = (first_row * cols).min(total);
        let end = ((first_row + shown_rows) * cols).min(total);
        (start, end, rows, first_row, cols)
    };
    let slice = move || {
        let (start, end, ..) = window();
        filtered.with(|f| match f {
            Some(v) => v[start..end].to_vec(),
            None => store.device_ids.with(|v| v[start..end].to_vec()),
        })
    };
    view! {
        <div class="fleet-head">
            <label class="filter">"Filter"
                <input type="search" placeholder="name or group" prop:value=filter
                    on:input=move |ev| filter.set(event_target_value(&ev)) />
            </label>
            <span class="count" data-count=move || store.device_ids.with(Vec::len)>
                {move || {
                    let all = store.device_ids.with(Vec::len);
                    let shown = shown_len();
                    if shown == all { format!("{all} devices") } else { format!("{shown} of {all} devices") }
                }}
            </span>
        </div>
        <div class="grid-viewport" node_ref=viewport
            on:scroll=move |_| {
                if let Some(el) = viewport.get_untracked() {
                    scroll_top.set(px(el.scroll_top()));
                }
            }>
            <Show when=move || store.device_ids.with(Vec::is_empty)>
                <p class="empty">"No devices yet. Devices appear here when they announce themselves on status/<device>."</p>
            </Show>
            <div class="grid-spacer" style:height=move || format!("{}px", window().2 * ROW)>
                <div class="grid" style:transform=move || format!("translateY({}px)", window().3 * ROW)
                    style:grid-template-columns=move || format!("repeat({}, 1fr)", window().4)>
                    <For each=slice key=|id| id.clone() let:id>
                        <DeviceCard id=id />
                    </For>
                </div>
            </div>
        </div>
    }
}

/// A length the DOM gives in pixels, as a count (negative ones are none).
fn px(v: i32) -> usize {
    usize::try_from(v).unwrap_or(0)
}
