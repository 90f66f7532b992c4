//! One simulated device: a small tokio task around a protocol session and a device gate.
//!
//! Every rule (duplicates, order, expiry, sequences, journal) is the protocol crate's
//! [`DeviceGate`]; this module only gives the commands their effect (a light that really switches,
//! a restart that really drops the connection, telemetry that really changes rate), persists what
//! must survive a restart, and applies the configured faults.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_protocol::envelope::{
    decode_request, text_response, Config, DeviceState, IncomingRequest, LogLines, Status,
    Telemetry, Tid, VERSION,
};
use switchboard_protocol::family::Address;
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig, Reply};
use switchboard_protocol::session::{
    Message, ProtocolVersion, Publish, QoS, Session, SessionConfig, SessionEvent, Will,
};
use switchboard_protocol::topic::{self, Topic};
use switchboard_protocol::{command, Command, DeviceId, GroupId};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::{Delayed, Faults};
use crate::journal::Journal;
use crate::link::{now, Link, Wake};
use crate::store::{DeviceRecord, Persisted, Store};
use crate::transport::Endpoint;

/// Firmware every device starts with.
pub const FACTORY_FIRMWARE: &str = "1.0.0";
/// How many log lines a device keeps.
const LOG_LINES: usize = 50;

/// How long a restarting device waits for the broker to acknowledge its answers before leaving.
const LEAVE_WITHIN: Duration = Duration::from_secs(2);

/// What every device of a fleet shares.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// The broker, and how to reach it.
    pub endpoint: Endpoint,
    /// MQTT version to try first (falls back to 3.1.1 when refused).
    pub version: ProtocolVersion,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Where devices keep what survives a restart; `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    /// Default telemetry period; zero turns telemetry off until a device is told otherwise.
    pub telemetry: Duration,
    /// Record every execution by device and TID in [`Stats::executions`] (for tests and audits).
    pub audit: bool,
}

/// One device's identity and faults.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    /// Its id (and MQTT client id).
    pub id: DeviceId,
    /// Groups whose fan-out topic it subscribes to.
    pub groups: Vec<GroupId>,
    /// What goes wrong for it.
    pub faults: Faults,
    /// `None`: it speaks Switchboard's envelope (and the pattern document's text); otherwise the
    /// family and address it plays.
    pub family: Option<Address>,
}

/// Counters shared by a fleet, for the summary line.
#[derive(Debug, Default)]
pub struct Stats {
    /// Devices connected now.
    pub online: AtomicUsize,
    /// Commands executed.
    pub executed: AtomicU64,
    /// Answers published (executions, replays and rejections).
    pub answered: AtomicU64,
    /// With [`FleetOptions::audit`]: how many times each device executed each TID.
    pub executions: std::sync::Mutex<std::collections::HashMap<(DeviceId, Tid), u32>>,
}

impl Stats {
    /// How many times `device` executed `tid` (needs [`FleetOptions::audit`]).
    pub fn executions_of(&self, device: &DeviceId, tid: &Tid) -> u32 {
        self.executions
            .lock()
            .map_or(0, |m| m.get(&(device.clone(), *tid)).copied().unwrap_or(0))
    }
}

/// Runs a device until `shutdown` says so, then leaves its retained status offline.
pub async fn run(
    spec: DeviceSpec,
    opts: Arc<FleetOptions>,
    journal: Option<Arc<Journal>>,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let store = Store::new(journal, &spec.id);
    let seed = fastrand::u64(..);
    let (mut device, replies) = Device::boot(spec, opts.clone(), store, stats, seed).await?;
    let session = Session::new(device.session_config(), seed)?;
    let mut link = Link::new(session, &opts.endpoint);
    for filter in device.filters() {
        link.session_mut()
            .subscribe(&filter, QoS::AtLeastOnce, now())?;
    }
    for reply in replies {
        device.respond(&mut link, &reply);
    }
    link.session_mut().connect(now());
    let mut events = Vec::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let deadline = device.next_deadline();
        let stop = async {
            let _ = shutdown.changed().await;
        };
        let wake = link.step(deadline, &mut events, stop).await;
        if wake == Wake::Interrupted {
            continue;
        }
        for event in std::mem::take(&mut events) {
            device.on_session_event(&mut link, event).await;
        }
        device.on_timers(&mut link).await;
    }
    device.go_offline(&mut link).await;
    Ok(())
}

mod act;

struct Device {
    spec: DeviceSpec,
    opts: Arc<FleetOptions>,
    gate: DeviceGate,
    state: DeviceState,
    /// The device's own part of what survives a restart; the gate holds the rest.
    record: DeviceRecord,
    store: Store,
    stats: Arc<Stats>,
    rng: fastrand::Rng,
    log: VecDeque<String>,
    online: bool,
    /// Incoming messages waiting out an injected delay.
    inbox: Delayed<Message>,
    /// Outgoing answers waiting out an injected delay.
    outbox: Delayed<Publish>,
    next_telemetry: Option<Instant>,
    telemetry_seq: u64,
    /// Set while restarting: when to come back.
    back_at: Option<Instant>,
    /// Set between a restart command and leaving: (leave by then at the latest, how long to stay
    /// away). The device leaves once the broker has acknowledged its answers, so that no answer
    /// is sent again after the restart (a text answer has no TID to tell a repeat by).
    leaving: Option<(Instant, Duration)>,
}

impl Device {
    /// Starts (or restarts) from what was persisted. Returns the answers for commands that a
    /// previous life left unfinished (`interrupted`).
    async fn boot(
        spec: DeviceSpec,
        opts: Arc<FleetOptions>,
        store: Store,
        stats: Arc<Stats>,
        seed: u64,
    ) -> anyhow::Result<(Device, Vec<Reply>)> {
        let mut d = Device {
            gate: DeviceGate::new(gate_config(&spec.id, &store)),
            spec,
            opts,
            state: DeviceState::default(),
            record: DeviceRecord::default(),
            store,
            stats,
            rng: fastrand::Rng::with_seed(seed),
            log: VecDeque::new(),
            online: false,
            inbox: Delayed::default(),
            outbox: Delayed::default(),
            next_telemetry: None,
            telemetry_seq: 0,
            back_at: None,
            leaving: None,
        };
        let from = d.store.load()?.unwrap_or_default();
        let replies = d.reboot(from).await;
        Ok((d, replies))
    }

    /// Starts from what survived (`from`) and applies the saved configuration.
    async fn reboot(&mut self, from: Persisted) -> Vec<Reply> {
        let Persisted {
            device: mut p,
            gate: snapshot,
        } = from;
        p.boots += 1;
        if p.firmware.is_empty() {
            p.firmware = FACTORY_FIRMWARE.to_owned();
        }
        let cfg = p.saved_config.clone();
        let default_ms = u64::try_from(self.opts.telemetry.as_millis()).unwrap_or(0);
        self.state = DeviceState {
            light: cfg.light_on_boot.unwrap_or(false),
            led: false,
            telemetry_interval_ms: cfg.telemetry_interval_ms.unwrap_or(default_ms),
            config: cfg,
            pending_config: None,
            firmware: p.firmware.clone(),
            sequences: Default::default(),
            boots: p.boots,
        };
        let (gate, replies) = DeviceGate::restore(
            gate_config(&self.spec.id, &self.store),
            snapshot,
            &self.state,
            now(),
        );
        self.gate = gate;
        self.record = p;
        self.persist().await;
        self.state.sequences = self.gate.sequence_positions();
        if !self.inbox.is_empty() {
            tracing::info!(
                device = %self.spec.id,
                count = self.inbox.len(),
                "restart loses commands held back by injected delays; the application retransmits them"
            );
            self.inbox.clear();
        }
        self.schedule_telemetry();
        if !replies.is_empty() {
            self.note(format!(
                "boot {}: {} command(s) were cut off and are reported interrupted",
                self.state.boots,
                replies.len()
            ));
        } else {
            self.note(format!("boot {}", self.state.boots));
        }
        replies
    }

    fn session_config(&self) -> SessionConfig {
        let mut c = SessionConfig::new(self.spec.id.as_str());
        c.version = self.opts.version;
        c.clean_start = false;
        c.session_expiry = Duration::from_secs(3600);
        c.keep_alive = self.opts.keep_alive;
        self.opts.endpoint.apply(&mut c);
        c.will = Some(Will {
            topic: topic::status(&self.spec.id),
            payload: Status::offline(self.spec.id.clone()).encode(),
            qos: QoS::AtLeastOnce,
            retain: true,
        });
        c
    }

    fn filters(&self) -> Vec<String> {
        let mut f = vec![topic::request(&self.spec.id)];
        f.extend(self.spec.groups.iter().map(topic::group_request));
        f
    }

    fn status(&self, online: bool) -> Publish {
        let status = Status {
            v: VERSION,
            device: self.spec.id.clone(),
            online,
            groups: self.spec.groups.clone(),
            capabilities: command::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            state: online.then(|| self.state.clone()),
        };
        let mut p = Publish::new(
            topic::status(&self.spec.id),
            status.encode(),
            QoS::AtLeastOnce,
        );
        p.retain = true;
        p
    }

    fn note(&mut self, line: String) {
        tracing::debug!(device = %self.spec.id, "{line}");
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(format!("{} {line}", now().as_millis()));
    }

    /// Writes what changed (the gate's memory and journal included) before the device goes on,
    /// with a journal; without one, the gate and `record` are what a restart boots from. Either
    /// way a command costs the same with 10 or 4,000 answers remembered.
    async fn persist(&mut self) {
        if let Err(e) = self.store.save(&self.record, &mut self.gate).await {
            tracing::error!(device = %self.spec.id, store = %self.store, error = %e, "could not persist state");
        }
    }

    fn schedule_telemetry(&mut self) {
        self.next_telemetry = (self.state.telemetry_interval_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(self.state.telemetry_interval_ms));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.inbox
            .next_due()
            .into_iter()
            .chain(self.outbox.next_due())
            .chain(self.next_telemetry)
            .chain(self.back_at)
            .chain(self.leaving.map(|(by, _)| by))
            .min()
    }

    fn publish(&mut self, link: &mut Link, p: Publish) {
        let topic = p.topic.clone();
        if let Err(e) = link.publish(p) {
            tracing::warn!(device = %self.spec.id, %topic, error = %e, "publish refused");
        }
    }

    /// Publishes an answer on the response topic, through the outgoing faults.
    fn respond(&mut self, link: &mut Link, reply: &Reply) {
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
        let publish = Publish::new(
            topic::response(&self.spec.id),
            reply.encode(),
            QoS::AtLeastOnce,
        );
        for delay in self.spec.faults.outgoing(&mut self.rng) {
            if delay.is_zero() {
                self.publish(link, publish.clone());
            } else {
                self.outbox.push(delay, publish.clone());
            }
        }
    }

    async fn on_session_event(&mut self, link: &mut Link, event: SessionEvent) {
        match event {
            SessionEvent::Connected { session_present } => {
                if !self.online {
                    self.online = true;
                    self.stats.online.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(device = %self.spec.id, session_present, "connected");
                let status = self.status(true);
                self.publish(link, status);
            }
            SessionEvent::Disconnected { reason, .. } => {
                self.went_offline();
                tracing::debug!(device = %self.spec.id, %reason, "disconnected");
            }
            SessionEvent::ConnectionRefused { reason, .. } => {
                self.went_offline();
                tracing::warn!(device = %self.spec.id, %reason, "broker refused the connection");
            }
            SessionEvent::Message(m) => {
                for delay in self.spec.faults.incoming(&mut self.rng) {
                    if delay.is_zero() {
                        self.handle(link, m.clone()).await;
                    } else {
                        self.inbox.push(delay, m.clone());
                    }
                }
            }
            SessionEvent::Subscribed {
                filter,
                granted: None,
            } => {
                tracing::error!(device = %self.spec.id, %filter, "broker refused the subscription");
            }
            SessionEvent::PublishFailed { id, reason } => {
                tracing::warn!(device = %self.spec.id, %id, %reason, "publish failed");
            }
            SessionEvent::ProtocolError(e) => {
                tracing::warn!(device = %self.spec.id, error = %e, "protocol error");
            }
            _ => {}
        }
    }

    fn went_offline(&mut self) {
        if self.online {
            self.online = false;
            self.stats.online.fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn on_timers(&mut self, link: &mut Link) {
        let now_i = Instant::now();
        for m in self.inbox.take_due(now_i) {
            self.handle(link, m).await;
        }
        for p in self.outbox.take_due(now_i) {
            self.publish(link, p);
        }
        if self.next_telemetry.is_some_and(|at| at <= now_i) {
            self.schedule_telemetry();
            if link.session().is_connected() {
                self.telemetry_seq += 1;
                let sample = Telemetry {
                    v: VERSION,
                    device: self.spec.id.clone(),
                    seq: self.telemetry_seq,
                    at: now(),
                    interval_ms: self.state.telemetry_interval_ms,
                    light: self.state.light,
                    temperature: 20.0 + 5.0 * ((self.telemetry_seq as f64) / 10.0).sin(),
                };
                let payload = serde_json::to_vec(&sample).unwrap_or_default();
                let p = Publish::new(topic::telemetry(&self.spec.id), payload, QoS::AtMostOnce);
                self.publish(link, p);
            }
        }
        if let Some((by, delay)) = self.leaving {
            let acknowledged = link.session().in_flight_len() == 0;
            if acknowledged || !link.session().is_connected() || by <= now_i {
                self.leaving = None;
                link.session_mut().disconnect(now());
                self.went_offline();
                self.back_at = Some(now_i + delay);
            }
        }
        if self.back_at.is_some_and(|at| at <= now_i) {
            self.back_at = None;
            self.reboot_and_report(link).await;
            link.session_mut().connect(now());
        }
    }

    /// Handles one command message.
    async fn handle(&mut self, link: &mut Link, m: Message) {
        match Topic::parse(&m.topic) {
            Some(Topic::Request(d)) if d == self.spec.id => {}
            Some(Topic::GroupRequest(g)) if self.spec.groups.contains(&g) => {}
            _ => {
                tracing::warn!(device = %self.spec.id, topic = %m.topic, "message on a topic this device does not serve");
                return;
            }
        }
        if self.back_at.is_some() {
            // Only a command held back by an injected delay can come due while restarting.
            tracing::info!(
                device = %self.spec.id,
                "command came due while restarting: not handled; the application retransmits it"
            );
            return;
        }
        let at = now();
        let admission = match decode_request(&m.payload) {
            Ok(IncomingRequest::Envelope(req)) => self.gate.admit(&req, at, &self.state),
            Ok(IncomingRequest::Text(text)) => {
                let tid = Tid::random(&mut self.rng);
                self.gate.admit_text(&text, tid, at, &self.state)
            }
            Err(e) => {
                tracing::warn!(device = %self.spec.id, error = %e, "malformed command");
                self.note(format!("malformed command: {e}"));
                self.respond(link, &Reply::Text(text_response(false, &m.payload)));
                return;
            }
        };
        match admission {
            Admission::Execute(ticket) => {
                // Write-ahead: the journal names the command before anything happens.
                self.persist().await;
                if self.rng.f64() < self.spec.faults.cut {
                    self.power_cut(link).await;
                    return;
                }
                if !self.spec.faults.slow.is_zero() {
                    tokio::time::sleep(self.spec.faults.slow).await;
                }
                let command = ticket.command().clone();
                if self.opts.audit {
                    if let Ok(mut m) = self.stats.executions.lock() {
                        *m.entry((self.spec.id.clone(), ticket.tid())).or_default() += 1;
                    }
                }
                let before = self.state.clone();
                let result = self.act(link, &command);
                self.stats.executed.fetch_add(1, Ordering::Relaxed);
                // The gate fills in the sequences' positions of the answer's state itself.
                let reply = self.gate.finish(ticket, result, &self.state, now());
                self.state.sequences = self.gate.sequence_positions();
                self.persist().await;
                self.respond(link, &reply);
                if let Command::Restart { delay_ms } = command {
                    self.restart(link, Duration::from_millis(delay_ms.max(100)));
                } else if self.state != before && link.session().is_connected() {
                    // Presence carries the state: republish it only when it changed.
                    let status = self.status(true);
                    self.publish(link, status);
                }
            }
            Admission::Replay(reply) | Admission::Reject(reply) => {
                if let Reply::Envelope(r) = &reply {
                    self.note(format!("{} {}: {}", r.cmd, r.tid, r.outcome.label()));
                }
                self.respond(link, &reply);
            }
            Admission::InProgress { tid } => {
                tracing::debug!(device = %self.spec.id, %tid, "duplicate of a command in progress");
            }
        }
    }

    /// Says goodbye (retained status offline), leaves once the broker has its answers (see
    /// `leaving`), and comes back after `delay`.
    fn restart(&mut self, link: &mut Link, delay: Duration) {
        self.note(format!("restarting for {} ms", delay.as_millis()));
        let status = self.status(false);
        self.publish(link, status);
        self.leaving = Some((Instant::now() + LEAVE_WITHIN, delay));
    }

    /// Loses power mid-command: the connection drops without a word (the broker publishes the Last
    /// Will), the device boots again from storage and reports what it was doing as interrupted.
    async fn power_cut(&mut self, link: &mut Link) {
        tracing::info!(device = %self.spec.id, "power cut mid-command (injected fault)");
        link.cut();
        self.went_offline();
        self.reboot_and_report(link).await;
    }

    /// Boots again and answers what the previous life left unfinished (queued until connected).
    async fn reboot_and_report(&mut self, link: &mut Link) {
        // What is on disk is what the gate and the record hold once everything is saved.
        self.persist().await;
        let from = Persisted {
            device: self.record.clone(),
            gate: self.gate.snapshot(),
        };
        for r in self.reboot(from).await {
            self.respond(link, &r);
        }
    }

    /// Clean shutdown: retained status offline, DISCONNECT.
    async fn go_offline(&mut self, link: &mut Link) {
        if link.session().is_connected() {
            let status = self.status(false);
            self.publish(link, status);
        }
        link.session_mut().disconnect(now());
        let mut events = Vec::new();
        link.flush(&mut events).await;
        self.went_offline();
    }
}

/// The gate's settings: it logs its changes when they are saved to a journal.
fn gate_config(device: &DeviceId, store: &Store) -> GateConfig {
    let mut config = GateConfig::new(device.clone());
    config.log_changes = store.is_durable();
    config
}
