//! A Shelly Gen2+ device's side of the wire: `Switch.Set`, `Switch.Toggle` and
//! `Switch.GetStatus` as JSON-RPC on `<prefix>/rpc`, answered on `<src>/rpc`.

use serde_json::{json, Value};

use super::relay::Switch;
use super::{plain, Firmware, Handled};
use crate::error::DecodeError;
use crate::family::json as parse_json;
use crate::family::shelly::Shelly;

impl Firmware {
    pub(super) fn shelly(&mut self, s: &Shelly, payload: &[u8]) -> Result<Handled, DecodeError> {
        let frame = parse_json("shelly", payload)?;
        let bad = |detail: String| DecodeError::Foreign {
            family: "shelly",
            detail,
        };
        let id = frame
            .get("id")
            .cloned()
            .ok_or_else(|| bad("a request without an id".to_owned()))?;
        let src = frame
            .get("src")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a request without a src".to_owned()))?
            .to_owned();
        let method = frame
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        let for_us = params.get("id").and_then(Value::as_u64).unwrap_or(0) == u64::from(s.switch);
        let error = |code: i64, message: String| {
            Handled {
            publishes: vec![plain(
                format!("{src}/rpc"),
                json!({"id": id, "src": s.prefix, "dst": src, "error": {"code": code, "message": message}}).to_string(),
            )],
            switched: false,
        }
        };
        match method {
            _ if !for_us => Ok(error(-105, "Argument 'id', value not found!".to_owned())),
            "Switch.Set" => match params.get("on").and_then(Value::as_bool) {
                Some(on) => Ok(self.apply(Some(Switch::to(on)), Some((&id, &src)))),
                None => Ok(error(-103, "Missing required argument 'on'!".to_owned())),
            },
            "Switch.Toggle" => Ok(self.apply(Some(Switch::Toggle), Some((&id, &src)))),
            "Switch.GetStatus" => Ok(self.apply(None, Some((&id, &src)))),
            other => Ok(error(404, format!("No handler for {other}"))),
        }
    }

    pub(super) fn shelly_status(&self, s: &Shelly) -> Value {
        json!({"id": s.switch, "source": "switchboard", "output": self.relay.is_on()})
    }
}
