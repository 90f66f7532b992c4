//! The command-line sender: one command to a device or a group, followed to its outcome by the
//! protocol's command tracker, exactly as the panel does it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_protocol::session::{QoS, Session, SessionConfig, SessionEvent};
use switchboard_protocol::topic::{self, Topic};
use switchboard_protocol::tracker::{
    CommandTracker, Phase, SendOptions, Target, Tracked, TrackerConfig,
};
use switchboard_protocol::{Command, IssuerId, Tid};
use tokio::time::Instant;
use tokio_rustls::rustls;

use crate::link::{instant_at, now, Link};
use crate::transport::BrokerUrl;

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
    /// The broker.
    pub url: BrokerUrl,
    /// TLS settings.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Broker credentials.
    pub username: Option<String>,
    /// Broker credentials.
    pub password: Option<String>,
    /// Whom.
    pub target: Target,
    /// What.
    pub payload: Payload,
    /// Wait for the devices' answers (otherwise only for the broker's acknowledgement).
    pub wait: bool,
    /// The command's deadline.
    pub timeout: Duration,
}

/// Sends one command and follows it. Returns the tracked command at the end.
pub async fn send(req: SendRequest) -> anyhow::Result<Tracked> {
    let issuer = IssuerId::new("cli")?;
    let mut config = TrackerConfig::new(issuer);
    config.deadline = req.timeout;
    // A time-based first sequence number keeps successive invocations in order on the devices.
    config.first_seq = now().as_millis().saturating_mul(1000);
    let mut tracker = CommandTracker::new(config, fastrand::u64(..));

    let mut sc = SessionConfig::new(format!("cli-{:08x}", fastrand::u32(..)));
    sc.username = req.username.clone();
    sc.password = req.password.clone().map(String::into_bytes);
    let mut link = Link::new(
        Session::new(sc, fastrand::u64(..))?,
        req.url.clone(),
        req.tls,
    );
    let group = matches!(req.target, Target::Group(_));
    let responses = match &req.target {
        Target::Device(d) => topic::response(d),
        Target::Group(_) => topic::ALL_RESPONSES.to_owned(),
    };
    link.session_mut()
        .subscribe(&responses, QoS::AtLeastOnce, now())?;
    link.session_mut()
        .subscribe(topic::ALL_STATUS, QoS::AtLeastOnce, now())?;
    link.session_mut().connect(now());

    // Connect, subscribe, and let the retained statuses (presence) arrive.
    let mut events = Vec::new();
    let mut subscribed = 0;
    let connect_by = Instant::now() + Duration::from_secs(10);
    let mut quiet_until: Option<Instant> = None;
    loop {
        let deadline = quiet_until.unwrap_or(connect_by);
        let woke = link
            .step(Some(deadline), &mut events, std::future::pending())
            .await;
        for e in events.drain(..) {
            match e {
                SessionEvent::Subscribed { .. } => subscribed += 1,
                SessionEvent::Message(m) => {
                    if let Some(Topic::Status(d)) = Topic::parse(&m.topic) {
                        tracker.handle_status(&d, &m.payload);
                        quiet_until = Some(Instant::now() + Duration::from_millis(200));
                    }
                }
                SessionEvent::ConnectionRefused { reason, .. } => {
                    anyhow::bail!("{}: the broker refused the connection: {reason}", req.url)
                }
                _ => {}
            }
        }
        if subscribed >= 2 && quiet_until.is_none() {
            // No retained status yet: give the broker a moment to deliver them.
            quiet_until =
                Some(Instant::now() + Duration::from_millis(if group { 300 } else { 50 }));
        }
        if woke == crate::link::Wake::Deadline {
            if subscribed >= 2 {
                break;
            }
            anyhow::bail!("{}: could not connect and subscribe within 10 s", req.url);
        }
    }

    let tid = match &req.payload {
        Payload::Command(c) => tracker.submit(req.target.clone(), c, SendOptions::default(), now()),
        Payload::Text(t) => match &req.target {
            Target::Device(d) => tracker.submit_text(d.clone(), t, SendOptions::default(), now()),
            Target::Group(_) => anyhow::bail!("text commands go to one device, not a group"),
        },
    };
    let mut publishes: HashMap<u64, Tid> = HashMap::new();
    let mut delivered = false;
    loop {
        while let Some(out) = tracker.poll_transmit() {
            match link.publish(out.to_publish()) {
                Ok(id) => {
                    publishes.insert(id.as_u64(), out.tid);
                    tracker.handle_sent(out.tid, now());
                }
                Err(e) => tracker.handle_send_failed(out.tid, e.to_string(), now()),
            }
        }
        while let Some(e) = tracker.poll_event() {
            tracing::debug!(?e, "tracker");
        }
        let t = tracker
            .get(&tid)
            .ok_or_else(|| anyhow::anyhow!("command vanished"))?;
        if t.is_finished() || (!req.wait && delivered) {
            let t = t.clone();
            let mut events = Vec::new();
            link.session_mut().disconnect(now());
            link.flush(&mut events).await;
            return Ok(t);
        }
        let deadline = tracker.poll_timeout().map(instant_at);
        link.step(deadline, &mut events, std::future::pending())
            .await;
        tracker.handle_timeout(now());
        for e in events.drain(..) {
            match e {
                SessionEvent::Delivered(id) => {
                    if let Some(tid) = publishes.remove(&id.as_u64()) {
                        tracker.handle_delivered(tid);
                        delivered = true;
                    }
                }
                SessionEvent::PublishFailed { id, reason } => {
                    if let Some(tid) = publishes.remove(&id.as_u64()) {
                        tracker.handle_send_failed(tid, reason, now());
                    }
                }
                SessionEvent::Message(m) => match Topic::parse(&m.topic) {
                    Some(Topic::Response(d)) => tracker.handle_response(&d, &m.payload, now()),
                    Some(Topic::Status(d)) => tracker.handle_status(&d, &m.payload),
                    _ => {}
                },
                _ => {}
            }
        }
    }
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
            Phase::Rejected { reason } => format!("rejected ({})", rejection_kind(reason)),
            Phase::TimedOut { .. } => "timed out".to_owned(),
            p => format!("{p:?}").to_lowercase(),
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

fn rejection_kind(r: &switchboard_protocol::Rejection) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "rejected".to_owned())
}
