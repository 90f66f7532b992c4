//! Simulated Switchboard devices, one to many thousands, on real MQTT.
//!
//! Each device is a small tokio task around the protocol crate's session and device gate
//! ([`device`]), or, for devices of other families (Tasmota, Shelly, ...), around the protocol's
//! family firmware ([`family`]); a [`fleet`] runs many of them on one runtime; an [`broker`] can run in the same
//! process so that nothing else needs installing; [`send`] is the operator's command-line sender.

pub mod broker;
pub mod cli;
pub mod device;
pub mod family;
pub mod faults;
pub mod fleet;
pub mod journal;
pub mod limits;
pub mod link;
pub mod send;
pub mod store;
pub mod transport;
