//! The seam between the [`Client`](super::Client) and the way a kind of device speaks: which topics
//! carry answers and presence, and how their payloads decode.
//!
//! Switchboard's own topics and envelope (with the pattern document's text answers) are one
//! dialect, [`Switchboard`]; device families with other topic trees and payloads plug in here.

use crate::envelope::{decode_response, decode_status, IncomingResponse, Status};
use crate::error::DecodeError;
use crate::session::QoS;
use crate::topic::{self, DeviceId, Topic};

/// What a message on a topic is, as far as commands are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// An answer from this device.
    Answer(DeviceId),
    /// This device's presence.
    Presence(DeviceId),
    /// Nothing the tracker follows (telemetry, logs, ...): handed to the application as is.
    Other,
}

/// How a kind of device speaks on the broker.
pub trait Dialect {
    /// The filters that carry answers and presence, with their QoS.
    fn subscriptions(&self) -> Vec<(String, QoS)>;
    /// What a message on `topic` is.
    fn route(&self, topic: &str) -> Route;
    /// Decodes an answer.
    fn decode_answer(&self, payload: &[u8]) -> Result<IncomingResponse, DecodeError>;
    /// Decodes a presence message; `Ok(None)` when the retained presence was cleared.
    fn decode_presence(&self, payload: &[u8]) -> Result<Option<Status>, DecodeError>;
}

/// Switchboard's topics (`cmd/<device>/resp`, `status/<device>`) and its JSON envelope, with the
/// pattern document's `SUCCESS:`/`FAILURE:` text answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Switchboard;

impl Dialect for Switchboard {
    fn subscriptions(&self) -> Vec<(String, QoS)> {
        vec![
            (topic::ALL_RESPONSES.to_owned(), QoS::AtLeastOnce),
            (topic::ALL_STATUS.to_owned(), QoS::AtLeastOnce),
        ]
    }

    fn route(&self, topic: &str) -> Route {
        match Topic::parse(topic) {
            Some(Topic::Response(d)) => Route::Answer(d),
            Some(Topic::Status(d)) => Route::Presence(d),
            _ => Route::Other,
        }
    }

    fn decode_answer(&self, payload: &[u8]) -> Result<IncomingResponse, DecodeError> {
        decode_response(payload)
    }

    fn decode_presence(&self, payload: &[u8]) -> Result<Option<Status>, DecodeError> {
        decode_status(payload)
    }
}
