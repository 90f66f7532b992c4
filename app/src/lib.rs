//! Switchboard's browser panel: a Leptos app that speaks MQTT over WebSockets straight to the broker.
//!
//! Data flows one way: socket -> client -> projection -> signals -> view.
//! - [`socket`] is the browser socket, and the only module that names it;
//! - [`pump`] moves the protocol's [`Client`](switchboard_protocol::Client), the socket, the
//!   timer and the [`projection`] along, and writes the store on the next animation frame;
//! - [`projection`] turns what the client reports into device and command views (pure, tested
//!   natively); [`device_view`] and [`view`] are those views;
//! - [`store`] holds them as signals: components get the read-only [`store::Store`], the pump the
//!   one writer;
//! - [`link`] is the actions the components call; [`persistence`] keeps outstanding commands
//!   across a reload, [`export`] writes the history as files;
//! - [`components`] are the panel's parts, one per file; `main.rs` only mounts [`App`].

#[cfg(all(test, target_family = "wasm"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

pub mod clock;
pub mod components;
pub mod device_view;
pub mod export;
pub mod link;
pub mod persistence;
pub mod projection;
pub mod pump;
pub mod settings;
pub mod socket;
pub mod store;
pub mod tabs;
pub mod view;

pub use components::app::App;
