//! One device in the grid: its light, presence, groups, and the light button.

use leptos::prelude::*;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, DeviceId};

use super::light::Light;
use crate::device_view::Presence;
use crate::link::Link;

/// A device card.
#[component]
pub fn DeviceCard(id: DeviceId) -> impl IntoView {
    let link = expect_context::<Link>();
    let Some(dev) = link.store.device(&id) else {
        return ().into_any();
    };
    let on = Signal::derive(move || dev.with(|d| d.light()));
    let pending = Signal::derive(move || dev.with(|d| d.pending_light()));
    let selected = {
        let id = id.clone();
        move || link.store.selected.with(|s| s.as_ref() == Some(&id))
    };
    let toggle = {
        let id = id.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.stop_propagation();
            let want = !dev.with_untracked(|d| d.pending_light().unwrap_or(d.light()));
            link.send(Target::Device(id.clone()), &Command::Light { on: want });
        }
    };
    let open = {
        let id = id.clone();
        move |_| link.select(Some(id.clone()))
    };
    let name = id.to_string();
    view! {
        <article class="card" class:selected=selected data-device=name.clone()
            data-light=move || if on.get() { "on" } else { "off" }
            data-pending=move || pending.get().is_some().to_string()
            data-presence=move || dev.with(|d| d.presence.label())>
            <button class="card-open" on:click=open aria-label=format!("open {name}")>
                <span class="name">{name.clone()}</span>
                <span class=move || format!("presence {}", dev.with(|d| match d.presence {
                    Presence::Online => "online",
                    Presence::Offline => "offline",
                    Presence::Unknown => "unknown",
                }))>{move || dev.with(|d| d.presence.label())}</span>
            </button>
            <div class="card-body">
                <Light on=on pending=pending />
                <button class="light-toggle" data-action="light" on:click=toggle
                    aria-label=move || format!("turn {} the light of {}",
                        if pending.get().unwrap_or(on.get()) { "off" } else { "on" }, id)>
                    {move || match pending.get() {
                        Some(true) => "turning on…",
                        Some(false) => "turning off…",
                        None if on.get() => "Turn off",
                        None => "Turn on",
                    }}
                </button>
            </div>
            <div class="groups">
                {move || dev.with(|d| d.groups.iter().map(|g| view! { <span class="chip">{g.to_string()}</span> }).collect_view())}
            </div>
            <div class="outcome" class:bad=move || dev.with(|d| d.last_outcome.as_ref().is_some_and(|(_, ok)| !ok))>
                {move || dev.with(|d| d.last_outcome.as_ref().map(|(t, _)| t.clone()).unwrap_or_default())}
            </div>
        </article>
    }
    .into_any()
}
