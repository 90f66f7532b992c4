//! Plain-text commands, the pattern document's form (`light: on`), for devices that speak no JSON.

use leptos::prelude::*;
use switchboard_protocol::DeviceId;

use crate::link::Link;

/// The document's example commands, offered as quick buttons.
pub const EXAMPLES: [&str; 3] = ["light: on", "light: off", "restart"];

/// Free text and quick buttons; the answer is matched to the device's oldest outstanding text
/// command, and never retried automatically.
#[component]
pub fn TextCommand(id: DeviceId) -> impl IntoView {
    let link = expect_context::<Link>();
    let text = RwSignal::new(String::new());
    let id2 = id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = text.get_untracked();
        if !t.trim().is_empty() {
            link.send_text(id2.clone(), t.trim());
        }
    };
    view! {
        <form class="row text-cmd" on:submit=submit>
            <label>"Text command"
                <input type="text" placeholder="light: on" prop:value=text
                    on:input=move |ev| text.set(event_target_value(&ev)) />
            </label>
            <button type="submit" data-action="send-text">"Send text"</button>
            {EXAMPLES.iter().map(|ex| {
                let id = id.clone();
                view! {
                    <button type="button" class="quick" data-text=*ex
                        on:click=move |_| { link.send_text(id.clone(), ex); }>{*ex}</button>
                }
            }).collect_view()}
        </form>
    }
}
