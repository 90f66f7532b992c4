//! Settling a member on evidence other than an answer with the TID: a device family's state
//! reports, its RPC answers, a newer command that replaces it, a command its family cannot carry,
//! the broker's refusal.

use crate::envelope::{Outcome, Response, Tid};
use crate::family::confirm::ConfirmedBy;
use crate::time::Timestamp;
use crate::topic::DeviceId;

use super::{rtt, CommandTracker, Phase, TrackerEvent};

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
                t.progress.count(&m.phase, -1);
                t.progress.count(&phase, 1);
                m.phase = phase.clone();
                m.confirmed_by = confirmed_by;
                m.late = true;
                self.events.push_back(TrackerEvent::Late {
                    tid,
                    device: device.clone(),
                    phase,
                });
            }
            return;
        }
        let sample = rtt::karn_sample(t.attempts, m.retries, t.first_sent_at, now);
        if let Some(rtt) = sample.filter(|_| phase == Phase::Succeeded) {
            rtt::record(
                &mut self.round_trips,
                &mut self.fleet_round_trip,
                device,
                rtt,
            );
        }
        if std::mem::take(&mut m.retry_in_flight) {
            self.stragglers_in_flight = self.stragglers_in_flight.saturating_sub(1);
        }
        if let Some(message) = error {
            let mut r = Response::new(tid, device.clone(), t.cmd.clone(), Outcome::Failed);
            r.error = Some(message);
            m.response = Some(r);
        }
        t.progress.count(&m.phase, -1);
        t.progress.count(&phase, 1);
        m.phase = phase.clone();
        m.confirmed_by = confirmed_by;
        m.finished_at = Some(now);
        t.last_answer_at = Some(now);
        self.events.push_back(TrackerEvent::Member {
            tid,
            device: device.clone(),
            phase,
        });
        self.finish_if_done(tid, now);
    }
}
