//! The open device: its state and every command of the pattern document's use cases.

use leptos::prelude::*;
use switchboard_protocol::envelope::Config;
use switchboard_protocol::family::Family;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, DeviceId};

use super::family_groups::FamilyGroups;
use super::light::Light;
use super::log_viewer::LogViewer;
use super::sequence_stepper::SequenceStepper;
use super::telemetry_chart::TelemetryChart;
use super::text_command::TextCommand;
use crate::link::Link;

/// The one-press commands: (`data-action`, label, command).
const QUICK_COMMANDS: [(&str, &str, Command); 6] = [
    ("light-on", "Light on", Command::Light { on: true }),
    ("light-off", "Light off", Command::Light { on: false }),
    ("led-on", "LED on", Command::Led { on: true }),
    ("led-off", "LED off", Command::Led { on: false }),
    ("restart", "Restart", Command::Restart { delay_ms: 1000 }),
    ("get-state", "Get state", Command::GetState),
];

/// Details and commands of the selected device.
#[component]
pub fn DeviceDetail() -> impl IntoView {
    let link = expect_context::<Link>();
    move || {
        let id = link.store.selected.get()?;
        Some(detail(id))
    }
}

/// The details of one device (a plain function: one component per file).
fn detail(id: DeviceId) -> AnyView {
    let link = expect_context::<Link>();
    let Some(dev) = link.store.device(&id) else {
        return ().into_any();
    };
    let send = {
        let id = id.clone();
        move |c: Command| {
            link.send(Target::Device(id.clone()), &c);
        }
    };
    let on = Signal::derive(move || dev.with(|d| d.light()));
    let pending = Signal::derive(move || dev.with(|d| d.pending_light()));
    let interval = RwSignal::new(String::from("1000"));
    let lines = RwSignal::new(String::from("20"));
    let cfg_interval = RwSignal::new(String::new());
    let cfg_light = RwSignal::new(false);
    let cfg_label = RwSignal::new(String::new());
    let s = send.clone();
    let set_interval = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(ms) = interval.get_untracked().trim().parse::<u64>() {
            s(Command::SetTelemetryInterval { interval_ms: ms });
        }
    };
    let s = send.clone();
    let get_log = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = lines.get_untracked().trim().parse::<u32>().unwrap_or(20);
        s(Command::GetLog { lines: n });
    };
    let s = send.clone();
    let save_config = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let label = cfg_label.get_untracked();
        s(Command::SetConfig {
            config: Config {
                telemetry_interval_ms: cfg_interval.get_untracked().trim().parse().ok(),
                light_on_boot: Some(cfg_light.get_untracked()),
                label: (!label.trim().is_empty()).then(|| label.trim().to_owned()),
            },
        });
    };
    let quick = QUICK_COMMANDS.map(|(action, label, command)| {
        let s = send.clone();
        let name = command.name();
        view! {
            <Show when=move || dev.with(|d| d.offers(name))>
                {let (s, command) = (s.clone(), command.clone());
                 view! { <button data-action=action on:click=move |_| s(command.clone())>{label}</button> }}
            </Show>
        }
    });
    // Telemetry, logs, configuration, sequences and text are Switchboard's own.
    let own = move || dev.with(|d| d.offers("restart"));
    let state_line = move || {
        dev.with(|d| match (&d.state, d.light_confirmed) {
            (None, None) => "state not reported yet".to_owned(),
            (None, Some(on)) if d.family != Family::Switchboard => format!(
                "light {} (as the {} device reports it)",
                if on { "on" } else { "off" },
                d.family.label()
            ),
            (None, Some(on)) => format!(
                "light {} (confirmed by its answer; it reports no state)",
                if on { "on" } else { "off" }
            ),
            (Some(s), _) => format!(
                "light {} · LED {} · telemetry every {} ms · firmware {} · {} boots",
                if s.light { "on" } else { "off" },
                if s.led { "on" } else { "off" },
                s.telemetry_interval_ms,
                if s.firmware.is_empty() {
                    "?"
                } else {
                    &s.firmware
                },
                s.boots
            ),
        })
    };
    let pending_config = move || {
        dev.with(|d| {
            d.state
                .as_ref()
                .and_then(|s| s.pending_config.as_ref())
                .map(|c| serde_json::to_string(c).unwrap_or_default())
        })
    };
    let name = id.to_string();
    let grouped = id.clone();
    view! {
        <section class="detail" aria-label=format!("device {name}") data-detail=name.clone()>
            <header>
                <h2>{name.clone()}</h2>
                <span class="presence">{move || dev.with(|d| d.presence.label())}</span>
                <button class="close" on:click=move |_| link.select(None) aria-label="close details">"×"</button>
            </header>
            <div class="state">
                <Light on=on pending=pending />
                <span data-state>{state_line}</span>
            </div>
            <Show when=move || pending_config().is_some()>
                <p class="pending-config" data-pending-config>
                    "Saved config, pending until the next restart: " {pending_config}
                </p>
            </Show>
            <div class="actions">{quick}</div>
            <Show when=move || !own()>
                {let id = grouped.clone(); view! { <FamilyGroups id=id dev=dev /> }}
            </Show>
            <div class="own-commands" hidden=move || !own()>
            <form class="row" on:submit=set_interval>
                <label>"Telemetry every (ms)"
                    <input type="number" min="0" step="10" prop:value=interval
                        on:input=move |ev| interval.set(event_target_value(&ev)) />
                </label>
                <button type="submit" data-action="telemetry">"Set now"</button>
            </form>
            <TelemetryChart dev=dev />
            <form class="row" on:submit=get_log>
                <label>"Log lines"
                    <input type="number" min="1" max="200" prop:value=lines
                        on:input=move |ev| lines.set(event_target_value(&ev)) />
                </label>
                <button type="submit" data-action="get-log">"Get log"</button>
            </form>
            <LogViewer dev=dev />
            <form class="row config" on:submit=save_config>
                <label>"Telemetry after restart (ms)"
                    <input type="number" min="0" prop:value=cfg_interval
                        on:input=move |ev| cfg_interval.set(event_target_value(&ev)) />
                </label>
                <label class="inline">
                    <input type="checkbox" prop:checked=cfg_light
                        on:change=move |ev| cfg_light.set(event_target_checked(&ev)) />
                    "Light on at boot"
                </label>
                <label>"Label"
                    <input type="text" prop:value=cfg_label on:input=move |ev| cfg_label.set(event_target_value(&ev)) />
                </label>
                <button type="submit" data-action="set-config">"Save config"</button>
            </form>
            <SequenceStepper id=id.clone() dev=dev />
            <TextCommand id=id.clone() />
            </div>
            <ul class="pending-list" aria-label="commands in flight">
                <For each=move || dev.with(|d| d.pending.clone()) key=|p| (p.tid, p.phase.clone()) let:p>
                    <li>{format!("{} · {}", p.cmd, p.phase)}</li>
                </For>
            </ul>
        </section>
    }
    .into_any()
}
