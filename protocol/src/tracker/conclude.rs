//! How a member's part in a command ends, whatever the evidence (an answer with the TID, a family's
//! report, the broker's refusal): once, with its phase, counts, round trip and events; or late,
//! when evidence comes for a member that had already timed out.

use crate::envelope::{Response, Tid};
use crate::family::confirm::ConfirmedBy;
use crate::time::Timestamp;
use crate::topic::DeviceId;

use super::{rtt, CommandTracker, Phase, TrackerEvent};

/// The end of one member's part.
pub(super) struct Conclusion {
    /// Its terminal phase.
    pub phase: Phase,
    /// How a success was confirmed.
    pub confirmed_by: Option<ConfirmedBy>,
    /// The answer to keep; `None` keeps what the member has.
    pub response: Option<Response>,
    /// Whether the time since the first transmission is a round trip to learn from (Karn's rule
    /// still decides whether it counts).
    pub round_trip: bool,
}

impl CommandTracker {
    /// Ends `device`'s outstanding part in `tid` as `c` says, and the command with it when it was
    /// the last.
    pub(super) fn conclude(&mut self, tid: Tid, device: &DeviceId, c: Conclusion, now: Timestamp) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        let Some(m) = t.members.get_mut(device) else {
            return;
        };
        if c.round_trip {
            if let Some(rtt) = rtt::karn_sample(t.attempts, m.retries, t.first_sent_at, now) {
                rtt::record(
                    &mut self.round_trips,
                    &mut self.fleet_round_trip,
                    device,
                    rtt,
                );
            }
        }
        if std::mem::take(&mut m.retry_in_flight) {
            self.stragglers_in_flight = self.stragglers_in_flight.saturating_sub(1);
        }
        t.progress.count(&m.phase, -1);
        t.progress.count(&c.phase, 1);
        m.phase = c.phase.clone();
        m.confirmed_by = c.confirmed_by;
        m.finished_at = Some(now);
        if let Some(r) = c.response {
            m.response = Some(r);
        }
        t.last_answer_at = Some(now);
        self.events.push_back(TrackerEvent::Member {
            tid,
            device: device.clone(),
            phase: c.phase,
        });
        self.finish_if_done(tid, now);
    }

    /// Records evidence that came for a member already timed out or expired: its phase becomes
    /// what the evidence says, marked late. The command stays finished.
    pub(super) fn conclude_late(&mut self, tid: Tid, device: &DeviceId, c: Conclusion) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        let Some(m) = t.members.get_mut(device) else {
            return;
        };
        t.progress.count(&m.phase, -1);
        t.progress.count(&c.phase, 1);
        m.phase = c.phase.clone();
        m.late = true;
        if c.confirmed_by.is_some() {
            m.confirmed_by = c.confirmed_by;
        }
        if let Some(r) = c.response {
            m.response = Some(r);
        }
        self.events.push_back(TrackerEvent::Late {
            tid,
            device: device.clone(),
            phase: c.phase,
        });
    }
}
