//! The command line: `device-sim [run options]` and `device-sim send ...`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use switchboard_protocol::family::{Address, Family};
use switchboard_protocol::session::ProtocolVersion;
use switchboard_protocol::tracker::Target;
use switchboard_protocol::{Command, DeviceId, GroupId};

use crate::broker::EmbeddedBroker;
use crate::faults::Faults;
use crate::fleet::Fleet;
use crate::fleet::{DeviceSpec, FleetOptions};
use crate::send::{self, Payload, SendRequest};
use crate::transport::{BrokerUrl, Endpoint, TlsFiles};

/// Simulated Switchboard devices on real MQTT, with an embedded broker by default.
#[derive(Debug, Parser)]
#[command(name = "device-sim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Send one command to a device or a group and print each device's outcome.
    Send(SendArgs),
}

/// Connection settings shared by the simulator and the sender.
#[derive(Debug, Args)]
struct ConnArgs {
    /// CA certificate (PEM) for mqtts:// and wss://.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// Broker user name. `{device}` stands for each device's own id (`--username '{device}'`
    /// logs every simulated device in as itself, as a per-device ACL expects).
    #[arg(long, global = true)]
    username: Option<String>,
    /// Broker password; `{device}` as in --username.
    #[arg(long, global = true)]
    password: Option<String>,
}

impl ConnArgs {
    fn endpoint(&self, url: BrokerUrl) -> anyhow::Result<Endpoint> {
        let tls = if !url.is_tls() && self.ca.is_none() && self.cert.is_none() {
            None
        } else {
            let files = TlsFiles {
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
            };
            Some(files.client_config().context("TLS settings")?)
        };
        Ok(Endpoint {
            url,
            tls,
            username: self.username.clone(),
            password: self.password.clone(),
        })
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Broker URL (mqtt://, mqtts://, ws://, wss://). Without it, an embedded broker is started.
    #[arg(long)]
    broker: Option<String>,
    /// Start the embedded broker (the default when no --broker is given).
    #[arg(long)]
    embedded_broker: bool,
    /// The embedded broker's TCP listener (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen_tcp: SocketAddr,
    /// The embedded broker's WebSocket listener (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen_ws: SocketAddr,
    /// How many devices: device1 .. deviceN.
    #[arg(long, default_value_t = 12)]
    devices: usize,
    /// Prefix of generated device ids.
    #[arg(long, default_value = "device")]
    prefix: String,
    /// A file with one device id per line, instead of generated ids.
    #[arg(long)]
    ids_file: Option<PathBuf>,
    /// Groups: `floor1,floor2` deals devices out in turn; `floor1=1-6` takes devices 1 to 6;
    /// an empty string puts devices in no group.
    #[arg(long, default_value = "floor1,floor2")]
    groups: String,
    /// Which dialect devices speak: `switchboard` (the default), `tasmota`, `shelly`,
    /// `zigbee2mqtt`, `esphome` or `homeassistant` for all, or ranges such as
    /// `tasmota=1-100,shelly=101-200` (devices outside every range speak Switchboard's).
    #[arg(long, default_value = "switchboard")]
    family: String,
    /// Where devices keep what survives a restart (saved config, journal, recent TIDs).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// MQTT version to try first: 5 or 3.1.1.
    #[arg(long, default_value = "5")]
    mqtt_version: String,
    /// Keep-alive interval in seconds.
    #[arg(long, default_value_t = 30)]
    keep_alive_secs: u64,
    /// Default telemetry period in milliseconds (0: off).
    #[arg(long, default_value_t = 5000)]
    telemetry_ms: u64,
    /// Faults to inject, e.g. `drop-in=0.1,dup-in=0.1,slow-ms=200` (see the faults module).
    #[arg(long, default_value = "")]
    faults: String,
    /// Apply --faults only to these devices (comma separated); all devices when empty.
    #[arg(long, default_value = "")]
    faults_for: String,
    /// Seconds between summary lines.
    #[arg(long, default_value_t = 5)]
    summary_secs: u64,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Debug, Args)]
struct SendArgs {
    /// Broker URL.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Send to every member of this group instead of one device.
    #[arg(long)]
    group: Option<String>,
    /// The device speaks another family's dialect (tasmota, shelly, zigbee2mqtt, esphome,
    /// homeassistant); DEVICE is then its name as `device-sim --family` names it.
    #[arg(long)]
    family: Option<String>,
    /// Send the text as is (the pattern document's plain-text form), e.g. "light: on".
    #[arg(long)]
    text: bool,
    /// Wait for the devices' answers and exit non-zero unless every one succeeded.
    #[arg(long)]
    wait: bool,
    /// Deadline in seconds.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
    /// MQTT version to try first: 5 (falling back to 3.1.1) or 3.1.1.
    #[arg(long, default_value = "5")]
    mqtt_version: String,
    /// `DEVICE COMMAND`, or `COMMAND` with --group, or `DEVICE TEXT` with --text.
    #[arg(required = true, num_args = 1..=2)]
    words: Vec<String>,
    /// light / led: on.
    #[arg(long)]
    on: bool,
    /// light / led: off.
    #[arg(long)]
    off: bool,
    /// restart: how long to stay away.
    #[arg(long)]
    delay_ms: Option<u64>,
    /// get_log: how many lines.
    #[arg(long)]
    lines: Option<u32>,
    /// set_telemetry_interval: the new period.
    #[arg(long)]
    interval_ms: Option<u64>,
    /// firmware_stage: the version to stage.
    #[arg(long = "fw-version")]
    fw_version: Option<String>,
    /// Raw JSON arguments (set_config takes `{"config": {...}}`).
    #[arg(long)]
    args: Option<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

impl Cli {
    /// Runs what the command line asks for.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Some(Cmd::Send(args)) => run_send(args).await,
            None => run_fleet(self.run).await,
        }
    }
}

/// Device ids and their groups, from the command line.
fn specs(args: &RunArgs) -> anyhow::Result<Vec<DeviceSpec>> {
    let ids: Vec<DeviceId> = match &args.ids_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(DeviceId::new)
            .collect::<Result<_, _>>()?,
        None => (1..=args.devices)
            .map(|i| DeviceId::new(format!("{}{i}", args.prefix)))
            .collect::<Result<_, _>>()?,
    };
    let faults = Faults::parse(&args.faults)?;
    let faulty: Vec<&str> = args
        .faults_for
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut dealt = Vec::new();
    let mut ranged = Vec::new();
    for entry in args
        .groups
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match entry.split_once('=') {
            None => dealt.push(GroupId::new(entry)?),
            Some((name, range)) => ranged.push((GroupId::new(name)?, range_of(entry, range)?)),
        }
    }
    let mut every: Option<Family> = None;
    let mut families: Vec<(Family, std::ops::RangeInclusive<usize>)> = Vec::new();
    for entry in args
        .family
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match entry.split_once('=') {
            None => every = Some(entry.parse()?),
            Some((name, range)) => families.push((name.parse()?, range_of(entry, range)?)),
        }
    }
    Ok(ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| {
            let family = families
                .iter()
                .find(|(_, r)| r.contains(&(i + 1)))
                .map(|(f, _)| *f)
                .or(every)
                .and_then(|f| crate::family::address_for(f, &id));
            let id = family.as_ref().map_or(id, Address::device_id);
            let mut groups = Vec::new();
            if !dealt.is_empty() {
                groups.push(dealt[i % dealt.len()].clone());
            }
            groups.extend(
                ranged
                    .iter()
                    .filter(|(_, r)| r.contains(&(i + 1)))
                    .map(|(g, _)| g.clone()),
            );
            let faults = if faulty.is_empty() || faulty.contains(&id.as_str()) {
                faults.clone()
            } else {
                Faults::default()
            };
            DeviceSpec {
                id,
                groups,
                faults,
                family,
            }
        })
        .collect())
}

/// `FIRST-LAST` of a `name=FIRST-LAST` entry.
fn range_of(entry: &str, range: &str) -> anyhow::Result<std::ops::RangeInclusive<usize>> {
    let (a, b) = range
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .with_context(|| format!("{entry:?}: expected name=FIRST-LAST"))?;
    Ok(a..=b)
}

fn version(s: &str) -> anyhow::Result<ProtocolVersion> {
    match s {
        "5" | "5.0" => Ok(ProtocolVersion::V5),
        "3.1.1" | "3" | "4" => Ok(ProtocolVersion::V3_1_1),
        other => anyhow::bail!("--mqtt-version {other:?}: expected 5 or 3.1.1"),
    }
}

async fn run_fleet(args: RunArgs) -> anyhow::Result<ExitCode> {
    let specs = specs(&args)?;
    let embedded = args.broker.is_none() || args.embedded_broker;
    match crate::limits::raise_open_files() {
        Ok(limit) => crate::limits::check_open_files(specs.len(), embedded, limit)
            .map_err(anyhow::Error::msg)?,
        Err(e) => tracing::warn!(error = %e, "cannot read the open-files limit"),
    }
    let (url, broker) = match &args.broker {
        Some(u) if !args.embedded_broker => (BrokerUrl::parse(u)?, None),
        _ => {
            let b = EmbeddedBroker::start(args.listen_tcp, args.listen_ws).await?;
            println!("embedded broker (TCP):       {}", b.tcp_url);
            println!("embedded broker (WebSocket): {}", b.ws_url);
            (BrokerUrl::parse(&b.tcp_url)?, Some(b))
        }
    };
    let opts = FleetOptions {
        endpoint: args.conn.endpoint(url.clone())?,
        version: version(&args.mqtt_version)?,
        keep_alive: Duration::from_secs(args.keep_alive_secs),
        state_dir: args.state_dir.clone(),
        telemetry: Duration::from_millis(args.telemetry_ms),
        audit: false,
    };
    let mut groups: Vec<String> = specs
        .iter()
        .flat_map(|s| s.groups.iter().map(ToString::to_string))
        .collect();
    groups.sort();
    groups.dedup();
    let first = specs.first().map(|s| s.id.to_string()).unwrap_or_default();
    let last = specs.last().map(|s| s.id.to_string()).unwrap_or_default();
    println!(
        "devices: {} ({first} .. {last}) on {url}{}",
        specs.len(),
        if groups.is_empty() {
            String::new()
        } else {
            format!(", groups {}", groups.join(", "))
        }
    );
    if args.state_dir.is_none() {
        tracing::info!("no --state-dir: device state is kept in memory only");
    }
    let fleet = Fleet::start(specs, opts)
        .map_err(|e| anyhow::anyhow!("cannot open the state folder's journal: {e}"))?;
    let online = fleet.wait_online(Duration::from_secs(30)).await;
    println!("online: {online} devices; Ctrl-C to stop");
    tokio::select! {
        () = fleet.report(Duration::from_secs(args.summary_secs.max(1))) => {}
        r = tokio::signal::ctrl_c() => { r?; }
    }
    println!("stopping: devices leave with their status set offline");
    fleet.stop(Duration::from_secs(10)).await;
    if let Some(b) = broker {
        b.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}

fn command(args: &SendArgs, name: &str) -> anyhow::Result<Command> {
    let name = name.replace('-', "_");
    let mut raw = match &args.args {
        Some(a) => serde_json::from_str(a).context("--args must be a JSON object")?,
        None => json!({}),
    };
    if let Some(obj) = raw.as_object_mut() {
        if args.on || args.off {
            obj.insert("on".into(), json!(args.on && !args.off));
        }
        if let Some(v) = args.delay_ms {
            obj.insert("delay_ms".into(), json!(v));
        }
        if let Some(v) = args.lines {
            obj.insert("lines".into(), json!(v));
        }
        if let Some(v) = args.interval_ms {
            obj.insert("interval_ms".into(), json!(v));
        }
        if let Some(v) = &args.fw_version {
            obj.insert("version".into(), json!(v));
        }
    }
    if raw.as_object().is_some_and(serde_json::Map::is_empty) {
        raw = serde_json::Value::Null;
    }
    Command::from_parts(&name, &raw).map_err(|r| anyhow::anyhow!("{name}: {r}"))
}

async fn run_send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let url = BrokerUrl::parse(&args.broker)?;
    let (target, payload) = match (&args.group, args.words.as_slice()) {
        (Some(g), [cmd]) => (
            Target::Group(GroupId::new(g.as_str())?),
            Payload::Command(command(&args, cmd)?),
        ),
        (None, [device, what]) => {
            let target = Target::Device(DeviceId::new(device.as_str())?);
            if args.text {
                (target, Payload::Text(what.clone()))
            } else {
                (target, Payload::Command(command(&args, what)?))
            }
        }
        _ => anyhow::bail!("expected DEVICE COMMAND, or --group GROUP COMMAND"),
    };
    let family = match (&args.family, &target) {
        (Some(f), Target::Device(d)) => {
            let f: Family = f.parse()?;
            crate::family::address_for(f, d)
        }
        _ => None,
    };
    let tracked = send::send(SendRequest {
        endpoint: args.conn.endpoint(url)?,
        version: version(&args.mqtt_version)?,
        target,
        payload,
        wait: args.wait,
        timeout: Duration::from_secs(args.timeout_secs),
        family,
    })
    .await?;
    let (lines, ok) = send::report(&tracked);
    print!("{lines}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
