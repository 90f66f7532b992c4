//! What the simulator's and the panel's measurements start: a `device-sim` fleet, and a mosquitto
//! of their own on loopback.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::process::{log_file, raised_fd_limit, Budget, Child, TempDir};
use super::Bench;
use crate::step::{Failure, Result};

/// How long a fleet may take to come online (device-sim itself gives up after 30 s).
const ONLINE_WITHIN: Duration = Duration::from_secs(60);
/// File descriptors a process needs besides its connections: listeners, runtime, stdio.
const SPARE_FDS: u64 = 100;

/// A running `device-sim` fleet.
pub struct Fleet {
    pub process: Child,
    /// The embedded broker's `mqtt://` URL, when there is one.
    pub tcp_url: Option<String>,
    pub online_after: Duration,
    /// Kept so that its output is still read: a closed pipe would fail its next line.
    _output: Receiver<String>,
}

impl Fleet {
    /// Starts `devices` devices with telemetry off and waits until all are online.
    pub fn start(
        bench: &Bench,
        budget: &Budget,
        devices: usize,
        extra: &[&str],
        label: &str,
    ) -> Result<Fleet> {
        let started = Instant::now();
        let log = bench.logs.join(format!("{label}.log"));
        let mut command = raised_fd_limit(&bench.sim);
        command
            .arg(format!("--devices={devices}"))
            .args([
                "--telemetry-ms=0",
                "--summary-secs=1",
                "--listen-tcp=127.0.0.1:0",
                "--listen-ws=127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log_file(&log)?);
        let mut process = Child::spawn(&mut command, format!("device-sim ({devices} devices)"))?;
        let lines = process.lines()?;
        let until = budget.deadline(ONLINE_WITHIN);
        let mut tcp_url = None;
        loop {
            let line = match lines.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Failure::new(format!(
                        "{devices} devices not online after {:.0} s (log: {})",
                        started.elapsed().as_secs_f64(),
                        log.display()
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Failure::new(format!(
                        "device-sim exited before its devices were online (log: {})",
                        log.display()
                    )))
                }
            };
            if let Some(url) = line.strip_prefix("embedded broker (TCP):") {
                tcp_url = Some(url.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("online: ") {
                let online = rest.split(' ').next().and_then(|n| n.parse::<usize>().ok());
                if online != Some(devices) {
                    return Err(Failure::new(format!(
                        "device-sim reported `{line}` for {devices} devices (log: {})",
                        log.display()
                    )));
                }
                return Ok(Fleet {
                    process,
                    tcp_url,
                    online_after: started.elapsed(),
                    _output: lines,
                });
            }
        }
    }

    pub fn stop(self) -> Result {
        self.process.stop()
    }
}

/// A mosquitto on a free loopback port, configured in a folder of its own that goes with it.
pub struct Mosquitto {
    pub process: Child,
    /// Its TCP listener, `mqtt://127.0.0.1:<port>`.
    pub url: String,
    /// Its WebSocket listener, `ws://127.0.0.1:<port>/mqtt`, when asked for.
    pub ws_url: Option<String>,
    _dir: TempDir,
}

impl Mosquitto {
    pub fn start(bench: &Bench, budget: &Budget) -> Result<Mosquitto> {
        Mosquitto::start_with(bench, budget, false)
    }

    /// A mosquitto that also listens for WebSocket clients (browsers), when `websocket`.
    pub fn start_with(bench: &Bench, budget: &Budget, websocket: bool) -> Result<Mosquitto> {
        let port = free_port()?;
        let ws_port = if websocket { Some(free_port()?) } else { None };
        let dir = TempDir::new("mosquitto")?;
        let config = dir.0.join("mosquitto.conf");
        // `user root` keeps it from switching to a user that cannot read this folder.
        // `max_queued_messages 0`: mosquitto's default (1,000) drops QoS 1 messages queued for a
        // client beyond it, so 10,000 retained statuses or answers at once would arrive as 1,000.
        let text = format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n\
             max_connections -1\nmax_queued_messages 0\npersistence false\n\
             connection_messages false\n\
             log_dest stderr\nlog_type error\nlog_type warning\n"
        );
        // Its WebSocket listener binds every interface whatever it is given; loopback tests only.
        let text = match ws_port {
            Some(ws) => format!("{text}listener {ws}\nprotocol websockets\n"),
            None => text,
        };
        fs::write(&config, text)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", config.display())))?;
        let mut command = raised_fd_limit(Path::new("mosquitto"));
        command
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log_file(&bench.logs.join("mosquitto.log"))?);
        let mut process = Child::spawn(&mut command, "mosquitto".to_owned())?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let until = budget.deadline(Duration::from_secs(10));
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = process.try_wait()? {
                return Err(Failure::new(format!(
                    "mosquitto exited ({status}); is it installed? (`cargo xtask test` installs it)"
                )));
            }
            if Instant::now() >= until {
                return Err(Failure::new(format!(
                    "mosquitto not listening on {address}"
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(Mosquitto {
            process,
            url: format!("mqtt://{address}"),
            ws_url: ws_port.map(|ws| format!("ws://127.0.0.1:{ws}/mqtt")),
            _dir: dir,
        })
    }
}

/// The largest fleet, up to `wanted` and in whole thousands above a thousand, whose `per_device`
/// descriptors each fit under `limit`.
pub fn fitting(wanted: usize, per_device: u64, limit: u64) -> usize {
    let most = usize::try_from(limit.saturating_sub(SPARE_FDS) / per_device).unwrap_or(usize::MAX);
    if wanted <= most {
        wanted
    } else if most >= 1_000 {
        most / 1_000 * 1_000
    } else {
        most.max(2)
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| Failure::new(format!("no free loopback port: {e}")))?
        .port())
}
