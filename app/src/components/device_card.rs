//! One device in the grid: its light, presence, groups, and the light button.
//!
//! Each part of the card reads its own memo of the device's view, so an update (a command moving
//! from `sent` to `delivered`, say) redraws only the parts whose value changed.

use leptos::prelude::*;
use switchboard_protocol::family::Family;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, DeviceId};

use super::light::Light;
use crate::clock::Clock;
use crate::device_view::Presence;
use crate::link::Link;

/// A device card.
#[component]
pub fn DeviceCard(id: DeviceId) -> impl IntoView {
    let link = expect_context::<Link>();
    let Some(dev) = link.store.device(&id) else {
        return ().into_any();
    };
    let on = Memo::new(move |_| dev.with(|d| d.light()));
    let pending = Memo::new(move |_| dev.with(|d| d.pending_light()));
    let presence = Memo::new(move |_| dev.with(|d| d.presence));
    let groups = Memo::new(move |_| dev.with(|d| d.groups.clone()));
    let outcome = Memo::new(move |_| dev.with(|d| d.last_outcome.clone()));
    let family = Memo::new(move |_| dev.with(|d| d.family));
    let unconfirmable = Memo::new(move |_| dev.with(|d| d.unconfirmable.clone()));
    let evidence = Memo::new(move |_| dev.with(|d| d.evidence));
    // The app provides a ticking clock; a card mounted on its own shows evidence without its age.
    let clock = use_context::<Clock>();
    let selected = {
        let id = id.clone();
        Memo::new(move |_| link.store.selected.with(|s| s.as_ref() == Some(&id)))
    };
    let toggle = {
        let id = id.clone();
        move |ev: leptos::ev::MouseEvent| {
            ev.stop_propagation();
            let want = !pending.get_untracked().unwrap_or(on.get_untracked());
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
            data-pending=move || if pending.get().is_some() { "true" } else { "false" }
            data-presence=move || presence.get().label()
            data-family=move || family.get().name()
            data-confirmable=move || if unconfirmable.with(Option::is_none) { "true" } else { "false" }>
            <button class="card-open" on:click=open aria-label=format!("open {name}")>
                <span class="name">{name.clone()}</span>
                <span class=move || match presence.get() {
                    Presence::Online => "presence online",
                    Presence::Offline => "presence offline",
                    Presence::Unknown => "presence unknown",
                }>
                    {move || presence.get().label()}
                    {move || evidence.get().map(|e| view! {
                        <span class="evidence">{move || match clock {
                            Some(c) => format!(" · {} {} ago", e.what, age(c.0.get().saturating_since(e.at))),
                            None => format!(" · {}", e.what),
                        }}</span>
                    })}
                </span>
                {move || (family.get() != Family::Switchboard).then(|| view! {
                    <span class="chip family">{family.get().label()}</span>
                })}
            </button>
            {move || unconfirmable.get().map(|why| view! {
                <div class="unconfirmable" role="note">{format!("unconfirmable: {why}")}</div>
            })}
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
                {move || groups.with(|g| g.iter().map(|g| view! { <span class="chip">{g.to_string()}</span> }).collect_view())}
            </div>
            <div class="outcome" class:bad=move || outcome.with(|o| o.as_ref().is_some_and(|(_, ok)| !ok))>
                {move || outcome.with(|o| o.as_ref().map(|(t, _)| t.clone()).unwrap_or_default())}
            </div>
        </article>
    }
    .into_any()
}

/// How long ago, for a person: `4 s`, `3 min`, `2 h`.
fn age(d: core::time::Duration) -> String {
    match d.as_secs() {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}
