//! Settling a member on evidence other than an answer with the TID: a device family's state
//! reports, its RPC answers, a newer command that replaces it, a command its family cannot carry,
//! the broker's refusal.

use crate::envelope::{Outcome, Response, Tid};
use crate::family::confirm::ConfirmedBy;
use crate::time::Timestamp;
use crate::topic::DeviceId;

use super::conclude::Conclusion;
use super::{CommandTracker, Phase};

/// How the application settled one member; see [`CommandTracker::settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The device is at the target: succeeded.
    Confirmed(ConfirmedBy),
    /// The device reported another state: contradicted.
    Contradicted {
        /// Whether the light was on in its last report.
        actual_on: bool,
    },
    /// The device answered with an error.
    Failed {
        /// Its message.
        message: String,
    },
    /// A newer command to the same device and channel replaced it.
    Superseded {
        /// The newer command.
        by: Tid,
    },
    /// The family cannot carry the command.
    Unsupported {
        /// Why, for a person.
        detail: String,
    },
    /// No report, and presence says the device is gone: timed out, offline.
    Offline,
    /// The broker refused the command for good; it never reached the device.
    Refused {
        /// The broker's reason.
        reason: String,
    },
}

impl CommandTracker {
    /// The broker refused the publish for `tid` for good (an MQTT 5 PUBACK reason such as not
    /// authorised): every member it had not yet delivered to ends [`Phase::Refused`] at once,
    /// with the broker's reason, rather than being retried until the deadline.
    pub fn handle_refused(&mut self, tid: Tid, reason: impl Into<String>, now: Timestamp) {
        let Some(t) = self.commands.get(&tid) else {
            return;
        };
        let undelivered: Vec<DeviceId> = t
            .members
            .iter()
            .filter(|(_, m)| matches!(m.phase, Phase::Queued | Phase::Sent))
            .map(|(d, _)| d.clone())
            .collect();
        let reason = reason.into();
        for device in undelivered {
            let reason = reason.clone();
            self.settle(tid, &device, Settlement::Refused { reason }, now);
        }
    }

    /// Ends `device`'s part in command `tid` as `settlement` says. A member already terminal is
    /// left as it is (a late confirmation of a timed-out member is recorded as late).
    pub fn settle(&mut self, tid: Tid, device: &DeviceId, settlement: Settlement, now: Timestamp) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        let Some(m) = t.members.get_mut(device) else {
            return;
        };
        let (phase, confirmed_by, error) = match settlement {
            Settlement::Confirmed(by) => (Phase::Succeeded, Some(by), None),
            Settlement::Contradicted { actual_on } => {
                (Phase::Contradicted { actual_on }, None, None)
            }
            Settlement::Failed { message } => (Phase::Failed, None, Some(message)),
            Settlement::Superseded { by } => (Phase::Superseded { by }, None, None),
            Settlement::Unsupported { detail } => (Phase::Unsupported { detail }, None, None),
            Settlement::Refused { reason } => (Phase::Refused { reason }, None, None),
            Settlement::Offline => (
                Phase::TimedOut {
                    device_online: Some(false),
                },
                None,
                None,
            ),
        };
        if m.phase.is_terminal() {
            let late = matches!(m.phase, Phase::TimedOut { .. } | Phase::Expired)
                && matches!(phase, Phase::Succeeded | Phase::Contradicted { .. });
            if late {
                let late = Conclusion {
                    phase,
                    confirmed_by,
                    response: None,
                    round_trip: false,
                };
                self.conclude_late(tid, device, late);
            }
            return;
        }
        let response = error.map(|message| {
            let mut r = Response::new(tid, device.clone(), t.cmd.clone(), Outcome::Failed);
            r.error = Some(message);
            r
        });
        let settled = Conclusion {
            round_trip: phase == Phase::Succeeded,
            phase,
            confirmed_by,
            response,
        };
        self.conclude(tid, device, settled, now);
    }
}
