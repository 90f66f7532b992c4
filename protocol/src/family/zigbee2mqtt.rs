//! Zigbee2MQTT: `zigbee2mqtt/<friendly_name>/set` `{"state":"ON"}` to command, `/get`
//! `{"state":""}` to read back; the device's state on `zigbee2mqtt/<friendly_name>`; availability
//! on `zigbee2mqtt/<friendly_name>/availability` (`{"state":"online"}` since 2.0, plain `online`
//! before). A group takes the same `/set` and reports on its own topic. The device list is retained
//! on `zigbee2mqtt/bridge/devices` (see [`super::discovery`]). Sources in `docs/FAMILIES.md`.

use serde::{Deserialize, Serialize};

use super::{command, json, on_off, text, Observation, Role};
use crate::error::DecodeError;
use crate::session::Publish;

const FAMILY: &str = "zigbee2mqtt";

/// The default base topic.
pub const DEFAULT_BASE: &str = "zigbee2mqtt";

/// A Zigbee2MQTT device or group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zigbee2mqtt {
    /// The base topic (`zigbee2mqtt`).
    #[serde(default = "default_base")]
    pub base: String,
    /// The friendly name (may hold `/` and spaces).
    pub name: String,
}

fn default_base() -> String {
    DEFAULT_BASE.to_owned()
}

impl Zigbee2mqtt {
    /// Device `name` under the default base topic.
    pub fn new(name: impl Into<String>) -> Self {
        Zigbee2mqtt {
            base: default_base(),
            name: name.into(),
        }
    }

    fn topic(&self) -> String {
        format!("{}/{}", self.base, self.name)
    }

    /// `<base>/<name>/set` `{"state":"ON"}`.
    pub fn set_power(&self, on: bool) -> Publish {
        let word = if on { "ON" } else { "OFF" };
        command(
            format!("{}/set", self.topic()),
            format!(r#"{{"state":"{word}"}}"#),
        )
    }

    /// `<base>/<name>/get` `{"state":""}`: the device reports its state.
    pub fn read_back(&self) -> Publish {
        command(format!("{}/get", self.topic()), r#"{"state":""}"#)
    }

    /// The state topic and the availability topic.
    pub fn topics(&self) -> Vec<(String, Role)> {
        vec![
            (self.topic(), Role::State),
            (format!("{}/availability", self.topic()), Role::Presence),
        ]
    }

    /// The state's `state` field; availability in either form.
    pub fn decode(&self, role: Role, payload: &[u8]) -> Result<Observation, DecodeError> {
        let s = text(FAMILY, payload)?;
        if s.is_empty() {
            return Ok(Observation::Nothing);
        }
        match role {
            Role::Presence => {
                let word = if s.starts_with('{') {
                    let v = json(FAMILY, payload)?;
                    match v.get("state").and_then(|x| x.as_str()) {
                        Some(w) => w.to_owned(),
                        None => return Err(unexpected(s, r#"{"state":"online"|"offline"}"#)),
                    }
                } else {
                    s.to_owned()
                };
                match word.as_str() {
                    "online" => Ok(Observation::Presence(true)),
                    "offline" => Ok(Observation::Presence(false)),
                    other => Err(unexpected(other, "online or offline")),
                }
            }
            Role::State => {
                let v = json(FAMILY, payload)?;
                if !v.is_object() {
                    return Err(unexpected(s, "a JSON object"));
                }
                super::power_field(FAMILY, v.get("state"), on_off)
            }
        }
    }
}

/// A Zigbee group as `<base>/bridge/groups` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its friendly name: `<base>/<name>/set` commands every member at once.
    pub name: String,
    /// Its members' IEEE addresses.
    pub members: Vec<String>,
}

/// Reads `<base>/bridge/groups` (retained): `[{"id":1,"friendly_name":"my_group",
/// "members":[{"ieee_address":"0x..","endpoint":1}],..}]`. A group whose name cannot be a topic
/// part is left out.
pub fn parse_groups(payload: &[u8]) -> Result<Vec<Group>, DecodeError> {
    let v = json(FAMILY, payload)?;
    let Some(list) = v.as_array() else {
        return Err(unexpected(&v.to_string(), "a list of groups"));
    };
    Ok(list
        .iter()
        .filter_map(|g| {
            let name = g.get("friendly_name")?.as_str()?;
            super::check_topic_part(FAMILY, name).ok()?;
            let members = g
                .get("members")
                .and_then(serde_json::Value::as_array)
                .map(|ms| {
                    ms.iter()
                        .filter_map(|m| m.get("ieee_address")?.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Some(Group {
                name: name.to_owned(),
                members,
            })
        })
        .collect())
}

fn unexpected(got: &str, expected: &str) -> DecodeError {
    super::unexpected(FAMILY, got, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_the_documented_payloads() {
        let z = Zigbee2mqtt::new("living room/lamp");
        let p = z.set_power(true);
        assert_eq!(p.topic, "zigbee2mqtt/living room/lamp/set");
        assert_eq!(p.payload, br#"{"state":"ON"}"#);
        assert_eq!(z.read_back().topic, "zigbee2mqtt/living room/lamp/get");
        let state = br#"{"state":"OFF","brightness":254,"linkquality":120}"#;
        assert_eq!(z.decode(Role::State, state), Ok(Observation::Power(false)));
        assert_eq!(
            z.decode(Role::State, br#"{"linkquality":99}"#),
            Ok(Observation::Nothing)
        );
        assert_eq!(
            z.decode(Role::Presence, br#"{"state":"online"}"#),
            Ok(Observation::Presence(true))
        );
        assert_eq!(
            z.decode(Role::Presence, b"offline"),
            Ok(Observation::Presence(false))
        );
        assert!(z.decode(Role::State, b"ON").is_err());
        // Zigbee2MQTT's documentation, MQTT topics and messages, `zigbee2mqtt/bridge/groups`.
        let groups = br#"[{"id":1,"friendly_name":"my_group","scenes":[{"id":1,"name":"Scene 1"}],"members":[{"ieee_address":"0x90fd9ffffe6494fc","endpoint":1}]}]"#;
        assert_eq!(
            parse_groups(groups),
            Ok(vec![Group {
                name: "my_group".to_owned(),
                members: vec!["0x90fd9ffffe6494fc".to_owned()],
            }])
        );
        assert!(parse_groups(br#"{"id":1}"#).is_err());
        assert!(z.decode(Role::Presence, br#"{"status":"up"}"#).is_err());
    }
}
