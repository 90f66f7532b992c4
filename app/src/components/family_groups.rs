//! The groups a device of another family is in, and the operator's choice of them: a group may
//! mix families, and a command to it reaches every member, each confirmed on its own.

use leptos::prelude::*;
use switchboard_protocol::DeviceId;

use crate::device_view::DeviceView;
use crate::link::Link;

/// The groups line and the form that sets the operator's groups.
#[component]
pub fn FamilyGroups(id: DeviceId, dev: ReadSignal<DeviceView>) -> impl IntoView {
    let link = expect_context::<Link>();
    let names = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(link.assign_groups(&id, &names.get_untracked()).err());
    };
    let current = move || {
        dev.with(|d| {
            if d.groups.is_empty() {
                "in no group".to_owned()
            } else {
                let names: Vec<&str> = d.groups.iter().map(|g| g.as_str()).collect();
                format!("in {}", names.join(", "))
            }
        })
    };
    view! {
        <form class="row groups" on:submit=save aria-label="groups">
            <span data-groups>{current}</span>
            <label>"Put in groups"
                <input type="text" name="groups" placeholder="kitchen, upstairs" prop:value=names
                    on:input=move |ev| names.set(event_target_value(&ev)) />
            </label>
            <button type="submit" data-action="set-groups">"Set groups"</button>
            <Show when=move || error.get().is_some()>
                <span class="error" role="alert">{move || error.get()}</span>
            </Show>
        </form>
    }
}
