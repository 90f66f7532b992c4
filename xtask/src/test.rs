//! `cargo xtask test`: every check the project has, cheapest and most likely to fail first.

use std::env;
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::fuzz;
use crate::install::{self, cargo};
use crate::panel;
use crate::step::{execute, step, Failure, Result};

/// The crates whose tests run on wasm32, in the browsers: the core every target shares, and the
/// panel (against a broker with simulated devices that `wasm_tests` starts).
const WASM_TESTED: [&str; 2] = ["switchboard-protocol", "switchboard-app"];

#[derive(Debug, Default)]
struct Options {
    /// Install nothing; use whatever tools are there.
    skip_install: bool,
    /// Leave out the browser tests, and the tools only they need.
    no_browser: bool,
}

impl Options {
    fn parse(args: &[OsString]) -> Result<Self> {
        let mut options = Self::default();
        for arg in args {
            match arg.to_str() {
                Some("--skip-install") => options.skip_install = true,
                Some("--no-browser") => options.no_browser = true,
                _ => {
                    return Err(Failure::new(format!(
                        "unknown option `{}` for `test` (see `cargo xtask help`)",
                        arg.to_string_lossy()
                    )))
                }
            }
        }
        Ok(options)
    }
}

pub fn run(args: &[OsString]) -> Result {
    let options = Options::parse(args)?;
    if in_ci() && (options.skip_install || options.no_browser) {
        return Err(Failure::new(
            "CI is set: --skip-install and --no-browser are for local runs; CI runs every check",
        ));
    }
    let workspace = workspace_root();
    let started = Instant::now();

    if options.skip_install {
        println!("==> install missing tools: skipped (--skip-install)");
    } else {
        step("install missing tools", || {
            install::ensure(&workspace, !options.no_browser)
        })?;
    }
    step("rustfmt", || {
        execute(
            cargo()
                .current_dir(&workspace)
                .args(["fmt", "--all", "--", "--check"]),
        )
    })?;
    step("clippy", || {
        execute(cargo().current_dir(&workspace).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    // The integration tests start the simulator binary as a separate process (to kill it
    // mid-command), so it must exist next to the test binaries.
    step("build the device-sim binary", || {
        install::build_simulator(&workspace)
    })?;
    // The end-to-end tests load the release build of the panel in headless Chromium.
    if options.no_browser {
        println!("==> build the panel: skipped (--no-browser)");
    } else {
        step("build the panel (Trunk, release)", || {
            // The tools came with "install missing tools" (or were skipped with it).
            panel::build(&workspace, true).map(|_| ())
        })?;
    }
    step("native tests", || {
        execute(
            cargo()
                .current_dir(&workspace)
                .args(["test", "--workspace"]),
        )
    })?;
    step(
        &format!(
            "fuzz every decoder briefly ({} s per target)",
            fuzz::Limits::SHORT.seconds
        ),
        || fuzz_briefly(&workspace),
    )?;
    if options.no_browser {
        println!("==> wasm32 tests in the browsers: skipped (--no-browser)");
    } else {
        step(
            &format!(
                "{} tests on wasm32 in headless Firefox and Chromium",
                WASM_TESTED.join(" and ")
            ),
            || wasm_tests(&workspace),
        )?;
    }

    println!(
        "==> all checks passed ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A short run of every fuzz target: long enough to catch what a change broke in a decoder,
/// short enough for every push (`cargo xtask fuzz` runs them long).
fn fuzz_briefly(workspace: &Path) -> Result {
    fuzz::build(workspace)?;
    let mut reached = Vec::new();
    for target in fuzz::TARGETS {
        reached.push(fuzz::run_target(workspace, target, fuzz::Limits::SHORT)?);
    }
    println!("{}", fuzz::table(&reached));
    Ok(())
}

/// Runs the wasm32 tests with this very program as cargo's runner, so that each test binary runs
/// in both browsers (see `wasm_runner`).
fn wasm_tests(workspace: &Path) -> Result {
    let me = env::current_exe()
        .map_err(|error| Failure::new(format!("cannot tell where xtask runs from: {error}")))?;
    let me = me.to_string_lossy();
    // Cargo splits a runner given in the environment at whitespace.
    if me.contains(char::is_whitespace) {
        return Err(Failure::new(format!(
            "the path of xtask contains whitespace, which cargo cannot take as a runner: {me}"
        )));
    }
    // The panel's tests talk to a real broker with simulated devices wasm1..wasm4 in group wasm.
    let (tcp, ws) = (free_port()?, free_port()?);
    let sim = Command::new(workspace.join("target/debug/device-sim"))
        .current_dir(workspace)
        .args(["--listen-tcp", &format!("127.0.0.1:{tcp}")])
        .args(["--listen-ws", &format!("127.0.0.1:{ws}")])
        .args(["--devices", "4", "--prefix", "wasm", "--groups", "wasm"])
        .args(["--telemetry-ms", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| Failure::new(format!("cannot start device-sim: {error}")))?;
    let _sim = KillOnDrop(sim);
    let mut args = vec!["test"];
    for krate in WASM_TESTED {
        args.extend(["--package", krate]);
    }
    args.extend(["--target", "wasm32-unknown-unknown"]);
    // No `--quiet`: wasm-bindgen-test-runner rejects the `-q` cargo would pass on.
    execute(
        cargo()
            .current_dir(workspace)
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                format!("{me} wasm-runner"),
            )
            .env("SWITCHBOARD_TEST_WS", format!("ws://127.0.0.1:{ws}/mqtt"))
            .args(args),
    )
}

/// A child process killed when this is dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|error| Failure::new(format!("no free loopback port: {error}")))
}

/// CI systems set `CI` (to `true`, mostly); a developer's shell does not.
fn in_ci() -> bool {
    env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

pub fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}
