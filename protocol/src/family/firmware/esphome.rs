//! An ESPHome device's side of the wire: `<prefix>/<component>/<object_id>/command` and the
//! retained state on `/state`.

use serde_json::{json, Value};

use super::relay::Switch;
use super::{retained, Firmware, Handled};
use crate::error::DecodeError;
use crate::family::esphome::{Component, Esphome};
use crate::family::{json as parse_json, text};
use crate::session::Publish;

impl Firmware {
    pub(super) fn esphome(&mut self, e: &Esphome, payload: &[u8]) -> Result<Handled, DecodeError> {
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

    pub(super) fn esphome_state(&self, e: &Esphome) -> Publish {
        let word = if self.relay.is_on() { "ON" } else { "OFF" };
        let payload = match e.component {
            Component::Switch => word.to_owned(),
            Component::Light => json!({"color_mode": "onoff", "state": word}).to_string(),
        };
        retained(
            format!("{}/{}/{}/state", e.prefix, component(e), e.object_id),
            payload,
        )
    }
}

pub(super) fn component(e: &Esphome) -> &'static str {
    match e.component {
        Component::Switch => "switch",
        Component::Light => "light",
    }
}
