//! The broker settings: URL, client id, credentials, protocol version.

use leptos::prelude::*;

use crate::link::Link;
use crate::settings::Settings;
use crate::view::Conn;

/// The connect form.
#[component]
pub fn ConnectForm(initial: Settings) -> impl IntoView {
    let link = expect_context::<Link>();
    let url = RwSignal::new(initial.url.clone());
    let client_id = RwSignal::new(initial.client_id.clone());
    let username = RwSignal::new(initial.username.clone());
    let password = RwSignal::new(String::new());
    let mqtt311 = RwSignal::new(initial.mqtt311);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        link.connect(Settings {
            url: url.get_untracked(),
            client_id: client_id.get_untracked(),
            username: username.get_untracked(),
            password: password.get_untracked(),
            mqtt311: mqtt311.get_untracked(),
        });
    };
    let online = move || !matches!(link.store.conn.get(), Conn::Offline | Conn::TakenOver);
    view! {
        <details class="connect" open=move || !online()>
            <summary>"Broker"</summary>
            <form on:submit=submit>
                <label>"WebSocket URL"
                    <input type="text" name="url" required placeholder="ws://127.0.0.1:8083/mqtt"
                        prop:value=url on:input=move |ev| url.set(event_target_value(&ev)) />
                </label>
                <label>"Client id"
                    <input type="text" name="client_id" placeholder="one per tab"
                        prop:value=client_id on:input=move |ev| client_id.set(event_target_value(&ev)) />
                </label>
                <label>"User name"
                    <input type="text" name="username" autocomplete="username"
                        prop:value=username on:input=move |ev| username.set(event_target_value(&ev)) />
                </label>
                <label>"Password"
                    <input type="password" name="password" autocomplete="current-password"
                        prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
                </label>
                <label class="inline">
                    <input type="checkbox" name="mqtt311" prop:checked=mqtt311
                        on:change=move |ev| mqtt311.set(event_target_checked(&ev)) />
                    "MQTT 3.1.1 only"
                </label>
                <button type="submit">"Connect"</button>
                <button type="button" on:click=move |_| link.disconnect()>"Disconnect"</button>
            </form>
        </details>
    }
}
