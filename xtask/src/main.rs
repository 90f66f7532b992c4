//! `cargo xtask`: the project's automation, written in Rust so that one command works on every
//! machine that has cargo, with nothing else installed first.
//!
//! `cargo xtask run` brings everything up (broker, simulated devices, the panel in a browser).
//! `cargo xtask test` is what CI runs (`.ci/run`) and what a developer runs before pushing: it
//! installs the pinned tools that are missing, then runs formatting, lints, the native tests and the
//! protocol tests on wasm32 in headless Firefox and Chromium. `cargo xtask bench` measures the
//! panel against a hand-written MQTT.js page and the device simulator, and prints one table.

mod bench;
mod dist;
mod fuzz;
mod install;
mod panel;
mod run;
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
  run [--devices N] [--port P]
        Everything up on this machine: install what is missing, build the panel, start the
        device simulator (embedded broker, N=12 devices in groups floor1 and floor2), serve
        the panel on http://127.0.0.1:P (8080) and print the URL to open. Ctrl-C stops it all.
  test [--skip-install] [--no-browser]
        Install the missing tools, then run rustfmt, clippy, every native test, and the
        protocol tests on wasm32 in headless Firefox and Chromium, and a short run of
        every fuzz target.
        --skip-install  install nothing (local runs only)
        --no-browser    skip the browser tests and the tools they need (local runs only)
        With CI=true nothing may be skipped.
  bench [NAME...]
        Measure side by side in one run: the panel's download size against the MQTT.js
        browser bundle; the panel against a minimal MQTT.js page in headless Chromium
        (press -> confirmed, CPU per press, fan-outs to 1,000 and 10,000 devices, discovery,
        heap after 100 fan-outs); memory per simulated device (embedded broker and
        mosquitto) and commands per second with 1,000 devices. Prints a table and writes it
        to target/bench/bench.txt. With NAME, only the measurements whose name contains it
        (`bench panel`: the panel's two).
  dist
        Build the release panel into dist/ as static files with content-hashed names that
        run under a strict Content Security Policy (no inline script), and print the files
        and the policy to serve them with.
  fuzz [--runs N] [--seconds S] [TARGET...]
        Run the libFuzzer targets in fuzz/ (envelope, text_command, session, gate,
        families; all when none is named) one after another, each until N executions
        (10,000,000) or S seconds (1,800), and print the executions each reached. A crash
        or a timeout fails the run and names the input, kept in target/fuzz/artifacts.
        `test` makes a short run of each.
  wasm-runner <test.wasm> [args...]
        Cargo's runner for wasm32 test binaries, set by `test`: runs a binary in both browsers.";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.to_string_lossy().into_owned(), rest),
        None => (String::from("help"), &[][..]),
    };
    let result = match command.as_str() {
        "run" => run::run(rest, &test::workspace_root()),
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "dist" => dist::run(rest, &test::workspace_root()),
        "fuzz" => fuzz::run(rest, &test::workspace_root()),
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
