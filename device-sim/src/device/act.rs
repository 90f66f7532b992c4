//! What each command does to a simulated device: its state, its saved configuration, its firmware.

use super::*;
use switchboard_protocol::family::firmware::relay::{Relay, Switch};

impl Device {
    /// Gives a command its effect. `Err` is a failure message.
    pub(super) fn act(
        &mut self,
        link: &mut Link,
        command: &Command,
    ) -> Result<serde_json::Value, String> {
        self.note(format!("executing {}", command.name()));
        match command {
            Command::Light { on } => {
                // The same relay as every family's firmware; a held one answers the failure.
                let mut relay = Relay::new(self.state.light);
                let stuck = self.spec.faults.stuck;
                relay.hold(stuck > 0.0 && self.rng.f64() < stuck);
                let asked = Switch::to(*on);
                if relay.is_held() && relay.target(asked) != relay.is_on() {
                    return Err("the relay is held: the light did not switch".to_owned());
                }
                relay.apply(asked);
                self.state.light = relay.is_on();
                Ok(json!({ "light": on }))
            }
            Command::Led { on } => {
                self.state.led = *on;
                Ok(json!({ "led": on }))
            }
            Command::Restart { delay_ms } => Ok(json!({ "restarting_in_ms": delay_ms })),
            Command::GetLog { lines } => {
                let n = usize::try_from(*lines)
                    .unwrap_or(usize::MAX)
                    .min(self.log.len());
                let lines: Vec<_> = self.log.iter().skip(self.log.len() - n).cloned().collect();
                let payload = serde_json::to_vec(&LogLines {
                    v: VERSION,
                    device: self.spec.id.clone(),
                    lines,
                })
                .unwrap_or_default();
                let topic = topic::log(&self.spec.id);
                self.publish(link, Publish::new(topic.clone(), payload, QoS::AtLeastOnce));
                Ok(json!({ "published": n, "topic": topic }))
            }
            Command::SetTelemetryInterval { interval_ms } => {
                self.state.telemetry_interval_ms = *interval_ms;
                self.schedule_telemetry();
                Ok(json!({ "telemetry_interval_ms": interval_ms }))
            }
            Command::SetConfig { config } => {
                let saved = &mut self.record.saved_config;
                merge(saved, config);
                let saved = saved.clone();
                self.state.pending_config = (saved != self.state.config).then_some(saved.clone());
                Ok(json!({ "saved": saved, "takes_effect": "next restart" }))
            }
            // The state travels in every answer's `state`; no need to remember a copy as a result.
            Command::GetState => Ok(serde_json::Value::Null),
            Command::FirmwareStage { version } => {
                self.record.staged_firmware = Some(version.clone());
                Ok(json!({ "staged": version }))
            }
            Command::FirmwareVerify => match &self.record.staged_firmware {
                Some(v) => Ok(json!({ "verified": v })),
                None => Err("nothing staged to verify".to_owned()),
            },
            Command::FirmwareActivate => match self.record.staged_firmware.take() {
                Some(v) => {
                    self.record.firmware = v.clone();
                    self.state.firmware = v.clone();
                    Ok(json!({ "firmware": v }))
                }
                None => Err("nothing staged to activate".to_owned()),
            },
            _ => Err(format!(
                "{} is not supported by this device",
                command.name()
            )),
        }
    }
}

/// Saved configuration: fields given replace the saved ones, fields left out stay.
fn merge(saved: &mut Config, new: &Config) {
    if let Some(v) = new.telemetry_interval_ms {
        saved.telemetry_interval_ms = Some(v);
    }
    if let Some(v) = new.light_on_boot {
        saved.light_on_boot = Some(v);
    }
    if let Some(v) = &new.label {
        saved.label = Some(v.clone());
    }
}
