//! Home Assistant MQTT discovery: an entity announced on
//! `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`, or as one of the components
//! (`cmps`) of a device announced on `<discovery_prefix>/device/<id>/config`. The config names the
//! command and state topics and their payloads; keys may be abbreviated (`cmd_t`, `stat_t`, ...)
//! and topics may start or end with `~`, the config's base topic. A config with no state topic (or
//! `optimistic: true`) cannot be confirmed: the panel draws it as such. Sources in
//! `docs/FAMILIES.md`.
//!
//! Value templates are Jinja in Home Assistant; only the forms that pick a field of a JSON state
//! (`{{ value_json.state }}`, `{{ value_json['state'] }}`) and `{{ value }}` are read here. An
//! entity with any other template is kept, commandable, and marked unconfirmable with the reason.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{command, json, text, Observation, Role, Unsupported};
use crate::error::DecodeError;
use crate::session::Publish;

const FAMILY: &str = "homeassistant";

/// The default discovery prefix.
pub const DEFAULT_PREFIX: &str = "homeassistant";

/// Abbreviations Home Assistant accepts in discovery configs (the subset that matters for
/// switches, lights and availability), expanded before reading.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("avty", "availability"),
    ("avty_mode", "availability_mode"),
    ("avty_t", "availability_topic"),
    ("avty_tpl", "availability_template"),
    ("cmd_t", "command_topic"),
    ("cmd_tpl", "command_template"),
    ("cmps", "components"),
    ("dev", "device"),
    ("json_attr_t", "json_attributes_topic"),
    ("name", "name"),
    ("o", "origin"),
    ("obj_id", "object_id"),
    ("opt", "optimistic"),
    ("p", "platform"),
    ("pl_avail", "payload_available"),
    ("pl_not_avail", "payload_not_available"),
    ("pl_off", "payload_off"),
    ("pl_on", "payload_on"),
    ("qos", "qos"),
    ("ret", "retain"),
    ("schema", "schema"),
    ("stat_off", "state_off"),
    ("stat_on", "state_on"),
    ("stat_t", "state_topic"),
    ("stat_tpl", "state_template"),
    ("stat_val_tpl", "state_value_template"),
    ("t", "topic"),
    ("uniq_id", "unique_id"),
    ("val_tpl", "value_template"),
];

/// What kind of entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `switch`: plain payloads.
    Switch,
    /// `light` with the default schema: plain payloads.
    Light,
    /// `light` with `schema: json`: `{"state":"ON"}` both ways.
    LightJson,
}

/// One availability topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// The topic.
    pub topic: String,
    /// The payload that means online (`online`).
    pub available: String,
    /// The payload that means offline (`offline`).
    pub not_available: String,
}

/// How a state payload is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateReading {
    /// The payload as it is.
    Raw,
    /// One field of a JSON payload.
    JsonField(String),
}

/// One entity that can be switched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Its unique id (`unique_id`, or `<node_id>_<object_id>` from the topic).
    pub unique_id: String,
    /// Its name, if given.
    #[serde(default)]
    pub name: Option<String>,
    /// Switch or light.
    pub kind: Kind,
    /// Where commands go; `None`: it cannot be switched.
    pub command_topic: Option<String>,
    /// Where the state comes; `None`: optimistic.
    pub state_topic: Option<String>,
    /// The command payload for on (`ON`).
    pub payload_on: String,
    /// The command payload for off (`OFF`).
    pub payload_off: String,
    /// The state that means on (`payload_on` unless given).
    pub state_on: String,
    /// The state that means off (`payload_off` unless given).
    pub state_off: String,
    /// How the state payload is read; `None` when its template cannot be read here.
    pub reading: Option<StateReading>,
    /// `optimistic: true` in the config.
    #[serde(default)]
    pub optimistic: bool,
    /// Availability topics.
    #[serde(default)]
    pub availability: Vec<Availability>,
}

/// What one message on a discovery topic announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// Entities that can be switched (a device config may hold several).
    Entities(Vec<Entity>),
    /// The config was cleared: the entity (or device) with this id is gone.
    Removed(String),
    /// A config for components that cannot be switched (sensors, ...): nothing to command.
    NotSwitchable,
}

/// The discovery filters under `prefix`: `<prefix>/+/+/config` and `<prefix>/+/+/+/config`.
pub fn discovery_filters(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}/+/+/config"),
        format!("{prefix}/+/+/+/config"),
    ]
}

/// Reads a message on a discovery topic.
pub fn parse_discovery(
    prefix: &str,
    topic: &str,
    payload: &[u8],
) -> Result<Announcement, DecodeError> {
    super::check_size(payload)?;
    let rest = topic
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_suffix("/config"))
        .ok_or_else(|| {
            bad(format!(
                "{topic:?} is not a discovery topic under {prefix:?}"
            ))
        })?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (component, node, object) = match parts.as_slice() {
        [c, o] => (*c, None, *o),
        [c, n, o] => (*c, Some(*n), *o),
        _ => return Err(bad(format!("{topic:?} has the wrong number of levels"))),
    };
    let fallback_id = match node {
        Some(n) => format!("{n}_{object}"),
        None => object.to_owned(),
    };
    if text(FAMILY, payload)?.is_empty() {
        return Ok(Announcement::Removed(fallback_id));
    }
    let Value::Object(config) = expand(json(FAMILY, payload)?) else {
        return Err(bad("a discovery config must be a JSON object".to_owned()));
    };
    let base = config.get("~").and_then(Value::as_str).map(str::to_owned);
    if component == "device" {
        let Some(Value::Object(components)) = config.get("components") else {
            return Err(bad("a device config has no components".to_owned()));
        };
        let shared_availability = availability(&config, base.as_deref());
        let mut entities = Vec::new();
        for (object_id, c) in components {
            let Value::Object(c) = c else { continue };
            let platform = c
                .get("platform")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let c_base = c.get("~").and_then(Value::as_str).or(base.as_deref());
            let id = format!("{fallback_id}_{object_id}");
            if let Some(mut e) = entity(platform, c, c_base, id)? {
                if e.availability.is_empty() {
                    e.availability.clone_from(&shared_availability);
                }
                entities.push(e);
            }
        }
        return Ok(if entities.is_empty() {
            Announcement::NotSwitchable
        } else {
            Announcement::Entities(entities)
        });
    }
    Ok(
        match entity(component, &config, base.as_deref(), fallback_id)? {
            Some(e) => Announcement::Entities(vec![e]),
            None => Announcement::NotSwitchable,
        },
    )
}

/// Expands abbreviated keys, in nested objects too (device, availability entries, components).
fn expand(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = ABBREVIATIONS
                        .iter()
                        .find(|(a, _)| *a == k)
                        .map_or(k, |(_, full)| (*full).to_owned());
                    (k, expand(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(expand).collect()),
        other => other,
    }
}

/// A topic with `~` at its start or end replaced by the base topic.
fn topic(config: &Map<String, Value>, key: &str, base: Option<&str>) -> Option<String> {
    let t = config.get(key)?.as_str()?;
    Some(match base {
        Some(b) if t.starts_with('~') => format!("{b}{}", &t[1..]),
        Some(b) if t.ends_with('~') => format!("{}{b}", &t[..t.len() - 1]),
        _ => t.to_owned(),
    })
}

fn string(config: &Map<String, Value>, key: &str) -> Option<String> {
    config.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn availability(config: &Map<String, Value>, base: Option<&str>) -> Vec<Availability> {
    let available = string(config, "payload_available").unwrap_or_else(|| "online".to_owned());
    let not_available =
        string(config, "payload_not_available").unwrap_or_else(|| "offline".to_owned());
    let mut out = Vec::new();
    if let Some(t) = topic(config, "availability_topic", base) {
        out.push(Availability {
            topic: t,
            available: available.clone(),
            not_available: not_available.clone(),
        });
    }
    if let Some(Value::Array(list)) = config.get("availability") {
        for a in list {
            let Value::Object(a) = a else { continue };
            if let Some(t) = topic(a, "topic", base) {
                out.push(Availability {
                    topic: t,
                    available: string(a, "payload_available").unwrap_or_else(|| available.clone()),
                    not_available: string(a, "payload_not_available")
                        .unwrap_or_else(|| not_available.clone()),
                });
            }
        }
    }
    out
}

/// Reads a value template: `{{ value }}`, `{{ value_json.x }}`, `{{ value_json['x'] }}`.
fn reading(template: Option<&str>) -> Option<StateReading> {
    let Some(t) = template else {
        return Some(StateReading::Raw);
    };
    let inner = t.trim().strip_prefix("{{")?.strip_suffix("}}")?.trim();
    if inner == "value" {
        return Some(StateReading::Raw);
    }
    let field = inner.strip_prefix("value_json")?;
    let name = if let Some(f) = field.strip_prefix('.') {
        f
    } else {
        field
            .strip_prefix("['")
            .and_then(|f| f.strip_suffix("']"))
            .or_else(|| {
                field
                    .strip_prefix("[\"")
                    .and_then(|f| f.strip_suffix("\"]"))
            })?
    };
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| StateReading::JsonField(name.to_owned()))
}

fn entity(
    component: &str,
    config: &Map<String, Value>,
    base: Option<&str>,
    fallback_id: String,
) -> Result<Option<Entity>, DecodeError> {
    let kind = match component {
        "switch" => Kind::Switch,
        "light" => match config.get("schema").and_then(Value::as_str) {
            Some("json") => Kind::LightJson,
            None | Some("default") | Some("basic") => Kind::Light,
            // The template schema needs Jinja to build commands.
            Some(_) => return Ok(None),
        },
        _ => return Ok(None),
    };
    let payload_on = string(config, "payload_on").unwrap_or_else(|| "ON".to_owned());
    let payload_off = string(config, "payload_off").unwrap_or_else(|| "OFF".to_owned());
    let template = match kind {
        Kind::Light => config.get("state_value_template").and_then(Value::as_str),
        Kind::Switch => config.get("value_template").and_then(Value::as_str),
        // JSON lights read `state` from their JSON.
        Kind::LightJson => None,
    };
    let entity = Entity {
        unique_id: string(config, "unique_id").unwrap_or(fallback_id),
        name: string(config, "name"),
        kind,
        command_topic: topic(config, "command_topic", base),
        state_topic: topic(config, "state_topic", base),
        state_on: string(config, "state_on").unwrap_or_else(|| payload_on.clone()),
        state_off: string(config, "state_off").unwrap_or_else(|| payload_off.clone()),
        payload_on,
        payload_off,
        reading: match kind {
            Kind::LightJson => Some(StateReading::JsonField("state".to_owned())),
            _ => reading(template),
        },
        optimistic: config
            .get("optimistic")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        availability: availability(config, base),
    };
    for t in [&entity.command_topic, &entity.state_topic]
        .into_iter()
        .flatten()
    {
        super::check_topic_part(FAMILY, t)?;
    }
    Ok(Some(entity))
}

impl Entity {
    /// A switch laid out as ha-mqtt-discoverable lays one out: `hmd/switch/<name>/command` and
    /// `/state`, plain `ON`/`OFF`, availability on `hmd/switch/<name>/availability`.
    pub fn switch(name: &str) -> Entity {
        let base = format!("hmd/switch/{name}");
        Entity {
            unique_id: name.to_owned(),
            name: Some(name.to_owned()),
            kind: Kind::Switch,
            command_topic: Some(format!("{base}/command")),
            state_topic: Some(format!("{base}/state")),
            payload_on: "ON".to_owned(),
            payload_off: "OFF".to_owned(),
            state_on: "ON".to_owned(),
            state_off: "OFF".to_owned(),
            reading: Some(StateReading::Raw),
            optimistic: false,
            availability: vec![Availability {
                topic: format!("{base}/availability"),
                available: "online".to_owned(),
                not_available: "offline".to_owned(),
            }],
        }
    }

    /// Whether its state can be confirmed: it has a state topic, is not optimistic, and its state
    /// can be read here.
    pub fn confirmable(&self) -> bool {
        self.unconfirmable_because().is_none()
    }

    /// Why its state cannot be confirmed, for a person.
    pub fn unconfirmable_because(&self) -> Option<&'static str> {
        if self.state_topic.is_none() {
            Some("it announces no state topic (optimistic)")
        } else if self.optimistic {
            Some("its config says it is optimistic")
        } else if self.reading.is_none() {
            Some("its value template cannot be read here")
        } else {
            None
        }
    }

    /// The command topic with the payload for on or off.
    pub fn set_power(&self, on: bool) -> Result<Publish, Unsupported> {
        let Some(t) = &self.command_topic else {
            return Err(Unsupported {
                family: super::Family::Homeassistant,
                what: "be switched: its config has no command topic".to_owned(),
            });
        };
        let payload = match self.kind {
            Kind::LightJson => {
                serde_json::json!({ "state": if on { "ON" } else { "OFF" } }).to_string()
            }
            Kind::Switch | Kind::Light => if on {
                &self.payload_on
            } else {
                &self.payload_off
            }
            .clone(),
        };
        Ok(command(t.clone(), payload))
    }

    /// The state topic and every availability topic.
    pub fn topics(&self) -> Vec<(String, Role)> {
        let mut out: Vec<(String, Role)> = self
            .state_topic
            .iter()
            .map(|t| (t.clone(), Role::State))
            .collect();
        out.extend(
            self.availability
                .iter()
                .map(|a| (a.topic.clone(), Role::Presence)),
        );
        out
    }

    /// The state, read as the config says; availability as its payloads say.
    pub fn decode(
        &self,
        topic: &str,
        role: Role,
        payload: &[u8],
    ) -> Result<Observation, DecodeError> {
        let s = text(FAMILY, payload)?;
        match role {
            Role::Presence => {
                let Some(a) = self.availability.iter().find(|a| a.topic == topic) else {
                    return Ok(Observation::Nothing);
                };
                if s == a.available {
                    Ok(Observation::Presence(true))
                } else if s == a.not_available {
                    Ok(Observation::Presence(false))
                } else if s.is_empty() {
                    Ok(Observation::Nothing)
                } else {
                    Err(bad(format!(
                        "availability {s:?} is neither {:?} nor {:?}",
                        a.available, a.not_available
                    )))
                }
            }
            Role::State => {
                let value = match &self.reading {
                    None => return Ok(Observation::Nothing),
                    Some(StateReading::Raw) => s.to_owned(),
                    Some(StateReading::JsonField(f)) => {
                        let v = json(FAMILY, payload)?;
                        match v.get(f) {
                            None => return Ok(Observation::Nothing),
                            Some(Value::String(x)) => x.clone(),
                            Some(other) => other.to_string(),
                        }
                    }
                };
                if value == self.state_on {
                    Ok(Observation::Power(true))
                } else if value == self.state_off {
                    Ok(Observation::Power(false))
                } else if value.is_empty() || value == "None" {
                    Ok(Observation::Nothing)
                } else {
                    Err(bad(format!(
                        "state {value:?} is neither {:?} nor {:?}",
                        self.state_on, self.state_off
                    )))
                }
            }
        }
    }
}

fn bad(detail: String) -> DecodeError {
    DecodeError::Foreign {
        family: FAMILY,
        detail,
    }
}
