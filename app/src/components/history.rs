//! Every command sent from this panel: searchable, exportable as JSON and CSV.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::history_row::HistoryRow;
use crate::link::Link;

fn download(name: &str, mime: &str, body: &str) {
    let parts = js_sys::Array::of1(&body.into());
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("a").ok())
        .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Height of one history row, in pixels (the stylesheet gives rows this height).
const ROW: usize = 34;
/// Rows drawn beyond the visible ones, above and below.
const SPARE: usize = 6;

/// The command history, newest first. Only the rows in view are drawn, so a press or an answer
/// costs the same with 10 or 100,000 commands kept.
#[component]
pub fn History() -> impl IntoView {
    let link = expect_context::<Link>();
    let store = link.store;
    let query = RwSignal::new(String::new());
    let scroll_top = RwSignal::new(0_usize);
    let height = RwSignal::new(420_usize);
    let viewport = NodeRef::<leptos::html::Div>::new();
    // Only a search walks the history; without one, rows are found by position.
    let found = Memo::new(move |_| {
        let q = query.get();
        if q.trim().is_empty() {
            return None;
        }
        Some(store.history.with(|h| {
            h.iter()
                .rev()
                .filter(|tid| {
                    store
                        .command(tid)
                        .is_some_and(|c| c.with(|c| c.matches(&q)))
                })
                .copied()
                .collect::<Vec<_>>()
        }))
    });
    let total = move || match found.with(|f| f.as_ref().map(Vec::len)) {
        Some(n) => n,
        None => store.history.with(|h| h.len()),
    };
    let window = move || {
        let total = total();
        let first = (scroll_top.get() / ROW).saturating_sub(SPARE);
        let shown = height.get().div_ceil(ROW) + 2 * SPARE;
        let start = first.min(total);
        let end = (first + shown).min(total);
        (start, end, total)
    };
    let rows = move || {
        let (start, end, _) = window();
        found.with(|f| match f {
            Some(v) => v[start..end].to_vec(),
            None => store.history.with(|h| {
                (start..end)
                    .filter_map(|i| h.get(h.len() - 1 - i).copied())
                    .collect::<Vec<_>>()
            }),
        })
    };
    let measure = move || {
        if let Some(el) = viewport.get_untracked() {
            height.set(usize::try_from(el.client_height()).unwrap_or(0).max(ROW));
            scroll_top.set(usize::try_from(el.scroll_top()).unwrap_or(0));
        }
    };
    Effect::new(move |_| measure());
    view! {
        <section class="history" aria-label="command history">
            <div class="history-head">
                <h2>"Commands"</h2>
                <input type="search" placeholder="search commands" aria-label="search commands"
                    prop:value=query on:input=move |ev| query.set(event_target_value(&ev)) />
                <button on:click=move |_| download("switchboard-commands.json", "application/json", &link.export_json())>"Export JSON"</button>
                <button on:click=move |_| download("switchboard-commands.csv", "text/csv", &link.export_csv())>"Export CSV"</button>
                <span class="kept" data-forgotten=move || store.forgotten.get()>
                    {move || match store.forgotten.get() {
                        0 => String::new(),
                        n => format!("{n} older finished commands dropped (the export has what is kept)"),
                    }}
                </span>
            </div>
            <div class="history-viewport" node_ref=viewport
                on:scroll=move |_| {
                    if let Some(el) = viewport.get_untracked() {
                        scroll_top.set(usize::try_from(el.scroll_top()).unwrap_or(0));
                    }
                }>
                <table>
                    <thead><tr><th>"Sent"</th><th>"To"</th><th>"Command"</th><th>"Status"</th><th>"Tries"</th><th>"Round trip"</th><th></th></tr></thead>
                    <tbody>
                        <tr class="spacer" style:height=move || format!("{}px", window().0 * ROW)></tr>
                        <For each=rows key=|tid| *tid let:tid>
                            <HistoryRow tid=tid />
                        </For>
                        <tr class="spacer" style:height=move || {
                            let (_, end, total) = window();
                            format!("{}px", (total - end) * ROW)
                        }></tr>
                    </tbody>
                </table>
            </div>
        </section>
    }
}
