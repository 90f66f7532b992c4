//! What a device publishes of its own accord: its retained presence (`status/<device>`),
//! telemetry samples and log lines.

use serde::{Deserialize, Serialize};

use super::{check_size, decode_json, DeviceState, VERSION};
use crate::error::DecodeError;
use crate::time::Timestamp;
use crate::topic::{DeviceId, GroupId};

/// A device's retained presence message on `status/<device>`.
///
/// The device publishes it (retained) with `online: true` when it connects and whenever its state
/// changes; its Last Will publishes it (retained) with `online: false`. An empty retained payload
/// means the device was removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Envelope version, always [`VERSION`].
    pub v: u8,
    /// The device.
    pub device: DeviceId,
    /// Whether it is connected.
    pub online: bool,
    /// The groups whose fan-out topics it subscribes to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupId>,
    /// The command names it understands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Its current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<DeviceState>,
}

impl Status {
    /// The message a device's Last Will carries.
    pub fn offline(device: DeviceId) -> Status {
        Status {
            v: VERSION,
            device,
            online: false,
            groups: Vec::new(),
            capabilities: Vec::new(),
            state: None,
        }
    }

    /// JSON bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Decodes a retained status message; `Ok(None)` for an empty payload (device removed).
pub fn decode_status(bytes: &[u8]) -> Result<Option<Status>, DecodeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    check_size(bytes)?;
    decode_json(bytes).map(Some)
}

/// One telemetry sample on `telemetry/<device>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Envelope version, always [`VERSION`].
    pub v: u8,
    /// The device.
    pub device: DeviceId,
    /// Counts samples since the device started.
    pub seq: u64,
    /// When it was taken (device clock).
    pub at: Timestamp,
    /// The telemetry period in effect.
    pub interval_ms: u64,
    /// The light.
    pub light: bool,
    /// A measured value.
    pub temperature: f64,
}

/// Log lines a device publishes on `log/<device>` when asked with `get_log`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLines {
    /// Envelope version, always [`VERSION`].
    pub v: u8,
    /// The device.
    pub device: DeviceId,
    /// Oldest first.
    pub lines: Vec<String>,
}

/// Decodes a telemetry sample.
pub fn decode_telemetry(bytes: &[u8]) -> Result<Telemetry, DecodeError> {
    check_size(bytes)?;
    decode_json(bytes)
}

/// Decodes a log message.
pub fn decode_log(bytes: &[u8]) -> Result<LogLines, DecodeError> {
    check_size(bytes)?;
    decode_json(bytes)
}
