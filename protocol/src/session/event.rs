//! What the session tells its caller: events, state and errors.

use core::time::Duration;

use thiserror::Error;

use super::{Message, PublishId, QoS};
use crate::time::Timestamp;

/// Something the caller must do or may want to know.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Open a new transport to the broker now, then call
    /// [`handle_transport_open`](super::Session::handle_transport_open) (or
    /// [`handle_transport_closed`](super::Session::handle_transport_closed) if it fails).
    OpenTransport,
    /// Close the transport now, after writing what
    /// [`poll_transmit`](super::Session::poll_transmit) still returns.
    CloseTransport,
    /// The broker accepted the CONNECT.
    Connected {
        /// The broker resumed an existing session.
        session_present: bool,
    },
    /// The broker refused the CONNECT.
    ConnectionRefused {
        /// Human-readable reason, with the CONNACK code.
        reason: String,
        /// When the next attempt starts; `None` when retrying cannot help and the session closed.
        retrying_in: Option<Duration>,
        /// The broker does not speak the protocol version that was offered.
        unsupported_version: bool,
    },
    /// An open or opening connection was lost (or closed on request).
    Disconnected {
        /// Human-readable reason.
        reason: String,
        /// When the next attempt starts; `None` after
        /// [`disconnect`](super::Session::disconnect).
        reconnect_in: Option<Duration>,
    },
    /// The broker ended the connection because another client connected with the same client id
    /// (MQTT 5 DISCONNECT 0x8E, session taken over). The session is closed and does not
    /// reconnect: two clients with one id would take the session from each other for ever.
    /// [`connect`](super::Session::connect) again, best with another client id. (An MQTT 3.1.1
    /// broker just closes the connection, which looks like any lost connection.)
    TakenOver {
        /// The broker's reason, with its code.
        reason: String,
    },
    /// A message from a subscription.
    Message(Message),
    /// A QoS 1 publish was acknowledged by the broker, or a QoS 0 publish was handed to the
    /// transport by [`poll_transmit`](super::Session::poll_transmit).
    Delivered(PublishId),
    /// The session gives up on a publish: the broker refused it for now (an MQTT 5 PUBACK reason
    /// such as quota exceeded), it is too large for the broker, or its message expiry ran out
    /// before it was sent (or, if a connection was lost after sending it, before it could be sent
    /// again). The session does not send it again; its caller may.
    PublishFailed {
        /// The publish.
        id: PublishId,
        /// Human-readable reason.
        reason: String,
    },
    /// The broker refused a publish for good (an MQTT 5 PUBACK with not authorised, topic name
    /// invalid or payload format invalid): sending it again cannot succeed. MQTT 3.1.1 has no way
    /// to say so; a 3.1.1 broker acknowledges such a publish and drops it.
    PublishRefused {
        /// The publish.
        id: PublishId,
        /// The broker's reason, with its code.
        reason: String,
    },
    /// The broker granted a subscription.
    Subscribed {
        /// The filter as subscribed.
        filter: String,
        /// The QoS granted.
        granted: QoS,
    },
    /// The broker refused a subscription (or it could not be sent); the filter is forgotten.
    SubscriptionRefused {
        /// The filter as asked for.
        filter: String,
        /// The broker's reason, with its code.
        reason: String,
    },
    /// A filter is no longer subscribed.
    Unsubscribed {
        /// The filter as unsubscribed.
        filter: String,
    },
    /// The broker broke the protocol; the connection is being closed.
    ProtocolError(String),
    /// A message larger than [`max_packet_size`](super::SessionConfig::max_packet_size) was
    /// passed over unread. Only on MQTT 3.1.1, which cannot tell the broker the limit (an MQTT 5
    /// broker drops such a message itself); it was acknowledged, so the broker does not send it
    /// again, and the connection goes on.
    Dropped {
        /// Its topic.
        topic: String,
        /// Its size in bytes.
        size: usize,
        /// The limit it broke.
        max: u32,
    },
}

/// Where the session stands, for display and decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// [`connect`](super::Session::connect) has not been called yet.
    Idle,
    /// Opening the transport or waiting for the CONNACK.
    Connecting,
    /// The broker accepted the CONNECT.
    Connected,
    /// The connection was lost; the next attempt starts at `at`.
    WaitingToReconnect {
        /// When [`SessionEvent::OpenTransport`] will be emitted.
        at: Timestamp,
    },
    /// Closed on request or after a refusal that retrying cannot fix;
    /// [`connect`](super::Session::connect) reopens.
    Closed,
}

/// Why the session refused a request or a config.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Too many publishes are already waiting for the broker.
    #[error(
        "publish to {topic:?} refused: {capacity} publishes are already waiting for the broker"
    )]
    OfflineQueueFull {
        /// The queue's capacity,
        /// [`max_offline_queue`](super::SessionConfig::max_offline_queue).
        capacity: usize,
        /// The topic of the refused publish.
        topic: String,
    },
    /// A topic name that cannot be published to.
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A topic filter that cannot be subscribed to.
    #[error("invalid topic filter {filter:?}: {reason}")]
    InvalidFilter {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A publish MQTT cannot carry.
    #[error("publish to {topic:?} cannot be encoded: {reason}")]
    InvalidPublish {
        /// The topic of the publish.
        topic: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A config the session cannot connect with.
    #[error("invalid session config {field} = {value:?}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Its value (passwords are not shown).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
