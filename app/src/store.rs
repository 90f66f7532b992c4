//! What the panel shows, as reactive signals. Only [`crate::link`] writes them; components read
//! them and call the link's actions.
//!
//! Each device and each command has its own signal, so an answer redraws one card and one row, not
//! the fleet; lists hold ids only.

use std::collections::{BTreeMap, HashMap, VecDeque};

use leptos::prelude::*;
use switchboard_protocol::envelope::{DeviceState, Status};
use switchboard_protocol::{DeviceId, GroupId, Tid, Timestamp};

use crate::view::{CommandView, FanoutView};

/// How many telemetry samples a device keeps for its chart.
pub const TELEMETRY_KEEP: usize = 60;
/// How many notices are kept.
pub const NOTICES_KEEP: usize = 200;

/// The connection to the broker, for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conn {
    /// Not connected and not trying.
    Offline,
    /// Opening the socket or waiting for the broker's answer.
    Connecting,
    /// Connected, speaking this protocol version.
    Online {
        /// `5` or `3.1.1`.
        version: &'static str,
    },
    /// Lost; the next attempt is at this time.
    Reconnecting {
        /// When.
        at: Timestamp,
    },
}

/// What presence says about a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// It announced itself and is connected.
    Online,
    /// Its last will (or its own goodbye) says it is gone.
    Offline,
    /// It never announced itself (added by id).
    Unknown,
}

impl Presence {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Offline => "offline",
            Presence::Unknown => "presence unknown",
        }
    }
}

/// A command to a device that has not finished yet, as its card shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The command.
    pub tid: Tid,
    /// Its name.
    pub cmd: String,
    /// For `light`: the state asked for.
    pub light: Option<bool>,
    /// Its phase label (`queued`, `sent`, `delivered`, `retrying 2`).
    pub phase: String,
}

/// One telemetry sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When the device took it (device clock, ms).
    pub at: u64,
    /// The value drawn.
    pub value: f64,
}

/// Everything the panel knows about one device.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceView {
    /// Its id.
    pub id: DeviceId,
    /// Presence.
    pub presence: Presence,
    /// Groups it subscribes to.
    pub groups: Vec<GroupId>,
    /// Commands it says it understands.
    pub capabilities: Vec<String>,
    /// Last state it reported (status or an answer), if any.
    pub state: Option<DeviceState>,
    /// The light as a device that reports no state (the document's text devices) last confirmed
    /// it, by succeeding at a light command.
    pub light_confirmed: Option<bool>,
    /// Its unfinished commands.
    pub pending: Vec<Pending>,
    /// The outcome of its last finished command, for a person.
    pub last_outcome: Option<(String, bool)>,
    /// Latest telemetry samples, oldest first.
    pub telemetry: VecDeque<Sample>,
    /// Telemetry period the samples say the device uses.
    pub telemetry_interval_ms: Option<u64>,
    /// Latest log lines published on its log topic.
    pub log: Option<Vec<String>>,
}

impl DeviceView {
    /// A device the panel has heard nothing from yet.
    pub fn new(id: DeviceId, presence: Presence) -> Self {
        DeviceView {
            id,
            presence,
            groups: Vec::new(),
            capabilities: Vec::new(),
            state: None,
            light_confirmed: None,
            pending: Vec::new(),
            last_outcome: None,
            telemetry: VecDeque::new(),
            telemetry_interval_ms: None,
            log: None,
        }
    }

    /// Takes in a retained status.
    pub fn apply_status(&mut self, s: Status) {
        self.presence = if s.online {
            Presence::Online
        } else {
            Presence::Offline
        };
        if s.online || !s.groups.is_empty() {
            self.groups = s.groups;
        }
        if !s.capabilities.is_empty() {
            self.capabilities = s.capabilities;
        }
        if s.state.is_some() {
            self.state = s.state;
        }
    }

    /// The light as confirmed by the device.
    pub fn light(&self) -> bool {
        match &self.state {
            Some(s) => s.light,
            None => self.light_confirmed.unwrap_or(false),
        }
    }

    /// The device confirmed a light command asking for `on`, without saying its state.
    pub fn confirm_light(&mut self, on: bool) {
        match &mut self.state {
            Some(s) => s.light = on,
            None => self.light_confirmed = Some(on),
        }
    }

    /// The light state an unfinished command asks for, if any.
    pub fn pending_light(&self) -> Option<bool> {
        self.pending.iter().rev().find_map(|p| p.light)
    }

    /// Whether a filter (a name part or a group) selects this device.
    pub fn matches(&self, filter: &str) -> bool {
        let f = filter.trim();
        f.is_empty()
            || self.id.as_str().contains(f)
            || self.groups.iter().any(|g| g.as_str().contains(f))
    }
}

/// One line of the notices panel: answers that match nothing, malformed payloads, errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// When (browser clock).
    pub at: Timestamp,
    /// `error`, `warning` or `info`.
    pub level: &'static str,
    /// What happened, for a person.
    pub text: String,
}

/// Every signal the panel draws from. `Copy`: pass it around freely.
#[derive(Clone, Copy, Debug)]
pub struct Store {
    /// The connection.
    pub conn: RwSignal<Conn>,
    /// The last connection error, for a person (wrong URL, refused credentials, closed socket).
    pub conn_error: RwSignal<Option<String>>,
    /// Device ids, sorted.
    pub device_ids: RwSignal<Vec<DeviceId>>,
    devices: StoredValue<HashMap<DeviceId, RwSignal<DeviceView>>>,
    /// Known groups with their member counts.
    pub groups: RwSignal<BTreeMap<GroupId, usize>>,
    /// Commands, oldest first.
    pub history: RwSignal<Vec<Tid>>,
    commands: StoredValue<HashMap<Tid, RwSignal<CommandView>>>,
    /// Notices, oldest first.
    pub notices: RwSignal<VecDeque<Notice>>,
    /// The device whose details are open.
    pub selected: RwSignal<Option<DeviceId>>,
    /// The group command whose matrix is open.
    pub fanout: RwSignal<Option<Tid>>,
    /// Its matrix.
    pub fanout_view: RwSignal<Option<FanoutView>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store {
            conn: RwSignal::new(Conn::Offline),
            conn_error: RwSignal::new(None),
            device_ids: RwSignal::new(Vec::new()),
            devices: StoredValue::new(HashMap::new()),
            groups: RwSignal::new(BTreeMap::new()),
            history: RwSignal::new(Vec::new()),
            commands: StoredValue::new(HashMap::new()),
            notices: RwSignal::new(VecDeque::new()),
            selected: RwSignal::new(None),
            fanout: RwSignal::new(None),
            fanout_view: RwSignal::new(None),
        }
    }

    /// A device's signal.
    pub fn device(&self, id: &DeviceId) -> Option<RwSignal<DeviceView>> {
        self.devices.with_value(|m| m.get(id).copied())
    }

    /// Shows devices' latest views. New devices get a signal and join the sorted list in one
    /// update (a fan-out can bring thousands at once); groups are recounted when membership
    /// changed.
    pub fn put_devices(&self, views: Vec<DeviceView>) {
        let mut regroup = false;
        let mut added = Vec::new();
        for d in views {
            match self.device(&d.id) {
                Some(s) => {
                    regroup |= s.with_untracked(|old| old.groups != d.groups);
                    s.set(d);
                }
                None => {
                    regroup |= !d.groups.is_empty();
                    let id = d.id.clone();
                    self.devices.update_value(|m| {
                        m.insert(id.clone(), RwSignal::new(d));
                    });
                    added.push(id);
                }
            }
        }
        if !added.is_empty() {
            self.device_ids.update(|v| {
                v.extend(added);
                v.sort_by(|a, b| natural(a.as_str(), b.as_str()));
            });
        }
        if regroup {
            self.recount_groups();
        }
    }

    /// Recounts group membership from the devices' views.
    fn recount_groups(&self) {
        let mut counts: BTreeMap<GroupId, usize> = BTreeMap::new();
        self.devices.with_value(|m| {
            for s in m.values() {
                s.with_untracked(|d| {
                    for g in &d.groups {
                        *counts.entry(g.clone()).or_default() += 1;
                    }
                });
            }
        });
        if self.groups.with_untracked(|g| *g != counts) {
            self.groups.set(counts);
        }
    }

    /// A command's signal.
    pub fn command(&self, tid: &Tid) -> Option<RwSignal<CommandView>> {
        self.commands.with_value(|m| m.get(tid).copied())
    }

    /// Shows a command's latest state, listing it if it is new.
    pub fn put_command(&self, t: CommandView) {
        if let Some(s) = self.command(&t.tid) {
            s.set(t);
            return;
        }
        let tid = t.tid;
        let s = RwSignal::new(t);
        self.commands.update_value(|m| {
            m.insert(tid, s);
        });
        self.history.update(|h| h.push(tid));
    }

    /// Adds a notice, forgetting the oldest beyond [`NOTICES_KEEP`].
    pub fn notice(&self, level: &'static str, at: Timestamp, text: String) {
        self.notices.update(|n| {
            n.push_back(Notice { at, level, text });
            while n.len() > NOTICES_KEEP {
                n.pop_front();
            }
        });
    }
}

/// Orders ids as a person would: `device2` before `device10`.
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head, tail.parse().ok())
    }
    let (ha, na) = split(a);
    let (hb, nb) = split(b);
    ha.cmp(hb).then(na.cmp(&nb)).then(a.cmp(b))
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}
