//! The panel's handle on the broker: the actions the components call. Behind it, the [`pump`]
//! moves the protocol's client, the socket and the projection along; the components see only the
//! read-only [`Store`].
//!
//! [`pump`]: crate::pump

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use switchboard_protocol::command::Command;
use switchboard_protocol::family::{Address, Family};
use switchboard_protocol::tracker::{SendOptions, Target};
use switchboard_protocol::{DeviceId, GroupId, Tid};

use crate::clock::now;
use crate::export;
use crate::pump::{self, action, Pump, DEADLINE};
use crate::settings::Settings;
use crate::store::{Store, StoreWriter};

/// The panel's handle on the broker. `Copy`; get it with `expect_context::<Link>()`.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pump: StoredValue<Rc<RefCell<Pump>>, LocalStorage>,
    /// What the panel draws from.
    pub store: Store,
}

impl Link {
    /// A link with no connection yet; restores the commands a reload left unfinished.
    pub fn new() -> Link {
        let writer = StoreWriter::new();
        let store = writer.store();
        let pump = Pump::new(writer);
        let link = Link {
            pump: StoredValue::new_local(pump),
            store,
        };
        link.input(|p, t| p.restore(t));
        link
    }

    /// Runs an operator's action through the pump and draws its effect at once (a press shows
    /// its pending state in the same frame); what the broker sends back is drawn frame by frame.
    fn input<R>(&self, f: impl FnOnce(&mut Pump, switchboard_protocol::Timestamp) -> R) -> R {
        action(&self.pump.get_value(), f)
    }

    /// Connects with `settings` (closing any current connection), remembering them.
    pub fn connect(&self, settings: Settings) {
        settings.save();
        self.input(|p, t| p.connect(settings, t));
    }

    /// Connects again with a client id of this tab's own, newly drawn (after another tab or
    /// client took this one's session).
    pub fn connect_with_fresh_id(&self) {
        self.input(|p, t| p.connect_with_fresh_id(t));
    }

    /// Closes the connection and stops reconnecting.
    pub fn disconnect(&self) {
        self.input(|p, t| p.client.disconnect(t));
    }

    /// Sends `command` to a device or a group; returns its TID. A group command opens its matrix.
    pub fn send(&self, target: Target, command: &Command) -> Tid {
        self.input(|p, t| {
            let tid = p.client.submit(target, command, SendOptions::default(), t);
            p.projection.on_submitted(tid, p.client.tracker());
            tid
        })
    }

    /// Sends a plain-text command (the pattern document's form) to one device.
    pub fn send_text(&self, device: DeviceId, text: &str) -> Tid {
        self.input(|p, t| {
            let tid = p
                .client
                .submit_text(device, text, SendOptions::default(), t);
            p.projection.on_submitted(tid, p.client.tracker());
            tid
        })
    }

    /// Gives the members of a command that timed out another deadline.
    pub fn retry_stragglers(&self, tid: Tid) -> usize {
        self.input(|p, t| p.client.retry_stragglers(tid, DEADLINE, t))
    }

    /// Adds a device that does not announce itself, shown as "presence unknown".
    pub fn add_device(&self, device: DeviceId) {
        self.input(|p, _| p.projection.add_device(&device));
    }

    /// Adds a device of another family by its own name (a Tasmota topic, a Shelly prefix, a
    /// Zigbee2MQTT friendly name, an ESPHome `node.switch`): its topics are followed from now
    /// on. Returns the id it goes by, or why it cannot be added.
    pub fn add_family_device(&self, family: Family, name: &str) -> Result<DeviceId, String> {
        let Some(address) = Address::by_name(family, name) else {
            return Err(match family {
                Family::Homeassistant => {
                    "Home Assistant entities are found by their discovery config".to_owned()
                }
                Family::Esphome => {
                    format!("{name:?}: give the node and the switch, as node.switch")
                }
                _ => format!("{name:?} cannot be a {} name", family.label()),
            });
        };
        self.input(|p, t| {
            let id = p
                .client
                .add_device(address.clone(), t)
                .map_err(|e| e.to_string())?;
            p.projection.add_family_device(&id, &address);
            Ok(id)
        })
    }

    /// Puts a device of another family in the groups named in `names` (comma separated; empty:
    /// none), besides the groups its family keeps. Returns why not, for names that cannot be
    /// groups.
    pub fn assign_groups(&self, device: &DeviceId, names: &str) -> Result<(), String> {
        let groups = names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| GroupId::new(n).map_err(|e| format!("{n:?}: {e}")))
            .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
        self.input(|p, _| {
            p.client.assign_groups(device, groups);
        });
        Ok(())
    }

    /// Opens a device's details (or closes them with `None`).
    pub fn select(&self, device: Option<DeviceId>) {
        self.input(|p, t| p.select(device, t));
    }

    /// Opens a group command's matrix.
    pub fn open_fanout(&self, tid: Tid) {
        self.input(|p, _| p.projection.open_fanout(tid, p.client.tracker()));
    }

    /// Every command still kept, as JSON (an array of the tracker's records).
    pub fn export_json(&self) -> String {
        self.pump
            .with_value(|p| export::json(p.borrow().client.tracker()))
    }

    /// Every command still kept, one CSV row per device and command.
    pub fn export_csv(&self) -> String {
        self.pump
            .with_value(|p| export::csv(p.borrow().client.tracker()))
    }

    /// Saves unfinished commands now (the page is going away).
    pub fn save_now(&self) {
        self.pump.with_value(|p| p.borrow_mut().save(now()));
    }

    /// Writes what changed into the store's signals now.
    pub fn flush(&self) {
        pump::flush(&self.pump.get_value());
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}
