//! Device families: the firmware dialects that lights and plugs already speak over MQTT.
//!
//! A family is data plus pure functions. An [`Address`] says where one device of a family lives on
//! the broker (its topic, prefix, friendly name, relay or entity); from it come the publish that
//! sets its power ([`Address::set_power`]), the one that reads it back ([`Address::read_back`]),
//! the exact topics to subscribe to and what each carries ([`Address::topics`]), and how a message
//! on one of them decodes ([`Address::decode`]) into an [`Observation`]. Whether a command counts
//! as confirmed is decided from those observations by [`confirm::Confirmation`], the same for
//! every family.
//!
//! Each family's wire format lives in its own file, with its sources cited in `docs/FAMILIES.md`:
//! [`tasmota`], [`shelly`] (Gen2+ JSON-RPC), [`zigbee2mqtt`], [`esphome`] and Home Assistant
//! MQTT discovery ([`homeassistant`]). Switchboard's own envelope and the pattern document's text
//! form are [`Family::Switchboard`] and [`Family::Text`]: they carry a TID and are reconciled by
//! the tracker directly.

pub mod confirm;
pub mod discovery;
pub mod esphome;
pub mod firmware;
pub mod homeassistant;
pub mod shelly;
pub mod tasmota;
pub mod zigbee2mqtt;

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::session::{Publish, QoS};
use crate::topic::DeviceId;

/// The largest family payload decoded; anything larger is refused unread.
pub const MAX_FAMILY_PAYLOAD: usize = 64 * 1024;

/// A kind of firmware, as named on the command line and on a device's card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Switchboard's JSON envelope, with TIDs.
    Switchboard,
    /// The pattern document's plain-text commands and answers.
    Text,
    /// Tasmota (`cmnd/`, `stat/`, `tele/`).
    Tasmota,
    /// Shelly Gen2+ (JSON-RPC over MQTT).
    Shelly,
    /// Zigbee2MQTT.
    Zigbee2mqtt,
    /// ESPHome's MQTT component.
    Esphome,
    /// Anything announced through Home Assistant MQTT discovery.
    Homeassistant,
}

impl Family {
    /// Every family, in the order the command line lists them.
    pub const ALL: [Family; 7] = [
        Family::Switchboard,
        Family::Text,
        Family::Tasmota,
        Family::Shelly,
        Family::Zigbee2mqtt,
        Family::Esphome,
        Family::Homeassistant,
    ];

    /// The name used on the command line and in JSON: `tasmota`, `shelly`, ...
    pub fn name(self) -> &'static str {
        match self {
            Family::Switchboard => "switchboard",
            Family::Text => "text",
            Family::Tasmota => "tasmota",
            Family::Shelly => "shelly",
            Family::Zigbee2mqtt => "zigbee2mqtt",
            Family::Esphome => "esphome",
            Family::Homeassistant => "homeassistant",
        }
    }

    /// The name for a person: `Tasmota`, `Shelly`, `Zigbee2MQTT`, ...
    pub fn label(self) -> &'static str {
        match self {
            Family::Switchboard => "Switchboard",
            Family::Text => "Text",
            Family::Tasmota => "Tasmota",
            Family::Shelly => "Shelly",
            Family::Zigbee2mqtt => "Zigbee2MQTT",
            Family::Esphome => "ESPHome",
            Family::Homeassistant => "Home Assistant",
        }
    }

    /// Whether commands carry an id the device echoes (the TID, Shelly's RPC `id`): otherwise a
    /// command is confirmed by a state report.
    pub fn answers_with_id(self) -> bool {
        matches!(self, Family::Switchboard | Family::Text | Family::Shelly)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A family name that is not one of [`Family::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown device family {0:?}; expected one of switchboard, text, tasmota, shelly, zigbee2mqtt, esphome, homeassistant")]
pub struct UnknownFamily(pub String);

impl FromStr for Family {
    type Err = UnknownFamily;

    fn from_str(s: &str) -> Result<Self, UnknownFamily> {
        Family::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFamily(s.to_owned()))
    }
}

/// What a message on one of a device's topics carries, as far as commands are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A report that may carry the power state (a state topic, a command's result, telemetry).
    State,
    /// Whether the device is connected (LWT, `online`, availability, birth and will).
    Presence,
}

/// What one message says about a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The device reported its power state.
    Power(bool),
    /// The device is connected (`true`) or gone (`false`).
    Presence(bool),
    /// The device also takes commands on this group's topic (Tasmota's GroupTopic).
    GroupTopic(String),
    /// Nothing about power or presence (another attribute, another relay, a cleared message).
    Nothing,
}

/// Where one device of a family lives on the broker: see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Address {
    /// A Tasmota relay.
    Tasmota(tasmota::Tasmota),
    /// A Shelly Gen2+ switch component.
    Shelly(shelly::Shelly),
    /// A Zigbee2MQTT device or group.
    Zigbee2mqtt(zigbee2mqtt::Zigbee2mqtt),
    /// An ESPHome switch or light.
    Esphome(esphome::Esphome),
    /// An entity announced through Home Assistant discovery.
    Homeassistant(homeassistant::Entity),
}

/// What a command that carries an id needs from the application: the id to use and where the
/// device should answer (Shelly's `src`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcCall<'a> {
    /// The request id the device echoes.
    pub id: u64,
    /// The application's own name: replies go to `<src>/rpc`.
    pub src: &'a str,
}

impl Address {
    /// A device of `family` known by its own name, as a person adds one: a Tasmota Topic, a
    /// Shelly topic prefix, a Zigbee2MQTT friendly name, an ESPHome `node.switch`. `None` for a
    /// family whose devices are only known by their announcement (Home Assistant discovery) or
    /// that is no other family, and for a name that cannot be part of a topic.
    pub fn by_name(family: Family, name: &str) -> Option<Address> {
        let name = name.trim();
        check_topic_part(family.name(), name).ok()?;
        Some(match family {
            Family::Tasmota => Address::Tasmota(tasmota::Tasmota::new(name)),
            Family::Shelly => Address::Shelly(shelly::Shelly::new(name)),
            Family::Zigbee2mqtt => Address::Zigbee2mqtt(zigbee2mqtt::Zigbee2mqtt::new(name)),
            Family::Esphome => {
                let (node, object) = name.split_once('.')?;
                if node.is_empty() || object.is_empty() || name.contains('/') {
                    return None;
                }
                Address::Esphome(esphome::Esphome::switch(node, object))
            }
            Family::Homeassistant | Family::Switchboard | Family::Text => return None,
        })
    }

    /// The family it belongs to.
    pub fn family(&self) -> Family {
        match self {
            Address::Tasmota(_) => Family::Tasmota,
            Address::Shelly(_) => Family::Shelly,
            Address::Zigbee2mqtt(_) => Family::Zigbee2mqtt,
            Address::Esphome(_) => Family::Esphome,
            Address::Homeassistant(_) => Family::Homeassistant,
        }
    }

    /// The id the device goes by in Switchboard, derived from its own name.
    pub fn device_id(&self) -> DeviceId {
        match self {
            Address::Tasmota(a) => sanitized_id(&a.topic, a.relay_suffix()),
            Address::Shelly(a) => sanitized_id(&a.prefix, a.switch_suffix()),
            Address::Zigbee2mqtt(a) => sanitized_id(&a.name, None),
            Address::Esphome(a) => sanitized_id(&format!("{}.{}", a.prefix, a.object_id), None),
            Address::Homeassistant(a) => sanitized_id(&a.unique_id, None),
        }
    }

    /// The publish that sets the power on or off (never retained). `call` is used by families
    /// whose commands carry an id.
    pub fn set_power(&self, on: bool, call: &RpcCall<'_>) -> Result<Publish, Unsupported> {
        match self {
            Address::Tasmota(a) => Ok(a.set_power(on)),
            Address::Shelly(a) => Ok(a.set_power(on, call)),
            Address::Zigbee2mqtt(a) => Ok(a.set_power(on)),
            Address::Esphome(a) => Ok(a.set_power(on)),
            Address::Homeassistant(a) => a.set_power(on),
        }
    }

    /// How to ask the device for its power state, where the family has a way.
    pub fn read_back(&self, call: &RpcCall<'_>) -> Option<ReadBack> {
        match self {
            Address::Tasmota(a) => Some(ReadBack::Publish(a.read_back())),
            Address::Shelly(a) => Some(ReadBack::Publish(a.read_back(call))),
            Address::Zigbee2mqtt(a) => Some(ReadBack::Publish(a.read_back())),
            // No query, but the state is retained: subscribing again has the broker send it.
            Address::Esphome(a) => Some(ReadBack::Resubscribe(a.state_topic())),
            // No query, and whether the state topic is retained is up to the device: a retained
            // copy may be old, so only live reports count.
            Address::Homeassistant(_) => None,
        }
    }

    /// The exact topics (no wildcards) that carry this device's state and presence.
    pub fn topics(&self) -> Vec<(String, Role)> {
        match self {
            Address::Tasmota(a) => a.topics(),
            Address::Shelly(a) => a.topics(),
            Address::Zigbee2mqtt(a) => a.topics(),
            Address::Esphome(a) => a.topics(),
            Address::Homeassistant(a) => a.topics(),
        }
    }

    /// Decodes a message that arrived on one of [`Address::topics`] with that role.
    pub fn decode(
        &self,
        topic: &str,
        role: Role,
        payload: &[u8],
    ) -> Result<Observation, DecodeError> {
        check_size(payload)?;
        match self {
            Address::Tasmota(a) => a.decode(topic, role, payload),
            Address::Shelly(a) => a.decode(topic, role, payload),
            Address::Zigbee2mqtt(a) => a.decode(role, payload),
            Address::Esphome(a) => a.decode(role, payload),
            Address::Homeassistant(a) => a.decode(topic, role, payload),
        }
    }

    /// Whether the device publishes nothing when a command leaves its state unchanged (an
    /// ESPHome switch) while its state is retained: then the retained state, read again right
    /// after the command was sent, confirms it when it already equals the target.
    pub fn quiet_when_unchanged(&self) -> bool {
        matches!(self, Address::Esphome(a) if a.component == esphome::Component::Switch)
    }

    /// What to ask a device when it is first followed, to learn what its announcement leaves out
    /// (a Tasmota device's GroupTopic).
    pub fn probe(&self) -> Option<Publish> {
        match self {
            Address::Tasmota(a) => Some(a.probe()),
            _ => None,
        }
    }

    /// Whether a command to a group of this family has the coordinator report every member's
    /// state at once, before any member acted (Zigbee2MQTT's groups, optimistic by default).
    pub fn group_echoes(&self) -> bool {
        matches!(self, Address::Zigbee2mqtt(_))
    }

    /// Whether the device's state can be confirmed at all: an entity with no state topic is
    /// optimistic, and the panel must draw it as unconfirmable.
    pub fn confirmable(&self) -> bool {
        match self {
            Address::Homeassistant(a) => a.confirmable(),
            _ => true,
        }
    }
}

/// How a device is asked for its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadBack {
    /// Publish this query; the device reports its state.
    Publish(Publish),
    /// Subscribe to this state topic again: the broker sends its retained state.
    Resubscribe(String),
}

/// A command a family cannot carry, for a person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{family} device cannot {what}")]
pub struct Unsupported {
    /// The family.
    pub family: Family,
    /// What was asked, e.g. "be switched (no command topic)".
    pub what: String,
}

/// An id made from a family's own name: characters an id cannot hold become `_`, and a name too
/// long is cut (ids stay unique per name as long as names differ within the first 120 bytes).
pub fn sanitized_id(name: &str, suffix: Option<String>) -> DeviceId {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    if let Some(suffix) = suffix {
        s.push(':');
        s.push_str(&suffix);
    }
    DeviceId::new(s).expect("only allowed characters, at most 128 bytes")
}

/// A topic or name part given by a person or a device: non-empty, no wildcards, no NUL.
pub fn check_topic_part(kind: &'static str, s: &str) -> Result<(), DecodeError> {
    if s.is_empty() || s.contains(['+', '#', '\0']) || s.len() > 1024 {
        return Err(DecodeError::Foreign {
            family: kind,
            detail: format!("{s:?} cannot be used in a topic"),
        });
    }
    Ok(())
}

/// A QoS 1 publish, never retained: commands are never retained (a retained command would run
/// again on every reconnect).
pub(crate) fn command(topic: String, payload: impl Into<Vec<u8>>) -> Publish {
    Publish::new(topic, payload, QoS::AtLeastOnce)
}

/// Reads a payload as UTF-8 text with surrounding whitespace trimmed.
pub(crate) fn text<'a>(family: &'static str, payload: &'a [u8]) -> Result<&'a str, DecodeError> {
    core::str::from_utf8(payload)
        .map(str::trim)
        .map_err(|e| DecodeError::Foreign {
            family,
            detail: format!("not UTF-8: {e}"),
        })
}

/// Reads a payload as a JSON value.
pub(crate) fn json(family: &'static str, payload: &[u8]) -> Result<serde_json::Value, DecodeError> {
    serde_json::from_slice(payload).map_err(|e| DecodeError::Foreign {
        family,
        detail: format!("not JSON: {e}"),
    })
}

/// A payload that is not what its family documents, quoting (the start of) what came.
pub(crate) fn unexpected(family: &'static str, got: &str, expected: &str) -> DecodeError {
    let got: String = got.chars().take(64).collect();
    DecodeError::Foreign {
        family,
        detail: format!("{got:?}, expected {expected}"),
    }
}

/// Refuses a payload larger than [`MAX_FAMILY_PAYLOAD`] unread.
pub(crate) fn check_size(payload: &[u8]) -> Result<(), DecodeError> {
    if payload.len() > MAX_FAMILY_PAYLOAD {
        return Err(DecodeError::TooLarge {
            len: payload.len(),
            max: MAX_FAMILY_PAYLOAD,
        });
    }
    Ok(())
}

/// The power in a JSON state's field (`"state": "ON"`, `"POWER": "OFF"`), read with `word`;
/// no field says nothing.
pub(crate) fn power_field(
    family: &'static str,
    field: Option<&serde_json::Value>,
    word: impl Fn(&str) -> Option<bool>,
) -> Result<Observation, DecodeError> {
    match field {
        None => Ok(Observation::Nothing),
        Some(p) => p
            .as_str()
            .and_then(word)
            .map(Observation::Power)
            .ok_or_else(|| unexpected(family, &p.to_string(), "\"ON\" or \"OFF\"")),
    }
}

/// `ON` / `OFF` in any case, as most families write power.
pub(crate) fn on_off(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("on") {
        Some(true)
    } else if s.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}
