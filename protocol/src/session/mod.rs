//! An MQTT 5 / 3.1.1 client session on top of `mqtt-protocol-core`: connect, keep alive, reconnect,
//! resubscribe, and never lose an accepted publish.
//!
//! The session owns no socket and reads no clock. The caller opens and closes the transport when
//! told to ([`SessionEvent::OpenTransport`], [`SessionEvent::CloseTransport`]), feeds what arrives
//! ([`Session::handle_bytes`]), writes what [`Session::poll_transmit`] returns, and calls
//! [`Session::handle_timeout`] at [`Session::poll_timeout`]. After every input, drain
//! `poll_transmit` first and then `poll_event`: a `CloseTransport` may follow final bytes (a
//! DISCONNECT) that belong on the socket before it closes. Once the session asked for the close,
//! the caller need not report it with [`Session::handle_transport_closed`].
//!
//! ```text
//!          connect()          handle_transport_open()         CONNACK accepted
//!   Idle ───────────► Opening ───────────────────────► Handshaking ──────────────► Connected
//!                       ▲                                    │                        │
//!                       │ reconnect timer   refused, closed, │ closed, no PINGRESP,   │
//!                       │                 timeout, bad bytes │ bad bytes, DISCONNECT  │
//!                       └──────── WaitingToReconnect ◄───────┴────────────────────────┘
//!
//!   disconnect(), or a refusal that retrying cannot fix (credentials, ban, ...) ──► Closed
//!   connect() from Closed or WaitingToReconnect ──► Opening
//!   Opening and Handshaking are both ConnectionState::Connecting.
//! ```
//!
//! What the session promises:
//! - Every accepted [`Publish`] ends in exactly one [`SessionEvent::Delivered`] or
//!   [`SessionEvent::PublishFailed`]; QoS 1 ones survive reconnects. While disconnected they wait
//!   in a bounded queue, and [`Session::publish`] says so with an error when it is full.
//! - Unacknowledged QoS 1 publishes are sent again after a reconnect: with DUP and their old packet
//!   id when the broker kept the session, as new publishes when it did not.
//! - Subscriptions are remembered and sent again whenever the broker has forgotten them.
//! - Broker input never panics the session: malformed or oversized packets end the connection with
//!   a [`SessionEvent::ProtocolError`], and the session reconnects.
//!
//! A fresh `mqtt-protocol-core` connection serves each transport, because the protocol version may
//! change between attempts and because this module, not the library's store, decides what is
//! resent (the library's store would resend by itself and, on MQTT 5 with a Receive Maximum,
//! miscount its send window after a resumed session).

mod config;
mod engine;
mod event;
mod framing;
mod lifecycle;
mod message;
mod outbox;
mod packets;
mod send;
mod subscriptions;
mod timers;
mod wire;

#[cfg(test)]
mod tests;

use core::fmt;
use core::mem;
use core::time::Duration;
use std::collections::VecDeque;

use mqtt_protocol_core::mqtt::common::Cursor;
use mqtt_protocol_core::mqtt::connection::{ConnectionOptions, Event};
use mqtt_protocol_core::mqtt::packet::{GenericPacketTrait, Packet};
use mqtt_protocol_core::mqtt::result_code::MqttError;
use mqtt_protocol_core::mqtt::{role, Connection};

use crate::time::Timestamp;

pub use config::{ProtocolVersion, QoS, SessionConfig, Will};
pub use event::{ConnectionState, SessionError, SessionEvent};
pub use message::{Message, Publish, PublishId};
pub use packets::only_acknowledgements;

use framing::{Framer, Piece};
use outbox::Outbox;
use send::check_publish;
use subscriptions::Subscriptions;
use timers::{Timer, Timers};
use wire::Received;

/// The state machine's phases; [`ConnectionState`] is what callers see of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// [`SessionEvent::OpenTransport`] emitted; waiting for the transport.
    Opening,
    /// CONNECT sent; waiting for the CONNACK.
    Handshaking,
    Connected,
    Waiting {
        at: Timestamp,
    },
    Closed,
}

/// What a batch of mqtt-protocol-core events asked for beyond what [`Session::apply`] handled.
#[derive(Debug, Default)]
struct Flow {
    error: Option<MqttError>,
    close: bool,
}

/// An MQTT client session engine: see the [module documentation](self).
pub struct Session {
    config: SessionConfig,
    rng: fastrand::Rng,
    phase: Phase,
    /// The protocol engine of the current transport.
    conn: Option<Connection<role::Client>>,
    /// The version of the CONNECT on the current (or last) transport.
    attempt_version: ProtocolVersion,
    /// The version a broker accepted; later attempts keep it.
    negotiated: Option<ProtocolVersion>,
    /// The next attempt falls back to MQTT 3.1.1.
    fallback_next: bool,
    /// Attempts since the last accepted CONNACK; selects the backoff window.
    attempt: u32,
    timers: Timers,
    /// The first bytes of the handshake, to recognise a 3.1.1 broker refusing an MQTT 5 CONNECT.
    handshake_head: Vec<u8>,
    /// Cuts the broker's bytes at packet boundaries, passing over a PUBLISH too large to take.
    framer: Framer,
    /// Bytes for the transport.
    tx: Vec<u8>,
    events: VecDeque<SessionEvent>,
    outbox: Outbox,
    subscriptions: Subscriptions,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("client_id", &self.config.client_id)
            .field("phase", &self.phase)
            .field("version", &self.attempt_version)
            .field("negotiated", &self.negotiated)
            .field("attempt", &self.attempt)
            .field("timers", &self.timers)
            .field("outbox", &self.outbox)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that will connect with `config`; `rng_seed` seeds the reconnect jitter, so equal
    /// seeds give equal delays.
    pub fn new(config: SessionConfig, rng_seed: u64) -> Result<Self, SessionError> {
        config.validate()?;
        let framer = Framer::new(config.max_packet_size, false);
        Ok(Session {
            attempt_version: config.version,
            config,
            rng: fastrand::Rng::with_seed(rng_seed),
            phase: Phase::Idle,
            conn: None,
            negotiated: None,
            fallback_next: false,
            attempt: 0,
            timers: Timers::default(),
            handshake_head: Vec::new(),
            framer,
            tx: Vec::new(),
            events: VecDeque::new(),
            outbox: Outbox::default(),
            subscriptions: Subscriptions::default(),
        })
    }

    /// Starts connecting ([`SessionEvent::OpenTransport`]). From `WaitingToReconnect` it skips the
    /// rest of the wait; while connecting or connected it does nothing.
    pub fn connect(&mut self, now: Timestamp) {
        match self.phase {
            Phase::Idle | Phase::Closed => {
                self.attempt = 0;
                self.open_transport(now);
            }
            Phase::Waiting { .. } => self.open_transport(now),
            Phase::Opening | Phase::Handshaking | Phase::Connected => {}
        }
    }

    /// Ends the connection on purpose: a DISCONNECT if connected (so the broker drops the Last
    /// Will), then [`SessionEvent::CloseTransport`]. No reconnect follows; queued and
    /// unacknowledged publishes and subscriptions are kept for the next [`Session::connect`].
    pub fn disconnect(&mut self, now: Timestamp) {
        match self.phase {
            Phase::Connected => {
                if let (Some(conn), Ok(packet)) = (
                    self.conn.as_mut(),
                    wire::disconnect_packet(self.attempt_version),
                ) {
                    let events = conn.send(packet);
                    // The DISCONNECT's own close request is this very close.
                    let _ = self.apply(events, now);
                }
                self.close_on_request();
            }
            Phase::Opening | Phase::Handshaking => self.close_on_request(),
            Phase::Idle | Phase::Waiting { .. } | Phase::Closed => {
                self.timers.clear();
                self.phase = Phase::Closed;
            }
        }
    }

    /// The transport asked for by [`SessionEvent::OpenTransport`] is open: the CONNECT is queued
    /// for [`Session::poll_transmit`]. Ignored when no transport was asked for.
    pub fn handle_transport_open(&mut self, now: Timestamp) {
        if self.phase != Phase::Opening {
            return;
        }
        self.discard_stale_tx();
        let version = self.next_version();
        let options =
            ConnectionOptions::new().maximum_packet_size_recv(self.config.max_packet_size);
        let mut conn = Connection::<role::Client>::with_options(version.into(), options);
        conn.set_auto_pub_response(true);
        let ping_timeout = u64::try_from(self.config.ping_timeout.as_millis()).unwrap_or(u64::MAX);
        conn.set_pingresp_recv_timeout(ping_timeout);
        self.attempt_version = version;
        self.handshake_head.clear();
        self.framer = Framer::new(
            self.config.max_packet_size,
            version == ProtocolVersion::V3_1_1,
        );
        let packet = match wire::connect_packet(&self.config, version) {
            Ok(packet) => packet,
            Err(e) => {
                // `SessionConfig::validate` built this very CONNECT, so this is not expected.
                self.events.push_back(SessionEvent::CloseTransport);
                self.teardown(false);
                self.phase = Phase::Closed;
                self.events.push_back(SessionEvent::ConnectionRefused {
                    reason: format!("cannot encode the CONNECT: {e}"),
                    retrying_in: None,
                    unsupported_version: false,
                });
                return;
            }
        };
        let events = conn.send(packet);
        self.conn = Some(conn);
        self.phase = Phase::Handshaking;
        let flow = self.apply(events, now);
        if let Some(e) = flow.error {
            let reason = format!("mqtt-protocol-core cannot send the CONNECT: {e}");
            self.events
                .push_back(SessionEvent::ProtocolError(reason.clone()));
            self.drop_connection(now, reason, true);
        }
    }

    /// The transport closed without being asked to (or failed to open): the session reports
    /// [`SessionEvent::Disconnected`] and arms the reconnect timer. Ignored when no transport is
    /// open.
    pub fn handle_transport_closed(&mut self, now: Timestamp) {
        let reason = match self.phase {
            Phase::Opening => "the transport could not be opened",
            Phase::Handshaking => "the transport closed before the CONNACK",
            Phase::Connected => "the transport closed",
            Phase::Idle | Phase::Waiting { .. } | Phase::Closed => return,
        };
        self.drop_connection(now, reason.to_owned(), false);
    }

    /// Bytes from the transport, in any fragmentation: a partial packet waits for the rest.
    pub fn handle_bytes(&mut self, data: &[u8], now: Timestamp) {
        if !matches!(self.phase, Phase::Handshaking | Phase::Connected) {
            return;
        }
        if self.phase == Phase::Handshaking && self.handshake_head.len() < 4 {
            let take = (4 - self.handshake_head.len()).min(data.len());
            self.handshake_head
                .extend_from_slice(data.get(..take).unwrap_or_default());
        }
        for piece in self.framer.split(data) {
            let ended = match piece {
                Piece::Bytes(bytes) => self.feed(&bytes, now),
                Piece::Skipped(skipped) => {
                    self.passed_over(skipped);
                    false
                }
                Piece::Malformed(detail) => {
                    self.events
                        .push_back(SessionEvent::ProtocolError(detail.to_owned()));
                    self.drop_connection(now, detail.to_owned(), true);
                    true
                }
            };
            if ended {
                break;
            }
        }
    }

    /// Hands bytes to the protocol engine; `true` when they ended the connection.
    fn feed(&mut self, data: &[u8], now: Timestamp) -> bool {
        let end = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let mut cursor = Cursor::new(data);
        while cursor.position() < end {
            let before = cursor.position();
            let Some(conn) = self.conn.as_mut() else {
                return true;
            };
            let events = conn.recv(&mut cursor);
            let flow = self.apply(events, now);
            if self.conn.is_none() {
                return true; // a packet ended the connection; the rest belongs to nobody
            }
            if flow.error.is_some() || flow.close {
                self.protocol_failure(flow.error, now);
                return true;
            }
            if cursor.position() == before {
                break;
            }
        }
        self.conn.is_none()
    }

    /// A PUBLISH too large to take was passed over (MQTT 3.1.1): acknowledged at QoS 1, so the
    /// broker does not send it again, and reported.
    fn passed_over(&mut self, skipped: framing::Skipped) {
        if let Some(id) = skipped.packet_id {
            let [hi, lo] = id.to_be_bytes();
            // PUBACK: the engine tracks no state for an incoming QoS 1 message.
            self.tx.extend_from_slice(&[0x40, 0x02, hi, lo]);
        }
        self.events.push_back(SessionEvent::Dropped {
            topic: skipped.topic,
            size: skipped.size,
            max: self.config.max_packet_size,
        });
    }

    /// Bytes to write to the transport, all that is pending in one buffer. QoS 0 publishes among
    /// them count as delivered from here on.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.tx.is_empty() {
            return None;
        }
        for id in self.outbox.written() {
            self.events.push_back(SessionEvent::Delivered(id));
        }
        Some(mem::take(&mut self.tx))
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`Session::handle_timeout`] has work: a keep-alive ping, a
    /// PINGRESP or CONNACK timeout, or the next reconnect attempt.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        // Each firing either disarms its timer or re-arms it later than `now`; the bound only
        // guards against a zero-length re-arm looping forever.
        for _ in 0..16 {
            let Some(timer) = self.timers.pop_due(now) else {
                break;
            };
            self.fire(timer, now);
        }
    }

    /// Subscribes to `filter`, now if connected, else as soon as the broker accepts the CONNECT.
    /// The subscription is remembered and sent again whenever the broker has lost it.
    pub fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        wire::validate_filter(filter).map_err(|reason| SessionError::InvalidFilter {
            filter: filter.to_owned(),
            reason,
        })?;
        self.subscriptions.add(filter, qos);
        if self.phase == Phase::Connected {
            self.send_subscribe(vec![(filter.to_owned(), qos)], now);
        }
        Ok(())
    }

    /// Unsubscribes from `filter`, now if connected, else on the next connection if the broker
    /// kept the session ([`SessionEvent::Unsubscribed`] either way).
    pub fn unsubscribe(&mut self, filter: &str, now: Timestamp) -> Result<(), SessionError> {
        wire::validate_filter(filter).map_err(|reason| SessionError::InvalidFilter {
            filter: filter.to_owned(),
            reason,
        })?;
        let connected = self.phase == Phase::Connected;
        self.subscriptions.remove(filter, !connected);
        if connected {
            self.send_unsubscribe(vec![filter.to_owned()], now);
        }
        Ok(())
    }

    /// Accepts a publish: sent now if connected and the broker's receive window allows, queued
    /// otherwise. Its outcome arrives as [`SessionEvent::Delivered`] or
    /// [`SessionEvent::PublishFailed`] with the returned id.
    pub fn publish(&mut self, publish: Publish, now: Timestamp) -> Result<PublishId, SessionError> {
        check_publish(&publish)?;
        let id = self.outbox.accept(publish, now);
        self.flush(now);
        let capacity = self.config.max_offline_queue;
        match self.outbox.take_back_overflow(id, capacity) {
            Some(refused) => Err(SessionError::OfflineQueueFull {
                capacity,
                topic: refused.topic,
            }),
            None => Ok(id),
        }
    }

    /// Where the session stands.
    pub fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::Idle => ConnectionState::Idle,
            Phase::Opening | Phase::Handshaking => ConnectionState::Connecting,
            Phase::Connected => ConnectionState::Connected,
            Phase::Waiting { at } => ConnectionState::WaitingToReconnect { at },
            Phase::Closed => ConnectionState::Closed,
        }
    }

    /// The broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// The protocol version of the current connection, while connecting or connected.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        matches!(self.phase, Phase::Handshaking | Phase::Connected).then_some(self.attempt_version)
    }

    /// Uses `version` from the next CONNECT on, forgetting what earlier brokers accepted.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.config.version = version;
        self.negotiated = None;
        self.fallback_next = false;
    }

    /// The config the session runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Publishes accepted but never sent yet: the queue [`SessionConfig::max_offline_queue`]
    /// bounds.
    pub fn offline_queue_len(&self) -> usize {
        self.outbox.queued_len()
    }

    /// QoS 1 publishes sent at least once and not yet acknowledged, including those waiting to be
    /// sent again after a reconnect.
    pub fn in_flight_len(&self) -> usize {
        self.outbox.in_flight_len()
    }

    // ---- connection lifecycle ----

    fn fire(&mut self, timer: Timer, now: Timestamp) {
        if let Some(kind) = timer.kind() {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let events = conn.notify_timer_fired(kind);
            let flow = self.apply(events, now);
            if self.conn.is_some() && (flow.close || flow.error.is_some()) {
                let reason = match timer {
                    Timer::PingrespRecv => format!(
                        "no PINGRESP within {} ms",
                        self.config.ping_timeout.as_millis()
                    ),
                    _ => "the keep-alive failed".to_owned(),
                };
                self.drop_connection(now, reason, true);
            }
            return;
        }
        match (timer, self.phase) {
            (Timer::Connect, Phase::Opening) => {
                let reason = format!(
                    "the transport did not open within {} ms",
                    self.config.connect_timeout.as_millis()
                );
                self.drop_connection(now, reason, true);
            }
            (Timer::Connect, Phase::Handshaking) => {
                let reason = format!(
                    "no CONNACK within {} ms",
                    self.config.connect_timeout.as_millis()
                );
                self.drop_connection(now, reason, true);
            }
            (Timer::Reconnect, Phase::Waiting { .. }) => self.open_transport(now),
            _ => {}
        }
    }

    // ---- mqtt-protocol-core events ----

    /// Carries out what mqtt-protocol-core asked for; errors and close requests go back to the
    /// caller, which alone knows whether they are fatal.
    fn apply(&mut self, events: Vec<Event>, now: Timestamp) -> Flow {
        let mut flow = Flow::default();
        for event in events {
            if self.conn.is_none() {
                break; // an earlier event ended the connection
            }
            match event {
                Event::RequestSendPacket { packet, .. } => {
                    self.tx.extend_from_slice(&packet.to_continuous_buffer());
                }
                Event::NotifyPacketReceived(packet) => self.on_packet(packet, now),
                Event::NotifyPacketIdReleased(_) => {}
                Event::RequestTimerReset { kind, duration_ms } => {
                    self.timers
                        .set(Timer::from(kind), now + Duration::from_millis(duration_ms));
                }
                Event::RequestTimerCancel(kind) => self.timers.cancel(Timer::from(kind)),
                Event::NotifyError(e) => {
                    flow.error.get_or_insert(e);
                }
                Event::RequestClose => flow.close = true,
            }
        }
        flow
    }

    fn on_packet(&mut self, packet: Packet, now: Timestamp) {
        match wire::classify(packet) {
            Received::Connack(outcome) => self.on_connack(outcome, now),
            Received::Message(message) => self.events.push_back(SessionEvent::Message(message)),
            Received::Puback { packet_id, failure } => {
                if let Some(id) = self.outbox.acked(packet_id) {
                    self.events.push_back(match failure {
                        None => SessionEvent::Delivered(id),
                        Some(f) if f.permanent => SessionEvent::PublishRefused {
                            id,
                            reason: f.reason,
                        },
                        Some(f) => SessionEvent::PublishFailed {
                            id,
                            reason: format!("the broker refused it for now: {}", f.reason),
                        },
                    });
                }
                self.flush(now); // the receive window has room again
            }
            Received::Suback { packet_id, granted } => {
                let events = self.subscriptions.suback(packet_id, &granted);
                self.events.extend(events);
            }
            Received::Unsuback { packet_id } => {
                let events = self.subscriptions.unsuback(packet_id);
                self.events.extend(events);
            }
            Received::Disconnect {
                reason,
                taken_over: false,
            } => self.drop_connection(now, reason, true),
            Received::Disconnect {
                reason,
                taken_over: true,
            } => self.taken_over(reason),
            Received::Unexpected(what) => {
                self.events
                    .push_back(SessionEvent::ProtocolError(what.to_owned()));
                self.drop_connection(now, what.to_owned(), true);
            }
            Received::Other => {}
        }
    }
}
