//! `cargo xtask`: the project's automation, written in Rust so that one command works on every
//! machine that has cargo, with nothing else installed first.
//!
//! `cargo xtask test` is what CI runs (`.ci/run`) and what a developer runs before pushing: it
//! installs the pinned tools that are missing, then runs formatting, lints, the native tests and the
//! protocol tests on wasm32 in headless Firefox and Chromium. `cargo xtask bench` measures the
//! device simulator (memory per device, commands per second) and prints one table.

mod bench;
mod install;
mod step;
mod test;
mod wasm_binary;
mod wasm_runner;

use std::ffi::OsString;
use std::process::ExitCode;

use step::Failure;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--skip-install] [--no-browser]
        Install the missing tools, then run rustfmt, clippy, every native test, and the
        protocol tests on wasm32 in headless Firefox and Chromium.
        --skip-install  install nothing (local runs only)
        --no-browser    skip the browser tests and the tools they need (local runs only)
        With CI=true nothing may be skipped.
  bench [NAME...]
        Build device-sim in release and measure it side by side in one run: memory per
        simulated device (embedded broker and mosquitto) and commands per second with 1,000
        devices. Prints a table and writes it to target/bench/simulator.txt. With NAME, only
        the measurements whose name contains it.
  wasm-runner <test.wasm> [args...]
        Cargo's runner for wasm32 test binaries, set by `test`: runs a binary in both browsers.

run: coming with the panel";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.to_string_lossy().into_owned(), rest),
        None => (String::from("help"), &[][..]),
    };
    let result = match command.as_str() {
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "wasm-runner" => wasm_runner::run(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(Failure::new(format!(
            "unknown command `{other}`\n\n{USAGE}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: error: {failure}");
            ExitCode::FAILURE
        }
    }
}
