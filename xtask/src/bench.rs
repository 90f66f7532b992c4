//! `cargo xtask bench`: measurements taken side by side in one run and printed as one table,
//! also written to `target/bench/bench.txt`.
//!
//! The bench is a list of named measurements ([`MEASUREMENTS`]); each one adds rows of the form
//! `name  value  unit  (how measured)`. Every measurement has a hard time limit ([`Budget`]), and
//! every process it starts is a [`Child`](process::Child), killed and reaped on whatever path the
//! measurement is left by. Only loopback addresses are used. These machines are shared and noisy:
//! compare the rows of one run with each other, never absolute figures across runs.

mod fleet;
mod panel;
mod panel_speed;
mod process;
mod simulator;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::install::cargo;
use crate::step::{execute, step, Failure, Result};
use process::{fd_hard_limit, Budget};

/// Every measurement, in the order they run. `cargo xtask bench WORD` runs those whose name
/// contains WORD. Each limit is a few times what the measurement takes on a 2-core machine.
const MEASUREMENTS: &[Measurement] = &[
    Measurement {
        name: "panel bundle size",
        // The first run may install Trunk (about 10 minutes) and build the panel.
        limit: Duration::from_secs(1800),
        run: panel::bundle,
    },
    Measurement {
        name: "panel speed against an MQTT.js page",
        // 10,000 devices come online, then about ten minutes of browser work.
        limit: Duration::from_secs(1800),
        run: panel_speed::speed,
    },
    Measurement {
        name: "memory, embedded broker",
        limit: Duration::from_secs(180),
        run: simulator::memory_embedded,
    },
    Measurement {
        name: "memory, mosquitto",
        limit: Duration::from_secs(120),
        run: simulator::memory_mosquitto,
    },
    Measurement {
        name: "commands, 1,000 devices",
        limit: Duration::from_secs(120),
        run: simulator::commands,
    },
    Measurement {
        name: "durable state, 1,000 devices",
        limit: Duration::from_secs(180),
        run: simulator::durable,
    },
];

/// One named measurement and its hard time limit.
struct Measurement {
    name: &'static str,
    limit: Duration,
    run: fn(&Bench, &Budget) -> Result<Vec<Row>>,
}

/// One line of the table.
struct Row {
    name: String,
    value: String,
    unit: &'static str,
    how: String,
}

/// What every measurement shares: the simulator binary, where logs go, the descriptor limit.
struct Bench {
    workspace: PathBuf,
    sim: PathBuf,
    logs: PathBuf,
    /// The hard open-files limit; children raise their soft limit to it.
    fd_limit: u64,
}

pub fn run(args: &[OsString]) -> Result {
    let mut filters = Vec::new();
    for arg in args {
        match arg.to_str() {
            Some(word) if !word.starts_with('-') => filters.push(word.to_owned()),
            _ => {
                return Err(Failure::new(format!(
                    "unknown option `{}` for `bench` (see `cargo xtask help`)",
                    arg.to_string_lossy()
                )))
            }
        }
    }
    let chosen: Vec<&Measurement> = MEASUREMENTS
        .iter()
        .filter(|m| filters.is_empty() || filters.iter().any(|f| m.name.contains(f.as_str())))
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = MEASUREMENTS.iter().map(|m| m.name).collect();
        return Err(Failure::new(format!(
            "no measurement matches {filters:?}; there are: {}",
            names.join("; ")
        )));
    }

    let workspace = workspace_root();
    let target =
        env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), PathBuf::from);
    let out = target.join("bench");
    let bench = Bench {
        workspace: workspace.clone(),
        sim: target.join("release").join("device-sim"),
        logs: out.join("logs"),
        fd_limit: fd_hard_limit()?,
    };
    // Logs of this run only.
    let _ = fs::remove_dir_all(&bench.logs);
    fs::create_dir_all(&bench.logs)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", bench.logs.display())))?;
    let started = Instant::now();
    step("build device-sim (release)", || {
        execute(cargo().current_dir(&workspace).args([
            "build",
            "--release",
            "--package",
            "device-sim",
        ]))
    })?;

    let mut rows = Vec::new();
    let mut failed = 0;
    for m in chosen {
        let budget = Budget::new(m.limit);
        let result = step(m.name, || {
            (m.run)(&bench, &budget).map(|new| rows.extend(new))
        });
        if let Err(failure) = result {
            failed += 1;
            println!("    {failure}");
            rows.push(Row {
                name: m.name.to_owned(),
                value: "failed".to_owned(),
                unit: "",
                how: failure.to_string(),
            });
        }
    }

    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let table = format!(
        "Switchboard bench: {cores} cores, open-files limit {}, {:.0} s; rows of one run are \
         comparable, runs are not\n{}",
        bench.fd_limit,
        started.elapsed().as_secs_f64(),
        render(&rows)
    );
    let file = out.join("bench.txt");
    fs::write(&file, &table)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", file.display())))?;
    println!("\n{table}");
    println!("(also in {})", shown_path(&file, &workspace));
    if failed > 0 {
        return Err(Failure::new(format!(
            "{failed} measurement(s) failed; their logs are in {}",
            shown_path(&bench.logs, &workspace)
        )));
    }
    Ok(())
}

/// `10000` as `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The rows as aligned columns: `name  value  unit  (how measured)`.
fn render(rows: &[Row]) -> String {
    let width = |f: fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let (name, value, unit) = (
        width(|r| r.name.len()),
        width(|r| r.value.len()),
        width(|r| r.unit.len()),
    );
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{:<name$}  {:>value$}  {:<unit$}  ({})\n",
            r.name, r.value, r.unit, r.how
        ));
    }
    out
}

/// A path as the user would type it: relative to the workspace when inside it.
fn shown_path(path: &Path, workspace: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}
