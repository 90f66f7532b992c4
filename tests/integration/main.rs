//! Every integration test, in one binary: it links once, and tests share helpers as modules.
//! Tests that need an MQTT broker join this binary too, each starting a real broker of its own.

#![allow(clippy::unwrap_used)]

mod protocol_smoke;
