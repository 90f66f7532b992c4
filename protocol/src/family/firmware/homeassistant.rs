//! A switch announced through Home Assistant discovery (as `ha-mqtt-discoverable` writes one):
//! its command topic, and its state topic when it has one.

use serde_json::{json, Value};

use super::relay::Switch;
use super::{plain, Firmware, Handled};
use crate::error::DecodeError;
use crate::family::homeassistant::{Entity, Kind};
use crate::family::{json as parse_json, text};
use crate::session::Publish;

impl Firmware {
    pub(super) fn homeassistant(
        &mut self,
        h: &Entity,
        payload: &[u8],
    ) -> Result<Handled, DecodeError> {
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

    pub(super) fn homeassistant_state(&self, h: &Entity) -> Vec<Publish> {
        let Some(topic) = &h.state_topic else {
            return Vec::new();
        };
        let payload = match h.kind {
            Kind::LightJson => {
                json!({"state": if self.relay.is_on() { "ON" } else { "OFF" }}).to_string()
            }
            Kind::Switch | Kind::Light => if self.relay.is_on() {
                &h.state_on
            } else {
                &h.state_off
            }
            .clone(),
        };
        vec![plain(topic.clone(), payload)]
    }
}
