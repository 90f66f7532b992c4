//! One command to a whole group, through the group's shared topic.

use leptos::prelude::*;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, GroupId};

use crate::link::Link;

/// Commands offered for a group.
const CHOICES: [(&str, &str); 5] = [
    ("light-on", "light on"),
    ("light-off", "light off"),
    ("get-state", "get state"),
    ("led-on", "LED on"),
    ("restart", "restart"),
];

fn command_of(choice: &str) -> Command {
    match choice {
        "light-on" => Command::Light { on: true },
        "light-off" => Command::Light { on: false },
        "led-on" => Command::Led { on: true },
        "restart" => Command::Restart { delay_ms: 1000 },
        _ => Command::GetState,
    }
}

/// Group, command, send.
#[component]
pub fn GroupCommand() -> impl IntoView {
    let link = expect_context::<Link>();
    let group = RwSignal::new(String::new());
    let choice = RwSignal::new(String::from("light-on"));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let g = group.get_untracked();
        let g = if g.is_empty() {
            link.store
                .groups
                .with_untracked(|gs| gs.keys().next().map(|g| g.to_string()))
        } else {
            Some(g)
        };
        if let Some(g) = g.and_then(|g| GroupId::new(g).ok()) {
            link.send(Target::Group(g), &command_of(&choice.get_untracked()));
        }
    };
    let groups = move || -> Vec<(GroupId, usize)> { link.store.groups.get().into_iter().collect() };
    view! {
        <form class="group-cmd" on:submit=submit aria-label="command a group">
            <label>"Group"
                <select name="group" on:change=move |ev| group.set(event_target_value(&ev))>
                    <For each=groups
                        key=|(g, n)| (g.clone(), *n) let:entry>
                        <option value=entry.0.to_string() selected=move || group.get() == entry.0.as_str()>
                            {format!("{} ({} devices)", entry.0, entry.1)}
                        </option>
                    </For>
                </select>
            </label>
            <label>"Command"
                <select name="command" on:change=move |ev| choice.set(event_target_value(&ev))>
                    {CHOICES.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                </select>
            </label>
            <button type="submit" data-action="fanout"
                disabled=move || link.store.groups.with(|g| g.is_empty())>"Send to group"</button>
        </form>
    }
}
