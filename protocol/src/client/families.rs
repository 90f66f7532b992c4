//! The devices of other families that a [`Client`](super::Client) commands: their addresses, the
//! exact topics they speak on, what they last reported, and each outstanding power command's
//! [`Confirmation`].
//!
//! One outstanding command per device (a device of a family here is one relay, switch or entity,
//! so one channel): a newer one supersedes the older. Only absolute commands are carried (light
//! on or off, and reading the state), so retransmitting one is always safe.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::command::Command;
use crate::envelope::Tid;
use crate::family::confirm::{Confirmation, ConfirmedBy, Verdict, WindowClosed};
use crate::family::shelly::{Reply, ReplyOutcome};
use crate::family::{Address, Observation, ReadBack, Role, RpcCall};
use crate::time::Timestamp;
use crate::topic::DeviceId;
use crate::tracker::Settlement;

/// The longest a command waits for a report before its state is read back.
pub const MAX_CONFIRM_WINDOW: Duration = Duration::from_secs(5);

/// What a command to a family device is waiting for.
#[derive(Clone, Debug)]
enum Waiting {
    /// A power command: its target confirmed.
    Power(Confirmation),
    /// `get_state`: any report.
    State { reading_back: bool },
}

#[derive(Clone, Debug)]
struct Pending {
    tid: Tid,
    waiting: Waiting,
    /// The RPC id the TID maps onto (families with ids).
    rpc: u64,
    window_closes: Timestamp,
    deadline: Timestamp,
    sent: bool,
}

/// What [`Families::begin`] decided.
#[derive(Debug, Default)]
pub(super) struct Begun {
    /// The older command this one replaces.
    pub superseded: Option<Tid>,
    /// This command is settled already (confirmed by a retained state, unsupported, ...).
    pub settled: Option<Settlement>,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub(super) struct Families {
    devices: HashMap<DeviceId, Address>,
    routes: HashMap<String, Vec<(DeviceId, Role)>>,
    power: HashMap<DeviceId, bool>,
    online: HashMap<DeviceId, bool>,
    pending: HashMap<DeviceId, Pending>,
    by_tid: HashMap<Tid, DeviceId>,
    by_rpc: HashMap<u64, DeviceId>,
    next_rpc: u64,
    /// The application's name for RPC replies (`<src>/rpc`).
    src: String,
    /// `<src>/rpc`, where replies come.
    reply_topic: String,
    /// How many devices answer RPC replies (Shelly's): `<src>/rpc` is followed while any do.
    answering: usize,
    windows: BinaryHeap<Reverse<(Timestamp, Tid)>>,
}

impl Families {
    pub(super) fn new(src: String) -> Self {
        Families {
            devices: HashMap::new(),
            routes: HashMap::new(),
            power: HashMap::new(),
            online: HashMap::new(),
            pending: HashMap::new(),
            by_tid: HashMap::new(),
            by_rpc: HashMap::new(),
            next_rpc: 1,
            reply_topic: format!("{src}/rpc"),
            src,
            answering: 0,
            windows: BinaryHeap::new(),
        }
    }

    /// Where RPC replies come: `<src>/rpc`.
    pub(super) fn reply_topic(&self) -> &str {
        &self.reply_topic
    }

    /// Adds (or replaces) a device; returns its id and the topics to subscribe to.
    pub(super) fn add(&mut self, address: Address) -> (DeviceId, Vec<String>) {
        let id = address.device_id();
        self.remove(&id);
        let mut topics = Vec::new();
        for (topic, role) in address.topics() {
            self.routes
                .entry(topic.clone())
                .or_default()
                .push((id.clone(), role));
            topics.push(topic);
        }
        if matches!(address, Address::Shelly(_)) {
            self.answering += 1;
        }
        self.devices.insert(id.clone(), address);
        (id, topics)
    }

    /// Removes a device; returns the topics nobody else listens on any more.
    pub(super) fn remove(&mut self, id: &DeviceId) -> Vec<String> {
        let Some(address) = self.devices.remove(id) else {
            return Vec::new();
        };
        if matches!(address, Address::Shelly(_)) {
            self.answering -= 1;
        }
        let mut gone = Vec::new();
        for (topic, _) in address.topics() {
            if let Some(v) = self.routes.get_mut(&topic) {
                v.retain(|(d, _)| d != id);
                if v.is_empty() {
                    self.routes.remove(&topic);
                    gone.push(topic);
                }
            }
        }
        self.power.remove(id);
        self.online.remove(id);
        gone
    }

    /// Every topic followed, to subscribe again on a new session.
    pub(super) fn topics(&self) -> impl Iterator<Item = &String> {
        self.routes.keys()
    }

    /// Whether any device answers RPC replies (so `<src>/rpc` must be subscribed).
    pub(super) fn wants_replies(&self) -> bool {
        self.answering > 0
    }

    pub(super) fn address(&self, id: &DeviceId) -> Option<&Address> {
        self.devices.get(id)
    }

    pub(super) fn devices(&self) -> impl Iterator<Item = (&DeviceId, &Address)> {
        self.devices.iter()
    }

    /// The power state a device last reported.
    pub(super) fn power(&self, id: &DeviceId) -> Option<bool> {
        self.power.get(id).copied()
    }

    /// A command `tid` to family device `device` was submitted with `timeout`.
    pub(super) fn begin(
        &mut self,
        device: &DeviceId,
        tid: Tid,
        command: &Command,
        timeout: Duration,
        now: Timestamp,
    ) -> Begun {
        let Some(address) = self.devices.get(device) else {
            return Begun::default();
        };
        let waiting = match command {
            // Sent even when unconfirmable: nothing will confirm it, and the deadline tells.
            Command::Light { on } => {
                Waiting::Power(Confirmation::new(*on, address.quiet_when_unchanged()))
            }
            Command::GetState if address.read_back(&RpcCall { id: 0, src: "" }).is_none() => {
                let settled = match self.power.get(device) {
                    Some(_) => Settlement::Confirmed(ConfirmedBy::StateReport),
                    None => Settlement::Unsupported {
                        detail: format!(
                            "{} devices cannot be asked for their state, and this one has not reported it yet",
                            address.family().label()
                        ),
                    },
                };
                return Begun {
                    superseded: None,
                    settled: Some(settled),
                };
            }
            Command::GetState => Waiting::State {
                reading_back: false,
            },
            other => {
                return Begun {
                    superseded: None,
                    settled: Some(Settlement::Unsupported {
                        detail: format!(
                            "{} devices take light on/off and get_state, not {}",
                            address.family().label(),
                            other.name()
                        ),
                    }),
                }
            }
        };
        let superseded = self.supersede(device);
        let rpc = self.next_rpc;
        self.next_rpc += 1;
        let window = (timeout / 2).min(MAX_CONFIRM_WINDOW);
        let pending = Pending {
            tid,
            waiting,
            rpc,
            window_closes: now + window,
            deadline: now + timeout,
            sent: false,
        };
        self.windows.push(Reverse((pending.window_closes, tid)));
        self.by_tid.insert(tid, device.clone());
        self.by_rpc.insert(rpc, device.clone());
        self.pending.insert(device.clone(), pending);
        Begun {
            superseded,
            settled: None,
        }
    }

    fn supersede(&mut self, device: &DeviceId) -> Option<Tid> {
        let old = self.pending.remove(device)?;
        self.by_tid.remove(&old.tid);
        self.by_rpc.remove(&old.rpc);
        Some(old.tid)
    }

    /// Whether `tid` is a command to a family device.
    pub(super) fn owns(&self, tid: &Tid) -> bool {
        self.by_tid.contains_key(tid)
    }

    /// What carries command `tid` (its first transmission or a retransmission).
    pub(super) fn encode(&self, tid: &Tid) -> Option<ReadBack> {
        let device = self.by_tid.get(tid)?;
        let p = self.pending.get(device)?;
        let address = self.devices.get(device)?;
        let call = RpcCall {
            id: p.rpc,
            src: &self.src,
        };
        match &p.waiting {
            Waiting::Power(c) => address
                .set_power(c.target(), &call)
                .ok()
                .map(ReadBack::Publish),
            Waiting::State { .. } => address.read_back(&call),
        }
    }

    /// The session accepted command `tid`'s transmission. Returns the state topic to subscribe
    /// to again when the family is quiet (its retained state, read now, may confirm at once).
    pub(super) fn sent(&mut self, tid: &Tid) -> Option<String> {
        let device = self.by_tid.get(tid)?;
        let p = self.pending.get_mut(device)?;
        let first = !p.sent;
        p.sent = true;
        let Waiting::Power(c) = &mut p.waiting else {
            return None;
        };
        c.sent();
        let address = self.devices.get(device)?;
        if !(first && address.quiet_when_unchanged()) {
            return None;
        }
        match address.read_back(&RpcCall { id: 0, src: "" })? {
            ReadBack::Resubscribe(topic) => Some(topic),
            ReadBack::Publish(_) => None,
        }
    }

    /// Command `tid` ended in the tracker: forget it.
    pub(super) fn finished(&mut self, tid: &Tid) {
        if let Some(device) = self.by_tid.remove(tid) {
            if let Some(p) = self.pending.remove(&device) {
                self.by_rpc.remove(&p.rpc);
            }
        }
    }

    /// The devices that follow `topic`, with the role it plays for each.
    pub(super) fn route(&self, topic: &str) -> Option<&[(DeviceId, Role)]> {
        self.routes.get(topic).map(Vec::as_slice)
    }

    /// What `device` reported; returns the command it settles, if any.
    pub(super) fn observe(
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
            Observation::Power(on) => {
                self.power.insert(device.clone(), on);
                let p = self.pending.get_mut(device)?;
                let verdict = match &mut p.waiting {
                    Waiting::Power(c) if retained => c.observe_retained(on),
                    Waiting::Power(c) => c.observe(on),
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

    /// An RPC reply; returns the command it settles, if any.
    pub(super) fn reply(&mut self, reply: &Reply) -> Option<(Tid, Settlement)> {
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
        Some((p.tid, settlement(verdict)))
    }

    /// The earliest confirmation window to close.
    pub(super) fn poll_timeout(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((at, tid))) = self.windows.peek().copied() {
            let live = self
                .by_tid
                .get(&tid)
                .and_then(|d| self.pending.get(d))
                .is_some_and(|p| p.window_closes == at);
            if live {
                return Some(at);
            }
            self.windows.pop();
        }
        None
    }

    /// Closes the windows due at `now`: settlements to make and read-backs to carry out.
    pub(super) fn handle_timeout(
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
            let Some(device) = self.by_tid.get(&tid).cloned() else {
                continue;
            };
            let online = self.online.get(&device).copied();
            let Some(address) = self.devices.get(&device) else {
                continue;
            };
            let Some(p) = self.pending.get_mut(&device) else {
                continue;
            };
            if p.window_closes != at {
                continue;
            }
            if !p.sent {
                // Not even sent yet (no connection): look again later, up to the deadline.
                let again = (now + MAX_CONFIRM_WINDOW).min(p.deadline);
                if again > now {
                    p.window_closes = again;
                    self.windows.push(Reverse((again, tid)));
                }
                continue;
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
            match step {
                WindowClosed::End(v) => settled.push((tid, device, settlement(v))),
                WindowClosed::Offline => settled.push((tid, device, Settlement::Offline)),
                WindowClosed::ReadBack => publishes.extend(read_back),
                WindowClosed::Wait => {}
            }
        }
        (settled, publishes)
    }
}

fn settlement(v: Verdict) -> Settlement {
    match v {
        Verdict::Confirmed(by) => Settlement::Confirmed(by),
        Verdict::Contradicted { actual_on } => Settlement::Contradicted { actual_on },
        Verdict::Failed { message } => Settlement::Failed { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::tasmota::Tasmota;

    fn tid(n: u64) -> Tid {
        Tid::random(&mut fastrand::Rng::with_seed(n))
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// A Tasmota plug with a command to `on` sent at 0 ms and a 10 s deadline.
    fn plug(on: bool) -> (Families, DeviceId, Tid) {
        let mut f = Families::new("switchboard-test".into());
        let (id, topics) = f.add(Address::Tasmota(Tasmota::new("plug")));
        assert!(topics.contains(&"stat/plug/RESULT".to_owned()));
        let t = tid(1);
        let begun = f.begin(
            &id,
            t,
            &Command::Light { on },
            Duration::from_secs(10),
            at(0),
        );
        assert!(begun.superseded.is_none() && begun.settled.is_none());
        assert_eq!(
            f.sent(&t),
            None,
            "Tasmota is not quiet: nothing to read again"
        );
        (f, id, t)
    }

    #[test]
    fn silence_is_read_back_and_the_answer_decides() {
        let (mut f, id, t) = plug(true);
        assert_eq!(
            f.poll_timeout(),
            Some(at(5_000)),
            "half the deadline, at most 5 s"
        );
        let (settled, read_backs) = f.handle_timeout(at(5_000));
        assert!(settled.is_empty());
        let [ReadBack::Publish(p)] = read_backs.as_slice() else {
            panic!("one read-back publish, got {read_backs:?}");
        };
        assert_eq!(
            (p.topic.as_str(), p.payload.as_slice()),
            ("cmnd/plug/POWER", &b""[..])
        );
        let got = f.observe(&id, &Observation::Power(true), false);
        assert_eq!(got, Some((t, Settlement::Confirmed(ConfirmedBy::ReadBack))));
    }

    #[test]
    fn another_value_ends_contradicted_when_the_window_closes() {
        let (mut f, id, t) = plug(true);
        assert_eq!(
            f.observe(&id, &Observation::Power(false), false),
            None,
            "noted"
        );
        let (settled, read_backs) = f.handle_timeout(at(5_000));
        assert!(read_backs.is_empty());
        assert_eq!(
            settled,
            vec![(t, id, Settlement::Contradicted { actual_on: false })]
        );
    }

    #[test]
    fn a_device_presence_says_is_gone_ends_offline_and_a_newer_command_supersedes() {
        let (mut f, id, t) = plug(true);
        f.observe(&id, &Observation::Presence(false), true);
        let (settled, _) = f.handle_timeout(at(5_000));
        assert_eq!(settled, vec![(t, id.clone(), Settlement::Offline)]);
        let (mut f, id, t) = plug(true);
        let newer = tid(2);
        let begun = f.begin(
            &id,
            newer,
            &Command::Light { on: false },
            Duration::from_secs(10),
            at(100),
        );
        assert_eq!(begun.superseded, Some(t));
        assert!(!f.owns(&t) && f.owns(&newer));
        assert!(
            f.encode(&t).is_none(),
            "the superseded command is not sent again"
        );
    }
}
