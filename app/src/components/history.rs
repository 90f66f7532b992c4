//! Every command sent from this panel: searchable, exportable as JSON and CSV.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::history_row::HistoryRow;
use crate::link::Link;

/// How many rows are drawn (newest first); the export has them all.
const SHOWN: usize = 300;

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

/// The command history.
#[component]
pub fn History() -> impl IntoView {
    let link = expect_context::<Link>();
    let store = link.store;
    let query = RwSignal::new(String::new());
    let rows = move || {
        let q = query.get();
        store.history.with(|h| {
            h.iter()
                .rev()
                .filter(|tid| {
                    q.trim().is_empty()
                        || store
                            .command(tid)
                            .is_some_and(|c| c.with(|c| c.matches(&q)))
                })
                .take(SHOWN)
                .copied()
                .collect::<Vec<_>>()
        })
    };
    view! {
        <section class="history" aria-label="command history">
            <div class="history-head">
                <h2>"Commands"</h2>
                <input type="search" placeholder="search commands" aria-label="search commands"
                    prop:value=query on:input=move |ev| query.set(event_target_value(&ev)) />
                <button on:click=move |_| download("switchboard-commands.json", "application/json", &link.export_json())>"Export JSON"</button>
                <button on:click=move |_| download("switchboard-commands.csv", "text/csv", &link.export_csv())>"Export CSV"</button>
            </div>
            <table>
                <thead><tr><th>"Sent"</th><th>"To"</th><th>"Command"</th><th>"Status"</th><th>"Tries"</th><th>"Round trip"</th><th></th></tr></thead>
                <tbody>
                    <For each=rows key=|tid| *tid let:tid>
                        <HistoryRow tid=tid />
                    </For>
                </tbody>
            </table>
        </section>
    }
}
