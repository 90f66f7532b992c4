//! The connection's lifecycle behind the session's surface: opening a transport, the CONNACK
//! (resumed, refused, version fallback), protocol failures, dropping and tearing down a
//! connection, and when to try again.

use core::time::Duration;

use mqtt_protocol_core::mqtt::result_code::MqttError;

use super::timers::Timer;
use super::wire::ConnackOutcome;
use super::{Phase, ProtocolVersion, Session, SessionEvent};
use crate::time::Timestamp;

impl Session {
    pub(super) fn open_transport(&mut self, now: Timestamp) {
        self.timers.clear();
        self.timers
            .set_after(Timer::Connect, now, self.config.connect_timeout);
        self.phase = Phase::Opening;
        self.events.push_back(SessionEvent::OpenTransport);
    }

    /// The version for the next CONNECT.
    pub(super) fn next_version(&self) -> ProtocolVersion {
        match self.negotiated {
            Some(v) => v,
            None if self.fallback_next => ProtocolVersion::V3_1_1,
            None => self.config.version,
        }
    }

    pub(super) fn on_connack(&mut self, outcome: ConnackOutcome, now: Timestamp) {
        if self.phase != Phase::Handshaking {
            let reason = "the broker sent a second CONNACK".to_owned();
            self.events
                .push_back(SessionEvent::ProtocolError(reason.clone()));
            self.drop_connection(now, reason, true);
            return;
        }
        if !outcome.accepted {
            self.refuse(outcome, now);
            return;
        }
        self.phase = Phase::Connected;
        self.timers.cancel(Timer::Connect);
        self.attempt = 0;
        self.negotiated = Some(self.attempt_version);
        self.fallback_next = false;
        self.handshake_head.clear();
        self.events.push_back(SessionEvent::Connected {
            session_present: outcome.session_present,
        });
        self.resume(outcome.session_present, now);
    }

    /// After an accepted CONNACK: restore what the broker lacks, then send what waits.
    pub(super) fn resume(&mut self, session_present: bool, now: Timestamp) {
        if let Some(conn) = self.conn.as_mut() {
            // A resumed session knows the old packet ids; the fresh connection must reserve them.
            self.outbox.new_connection(|packet_id| {
                session_present && conn.register_packet_id(packet_id).is_ok()
            });
        }
        let forgotten = self.subscriptions.new_connection(session_present);
        self.events.extend(forgotten);
        let subscribe = self.subscriptions.unconfirmed();
        if !subscribe.is_empty() {
            self.send_subscribe(subscribe, now);
        }
        let unsubscribe = self.subscriptions.take_unsubscribe_later();
        if !unsubscribe.is_empty() {
            self.send_unsubscribe(unsubscribe, now);
        }
        self.flush(now);
    }

    /// The broker refused the CONNECT.
    pub(super) fn refuse(&mut self, outcome: ConnackOutcome, now: Timestamp) {
        let falls_back = outcome.unsupported_version
            && self.config.version_fallback
            && self.attempt_version == ProtocolVersion::V5;
        if falls_back {
            self.negotiated = None;
            self.fallback_next = true;
        }
        let retry = if outcome.unsupported_version {
            falls_back
        } else {
            !outcome.permanent
        };
        self.events.push_back(SessionEvent::CloseTransport);
        self.teardown(false);
        let retrying_in = if retry {
            Some(self.schedule_reconnect(now))
        } else {
            self.phase = Phase::Closed;
            None
        };
        self.events.push_back(SessionEvent::ConnectionRefused {
            reason: outcome.reason,
            retrying_in,
            unsupported_version: outcome.unsupported_version,
        });
    }

    /// The broker's bytes broke the protocol (or, during an MQTT 5 handshake, were a 3.1.1
    /// refusal).
    pub(super) fn protocol_failure(&mut self, error: Option<MqttError>, now: Timestamp) {
        if self.phase == Phase::Handshaking && self.attempt_version == ProtocolVersion::V5 {
            if let Some(outcome) = ConnackOutcome::from_v311_refusal_of_v5(&self.handshake_head) {
                self.refuse(outcome, now);
                return;
            }
        }
        let detail = match error {
            Some(MqttError::PacketTooLarge) => format!(
                "the broker sent a packet larger than {} bytes",
                self.config.max_packet_size
            ),
            Some(e) => format!("the broker sent an invalid packet ({e})"),
            None => "mqtt-protocol-core closed the connection".to_owned(),
        };
        self.events
            .push_back(SessionEvent::ProtocolError(detail.clone()));
        self.drop_connection(now, detail, true);
    }

    /// Ends the current connection and schedules the next attempt. `close` asks the caller to
    /// close the transport; without it the transport is already gone.
    pub(super) fn drop_connection(&mut self, now: Timestamp, reason: String, close: bool) {
        if close {
            self.events.push_back(SessionEvent::CloseTransport);
        }
        if self.phase == Phase::Handshaking && self.handshake_head.is_empty() {
            self.note_silent_handshake();
        }
        self.teardown(!close);
        let delay = self.schedule_reconnect(now);
        self.events.push_back(SessionEvent::Disconnected {
            reason,
            reconnect_in: Some(delay),
        });
    }

    /// A CONNECT went unanswered (the transport closed or timed out with no byte back). A broker
    /// that knows only MQTT 3.1.1 may do that to an MQTT 5 CONNECT, so the next attempt alternates
    /// versions until some broker accepts one.
    pub(super) fn note_silent_handshake(&mut self) {
        if self.config.version_fallback && self.negotiated.is_none() {
            self.fallback_next = self.attempt_version == ProtocolVersion::V5;
        }
    }

    /// Another client connected with this client id, and the broker handed it the session. Going
    /// back would take it from that client, which would take it back: two tabs or two devices
    /// with one id would knock each other off for ever. The session closes instead and says so;
    /// [`Session::connect`] (best with another client id) starts again.
    pub(super) fn taken_over(&mut self, reason: String) {
        self.events.push_back(SessionEvent::CloseTransport);
        self.teardown(false);
        self.phase = Phase::Closed;
        self.events.push_back(SessionEvent::TakenOver { reason });
    }

    pub(super) fn close_on_request(&mut self) {
        self.events.push_back(SessionEvent::CloseTransport);
        self.teardown(false);
        self.phase = Phase::Closed;
        self.events.push_back(SessionEvent::Disconnected {
            reason: "disconnected on request".to_owned(),
            reconnect_in: None,
        });
    }

    /// Forgets the current connection and keeps everything the next one needs. With
    /// `transport_gone`, pending bytes are dropped and their QoS 0 publishes queued again.
    pub(super) fn teardown(&mut self, transport_gone: bool) {
        self.conn = None;
        self.timers.clear();
        self.handshake_head.clear();
        if transport_gone {
            self.tx.clear();
        }
        self.outbox.connection_lost(transport_gone);
        self.subscriptions.connection_lost();
    }

    /// Bytes left over from an earlier transport must not reach the new one.
    pub(super) fn discard_stale_tx(&mut self) {
        self.tx.clear();
        self.outbox.unwritten_lost();
    }

    pub(super) fn schedule_reconnect(&mut self, now: Timestamp) -> Duration {
        let delay = self.config.reconnect.delay(self.attempt, &mut self.rng);
        self.attempt = self.attempt.saturating_add(1);
        let at = now + delay;
        self.timers.clear();
        self.timers.set(Timer::Reconnect, at);
        self.phase = Phase::Waiting { at };
        delay
    }
}
