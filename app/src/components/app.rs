//! The whole panel: creates the store and the link, and lays out the parts.

use leptos::prelude::*;
use switchboard_protocol::DeviceId;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use super::add_device::AddDevice;
use super::connect_form::ConnectForm;
use super::connection_badge::ConnectionBadge;
use super::device_detail::DeviceDetail;
use super::fanout_matrix::FanoutMatrix;
use super::fleet_grid::FleetGrid;
use super::group_command::GroupCommand;
use super::history::History;
use super::notices::Notices;
use crate::clock::Clock;
use crate::link::Link;
use crate::settings::Settings;

/// The whole panel.
#[component]
pub fn App() -> impl IntoView {
    let link = Link::new();
    provide_context(link);
    provide_context(Clock::start());

    // Save outstanding commands when the page goes away (reload, close, navigation).
    let on_hide = Closure::<dyn FnMut()>::new(move || link.save_now());
    if let Some(w) = web_sys::window() {
        let _ = w.add_event_listener_with_callback("pagehide", on_hide.as_ref().unchecked_ref());
    }
    on_hide.forget();

    let settings = Settings::load();
    link.connect(settings.clone());
    // `?device=<id>` opens that device's details.
    if let Some(id) = crate::settings::query_param("device").and_then(|d| DeviceId::new(d).ok()) {
        link.select(Some(id));
    }

    view! {
        <header class="top">
            <h1>"Switchboard"</h1>
            <ConnectionBadge />
        </header>
        <ConnectForm initial=settings />
        <main class="layout">
            <section class="fleet" aria-label="Fleet">
                <div class="toolbar">
                    <GroupCommand />
                    <AddDevice />
                </div>
                <FleetGrid />
            </section>
            <aside class="side">
                <DeviceDetail />
                <FanoutMatrix />
            </aside>
        </main>
        <History />
        <Notices />
    }
}
