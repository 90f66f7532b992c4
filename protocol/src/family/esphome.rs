//! ESPHome's MQTT component: `<prefix>/switch/<object_id>/command` `ON`/`OFF` and the retained
//! `<prefix>/switch/<object_id>/state`; a light takes and reports JSON (`{"state":"ON"}`) on
//! `<prefix>/light/<object_id>/command` and `/state`. Birth and will on `<prefix>/status`
//! (`online`/`offline`, retained). A switch command that leaves the state unchanged publishes
//! nothing (the switch deduplicates its state), so a retained state equal to the target confirms
//! at once; a light publishes its state after every command. Sources in `docs/FAMILIES.md`.

use serde::{Deserialize, Serialize};

use super::{command, json, on_off, text, Observation, Role};
use crate::error::DecodeError;
use crate::session::Publish;

const FAMILY: &str = "esphome";

/// Which ESPHome component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// A switch: plain `ON`/`OFF`.
    Switch,
    /// A light: JSON payloads.
    Light,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Switch => "switch",
            Component::Light => "light",
        }
    }
}

/// One ESPHome switch or light.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Esphome {
    /// The node's topic prefix (its name by default).
    pub prefix: String,
    /// Switch or light.
    pub component: Component,
    /// The entity's object id (its name, lowercased, spaces as `_`).
    pub object_id: String,
}

impl Esphome {
    /// A switch of node `prefix`.
    pub fn switch(prefix: impl Into<String>, object_id: impl Into<String>) -> Self {
        Esphome {
            prefix: prefix.into(),
            component: Component::Switch,
            object_id: object_id.into(),
        }
    }

    /// A light of node `prefix`.
    pub fn light(prefix: impl Into<String>, object_id: impl Into<String>) -> Self {
        Esphome {
            component: Component::Light,
            ..Esphome::switch(prefix, object_id)
        }
    }

    fn entity_topic(&self, leaf: &str) -> String {
        format!(
            "{}/{}/{}/{leaf}",
            self.prefix,
            self.component.name(),
            self.object_id
        )
    }

    /// The command topic with `ON`/`OFF`, or `{"state":"ON"}` for a light.
    pub fn set_power(&self, on: bool) -> Publish {
        let word = if on { "ON" } else { "OFF" };
        let payload = match self.component {
            Component::Switch => word.to_owned(),
            Component::Light => format!(r#"{{"state":"{word}"}}"#),
        };
        command(self.entity_topic("command"), payload)
    }

    /// The entity's (retained) state topic.
    pub fn state_topic(&self) -> String {
        self.entity_topic("state")
    }

    /// The state topic and the node's status topic.
    pub fn topics(&self) -> Vec<(String, Role)> {
        vec![
            (self.entity_topic("state"), Role::State),
            (format!("{}/status", self.prefix), Role::Presence),
        ]
    }

    /// `ON`/`OFF`, a light's JSON state, or `online`/`offline`.
    pub fn decode(&self, role: Role, payload: &[u8]) -> Result<Observation, DecodeError> {
        let s = text(FAMILY, payload)?;
        if s.is_empty() {
            // A retained message cleared.
            return Ok(Observation::Nothing);
        }
        match (role, self.component) {
            (Role::Presence, _) => match s {
                "online" => Ok(Observation::Presence(true)),
                "offline" => Ok(Observation::Presence(false)),
                other => Err(unexpected(other, "online or offline")),
            },
            (Role::State, Component::Switch) => on_off(s)
                .map(Observation::Power)
                .ok_or_else(|| unexpected(s, "ON or OFF")),
            (Role::State, Component::Light) => {
                let v = json(FAMILY, payload)?;
                super::power_field(FAMILY, v.get("state"), on_off)
            }
        }
    }
}

fn unexpected(got: &str, expected: &str) -> DecodeError {
    super::unexpected(FAMILY, got, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_and_light_speak_their_documented_payloads() {
        let s = Esphome::switch("livingroom", "relay");
        let p = s.set_power(true);
        assert_eq!(p.topic, "livingroom/switch/relay/command");
        assert_eq!(p.payload, b"ON");
        assert_eq!(s.decode(Role::State, b"OFF"), Ok(Observation::Power(false)));
        assert_eq!(
            s.decode(Role::Presence, b"offline"),
            Ok(Observation::Presence(false))
        );
        assert!(s.decode(Role::State, b"1").is_err());
        let l = Esphome::light("kitchen", "ceiling");
        assert_eq!(l.set_power(false).payload, br#"{"state":"OFF"}"#);
        let state = br#"{"state":"ON","brightness":255,"color_mode":"brightness"}"#;
        assert_eq!(l.decode(Role::State, state), Ok(Observation::Power(true)));
        assert!(l.decode(Role::State, b"ON").is_err());
    }
}
