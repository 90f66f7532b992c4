//! Add a device by id: for devices that do not announce themselves (no retained status).

use leptos::prelude::*;
use switchboard_protocol::DeviceId;

use crate::link::Link;

/// The "add device" form.
#[component]
pub fn AddDevice() -> impl IntoView {
    let link = expect_context::<Link>();
    let id = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match DeviceId::new(id.get_untracked().trim()) {
            Ok(d) => {
                error.set(None);
                link.add_device(d.clone());
                link.select(Some(d));
                id.set(String::new());
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };
    view! {
        <form class="add-device" on:submit=submit>
            <label>"Add device by id"
                <input type="text" name="device_id" placeholder="device1" prop:value=id
                    on:input=move |ev| id.set(event_target_value(&ev)) />
            </label>
            <button type="submit" data-action="add-device">"Add"</button>
            {move || error.get().map(|e| view! { <span class="error" role="alert">{e}</span> })}
        </form>
    }
}
