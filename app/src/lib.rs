//! Switchboard's browser panel: a Leptos app that speaks MQTT over WebSockets straight to the broker.
//!
//! - [`link`] owns the WebSocket and drives the protocol's session and command tracker;
//! - [`store`] and [`view`] are what the panel draws from (signals);
//! - [`components`] are the panel's parts, one per file; `main.rs` only mounts [`App`].

pub mod components;
pub mod link;
pub mod settings;
pub mod store;
pub mod view;

pub use components::app::App;
