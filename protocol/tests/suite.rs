//! The protocol's scenario suite. It runs natively (`cargo test`) and in headless browsers
//! (`cargo test --target wasm32-unknown-unknown`, see `cargo xtask test`).
#![allow(clippy::unwrap_used)]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "suite/bad_input.rs"]
mod bad_input;
#[path = "suite/families.rs"]
mod families;
#[path = "suite/gate.rs"]
mod gate;
#[path = "suite/pair.rs"]
mod pair;
#[path = "suite/props.rs"]
mod props;
#[path = "suite/saturated.rs"]
mod saturated;
#[path = "suite/sim.rs"]
mod sim;
#[path = "suite/tracker.rs"]
mod tracker;
