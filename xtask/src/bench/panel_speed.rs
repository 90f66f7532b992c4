//! The panel at fleet scale, side by side with a minimal MQTT.js page (`xtask/bench/mqttjs-peer.html`)
//! in one headless Chromium, against one mosquitto and the same simulated devices: press ->
//! confirmed, CPU per press and its growth over 1,000 presses, fan-outs to 1,000 and 10,000
//! devices, discovery of the whole fleet, and the heap after many fan-outs.
//!
//! The browser is driven by `xtask/bench/panel-bench.cjs` (Node, with playwright-core from npm and
//! Debian's Chromium); this module starts the broker and the fleet, hands the script its
//! configuration and relays the rows it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::fleet::{fitting, Fleet, Mosquitto};
use super::process::{log_file, Budget, Child};
use super::{thousands, Bench, Row};
use crate::install;
use crate::step::{Failure, Result};

/// The npm packages the driver needs, pinned.
const PACKAGES: &[(&str, &str)] = &[("playwright-core", "1.64.1"), ("mqtt", "5.16.0")];
/// Where they are installed.
const MODULES: &str = "target/tools/bench-browser";
/// The whole fleet: discovery and the big fan-out.
const FLEET: usize = 10_000;
/// The smaller fan-out, and the one repeated for the heap.
const SMALL: usize = 1_000;
/// Presses per page.
const PRESSES: usize = 1_000;
/// Fan-outs to [`SMALL`] devices before the heap is read for the last time.
const HEAP_FAN_OUTS: usize = 100;

pub fn speed(bench: &Bench, budget: &Budget) -> Result<Vec<Row>> {
    let ws = &bench.workspace;
    crate::panel::build(ws, false)?;
    let modules = ws.join(MODULES);
    for (name, version) in PACKAGES {
        let manifest = modules.join("node_modules").join(name).join("package.json");
        let present = std::fs::read_to_string(&manifest)
            .is_ok_and(|m| m.contains(&format!("\"version\": \"{version}\"")));
        if !present {
            install::npm_install(&modules, &format!("{name}@{version}"))?;
        }
    }
    if !Path::new(install::CHROMIUM).exists() {
        return Err(Failure::new(format!(
            "{} is missing (`cargo xtask test` installs Debian's chromium)",
            install::CHROMIUM
        )));
    }

    let mosquitto = Mosquitto::start_with(bench, budget, true)?;
    let ws_url = mosquitto
        .ws_url
        .clone()
        .ok_or_else(|| Failure::new("mosquitto has no WebSocket listener"))?;
    // One connection per device at the broker, and a few for the pages.
    let devices = fitting(FLEET, 1, bench.fd_limit.saturating_sub(50));
    let small = SMALL.min(devices);
    let broker = format!("--broker={}", mosquitto.url);
    let groups = format!("--groups=small=1-{small},all=1-{devices}");
    let fleet = Fleet::start(
        bench,
        budget,
        devices,
        &[broker.as_str(), groups.as_str()],
        "panel-speed",
    )?;
    println!(
        "    {} devices online on mosquitto after {:.1} s",
        thousands(devices),
        fleet.online_after.as_secs_f64()
    );

    let config = format!(
        concat!(
            "{{\"modules\":{},\"dist\":{},\"peer_html\":{},\"mqtt_js\":{},\"ws\":{},",
            "\"chromium\":{},\"discovery\":{},\"presses\":{},",
            "\"fanouts\":[{{\"group\":\"small\",\"devices\":{},\"runs\":5}},",
            "{{\"group\":\"all\",\"devices\":{},\"runs\":3}}],",
            "\"heap\":{{\"group\":\"small\",\"devices\":{},\"fanouts\":{},\"marks\":[10,25,50,75,100]}}}}"
        ),
        json_string(&modules.join("node_modules").to_string_lossy()),
        json_string(&ws.join("dist").to_string_lossy()),
        json_string(&ws.join("xtask/bench/mqttjs-peer.html").to_string_lossy()),
        json_string(
            &modules
                .join("node_modules/mqtt/dist/mqtt.min.js")
                .to_string_lossy()
        ),
        json_string(&ws_url),
        json_string(install::CHROMIUM),
        devices,
        PRESSES,
        small,
        devices,
        small,
        HEAP_FAN_OUTS,
    );
    let log = bench.logs.join("panel-bench.log");
    let mut command = Command::new("node");
    command
        .arg(ws.join("xtask/bench/panel-bench.cjs"))
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(log_file(&log)?);
    let mut driver = Child::spawn(&mut command, "the panel bench driver (node)".to_owned())?;
    let stdout = driver.take_stdout()?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut rows = Vec::new();
    let until = budget.deadline(Duration::from_secs(1500));
    loop {
        let wait = until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(wait) {
            Ok(line) => match parse_row(&line) {
                Some(row) => rows.push(row),
                None => println!("{line}"),
            },
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(Failure::new(format!(
                    "the panel bench did not finish in time (log: {})",
                    log.display()
                )))
            }
        }
    }
    let status = driver.wait_until(budget.deadline(Duration::from_secs(30)))?;
    fleet.stop()?;
    mosquitto.process.stop()?;
    match status {
        Some(s) if s.success() => Ok(rows),
        _ => Err(Failure::new(format!(
            "the panel bench failed (log: {})",
            log.display()
        ))),
    }
}

/// `ROW\tname\tvalue\tunit\thow` as the driver prints it.
fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.strip_prefix("ROW\t")?.splitn(4, '\t');
    let (name, value, unit, how) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    Some(Row {
        name: name.to_owned(),
        value: value.to_owned(),
        unit: unit_of(unit),
        how: how.to_owned(),
    })
}

/// The units the driver uses (rows keep a `&'static str`).
fn unit_of(unit: &str) -> &'static str {
    match unit {
        "ms" => "ms",
        "x" => "x",
        "MB" => "MB",
        "tries" => "tries",
        _ => "",
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
