//! The device's latest log, as published on its log topic after `get_log`.

use leptos::prelude::*;

use crate::device_view::DeviceView;

/// The log lines, newest last.
#[component]
pub fn LogViewer(dev: ReadSignal<DeviceView>) -> impl IntoView {
    move || {
        dev.with(|d| {
            d.log.as_ref().map(|lines| {
                let text = lines.join("\n");
                view! {
                    <pre class="log" data-log-lines=lines.len() aria-label="device log">{text}</pre>
                }
            })
        })
    }
}
