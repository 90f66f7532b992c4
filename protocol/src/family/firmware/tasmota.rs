//! A Tasmota device's side of the wire: `POWER` commands (on its own topic and its GroupTopic),
//! `Status 1`, `State`, and the `RESULT`, `POWER`, `STATE` and `INFO1` it publishes.

use serde_json::{json, Value};

use super::relay::Switch;
use super::{plain, Firmware, Handled, DEFAULT_GROUP_TOPIC};
use crate::error::DecodeError;
use crate::family::tasmota::{Prefix, Tasmota};
use crate::family::text;
use crate::session::Publish;

impl Firmware {
    pub(super) fn tasmota(
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
                a => Some(power_argument(a).ok_or_else(|| DecodeError::Foreign {
                    family: "tasmota",
                    detail: format!("{a:?} is not a POWER argument"),
                })?),
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

    pub(super) fn tasmota_power(&self, t: &Tasmota) -> Vec<Publish> {
        let word = t.state_text[usize::from(self.relay.is_on())].clone();
        vec![
            plain(
                t.topic_for(Prefix::Status, "RESULT"),
                json!({ t.power_key(): word }).to_string(),
            ),
            plain(t.topic_for(Prefix::Status, &t.power_key()), word),
        ]
    }

    /// `INFO1`, in the layout Tasmota 9 publishes on connect.
    pub(super) fn tasmota_info(&self) -> String {
        json!({
            "Module": "Generic",
            "Version": "9.0.0.2(tasmota)",
            "FallbackTopic": "cmnd/DVES_000000_fb/",
            "GroupTopic": self.groups.first().map_or(DEFAULT_GROUP_TOPIC, String::as_str),
        })
        .to_string()
    }

    /// `STATUS1` (`Status 1`, the device's parameters).
    pub(super) fn tasmota_parameters(&self) -> String {
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

    pub(super) fn tasmota_state(&self, t: &Tasmota) -> Value {
        json!({
            "Time": "1970-01-01T00:00:00",
            "Uptime": "0T00:00:00",
            t.power_key(): t.state_text[usize::from(self.relay.is_on())],
        })
    }
}

/// Tasmota's `Power` arguments: `0`/`off`/`false`, `1`/`on`/`true`, `2`/`toggle`.
fn power_argument(s: &str) -> Option<Switch> {
    match s.to_ascii_lowercase().as_str() {
        "0" | "off" | "false" => Some(Switch::Off),
        "1" | "on" | "true" => Some(Switch::On),
        "2" | "toggle" => Some(Switch::Toggle),
        _ => None,
    }
}
