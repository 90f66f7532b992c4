//! The command envelope: what travels on `cmd/<device>/req` and `cmd/<device>/resp`.
//!
//! Two encodings share the topics:
//! - **JSON envelope** (this crate's own): a [`Request`] carries a transaction id ([`Tid`]), the
//!   issuer, a per-issuer sequence number, the command and its arguments, when it was issued and how
//!   long it lives. A [`Response`] echoes the TID, names the device, and carries the [`Outcome`], a
//!   result, an error message and the device's [`DeviceState`].
//! - **Plain text** (the pattern document's samples): the request is a bare command such as
//!   `light: on`; the answer is `SUCCESS: command ran successfully from payload: b'light: on'` or
//!   `FAILURE: command did not run successfully from payload: b'...'`, the payload printed as Python
//!   prints a `bytes` object.
//!
//! A payload whose first non-blank byte is `{` is JSON and must be a valid envelope; anything else is
//! text. Nothing larger than [`MAX_PAYLOAD`] is parsed.
//!
//! Beside the envelope itself (this file): the device model every answer and status carries
//! (`device_model.rs`), what devices publish of their own accord, presence, telemetry and logs
//! (`reports.rs`), and the text form (`text.rs`).

use core::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DecodeError;
use crate::time::Timestamp;
use crate::topic::{DeviceId, GroupId, IssuerId};

mod device_model;
mod reports;
mod text;

pub use device_model::{Config, DeviceState, SequencePosition};
pub use reports::{decode_log, decode_status, decode_telemetry, LogLines, Status, Telemetry};
pub use text::{python_bytes_repr, text_dropped, text_response, TextResponse};
use text::{TEXT_FAILURE, TEXT_SUCCESS};

/// Largest payload accepted on a command topic, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The envelope version this crate writes and reads.
pub const VERSION: u8 = 1;

/// A transaction id: a UUID, the same for every retransmission of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tid(Uuid);

impl Tid {
    /// A random (version 4) TID drawn from the caller's random source.
    pub fn random(rng: &mut fastrand::Rng) -> Tid {
        let bytes = rng.u128(..).to_le_bytes();
        Tid(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }

    /// Parses the hyphenated text form.
    pub fn parse(s: &str) -> Option<Tid> {
        Uuid::try_parse(s).ok().map(Tid)
    }

    /// The 16 bytes, as sent in MQTT 5 Correlation Data.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// From MQTT 5 Correlation Data.
    pub fn from_slice(b: &[u8]) -> Option<Tid> {
        Uuid::from_slice(b).ok().map(Tid)
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// A command request in the JSON envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Envelope version, always [`VERSION`].
    pub v: u8,
    /// Transaction id, unchanged across retransmissions.
    pub tid: Tid,
    /// Who sent it.
    pub issuer: IssuerId,
    /// Grows by one with every new command of this issuer; a device rejects one that goes backwards.
    pub seq: u64,
    /// Command name, e.g. `light`.
    pub cmd: String,
    /// Command arguments (a JSON object, or null).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub args: serde_json::Value,
    /// When the issuer created the command, on its clock.
    pub issued_at: Timestamp,
    /// How long the command stays valid after `issued_at`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The group this request was fanned out to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupId>,
}

impl Request {
    /// The instant after which a device must not execute the command.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.ttl_ms
            .map(|ttl| self.issued_at + core::time::Duration::from_millis(ttl))
    }

    /// JSON bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising this struct cannot fail: every field is plain data with string keys.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A digest of what the request asks (its encoding as read: the same for every
    /// retransmission, different for another command under the same TID). 64-bit FNV-1a: fixed
    /// for good, since devices keep it across restarts.
    pub fn digest(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0100_0000_01b3;
        self.encode()
            .iter()
            .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
    }
}

/// Why a device refused a command without running it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    try_from = "crate::tagged::FlatRejection"
)]
#[non_exhaustive]
pub enum Rejection {
    /// The issuer's sequence number went backwards: the command is stale.
    OutOfOrder {
        /// Highest sequence number already accepted from this issuer.
        last_seq: u64,
        /// The sequence number received.
        got_seq: u64,
    },
    /// A step of an ordered sequence came at the wrong time.
    SequenceViolation {
        /// The sequence, e.g. `firmware`.
        sequence: String,
        /// The step that may run now (`None` while another step of the sequence is running).
        expected: Option<String>,
        /// The step received.
        got: String,
    },
    /// The command's time to live ran out before it reached the device.
    Expired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// The device does not know this command.
    UnknownCommand {
        /// The command name received.
        command: String,
    },
    /// The arguments do not fit the command.
    InvalidArguments {
        /// What is wrong with them.
        detail: String,
    },
    /// The payload was not a command at all.
    Malformed {
        /// What is wrong with it.
        detail: String,
    },
    /// The TID already named another command: a TID is one command, and its retransmissions
    /// are that command again, byte for byte.
    TidConflict {
        /// The command the TID named first.
        command: String,
    },
}

impl Rejection {
    /// Its kind as on the wire: `out_of_order`, `sequence_violation`, `expired`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::OutOfOrder { .. } => "out_of_order",
            Rejection::SequenceViolation { .. } => "sequence_violation",
            Rejection::Expired { .. } => "expired",
            Rejection::UnknownCommand { .. } => "unknown_command",
            Rejection::InvalidArguments { .. } => "invalid_arguments",
            Rejection::Malformed { .. } => "malformed",
            Rejection::TidConflict { .. } => "tid_conflict",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::OutOfOrder { last_seq, got_seq } => write!(
                f,
                "out of order: sequence number {got_seq} is not after {last_seq}"
            ),
            Rejection::SequenceViolation {
                sequence,
                expected: Some(e),
                got,
            } => write!(f, "{sequence}: expected step {e}, got {got}"),
            Rejection::SequenceViolation {
                sequence,
                expected: None,
                got,
            } => write!(f, "{sequence}: {got} arrived while another step is running"),
            Rejection::Expired { expired_at } => write!(f, "expired at {expired_at}"),
            Rejection::UnknownCommand { command } => write!(f, "unknown command {command:?}"),
            Rejection::InvalidArguments { detail } => write!(f, "invalid arguments: {detail}"),
            Rejection::Malformed { detail } => write!(f, "malformed command: {detail}"),
            Rejection::TidConflict { command } => write!(
                f,
                "this TID already named another command ({command}); a new command needs a new TID"
            ),
        }
    }
}

/// What became of a command on the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "snake_case",
    try_from = "crate::tagged::FlatOutcome"
)]
pub enum Outcome {
    /// It ran and did what was asked.
    Succeeded,
    /// It ran and failed; `error` says why.
    Failed,
    /// It did not run; `reason` says why.
    Rejected {
        /// Why.
        reason: Rejection,
    },
    /// It started but the device stopped (restart, power loss, crash) before it finished.
    Interrupted,
}

impl Outcome {
    /// The message for a person that goes with this outcome when the device gives none.
    pub fn default_error(&self) -> Option<String> {
        match self {
            Outcome::Rejected { reason } => Some(reason.to_string()),
            Outcome::Interrupted => {
                Some("the device stopped before the command finished".to_owned())
            }
            Outcome::Succeeded | Outcome::Failed => None,
        }
    }

    /// A short label: `succeeded`, `failed`, `rejected`, `interrupted`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// A command response in the JSON envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "crate::tagged::FlatResponse")]
pub struct Response {
    /// Envelope version, always [`VERSION`].
    pub v: u8,
    /// The TID of the request this answers.
    pub tid: Tid,
    /// The device answering.
    pub device: DeviceId,
    /// The command name, echoed.
    pub cmd: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the command produced (e.g. log lines, a state report).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub result: serde_json::Value,
    /// A message for a person when it failed or was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The device's state after handling the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<DeviceState>,
}

impl Response {
    /// A response with no result, error or state yet.
    pub fn new(tid: Tid, device: DeviceId, cmd: impl Into<String>, outcome: Outcome) -> Self {
        let error = outcome.default_error();
        Response {
            v: VERSION,
            tid,
            device,
            cmd: cmd.into(),
            outcome,
            result: serde_json::Value::Null,
            error,
            state: None,
        }
    }

    /// JSON bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A request as it arrived on a device's request topic.
#[derive(Clone, Debug, PartialEq)]
pub enum IncomingRequest {
    /// A JSON envelope.
    Envelope(Request),
    /// A bare text command (the pattern document's form); the raw bytes as received.
    Text(Vec<u8>),
}

/// A response as it arrived on a response topic.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, moved once: boxing buys nothing
pub enum IncomingResponse {
    /// A JSON envelope.
    Envelope(Response),
    /// A text answer (`SUCCESS: ...` / `FAILURE: ...`), which carries no TID.
    Text(TextResponse),
}

fn check_size(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_PAYLOAD,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    Ok(())
}

fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// An envelope that says which version of the format it is in.
trait Versioned {
    fn version(&self) -> u8;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn version(&self) -> u8 {
                self.v
            }
        }
    )*};
}

versioned!(Request, Response, Status, Telemetry, LogLines);

/// Reads an envelope in one pass; only when that fails is the version read on its own, so that
/// an envelope of another version is reported as such rather than as a field error.
fn decode_json<T: serde::de::DeserializeOwned + Versioned>(bytes: &[u8]) -> Result<T, DecodeError> {
    #[derive(Deserialize)]
    struct Version {
        v: Option<u64>,
    }
    let unsupported = |v: u64| DecodeError::UnsupportedVersion { version: v };
    match serde_json::from_slice::<T>(bytes) {
        Ok(t) if u64::from(t.version()) == u64::from(VERSION) => Ok(t),
        Ok(t) => Err(unsupported(u64::from(t.version()))),
        Err(e) => match serde_json::from_slice::<Version>(bytes) {
            Ok(Version { v: Some(v) }) if v != u64::from(VERSION) => Err(unsupported(v)),
            Ok(Version { v: None }) => Err(DecodeError::Malformed {
                detail: "missing field `v`".to_owned(),
            }),
            _ => Err(DecodeError::Malformed {
                detail: e.to_string(),
            }),
        },
    }
}

/// Decodes what arrived on a request topic.
pub fn decode_request(bytes: &[u8]) -> Result<IncomingRequest, DecodeError> {
    check_size(bytes)?;
    if looks_like_json(bytes) {
        decode_json(bytes).map(IncomingRequest::Envelope)
    } else {
        Ok(IncomingRequest::Text(bytes.to_vec()))
    }
}

/// The TID and command name of a JSON request that [`decode_request`] refused, where they can be
/// read (a valid envelope apart from a bad field: a negative `seq`, an issuer with `/`, a group
/// `#`, an unknown field shape), so that the refusal can carry the TID and the application tie it
/// to its command. `None` for text, for JSON with no readable `tid`, and for a payload larger than
/// [`MAX_PAYLOAD`] (which is never parsed).
pub fn readable_tid(bytes: &[u8]) -> Option<(Tid, String)> {
    #[derive(Deserialize)]
    struct Ids {
        tid: Tid,
        #[serde(default)]
        cmd: serde_json::Value,
    }
    if bytes.len() > MAX_PAYLOAD || !looks_like_json(bytes) {
        return None;
    }
    // Only the two fields are read; every other field is skipped whatever its shape.
    let ids: Ids = serde_json::from_slice(bytes).ok()?;
    let cmd = ids
        .cmd
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect();
    Some((ids.tid, cmd))
}

/// Decodes what arrived on a response topic.
pub fn decode_response(bytes: &[u8]) -> Result<IncomingResponse, DecodeError> {
    check_size(bytes)?;
    if looks_like_json(bytes) {
        return decode_json(bytes).map(IncomingResponse::Envelope);
    }
    let text = String::from_utf8_lossy(bytes).into_owned();
    let success = if text.starts_with(TEXT_SUCCESS) {
        true
    } else if text.starts_with(TEXT_FAILURE) {
        false
    } else {
        let text = text.chars().take(80).collect();
        return Err(DecodeError::UnrecognisedText { text });
    };
    Ok(IncomingResponse::Text(TextResponse { success, text }))
}

#[cfg(test)]
mod tests;
