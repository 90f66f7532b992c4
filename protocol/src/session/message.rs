//! What goes out ([`Publish`]) and what comes in ([`Message`]).

use core::fmt;
use core::time::Duration;

use super::QoS;

/// Names one [`Publish`] from the moment [`Session::publish`] accepts it until its
/// [`SessionEvent::Delivered`] or [`SessionEvent::PublishFailed`].
///
/// Ids increase with every accepted publish and are never reused, unlike MQTT packet ids, which
/// the broker recycles as soon as a message is acknowledged.
///
/// [`Session::publish`]: super::Session::publish
/// [`SessionEvent::Delivered`]: super::SessionEvent::Delivered
/// [`SessionEvent::PublishFailed`]: super::SessionEvent::PublishFailed
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublishId(pub(super) u64);

impl PublishId {
    /// The id as a number, for logs and correlation.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PublishId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "publish#{}", self.0)
    }
}

/// A message to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Topic name (no wildcards).
    pub topic: String,
    /// Message body.
    pub payload: Vec<u8>,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Ask the broker to keep this as the topic's retained message.
    pub retain: bool,
    /// MQTT 5 Response Topic; left out on 3.1.1.
    pub response_topic: Option<String>,
    /// MQTT 5 Correlation Data; left out on 3.1.1.
    pub correlation_data: Option<Vec<u8>>,
    /// MQTT 5 Message Expiry Interval, whole seconds rounded up; left out on 3.1.1. Time spent in
    /// the session's queue counts against it, and a message that expires there is reported as
    /// [`SessionEvent::PublishFailed`](super::SessionEvent::PublishFailed) on either version.
    pub message_expiry: Option<Duration>,
}

impl Publish {
    /// A plain publish: not retained, no MQTT 5 properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>, qos: QoS) -> Self {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain: false,
            response_topic: None,
            correlation_data: None,
            message_expiry: None,
        }
    }
}

/// A message the broker delivered to this client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// Message body.
    pub payload: Vec<u8>,
    /// QoS of this delivery. A QoS 2 delivery (this client never asks for one) reads `AtLeastOnce`.
    pub qos: QoS,
    /// Whether the broker sent it as a retained message.
    pub retain: bool,
    /// Whether the broker marked it as a possible redelivery.
    pub dup: bool,
    /// MQTT 5 Response Topic, if the publisher set one.
    pub response_topic: Option<String>,
    /// MQTT 5 Correlation Data, if the publisher set one.
    pub correlation_data: Option<Vec<u8>>,
}
