//! The devices of other families that a [`Client`](super::Client) commands: their addresses, the
//! exact topics they speak on, what they last reported, and each outstanding power command's
//! [`Confirmation`].
//!
//! One outstanding command per device (a device of a family here is one relay, switch or entity,
//! so one channel): a newer one supersedes the older. Only absolute commands are carried (light
//! on or off, and reading the state), so retransmitting one is always safe.
//!
//! A command to a group has one [`Confirmation`] per family member. Its first transmission goes
//! out once per family group that carries members at once (see [`super::groups`]) and once per
//! other member; a straggler's retransmission goes to that member alone.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

use crate::command::Command;
use crate::envelope::Tid;
use crate::family::confirm::{Confirmation, ConfirmedBy, Verdict};
use crate::family::discovery::NativeGroup;
use crate::family::{Address, ReadBack, Role, RpcCall};
use crate::session::Publish;
use crate::time::Timestamp;
use crate::topic::{DeviceId, GroupId};
use crate::tracker::Settlement;

use super::groups::Memberships;

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
    /// The group the command went to, when it did.
    group: Option<GroupId>,
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
    /// The members of each outstanding command (one device, or a group's family members).
    by_tid: HashMap<Tid, Vec<DeviceId>>,
    by_rpc: HashMap<u64, DeviceId>,
    groups: Memberships,
    /// Devices that have not yet answered [`Address::probe`].
    unprobed: HashSet<DeviceId>,
    /// Read-backs due now (a group coordinator's echo came), for the client to publish.
    outbox: Vec<ReadBack>,
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
            groups: Memberships::default(),
            unprobed: HashSet::new(),
            outbox: Vec::new(),
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
        if address.probe().is_some() {
            self.unprobed.insert(id.clone());
        }
        self.devices.insert(id.clone(), address);
        (id, topics)
    }

    /// What to ask the devices that have not told what their announcement leaves out.
    pub(super) fn probes(&self) -> Vec<Publish> {
        self.unprobed
            .iter()
            .filter_map(|d| self.devices.get(d)?.probe())
            .collect()
    }

    /// What to ask `device` now that it is followed.
    pub(super) fn probe(&self, device: &DeviceId) -> Option<Publish> {
        self.devices.get(device)?.probe()
    }

    /// Every group a device is in (the operator's and its family's).
    pub(super) fn groups_of(&self, device: &DeviceId) -> Vec<GroupId> {
        self.groups.of(device)
    }

    /// The family devices in `group`.
    pub(super) fn members(&self, group: &GroupId) -> Vec<DeviceId> {
        self.groups
            .members(group)
            .into_iter()
            .filter(|d| self.devices.contains_key(d))
            .collect()
    }

    /// The operator's groups for `device`; returns whether its groups changed.
    pub(super) fn assign(&mut self, device: &DeviceId, groups: BTreeSet<GroupId>) -> bool {
        self.devices.contains_key(device) && self.groups.assign(device, groups)
    }

    /// A device found with the key its family's group lists use; returns the devices whose
    /// groups changed.
    pub(super) fn keyed(&mut self, device: &DeviceId, key: String) -> Vec<DeviceId> {
        self.groups.keyed(device, key)
    }

    /// A family's whole group list; returns the devices whose groups changed.
    pub(super) fn native_groups(&mut self, groups: Vec<NativeGroup>) -> Vec<DeviceId> {
        self.groups.zigbee_groups(groups)
    }

    /// Read-backs due now, to publish.
    pub(super) fn take_outbox(&mut self) -> Vec<ReadBack> {
        std::mem::take(&mut self.outbox)
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
        self.groups.remove(id);
        self.unprobed.remove(id);
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

    /// A command `tid` to family device `device` (alone, or as a member of `group`) was
    /// submitted with `timeout`.
    pub(super) fn begin(
        &mut self,
        device: &DeviceId,
        group: Option<&GroupId>,
        tid: Tid,
        command: &Command,
        timeout: Duration,
        now: Timestamp,
    ) -> Begun {
        let Some(address) = self.devices.get(device) else {
            return Begun::default();
        };
        let echoed = group
            .and_then(|g| self.groups.carrier(device, g))
            .is_some_and(Address::group_echoes);
        let waiting = match command {
            // Sent even when unconfirmable: nothing will confirm it, and the deadline tells.
            Command::Light { on } => {
                let c = Confirmation::new(*on, address.quiet_when_unchanged());
                Waiting::Power(if echoed { c.through_echoing_group() } else { c })
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
            group: group.cloned(),
        };
        let fresh = !self.by_tid.contains_key(&tid);
        if fresh {
            self.windows.push(Reverse((pending.window_closes, tid)));
        }
        self.by_tid.entry(tid).or_default().push(device.clone());
        self.by_rpc.insert(rpc, device.clone());
        self.pending.insert(device.clone(), pending);
        Begun {
            superseded,
            settled: None,
        }
    }

    fn supersede(&mut self, device: &DeviceId) -> Option<Tid> {
        let old = self.forget(device)?;
        Some(old.tid)
    }

    /// Drops `device`'s outstanding command.
    fn forget(&mut self, device: &DeviceId) -> Option<Pending> {
        let old = self.pending.remove(device)?;
        if let Some(v) = self.by_tid.get_mut(&old.tid) {
            v.retain(|d| d != device);
            if v.is_empty() {
                self.by_tid.remove(&old.tid);
            }
        }
        self.by_rpc.remove(&old.rpc);
        Some(old)
    }

    /// `device`'s outstanding command, if it is `tid`.
    fn pending_for(&self, device: &DeviceId, tid: &Tid) -> Option<&Pending> {
        self.pending.get(device).filter(|p| &p.tid == tid)
    }

    /// The family members command `tid` goes to: `only` (a straggler), or all of them.
    fn addressed(&self, tid: &Tid, only: Option<&DeviceId>) -> Vec<DeviceId> {
        match only {
            Some(d) => self
                .pending_for(d, tid)
                .map(|_| vec![d.clone()])
                .unwrap_or_default(),
            None => self.by_tid.get(tid).cloned().unwrap_or_default(),
        }
    }

    /// What carries command `tid` to its family members (`only` one of them, for a straggler's
    /// retransmission): one publish per family group that carries members at once, one per
    /// other member. Empty once every member has settled.
    pub(super) fn encode(&self, tid: &Tid, only: Option<&DeviceId>) -> Vec<ReadBack> {
        let mut out = Vec::new();
        let mut carried: HashSet<(String, Vec<u8>)> = HashSet::new();
        for device in self.addressed(tid, only) {
            let (Some(p), Some(address)) = (self.pending.get(&device), self.devices.get(&device))
            else {
                continue;
            };
            let call = RpcCall {
                id: p.rpc,
                src: &self.src,
            };
            let carrier = match (only, &p.group) {
                (None, Some(g)) => self.groups.carrier(&device, g),
                _ => None,
            };
            let publish = match (&p.waiting, carrier) {
                (Waiting::Power(c), Some(carrier)) => {
                    match carrier.set_power(c.target(), &call) {
                        Ok(publish)
                            if carried.insert((publish.topic.clone(), publish.payload.clone())) =>
                        {
                            Some(ReadBack::Publish(publish))
                        }
                        // Another member's publish carries it already.
                        Ok(_) => None,
                        Err(_) => address
                            .set_power(c.target(), &call)
                            .ok()
                            .map(ReadBack::Publish),
                    }
                }
                (Waiting::Power(c), None) => address
                    .set_power(c.target(), &call)
                    .ok()
                    .map(ReadBack::Publish),
                (Waiting::State { .. }, _) => address.read_back(&call),
            };
            out.extend(publish);
        }
        out
    }

    /// The session accepted command `tid`'s transmission (to `only`, or to every family
    /// member). Returns the state topics to subscribe to again for quiet families (a retained
    /// state, read now, may confirm at once).
    pub(super) fn sent(&mut self, tid: &Tid, only: Option<&DeviceId>) -> Vec<String> {
        let mut again = Vec::new();
        for device in self.addressed(tid, only) {
            let Some(p) = self.pending.get_mut(&device) else {
                continue;
            };
            let first = !p.sent;
            p.sent = true;
            let Waiting::Power(c) = &mut p.waiting else {
                continue;
            };
            c.sent();
            let Some(address) = self.devices.get(&device) else {
                continue;
            };
            if first && address.quiet_when_unchanged() {
                if let Some(ReadBack::Resubscribe(topic)) =
                    address.read_back(&RpcCall { id: 0, src: "" })
                {
                    again.push(topic);
                }
            }
        }
        again
    }

    /// Command `tid` ended in the tracker: forget it.
    pub(super) fn finished(&mut self, tid: &Tid) {
        for device in self.by_tid.get(tid).cloned().unwrap_or_default() {
            self.forget(&device);
        }
    }

    /// `device`'s part of command `tid` ended in the tracker: forget it.
    pub(super) fn member_finished(&mut self, tid: &Tid, device: &DeviceId) {
        if self.pending_for(device, tid).is_some() {
            self.forget(device);
        }
    }
}

fn settlement(v: Verdict) -> Settlement {
    match v {
        Verdict::Confirmed(by) => Settlement::Confirmed(by),
        Verdict::Contradicted { actual_on } => Settlement::Contradicted { actual_on },
        Verdict::Failed { message } => Settlement::Failed { message },
    }
}

mod evidence;

#[cfg(test)]
mod tests;
