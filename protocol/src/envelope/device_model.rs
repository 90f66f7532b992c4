//! The device model: the state a Switchboard device reports with every answer and in its retained
//! status, and the configuration it applies when it starts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a device stands in one ordered sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencePosition {
    /// The last step completed, `None` when the sequence is idle.
    pub done: Option<String>,
    /// The step that may run next, `None` when only the first step may run.
    pub next: Option<String>,
}

/// A device's saved configuration: what it applies when it (re)starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Telemetry period after a restart, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_interval_ms: Option<u64>,
    /// Whether the light is on after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light_on_boot: Option<bool>,
    /// A human label for the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What a device reports about itself, with every response and in its retained status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// The light.
    pub light: bool,
    /// The LED.
    pub led: bool,
    /// Current telemetry period, in milliseconds.
    pub telemetry_interval_ms: u64,
    /// Configuration in effect since the last start.
    pub config: Config,
    /// Configuration saved for the next start, if it differs from `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_config: Option<Config>,
    /// Firmware version running.
    #[serde(default)]
    pub firmware: String,
    /// Progress in each ordered sequence, by sequence name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sequences: BTreeMap<String, SequencePosition>,
    /// How many times the device has started.
    #[serde(default)]
    pub boots: u64,
}
