//! Shelly Gen2+ over MQTT: JSON-RPC requests on `<prefix>/rpc`
//! (`{"id":1,"src":"<app>","method":"Switch.Set","params":{"id":0,"on":true}}`), each answered on
//! `<src>/rpc` with the same `id` and a `result` or an `error`; status changes as `NotifyStatus`
//! on `<prefix>/events/rpc`; presence as `true`/`false` on `<prefix>/online`, retained. The id
//! makes the answer exact: the application's TID maps onto it. Sources in `docs/FAMILIES.md`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{command, json, text, Observation, Role, RpcCall};
use crate::error::DecodeError;
use crate::session::Publish;

const FAMILY: &str = "shelly";

/// One switch component of a Shelly device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shelly {
    /// The device's topic prefix (its device id by default, e.g. `shellyplus1pm-441793d69718`).
    pub prefix: String,
    /// The switch component's id (`switch:<id>`).
    #[serde(default)]
    pub switch: u8,
}

impl Shelly {
    /// Switch 0 of the device with topic prefix `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Shelly {
            prefix: prefix.into(),
            switch: 0,
        }
    }

    pub(super) fn switch_suffix(&self) -> Option<String> {
        (self.switch > 0).then(|| self.switch.to_string())
    }

    fn rpc(&self, call: &RpcCall<'_>, method: &str, params: Value) -> Publish {
        let body = serde_json::json!({
            "id": call.id,
            "src": call.src,
            "method": method,
            "params": params,
        });
        command(format!("{}/rpc", self.prefix), body.to_string())
    }

    /// `Switch.Set` with `on`.
    pub fn set_power(&self, on: bool, call: &RpcCall<'_>) -> Publish {
        self.rpc(
            call,
            "Switch.Set",
            serde_json::json!({ "id": self.switch, "on": on }),
        )
    }

    /// `Switch.GetStatus`: its `result.output` is the state.
    pub fn read_back(&self, call: &RpcCall<'_>) -> Publish {
        self.rpc(
            call,
            "Switch.GetStatus",
            serde_json::json!({ "id": self.switch }),
        )
    }

    /// The notifications, the component's status topic and `online`.
    pub fn topics(&self) -> Vec<(String, Role)> {
        vec![
            (format!("{}/events/rpc", self.prefix), Role::State),
            (
                format!("{}/status/switch:{}", self.prefix, self.switch),
                Role::State,
            ),
            (format!("{}/online", self.prefix), Role::Presence),
        ]
    }

    /// `NotifyStatus` / the status topic's `output`; `true`/`false` presence.
    pub fn decode(
        &self,
        topic: &str,
        role: Role,
        payload: &[u8],
    ) -> Result<Observation, DecodeError> {
        let s = text(FAMILY, payload)?;
        match role {
            Role::Presence => match s {
                "true" => Ok(Observation::Presence(true)),
                "false" => Ok(Observation::Presence(false)),
                "" => Ok(Observation::Nothing),
                other => Err(unexpected(other, "true or false")),
            },
            Role::State if topic.ends_with("/events/rpc") => {
                let v = json(FAMILY, payload)?;
                match v.get("method").and_then(Value::as_str) {
                    Some("NotifyStatus") | Some("NotifyFullStatus") => {}
                    _ => return Ok(Observation::Nothing),
                }
                let key = format!("switch:{}", self.switch);
                Ok(v.get("params")
                    .and_then(|p| p.get(&key))
                    .and_then(|c| c.get("output"))
                    .and_then(Value::as_bool)
                    .map_or(Observation::Nothing, Observation::Power))
            }
            Role::State => {
                let v = json(FAMILY, payload)?;
                match v.get("output") {
                    None => Ok(Observation::Nothing),
                    Some(Value::Bool(b)) => Ok(Observation::Power(*b)),
                    Some(other) => Err(unexpected(&other.to_string(), "output true or false")),
                }
            }
        }
    }
}

/// An answer on `<src>/rpc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// The device that answers (its `src`).
    pub device: String,
    /// What it said.
    pub outcome: ReplyOutcome,
}

/// What a reply says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// `Switch.Set` was applied (`result.was_on` is the state before).
    Set {
        /// The state before, if given.
        was_on: Option<bool>,
    },
    /// `Switch.GetStatus`: the state now.
    Status {
        /// The relay's output.
        output: bool,
    },
    /// An `error` with its code and message.
    Error {
        /// The JSON-RPC error code.
        code: i64,
        /// The message.
        message: String,
    },
}

/// Decodes an answer that came on `<src>/rpc`.
pub fn decode_reply(payload: &[u8]) -> Result<Reply, DecodeError> {
    super::check_size(payload)?;
    let v = json(FAMILY, payload)?;
    let id = v
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| unexpected("reply", "a numeric id"))?;
    let device = v
        .get("src")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let outcome = if let Some(e) = v.get("error") {
        ReplyOutcome::Error {
            code: e.get("code").and_then(Value::as_i64).unwrap_or_default(),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .chars()
                .take(256)
                .collect(),
        }
    } else if let Some(r) = v.get("result") {
        match r.get("output").and_then(Value::as_bool) {
            Some(output) => ReplyOutcome::Status { output },
            None => ReplyOutcome::Set {
                was_on: r.get("was_on").and_then(Value::as_bool),
            },
        }
    } else {
        return Err(unexpected("reply", "a result or an error"));
    };
    Ok(Reply {
        id,
        device,
        outcome,
    })
}

fn unexpected(got: &str, expected: &str) -> DecodeError {
    super::unexpected(FAMILY, got, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_id_and_the_reply_topic() {
        let s = Shelly::new("shellyplus1-a8032ab12345");
        let p = s.set_power(
            true,
            &RpcCall {
                id: 7,
                src: "switchboard-panel",
            },
        );
        assert_eq!(p.topic, "shellyplus1-a8032ab12345/rpc");
        let v: Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["src"], "switchboard-panel");
        assert_eq!(v["method"], "Switch.Set");
        assert_eq!(v["params"], serde_json::json!({"id": 0, "on": true}));
    }

    #[test]
    fn replies_and_notifications_decode() {
        let r = decode_reply(br#"{"id":7,"src":"shellyplus1-a8032ab12345","dst":"switchboard-panel","result":{"was_on":false}}"#).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(
            r.outcome,
            ReplyOutcome::Set {
                was_on: Some(false)
            }
        );
        let e = decode_reply(br#"{"id":8,"src":"x","dst":"y","error":{"code":-103,"message":"Invalid argument 'id'!"}}"#).unwrap();
        assert!(matches!(e.outcome, ReplyOutcome::Error { code: -103, .. }));
        assert!(decode_reply(br#"{"src":"x"}"#).is_err());
        let s = Shelly::new("sp1");
        let n = br#"{"src":"sp1","dst":"sp1/events","method":"NotifyStatus","params":{"ts":1.0,"switch:0":{"id":0,"output":true}}}"#;
        assert_eq!(
            s.decode("sp1/events/rpc", Role::State, n),
            Ok(Observation::Power(true))
        );
        assert_eq!(
            s.decode("sp1/online", Role::Presence, b"false"),
            Ok(Observation::Presence(false))
        );
    }
}
