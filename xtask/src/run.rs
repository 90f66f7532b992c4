//! `cargo xtask run`: everything up on this machine. Installs what is missing, builds the panel,
//! starts the simulator (embedded broker, a dozen devices in two groups), serves the panel on
//! loopback, and prints the URL to open. Ctrl-C stops everything it started.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::step::{step, Failure, Result};
use crate::{install, panel};

struct Options {
    devices: u32,
    port: u16,
}

impl Options {
    fn parse(args: &[OsString]) -> Result<Self> {
        let mut o = Options {
            devices: 12,
            port: 8080,
        };
        let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| Failure::new(format!("{name} needs a value")))
            };
            match arg.as_str() {
                "--devices" => {
                    o.devices = value("--devices")?
                        .parse()
                        .map_err(|_| Failure::new("--devices takes a number"))?;
                }
                "--port" => {
                    o.port = value("--port")?
                        .parse()
                        .map_err(|_| Failure::new("--port takes a port number"))?;
                }
                other => {
                    return Err(Failure::new(format!(
                        "unknown option `{other}` for `run` (see `cargo xtask help`)"
                    )))
                }
            }
        }
        Ok(o)
    }
}

/// Children are killed when this is dropped, whatever way `run` ends.
struct Children(Vec<(&'static str, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run(args: &[OsString], workspace: &Path) -> Result {
    let o = Options::parse(args)?;
    let mut path = OsString::new();
    step("install missing tools and build the panel", || {
        path = panel::build(workspace, false)?;
        Ok(())
    })?;
    step("build the device simulator", || {
        install::build_simulator(workspace)
    })?;
    let mut children = Children(Vec::new());
    let sim = Command::new(workspace.join("target/debug/device-sim"))
        .current_dir(workspace)
        .args([
            "--devices",
            &o.devices.to_string(),
            "--groups",
            "floor1,floor2",
            "--state-dir",
            "target/run-state",
        ])
        .spawn()
        .map_err(|error| Failure::new(format!("cannot start device-sim: {error}")))?;
    children.0.push(("device-sim", sim));
    let server = panel::trunk(workspace, &path)
        .args([
            "serve",
            "--release",
            "--no-autoreload",
            "--address",
            "127.0.0.1",
            "--port",
            &o.port.to_string(),
        ])
        .spawn()
        .map_err(|error| Failure::new(format!("cannot start trunk serve: {error}")))?;
    children.0.push(("trunk serve", server));

    // Trunk serves once its own build (already done above, so quick) is in place.
    let started = Instant::now();
    while !http_ok(o.port) {
        for (name, child) in &mut children.0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Failure::new(format!("{name} stopped ({status})")));
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(Failure::new("the panel was not served within 10 minutes"));
        }
        sleep(Duration::from_millis(250));
    }
    let url = format!(
        "http://127.0.0.1:{}/?broker=ws://127.0.0.1:8083/mqtt",
        o.port
    );
    println!();
    println!("==> Switchboard is up: open {url}");
    println!("    embedded broker mqtt://127.0.0.1:1883 and ws://127.0.0.1:8083/mqtt, {} devices in floor1 and floor2", o.devices);
    println!("    press Ctrl-C to stop everything");
    loop {
        for (name, child) in &mut children.0 {
            match child.try_wait() {
                // Ctrl-C reaches every process of the terminal's group: a clean stop.
                Ok(Some(status)) if status.success() => {
                    println!("==> {name} stopped; stopping the rest");
                    return Ok(());
                }
                Ok(Some(status)) => return Err(Failure::new(format!("{name} stopped ({status})"))),
                _ => {}
            }
        }
        sleep(Duration::from_millis(500));
    }
}

/// Whether the panel's page answers on loopback.
fn http_ok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
