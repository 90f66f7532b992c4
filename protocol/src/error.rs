//! The crate's error types. Each carries the offending value and reads well to a person.

use thiserror::Error;

/// An id (device, group, issuer) that cannot be used in a topic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("{kind} id is empty")]
    Empty {
        /// Which kind of id.
        kind: &'static str,
    },
    /// The id is longer than allowed.
    #[error("{kind} id is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// Which kind of id.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The id holds a character that is not allowed (MQTT wildcards, `/`, spaces, non-ASCII...).
    #[error("{kind} id {id:?} contains {ch:?}; only ASCII letters, digits and -_.:@ are allowed")]
    BadChar {
        /// Which kind of id.
        kind: &'static str,
        /// The id as received.
        id: String,
        /// The first character that is not allowed.
        ch: char,
    },
}

/// A payload that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload exceeds [`crate::envelope::MAX_PAYLOAD`].
    #[error("payload is {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is empty.
    #[error("payload is empty")]
    Empty,
    /// The payload looks like JSON but is not a valid envelope.
    #[error("malformed envelope: {detail}")]
    Malformed {
        /// What the JSON parser said.
        detail: String,
    },
    /// The envelope's protocol version is not one this crate speaks.
    #[error("unsupported envelope version {version}; this side speaks version 1")]
    UnsupportedVersion {
        /// The version found.
        version: u64,
    },
    /// A device family's payload that does not say what its family documents.
    #[error("{family} payload not understood: {detail}")]
    Foreign {
        /// The family (or the part of it) whose payload it is.
        family: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A text response that starts with neither `SUCCESS:` nor `FAILURE:`.
    #[error("unrecognised text response {text:?}: expected SUCCESS: or FAILURE:")]
    UnrecognisedText {
        /// The first bytes of the text, lossily decoded.
        text: String,
    },
}
