//! The command-line sender: one command to a device or a group, followed to its outcome by the
//! protocol's command tracker, exactly as the panel does it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use switchboard_protocol::session::{QoS, Session, SessionConfig, SessionEvent};
use switchboard_protocol::topic::{self, Topic};
use switchboard_protocol::tracker::{
    CommandTracker, Phase, SendOptions, Target, Tracked, TrackerConfig,
};
use switchboard_protocol::{Command, IssuerId, Tid};
use tokio::time::Instant;

use crate::link::{instant_at, now, Link, Wake};
use crate::transport::Endpoint;

/// What to send.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A JSON-enveloped command.
    Command(Command),
    /// A plain-text command (the pattern document's form).
    Text(String),
}

/// How to send it.
#[derive(Clone, Debug)]
pub struct SendRequest {
    /// The broker, and how to reach it.
    pub endpoint: Endpoint,
    /// Whom.
    pub target: Target,
    /// What.
    pub payload: Payload,
    /// Wait for the devices' answers (otherwise only for the broker's acknowledgement).
    pub wait: bool,
    /// The command's deadline.
    pub timeout: Duration,
}

/// A connected application: a protocol session and a command tracker, following commands to
/// their outcome exactly as the panel does.
#[derive(Debug)]
pub struct Operator {
    link: Link,
    tracker: CommandTracker,
    publishes: HashMap<u64, Tid>,
    delivered: HashSet<Tid>,
}

/// How an operator connects.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// The broker, and how to reach it.
    pub endpoint: Endpoint,
    /// Commands' deadline.
    pub timeout: Duration,
    /// Wait this long after subscribing for retained statuses (presence) to arrive.
    pub presence_wait: Duration,
}

impl Operator {
    /// Connects, subscribes to every response and status topic, and takes in presence.
    pub async fn connect(opts: OperatorOptions) -> anyhow::Result<Operator> {
        let issuer = IssuerId::new("cli")?;
        let mut config = TrackerConfig::new(issuer);
        config.deadline = opts.timeout;
        // A time-based first sequence number keeps successive invocations in order on devices.
        config.first_seq = now().as_millis().saturating_mul(1000);
        let tracker = CommandTracker::new(config, fastrand::u64(..));

        let mut sc = SessionConfig::new(format!("cli-{:08x}", fastrand::u32(..)));
        opts.endpoint.apply(&mut sc);
        sc.max_offline_queue = 100_000;
        let mut link = Link::new(Session::new(sc, fastrand::u64(..))?, &opts.endpoint);
        link.session_mut()
            .subscribe(topic::ALL_RESPONSES, QoS::AtLeastOnce, now())?;
        link.session_mut()
            .subscribe(topic::ALL_STATUS, QoS::AtLeastOnce, now())?;
        link.session_mut().connect(now());
        let mut op = Operator {
            link,
            tracker,
            publishes: HashMap::new(),
            delivered: HashSet::new(),
        };
        let mut events = Vec::new();
        let mut subscribed = 0;
        let connect_by = Instant::now() + Duration::from_secs(10);
        let mut quiet_until: Option<Instant> = None;
        loop {
            let deadline = quiet_until.unwrap_or(connect_by);
            let woke = op
                .link
                .step(Some(deadline), &mut events, std::future::pending())
                .await;
            for e in events.drain(..) {
                match e {
                    SessionEvent::Subscribed { .. } => subscribed += 1,
                    SessionEvent::ConnectionRefused { reason, .. } => {
                        anyhow::bail!(
                            "{}: the broker refused the connection: {reason}",
                            opts.endpoint.url
                        )
                    }
                    SessionEvent::Message(m) => {
                        if matches!(Topic::parse(&m.topic), Some(Topic::Status(_))) {
                            // More retained statuses are arriving: keep listening a little.
                            quiet_until = Some(
                                Instant::now() + opts.presence_wait.min(Duration::from_millis(200)),
                            );
                        }
                        op.on_message(&m.topic, &m.payload);
                    }
                    _ => {}
                }
            }
            if subscribed >= 2 && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + opts.presence_wait);
            }
            if woke == Wake::Deadline {
                if subscribed >= 2 {
                    return Ok(op);
                }
                anyhow::bail!(
                    "{}: could not connect and subscribe within 10 s",
                    opts.endpoint.url
                );
            }
        }
    }

    /// The tracker, to read commands' state.
    pub fn tracker(&self) -> &CommandTracker {
        &self.tracker
    }

    /// The tracker, to submit commands.
    pub fn tracker_mut(&mut self) -> &mut CommandTracker {
        &mut self.tracker
    }

    /// Whether the broker acknowledged (at least once) the command `tid`.
    pub fn delivered(&self, tid: &Tid) -> bool {
        self.delivered.contains(tid)
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        match Topic::parse(topic) {
            Some(Topic::Response(d)) => self.tracker.handle_response(&d, payload, now()),
            Some(Topic::Status(d)) => self.tracker.handle_status(&d, payload),
            _ => {}
        }
    }

    /// Moves commands, answers and timers along until `done` says so. Tracker events are logged.
    pub async fn run_until(&mut self, mut done: impl FnMut(&Operator) -> bool) {
        let mut events = Vec::new();
        loop {
            while let Some(out) = self.tracker.poll_transmit() {
                match self.link.publish(out.to_publish()) {
                    Ok(id) => {
                        self.publishes.insert(id.as_u64(), out.tid);
                        self.tracker.handle_sent(out.tid, now());
                    }
                    Err(e) => self
                        .tracker
                        .handle_send_failed(out.tid, e.to_string(), now()),
                }
            }
            while let Some(e) = self.tracker.poll_event() {
                tracing::debug!(?e, "tracker");
            }
            if done(self) {
                return;
            }
            let deadline = self.tracker.poll_timeout().map(instant_at);
            self.link
                .step(deadline, &mut events, std::future::pending())
                .await;
            self.tracker.handle_timeout(now());
            for e in events.drain(..) {
                match e {
                    SessionEvent::Delivered(id) => {
                        if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                            self.tracker.handle_delivered(tid);
                            self.delivered.insert(tid);
                        }
                    }
                    SessionEvent::PublishFailed { id, reason } => {
                        if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                            self.tracker.handle_send_failed(tid, reason, now());
                        }
                    }
                    SessionEvent::Message(m) => self.on_message(&m.topic, &m.payload),
                    _ => {}
                }
            }
        }
    }

    /// Leaves the broker cleanly.
    pub async fn disconnect(mut self) {
        let mut events = Vec::new();
        self.link.session_mut().disconnect(now());
        self.link.flush(&mut events).await;
    }
}

/// Sends one command and follows it. Returns the tracked command at the end.
pub async fn send(req: SendRequest) -> anyhow::Result<Tracked> {
    let group = matches!(req.target, Target::Group(_));
    let mut op = Operator::connect(OperatorOptions {
        endpoint: req.endpoint,
        timeout: req.timeout,
        presence_wait: Duration::from_millis(if group { 300 } else { 50 }),
    })
    .await?;
    let tid = match &req.payload {
        Payload::Command(c) => {
            op.tracker
                .submit(req.target.clone(), c, SendOptions::default(), now())
        }
        Payload::Text(t) => match &req.target {
            Target::Device(d) => {
                op.tracker
                    .submit_text(d.clone(), t, SendOptions::default(), now())
            }
            Target::Group(_) => anyhow::bail!("text commands go to one device, not a group"),
        },
    };
    let wait = req.wait;
    op.run_until(|op| {
        op.tracker.get(&tid).is_none_or(Tracked::is_finished) || (!wait && op.delivered(&tid))
    })
    .await;
    let tracked = op
        .tracker
        .get(&tid)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("command {tid} vanished"))?;
    op.disconnect().await;
    Ok(tracked)
}

/// One line per device, and whether every device succeeded.
pub fn report(t: &Tracked) -> (String, bool) {
    let mut out = String::new();
    let mut ok = !t.members.is_empty();
    for (device, m) in &t.members {
        let rtt = m
            .finished_at
            .map(|at| format!("{} ms", at.saturating_since(t.created_at).as_millis()))
            .unwrap_or_else(|| "-".to_owned());
        let detail = match (&m.phase, &m.response) {
            (Phase::Succeeded, Some(r)) if !r.result.is_null() => r.result.to_string(),
            (Phase::Succeeded, Some(r)) => r
                .state
                .as_ref()
                .and_then(|st| serde_json::to_string(st).ok())
                .unwrap_or_default(),
            (_, Some(r)) => r.error.clone().unwrap_or_default(),
            (Phase::TimedOut { device_online }, None) => match device_online {
                Some(true) => "no answer by the deadline (device online)".to_owned(),
                Some(false) => "no answer by the deadline (device offline)".to_owned(),
                None => "no answer by the deadline (presence unknown)".to_owned(),
            },
            (Phase::Expired, None) => "the broker never acknowledged the command".to_owned(),
            _ => String::new(),
        };
        let phase = match &m.phase {
            Phase::Rejected { reason } => format!("rejected ({})", reason.kind()),
            p => p.label().to_owned(),
        };
        if m.phase != Phase::Succeeded && m.phase != Phase::Delivered {
            ok = false;
        }
        out.push_str(&format!("{device}\t{phase}\t{rtt}\t{detail}\n"));
    }
    if t.members.is_empty() {
        out.push_str("no device answered: the group has no known members\n");
    }
    (out, ok)
}
