//! How a device of each family behaves on the wire, as its documentation describes: what it
//! subscribes to, what it announces when it connects (presence, retained state, discovery), its
//! Last Will, and what it publishes when a command arrives or its state changes locally (a button,
//! another controller). Pure logic: the simulator and the scenario tests drive it over real MQTT.
//!
//! Shared by every family: the relay itself ([`relay::Relay`]), where every command takes effect;
//! each family only differs in its codec (one file each: `tasmota.rs`, `shelly.rs`,
//! `zigbee2mqtt.rs`, `esphome.rs`, `homeassistant.rs`). Where a family's own behaviour is a rule (ESPHome's switch publishes nothing when a
//! command changes nothing; Tasmota answers on `RESULT` and on `POWER`), the firmware keeps it.

use serde_json::{json, Value};

mod announce;
mod esphome;
mod homeassistant;
pub mod relay;
mod shelly;
mod tasmota;
mod zigbee2mqtt;

use super::esphome::Component;
use super::tasmota::Prefix;
use super::Address;
use announce::{
    esphome_discovery, esphome_discovery_topic, homeassistant_discovery,
    homeassistant_discovery_topic, tasmota_discovery, tasmota_discovery_topic,
};
use esphome::component;
use relay::{Relay, Switch};

use crate::error::DecodeError;

/// Tasmota's default GroupTopic.
pub const DEFAULT_GROUP_TOPIC: &str = "tasmotas";
use crate::session::{Publish, QoS, Will};
pub use announce::{zigbee2mqtt_bridge_devices, zigbee2mqtt_bridge_groups};

/// One simulated device of a family: see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Firmware {
    address: Address,
    relay: Relay,
    /// The groups the family keeps for it: a Tasmota device's GroupTopic (`tasmotas` by
    /// default), the Zigbee2MQTT groups it is a member of.
    groups: Vec<String>,
}

/// What a message did to a device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// What it publishes in answer.
    pub publishes: Vec<Publish>,
    /// Whether the relay switched.
    pub switched: bool,
}

impl Firmware {
    /// A device at `address` whose relay starts `on`.
    pub fn new(address: Address, on: bool) -> Self {
        let groups = match &address {
            Address::Tasmota(_) => vec![DEFAULT_GROUP_TOPIC.to_owned()],
            _ => Vec::new(),
        };
        Firmware {
            address,
            relay: Relay::new(on),
            groups,
        }
    }

    /// Puts the device in the groups its family keeps: the first is a Tasmota device's
    /// GroupTopic (in place of `tasmotas`), every one a Zigbee2MQTT group it is a member of.
    /// Other families keep no groups and ignore them. No groups keeps the default.
    pub fn in_groups(mut self, groups: Vec<String>) -> Self {
        match &self.address {
            Address::Tasmota(_) if !groups.is_empty() => self.groups = groups[..1].to_vec(),
            Address::Zigbee2mqtt(_) => self.groups = groups,
            _ => {}
        }
        self
    }

    /// Locks the relay: commands are answered as usual but change nothing (Tasmota's
    /// `PowerLock`; a relay that another system holds). A locked Shelly answers with an error.
    pub fn lock(&mut self, locked: bool) {
        self.relay.hold(locked);
    }

    /// Where it lives.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Whether its relay is on.
    pub fn is_on(&self) -> bool {
        self.relay.is_on()
    }

    /// The filters it subscribes to.
    pub fn subscriptions(&self) -> Vec<String> {
        match &self.address {
            Address::Tasmota(t) => std::iter::once(t.topic_for(Prefix::Command, "#"))
                .chain(
                    self.groups
                        .iter()
                        .map(|g| t.through_group(g).topic_for(Prefix::Command, "#")),
                )
                .collect(),
            Address::Shelly(s) => vec![format!("{}/rpc", s.prefix)],
            Address::Zigbee2mqtt(z) => [
                format!("{}/{}/set", z.base, z.name),
                format!("{}/{}/get", z.base, z.name),
            ]
            .into_iter()
            .chain(self.groups.iter().map(|g| format!("{}/{g}/set", z.base)))
            .collect(),
            Address::Esphome(e) => vec![format!(
                "{}/{}/{}/command",
                e.prefix,
                component(e),
                e.object_id
            )],
            Address::Homeassistant(h) => h.command_topic.iter().cloned().collect(),
        }
    }

    /// Its Last Will: presence offline, retained.
    pub fn will(&self) -> Option<Will> {
        let (topic, payload) = match &self.address {
            Address::Tasmota(t) => (t.topic_for(Prefix::Telemetry, "LWT"), t.lwt[0].clone()),
            Address::Shelly(s) => (format!("{}/online", s.prefix), "false".to_owned()),
            Address::Zigbee2mqtt(z) => (
                format!("{}/{}/availability", z.base, z.name),
                r#"{"state":"offline"}"#.to_owned(),
            ),
            Address::Esphome(e) => (format!("{}/status", e.prefix), "offline".to_owned()),
            Address::Homeassistant(h) => {
                let a = h.availability.first()?;
                (a.topic.clone(), a.not_available.clone())
            }
        };
        Some(Will {
            topic,
            payload: payload.into_bytes(),
            qos: QoS::AtLeastOnce,
            retain: true,
        })
    }

    /// What it publishes once connected: presence online, its state, its discovery config.
    pub fn on_connect(&self) -> Vec<Publish> {
        let mut out = Vec::new();
        match &self.address {
            Address::Tasmota(t) => {
                out.push(retained(
                    t.topic_for(Prefix::Telemetry, "LWT"),
                    t.lwt[1].clone(),
                ));
                out.push(retained(
                    tasmota_discovery_topic(t),
                    tasmota_discovery(t).to_string(),
                ));
                out.push(plain(
                    t.topic_for(Prefix::Telemetry, "INFO1"),
                    self.tasmota_info(),
                ));
                out.push(plain(
                    t.topic_for(Prefix::Telemetry, "STATE"),
                    self.tasmota_state(t).to_string(),
                ));
            }
            Address::Shelly(s) => {
                out.push(retained(format!("{}/online", s.prefix), "true".to_owned()));
                out.push(plain(
                    format!("{}/status/switch:{}", s.prefix, s.switch),
                    self.shelly_status(s).to_string(),
                ));
            }
            Address::Zigbee2mqtt(z) => {
                out.push(retained(
                    format!("{}/{}/availability", z.base, z.name),
                    r#"{"state":"online"}"#.to_owned(),
                ));
                out.push(plain(
                    format!("{}/{}", z.base, z.name),
                    self.zigbee_state().to_string(),
                ));
            }
            Address::Esphome(e) => {
                out.push(retained(
                    format!("{}/status", e.prefix),
                    "online".to_owned(),
                ));
                out.push(retained(
                    esphome_discovery_topic(e),
                    esphome_discovery(e).to_string(),
                ));
                out.push(self.esphome_state(e));
            }
            Address::Homeassistant(h) => {
                if let Some(a) = h.availability.first() {
                    out.push(retained(a.topic.clone(), a.available.clone()));
                }
                out.push(retained(
                    homeassistant_discovery_topic(h),
                    homeassistant_discovery(h).to_string(),
                ));
                out.extend(self.homeassistant_state(h));
            }
        }
        out
    }

    /// Its relay switched by itself (a button, another controller): what it reports.
    pub fn set_locally(&mut self, on: bool) -> Vec<Publish> {
        let changed = self.relay.set_locally(on);
        self.report(changed, None)
    }

    /// A message arrived on one of its [`Firmware::subscriptions`].
    pub fn handle(&mut self, topic: &str, payload: &[u8]) -> Result<Handled, DecodeError> {
        let address = self.address.clone();
        match &address {
            Address::Tasmota(t) => self.tasmota(t, topic, payload),
            Address::Shelly(s) => self.shelly(s, payload),
            Address::Zigbee2mqtt(z) => self.zigbee(z, topic, payload),
            Address::Esphome(e) => self.esphome(e, payload),
            Address::Homeassistant(h) => self.homeassistant(h, payload),
        }
    }

    /// Applies `asked` (`None`: a query) and reports as the family does.
    fn apply(&mut self, asked: Option<Switch>, rpc: Option<(&Value, &str)>) -> Handled {
        let before = self.relay.is_on();
        if let (true, Some(_), Address::Shelly(s), Some((id, src))) =
            (self.relay.is_held(), asked, &self.address, rpc)
        {
            return Handled {
                publishes: vec![plain(
                    format!("{src}/rpc"),
                    json!({"id": id, "src": s.prefix, "dst": src,
                        "error": {"code": -108, "message": "Output is locked"}})
                    .to_string(),
                )],
                switched: false,
            };
        }
        let switched = asked.is_some_and(|a| self.relay.apply(a));
        let publishes = match asked {
            Some(_) => self.report(switched, rpc.map(|(id, src)| (id, src, Some(before)))),
            None => self.report_query(rpc),
        };
        Handled {
            publishes,
            switched,
        }
    }

    /// What the family publishes after a command or a local change.
    fn report(&self, changed: bool, rpc: Option<(&Value, &str, Option<bool>)>) -> Vec<Publish> {
        match &self.address {
            Address::Tasmota(t) => self.tasmota_power(t),
            Address::Shelly(s) => {
                let mut out = Vec::new();
                if let Some((id, src, was_on)) = rpc {
                    out.push(plain(
                        format!("{src}/rpc"),
                        json!({"id": id, "src": s.prefix, "dst": src, "result": {"was_on": was_on}}).to_string(),
                    ));
                }
                if changed {
                    out.push(plain(
                        format!("{}/events/rpc", s.prefix),
                        json!({
                            "src": s.prefix,
                            "dst": format!("{}/events", s.prefix),
                            "method": "NotifyStatus",
                            "params": {format!("switch:{}", s.switch): {"id": s.switch, "output": self.relay.is_on()}}
                        })
                        .to_string(),
                    ));
                    out.push(plain(
                        format!("{}/status/switch:{}", s.prefix, s.switch),
                        self.shelly_status(s).to_string(),
                    ));
                }
                out
            }
            Address::Zigbee2mqtt(z) => vec![plain(
                format!("{}/{}", z.base, z.name),
                self.zigbee_state().to_string(),
            )],
            // A switch deduplicates its state; a light publishes after every command.
            Address::Esphome(e) if e.component == Component::Switch && !changed => Vec::new(),
            Address::Esphome(e) => vec![self.esphome_state(e)],
            // Like ha-mqtt-discoverable: an unchanged state is not written again.
            Address::Homeassistant(_) if !changed => Vec::new(),
            Address::Homeassistant(h) => self.homeassistant_state(h),
        }
    }

    /// What the family publishes when asked for its state.
    fn report_query(&self, rpc: Option<(&Value, &str)>) -> Vec<Publish> {
        match &self.address {
            Address::Shelly(s) => match rpc {
                Some((id, src)) => vec![plain(
                    format!("{src}/rpc"),
                    json!({"id": id, "src": s.prefix, "dst": src, "result": self.shelly_status(s)})
                        .to_string(),
                )],
                None => Vec::new(),
            },
            _ => self.report(true, None),
        }
    }
}

fn plain(topic: String, payload: String) -> Publish {
    Publish::new(topic, payload, QoS::AtLeastOnce)
}

fn retained(topic: String, payload: String) -> Publish {
    let mut p = plain(topic, payload);
    p.retain = true;
    p
}
