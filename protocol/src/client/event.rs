//! What a [`Client`](super::Client) reports.

use crate::envelope::Status;
use crate::session::{Message, SessionEvent};
use crate::topic::DeviceId;
use crate::tracker::TrackerEvent;

/// Something the caller must do or may want to show.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The session's own events: transport requests (open, close) and the connection's story
    /// (connected, refused, disconnected, subscribed, protocol errors). Messages and publish
    /// outcomes are not among them: the client consumes those.
    Session(SessionEvent),
    /// A command moved: a member's phase, its end, a late or unmatched answer, ...
    Command(TrackerEvent),
    /// A device's presence, decoded (`None`: its retained presence was cleared). The tracker has
    /// taken it in already.
    Presence {
        /// The device.
        device: DeviceId,
        /// What it announced.
        status: Option<Status>,
    },
    /// A message on a topic the dialect does not follow (telemetry, logs, ...).
    Message(Message),
}
