//! Every integration test, in one binary: it links once, and tests share helpers as modules.
//! Tests that need an MQTT broker start a real one of their own: mosquitto (Debian's package) with
//! a configuration the test writes, and the simulator's embedded broker.

#![allow(clippy::unwrap_used)]

mod access;
mod bad_input;
mod families;
mod families_panel;
mod interop;
mod network_faults;
mod panel;
mod panel_secure;
mod protocol_smoke;
mod simulator;
mod support;
