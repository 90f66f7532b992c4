//! One simulated device: a small tokio task around a protocol session and a device gate.
//!
//! Every rule (duplicates, order, expiry, sequences, journal) is the protocol crate's
//! [`DeviceGate`]; this module only gives the commands their effect (a light that really switches,
//! a restart that really drops the connection, telemetry that really changes rate), persists what
//! must survive a restart, and applies the configured faults.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_protocol::envelope::{
    text_dropped, Config, DeviceState, LogLines, Status, Telemetry, Tid, VERSION,
};
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig, Received, Reply};
use switchboard_protocol::session::{
    Message, Publish, QoS, Session, SessionConfig, SessionEvent, Will,
};
use switchboard_protocol::topic::{self, Topic};
use switchboard_protocol::{command, Command, DeviceId};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::Delayed;
use crate::fleet::{DeviceSpec, FleetOptions, Stats};
use crate::journal::Journal;
use crate::link::{now, Link, Wake};
use crate::store::{DeviceRecord, Persisted, Store};

/// Firmware every device starts with.
pub const FACTORY_FIRMWARE: &str = "1.0.0";
/// How many log lines a device keeps.
const LOG_LINES: usize = 50;

/// How long a restarting device waits for the broker to acknowledge its answers before leaving.
const LEAVE_WITHIN: Duration = Duration::from_secs(2);

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
mod lifecycle;

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
            SessionEvent::TakenOver { reason } => {
                self.went_offline();
                tracing::error!(device = %self.spec.id, %reason, "another client connected with this device's client id; not reconnecting");
                self.note(format!(
                    "another client took this device's session: {reason}"
                ));
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
            SessionEvent::SubscriptionRefused { filter, reason } => {
                tracing::error!(device = %self.spec.id, %filter, %reason, "broker refused the subscription");
                self.note(format!(
                    "the broker refused the subscription to {filter}: {reason}"
                ));
            }
            SessionEvent::PublishFailed { id, reason } => {
                tracing::warn!(device = %self.spec.id, %id, %reason, "publish failed");
            }
            SessionEvent::PublishRefused { id, reason } => {
                tracing::error!(device = %self.spec.id, %id, %reason, "broker refused a publish");
                self.note(format!("the broker refused a publish: {reason}"));
            }
            SessionEvent::ProtocolError(e) => {
                tracing::warn!(device = %self.spec.id, error = %e, "protocol error");
            }
            SessionEvent::Dropped { topic, size, max } => {
                tracing::warn!(device = %self.spec.id, %topic, size, max, "message too large: dropped unread");
                self.note(format!(
                    "message of {size} bytes on {topic} dropped unread: larger than {max}"
                ));
                if self.serves(&topic) {
                    self.respond(link, &Reply::Text(text_dropped(size, max)));
                }
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

    /// Whether `topic` is this device's request topic or one of its groups'.
    fn serves(&self, topic: &str) -> bool {
        match Topic::parse(topic) {
            Some(Topic::Request(d)) => d == self.spec.id,
            Some(Topic::GroupRequest(g)) => self.spec.groups.contains(&g),
            _ => false,
        }
    }

    /// Handles one command message.
    async fn handle(&mut self, link: &mut Link, m: Message) {
        if !self.serves(&m.topic) {
            tracing::warn!(device = %self.spec.id, topic = %m.topic, "message on a topic this device does not serve");
            return;
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
        let rng = &mut self.rng;
        let admission = match self
            .gate
            .receive(&m.payload, at, &self.state, || Tid::random(rng))
        {
            Received::Admitted(admission) => admission,
            Received::Malformed { reply, error } => {
                tracing::warn!(device = %self.spec.id, %error, "malformed command");
                self.note(format!("malformed command: {error}"));
                // With its TID where it can be read, so the application can tie it to its command.
                self.respond(link, &reply);
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
}

/// The gate's settings: it logs its changes when they are saved to a journal.
fn gate_config(device: &DeviceId, store: &Store) -> GateConfig {
    let mut config = GateConfig::new(device.clone());
    config.log_changes = store.is_durable();
    config
}
