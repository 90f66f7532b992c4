//! The tracker's vocabulary: targets, phases, members, progress and events.

use core::time::Duration;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::envelope::{Outcome, Rejection, Request, Response, Tid};
use crate::error::DecodeError;
use crate::family::confirm::ConfirmedBy;
use crate::time::Timestamp;
use crate::topic::{DeviceId, GroupId, IssuerId};

use super::Retention;

/// Settings of a tracker.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// Who this tracker issues commands as. Use a fresh id per application instance, or persist the
    /// sequence number with [`CommandTracker::snapshot`](super::CommandTracker::snapshot): devices reject numbers that go backwards.
    pub issuer: IssuerId,
    /// The sequence number of the first command.
    pub first_seq: u64,
    /// How long a command may take before it is reported as timed out.
    pub deadline: Duration,
    /// Bounds of the delays between retransmissions. Within them, a device's measured round trips
    /// set the shortest delay (see [`RoundTrip`](super::RoundTrip)).
    pub backoff: Backoff,
    /// How many finished commands are kept.
    pub retention: Retention,
    /// At most this many retransmissions to fan-out stragglers are in flight at once, over all
    /// group commands; the other stragglers wait for a later round.
    pub max_straggler_retransmissions: usize,
}

impl TrackerConfig {
    /// Defaults: 30 s deadline, [`Backoff::COMMANDS`], [`Retention::DEFAULT`], 256 straggler
    /// retransmissions in flight.
    pub fn new(issuer: IssuerId) -> Self {
        TrackerConfig {
            issuer,
            first_seq: 1,
            deadline: Duration::from_secs(30),
            backoff: Backoff::COMMANDS,
            retention: Retention::DEFAULT,
            max_straggler_retransmissions: 256,
        }
    }

    /// A first sequence number taken from the clock (`now` in ms, times 1,000), so that an
    /// application started again (a page reload, the next command-line run) keeps its commands in
    /// order on devices without remembering anything. Leaves room for 1,000 commands per ms.
    pub fn first_seq_at(now: Timestamp) -> u64 {
        now.as_millis().saturating_mul(1000)
    }
}

/// Whom a command is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    content = "id",
    rename_all = "snake_case",
    try_from = "crate::tagged::FlatTarget"
)]
pub enum Target {
    /// One device.
    Device(DeviceId),
    /// Every member of a group.
    Group(GroupId),
}

/// Where one device stands with one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "phase",
    rename_all = "snake_case",
    try_from = "crate::tagged::FlatPhase"
)]
pub enum Phase {
    /// Not yet handed to the MQTT session.
    Queued,
    /// Handed to the session, not yet acknowledged by the broker.
    Sent,
    /// The broker acknowledged it (PUBACK).
    Delivered,
    /// The device ran it successfully.
    Succeeded,
    /// The device ran it and it failed.
    Failed,
    /// The device refused it.
    Rejected {
        /// Why.
        reason: Rejection,
    },
    /// The device stopped while running it.
    Interrupted,
    /// No answer by the deadline although the broker had the command.
    TimedOut {
        /// Whether presence said the device was online at the deadline (`None`: unknown).
        device_online: Option<bool>,
    },
    /// The deadline passed before the broker acknowledged the command (the application was cut
    /// off from the broker, or the session refused the publish).
    Expired,
    /// A device of a family with no request id reported another state after the command and
    /// never the one asked for (another controller, or the device refusing).
    Contradicted {
        /// Whether the light was on in its last report.
        actual_on: bool,
    },
    /// A newer command to the same device and channel replaced it before it was confirmed.
    Superseded {
        /// The newer command.
        by: Tid,
    },
    /// The device's family cannot carry this command; nothing was sent.
    Unsupported {
        /// What stands in the way, for a person.
        detail: String,
    },
    /// The broker refused the command for good (MQTT 5: not authorised, say): it never reached
    /// the device, and sending it again cannot help. A 3.1.1 broker cannot say so; its silent
    /// drop ends the command timed out at the deadline.
    Refused {
        /// The broker's reason, with its code.
        reason: String,
    },
}

impl Phase {
    /// A short label: `queued`, `sent`, `delivered`, `succeeded`, `failed`, `rejected`,
    /// `interrupted`, `timed out`, `expired`, `contradicted`, `superseded`, `unsupported`,
    /// `refused by the broker`.
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Sent => "sent",
            Phase::Delivered => "delivered",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Rejected { .. } => "rejected",
            Phase::Interrupted => "interrupted",
            Phase::TimedOut { .. } => "timed out",
            Phase::Expired => "expired",
            Phase::Contradicted { .. } => "contradicted",
            Phase::Superseded { .. } => "superseded",
            Phase::Unsupported { .. } => "unsupported",
            Phase::Refused { .. } => "refused by the broker",
        }
    }

    /// Whether nothing more will happen (short of a late answer).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Phase::Queued | Phase::Sent | Phase::Delivered)
    }

    pub(super) fn from_outcome(outcome: &Outcome) -> Phase {
        match outcome {
            Outcome::Succeeded => Phase::Succeeded,
            Outcome::Failed => Phase::Failed,
            Outcome::Rejected { reason } => Phase::Rejected {
                reason: reason.clone(),
            },
            Outcome::Interrupted => Phase::Interrupted,
        }
    }
}

/// One device's part in a command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Where it stands.
    pub phase: Phase,
    /// When it reached a terminal phase.
    pub finished_at: Option<Timestamp>,
    /// The device's answer, if any.
    pub response: Option<Response>,
    /// How its success was confirmed (an answer with the TID, a state report, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<ConfirmedBy>,
    /// The answer came after the member had timed out.
    pub late: bool,
    /// Retransmissions to this member on its own topic (a group's straggler rounds).
    #[serde(default)]
    pub retries: u32,
    /// A straggler retransmission to it counts against the in-flight cap.
    #[serde(skip)]
    pub(super) retry_in_flight: bool,
}

impl Member {
    pub(super) fn new(phase: Phase) -> Member {
        Member {
            phase,
            finished_at: None,
            response: None,
            confirmed_by: None,
            late: false,
            retries: 0,
            retry_in_flight: false,
        }
    }
}

/// Counts of members per kind of phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Members expected to answer.
    pub expected: usize,
    /// Still waiting.
    pub pending: usize,
    /// Succeeded.
    pub succeeded: usize,
    /// Failed or interrupted.
    pub failed: usize,
    /// Rejected by the device, or refused by the broker.
    pub rejected: usize,
    /// Timed out or expired.
    pub timed_out: usize,
    /// Contradicted by the device's reported state.
    #[serde(default)]
    pub contradicted: usize,
    /// Replaced by a newer command, or not sent because the family cannot carry it.
    #[serde(default)]
    pub superseded: usize,
}

impl Progress {
    /// Members that answered: succeeded, failed, rejected or contradicted.
    pub fn answered(&self) -> usize {
        self.succeeded + self.failed + self.rejected + self.contradicted
    }

    pub(super) fn count(&mut self, phase: &Phase, delta: isize) {
        let slot = match phase {
            Phase::Queued | Phase::Sent | Phase::Delivered => &mut self.pending,
            Phase::Succeeded => &mut self.succeeded,
            Phase::Failed | Phase::Interrupted => &mut self.failed,
            Phase::Rejected { .. } | Phase::Refused { .. } => &mut self.rejected,
            Phase::TimedOut { .. } | Phase::Expired => &mut self.timed_out,
            Phase::Contradicted { .. } => &mut self.contradicted,
            Phase::Superseded { .. } | Phase::Unsupported { .. } => &mut self.superseded,
        };
        *slot = slot.saturating_add_signed(delta);
    }
}

/// Everything known about one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    /// Its TID.
    pub tid: Tid,
    /// Whom it is for.
    pub target: Target,
    /// The command's name.
    pub cmd: String,
    /// The request as sent (`None` for a text command).
    pub request: Option<Request>,
    /// The text as sent, for a text command.
    pub text: Option<String>,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When it will be given up on.
    pub deadline: Timestamp,
    /// When the session first accepted it: round trips are measured from here.
    #[serde(default)]
    pub first_sent_at: Option<Timestamp>,
    /// When the session last accepted it (a retransmission included).
    #[serde(default)]
    pub last_sent_at: Option<Timestamp>,
    /// When a member last answered: a fan-out's stragglers are retransmitted to only once answers
    /// have stopped arriving for a while.
    #[serde(default)]
    pub last_answer_at: Option<Timestamp>,
    /// When its last member became terminal.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// Transmissions so far (the first one included).
    pub attempts: u32,
    /// When the next retransmission is due, if one is planned.
    pub next_retry: Option<Timestamp>,
    /// Each expected device's part.
    pub members: BTreeMap<DeviceId, Member>,
    /// Counts over `members`.
    pub progress: Progress,
}

impl Tracked {
    /// Whether every member is terminal.
    pub fn is_finished(&self) -> bool {
        self.progress.pending == 0
    }

    /// Time from submission to the last member's answer, once finished.
    pub fn round_trip(&self) -> Option<Duration> {
        let last = self.members.values().filter_map(|m| m.finished_at).max()?;
        self.is_finished()
            .then(|| last.saturating_since(self.created_at))
    }
}

/// Unfinished commands and the sequence counter, as kept across an application restart; see
/// [`CommandTracker::snapshot`](super::CommandTracker::snapshot).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackerSnapshot {
    /// The sequence number the next command gets.
    pub next_seq: u64,
    /// Unfinished commands, oldest first.
    pub commands: Vec<Tracked>,
}

/// A publish the caller must hand to the MQTT session (QoS 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The command it carries.
    pub tid: Tid,
    /// Where to publish.
    pub topic: String,
    /// What to publish.
    pub payload: Vec<u8>,
    /// MQTT 5 Response Topic.
    pub response_topic: Option<String>,
    /// MQTT 5 Correlation Data (the TID's 16 bytes).
    pub correlation_data: Option<Vec<u8>>,
    /// MQTT 5 Message Expiry Interval.
    pub message_expiry: Option<Duration>,
    /// Whether this is a retransmission.
    pub retransmission: bool,
    /// The one member of a group it goes to (a straggler's retransmission, on the member's own
    /// topic); `None` when it goes to the whole target.
    pub member: Option<DeviceId>,
}

impl Outgoing {
    /// The QoS 1 publish that carries it.
    pub fn to_publish(&self) -> crate::session::Publish {
        crate::session::Publish {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            qos: crate::session::QoS::AtLeastOnce,
            retain: false,
            response_topic: self.response_topic.clone(),
            correlation_data: self.correlation_data.clone(),
            message_expiry: self.message_expiry,
        }
    }
}

/// Why a response matched no command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unmatched {
    /// No command with this TID is known (perhaps another application's, or long gone).
    UnknownTid(Tid),
    /// The TID is known but this device was not a target.
    WrongDevice {
        /// The TID.
        tid: Tid,
        /// The device the command was for (or the group).
        target: Target,
    },
    /// The answer names a different device than the topic it came on.
    DeviceMismatch {
        /// The device in the payload.
        claimed: DeviceId,
    },
    /// A text answer arrived but no text command to that device is outstanding.
    NoTextCommand,
}

/// What the tracker reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TrackerEvent {
    /// A member moved to a new phase.
    Member {
        /// The command.
        tid: Tid,
        /// The device.
        device: DeviceId,
        /// Its new phase.
        phase: Phase,
    },
    /// Every member of a command is terminal.
    Finished {
        /// The command.
        tid: Tid,
        /// Final counts.
        progress: Progress,
    },
    /// An answer came for a member that had already timed out; its phase was updated.
    Late {
        /// The command.
        tid: Tid,
        /// The device.
        device: DeviceId,
        /// What the device answered.
        phase: Phase,
    },
    /// A text answer was matched to the oldest of several outstanding text commands.
    Ambiguous {
        /// The command it was matched to.
        tid: Tid,
        /// The device.
        device: DeviceId,
        /// How many text commands to that device were outstanding.
        outstanding: usize,
    },
    /// A response that matches no command.
    Unmatched {
        /// The device whose response topic it came on.
        device: DeviceId,
        /// Why it matches nothing.
        why: Unmatched,
    },
    /// A payload on a response or status topic that could not be decoded.
    Malformed {
        /// The device whose topic it came on.
        device: DeviceId,
        /// What is wrong.
        error: DecodeError,
    },
    /// A finished command was forgotten under the retention rule
    /// ([`TrackerConfig::retention`]).
    Forgotten {
        /// The command.
        tid: Tid,
    },
    /// The session refused a publish (e.g. its offline queue is full); it will be retried.
    SendFailed {
        /// The command.
        tid: Tid,
        /// The session's error, for a person.
        error: String,
    },
}

/// What presence says about a device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// Connected, per its retained status.
    pub online: bool,
    /// Its groups.
    pub groups: Vec<GroupId>,
}

/// Options for one command.
#[derive(Clone, Copy, Debug, Default)]
pub struct SendOptions {
    /// Overrides the tracker's deadline.
    pub deadline: Option<Duration>,
}
