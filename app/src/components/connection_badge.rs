//! The connection state: connecting, online, reconnecting in N s, offline, taken over by another
//! tab (with a way out: a new client id); and the last error.

use leptos::prelude::*;

use crate::clock::Clock;
use crate::link::Link;
use crate::view::Conn;

/// The connection state, always visible.
#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let link = expect_context::<Link>();
    let clock = expect_context::<Clock>();
    let conn = link.store.conn;
    let text = move || match conn.get() {
        Conn::Offline => "offline".to_owned(),
        Conn::Connecting => "connecting…".to_owned(),
        Conn::Online { version } => format!("online (MQTT {version})"),
        Conn::Reconnecting { at } => {
            let left = at.saturating_since(clock.0.get()).as_secs();
            format!("reconnecting in {} s", left.max(1))
        }
        Conn::TakenOver => "client id in use elsewhere".to_owned(),
    };
    let class = move || match conn.get() {
        Conn::Offline | Conn::TakenOver => "badge offline",
        Conn::Connecting => "badge connecting",
        Conn::Online { .. } => "badge online",
        Conn::Reconnecting { .. } => "badge reconnecting",
    };
    view! {
        <div class="conn" role="status" aria-live="polite">
            <span class=class data-conn=move || match conn.get() {
                Conn::Offline => "offline",
                Conn::Connecting => "connecting",
                Conn::Online { .. } => "online",
                Conn::Reconnecting { .. } => "reconnecting",
                Conn::TakenOver => "taken-over",
            }>{text}</span>
            <Show when=move || link.store.notices.with(|n| !n.is_empty())>
                <a class="notice-count" href="#notices">
                    {move || link.store.notices.with(|n| {
                        let bad = n.iter().filter(|x| x.level != "info").count();
                        format!("{bad} notice{}", if bad == 1 { "" } else { "s" })
                    })}
                </a>
            </Show>
            <Show when=move || link.store.conn_error.get().is_some()>
                <span class="conn-error">{move || link.store.conn_error.get()}</span>
            </Show>
            <Show when=move || conn.get() == Conn::TakenOver>
                <button type="button" data-action="fresh-client-id"
                    on:click=move |_| link.connect_with_fresh_id()>
                    "Connect with a new client id"
                </button>
            </Show>
        </div>
    }
}
