//! Add a device by id: for devices that do not announce themselves (no retained status), and for
//! devices of another family known by their own name (a Tasmota topic, a Shelly prefix, a
//! Zigbee2MQTT friendly name, an ESPHome `node.switch`).

use leptos::prelude::*;
use switchboard_protocol::family::Family;
use switchboard_protocol::DeviceId;

use crate::link::Link;

/// The families a device can be added by name as, with their labels.
const FAMILIES: [Family; 5] = [
    Family::Switchboard,
    Family::Tasmota,
    Family::Shelly,
    Family::Zigbee2mqtt,
    Family::Esphome,
];

/// The "add device" form.
#[component]
pub fn AddDevice() -> impl IntoView {
    let link = expect_context::<Link>();
    let id = RwSignal::new(String::new());
    let family = RwSignal::new(Family::Switchboard);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = id.get_untracked();
        let added = match family.get_untracked() {
            Family::Switchboard => DeviceId::new(name.trim())
                .inspect(|d| link.add_device(d.clone()))
                .map_err(|e| e.to_string()),
            other => link.add_family_device(other, &name),
        };
        match added {
            Ok(d) => {
                error.set(None);
                link.select(Some(d));
                id.set(String::new());
            }
            Err(e) => error.set(Some(e)),
        }
    };
    view! {
        <form class="add-device" on:submit=submit>
            <label>"Add device by id"
                <input type="text" name="device_id" placeholder="device1" prop:value=id
                    on:input=move |ev| id.set(event_target_value(&ev)) />
            </label>
            <label>"speaking"
                <select name="family" on:change=move |ev| {
                    if let Ok(f) = event_target_value(&ev).parse() {
                        family.set(f);
                    }
                }>
                    {FAMILIES.iter().map(|f| view! {
                        <option value=f.name() selected=move || family.get() == *f>{f.label()}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" data-action="add-device">"Add"</button>
            {move || error.get().map(|e| view! { <span class="error" role="alert">{e}</span> })}
        </form>
    }
}
