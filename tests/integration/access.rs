//! Per-device access control, proven against mosquitto with the ACL that `docs/security/` ships,
//! over MQTT 5 and 3.1.1: each device logs in as itself and may touch only its own topics; an
//! operator may command every device. What the broker refuses is reported as a refusal (MQTT 5)
//! or caught by the deadline (3.1.1, where the broker drops it silently), never as success.

use std::time::{Duration, Instant};

use device_sim::link::{now, Link};
use device_sim::transport::{BrokerUrl, Endpoint};
use switchboard_protocol::envelope::{Outcome, Response, Status};
use switchboard_protocol::session::{
    ProtocolVersion, Publish, QoS, Session, SessionConfig, SessionEvent,
};
use switchboard_protocol::tracker::{Phase, Target, Tracked};
use switchboard_protocol::{Command, GroupId, Tid};

use crate::support::broker::{Access, Broker};
use crate::support::{dev, fleet_options, free_port, send_command_as, specs, start_fleet, to};

/// The ACL as shipped, with one group block: device1 may read floor1's requests, device2 may not.
fn acl() -> String {
    format!(
        "{}\nuser device1\ntopic read cmd/group/floor1/req\n",
        include_str!("../../docs/security/mosquitto.acl")
    )
}

const USERS: &[(&str, &str)] = &[
    ("operator", "operator-pw"),
    ("device1", "device1-pw"),
    ("device2", "device2-pw"),
];

fn login(url: &str, user: &str) -> Endpoint {
    let mut e = Endpoint::plain(BrokerUrl::parse(url).unwrap());
    e.username = Some(user.to_owned());
    e.password = Some(format!("{user}-pw"));
    e
}

/// A bare MQTT client logged in as `user`: what a compromised or misconfigured device can do.
struct Intruder {
    link: Link<Session>,
    events: Vec<SessionEvent>,
}

impl Intruder {
    async fn connect(url: &str, user: &str, version: ProtocolVersion) -> Intruder {
        let mut config = SessionConfig::new(format!("{user}-intruder-{}", free_port()));
        config.version = version;
        config.version_fallback = false;
        login(url, user).apply(&mut config);
        let mut link = Link::new(Session::new(config, 7).unwrap(), &login(url, user));
        link.session_mut().connect(now());
        let mut me = Intruder {
            link,
            events: Vec::new(),
        };
        me.until("connected", |e| matches!(e, SessionEvent::Connected { .. }))
            .await;
        me
    }

    /// Runs the link until an event satisfies `done` (within 10 s); returns that event.
    async fn until(&mut self, what: &str, done: impl Fn(&SessionEvent) -> bool) -> SessionEvent {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.events.iter().position(&done) {
                return self.events.remove(i);
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{what}: not within 10 s"
            );
            let mut got = Vec::new();
            self.link
                .step(Some(until), &mut got, std::future::pending())
                .await;
            self.events.extend(got);
        }
    }

    /// Runs the link for `d`, keeping what arrives.
    async fn listen(&mut self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < until {
            let mut got = Vec::new();
            self.link
                .step(Some(until), &mut got, std::future::pending())
                .await;
            self.events.extend(got);
        }
    }

    async fn subscribe(&mut self, filter: &str) -> SessionEvent {
        self.link
            .session_mut()
            .subscribe(filter, QoS::AtLeastOnce, now())
            .unwrap();
        self.until(
            &format!("the broker answers the subscription to {filter}"),
            |e| {
                matches!(e, SessionEvent::Subscribed { filter: f, .. }
                | SessionEvent::SubscriptionRefused { filter: f, .. } if f == filter)
            },
        )
        .await
    }

    /// Publishes and returns the broker's verdict: `Delivered` or `PublishRefused`.
    async fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> SessionEvent {
        let mut p = Publish::new(topic, payload, QoS::AtLeastOnce);
        p.retain = retain;
        let id = self.link.publish(p).unwrap();
        self.until(&format!("the broker answers the publish to {topic}"), |e| {
            matches!(e, SessionEvent::Delivered(i)
                | SessionEvent::PublishRefused { id: i, .. }
                | SessionEvent::PublishFailed { id: i, .. } if *i == id)
        })
        .await
    }

    fn messages_on(&self, prefix: &str) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Message(m) if m.topic.starts_with(prefix) => Some(m.topic.clone()),
                _ => None,
            })
            .collect()
    }
}

async fn send_as(
    url: &str,
    user: &str,
    version: ProtocolVersion,
    target: Target,
    command: Command,
    timeout: Duration,
) -> Tracked {
    send_command_as(login(url, user), version, target, command, timeout).await
}

fn refusal_text(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V5 => "not authorized (0x87)",
        ProtocolVersion::V3_1_1 => "failure (0x80; MQTT 3.1.1 gives no reason)",
    }
}

async fn each_device_touches_only_its_own_topics(version: ProtocolVersion) {
    let acl = acl();
    let (_broker, urls) = Broker::start_secured(&Access {
        users: USERS,
        acl: Some(&acl),
        wss: None,
    })
    .await;
    let url = urls.tcp.as_str();

    // Both devices in floor1; the ACL lets only device1 read floor1's requests.
    let mut opts = fleet_options(url, None);
    opts.version = version;
    opts.endpoint.username = Some("{device}".into());
    opts.endpoint.password = Some("{device}-pw".into());
    let fleet = start_fleet(specs("device", 2, &["floor1"], &Default::default()), opts).await;

    // The operator commands each device, and the group.
    for d in ["device1", "device2"] {
        let t = send_as(
            url,
            "operator",
            version,
            to(d),
            Command::Light { on: true },
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(t.members[&dev(d)].phase, Phase::Succeeded, "{d}: {t:?}");
    }
    let group = Target::Group(GroupId::new("floor1").unwrap());
    let t = send_as(
        url,
        "operator",
        version,
        group,
        Command::Light { on: true },
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(t.members[&dev("device1")].phase, Phase::Succeeded, "{t:?}");

    // device2 cannot receive device1's commands, nor every command. mosquitto's acl_file grants
    // such a SUBSCRIBE and then withholds every message the user may not read; a broker that
    // checks subscriptions (dynamic security, most cloud brokers) refuses it. Either way nothing
    // arrives, and a refusal carries the broker's code.
    let mut intruder = Intruder::connect(url, "device2", version).await;
    for filter in ["cmd/device1/req", "cmd/#", "cmd/group/floor1/req", "#"] {
        if let SessionEvent::SubscriptionRefused { reason, .. } = intruder.subscribe(filter).await {
            assert_eq!(reason, refusal_text(version), "{filter}");
        }
    }
    let t = send_as(
        url,
        "operator",
        version,
        to("device1"),
        Command::Light { on: true },
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(t.members[&dev("device1")].phase, Phase::Succeeded);
    intruder.listen(Duration::from_millis(300)).await;
    assert_eq!(
        intruder.messages_on(""),
        Vec::<String>::new(),
        "device2 read nothing"
    );

    // device2 cannot answer or report as device1. A watcher with the operator's rights sees
    // only what device1 itself published.
    let mut watcher = Intruder::connect(url, "operator", version).await;
    assert!(matches!(
        watcher.subscribe("cmd/device1/resp").await,
        SessionEvent::Subscribed { .. }
    ));
    assert!(matches!(
        watcher.subscribe("status/device1").await,
        SessionEvent::Subscribed { .. }
    ));
    watcher.listen(Duration::from_millis(300)).await;
    watcher.events.clear();
    let forged_answer = Response::new(
        Tid::from_slice(&[7; 16]).unwrap(),
        dev("device1"),
        "light",
        Outcome::Succeeded,
    )
    .encode();
    let forged_status = Status::offline(dev("device1")).encode();
    for (topic, payload, retain) in [
        ("cmd/device1/resp", forged_answer, false),
        ("status/device1", forged_status, true),
    ] {
        let verdict = intruder.publish(topic, payload, retain).await;
        match (version, verdict) {
            (ProtocolVersion::V5, SessionEvent::PublishRefused { reason, .. }) => {
                assert_eq!(reason, "not authorized (0x87)")
            }
            // 3.1.1 has no refusal: the broker acknowledges and drops it.
            (ProtocolVersion::V3_1_1, SessionEvent::Delivered(_)) => {}
            (_, other) => panic!("{topic}: expected the broker's refusal, got {other:?}"),
        }
    }
    watcher.listen(Duration::from_millis(500)).await;
    assert_eq!(
        watcher.messages_on(""),
        Vec::<String>::new(),
        "nothing forged reached the operator"
    );

    // Commands from a user who may not send them: refused at once on MQTT 5, timed out at the
    // deadline on 3.1.1; never succeeded, and device1 never ran them.
    let started = Instant::now();
    let t = send_as(
        url,
        "device2",
        version,
        to("device1"),
        Command::Light { on: true },
        Duration::from_secs(4),
    )
    .await;
    let took = started.elapsed();
    let phase = &t.members[&dev("device1")].phase;
    match version {
        ProtocolVersion::V5 => {
            assert_eq!(
                phase,
                &Phase::Refused {
                    reason: "not authorized (0x87)".into()
                }
            );
            assert!(
                took < Duration::from_secs(3),
                "refused at once, not at the deadline: {took:?}"
            );
        }
        ProtocolVersion::V3_1_1 => assert!(
            matches!(phase, Phase::TimedOut { .. }),
            "3.1.1's silent drop ends timed out: {phase:?}"
        ),
    }
    assert_eq!(fleet.stats().executions_of(&dev("device1"), &t.tid), 0);
    fleet.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_touches_only_its_own_topics_mqtt5() {
    each_device_touches_only_its_own_topics(ProtocolVersion::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_touches_only_its_own_topics_mqtt311() {
    each_device_touches_only_its_own_topics(ProtocolVersion::V3_1_1).await;
}
