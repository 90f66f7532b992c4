//! What the panel knows about one device, as plain data: the canonical copy lives in the
//! projection, and the store's signal for the device gets a copy when it changes.

use std::collections::VecDeque;

use switchboard_protocol::envelope::{DeviceState, Status};
use switchboard_protocol::family::Family;
use switchboard_protocol::{DeviceId, GroupId, Tid, Timestamp};

/// How many telemetry samples a device keeps for its chart.
pub const TELEMETRY_KEEP: usize = 60;

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

/// What the panel's idea of a device's presence rests on, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// What was seen: `status` (its retained status), `answered` (a command), `reported` (its
    /// state), `announced` (its family's presence message).
    pub what: &'static str,
    /// When the panel saw it.
    pub at: Timestamp,
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
    /// The dialect it speaks.
    pub family: Family,
    /// Why its state can never be confirmed (an optimistic Home Assistant entity), if so.
    pub unconfirmable: Option<String>,
    /// Its name for a person, when its announcement gives one.
    pub name: Option<String>,
    /// Presence.
    pub presence: Presence,
    /// What presence rests on.
    pub evidence: Option<Evidence>,
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
            family: Family::Switchboard,
            unconfirmable: None,
            name: None,
            presence,
            evidence: None,
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

    /// Sets presence from `evidence` seen at `at`. An answer or a state report is the newest
    /// evidence there is: the device is reachable, whatever an older retained status said.
    pub fn seen(&mut self, presence: Presence, what: &'static str, at: Timestamp) {
        self.presence = presence;
        self.evidence = Some(Evidence { what, at });
    }

    /// Which commands its card and details offer: every command for Switchboard's own devices,
    /// the light and reading its state for the other families.
    pub fn offers(&self, command: &str) -> bool {
        match self.family {
            Family::Switchboard | Family::Text => true,
            _ => matches!(command, "light" | "get_state"),
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
