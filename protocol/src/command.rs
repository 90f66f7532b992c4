//! The commands a device understands, parsed from an envelope's `cmd` + `args` or from the pattern
//! document's text form (`light: on`).
//!
//! Parsing is the only place a command's arguments are checked; whatever fails here becomes a typed
//! [`Rejection`] (`unknown_command` or `invalid_arguments`), never silence.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::envelope::{Config, Rejection};

/// Shortest telemetry period accepted, in milliseconds.
pub const MIN_TELEMETRY_MS: u64 = 100;
/// Longest telemetry period accepted, in milliseconds (one day).
pub const MAX_TELEMETRY_MS: u64 = 86_400_000;
/// Most log lines one `get_log` returns.
pub const MAX_LOG_LINES: u32 = 1000;

/// A command, with its arguments checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Turn the light on or off.
    Light {
        /// On or off.
        on: bool,
    },
    /// Turn the LED on or off.
    Led {
        /// On or off.
        on: bool,
    },
    /// Drop the connection, wait, and come back with the saved configuration applied.
    Restart {
        /// How long to stay away, in milliseconds.
        #[serde(default)]
        delay_ms: u64,
    },
    /// Publish the latest log lines to the device's log topic.
    GetLog {
        /// How many lines, at most [`MAX_LOG_LINES`].
        #[serde(default = "default_log_lines")]
        lines: u32,
    },
    /// Change the telemetry period now (not saved).
    SetTelemetryInterval {
        /// The new period in milliseconds.
        interval_ms: u64,
    },
    /// Save configuration that takes effect on the next restart.
    SetConfig {
        /// The values to save; fields left out keep their saved value.
        config: Config,
    },
    /// Report the current state.
    GetState,
    /// Firmware update, step 1: download and stage an image.
    FirmwareStage {
        /// The version to stage.
        version: String,
    },
    /// Firmware update, step 2: verify the staged image.
    FirmwareVerify,
    /// Firmware update, step 3: switch to the verified image.
    FirmwareActivate,
}

fn default_log_lines() -> u32 {
    20
}

/// Every command name, for menus and error messages.
pub const NAMES: &[&str] = &[
    "light",
    "led",
    "restart",
    "get_log",
    "set_telemetry_interval",
    "set_config",
    "get_state",
    "firmware_stage",
    "firmware_verify",
    "firmware_activate",
];

fn args<T: DeserializeOwned>(name: &str, args: &serde_json::Value) -> Result<T, Rejection> {
    let value = if args.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        args.clone()
    };
    serde_path_to_error::deserialize(value).map_err(|e| invalid(name, &e))
}

/// The rejection for arguments that do not fit `name`, naming the argument that is wrong.
fn invalid(name: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let path = e.path().to_string();
    let path = path.strip_prefix("args.").unwrap_or(&path);
    let detail = if matches!(path, "" | "." | "args") {
        format!("{name}: {}", e.inner())
    } else {
        format!("{name}: argument `{path}`: {}", e.inner())
    };
    Rejection::InvalidArguments { detail }
}

impl Command {
    /// Parses an envelope's command name and arguments.
    pub fn from_parts(name: &str, raw: &serde_json::Value) -> Result<Command, Rejection> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct On {
            on: bool,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Nothing {}

        let cmd = match name {
            "light" => Command::Light {
                on: args::<On>(name, raw)?.on,
            },
            "led" => Command::Led {
                on: args::<On>(name, raw)?.on,
            },
            "get_state" => {
                args::<Nothing>(name, raw)?;
                Command::GetState
            }
            "firmware_verify" => {
                args::<Nothing>(name, raw)?;
                Command::FirmwareVerify
            }
            "firmware_activate" => {
                args::<Nothing>(name, raw)?;
                Command::FirmwareActivate
            }
            "restart" | "get_log" | "set_telemetry_interval" | "set_config" | "firmware_stage" => {
                let tagged = serde_json::json!({ "cmd": name, "args": if raw.is_null() { serde_json::json!({}) } else { raw.clone() } });
                serde_path_to_error::deserialize(tagged).map_err(|e| invalid(name, &e))?
            }
            _ => {
                return Err(Rejection::UnknownCommand {
                    command: name.to_owned(),
                })
            }
        };
        cmd.check()?;
        Ok(cmd)
    }

    /// Range checks that serde cannot express.
    fn check(&self) -> Result<(), Rejection> {
        let name = self.name();
        let bad = |detail: String| {
            Err(Rejection::InvalidArguments {
                detail: format!("{name}: {detail}"),
            })
        };
        match self {
            Command::SetTelemetryInterval { interval_ms }
            | Command::SetConfig {
                config:
                    Config {
                        telemetry_interval_ms: Some(interval_ms),
                        ..
                    },
            } if !(MIN_TELEMETRY_MS..=MAX_TELEMETRY_MS).contains(interval_ms) => bad(format!(
                "telemetry interval {interval_ms} ms is outside {MIN_TELEMETRY_MS}..={MAX_TELEMETRY_MS}"
            )),
            Command::GetLog { lines } if *lines == 0 || *lines > MAX_LOG_LINES => {
                bad(format!("lines {lines} is outside 1..={MAX_LOG_LINES}"))
            }
            Command::Restart { delay_ms } if *delay_ms > 600_000 => {
                bad(format!("restart delay {delay_ms} ms is longer than 10 minutes"))
            }
            Command::FirmwareStage { version } if version.is_empty() || version.len() > 64 => {
                bad(format!("firmware version {version:?} must be 1 to 64 bytes"))
            }
            _ => Ok(()),
        }
    }

    /// The command's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Light { .. } => "light",
            Command::Led { .. } => "led",
            Command::Restart { .. } => "restart",
            Command::GetLog { .. } => "get_log",
            Command::SetTelemetryInterval { .. } => "set_telemetry_interval",
            Command::SetConfig { .. } => "set_config",
            Command::GetState => "get_state",
            Command::FirmwareStage { .. } => "firmware_stage",
            Command::FirmwareVerify => "firmware_verify",
            Command::FirmwareActivate => "firmware_activate",
        }
    }

    /// The command's arguments on the wire (`null` when it takes none).
    pub fn args(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.remove("args").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// Parses the pattern document's text form: `name` or `name: argument`.
    ///
    /// `light: on`, `light: off`, `led: on`, `restart`, `get_log`, `get_log: 50`,
    /// `set_telemetry_interval: 500`, `get_state`, `firmware_stage: 2.0.1`, ... Names are
    /// case-insensitive and may use spaces or dashes for underscores; `on`/`off`, `true`/`false`
    /// and `1`/`0` all work for switches.
    pub fn parse_text(text: &str) -> Result<Command, Rejection> {
        let text = text.trim();
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (text, None),
        };
        let name = name.to_ascii_lowercase().replace([' ', '-'], "_");
        let switch = |arg: Option<&str>| -> Result<bool, Rejection> {
            arg.and_then(parse_switch)
                .ok_or_else(|| Rejection::InvalidArguments {
                    detail: format!("{name}: expected on or off, got {arg:?}"),
                })
        };
        let number = |arg: Option<&str>| -> Result<u64, Rejection> {
            arg.and_then(|a| a.parse().ok())
                .ok_or_else(|| Rejection::InvalidArguments {
                    detail: format!("{name}: expected a number, got {arg:?}"),
                })
        };
        let args = match name.as_str() {
            "light" | "led" => serde_json::json!({ "on": switch(arg)? }),
            "restart" => match arg {
                Some(_) => serde_json::json!({ "delay_ms": number(arg)? }),
                None => serde_json::Value::Null,
            },
            "get_log" => match arg {
                Some(_) => serde_json::json!({ "lines": number(arg)? }),
                None => serde_json::Value::Null,
            },
            "set_telemetry_interval" => serde_json::json!({ "interval_ms": number(arg)? }),
            "firmware_stage" => serde_json::json!({ "version": arg.unwrap_or_default() }),
            "set_config" => match arg {
                Some(a) => {
                    let config: serde_json::Value =
                        serde_json::from_str(a).map_err(|e| Rejection::InvalidArguments {
                            detail: format!("set_config: expected a JSON object: {e}"),
                        })?;
                    serde_json::json!({ "config": config })
                }
                None => serde_json::Value::Null,
            },
            _ => {
                if arg.is_some() && NAMES.contains(&name.as_str()) {
                    return Err(Rejection::InvalidArguments {
                        detail: format!("{name} takes no argument"),
                    });
                }
                serde_json::Value::Null
            }
        };
        Command::from_parts(&name, &args)
    }

    /// The ordered sequence this command is a step of, if any.
    pub fn is_sequence_step(&self) -> bool {
        matches!(
            self,
            Command::FirmwareStage { .. } | Command::FirmwareVerify | Command::FirmwareActivate
        )
    }
}

/// A switch in the text form: `on`/`off`, `true`/`false` or `1`/`0`, in any case, spaces around
/// ignored.
pub fn parse_switch(arg: &str) -> Option<bool> {
    let arg = arg.trim();
    if ["on", "true", "1"]
        .iter()
        .any(|w| arg.eq_ignore_ascii_case(w))
    {
        Some(true)
    } else if ["off", "false", "0"]
        .iter()
        .any(|w| arg.eq_ignore_ascii_case(w))
    {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn envelope_parts_parse_and_round_trip() {
        let cases = [
            Command::Light { on: true },
            Command::Led { on: false },
            Command::Restart { delay_ms: 1000 },
            Command::GetLog { lines: 5 },
            Command::SetTelemetryInterval { interval_ms: 250 },
            Command::SetConfig {
                config: Config {
                    telemetry_interval_ms: Some(2000),
                    light_on_boot: Some(true),
                    label: None,
                },
            },
            Command::GetState,
            Command::FirmwareStage {
                version: "2.0.0".into(),
            },
            Command::FirmwareVerify,
            Command::FirmwareActivate,
        ];
        for c in cases {
            assert!(NAMES.contains(&c.name()));
            assert_eq!(Command::from_parts(c.name(), &c.args()), Ok(c.clone()));
        }
    }

    #[test]
    fn unknown_and_invalid_are_typed() {
        assert_eq!(
            Command::from_parts("self_destruct", &json!(null)),
            Err(Rejection::UnknownCommand {
                command: "self_destruct".into()
            })
        );
        for (name, args) in [
            ("light", json!(null)),
            ("light", json!({"on": "yes"})),
            ("light", json!({"on": true, "extra": 1})),
            ("set_telemetry_interval", json!({"interval_ms": 5})),
            ("get_log", json!({"lines": 0})),
            ("set_config", json!({"config": {"nope": 1}})),
            (
                "set_config",
                json!({"config": {"telemetry_interval_ms": 1}}),
            ),
            ("get_state", json!({"x": 1})),
            ("firmware_stage", json!({"version": ""})),
            ("restart", json!([1, 2])),
        ] {
            match Command::from_parts(name, &args) {
                Err(Rejection::InvalidArguments { detail }) => {
                    assert!(detail.starts_with(name), "{detail}")
                }
                other => panic!("{name} {args}: {other:?}"),
            }
        }
    }

    #[test]
    fn document_text_commands() {
        assert_eq!(
            Command::parse_text("light: on"),
            Ok(Command::Light { on: true })
        );
        assert_eq!(
            Command::parse_text(" Light : OFF "),
            Ok(Command::Light { on: false })
        );
        assert_eq!(
            Command::parse_text("restart"),
            Ok(Command::Restart { delay_ms: 0 })
        );
        assert_eq!(
            Command::parse_text("set telemetry interval: 500"),
            Ok(Command::SetTelemetryInterval { interval_ms: 500 })
        );
        assert_eq!(Command::parse_text("get-state"), Ok(Command::GetState));
        assert_eq!(
            Command::parse_text("set_config: {\"light_on_boot\": true}"),
            Ok(Command::SetConfig {
                config: Config {
                    light_on_boot: Some(true),
                    ..Config::default()
                }
            })
        );
        assert!(matches!(
            Command::parse_text("dance"),
            Err(Rejection::UnknownCommand { .. })
        ));
        assert_eq!(parse_switch(" ON "), Some(true));
        assert_eq!(parse_switch("0"), Some(false));
        assert_eq!(parse_switch("maybe"), None);
        assert!(matches!(
            Command::parse_text("light: maybe"),
            Err(Rejection::InvalidArguments { .. })
        ));
        assert!(matches!(
            Command::parse_text("get_state: now"),
            Err(Rejection::InvalidArguments { .. })
        ));
    }
}
