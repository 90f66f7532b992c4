//! The fleet: a filterable grid of device cards, drawn only where it is visible so that 10,000
//! devices scroll smoothly.

use leptos::html::Div;
use leptos::prelude::*;

use super::device_card::DeviceCard;
use crate::link::Link;

/// Height of one grid row (a card and its gap), in pixels.
const ROW: f64 = 132.0;
/// Width of one grid column, in pixels.
const COL: f64 = 196.0;

/// The device grid with its filter.
#[component]
pub fn FleetGrid() -> impl IntoView {
    let link = expect_context::<Link>();
    let store = link.store;
    let filter = RwSignal::new(String::new());
    let scroll_top = RwSignal::new(0.0_f64);
    let size = RwSignal::new((900.0_f64, 600.0_f64));
    let viewport = NodeRef::<Div>::new();

    // Ids passing the filter. Reads each device's signal, so a group change re-filters.
    let visible_ids = Memo::new(move |_| {
        let f = filter.get();
        store.device_ids.with(|ids| {
            ids.iter()
                .filter(|id| {
                    f.trim().is_empty()
                        || store.device(id).is_some_and(|d| d.with(|d| d.matches(&f)))
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let measure = move || {
        if let Some(el) = viewport.get_untracked() {
            size.set((f64::from(el.client_width()), f64::from(el.client_height())));
            scroll_top.set(f64::from(el.scroll_top()));
        }
    };
    Effect::new(move |_| {
        // Measure once mounted and whenever the window resizes.
        measure();
    });
    let on_resize = leptos::prelude::window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || on_resize.remove());

    let columns = move || ((size.get().0 / COL).floor() as usize).max(1);
    let window = move || {
        let cols = columns();
        let total = visible_ids.with(Vec::len);
        let rows = total.div_ceil(cols);
        let first_row = ((scroll_top.get() / ROW).floor() as usize).saturating_sub(2);
        let shown_rows = (size.get().1 / ROW).ceil() as usize + 4;
        let start = (first_row * cols).min(total);
        let end = ((first_row + shown_rows) * cols).min(total);
        (start, end, rows, first_row, cols)
    };
    let slice = move || {
        let (start, end, ..) = window();
        visible_ids.with(|v| v[start..end].to_vec())
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
                    let shown = visible_ids.with(Vec::len);
                    if shown == all { format!("{all} devices") } else { format!("{shown} of {all} devices") }
                }}
            </span>
        </div>
        <div class="grid-viewport" node_ref=viewport
            on:scroll=move |_| {
                if let Some(el) = viewport.get_untracked() {
                    scroll_top.set(f64::from(el.scroll_top()));
                }
            }>
            <Show when=move || store.device_ids.with(Vec::is_empty)>
                <p class="empty">"No devices yet. Devices appear here when they announce themselves on status/<device>."</p>
            </Show>
            <div class="grid-spacer" style:height=move || format!("{}px", window().2 as f64 * ROW)>
                <div class="grid" style:transform=move || format!("translateY({}px)", window().3 as f64 * ROW)
                    style:grid-template-columns=move || format!("repeat({}, 1fr)", window().4)>
                    <For each=slice key=|id| id.clone() let:id>
                        <DeviceCard id=id />
                    </For>
                </div>
            </div>
        </div>
    }
}
