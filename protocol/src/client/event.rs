//! What a [`Client`](super::Client) reports.

use crate::envelope::Status;
use crate::family::{Address, Family, Observation};
use crate::session::{Message, SessionEvent};
use crate::topic::{DeviceId, GroupId};
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
    /// A device of another family reported its power or its presence (the client has taken
    /// it in: commands it confirms are settled).
    Reported {
        /// The device.
        device: DeviceId,
        /// What it said.
        observation: Observation,
        /// Whether the broker delivered it as a retained message (the state as it stood).
        retained: bool,
    },
    /// A device of another family was found by discovery and is followed from now on.
    Discovered {
        /// The id it goes by.
        device: DeviceId,
        /// Where it lives.
        address: Address,
        /// Its name for a person, if the announcement gives one.
        name: Option<String>,
    },
    /// The groups a device of another family is in changed (the operator's, or its family's
    /// own: a Tasmota GroupTopic, a Zigbee2MQTT group).
    Grouped {
        /// The device.
        device: DeviceId,
        /// Every group it is in now.
        groups: Vec<GroupId>,
    },
    /// A discovery announcement was cleared (the device was removed from its family's list).
    Vanished {
        /// The family.
        family: Family,
        /// What identified it in the announcement (a MAC, a unique id).
        key: String,
    },
    /// A message on a family's topic that could not be read (a malformed announcement, an RPC
    /// reply for no outstanding command, ...): logged, nothing else changes.
    Undecodable {
        /// Where it came.
        topic: String,
        /// What is wrong.
        error: String,
    },
    /// A message on a topic the dialect does not follow (telemetry, logs, ...).
    Message(Message),
}
