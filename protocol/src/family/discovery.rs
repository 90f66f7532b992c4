//! Finding devices of every family on a broker: the retained announcements each family publishes.
//!
//! | family | filter | what it holds |
//! |---|---|---|
//! | Tasmota | `tasmota/discovery/+/config` | one device's config: topic, FullTopic, prefixes, relays |
//! | Zigbee2MQTT | `zigbee2mqtt/bridge/devices` | the whole device list with what each exposes |
//! | Zigbee2MQTT | `zigbee2mqtt/bridge/groups` | the Zigbee groups and their members |
//! | Home Assistant (and ESPHome, which announces itself this way, recognised by its topics) | `homeassistant/+/+/config`, `homeassistant/+/+/+/config` | one entity or one device's components |
//! | Shelly | `+/online` | `true` from a device whose prefix is its device id (`shelly...`) |
//!
//! Each announcement becomes a list of [`Found`] devices, or says which are gone.

use serde_json::Value;

use super::esphome::Esphome;
use super::homeassistant::{self, Announcement};
use super::shelly::Shelly;
use super::tasmota::Tasmota;
use super::zigbee2mqtt::{Zigbee2mqtt, DEFAULT_BASE};
use super::{json, text, Address, Family};
use crate::error::DecodeError;

/// Tasmota's discovery filter.
pub const TASMOTA_FILTER: &str = "tasmota/discovery/+/config";

/// Zigbee2MQTT's device list.
pub const ZIGBEE2MQTT_DEVICES: &str = "zigbee2mqtt/bridge/devices";

/// Zigbee2MQTT's group list.
pub const ZIGBEE2MQTT_GROUPS: &str = "zigbee2mqtt/bridge/groups";

/// Shelly Gen2+ presence, for devices that keep their device id as topic prefix.
pub const SHELLY_FILTER: &str = "+/online";

/// A device found in an announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where it lives.
    pub address: Address,
    /// Its name for a person, if the announcement gives one.
    pub name: Option<String>,
    /// What the family's group lists call it (a Zigbee2MQTT IEEE address).
    pub key: Option<String>,
}

/// A group a family keeps itself: one publish to `carrier` commands every member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeGroup {
    /// Its name, which is also its name in Switchboard.
    pub name: String,
    /// Where a command to every member at once goes (a Zigbee2MQTT group's friendly name).
    pub carrier: Address,
    /// Its members, by their [`Found::key`].
    pub members: Vec<String>,
}

/// What one announcement says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discovered {
    /// These devices are there (a Zigbee2MQTT list replaces every device of that family).
    Devices {
        /// Which family announced them.
        family: Family,
        /// What was found.
        found: Vec<Found>,
        /// Whether this is the family's whole list (earlier devices not in it are gone).
        complete: bool,
    },
    /// The announcement was cleared: the device(s) under this key are gone.
    Gone {
        /// The family.
        family: Family,
        /// What identifies them in the announcement's topic (a MAC, a unique id).
        key: String,
    },
    /// The family's whole list of groups (it replaces the earlier one).
    Groups {
        /// Which family keeps them.
        family: Family,
        /// The groups.
        groups: Vec<NativeGroup>,
    },
    /// Nothing that can be switched.
    Nothing,
}

/// Every discovery filter.
pub fn filters() -> Vec<String> {
    let mut v = vec![
        TASMOTA_FILTER.to_owned(),
        ZIGBEE2MQTT_DEVICES.to_owned(),
        ZIGBEE2MQTT_GROUPS.to_owned(),
    ];
    v.extend(homeassistant::discovery_filters(
        homeassistant::DEFAULT_PREFIX,
    ));
    v.push(SHELLY_FILTER.to_owned());
    v
}

/// Reads a message on one of the [`filters`]; `Ok(None)` when the topic is none of them.
pub fn read(topic: &str, payload: &[u8]) -> Result<Option<Discovered>, DecodeError> {
    if let Some(mac) = topic
        .strip_prefix("tasmota/discovery/")
        .and_then(|t| t.strip_suffix("/config"))
    {
        return tasmota(mac, payload).map(Some);
    }
    if topic == ZIGBEE2MQTT_DEVICES {
        return zigbee2mqtt(payload).map(Some);
    }
    if topic == ZIGBEE2MQTT_GROUPS {
        let groups = super::zigbee2mqtt::parse_groups(payload)?;
        return Ok(Some(Discovered::Groups {
            family: Family::Zigbee2mqtt,
            groups: groups
                .into_iter()
                .map(|g| NativeGroup {
                    carrier: Address::Zigbee2mqtt(Zigbee2mqtt::new(g.name.clone())),
                    name: g.name,
                    members: g.members,
                })
                .collect(),
        }));
    }
    if topic.starts_with("homeassistant/") && topic.ends_with("/config") {
        return Ok(Some(
            match homeassistant::parse_discovery(homeassistant::DEFAULT_PREFIX, topic, payload)? {
                Announcement::Entities(entities) => Discovered::Devices {
                    family: Family::Homeassistant,
                    found: entities
                        .into_iter()
                        .map(|e| Found {
                            name: e.name.clone(),
                            key: None,
                            address: match esphome_behind(&e) {
                                Some(node) => Address::Esphome(node),
                                None => Address::Homeassistant(e),
                            },
                        })
                        .collect(),
                    complete: false,
                },
                Announcement::Removed(key) => Discovered::Gone {
                    family: Family::Homeassistant,
                    key,
                },
                Announcement::NotSwitchable => Discovered::Nothing,
            },
        ));
    }
    if let Some(prefix) = topic.strip_suffix("/online") {
        if !prefix.contains('/') && prefix.starts_with("shelly") {
            return Ok(Some(match text("shelly", payload)? {
                "true" => Discovered::Devices {
                    family: Family::Shelly,
                    found: vec![Found {
                        address: Address::Shelly(Shelly::new(prefix)),
                        name: None,
                        key: None,
                    }],
                    complete: false,
                },
                _ => Discovered::Nothing,
            }));
        }
        return Ok(Some(Discovered::Nothing));
    }
    Ok(None)
}

/// The ESPHome entity behind a Home Assistant config, recognised by ESPHome's own topic layout
/// (`<prefix>/<switch|light>/<object_id>/state` and `/command`, birth and will on
/// `<prefix>/status`): then it is commanded as ESPHome, with what that family promises.
fn esphome_behind(e: &homeassistant::Entity) -> Option<Esphome> {
    let state = e.state_topic.as_deref()?.strip_suffix("/state")?;
    let command = e.command_topic.as_deref()?.strip_suffix("/command")?;
    if state != command {
        return None;
    }
    let mut parts = state.splitn(3, '/');
    let (prefix, component, object_id) = (parts.next()?, parts.next()?, parts.next()?);
    if object_id.contains('/') || e.availability.first()?.topic != format!("{prefix}/status") {
        return None;
    }
    match (component, e.kind) {
        ("switch", homeassistant::Kind::Switch) => Some(Esphome::switch(prefix, object_id)),
        ("light", homeassistant::Kind::LightJson) => Some(Esphome::light(prefix, object_id)),
        _ => None,
    }
}

/// A Tasmota discovery config: one device per relay (`rl` 1) or light (`rl` 2).
fn tasmota(mac: &str, payload: &[u8]) -> Result<Discovered, DecodeError> {
    if text("tasmota", payload)?.is_empty() {
        return Ok(Discovered::Gone {
            family: Family::Tasmota,
            key: mac.to_owned(),
        });
    }
    let v = json("tasmota", payload)?;
    let bad = |what: &str| DecodeError::Foreign {
        family: "tasmota",
        detail: format!("discovery config: {what}"),
    };
    if v.get("mac")
        .and_then(Value::as_str)
        .is_some_and(|m| m != mac)
    {
        return Err(bad("its mac differs from its topic's"));
    }
    let topic = v
        .get("t")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no topic (t)"))?;
    super::check_topic_part("tasmota", topic)?;
    let strings = |key: &str| -> Option<Vec<String>> {
        v.get(key)?
            .as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let mut base = Tasmota::new(topic);
    if let Some(ft) = v.get("ft").and_then(Value::as_str) {
        ft.clone_into(&mut base.full_topic);
    }
    if let Some([c, s, t]) = strings("tp").as_deref() {
        base.prefixes = [c.clone(), s.clone(), t.clone()];
    }
    if let Some([off, on, ..]) = strings("state").as_deref() {
        base.state_text = [off.clone(), on.clone()];
    }
    if let (Some(off), Some(on)) = (
        v.get("ofln").and_then(Value::as_str),
        v.get("onln").and_then(Value::as_str),
    ) {
        base.lwt = [off.to_owned(), on.to_owned()];
    }
    let relays: Vec<usize> = v
        .get("rl")
        .and_then(Value::as_array)
        .map(|rl| {
            rl.iter()
                .enumerate()
                .filter(|(_, k)| matches!(k.as_u64(), Some(1 | 2)))
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default();
    let names = v.get("fn").and_then(Value::as_array);
    let device_name = v.get("dn").and_then(Value::as_str);
    let found = relays
        .iter()
        .map(|&i| {
            let relay = if relays.len() == 1 { 0 } else { (i + 1) as u8 };
            let name = names
                .and_then(|n| n.get(i))
                .and_then(Value::as_str)
                .or(device_name)
                .map(str::to_owned);
            Found {
                address: Address::Tasmota(base.clone().relay(relay)),
                name,
                key: None,
            }
        })
        .collect::<Vec<_>>();
    Ok(if found.is_empty() {
        Discovered::Nothing
    } else {
        Discovered::Devices {
            family: Family::Tasmota,
            found,
            complete: false,
        }
    })
}

/// Zigbee2MQTT's device list: every device that exposes a switch or a light with a `state`.
fn zigbee2mqtt(payload: &[u8]) -> Result<Discovered, DecodeError> {
    let v = json("zigbee2mqtt", payload)?;
    let Some(list) = v.as_array() else {
        return Err(DecodeError::Foreign {
            family: "zigbee2mqtt",
            detail: "bridge/devices is not a list".to_owned(),
        });
    };
    let mut found = Vec::new();
    for d in list {
        let Some(name) = d.get("friendly_name").and_then(Value::as_str) else {
            continue;
        };
        if d.get("type").and_then(Value::as_str) == Some("Coordinator")
            || super::check_topic_part("zigbee2mqtt", name).is_err()
        {
            continue;
        }
        let switchable = d
            .get("definition")
            .and_then(|x| x.get("exposes"))
            .and_then(Value::as_array)
            .is_some_and(|ex| ex.iter().any(exposes_state));
        if switchable {
            found.push(Found {
                address: Address::Zigbee2mqtt(Zigbee2mqtt {
                    base: DEFAULT_BASE.to_owned(),
                    name: name.to_owned(),
                }),
                name: Some(name.to_owned()),
                key: d
                    .get("ieee_address")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }
    Ok(Discovered::Devices {
        family: Family::Zigbee2mqtt,
        found,
        complete: true,
    })
}

/// A `switch` or `light` expose with a settable `state` feature (no endpoint).
fn exposes_state(expose: &Value) -> bool {
    matches!(
        expose.get("type").and_then(Value::as_str),
        Some("switch" | "light")
    ) && expose
        .get("features")
        .and_then(Value::as_array)
        .is_some_and(|fs| {
            fs.iter().any(|f| {
                f.get("property").and_then(Value::as_str) == Some("state")
                    && f.get("access").and_then(Value::as_u64).unwrap_or(0) & 2 != 0
            })
        })
}
