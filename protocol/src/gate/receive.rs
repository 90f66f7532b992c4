//! What arrives on a request topic, whole: decoded, then admitted, or refused with the clearest
//! answer the payload allows. A device hands every payload here and publishes what comes back.

use super::{Admission, DeviceGate, Reply};
use crate::envelope::{
    decode_request, text_response, DeviceState, IncomingRequest, Rejection, Request, Tid,
    MAX_PAYLOAD,
};
use crate::error::DecodeError;
use crate::time::Timestamp;

/// What became of one payload from a request topic.
#[derive(Debug)]
pub enum Received {
    /// It was a request, and the gate decided ([`DeviceGate::admit`]).
    Admitted(Admission),
    /// It was no request: publish `reply` (a `malformed` rejection with the TID where one could
    /// be read, the text form's `FAILURE: ...` where not) and log `error`. Nothing ran, nothing
    /// is remembered.
    Malformed {
        /// The answer.
        reply: Reply,
        /// What is wrong with the payload.
        error: DecodeError,
    },
}

/// How much of a payload too large to read a text refusal quotes.
const QUOTED_OF_OVERSIZED: usize = 64;

impl DeviceGate {
    /// Decides what to do with one payload from the device's request topic (or a group's).
    /// `text_tid` makes the id a text command is journaled under (text carries none); it is
    /// called only for text.
    ///
    /// A payload that is not a request is [`Received::Malformed`]: with a JSON `malformed`
    /// rejection carrying its TID where one can be read, otherwise with the text form's
    /// `FAILURE: ...` (quoting only the start of a payload larger than
    /// [`MAX_PAYLOAD`], which is never read). Either way nothing ran and nothing is remembered.
    pub fn receive(
        &mut self,
        payload: &[u8],
        now: Timestamp,
        state: &DeviceState,
        text_tid: impl FnOnce() -> Tid,
    ) -> Received {
        match decode_request(payload) {
            Ok(IncomingRequest::Envelope(request)) => {
                Received::Admitted(self.admit(&request, now, state))
            }
            Ok(IncomingRequest::Text(text)) => {
                Received::Admitted(self.admit_text(&text, text_tid(), now, state))
            }
            Err(error) => {
                let reply = self
                    .refuse_malformed(payload, &error, state)
                    .unwrap_or_else(|| Reply::Text(text_refusal(payload)));
                Received::Malformed { reply, error }
            }
        }
    }
}

impl DeviceGate {
    /// A JSON request that could not be decoded (`error`) but whose TID can be read: the answer
    /// is a `malformed` rejection carrying that TID (remembered nowhere: nothing ran). `None`
    /// when no TID can be read; the device then answers in the text form, which carries none.
    pub fn refuse_malformed(
        &self,
        payload: &[u8],
        error: &DecodeError,
        state: &DeviceState,
    ) -> Option<Reply> {
        let (tid, cmd) = crate::envelope::readable_tid(payload)?;
        // Read again, off the hot path, to name the field that is wrong.
        let mut de = serde_json::Deserializer::from_slice(payload);
        let detail = match serde_path_to_error::deserialize::<_, Request>(&mut de) {
            Err(e) if !matches!(e.path().to_string().as_str(), "" | ".") => {
                format!("field `{}`: {}", e.path(), e.inner())
            }
            _ => error.to_string(),
        };
        let reason = Rejection::Malformed { detail };
        Some(self.refusal(tid, cmd, reason, state))
    }
}

/// The pattern document's `FAILURE: ...` for a payload that is no command. It quotes the
/// payload as the document does, except one too large to read, of which it quotes the start
/// and gives the size: an answer never grows with what a sender can make it carry.
fn text_refusal(payload: &[u8]) -> String {
    if payload.len() <= MAX_PAYLOAD {
        return text_response(false, payload);
    }
    let start = payload.get(..QUOTED_OF_OVERSIZED).unwrap_or(payload);
    format!(
        "{}... ({} bytes; at most {MAX_PAYLOAD} are read)",
        text_response(false, start),
        payload.len()
    )
}
