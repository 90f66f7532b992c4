//! The command-line sender: one command to a device or a group, followed to its outcome by the
//! protocol's command tracker, exactly as the panel does it.

use std::collections::HashSet;
use std::time::Duration;

use switchboard_protocol::client::{Client, ClientEvent, Dialect, Switchboard};
use switchboard_protocol::family::Address;
use switchboard_protocol::session::{ProtocolVersion, SessionConfig, SessionEvent};
use switchboard_protocol::tracker::{
    CommandTracker, Phase, Retention, SendOptions, Target, Tracked, TrackerConfig, TrackerEvent,
};
use switchboard_protocol::{Command, Engine, IssuerId, Tid};
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
    /// The MQTT version to offer first (5 falls back to 3.1.1 by itself).
    pub version: ProtocolVersion,
    /// Whom.
    pub target: Target,
    /// What.
    pub payload: Payload,
    /// Wait for the devices' answers (otherwise only for the broker's acknowledgement).
    pub wait: bool,
    /// The command's deadline.
    pub timeout: Duration,
    /// The device's family and address, when it speaks another family's dialect.
    pub family: Option<Address>,
}

/// A connected application: the protocol's [`Client`] (a session and a command tracker) over a
/// link, following commands to their outcome exactly as the panel does.
#[derive(Debug)]
pub struct Operator {
    link: Link<Client>,
    delivered: HashSet<Tid>,
}

/// How an operator connects.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// The broker, and how to reach it.
    pub endpoint: Endpoint,
    /// The MQTT version to offer first (5 falls back to 3.1.1 by itself).
    pub version: ProtocolVersion,
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
        config.first_seq = TrackerConfig::first_seq_at(now());
        // A sender lives for one command or one burst: it keeps every command to report on.
        config.retention = Retention {
            commands: usize::MAX,
            members: usize::MAX,
            age: Duration::MAX,
        };
        let mut client = Client::new(config, Switchboard, fastrand::u64(..));

        let mut sc = SessionConfig::new(format!("cli-{:08x}", fastrand::u32(..)));
        opts.endpoint.apply(&mut sc);
        sc.version = opts.version;
        sc.max_offline_queue = 100_000;
        client.connect(sc, now())?;
        let subscriptions = Switchboard.subscriptions().len();
        let mut op = Operator {
            link: Link::new(client, &opts.endpoint),
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
                    ClientEvent::Session(
                        SessionEvent::Subscribed { .. } | SessionEvent::SubscriptionRefused { .. },
                    ) => {
                        subscribed += 1;
                        op.note(&e);
                    }
                    ClientEvent::Session(SessionEvent::ConnectionRefused { reason, .. }) => {
                        anyhow::bail!(
                            "{}: the broker refused the connection: {reason}",
                            opts.endpoint.url
                        )
                    }
                    ClientEvent::Presence { .. } => {
                        // More retained statuses are arriving: keep listening a little.
                        quiet_until = Some(
                            Instant::now() + opts.presence_wait.min(Duration::from_millis(200)),
                        );
                    }
                    other => op.note(&other),
                }
            }
            if subscribed >= subscriptions && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + opts.presence_wait);
            }
            if woke == Wake::Deadline {
                if subscribed >= subscriptions {
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
        self.link.session().tracker()
    }

    /// The client, to read devices of other families.
    pub fn client(&self) -> &Client {
        self.link.session()
    }

    /// The client, to submit commands.
    pub fn client_mut(&mut self) -> &mut Client {
        self.link.session_mut()
    }

    /// Whether the broker acknowledged (at least once) the command `tid`.
    pub fn delivered(&self, tid: &Tid) -> bool {
        self.delivered.contains(tid)
    }

    fn note(&mut self, event: &ClientEvent) {
        if let ClientEvent::Command(TrackerEvent::Member {
            tid,
            phase: Phase::Delivered,
            ..
        }) = event
        {
            self.delivered.insert(*tid);
        }
        match event {
            ClientEvent::Session(SessionEvent::SubscriptionRefused { filter, reason }) => {
                tracing::error!(%filter, %reason, "the broker refused the subscription");
            }
            ClientEvent::Session(SessionEvent::PublishRefused { reason, .. }) => {
                tracing::error!(%reason, "the broker refused the command");
            }
            _ => tracing::debug!(?event, "client"),
        }
    }

    /// Moves commands, answers and timers along until `done` says so. Events are logged.
    pub async fn run_until(&mut self, mut done: impl FnMut(&Operator) -> bool) {
        let mut events = Vec::new();
        loop {
            self.link.flush(&mut events).await;
            for e in events.drain(..) {
                self.note(&e);
            }
            if done(self) {
                return;
            }
            let deadline = self.link.session_mut().poll_timeout().map(instant_at);
            self.link
                .step(deadline, &mut events, std::future::pending())
                .await;
            for e in events.drain(..) {
                self.note(&e);
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
        version: req.version,
        timeout: req.timeout,
        presence_wait: Duration::from_millis(if group { 300 } else { 50 }),
    })
    .await?;
    let target = match (req.family, &req.target) {
        (Some(address), Target::Device(_)) => {
            // Its topics are subscribed before anything is published to it.
            Target::Device(op.client_mut().add_device(address, now())?)
        }
        (Some(_), Target::Group(_)) => {
            anyhow::bail!("--family names one device; a group is sent per member")
        }
        (None, t) => t.clone(),
    };
    let tid = match &req.payload {
        Payload::Command(c) => {
            op.client_mut()
                .submit(target.clone(), c, SendOptions::default(), now())
        }
        Payload::Text(t) => match &target {
            Target::Device(d) => {
                op.client_mut()
                    .submit_text(d.clone(), t, SendOptions::default(), now())
            }
            Target::Group(_) => anyhow::bail!("text commands go to one device, not a group"),
        },
    };
    let wait = req.wait;
    op.run_until(|op| {
        op.tracker().get(&tid).is_none_or(Tracked::is_finished) || (!wait && op.delivered(&tid))
    })
    .await;
    let tracked = op
        .tracker()
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
            (Phase::Succeeded, None) => m
                .confirmed_by
                .map(|by| format!("confirmed by {}", by.label()))
                .unwrap_or_default(),
            (Phase::Contradicted { actual_on }, None) => {
                format!(
                    "the device reports {}",
                    if *actual_on { "on" } else { "off" }
                )
            }
            (Phase::Unsupported { detail }, None) => detail.clone(),
            (Phase::Refused { reason }, None) => format!("the broker refused it: {reason}"),
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
