//! What settles a family device's outstanding command: the messages on its topics (state
//! reports, availability, RPC replies), and the confirmation windows that close on silence with a
//! read-back, or with the device gone.

use std::cmp::Reverse;

use crate::envelope::Tid;
use crate::family::confirm::{ConfirmedBy, Verdict, WindowClosed};
use crate::family::shelly::{Reply, ReplyOutcome};
use crate::family::{Observation, ReadBack, Role, RpcCall};
use crate::time::Timestamp;
use crate::topic::DeviceId;
use crate::tracker::Settlement;

use super::{settlement, Families, Waiting, MAX_CONFIRM_WINDOW};

impl Families {
    /// The devices that follow `topic`, with the role it plays for each.
    pub(in crate::client) fn route(&self, topic: &str) -> Option<&[(DeviceId, Role)]> {
        self.routes.get(topic).map(Vec::as_slice)
    }

    /// What `device` reported; returns the command it settles, if any.
    pub(in crate::client) fn observe(
        &mut self,
        device: &DeviceId,
        observation: &Observation,
        retained: bool,
    ) -> Option<(Tid, Settlement)> {
        match *observation {
            Observation::Presence(online) => {
                self.online.insert(device.clone(), online);
                None
            }
            Observation::Nothing => None,
            Observation::GroupTopic(ref group_topic) => {
                self.unprobed.remove(device);
                let address = self.devices.get(device)?;
                self.groups.listens_on(device, address, group_topic);
                None
            }
            Observation::Power(on) => {
                self.power.insert(device.clone(), on);
                let p = self.pending.get_mut(device)?;
                let verdict = match &mut p.waiting {
                    Waiting::Power(c) if retained => c.observe_retained(on),
                    Waiting::Power(c) => {
                        let verdict = c.observe(on);
                        if c.take_read_back_due() {
                            let call = RpcCall {
                                id: p.rpc,
                                src: &self.src,
                            };
                            if let Some(r) =
                                self.devices.get(device).and_then(|a| a.read_back(&call))
                            {
                                self.outbox.push(r);
                            }
                        }
                        verdict
                    }
                    Waiting::State { reading_back } => {
                        // Any report after asking answers `get_state`; a retained one answers
                        // it too when the family has no query.
                        let by = if retained {
                            ConfirmedBy::RetainedState
                        } else if *reading_back {
                            ConfirmedBy::ReadBack
                        } else {
                            ConfirmedBy::StateReport
                        };
                        (p.sent || retained).then_some(Verdict::Confirmed(by))
                    }
                }?;
                Some((p.tid, settlement(verdict)))
            }
        }
    }

    /// An RPC reply; returns the command and member it settles, if any.
    pub(in crate::client) fn reply(
        &mut self,
        reply: &Reply,
    ) -> Option<(Tid, DeviceId, Settlement)> {
        let device = self.by_rpc.get(&reply.id)?.clone();
        let p = self.pending.get_mut(&device)?;
        let verdict = match (&mut p.waiting, &reply.outcome) {
            (_, ReplyOutcome::Error { code, message }) => Verdict::Failed {
                message: format!("{message} (code {code})"),
            },
            (Waiting::Power(c), ReplyOutcome::Set { .. }) => {
                // The device says it applied the target.
                self.power.insert(device.clone(), c.target());
                c.applied()
            }
            (Waiting::Power(c), ReplyOutcome::Status { output }) => {
                self.power.insert(device.clone(), *output);
                c.observe(*output)?
            }
            (Waiting::State { .. }, ReplyOutcome::Status { output }) => {
                self.power.insert(device.clone(), *output);
                Verdict::Confirmed(ConfirmedBy::AnswerWithId)
            }
            (Waiting::State { .. }, ReplyOutcome::Set { .. }) => return None,
        };
        Some((p.tid, device, settlement(verdict)))
    }

    /// The earliest confirmation window to close.
    pub(in crate::client) fn poll_timeout(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((at, tid))) = self.windows.peek().copied() {
            let live = self.by_tid.get(&tid).is_some_and(|ds| {
                ds.iter()
                    .any(|d| self.pending.get(d).is_some_and(|p| p.window_closes == at))
            });
            if live {
                return Some(at);
            }
            self.windows.pop();
        }
        None
    }

    /// Closes the windows due at `now`: settlements to make and read-backs to carry out.
    pub(in crate::client) fn handle_timeout(
        &mut self,
        now: Timestamp,
    ) -> (Vec<(Tid, DeviceId, Settlement)>, Vec<ReadBack>) {
        let mut settled = Vec::new();
        let mut publishes = Vec::new();
        while let Some(Reverse((at, tid))) = self.windows.peek().copied() {
            if at > now {
                break;
            }
            self.windows.pop();
            let mut again = None;
            for device in self.by_tid.get(&tid).cloned().unwrap_or_default() {
                let (step, read_back) = match self.close_window(&device, at, now, &mut again) {
                    Some(x) => x,
                    None => continue,
                };
                match step {
                    WindowClosed::End(v) => settled.push((tid, device, settlement(v))),
                    WindowClosed::Offline => settled.push((tid, device, Settlement::Offline)),
                    WindowClosed::ReadBack => publishes.extend(read_back),
                    WindowClosed::Wait => {}
                }
            }
            if let Some(again) = again {
                self.windows.push(Reverse((again, tid)));
            }
        }
        (settled, publishes)
    }

    /// Closes `device`'s confirmation window due `at`: what to do, with its read-back. A command
    /// not even sent yet (no connection) looks again later, up to its deadline (`again`).
    fn close_window(
        &mut self,
        device: &DeviceId,
        at: Timestamp,
        now: Timestamp,
        again: &mut Option<Timestamp>,
    ) -> Option<(WindowClosed, Option<ReadBack>)> {
        {
            let online = self.online.get(device).copied();
            let address = self.devices.get(device)?;
            let p = self.pending.get_mut(device)?;
            if p.window_closes != at {
                return None;
            }
            if !p.sent {
                let later = (now + MAX_CONFIRM_WINDOW).min(p.deadline);
                if later > now {
                    p.window_closes = later;
                    *again = Some(later);
                }
                return None;
            }
            let call = RpcCall {
                id: p.rpc,
                src: &self.src,
            };
            let read_back = address.read_back(&call);
            let step = match &mut p.waiting {
                Waiting::Power(c) if address.confirmable() => {
                    c.window_closed(online, read_back.is_some())
                }
                Waiting::Power(_) => WindowClosed::Wait,
                Waiting::State { reading_back } => {
                    if online == Some(false) {
                        WindowClosed::Offline
                    } else if !*reading_back && read_back.is_some() {
                        *reading_back = true;
                        WindowClosed::ReadBack
                    } else {
                        WindowClosed::Wait
                    }
                }
            };
            Some((step, read_back))
        }
    }
}
