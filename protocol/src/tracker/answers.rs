//! Answers from devices: decoded, matched to their command by TID and device, and reconciled
//! (a member's phase, a late answer after a timeout, a duplicate, a member that joined its group
//! after the command); what matches nothing is reported, never dropped.

use crate::envelope::{decode_response, IncomingResponse, Outcome, Response};
use crate::error::DecodeError;
use crate::family::confirm::ConfirmedBy;
use crate::time::Timestamp;
use crate::topic::DeviceId;

use super::conclude::Conclusion;
use super::{CommandTracker, Member, Phase, Target, TrackerEvent, Unmatched};

impl CommandTracker {
    /// A payload on one of `device`'s answer or presence topics could not be decoded.
    pub fn handle_malformed(&mut self, device: &DeviceId, error: DecodeError) {
        self.events.push_back(TrackerEvent::Malformed {
            device: device.clone(),
            error,
        });
    }

    /// A message arrived on `cmd/<device>/resp` (the Switchboard envelope or the text form).
    pub fn handle_response(&mut self, device: &DeviceId, payload: &[u8], now: Timestamp) {
        match decode_response(payload) {
            Ok(answer) => self.handle_answer(device, answer, now),
            Err(error) => self.handle_malformed(device, error),
        }
    }

    /// An answer from `device`, decoded.
    pub fn handle_answer(&mut self, device: &DeviceId, answer: IncomingResponse, now: Timestamp) {
        match answer {
            IncomingResponse::Envelope(r) => self.reconcile(device, r, now),
            IncomingResponse::Text(t) => {
                let outstanding = self.text_outstanding.get(device).map_or(0, Vec::len);
                let Some(tid) = self
                    .text_outstanding
                    .get_mut(device)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.remove(0))
                else {
                    self.events.push_back(TrackerEvent::Unmatched {
                        device: device.clone(),
                        why: Unmatched::NoTextCommand,
                    });
                    return;
                };
                if outstanding > 1 {
                    self.events.push_back(TrackerEvent::Ambiguous {
                        tid,
                        device: device.clone(),
                        outstanding,
                    });
                }
                let cmd = self
                    .commands
                    .get(&tid)
                    .map(|c| c.cmd.clone())
                    .unwrap_or_default();
                let outcome = if t.success {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                };
                let mut r = Response::new(tid, device.clone(), cmd, outcome);
                r.result = serde_json::Value::String(t.text.clone());
                if !t.success {
                    r.error = Some(t.text);
                }
                self.reconcile(device, r, now);
            }
        }
    }

    pub(super) fn reconcile(&mut self, device: &DeviceId, r: Response, now: Timestamp) {
        if &r.device != device {
            self.events.push_back(TrackerEvent::Unmatched {
                device: device.clone(),
                why: Unmatched::DeviceMismatch { claimed: r.device },
            });
            return;
        }
        let tid = r.tid;
        let Some(t) = self.commands.get_mut(&tid) else {
            self.events.push_back(TrackerEvent::Unmatched {
                device: device.clone(),
                why: Unmatched::UnknownTid(tid),
            });
            return;
        };
        if !t.members.contains_key(device) {
            if matches!(t.target, Target::Group(_)) {
                // A member that joined the group after the command was sent.
                t.progress.expected += 1;
                t.progress.pending += 1;
                t.members
                    .insert(device.clone(), Member::new(Phase::Delivered));
            } else {
                self.events.push_back(TrackerEvent::Unmatched {
                    device: device.clone(),
                    why: Unmatched::WrongDevice {
                        tid,
                        target: t.target.clone(),
                    },
                });
                return;
            }
        }
        let phase = Phase::from_outcome(&r.outcome);
        let Some(m) = t.members.get_mut(device) else {
            return;
        };
        if m.phase.is_terminal() {
            if matches!(m.phase, Phase::TimedOut { .. } | Phase::Expired) {
                let late = Conclusion {
                    phase,
                    confirmed_by: None,
                    response: Some(r),
                    round_trip: false,
                };
                self.conclude_late(tid, device, late);
            }
            // Otherwise a duplicate answer (a replay after a retransmission): nothing new.
            return;
        }
        let answered = Conclusion {
            confirmed_by: (phase == Phase::Succeeded).then_some(ConfirmedBy::Answer),
            phase,
            response: Some(r),
            round_trip: true,
        };
        self.conclude(tid, device, answered, now);
    }
}
