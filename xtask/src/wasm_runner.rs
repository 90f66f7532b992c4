//! Cargo's runner for wasm32 test binaries under `cargo xtask test`: runs each binary in headless
//! Firefox, then in headless Chromium.
//!
//! One `wasm-bindgen-test-runner` call drives one browser, the first whose driver it finds (a
//! `*_REMOTE` variable, then `GECKODRIVER`, `SAFARIDRIVER`, `CHROMEDRIVER`, then `PATH`). So each
//! call gets exactly one driver variable and none of the others. Chromium's flags come from the
//! `webdriver.json` next to the tested crate's Cargo.toml (cargo runs us in that folder).

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::install::{self, CHROMEDRIVER};
use crate::step::{execute, Failure, Result};
use crate::wasm_binary;

/// Every variable the runner reads to choose a driver.
const DRIVER_VARIABLES: &[&str] = &[
    "GECKODRIVER",
    "GECKODRIVER_REMOTE",
    "SAFARIDRIVER",
    "SAFARIDRIVER_REMOTE",
    "CHROMEDRIVER",
    "CHROMEDRIVER_REMOTE",
    "MSEDGEDRIVER",
    "MSEDGEDRIVER_REMOTE",
];

#[derive(Debug)]
struct Browser {
    name: &'static str,
    /// The variable that hands the runner this browser's driver.
    variable: &'static str,
    driver: PathBuf,
}

pub fn run(args: &[OsString]) -> Result {
    let Some(wasm) = args.first() else {
        return Err(Failure::new(
            "usage: xtask wasm-runner <test.wasm> [test args...] (cargo calls this)",
        ));
    };
    let wasm = Path::new(wasm);
    let shown = wasm.file_name().map_or_else(
        || wasm.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );

    if !has_browser_tests(wasm, &shown)? {
        return Ok(());
    }
    let runner = install::cargo_installed("wasm-bindgen-test-runner")?;
    let mut failed = Vec::new();
    for browser in browsers()? {
        println!("==> {shown} in {}", browser.name);
        let mut command = Command::new(&runner);
        command.args(args);
        for variable in DRIVER_VARIABLES {
            if env::var_os(variable).is_some() {
                command.env_remove(variable);
            }
        }
        command.env(browser.variable, &browser.driver);
        if let Err(failure) = execute(&mut command) {
            println!("    FAILED in {}: {failure}", browser.name);
            failed.push(browser.name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{shown} failed in {}",
            failed.join(" and ")
        )))
    }
}

/// Whether the binary holds tests for the browsers; fails for tests that would silently run in
/// Node instead.
fn has_browser_tests(wasm: &Path, shown: &str) -> Result<bool> {
    let bytes = fs::read(wasm)
        .map_err(|error| Failure::new(format!("cannot read {}: {error}", wasm.display())))?;
    let binary = wasm_binary::inspect(&bytes)
        .map_err(|error| Failure::new(format!("cannot read {}: {error}", wasm.display())))?;
    if binary.tests == 0 {
        println!("==> {shown}: no #[wasm_bindgen_test] tests, nothing to run in the browsers");
        return Ok(false);
    }
    if !binary.runs_in_browser {
        return Err(Failure::new(format!(
            "{shown} has {} #[wasm_bindgen_test] tests but no \
             `wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);` at the root of its \
             test crate (the lib's test module, or the file in tests/), so they would run in Node \
             instead of the browsers",
            binary.tests
        )));
    }
    Ok(true)
}

/// Both browsers, each with its driver; fails naming whichever driver is missing.
fn browsers() -> Result<[Browser; 2]> {
    let geckodriver = install::cargo_bin()?.join("geckodriver");
    let browsers = [
        Browser {
            name: "Firefox",
            variable: "GECKODRIVER",
            driver: geckodriver,
        },
        Browser {
            name: "Chromium",
            variable: "CHROMEDRIVER",
            driver: PathBuf::from(CHROMEDRIVER),
        },
    ];
    for browser in &browsers {
        if !browser.driver.exists() {
            return Err(Failure::new(format!(
                "no driver for {} at {}: run `cargo xtask test` without --skip-install to \
                 install it",
                browser.name,
                browser.driver.display()
            )));
        }
    }
    Ok(browsers)
}
