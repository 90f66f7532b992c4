//! A light drawn as a light: lit only when the device confirmed it, ringed while a command is
//! pending.

use leptos::prelude::*;

/// A bulb. `on` is the confirmed state; `pending` the state a pending command asks for.
#[component]
pub fn Light(
    #[prop(into)] on: Signal<bool>,
    #[prop(into)] pending: Signal<Option<bool>>,
) -> impl IntoView {
    let label = move || match (on.get(), pending.get()) {
        (_, Some(true)) => "light: turning on, waiting for the device",
        (_, Some(false)) => "light: turning off, waiting for the device",
        (true, None) => "light: on",
        (false, None) => "light: off",
    };
    view! {
        <svg class="light" class:on=on class:pending=move || pending.get().is_some()
            viewBox="0 0 24 24" width="32" height="32" role="img" aria-label=label>
            <circle class="glow" cx="12" cy="10" r="9" />
            <circle class="bulb" cx="12" cy="10" r="6" />
            <rect class="base" x="9" y="17" width="6" height="4" rx="1" />
        </svg>
    }
}
