//! Switchboard's protocol core: every rule of the command system as pure, deterministic logic.
//!
//! This crate does no I/O, reads no clock, spawns nothing and draws no OS randomness. Time comes in as
//! a [`Timestamp`] argument, randomness as a seed or a [`fastrand::Rng`] handed in; bytes to send,
//! deadlines to arm and events to show come out as return values. The browser panel, the native
//! simulator and the tests all drive the very same state machines, which is what lets a test replay
//! hours of a lossy network in milliseconds.
//!
//! The pieces, bottom up:
//! - [`time`] and [`backoff`]: time as data, exponential backoff with full jitter.
//! - [`topic`]: validated ids and the topic tree (`cmd/<device>/req`, `cmd/<device>/resp`, ...).
//! - [`envelope`] and [`command`]: the JSON request/response envelope, the typed commands, and the
//!   pattern document's plain-text form.
//! - [`session`]: an MQTT 5 / 3.1.1 client session on top of `mqtt-protocol-core`.
//! - [`family`]: the device families people already own (Tasmota, Shelly, Zigbee2MQTT, ESPHome,
//!   Home Assistant discovery): their addresses, codecs and how a command to one is confirmed.
//! - [`gate`]: what a device runs before acting (duplicates, ordering, expiry, sequences, journal).
//! - [`tracker`]: what an application runs to follow every command to a terminal state.
//! - [`client`]: a session and a tracker wired together behind one surface, with the topics and
//!   codec of a [`client::Dialect`]: what the panel and the command-line sender drive.
//! - [`engine`]: the one driving surface that a session and a client share.
//!
//! Every type that drives time follows one shape, after quinn-proto: `handle_*(.., now)` feeds input,
//! `poll_*()` drains output, `poll_timeout()` names the next deadline and `handle_timeout(now)` fires it.

#[cfg(all(test, target_family = "wasm"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

pub mod backoff;
pub mod client;
pub mod command;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod family;
pub mod gate;
pub mod session;
mod tagged;
pub mod time;
pub mod topic;
pub mod tracker;

pub use backoff::Backoff;
pub use client::Client;
pub use command::Command;
pub use engine::Engine;
pub use envelope::{DeviceState, Outcome, Rejection, Request, Response, Tid};
pub use error::{DecodeError, IdError};
pub use gate::DeviceGate;
pub use session::Session;
pub use time::Timestamp;
pub use topic::{DeviceId, GroupId, IssuerId};
pub use tracker::CommandTracker;
