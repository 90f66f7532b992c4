//! The tools `cargo xtask test` needs, at their pinned versions: find them, and install the ones
//! that are missing. A warm run only asks each tool for its version, which takes a moment.
//!
//! Everything installs from package registries only (rustup, crates, Debian apt): CI machines
//! reach nothing else, and a tool that would download from elsewhere fails there.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::step::{execute, probe, Failure, Result};

/// The wasm-bindgen CLI (with `wasm-bindgen-test-runner`) must match the `wasm-bindgen` library
/// exactly, or the runner refuses the test binaries. [`check_pins`] keeps the three places that
/// name this version in step.
pub const WASM_BINDGEN: &str = "0.2.130";

/// The newest geckodriver that installs from the crate registry here and drives Firefox ESR.
const GECKODRIVER: &str = "0.37.1";

/// The newest Trunk that builds with this project's Rust toolchain.
pub const TRUNK: &str = "0.21.14";

/// wasm-opt from binaryen's npm package (a Node build). It must match Trunk.toml's `wasm_opt`
/// (`version_132`): Trunk uses a tool from PATH only when its version matches exactly. Debian's
/// binaryen is older and breaks wasm-bindgen's output.
const BINARYEN: &str = "132.0.0";

/// Where Debian's `chromium` puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where Debian's `chromium-driver` puts its driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Debian packages every run needs: the broker that integration tests start, and openssl for
/// the TLS tests (a certificate's key hash for the one browser that trusts it), iproute2 and
/// iptables for the network-fault tests (a namespace, a veth pair, dropped packets).
const APT_ALWAYS: &[&str] = &[
    "mosquitto",
    "mosquitto-clients",
    "openssl",
    "iproute2",
    "iptables",
];

/// Debian packages for the browser tests (geckodriver comes from the crate registry instead:
/// Debian does not package it).
const APT_BROWSERS: &[&str] = &["chromium", "chromium-driver", "firefox-esr"];

/// Makes sure every tool is present at its pinned version, installing what is missing.
/// `browsers: false` leaves out what only the browser tests use.
pub fn ensure(workspace: &Path, browsers: bool) -> Result {
    check_pins(workspace)?;
    rustup_components()?;
    let mut apt = APT_ALWAYS.to_vec();
    if browsers {
        wasm_target()?;
        apt.extend_from_slice(APT_BROWSERS);
    }
    apt_packages(&apt)?;
    python_env(workspace)?;
    cargo_fuzz()?;
    if browsers {
        cargo_tool("geckodriver", GECKODRIVER, &["geckodriver"], false)?;
        // The end-to-end tests load the panel as Trunk builds it.
        ensure_panel_tools(workspace)?;
    }
    Ok(())
}

/// Makes sure the tools that build the panel are present: the wasm32 target, the pinned
/// wasm-bindgen CLI, Trunk and wasm-opt. Returns the PATH to build with.
pub fn ensure_panel_tools(workspace: &Path) -> Result<std::ffi::OsString> {
    check_pins(workspace)?;
    wasm_target()?;
    cargo_tool(
        "wasm-bindgen-cli",
        WASM_BINDGEN,
        &["wasm-bindgen", "wasm-bindgen-test-runner"],
        false,
    )?;
    // Trunk's own lock file is what builds with this toolchain.
    cargo_tool("trunk", TRUNK, &["trunk"], true)?;
    binaryen(workspace)?;
    panel_path(workspace)
}

/// cargo-fuzz, which runs the libFuzzer targets in `fuzz/` (its own lock file builds here).
pub fn cargo_fuzz() -> Result {
    cargo_tool("cargo-fuzz", crate::fuzz::CARGO_FUZZ, &["cargo-fuzz"], true)
}

/// The PATH the panel builds with: binaryen's wasm-opt and cargo-installed tools first.
pub fn panel_path(workspace: &Path) -> Result<std::ffi::OsString> {
    let mut path = vec![binaryen_bin(workspace), cargo_bin()?];
    path.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(path).map_err(|error| Failure::new(format!("cannot build PATH: {error}")))
}

fn binaryen_bin(workspace: &Path) -> PathBuf {
    workspace.join("target/tools/binaryen/node_modules/.bin")
}

/// The folder with binaryen's `wasm-opt`, installed from npm into `target/tools` if missing.
fn binaryen(workspace: &Path) -> Result<PathBuf> {
    let prefix = workspace.join("target/tools/binaryen");
    let bin = binaryen_bin(workspace);
    let major = BINARYEN.split('.').next().unwrap_or(BINARYEN);
    let wanted = format!("version_{major}");
    let present = probe(Command::new(bin.join("wasm-opt")).arg("--version"))
        .is_some_and(|v| v.contains(&wanted));
    if present {
        println!("    wasm-opt (binaryen {BINARYEN}, npm): present");
        return Ok(bin);
    }
    npm_install(&prefix, &format!("binaryen@{BINARYEN}"))?;
    if probe(Command::new(bin.join("wasm-opt")).arg("--version"))
        .is_some_and(|v| v.contains(&wanted))
    {
        Ok(bin)
    } else {
        Err(Failure::new(format!(
            "installed binaryen@{BINARYEN}, but its wasm-opt does not report {wanted}"
        )))
    }
}

/// The folder `cargo install` puts binaries in: `$CARGO_HOME/bin`, by default `~/.cargo/bin`.
pub fn cargo_bin() -> Result<PathBuf> {
    let home = match env::var_os("CARGO_HOME") {
        Some(cargo_home) => PathBuf::from(cargo_home),
        None => match env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".cargo"),
            None => return Err(Failure::new("neither CARGO_HOME nor HOME is set")),
        },
    };
    Ok(home.join("bin"))
}

/// A cargo-installed tool: the copy in [`cargo_bin`] when there is one (the one `cargo install`
/// manages), otherwise whatever `PATH` finds.
pub fn cargo_installed(name: &str) -> Result<PathBuf> {
    let installed = cargo_bin()?.join(name);
    Ok(if installed.exists() {
        installed
    } else {
        PathBuf::from(name)
    })
}

/// The cargo that runs us (so the toolchain stays the same), or the one on `PATH`.
pub fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Fails when a manifest names a wasm-bindgen version other than [`WASM_BINDGEN`]: a mismatch only
/// shows up much later, as a runner or Trunk that refuses the build.
fn check_pins(workspace: &Path) -> Result {
    let pins = [
        ("Cargo.toml", format!("wasm-bindgen = \"={WASM_BINDGEN}\"")),
        ("Trunk.toml", format!("wasm_bindgen = \"{WASM_BINDGEN}\"")),
    ];
    for (file, expected) in pins {
        let text = fs::read_to_string(workspace.join(file))
            .map_err(|error| Failure::new(format!("cannot read {file}: {error}")))?;
        if !text.lines().any(|line| line.trim() == expected) {
            return Err(Failure::new(format!(
                "{file} must contain the line `{expected}`: the wasm-bindgen library, the CLI \
                 and Trunk must all use {WASM_BINDGEN} (xtask/src/install.rs pins the CLI)"
            )));
        }
    }
    println!("    wasm-bindgen {WASM_BINDGEN}: pinned alike in Cargo.toml and Trunk.toml");
    Ok(())
}

fn rustup_components() -> Result {
    let installed = probe(Command::new("rustup").args(["component", "list", "--installed"]))
        .ok_or_else(|| {
            Failure::new("`rustup component list --installed` failed; is rustup installed?")
        })?;
    let missing: Vec<&str> = ["rustfmt", "clippy"]
        .into_iter()
        .filter(|component| {
            !installed
                .lines()
                .any(|line| line.starts_with(&format!("{component}-")))
        })
        .collect();
    if missing.is_empty() {
        println!("    rustup components rustfmt, clippy: present");
        return Ok(());
    }
    execute(
        Command::new("rustup")
            .args(["component", "add"])
            .args(&missing),
    )
}

fn wasm_target() -> Result {
    const TARGET: &str = "wasm32-unknown-unknown";
    let installed = probe(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or_else(|| {
            Failure::new("`rustup target list --installed` failed; is rustup installed?")
        })?;
    if installed.lines().any(|line| line.trim() == TARGET) {
        println!("    rustup target {TARGET}: present");
        return Ok(());
    }
    execute(Command::new("rustup").args(["target", "add", TARGET]))
}

/// Installs the missing Debian packages when we are root; otherwise says what to install.
fn apt_packages(wanted: &[&str]) -> Result {
    if probe(Command::new("dpkg").arg("--version")).is_none() {
        return Err(Failure::new(format!(
            "no dpkg here, so the system packages cannot be checked or installed. Install the \
             equivalents of these Debian packages: {}, then run with --skip-install",
            wanted.join(" ")
        )));
    }
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if missing.is_empty() {
        println!("    Debian packages {}: present", wanted.join(", "));
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        return Err(Failure::new(format!(
            "missing Debian packages: {list}\n    install them as root, then run again:\n    \
             sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}"
        )));
    }
    execute(Command::new("apt-get").arg("update"))?;
    execute(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

fn dpkg_installed(package: &str) -> bool {
    probe(Command::new("dpkg").args(["-s", package])).is_some_and(|status| {
        status
            .lines()
            .any(|line| line == "Status: install ok installed")
    })
}

fn is_root() -> bool {
    probe(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// Installs `krate` at exactly `version` unless each of its `binaries` already reports that
/// version; `locked` installs with the crate's own lock file.
fn cargo_tool(krate: &str, version: &str, binaries: &[&str], locked: bool) -> Result {
    let stale = |binary: &str| !reports_version(binary, version);
    if !binaries.iter().any(|binary| stale(binary)) {
        println!("    {krate} {version}: present");
        return Ok(());
    }
    // wasm-bindgen-cli never `--locked`: its lock file names a webpki-roots version the registry
    // no longer serves, while a fresh resolution builds. Trunk always: only its lock file builds
    // with this toolchain.
    println!("    installing {krate} {version} (a few minutes)");
    let mut install = cargo();
    install.args(["install", krate, "--version", version]);
    if locked {
        install.arg("--locked");
    }
    execute(&mut install)?;
    match binaries.iter().find(|binary| stale(binary)) {
        None => Ok(()),
        Some(binary) => Err(Failure::new(format!(
            "installed {krate} {version}, but `{binary} --version` does not report {version}"
        ))),
    }
}

fn reports_version(binary: &str, version: &str) -> bool {
    let Ok(path) = cargo_installed(binary) else {
        return false;
    };
    probe(Command::new(path).arg("--version")).is_some_and(|output| {
        output
            .split_whitespace()
            .any(|word| word.trim_start_matches('v') == version)
    })
}

/// `npm install <spec>` into its own folder `prefix` (nothing global), installing Debian's Node.js
/// and npm first when the machine has none.
pub fn npm_install(prefix: &Path, spec: &str) -> Result {
    if probe(Command::new("npm").arg("--version")).is_none() {
        apt_packages(&["nodejs", "npm"])?;
    }
    fs::create_dir_all(prefix)
        .map_err(|error| Failure::new(format!("cannot create {}: {error}", prefix.display())))?;
    execute(Command::new("npm").args([
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        &prefix.to_string_lossy(),
        spec,
    ]))
}

/// The pinned Python packages the pattern document's reference programs and the device-family
/// peers (`tests/families/`) import.
const PYTHON_REQUIREMENTS: &str = "tests/reference/requirements.txt";

/// What the installed packages must make importable.
const IMPORTS: &str = "import awscrt, awsiot, hatasmota, ha_mqtt_discoverable";

/// Where the integration tests look for the Python that runs the reference programs.
const PYTHON_ENV: &str = "target/tools/python";

/// A virtual environment with the reference programs' SDK ([`PYTHON_REQUIREMENTS`]), created with
/// the machine's `python3` (Debian's, with `python3-venv`, when it has none that can make one).
fn python_env(workspace: &Path) -> Result {
    let requirements = workspace.join(PYTHON_REQUIREMENTS);
    let wanted = fs::read_to_string(&requirements).map_err(|error| {
        Failure::new(format!("cannot read {}: {error}", requirements.display()))
    })?;
    let venv = workspace.join(PYTHON_ENV);
    let python = venv.join("bin/python");
    // Written last, so it names only what pip finished installing.
    let stamp = venv.join("switchboard-requirements.txt");
    let imports = || probe(Command::new(&python).args(["-c", IMPORTS])).is_some();
    if fs::read_to_string(&stamp).is_ok_and(|had| had == wanted) && imports() {
        println!("    Python SDK for the reference programs ({PYTHON_REQUIREMENTS}): present");
        return Ok(());
    }
    if probe(Command::new("python3").args(["-c", "import ensurepip, venv"])).is_none() {
        apt_packages(&["python3", "python3-venv"])?;
    }
    execute(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    execute(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--no-input"])
            .args(["--disable-pip-version-check", "--requirement"])
            .arg(&requirements),
    )?;
    if !imports() {
        return Err(Failure::new(format!(
            "installed {PYTHON_REQUIREMENTS} into {}, but `{IMPORTS}` fails there",
            venv.display()
        )));
    }
    fs::write(&stamp, wanted)
        .map_err(|error| Failure::new(format!("cannot write {}: {error}", stamp.display())))
}

/// Builds the `device-sim` binary (debug, next to the test binaries).
pub fn build_simulator(workspace: &Path) -> Result {
    execute(cargo().current_dir(workspace).args([
        "build",
        "--package",
        "device-sim",
        "--bin",
        "device-sim",
    ]))
}
