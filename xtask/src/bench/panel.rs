//! The panel's download size, side by side with the MQTT.js browser bundle alone.

use std::fs;

use super::{Bench, Row};
use crate::step::{Failure, Result};
use crate::{install, panel};

/// The MQTT.js release the panel is compared with.
const MQTT_JS: &str = "5.16.0";

/// Builds the panel in release (Trunk), installs MQTT.js from npm into `target/tools`, and
/// compares what a browser downloads: the panel's wasm + js against MQTT.js's `mqtt.min.js`.
pub fn bundle(bench: &Bench, _budget: &super::process::Budget) -> Result<Vec<Row>> {
    let ws = &bench.workspace;
    panel::build(ws, false)?;
    let files = panel::bundle(&ws.join("dist"))?;
    let raw: u64 = files.iter().map(|f| f.1).sum();
    let gz: u64 = files.iter().map(|f| f.2).sum();

    let prefix = ws.join("target/tools/mqttjs");
    let js = prefix.join("node_modules/mqtt/dist/mqtt.min.js");
    let version_file = prefix.join("node_modules/mqtt/package.json");
    let present = fs::read_to_string(&version_file)
        .is_ok_and(|p| p.contains(&format!("\"version\": \"{MQTT_JS}\"")));
    if !present {
        install::npm_install(&prefix, &format!("mqtt@{MQTT_JS}"))?;
    }
    let mqtt_raw = fs::metadata(&js)
        .map_err(|e| Failure::new(format!("{}: {e}", js.display())))?
        .len();
    let mqtt_gz = panel::gzip_len(&js)?;
    let kb = |b: u64| format!("{:.1}", b as f64 / 1000.0);
    Ok(vec![
        Row {
            name: "panel bundle, wasm + js".into(),
            value: kb(gz),
            unit: "KB gzip",
            how: format!(
                "trunk build --release, wasm-opt -Oz; {} KB before gzip; gzip -9",
                kb(raw)
            ),
        },
        Row {
            name: format!("MQTT.js {MQTT_JS} browser bundle alone"),
            value: kb(mqtt_gz),
            unit: "KB gzip",
            how: format!(
                "dist/mqtt.min.js from npm, {} KB before gzip; gzip -9",
                kb(mqtt_raw)
            ),
        },
        Row {
            name: "panel / MQTT.js".into(),
            value: format!("{:.2}", gz as f64 / mqtt_gz as f64),
            unit: "x",
            how: "target: at most 1.00".into(),
        },
    ])
}
