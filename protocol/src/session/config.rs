//! What a [`Session`](super::Session) is told once, before it connects.

use core::time::Duration;

use super::wire;
use super::SessionError;
use crate::backoff::Backoff;

/// The MQTT protocol level spoken on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 5.0: reason codes, session expiry, and the request/response properties.
    V5,
    /// MQTT 3.1.1: understood by every broker; the MQTT 5 properties are left out.
    V3_1_1,
}

/// Delivery guarantee of a publish or subscription. QoS 2 is deliberately not offered: every
/// receiver in this system deduplicates by transaction id, so "at least once" is enough.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QoS {
    /// Fire and forget.
    AtMostOnce,
    /// Acknowledged by the broker; resent until it is.
    AtLeastOnce,
}

/// The Last Will: what the broker publishes for this client when it vanishes without a DISCONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Topic of the will message (no wildcards).
    pub topic: String,
    /// Body of the will message.
    pub payload: Vec<u8>,
    /// QoS the broker publishes the will with.
    pub qos: QoS,
    /// Whether the broker retains the will message.
    pub retain: bool,
}

/// Everything a session needs to know before its first CONNECT.
///
/// Start from [`SessionConfig::new`] and change the fields that matter; [`Session::new`]
/// checks the whole config once, so a config it accepts always yields a valid CONNECT.
///
/// [`Session::new`]: super::Session::new
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The MQTT client id. May be empty only with `clean_start` (the broker then picks one).
    pub client_id: String,
    /// The protocol level of the first CONNECT.
    pub version: ProtocolVersion,
    /// Retry with MQTT 3.1.1 when the broker does not take an MQTT 5 CONNECT: it refuses the
    /// protocol version, or closes the transport (or lets it time out) without a byte in answer.
    /// Until some broker accepts a CONNECT, such silent failures alternate between 5 and 3.1.1;
    /// the version a broker accepted is kept for every later reconnect (until
    /// [`Session::set_version`](super::Session::set_version)).
    pub version_fallback: bool,
    /// `false` asks the broker to resume the previous session (subscriptions and unacknowledged
    /// QoS 1 messages). On MQTT 5 the broker keeps a session only for `session_expiry`.
    pub clean_start: bool,
    /// MQTT 5 only: how long the broker keeps the session after the connection drops. Zero ends it
    /// with the connection. Ignored on 3.1.1, where `clean_start = false` alone keeps the session.
    pub session_expiry: Duration,
    /// Longest silence before a PINGREQ is sent; whole seconds (rounded down, but at least one
    /// second unless zero). Zero disables keep-alive.
    pub keep_alive: Duration,
    /// How long to wait for the PINGRESP before the connection is presumed dead. Zero waits
    /// forever.
    pub ping_timeout: Duration,
    /// How long to wait from [`SessionEvent::OpenTransport`] to the CONNACK. Zero waits forever.
    ///
    /// [`SessionEvent::OpenTransport`]: super::SessionEvent::OpenTransport
    pub connect_timeout: Duration,
    /// User name for the broker's authentication.
    pub username: Option<String>,
    /// Password for the broker's authentication; requires `username`.
    pub password: Option<Vec<u8>>,
    /// The Last Will, if any.
    pub will: Option<Will>,
    /// How many publishes may wait to be handed to the broker (while disconnected, or while the
    /// broker's receive window is full). One more is refused with
    /// [`SessionError::OfflineQueueFull`], never dropped silently.
    pub max_offline_queue: usize,
    /// The largest packet accepted from the broker, in bytes. Larger ones end the connection before
    /// their body is buffered, so a broken or hostile peer cannot make the client allocate much.
    pub max_packet_size: u32,
    /// Delays between reconnect attempts.
    pub reconnect: Backoff,
}

/// The largest packet MQTT can frame: a 5-byte fixed header and 268,435,455 bytes of remaining
/// length.
pub(super) const MQTT_MAX_PACKET: u32 = 268_435_460;

impl SessionConfig {
    /// A config with sensible defaults: MQTT 5 with fallback to 3.1.1, clean start, 30 s
    /// keep-alive, 10 s ping and connect timeouts, 1,000 queued publishes, 1 MiB packets,
    /// [`Backoff::RECONNECT`].
    pub fn new(client_id: impl Into<String>) -> Self {
        SessionConfig {
            client_id: client_id.into(),
            version: ProtocolVersion::V5,
            version_fallback: true,
            clean_start: true,
            session_expiry: Duration::ZERO,
            keep_alive: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            username: None,
            password: None,
            will: None,
            max_offline_queue: 1_000,
            max_packet_size: 1 << 20,
            reconnect: Backoff::RECONNECT,
        }
    }

    /// Checks every rule a CONNECT built from this config must satisfy, and then builds it for each
    /// protocol version the session may use.
    pub fn validate(&self) -> Result<(), SessionError> {
        let invalid = |field: &'static str, value: String, reason: &'static str| {
            SessionError::InvalidConfig {
                field,
                value,
                reason,
            }
        };
        if self.client_id.len() > usize::from(u16::MAX) || self.client_id.contains('\0') {
            return Err(invalid(
                "client_id",
                self.client_id.clone(),
                "must be at most 65,535 bytes without NUL characters",
            ));
        }
        if self.client_id.is_empty() && !self.clean_start {
            return Err(invalid(
                "client_id",
                String::new(),
                "a persistent session (clean_start = false) needs a client id",
            ));
        }
        if self.keep_alive.as_secs() > u64::from(u16::MAX) {
            return Err(invalid(
                "keep_alive",
                format!("{:?}", self.keep_alive),
                "must be at most 65,535 seconds",
            ));
        }
        if self.session_expiry.as_secs() > u64::from(u32::MAX) {
            return Err(invalid(
                "session_expiry",
                format!("{:?}", self.session_expiry),
                "must be at most 4,294,967,295 seconds",
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(invalid(
                "password",
                "(hidden)".to_owned(),
                "a password needs a user name (MQTT 3.1.1 requires it; mqtt-protocol-core too)",
            ));
        }
        if let Some(will) = &self.will {
            if let Err(reason) = wire::validate_topic(&will.topic) {
                return Err(invalid("will.topic", will.topic.clone(), reason));
            }
        }
        if self.max_packet_size < 64 || self.max_packet_size > MQTT_MAX_PACKET {
            return Err(invalid(
                "max_packet_size",
                self.max_packet_size.to_string(),
                "must be between 64 and 268,435,460 bytes",
            ));
        }
        let mut versions = vec![self.version];
        if self.version_fallback && self.version == ProtocolVersion::V5 {
            versions.push(ProtocolVersion::V3_1_1);
        }
        for version in versions {
            if let Err(e) = wire::connect_packet(self, version) {
                return Err(invalid(
                    "connect",
                    format!("{version:?}: {e}"),
                    "mqtt-protocol-core cannot encode a CONNECT from this config",
                ));
            }
        }
        Ok(())
    }

    /// The keep-alive in whole seconds, as the CONNECT carries it.
    pub(super) fn keep_alive_secs(&self) -> u16 {
        if self.keep_alive.is_zero() {
            return 0;
        }
        u16::try_from(self.keep_alive.as_secs().max(1)).unwrap_or(u16::MAX)
    }
}
