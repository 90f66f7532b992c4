//! A Zigbee2MQTT device's side of the wire, as Zigbee2MQTT publishes for it: `/set` and `/get`
//! on its own name and its groups' names, and its state as JSON.

use serde_json::{json, Value};

use super::relay::Switch;
use super::{plain, Firmware, Handled};
use crate::error::DecodeError;
use crate::family::json as parse_json;
use crate::family::zigbee2mqtt::Zigbee2mqtt;

impl Firmware {
    pub(super) fn zigbee(
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
                let guess = self.relay.target(asked);
                let mut handled = self.apply(Some(asked), None);
                if through_group {
                    // A group command is a Zigbee multicast nobody acknowledges: Zigbee2MQTT
                    // publishes each member's state as asked (its groups are optimistic), whether
                    // or not the member acted.
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

    pub(super) fn zigbee_state(&self) -> Value {
        json!({"state": if self.relay.is_on() { "ON" } else { "OFF" }, "linkquality": 120})
    }
}
