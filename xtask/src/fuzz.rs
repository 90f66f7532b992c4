//! `cargo xtask fuzz`: the libFuzzer targets in `fuzz/` (every decoder that reads what others
//! send), run with `cargo fuzz` one after another, each until it reaches its executions or its
//! time. A crash or a timeout stops the run and names the input that caused it.
//!
//! The targets build with the stable toolchain: `RUSTC_BOOTSTRAP` lets cargo-fuzz pass the
//! unstable flags it needs, so no nightly toolchain is downloaded. The project's code has no
//! `unsafe`, so the targets build without AddressSanitizer (`--sanitizer none`, which also runs
//! them several times faster) and with debug assertions, so that an overflow is a crash.
//!
//! Corpora: `fuzz/corpus/<target>` holds a few hand-picked seeds and is kept small in the
//! repository; what a run finds goes to `target/fuzz/corpus/<target>` and is read again by the
//! next run. Crashing inputs go to `target/fuzz/artifacts/<target>`.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::install::{self, cargo};
use crate::step::{execute, Failure, Result};

/// Every target in `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: [&str; 5] = ["envelope", "text_command", "session", "gate", "families"];

/// The pinned cargo-fuzz (installed with its own lock file).
pub const CARGO_FUZZ: &str = "0.13.2";

/// Where the fuzz build and everything a run writes lives: a folder of the shared target
/// directory (the coverage flags make it a build of its own).
const TARGET_DIR: &str = "target/fuzz";

/// How long a run may go on for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop a target after this many executions.
    pub runs: u64,
    /// Or after this many seconds, whichever comes first.
    pub seconds: u64,
}

impl Limits {
    /// `cargo xtask fuzz`: ten million executions per target, at most half an hour each.
    const LONG: Self = Self {
        runs: 10_000_000,
        seconds: 1_800,
    };

    /// The short run of every target that `cargo xtask test` makes.
    pub const SHORT: Self = Self {
        runs: 2_000_000,
        seconds: 12,
    };
}

/// What one target's run reached.
#[derive(Debug)]
pub struct Reached {
    pub target: &'static str,
    pub executions: u64,
    pub seconds: f64,
    pub corpus: usize,
}

pub fn run(args: &[OsString], workspace: &Path) -> Result {
    let mut limits = Limits::LONG;
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        match arg.as_ref() {
            "--runs" => limits.runs = number(args.next(), "--runs")?,
            "--seconds" => limits.seconds = number(args.next(), "--seconds")?,
            name => match TARGETS.iter().find(|t| **t == name) {
                Some(target) => chosen.push(*target),
                None => {
                    return Err(Failure::new(format!(
                        "unknown fuzz target or option `{name}`; the targets are {}",
                        TARGETS.join(", ")
                    )))
                }
            },
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.to_vec();
    }
    install::cargo_fuzz()?;
    build(workspace)?;
    let mut reached = Vec::new();
    for target in chosen {
        reached.push(run_target(workspace, target, limits)?);
    }
    println!("{}", table(&reached));
    Ok(())
}

/// Builds every target once (later runs find them built).
pub fn build(workspace: &Path) -> Result {
    execute(&mut fuzz_command(workspace, "build"))
}

/// Runs one target within `limits`; fails on a crash, a timeout or a leak, naming the input.
pub fn run_target(workspace: &Path, target: &'static str, limits: Limits) -> Result<Reached> {
    let seeds = workspace.join("fuzz/corpus").join(target);
    let found = workspace.join(TARGET_DIR).join("corpus").join(target);
    let artifacts = workspace.join(TARGET_DIR).join("artifacts").join(target);
    let logs = workspace.join(TARGET_DIR).join("logs");
    for dir in [&found, &artifacts, &logs] {
        fs::create_dir_all(dir)
            .map_err(|error| Failure::new(format!("cannot create {}: {error}", dir.display())))?;
    }
    let log = logs.join(format!("{target}.log"));
    let log_file = fs::File::create(&log)
        .map_err(|error| Failure::new(format!("cannot create {}: {error}", log.display())))?;
    let mut command = fuzz_command(workspace, "run");
    command
        .arg(target)
        .arg(&found)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-runs={}", limits.runs))
        .arg(format!("-max_total_time={}", limits.seconds))
        // One input that takes over ten seconds is a hang.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()));
    if let Some(dictionary) = dictionary(workspace, target) {
        command.arg(format!("-dict={}", dictionary.display()));
    }
    println!(
        "    fuzz {target}: up to {} executions or {} s (log: {})",
        limits.runs,
        limits.seconds,
        log.display()
    );
    let started = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|error| Failure::new(format!("could not start cargo fuzz: {error}")))?;
    let seconds = started.elapsed().as_secs_f64();
    let output = fs::read_to_string(&log).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Failure::new(format!(
            "fuzz target {target} failed ({status}) after {seconds:.0} s; the input that did it is \
             in {}; replay it with `cargo fuzz run --fuzz-dir fuzz {target} <input>`.\n{}",
            artifacts.display(),
            tail.join("\n")
        )));
    }
    let executions = final_stat(&output, "number_of_executed_units").ok_or_else(|| {
        Failure::new(format!(
            "fuzz target {target} ended without libFuzzer's final statistics; see {}",
            log.display()
        ))
    })?;
    let corpus = fs::read_dir(&found).map(|d| d.count()).unwrap_or(0);
    println!(
        "    fuzz {target}: {executions} executions in {seconds:.0} s, 0 crashes, 0 timeouts, \
         {corpus} inputs in its corpus"
    );
    Ok(Reached {
        target,
        executions,
        seconds,
        corpus,
    })
}

/// The summary a run ends with.
pub fn table(reached: &[Reached]) -> String {
    let mut lines = vec![format!(
        "{:<14} {:>12} {:>8} {:>8}",
        "target", "executions", "seconds", "corpus"
    )];
    for r in reached {
        lines.push(format!(
            "{:<14} {:>12} {:>8.0} {:>8}",
            r.target, r.executions, r.seconds, r.corpus
        ));
    }
    let total: u64 = reached.iter().map(|r| r.executions).sum();
    lines.push(format!(
        "{:<14} {total:>12}   (0 crashes, 0 timeouts)",
        "total"
    ));
    lines.join("\n")
}

/// `cargo fuzz <verb>` with this project's settings.
fn fuzz_command(workspace: &Path, verb: &str) -> Command {
    let mut command = cargo();
    command
        .current_dir(workspace)
        // The unstable flags cargo-fuzz passes to rustc, on the stable toolchain.
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "fuzz",
            verb,
            "--fuzz-dir",
            "fuzz",
            "--target-dir",
            TARGET_DIR,
        ])
        .args(["--release", "--debug-assertions", "--sanitizer", "none"]);
    command
}

/// A target's libFuzzer dictionary, `fuzz/dictionaries/<target>.dict`, when it has one.
fn dictionary(workspace: &Path, target: &str) -> Option<PathBuf> {
    let path = workspace
        .join("fuzz/dictionaries")
        .join(format!("{target}.dict"));
    path.exists().then_some(path)
}

/// A `stat::<name>: <value>` line of libFuzzer's final statistics.
fn final_stat(output: &str, name: &str) -> Option<u64> {
    let prefix = format!("stat::{name}:");
    output
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

fn number(value: Option<&OsString>, option: &str) -> Result<u64> {
    value
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Failure::new(format!("{option} takes a whole number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_executions_from_final_statistics() {
        let output = "#2097152\tDONE   cov: 812 ft: 2301 corp: 120/4Kb exec/s: 174762\n\
                      stat::number_of_executed_units: 2097152\n\
                      stat::average_exec_per_sec:     174762\n";
        assert_eq!(
            final_stat(output, "number_of_executed_units"),
            Some(2_097_152)
        );
        assert_eq!(
            final_stat("no statistics", "number_of_executed_units"),
            None
        );
    }
}
