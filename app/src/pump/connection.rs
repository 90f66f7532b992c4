//! The pump's connection to the broker, as the operator sees it: connecting with the settings
//! (and again with a fresh client id), the socket's events, what the session reports about the
//! connection (refusals, losses, a session taken over), the other tabs' word on client ids, and
//! the badge's state.

use std::time::Duration;

use switchboard_protocol::session::{
    ConnectionState, ProtocolVersion, SessionConfig, SessionEvent,
};
use switchboard_protocol::{Engine, Timestamp};

use super::{input, log, Pump};
use crate::settings::Settings;
use crate::socket::{Socket, SocketEvent};
use crate::tabs::TabMessage;
use crate::view::Conn;

impl Pump {
    /// Connects again as before, but with a client id newly drawn for this tab.
    pub fn connect_with_fresh_id(&mut self, t: Timestamp) {
        if let Some(settings) = self.settings.clone() {
            let settings = settings.with_fresh_client_id();
            settings.save();
            self.connect(settings, t);
        }
    }

    /// Connects with `settings`, replacing any current connection.
    pub fn connect(&mut self, settings: Settings, t: Timestamp) {
        self.taken_over = false;
        self.drop_socket();
        self.close_reason = None;
        self.conn_error = None;
        self.settings = None;
        if let Err(e) = settings.check_url() {
            self.conn_error = Some(e);
            self.client.disconnect(t);
            return;
        }
        let id = settings.effective_client_id();
        if let Some(tabs) = &self.tabs {
            tabs.say(&TabMessage::Claim(id.clone()));
        }
        let mut sc = SessionConfig::new(id);
        sc.version = settings.version();
        sc.version_fallback = !settings.mqtt311;
        // A persistent session: answers that arrive while the page reloads wait at the broker.
        sc.clean_start = false;
        sc.session_expiry = Duration::from_secs(3600);
        sc.max_offline_queue = 20_000;
        if !settings.username.is_empty() {
            sc.username = Some(settings.username.clone());
            if !settings.password.is_empty() {
                sc.password = Some(settings.password.clone().into_bytes());
            }
        }
        self.settings = Some(settings);
        if let Err(e) = self.client.connect(sc, t) {
            self.conn_error = Some(e.to_string());
        }
        // Devices of every family announce themselves: follow their announcements.
        if let Err(e) = self.client.discover(t) {
            log(&format!("discovery: {e}"));
        }
    }

    /// Another tab spoke: one that claims this tab's client id is told it is held; when this tab
    /// hears its own id is held elsewhere, it leaves the broker to that tab and says so.
    pub(super) fn on_tab_message(&mut self, m: TabMessage, t: Timestamp) {
        let Some(session) = self.client.session() else {
            return;
        };
        let mine = self.client_id();
        let active = !matches!(
            session.state(),
            ConnectionState::Idle | ConnectionState::Closed
        );
        match m {
            TabMessage::Claim(id) if id == mine && active => {
                if let Some(tabs) = &self.tabs {
                    tabs.say(&TabMessage::Held(id));
                }
            }
            TabMessage::Held(id) if id == mine && active => {
                self.client.disconnect(t);
                self.taken_over = true;
                let msg = format!(
                    "another tab of this browser is connected with this client id ({id}): this one stays off the broker so that neither takes the session from the other"
                );
                self.projection.note("error", t, msg.clone());
                self.conn_error = Some(msg);
            }
            _ => {}
        }
    }

    pub(super) fn on_session_event(&mut self, ev: SessionEvent, t: Timestamp) {
        match ev {
            SessionEvent::OpenTransport => self.open_socket(t),
            // What was left to write (a DISCONNECT) went out before this event.
            SessionEvent::CloseTransport => self.drop_socket(),
            SessionEvent::Connected { session_present } => {
                self.conn_error = None;
                self.close_reason = None;
                log(&format!("connected (session present: {session_present})"));
            }
            SessionEvent::ConnectionRefused {
                reason,
                retrying_in,
                ..
            } => {
                let msg = match retrying_in {
                    Some(d) => format!(
                        "the broker refused the connection: {reason} (retrying in {} s)",
                        d.as_secs()
                    ),
                    None => format!("the broker refused the connection: {reason}"),
                };
                self.projection.note("error", t, msg.clone());
                self.conn_error = Some(msg);
            }
            SessionEvent::Disconnected { reason, .. } => {
                let msg = self.close_reason.take().unwrap_or(reason);
                self.projection
                    .note("warning", t, format!("disconnected: {msg}"));
                if !self.taken_over {
                    self.conn_error = Some(msg);
                }
            }
            SessionEvent::TakenOver { reason } => {
                let msg = format!(
                    "another tab or client connected with this client id ({}), and the broker gave it the session: {reason}",
                    self.client_id()
                );
                self.projection.note("error", t, msg.clone());
                self.conn_error = Some(msg);
                self.taken_over = true;
            }
            SessionEvent::SubscriptionRefused { filter, reason } => self.projection.note(
                "error",
                t,
                format!("the broker refused the subscription to {filter}: {reason}"),
            ),
            SessionEvent::PublishRefused { reason, .. } => self.projection.note(
                "error",
                t,
                format!("the broker refused a command: {reason} (is this user allowed to publish it?)"),
            ),
            SessionEvent::ProtocolError(e) => {
                self.projection
                    .note("error", t, format!("protocol error from the broker: {e}"));
            }
            SessionEvent::Dropped { topic, size, max } => self.projection.note(
                "error",
                t,
                format!("a message of {size} bytes on {topic} was dropped unread: larger than {max} bytes"),
            ),
            _ => {}
        }
    }

    /// The client id the session connects with ('' before the first connect).
    fn client_id(&self) -> String {
        self.client
            .session()
            .map(|s| s.config().client_id.clone())
            .unwrap_or_default()
    }

    pub(super) fn open_socket(&mut self, t: Timestamp) {
        self.drop_socket();
        let Some(url) = self.settings.as_ref().map(|s| s.url.trim().to_owned()) else {
            return;
        };
        let me = self.me.clone();
        let opened = Socket::open(&url, move |ev| {
            if let Some(rc) = me.upgrade() {
                input(&rc, |p, t| p.on_socket(ev, t));
            }
        });
        match opened {
            Ok(socket) => self.socket = Some(socket),
            Err(e) => {
                self.conn_error = Some(e);
                self.client.disconnect(t);
            }
        }
    }

    pub(super) fn on_socket(&mut self, ev: SocketEvent, t: Timestamp) {
        match ev {
            SocketEvent::Open => self.client.handle_transport_open(t),
            SocketEvent::Bytes(b) => self.client.handle_bytes(&b, t),
            SocketEvent::Closed(reason) => {
                self.close_reason = Some(reason);
                self.drop_socket();
                self.client.handle_transport_closed(t);
            }
        }
    }

    /// The connection, for a person.
    pub(super) fn conn(&self) -> Conn {
        let Some(s) = self.client.session() else {
            return Conn::Offline;
        };
        match s.state() {
            ConnectionState::Closed if self.taken_over => Conn::TakenOver,
            ConnectionState::Idle | ConnectionState::Closed => Conn::Offline,
            ConnectionState::Connecting => Conn::Connecting,
            ConnectionState::Connected => Conn::Online {
                version: match s.protocol_version() {
                    Some(ProtocolVersion::V3_1_1) => "3.1.1",
                    _ => "5",
                },
            },
            ConnectionState::WaitingToReconnect { at } => Conn::Reconnecting { at },
        }
    }
}
