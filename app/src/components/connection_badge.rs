//! The connection state: connecting, online, reconnecting in N s, offline; and the last error.

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
    };
    let class = move || match conn.get() {
        Conn::Offline => "badge offline",
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
        </div>
    }
}
