//! Switchboard's browser panel. Components live here; `main.rs` only mounts [`App`].

use leptos::prelude::*;

/// The whole panel.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <main>
            <h1>"Switchboard"</h1>
            <p>"Command and control for MQTT device fleets. The panel is on its way."</p>
        </main>
    }
}
