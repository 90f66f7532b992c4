//! How a device of each family behaves on the wire, as its documentation describes: what it
//! subscribes to, what it announces when it connects (presence, retained state, discovery), its
//! Last Will, and what it publishes when a command arrives or its state changes locally (a button,
//! another controller). Pure logic: the simulator and the scenario tests drive it over real MQTT.
//!
//! Shared by every family: the relay itself ([`Firmware::is_on`]); each family only differs in its
//! codec. Where a family's own behaviour is a rule (ESPHome's switch publishes nothing when a
//! command changes nothing; Tasmota answers on `RESULT` and on `POWER`), the firmware keeps it.

use serde_json::{json, Value};

mod announce;

use super::esphome::{Component, Esphome};
use super::homeassistant::{Entity, Kind};
use super::shelly::Shelly;
use super::tasmota::{Prefix, Tasmota};
use super::zigbee2mqtt::Zigbee2mqtt;
use super::{json as parse_json, on_off, text, Address};
use announce::{
    esphome_discovery, esphome_discovery_topic, homeassistant_discovery,
    homeassistant_discovery_topic, tasmota_discovery, tasmota_discovery_topic,
};

use crate::error::DecodeError;

/// Tasmota's default GroupTopic.
pub const DEFAULT_GROUP_TOPIC: &str = "tasmotas";
use crate::session::{Publish, QoS, Will};
pub use announce::{zigbee2mqtt_bridge_devices, zigbee2mqtt_bridge_groups};

/// One simulated device of a family: see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Firmware {
    address: Address,
    on: bool,
    locked: bool,
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
            on,
            locked: false,
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
        self.locked = locked;
    }

    /// Where it lives.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Whether its relay is on.
    pub fn is_on(&self) -> bool {
        self.on
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
        let changed = self.on != on;
        self.on = on;
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
        let before = self.on;
        if let (true, Some(_), Address::Shelly(s), Some((id, src))) =
            (self.locked, asked, &self.address, rpc)
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
        let asked_now = asked.filter(|_| !self.locked);
        match asked_now {
            Some(Switch::On) => self.on = true,
            Some(Switch::Off) => self.on = false,
            Some(Switch::Toggle) => self.on = !self.on,
            None => {}
        }
        let switched = before != self.on;
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
                            "params": {format!("switch:{}", s.switch): {"id": s.switch, "output": self.on}}
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

    fn tasmota(
        &mut self,
        t: &Tasmota,
        topic: &str,
        payload: &[u8],
    ) -> Result<Handled, DecodeError> {
        let prefix = t.topic_for(Prefix::Command, "");
        let command = topic
            .strip_prefix(&prefix)
            .or_else(|| {
                self.groups.iter().find_map(|g| {
                    topic.strip_prefix(&t.through_group(g).topic_for(Prefix::Command, ""))
                })
            })
            .unwrap_or_default();
        let arg = text("tasmota", payload)?;
        let key = t.power_key();
        let is_power = command.eq_ignore_ascii_case(&key)
            || (t.relay <= 1
                && (command.eq_ignore_ascii_case("POWER")
                    || command.eq_ignore_ascii_case("POWER1")));
        if is_power {
            let asked = match arg {
                "" | "?" => None,
                a => Some(
                    Switch::parse_tasmota(a).ok_or_else(|| DecodeError::Foreign {
                        family: "tasmota",
                        detail: format!("{a:?} is not a POWER argument"),
                    })?,
                ),
            };
            return Ok(self.apply(asked, None));
        }
        if command.eq_ignore_ascii_case("STATUS") && arg == "1" {
            return Ok(Handled {
                publishes: vec![plain(
                    t.topic_for(Prefix::Status, "STATUS1"),
                    self.tasmota_parameters(),
                )],
                switched: false,
            });
        }
        if command.eq_ignore_ascii_case("STATE") {
            return Ok(Handled {
                publishes: vec![plain(
                    t.topic_for(Prefix::Status, "RESULT"),
                    self.tasmota_state(t).to_string(),
                )],
                switched: false,
            });
        }
        // Tasmota's answer to a command it does not know.
        Ok(Handled {
            publishes: vec![plain(
                t.topic_for(Prefix::Status, "RESULT"),
                r#"{"Command":"Unknown"}"#.to_owned(),
            )],
            switched: false,
        })
    }

    fn tasmota_power(&self, t: &Tasmota) -> Vec<Publish> {
        let word = t.state_text[usize::from(self.on)].clone();
        vec![
            plain(
                t.topic_for(Prefix::Status, "RESULT"),
                json!({ t.power_key(): word }).to_string(),
            ),
            plain(t.topic_for(Prefix::Status, &t.power_key()), word),
        ]
    }

    /// `INFO1`, in the layout Tasmota 9 publishes on connect.
    fn tasmota_info(&self) -> String {
        json!({
            "Module": "Generic",
            "Version": "9.0.0.2(tasmota)",
            "FallbackTopic": "cmnd/DVES_000000_fb/",
            "GroupTopic": self.groups.first().map_or(DEFAULT_GROUP_TOPIC, String::as_str),
        })
        .to_string()
    }

    /// `STATUS1` (`Status 1`, the device's parameters).
    fn tasmota_parameters(&self) -> String {
        json!({"StatusPRM": {
            "Baudrate": 115200,
            "GroupTopic": self.groups.first().map_or(DEFAULT_GROUP_TOPIC, String::as_str),
            "OtaUrl": "",
            "Uptime": "0T00:00:00",
            "Sleep": 50,
            "BootCount": 1,
            "SaveCount": 1,
            "SaveAddress": "FB000"
        }})
        .to_string()
    }

    fn tasmota_state(&self, t: &Tasmota) -> Value {
        json!({
            "Time": "1970-01-01T00:00:00",
            "Uptime": "0T00:00:00",
            t.power_key(): t.state_text[usize::from(self.on)],
        })
    }

    fn shelly(&mut self, s: &Shelly, payload: &[u8]) -> Result<Handled, DecodeError> {
        let frame = parse_json("shelly", payload)?;
        let bad = |detail: String| DecodeError::Foreign {
            family: "shelly",
            detail,
        };
        let id = frame
            .get("id")
            .cloned()
            .ok_or_else(|| bad("a request without an id".to_owned()))?;
        let src = frame
            .get("src")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a request without a src".to_owned()))?
            .to_owned();
        let method = frame
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        let for_us = params.get("id").and_then(Value::as_u64).unwrap_or(0) == u64::from(s.switch);
        let error = |code: i64, message: String| {
            Handled {
            publishes: vec![plain(
                format!("{src}/rpc"),
                json!({"id": id, "src": s.prefix, "dst": src, "error": {"code": code, "message": message}}).to_string(),
            )],
            switched: false,
        }
        };
        match method {
            _ if !for_us => Ok(error(-105, "Argument 'id', value not found!".to_owned())),
            "Switch.Set" => match params.get("on").and_then(Value::as_bool) {
                Some(on) => Ok(self.apply(
                    Some(if on { Switch::On } else { Switch::Off }),
                    Some((&id, &src)),
                )),
                None => Ok(error(-103, "Missing required argument 'on'!".to_owned())),
            },
            "Switch.Toggle" => Ok(self.apply(Some(Switch::Toggle), Some((&id, &src)))),
            "Switch.GetStatus" => Ok(self.apply(None, Some((&id, &src)))),
            other => Ok(error(404, format!("No handler for {other}"))),
        }
    }

    fn shelly_status(&self, s: &Shelly) -> Value {
        json!({"id": s.switch, "source": "switchboard", "output": self.on})
    }

    fn zigbee(
        &mut self,
        z: &Zigbee2mqtt,
        topic: &str,
        payload: &[u8],
    ) -> Result<Handled, DecodeError> {
        let body = parse_json("zigbee2mqtt", payload)?;
        if topic.ends_with("/get") {
            return Ok(self.apply(None, None));
        }
        let through_group = topic != format!("{}/{}/set", z.base, z.name);
        match body.get("state").and_then(Value::as_str) {
            Some(s) => {
                let asked = Switch::parse_word(s).ok_or_else(|| DecodeError::Foreign {
                    family: "zigbee2mqtt",
                    detail: format!("state {s:?} is not ON, OFF or TOGGLE"),
                })?;
                let was_on = self.on;
                let mut handled = self.apply(Some(asked), None);
                if through_group {
                    // A group command is a Zigbee multicast nobody acknowledges: Zigbee2MQTT
                    // publishes each member's state as asked (its groups are optimistic), whether
                    // or not the member acted.
                    let guess = match asked {
                        Switch::On => true,
                        Switch::Off => false,
                        Switch::Toggle => !was_on,
                    };
                    handled.publishes = vec![plain(
                        format!("{}/{}", z.base, z.name),
                        json!({"state": if guess { "ON" } else { "OFF" }}).to_string(),
                    )];
                }
                Ok(handled)
            }
            // Another attribute only: nothing this relay does.
            None => Ok(Handled::default()),
        }
    }

    fn zigbee_state(&self) -> Value {
        json!({"state": if self.on { "ON" } else { "OFF" }, "linkquality": 120})
    }

    fn esphome(&mut self, e: &Esphome, payload: &[u8]) -> Result<Handled, DecodeError> {
        let word = match e.component {
            Component::Switch => text("esphome", payload)?.to_owned(),
            Component::Light => parse_json("esphome", payload)?
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        let asked = Switch::parse_word(&word).ok_or_else(|| DecodeError::Foreign {
            family: "esphome",
            detail: format!("{word:?} is not ON, OFF or TOGGLE"),
        })?;
        Ok(self.apply(Some(asked), None))
    }

    fn esphome_state(&self, e: &Esphome) -> Publish {
        let word = if self.on { "ON" } else { "OFF" };
        let payload = match e.component {
            Component::Switch => word.to_owned(),
            Component::Light => json!({"color_mode": "onoff", "state": word}).to_string(),
        };
        retained(
            format!("{}/{}/{}/state", e.prefix, component(e), e.object_id),
            payload,
        )
    }

    fn homeassistant(&mut self, h: &Entity, payload: &[u8]) -> Result<Handled, DecodeError> {
        let s = text("homeassistant", payload)?;
        let asked = match h.kind {
            Kind::LightJson => parse_json("homeassistant", payload)?
                .get("state")
                .and_then(Value::as_str)
                .and_then(Switch::parse_word),
            Kind::Switch | Kind::Light => {
                if s == h.payload_on {
                    Some(Switch::On)
                } else if s == h.payload_off {
                    Some(Switch::Off)
                } else {
                    None
                }
            }
        };
        let asked = asked.ok_or_else(|| DecodeError::Foreign {
            family: "homeassistant",
            detail: format!(
                "{s:?} is neither {:?} nor {:?}",
                h.payload_on, h.payload_off
            ),
        })?;
        Ok(self.apply(Some(asked), None))
    }

    fn homeassistant_state(&self, h: &Entity) -> Vec<Publish> {
        let Some(topic) = &h.state_topic else {
            return Vec::new();
        };
        let payload = match h.kind {
            Kind::LightJson => json!({"state": if self.on { "ON" } else { "OFF" }}).to_string(),
            Kind::Switch | Kind::Light => if self.on { &h.state_on } else { &h.state_off }.clone(),
        };
        vec![plain(topic.clone(), payload)]
    }
}

/// What a command asks of the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    On,
    Off,
    Toggle,
}

impl Switch {
    fn parse_word(s: &str) -> Option<Switch> {
        match on_off(s) {
            Some(true) => Some(Switch::On),
            Some(false) => Some(Switch::Off),
            None => s.eq_ignore_ascii_case("toggle").then_some(Switch::Toggle),
        }
    }

    /// Tasmota's `Power` arguments: `0`/`off`/`false`, `1`/`on`/`true`, `2`/`toggle`.
    fn parse_tasmota(s: &str) -> Option<Switch> {
        match s.to_ascii_lowercase().as_str() {
            "0" | "off" | "false" => Some(Switch::Off),
            "1" | "on" | "true" => Some(Switch::On),
            "2" | "toggle" => Some(Switch::Toggle),
            _ => None,
        }
    }
}

fn component(e: &Esphome) -> &'static str {
    match e.component {
        Component::Switch => "switch",
        Component::Light => "light",
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
