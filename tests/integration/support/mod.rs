//! Shared fixtures: brokers, fleets, the sender, free ports.

pub mod broker;
pub mod browser;
pub mod certs;
pub mod netlab;
pub mod reference;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use device_sim::faults::Faults;
use device_sim::fleet::Fleet;
use device_sim::fleet::{DeviceSpec, FleetOptions};
use device_sim::send::{self, Payload, SendRequest};
use device_sim::transport::{BrokerUrl, Endpoint};
use switchboard_protocol::session::ProtocolVersion;
use switchboard_protocol::tracker::{Target, Tracked};
use switchboard_protocol::{Command, DeviceId, GroupId};

/// A broker URL, without TLS or credentials.
pub fn endpoint(url: &str) -> Endpoint {
    Endpoint::plain(BrokerUrl::parse(url).unwrap())
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A loopback address with a free port.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// `n` devices named `<prefix>1..<prefix>n`, all in `groups`.
pub fn specs(prefix: &str, n: usize, groups: &[&str], faults: &Faults) -> Vec<DeviceSpec> {
    (1..=n)
        .map(|i| DeviceSpec {
            id: DeviceId::new(format!("{prefix}{i}")).unwrap(),
            groups: groups.iter().map(|g| GroupId::new(*g).unwrap()).collect(),
            faults: faults.clone(),
            family: None,
        })
        .collect()
}

/// Fleet options for a broker URL: MQTT 5, no telemetry, executions audited.
pub fn fleet_options(url: &str, state_dir: Option<&std::path::Path>) -> FleetOptions {
    FleetOptions {
        endpoint: endpoint(url),
        version: ProtocolVersion::V5,
        keep_alive: Duration::from_secs(5),
        state_dir: state_dir.map(Into::into),
        telemetry: Duration::ZERO,
        audit: true,
    }
}

/// Starts a fleet and waits until every device is online.
pub async fn start_fleet(specs: Vec<DeviceSpec>, opts: FleetOptions) -> Fleet {
    let n = specs.len();
    let fleet = Fleet::start(specs, opts).expect("the fleet's journal opens");
    let online = fleet.wait_online(Duration::from_secs(30)).await;
    assert_eq!(online, n, "every device connects");
    fleet
}

/// Sends a command with the command-line sender's code and waits for the outcome.
pub async fn send_command(
    url: &str,
    target: Target,
    command: Command,
    timeout: Duration,
) -> Tracked {
    send_command_as(endpoint(url), ProtocolVersion::V5, target, command, timeout).await
}

/// [`send_command`] through `endpoint` (credentials, TLS), offering `version` first.
pub async fn send_command_as(
    endpoint: Endpoint,
    version: ProtocolVersion,
    target: Target,
    command: Command,
    timeout: Duration,
) -> Tracked {
    send::send(SendRequest {
        endpoint,
        version,
        target,
        payload: Payload::Command(command),
        wait: true,
        timeout,
        family: None,
    })
    .await
    .unwrap()
}

/// Sends a plain-text command and waits for the answer.
pub async fn send_text(url: &str, device: &str, text: &str) -> Tracked {
    send::send(SendRequest {
        endpoint: endpoint(url),
        version: ProtocolVersion::V5,
        target: Target::Device(DeviceId::new(device).unwrap()),
        payload: Payload::Text(text.to_owned()),
        wait: true,
        timeout: Duration::from_secs(10),
        family: None,
    })
    .await
    .unwrap()
}

/// A device id.
pub fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

/// Shorthand for a device target.
pub fn to(s: &str) -> Target {
    Target::Device(dev(s))
}

/// Collects every message on `filters` for `duration`, with when it arrived.
pub async fn collect(
    url: &str,
    filters: &[&str],
    duration: Duration,
) -> Vec<(std::time::Instant, String, Vec<u8>)> {
    use device_sim::link::{now, Link};
    use switchboard_protocol::session::{QoS, Session, SessionConfig, SessionEvent};

    let config = SessionConfig::new(format!("watch-{}", free_port()));
    let mut link = Link::new(Session::new(config, 1).unwrap(), &endpoint(url));
    for f in filters {
        link.session_mut()
            .subscribe(f, QoS::AtLeastOnce, now())
            .unwrap();
    }
    link.session_mut().connect(now());
    let until = tokio::time::Instant::now() + duration;
    let mut got = Vec::new();
    let mut events = Vec::new();
    while tokio::time::Instant::now() < until {
        link.step(Some(until), &mut events, std::future::pending())
            .await;
        for e in events.drain(..) {
            if let SessionEvent::Message(m) = e {
                got.push((std::time::Instant::now(), m.topic, m.payload));
            }
        }
    }
    got
}

/// The simulator binary, built next to this test binary (`cargo xtask test` builds it first).
pub fn simulator_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let bin = dir.join("device-sim");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p device-sim` (cargo xtask test does)",
        bin.display()
    );
    bin
}

/// A simulator process, killed when dropped (also when a test panics).
pub struct SimProcess(std::process::Child);

impl SimProcess {
    /// Kills it (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One simulated device `<prefix>1` in its own process, keeping its state in `state`.
pub fn spawn_simulator(
    url: &str,
    state: &std::path::Path,
    prefix: &str,
    faults: &str,
) -> SimProcess {
    spawn_simulator_with(url, state, prefix, faults, &[])
}

/// [`spawn_simulator`] with more command-line arguments (TLS files, say).
pub fn spawn_simulator_with(
    url: &str,
    state: &std::path::Path,
    prefix: &str,
    faults: &str,
    more: &[&std::ffi::OsStr],
) -> SimProcess {
    let child = std::process::Command::new(simulator_binary())
        .args([
            "--broker",
            url,
            "--devices",
            "1",
            "--prefix",
            prefix,
            "--telemetry-ms",
            "0",
        ])
        .arg("--state-dir")
        .arg(state)
        .args(["--faults", faults])
        .args(more)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    SimProcess(child)
}

/// Waits until the device's retained status says it is online.
pub async fn wait_online(url: &str, device: &str) {
    for _ in 0..100 {
        let op = device_sim::send::Operator::connect(device_sim::send::OperatorOptions {
            endpoint: endpoint(url),
            version: ProtocolVersion::V5,
            timeout: Duration::from_secs(10),
            presence_wait: Duration::from_millis(100),
        })
        .await
        .unwrap();
        let online = op
            .tracker()
            .presence(&dev(device))
            .is_some_and(|p| p.online);
        op.disconnect().await;
        if online {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{device} never came online");
}

/// Publishes raw payloads (QoS 1) as a client of its own, and waits until the broker has them.
pub async fn publish_raw(url: &str, messages: &[(&str, &[u8])]) {
    use device_sim::link::{now, Link};
    use switchboard_protocol::session::{Publish, QoS, Session, SessionConfig, SessionEvent};

    let config = SessionConfig::new(format!("raw-{}", free_port()));
    let mut link = Link::new(Session::new(config, 1).unwrap(), &endpoint(url));
    link.session_mut().connect(now());
    for (topic, payload) in messages {
        link.publish(Publish::new(*topic, payload.to_vec(), QoS::AtLeastOnce))
            .unwrap();
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut delivered = 0;
    let mut events = Vec::new();
    while delivered < messages.len() {
        assert!(
            tokio::time::Instant::now() < until,
            "the broker took the messages"
        );
        link.step(Some(until), &mut events, std::future::pending())
            .await;
        delivered += events
            .drain(..)
            .filter(|e| matches!(e, SessionEvent::Delivered(_)))
            .count();
    }
}
