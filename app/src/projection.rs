//! The projection: what the client reports, turned into what the panel shows. Pure data and pure
//! functions (no browser, no signals), so it is tested natively.
//!
//! It keeps the canonical device views and the open group command's matrix, and remembers what
//! changed since the last [`Projection::take_batch`]: each event costs in proportion to what it
//! changed (one device, one command, one matrix cell), never to the size of the history or the
//! fleet.

use std::collections::{HashMap, HashSet};

use switchboard_protocol::client::ClientEvent;
use switchboard_protocol::envelope::{decode_log, decode_telemetry, Status};
use switchboard_protocol::family::confirm::ConfirmedBy;
use switchboard_protocol::family::{Address, Observation};
use switchboard_protocol::session::Message;
use switchboard_protocol::topic::Topic;
use switchboard_protocol::tracker::{
    CommandTracker, Phase, Target, Tracked, TrackerEvent, Unmatched,
};
use switchboard_protocol::{DeviceId, Tid, Timestamp};

use crate::device_view::{DeviceView, Evidence, Pending, Presence, Sample, TELEMETRY_KEEP};
use crate::view::{phase_text, target_label, CommandView, FanoutView, Notice};

/// What changed since the last batch, ready for the store.
#[derive(Debug, Default)]
pub struct Batch {
    /// Devices whose view changed, as they are now.
    pub devices: Vec<DeviceView>,
    /// Commands whose row changed, as they are now.
    pub commands: Vec<CommandView>,
    /// Commands the tracker forgot.
    pub forgotten: Vec<Tid>,
    /// The open matrix, if it changed.
    pub fanout: Option<FanoutView>,
    /// New notices.
    pub notices: Vec<Notice>,
}

/// See the [module documentation](self).
#[derive(Debug, Default)]
pub struct Projection {
    devices: HashMap<DeviceId, DeviceView>,
    /// Text commands whose answer was matched while several were outstanding.
    ambiguous: HashMap<Tid, usize>,
    /// The group command whose matrix is open.
    fanout: Option<FanoutView>,
    dirty_devices: HashSet<DeviceId>,
    dirty_commands: HashSet<Tid>,
    dirty_fanout: bool,
    forgotten: Vec<Tid>,
    notices: Vec<Notice>,
    /// Something changed that the operator waits to see (an answer, presence, a notice), not
    /// only a command's progress on the way (`sent`, `delivered`, a retry).
    urgent: bool,
}

impl Projection {
    /// An empty projection.
    pub fn new() -> Projection {
        Projection::default()
    }

    /// Takes in one client event.
    pub fn on_event(&mut self, ev: ClientEvent, tracker: &CommandTracker, now: Timestamp) {
        let on_the_way = matches!(
            &ev,
            ClientEvent::Command(TrackerEvent::Member { phase, .. }) if !phase.is_terminal()
        );
        self.urgent |= !on_the_way;
        match ev {
            ClientEvent::Command(ev) => self.on_command(ev, tracker, now),
            ClientEvent::Presence { device, status } => self.on_presence(device, status, now),
            ClientEvent::Message(m) => self.on_message(&m, now),
            ClientEvent::Discovered {
                device,
                address,
                name,
            } => {
                self.add_family_device(&device, &address);
                if let Some(v) = self.devices.get_mut(&device) {
                    v.name = name;
                }
            }
            ClientEvent::Reported {
                device,
                observation,
                retained,
            } => self.on_report(device, observation, retained, now),
            ClientEvent::Grouped { device, groups } => {
                view_mut(&mut self.devices, &device, Presence::Unknown).groups = groups;
                self.dirty_devices.insert(device);
            }
            ClientEvent::Vanished { family, key } => self.note(
                "info",
                now,
                format!("{} announcement {key} was cleared", family.label()),
            ),
            ClientEvent::Undecodable { topic, error } => {
                self.note(
                    "warning",
                    now,
                    format!("unreadable message on {topic}: {error}"),
                );
            }
            // The connection's story is the pump's to tell.
            _ => {}
        }
    }

    /// A command was just submitted: its device shows it pending at once.
    pub fn on_submitted(&mut self, tid: Tid, tracker: &CommandTracker) {
        self.dirty_commands.insert(tid);
        let Some(tr) = tracker.get(&tid) else {
            return;
        };
        match &tr.target {
            Target::Device(d) => {
                let view = view_mut(&mut self.devices, d, Presence::Unknown);
                upsert_pending(view, tr, Phase::Queued.label());
                self.dirty_devices.insert(d.clone());
            }
            Target::Group(_) => self.open_fanout(tid, tracker),
        }
    }

    /// A command came back from a snapshot after a reload.
    pub fn on_restored(&mut self, tid: Tid, tracker: &CommandTracker) {
        self.dirty_commands.insert(tid);
        let Some(tr) = tracker.get(&tid) else {
            return;
        };
        for (d, m) in &tr.members {
            if m.phase.is_terminal() {
                continue;
            }
            let view = view_mut(&mut self.devices, d, Presence::Unknown);
            upsert_pending(view, tr, m.phase.label());
            self.dirty_devices.insert(d.clone());
        }
        if matches!(tr.target, Target::Group(_)) && self.fanout.is_none() {
            self.open_fanout(tid, tracker);
        }
    }

    /// A device added by hand: shown as "presence unknown" until it says more.
    pub fn add_device(&mut self, device: &DeviceId) {
        view_mut(&mut self.devices, device, Presence::Unknown);
        self.dirty_devices.insert(device.clone());
    }

    /// A device of another family, added by name or found by discovery.
    pub fn add_family_device(&mut self, device: &DeviceId, address: &Address) {
        let view = view_mut(&mut self.devices, device, Presence::Unknown);
        view.family = address.family();
        view.unconfirmable = match address {
            Address::Homeassistant(e) => e.unconfirmable_because().map(str::to_owned),
            _ => None,
        };
        self.dirty_devices.insert(device.clone());
    }

    /// A family device reported its power or its presence.
    fn on_report(
        &mut self,
        device: DeviceId,
        observation: Observation,
        retained: bool,
        now: Timestamp,
    ) {
        let view = view_mut(&mut self.devices, &device, Presence::Unknown);
        match observation {
            Observation::Power(on) => {
                view.confirm_light(on);
                if !retained {
                    view.seen(Presence::Online, "reported", now);
                }
            }
            Observation::Presence(true) => view.seen(Presence::Online, "announced", now),
            Observation::Presence(false) => view.seen(Presence::Offline, "announced", now),
            // Its groups come as `Grouped`.
            Observation::GroupTopic(_) | Observation::Nothing => {}
        }
        self.dirty_devices.insert(device);
    }

    /// Opens `tid`'s matrix (built once; then updated cell by cell).
    pub fn open_fanout(&mut self, tid: Tid, tracker: &CommandTracker) {
        self.fanout = tracker.get(&tid).map(FanoutView::of);
        self.dirty_fanout = true;
    }

    /// The open matrix's command.
    pub fn fanout_tid(&self) -> Option<Tid> {
        self.fanout.as_ref().map(|f| f.tid)
    }

    /// A notice for the operator.
    pub fn note(&mut self, level: &'static str, at: Timestamp, text: String) {
        self.urgent = true;
        self.notices.push(Notice { at, level, text });
    }

    /// A device's canonical view.
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceView> {
        self.devices.get(id)
    }

    /// Whether anything changed since the last batch.
    pub fn is_dirty(&self) -> bool {
        !(self.dirty_devices.is_empty()
            && self.dirty_commands.is_empty()
            && !self.dirty_fanout
            && self.forgotten.is_empty()
            && self.notices.is_empty())
    }

    /// Whether what changed since the last batch is something the operator waits to see, rather
    /// than only commands' progress on the way, which can wait for the next frame.
    pub fn is_urgent(&self) -> bool {
        self.urgent
    }

    /// What changed since the last call, as the store takes it.
    pub fn take_batch(&mut self, tracker: &CommandTracker) -> Batch {
        self.urgent = false;
        let devices = self
            .dirty_devices
            .drain()
            .filter_map(|d| self.devices.get(&d).cloned())
            .collect();
        let commands = self
            .dirty_commands
            .drain()
            .filter_map(|tid| {
                let t = tracker.get(&tid)?;
                Some(CommandView::of(t, self.ambiguous.get(&tid).copied()))
            })
            .collect();
        let fanout = std::mem::take(&mut self.dirty_fanout)
            .then(|| self.fanout.clone())
            .flatten();
        Batch {
            devices,
            commands,
            forgotten: std::mem::take(&mut self.forgotten),
            fanout,
            notices: std::mem::take(&mut self.notices),
        }
    }

    fn on_presence(&mut self, device: DeviceId, status: Option<Status>, now: Timestamp) {
        match status {
            Some(s) => {
                let what = "status";
                let view = view_mut(&mut self.devices, &device, Presence::Offline);
                view.apply_status(s);
                view.evidence = Some(Evidence { what, at: now });
                self.dirty_devices.insert(device);
            }
            None => {
                if let Some(v) = self.devices.get_mut(&device) {
                    v.presence = Presence::Unknown;
                    self.dirty_devices.insert(device);
                }
            }
        }
    }

    fn on_message(&mut self, m: &Message, now: Timestamp) {
        match Topic::parse(&m.topic) {
            Some(Topic::Telemetry(d)) => match decode_telemetry(&m.payload) {
                Ok(s) => {
                    if let Some(v) = self.devices.get_mut(&d) {
                        v.telemetry.push_back(Sample {
                            at: s.at.as_millis(),
                            value: s.temperature,
                        });
                        while v.telemetry.len() > TELEMETRY_KEEP {
                            v.telemetry.pop_front();
                        }
                        v.telemetry_interval_ms = Some(s.interval_ms);
                        self.dirty_devices.insert(d);
                    }
                }
                Err(e) => self.note("warning", now, format!("telemetry from {d}: {e}")),
            },
            Some(Topic::Log(d)) => match decode_log(&m.payload) {
                Ok(l) => {
                    view_mut(&mut self.devices, &d, Presence::Unknown).log = Some(l.lines);
                    self.dirty_devices.insert(d);
                }
                Err(e) => self.note("warning", now, format!("log from {d}: {e}")),
            },
            _ => self.note(
                "warning",
                now,
                format!("message on an unexpected topic {}", m.topic),
            ),
        }
    }

    fn on_command(&mut self, ev: TrackerEvent, tracker: &CommandTracker, now: Timestamp) {
        match ev {
            TrackerEvent::Member { tid, device, phase }
            | TrackerEvent::Late { tid, device, phase } => {
                self.dirty_commands.insert(tid);
                let Some(tr) = tracker.get(&tid) else {
                    return;
                };
                self.on_member(tr, &device, &phase, now);
                if let Some(f) = self.fanout.as_mut().filter(|f| f.tid == tid) {
                    if !f.update(&device, &phase, tr) {
                        *f = FanoutView::of(tr);
                    }
                    self.dirty_fanout = true;
                }
            }
            TrackerEvent::Finished { tid, .. } => {
                self.dirty_commands.insert(tid);
            }
            TrackerEvent::Forgotten { tid } => {
                self.dirty_commands.remove(&tid);
                self.ambiguous.remove(&tid);
                self.forgotten.push(tid);
            }
            TrackerEvent::Ambiguous {
                tid,
                device,
                outstanding,
            } => {
                self.ambiguous.insert(tid, outstanding);
                self.dirty_commands.insert(tid);
                self.note(
                    "warning",
                    now,
                    format!("{device} answered in text with {outstanding} text commands outstanding: matched to the oldest"),
                );
            }
            TrackerEvent::Unmatched { device, why } => {
                let why = match why {
                    Unmatched::UnknownTid(tid) => format!("unknown TID {tid}"),
                    Unmatched::WrongDevice { tid, target } => {
                        format!("command {tid} was for {}", target_label(&target))
                    }
                    Unmatched::DeviceMismatch { claimed } => {
                        format!("it claims to come from {claimed}")
                    }
                    Unmatched::NoTextCommand => {
                        "a text answer with no text command outstanding".to_owned()
                    }
                    other => format!("{other:?}"),
                };
                self.note(
                    "warning",
                    now,
                    format!("answer from {device} matches no command: {why}"),
                );
            }
            TrackerEvent::Malformed { device, error } => {
                self.note(
                    "error",
                    now,
                    format!("malformed message from {device}: {error}"),
                );
            }
            TrackerEvent::SendFailed { tid, error } => {
                self.dirty_commands.insert(tid);
                self.note(
                    "warning",
                    now,
                    format!("command {tid} not sent yet: {error}"),
                );
            }
            _ => {}
        }
    }

    /// One member of `tr` moved to `phase`: its device's card follows.
    fn on_member(&mut self, tr: &Tracked, device: &DeviceId, phase: &Phase, now: Timestamp) {
        let view = view_mut(&mut self.devices, device, Presence::Unknown);
        if phase.is_terminal() {
            view.pending.retain(|p| p.tid != tr.tid);
            let m = tr.members.get(device);
            let response = m.and_then(|m| m.response.as_ref());
            // An answer (or a live report that confirmed it) is the device reaching us now.
            let answered = response.is_some()
                || matches!(phase, Phase::Contradicted { .. })
                || m.and_then(|m| m.confirmed_by)
                    .is_some_and(|by| by != ConfirmedBy::RetainedState);
            if answered && !m.is_some_and(|m| m.late) {
                view.seen(Presence::Online, "answered", now);
            }
            if let Some(state) = response.and_then(|r| r.state.clone()) {
                view.state = Some(state);
            } else if *phase == Phase::Succeeded {
                // Success is the device's confirmation, even in text.
                if let Some(on) = light_asked(tr) {
                    view.confirm_light(on);
                }
            }
            let error = response.and_then(|r| r.error.as_deref());
            view.last_outcome = Some((
                format!("{}: {}", tr.cmd, phase_text(phase, error)),
                *phase == Phase::Succeeded,
            ));
        } else {
            upsert_pending(view, tr, phase.label());
        }
        self.dirty_devices.insert(device.clone());
    }
}

/// A device's canonical view, created with `presence` if the device is new.
fn view_mut<'a>(
    devices: &'a mut HashMap<DeviceId, DeviceView>,
    d: &DeviceId,
    presence: Presence,
) -> &'a mut DeviceView {
    devices
        .entry(d.clone())
        .or_insert_with(|| DeviceView::new(d.clone(), presence))
}

/// Shows command `tr` as pending on `view`, in phase `label`.
fn upsert_pending(view: &mut DeviceView, tr: &Tracked, label: &str) {
    match view.pending.iter_mut().find(|p| p.tid == tr.tid) {
        Some(p) => label.clone_into(&mut p.phase),
        None => view.pending.push(Pending {
            tid: tr.tid,
            cmd: tr.cmd.clone(),
            light: light_asked(tr),
            phase: label.to_owned(),
        }),
    }
}

/// For a `light` command (JSON or the document's text), the state it asks for.
fn light_asked(t: &Tracked) -> Option<bool> {
    match (&t.request, t.text.as_deref()) {
        (Some(r), _) if t.cmd == "light" => r.args.get("on").and_then(serde_json::Value::as_bool),
        (None, Some(text)) if t.cmd.eq_ignore_ascii_case("light") => text
            .split_once(':')
            .and_then(|(_, arg)| switchboard_protocol::command::parse_switch(arg)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "projection_tests.rs"]
mod tests;
