//! Tasmota: `cmnd/<topic>/POWER` to command, `stat/<topic>/RESULT` and `stat/<topic>/POWER` to
//! confirm, `tele/<topic>/LWT` (retained `Online`/`Offline`) for presence.
//!
//! Topics follow the device's FullTopic (default `%prefix%/%topic%/`) with the prefixes `cmnd`,
//! `stat` and `tele` (each configurable). A device with one relay says `POWER`; with several,
//! `POWER1`..`POWER8` (and `POWER` for the first, as a synonym, in commands). Sources in
//! `docs/FAMILIES.md`.

use serde::{Deserialize, Serialize};

use super::{command, json, on_off, text, Observation, Role};
use crate::error::DecodeError;
use crate::session::Publish;

const FAMILY: &str = "tasmota";

/// The default FullTopic.
pub const DEFAULT_FULL_TOPIC: &str = "%prefix%/%topic%/";

/// A Tasmota device's relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tasmota {
    /// The device's Topic (`%topic%`), e.g. `tasmota_1A2B3C`.
    pub topic: String,
    /// The device's FullTopic, with `%prefix%` and `%topic%`.
    #[serde(default = "default_full_topic")]
    pub full_topic: String,
    /// The command, status and telemetry prefixes (`cmnd`, `stat`, `tele`).
    #[serde(default = "default_prefixes")]
    pub prefixes: [String; 3],
    /// Which relay: 0 for a device with one relay (`POWER`), 1..=32 for `POWER<n>`.
    #[serde(default)]
    pub relay: u8,
    /// The words for off and on (`StateText1`, `StateText2`: `OFF`, `ON`).
    #[serde(default = "default_state_text")]
    pub state_text: [String; 2],
    /// The LWT's words for offline and online (`Offline`, `Online`).
    #[serde(default = "default_lwt")]
    pub lwt: [String; 2],
}

fn default_state_text() -> [String; 2] {
    ["OFF".to_owned(), "ON".to_owned()]
}

fn default_lwt() -> [String; 2] {
    ["Offline".to_owned(), "Online".to_owned()]
}

fn default_full_topic() -> String {
    DEFAULT_FULL_TOPIC.to_owned()
}

fn default_prefixes() -> [String; 3] {
    ["cmnd".to_owned(), "stat".to_owned(), "tele".to_owned()]
}

impl Tasmota {
    /// The only relay of a device with the default FullTopic and prefixes.
    pub fn new(topic: impl Into<String>) -> Self {
        Tasmota {
            topic: topic.into(),
            full_topic: default_full_topic(),
            prefixes: default_prefixes(),
            relay: 0,
            state_text: default_state_text(),
            lwt: default_lwt(),
        }
    }

    /// Relay `relay` (1-based) of a device with several.
    pub fn relay(mut self, relay: u8) -> Self {
        self.relay = relay;
        self
    }

    /// `cmnd/<topic>/<command>` (with the device's FullTopic and prefix).
    pub fn topic_for(&self, prefix: Prefix, command: &str) -> String {
        let mut t = self
            .full_topic
            .replace("%prefix%", &self.prefixes[prefix as usize])
            .replace("%topic%", &self.topic);
        if !t.ends_with('/') {
            t.push('/');
        }
        t.push_str(command);
        t
    }

    /// `POWER` or `POWER<n>`.
    pub fn power_key(&self) -> String {
        match self.relay {
            0 => "POWER".to_owned(),
            n => format!("POWER{n}"),
        }
    }

    pub(super) fn relay_suffix(&self) -> Option<String> {
        (self.relay > 0).then(|| self.relay.to_string())
    }

    /// `cmnd/<topic>/POWER<n>` `ON` or `OFF` (always the default words, which Tasmota takes
    /// whatever its state texts).
    pub fn set_power(&self, on: bool) -> Publish {
        let payload = if on { "ON" } else { "OFF" };
        command(self.topic_for(Prefix::Command, &self.power_key()), payload)
    }

    fn power_word(&self, s: &str) -> Option<bool> {
        if s == self.state_text[1] {
            Some(true)
        } else if s == self.state_text[0] {
            Some(false)
        } else {
            on_off(s)
        }
    }

    /// `cmnd/<topic>/POWER<n>` with an empty payload: Tasmota answers with the relay's state.
    pub fn read_back(&self) -> Publish {
        command(self.topic_for(Prefix::Command, &self.power_key()), "")
    }

    /// `cmnd/<topic>/STATUS` `1`: the device answers its parameters on `stat/<topic>/STATUS1`,
    /// its GroupTopic among them.
    pub fn probe(&self) -> Publish {
        command(self.topic_for(Prefix::Command, "STATUS"), "1")
    }

    /// The same relay reached through GroupTopic `group_topic`: with the default SetOption75, a
    /// device takes commands on its FullTopic with `%topic%` replaced by each of its GroupTopics.
    pub fn through_group(&self, group_topic: &str) -> Tasmota {
        Tasmota {
            topic: group_topic.to_owned(),
            ..self.clone()
        }
    }

    /// `stat/<topic>/RESULT`, `stat/<topic>/POWER<n>`, `tele/<topic>/STATE` (state),
    /// `tele/<topic>/LWT` (presence), and where the device says which GroupTopic it listens on:
    /// `stat/<topic>/STATUS1` (the answer to [`Tasmota::probe`]) and `tele/<topic>/INFO1` (sent
    /// on every connect).
    pub fn topics(&self) -> Vec<(String, Role)> {
        vec![
            (self.topic_for(Prefix::Status, "RESULT"), Role::State),
            (
                self.topic_for(Prefix::Status, &self.power_key()),
                Role::State,
            ),
            (self.topic_for(Prefix::Telemetry, "STATE"), Role::State),
            (self.topic_for(Prefix::Telemetry, "LWT"), Role::Presence),
            (self.topic_for(Prefix::Status, "STATUS1"), Role::State),
            (self.topic_for(Prefix::Telemetry, "INFO1"), Role::State),
        ]
    }

    /// The GroupTopic in `STATUS1` (`{"StatusPRM":{"GroupTopic":"tasmotas",..}}`) or `INFO1`
    /// (`{"GroupTopic":"cmnd/sonoffs/"}` before 9.0, `{"GroupTopic":"sonoffs"}` since, and
    /// `{"Info1":{..}}` in later versions).
    fn group_topic(&self, obj: &serde_json::Map<String, serde_json::Value>) -> Observation {
        let field = obj
            .get("GroupTopic")
            .or_else(|| obj.get("StatusPRM").and_then(|p| p.get("GroupTopic")))
            .or_else(|| obj.get("Info1").and_then(|p| p.get("GroupTopic")));
        let Some(full) = field.and_then(serde_json::Value::as_str) else {
            return Observation::Nothing;
        };
        let command_prefix = format!("{}/", self.prefixes[Prefix::Command as usize]);
        let group = full.strip_prefix(&command_prefix).unwrap_or(full);
        let group = group.trim_end_matches('/');
        if super::check_topic_part(FAMILY, group).is_err() || group.contains('/') {
            return Observation::Nothing;
        }
        Observation::GroupTopic(group.to_owned())
    }

    /// A JSON report (`{"POWER":"ON"}`, `tele/.../STATE`) or a plain one (`ON` on
    /// `stat/.../POWER`); `Online`/`Offline` on the LWT.
    pub fn decode(
        &self,
        topic: &str,
        role: Role,
        payload: &[u8],
    ) -> Result<Observation, DecodeError> {
        let s = text(FAMILY, payload)?;
        match role {
            Role::Presence if s == self.lwt[1] => Ok(Observation::Presence(true)),
            Role::Presence if s == self.lwt[0] => Ok(Observation::Presence(false)),
            Role::Presence if s.is_empty() => Ok(Observation::Nothing),
            Role::Presence => Err(unexpected(
                s,
                &format!("{} or {}", self.lwt[1], self.lwt[0]),
            )),
            Role::State if topic.ends_with(&format!("/{}", self.power_key())) => self
                .power_word(s)
                .map(Observation::Power)
                .ok_or_else(|| unexpected(s, "ON or OFF")),
            Role::State => {
                let v = json(FAMILY, payload)?;
                let Some(obj) = v.as_object() else {
                    return Err(unexpected(s, "a JSON object"));
                };
                if topic.ends_with("/STATUS1") || topic.ends_with("/INFO1") {
                    return Ok(self.group_topic(obj));
                }
                // A device with one relay answers `POWER`; relay 1 of several may answer `POWER1`.
                let keys = match self.relay {
                    0 => vec!["POWER".to_owned(), "POWER1".to_owned()],
                    1 => vec!["POWER1".to_owned(), "POWER".to_owned()],
                    _ => vec![self.power_key()],
                };
                let field = keys.iter().find_map(|k| obj.get(k));
                super::power_field(FAMILY, field, |w| self.power_word(w))
            }
        }
    }
}

/// Which of the three prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// `cmnd`.
    Command = 0,
    /// `stat`.
    Status = 1,
    /// `tele`.
    Telemetry = 2,
}

fn unexpected(got: &str, expected: &str) -> DecodeError {
    super::unexpected(FAMILY, got, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_topics() {
        let t = Tasmota::new("tasmota_1A2B3C");
        let p = t.set_power(true);
        assert_eq!(p.topic, "cmnd/tasmota_1A2B3C/POWER");
        assert_eq!(p.payload, b"ON");
        assert!(!p.retain);
        let two = Tasmota::new("sonoff").relay(2);
        assert_eq!(two.set_power(false).topic, "cmnd/sonoff/POWER2");
        assert_eq!(two.read_back().payload, b"");
        let custom = Tasmota {
            full_topic: "home/%topic%/%prefix%/".to_owned(),
            ..Tasmota::new("lamp")
        };
        assert_eq!(
            custom.topic_for(Prefix::Telemetry, "LWT"),
            "home/lamp/tele/LWT"
        );
    }

    #[test]
    fn reads_power_from_each_report() {
        let t = Tasmota::new("lamp");
        let d = |topic: &str, role, p: &str| t.decode(topic, role, p.as_bytes());
        assert_eq!(
            d("stat/lamp/RESULT", Role::State, r#"{"POWER":"ON"}"#),
            Ok(Observation::Power(true))
        );
        assert_eq!(
            d("stat/lamp/POWER", Role::State, "OFF"),
            Ok(Observation::Power(false))
        );
        assert_eq!(
            d("stat/lamp/RESULT", Role::State, r#"{"Dimmer":40}"#),
            Ok(Observation::Nothing)
        );
        assert_eq!(
            d("tele/lamp/LWT", Role::Presence, "Offline"),
            Ok(Observation::Presence(false))
        );
        assert!(d("stat/lamp/POWER", Role::State, "MAYBE").is_err());
        assert!(d("stat/lamp/RESULT", Role::State, "[1,2]").is_err());
        assert!(d("tele/lamp/LWT", Role::Presence, "gone").is_err());
        assert_eq!(
            d(
                "stat/lamp/STATUS1",
                Role::State,
                r#"{"StatusPRM":{"Baudrate":115200,"GroupTopic":"sonoffs","OtaUrl":"XXX"}}"#
            ),
            Ok(Observation::GroupTopic("sonoffs".to_owned()))
        );
        assert_eq!(
            d(
                "tele/lamp/INFO1",
                Role::State,
                r#"{"Module":"Generic","Version":"7.0.0.3(tasmota)","FallbackTopic":"cmnd/DVES_15568C_fb/","GroupTopic":"cmnd/sonoffs/"}"#
            ),
            Ok(Observation::GroupTopic("sonoffs".to_owned()))
        );
        assert_eq!(
            d("tele/lamp/INFO1", Role::State, r#"{"Module":"Generic"}"#),
            Ok(Observation::Nothing)
        );
        assert_eq!(t.probe().topic, "cmnd/lamp/STATUS");
        assert_eq!(
            t.through_group("tasmotas").set_power(true).topic,
            "cmnd/tasmotas/POWER"
        );
        let relay2 = Tasmota::new("strip").relay(2);
        let r = br#"{"POWER1":"ON","POWER2":"OFF"}"#;
        assert_eq!(
            relay2.decode("stat/strip/RESULT", Role::State, r),
            Ok(Observation::Power(false))
        );
    }
}
