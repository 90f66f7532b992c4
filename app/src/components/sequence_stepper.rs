//! An ordered sequence (firmware: stage -> verify -> activate) as a stepper: where the device is,
//! and the rejection it returns for a step out of order.

use leptos::prelude::*;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, DeviceId};

use crate::device_view::DeviceView;
use crate::link::Link;

const STEPS: [&str; 3] = ["firmware_stage", "firmware_verify", "firmware_activate"];

/// The firmware update stepper.
#[component]
pub fn SequenceStepper(id: DeviceId, dev: ReadSignal<DeviceView>) -> impl IntoView {
    let link = expect_context::<Link>();
    let version = RwSignal::new(String::from("2.0.0"));
    let position = move || {
        dev.with(|d| {
            d.state
                .as_ref()
                .and_then(|s| s.sequences.get("firmware").cloned())
        })
    };
    let last = move || {
        dev.with(|d| {
            d.last_outcome
                .as_ref()
                .filter(|(t, _)| t.starts_with("firmware_"))
                .cloned()
        })
    };
    let step_class = move |step: &'static str| {
        move || {
            let p = position();
            let done = p.as_ref().and_then(|p| p.done.clone());
            let next = p.as_ref().and_then(|p| p.next.clone());
            let idx = STEPS.iter().position(|s| *s == step).unwrap_or(0);
            let done_idx = done
                .as_deref()
                .and_then(|d| STEPS.iter().position(|s| *s == d));
            if done_idx.is_some_and(|d| idx <= d) {
                "step done"
            } else if next.as_deref() == Some(step) || (next.is_none() && idx == 0) {
                "step next"
            } else {
                "step"
            }
        }
    };
    let send = move |c: Command| {
        link.send(Target::Device(id.clone()), &c);
    };
    let (a, b, c) = (send.clone(), send.clone(), send);
    view! {
        <fieldset class="stepper" aria-label="firmware update sequence">
            <legend>"Firmware update (in order)"</legend>
            <ol>
                <li class=step_class("firmware_stage")>
                    <input type="text" aria-label="firmware version" prop:value=version
                        on:input=move |ev| version.set(event_target_value(&ev)) />
                    <button data-action="firmware-stage"
                        on:click=move |_| a(Command::FirmwareStage { version: version.get_untracked() })>"1. Stage"</button>
                </li>
                <li class=step_class("firmware_verify")>
                    <button data-action="firmware-verify" on:click=move |_| b(Command::FirmwareVerify)>"2. Verify"</button>
                </li>
                <li class=step_class("firmware_activate")>
                    <button data-action="firmware-activate" on:click=move |_| c(Command::FirmwareActivate)>"3. Activate"</button>
                </li>
            </ol>
            <p class="seq-where">{move || match position() {
                Some(p) => format!("done: {} · next: {}",
                    p.done.unwrap_or_else(|| "nothing".into()),
                    p.next.unwrap_or_else(|| "firmware_stage".into())),
                None => "not started".to_owned(),
            }}</p>
            {move || last().map(|(t, ok)| view! { <p class="seq-last" class:bad=!ok data-seq-last>{t}</p> })}
        </fieldset>
    }
}
