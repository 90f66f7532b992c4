//! `cargo xtask test`: every check the project has, cheapest and most likely to fail first.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::install::{self, cargo};
use crate::step::{execute, step, Failure, Result};

/// The crate whose tests also run on wasm32, in the browsers: the core every target shares.
const WASM_TESTED: &str = "switchboard-protocol";

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
        execute(cargo().current_dir(&workspace).args([
            "build",
            "--package",
            "device-sim",
            "--bin",
            "device-sim",
        ]))
    })?;
    step("native tests", || {
        execute(
            cargo()
                .current_dir(&workspace)
                .args(["test", "--workspace"]),
        )
    })?;
    if options.no_browser {
        println!("==> wasm32 tests in the browsers: skipped (--no-browser)");
    } else {
        step(
            &format!("{WASM_TESTED} tests on wasm32 in headless Firefox and Chromium"),
            || wasm_tests(&workspace),
        )?;
    }

    println!(
        "==> all checks passed ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
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
    // No `--quiet`: wasm-bindgen-test-runner rejects the `-q` cargo would pass on.
    execute(
        cargo()
            .current_dir(workspace)
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                format!("{me} wasm-runner"),
            )
            .args([
                "test",
                "--package",
                WASM_TESTED,
                "--target",
                "wasm32-unknown-unknown",
            ]),
    )
}

/// CI systems set `CI` (to `true`, mostly); a developer's shell does not.
fn in_ci() -> bool {
    env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

pub fn workspace_root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}
