//! The device simulator against real brokers: every scenario runs against mosquitto and against
//! the embedded broker.

use std::collections::HashMap;
use std::time::Duration;

use device_sim::faults::Faults;
use device_sim::send::{Operator, OperatorOptions};
use switchboard_protocol::envelope::{Config, DeviceState, Rejection};
use switchboard_protocol::session::ProtocolVersion;
use switchboard_protocol::tracker::{Phase, SendOptions, Target, Tracked};
use switchboard_protocol::{Command, GroupId};

use crate::support::broker::{Broker, Kind};
use crate::support::{
    dev, endpoint, fleet_options, send_command, send_text, spawn_simulator, specs, start_fleet, to,
    wait_online,
};

const T: Duration = Duration::from_secs(10);

/// Runs each scenario once per broker.
macro_rules! on_every_broker {
    ($($name:ident),* $(,)?) => {
        mod mosquitto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::broker::Kind::Mosquitto).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::broker::Kind::Embedded).await
                }
            )*
        }
    };
}

on_every_broker!(
    round_trip,
    round_trip_over_websocket,
    fan_out_to_a_hundred_devices,
    a_duplicate_delivery_executes_once,
    an_out_of_sequence_step_names_the_expected_one,
    a_restart_applies_the_saved_config,
    killing_the_simulator_mid_command_reports_interrupted,
    an_offline_device_is_a_connectivity_error_by_the_deadline,
    a_broker_restart_during_a_burst_loses_and_repeats_nothing,
    plain_text_round_trip,
    telemetry_changes_rate_at_once_and_logs_are_published,
    a_lossy_device_still_gets_every_command_done_once,
);

fn phase_of(t: &Tracked, device: &str) -> Phase {
    t.members[&dev(device)].phase.clone()
}

/// The state a device reported in its answer.
fn state_of(t: &Tracked, device: &str) -> DeviceState {
    let response = t.members[&dev(device)].response.as_ref();
    response
        .and_then(|r| r.state.clone())
        .expect("an answer with the device's state")
}

/// Sends a command to one device and checks that it succeeded.
async fn succeed(url: &str, device: &str, command: Command) -> Tracked {
    let t = send_command(url, to(device), command, T).await;
    assert_eq!(phase_of(&t, device), Phase::Succeeded, "{:?}", t.members);
    t
}

async fn round_trip(kind: Kind) {
    let broker = Broker::start(kind).await;
    let fleet = start_fleet(
        specs("rt", 3, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let t = succeed(&broker.url, "rt2", Command::Light { on: true }).await;
    let state = state_of(&t, "rt2");
    assert!(state.light, "the answer carries the new state");
    assert_eq!(fleet.stats().executions_of(&dev("rt2"), &t.tid), 1);
    let t = send_command(&broker.url, to("rt2"), Command::GetState, T).await;
    let r = t.members[&dev("rt2")].response.as_ref().unwrap();
    assert!(r.state.as_ref().unwrap().light, "the light really is on");
    fleet.stop(T).await;
}

async fn round_trip_over_websocket(kind: Kind) {
    let broker = Broker::start(kind).await;
    let ws = broker.ws_url();
    let fleet = start_fleet(
        specs("ws", 2, &[], &Faults::default()),
        fleet_options(&ws, None),
    )
    .await;
    let t = send_command(&ws, to("ws1"), Command::Led { on: true }, T).await;
    assert_eq!(phase_of(&t, "ws1"), Phase::Succeeded);
    assert_eq!(fleet.stats().executions_of(&dev("ws1"), &t.tid), 1);
    // A TCP client sees the same fleet through the same broker.
    succeed(&broker.url, "ws2", Command::GetState).await;
    fleet.stop(T).await;
}

async fn fan_out_to_a_hundred_devices(kind: Kind) {
    let broker = Broker::start(kind).await;
    let fleet = start_fleet(
        specs("fan", 100, &["floor1"], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let t = send_command(
        &broker.url,
        Target::Group(GroupId::new("floor1").unwrap()),
        Command::Led { on: true },
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(t.progress.expected, 100, "members come from presence");
    assert_eq!(t.progress.succeeded, 100, "{:?}", t.progress);
    for i in 1..=100 {
        assert_eq!(
            fleet
                .stats()
                .executions_of(&dev(&format!("fan{i}")), &t.tid),
            1
        );
    }
    fleet.stop(T).await;
}

async fn a_duplicate_delivery_executes_once(kind: Kind) {
    let broker = Broker::start(kind).await;
    let faults = Faults::parse("dup-in=1").unwrap();
    let fleet = start_fleet(
        specs("dup", 1, &[], &faults),
        fleet_options(&broker.url, None),
    )
    .await;
    let t = succeed(&broker.url, "dup1", Command::Light { on: true }).await;
    // Give the second copy time to be handled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fleet.stats().executions_of(&dev("dup1"), &t.tid), 1);
    assert_eq!(
        fleet
            .stats()
            .answered
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "the copy was answered from memory, not executed"
    );
    fleet.stop(T).await;
}

async fn an_out_of_sequence_step_names_the_expected_one(kind: Kind) {
    let broker = Broker::start(kind).await;
    let fleet = start_fleet(
        specs("seq", 1, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let stage = Command::FirmwareStage {
        version: "2.0.0".into(),
    };
    succeed(&broker.url, "seq1", stage).await;
    let t = send_command(&broker.url, to("seq1"), Command::FirmwareActivate, T).await;
    match phase_of(&t, "seq1") {
        Phase::Rejected {
            reason: Rejection::SequenceViolation { expected, got, .. },
        } => {
            assert_eq!(expected.as_deref(), Some("firmware_verify"));
            assert_eq!(got, "firmware_activate");
        }
        other => panic!("expected a sequence violation, got {other:?}"),
    }
    assert_eq!(fleet.stats().executions_of(&dev("seq1"), &t.tid), 0);
    for step in [Command::FirmwareVerify, Command::FirmwareActivate] {
        succeed(&broker.url, "seq1", step).await;
    }
    let t = send_command(&broker.url, to("seq1"), Command::GetState, T).await;
    assert_eq!(state_of(&t, "seq1").firmware, "2.0.0");
    fleet.stop(T).await;
}

async fn a_restart_applies_the_saved_config(kind: Kind) {
    let broker = Broker::start(kind).await;
    let dir = tempfile::tempdir().unwrap();
    let fleet = start_fleet(
        specs("cfg", 1, &[], &Faults::default()),
        fleet_options(&broker.url, Some(dir.path())),
    )
    .await;
    let config = Config {
        telemetry_interval_ms: Some(700),
        light_on_boot: Some(true),
        label: Some("lobby".into()),
    };
    let t = send_command(
        &broker.url,
        to("cfg1"),
        Command::SetConfig {
            config: config.clone(),
        },
        T,
    )
    .await;
    let state = state_of(&t, "cfg1");
    assert_eq!(
        state.pending_config,
        Some(config.clone()),
        "pending until the restart"
    );
    assert!(!state.light);
    succeed(&broker.url, "cfg1", Command::Restart { delay_ms: 300 }).await;
    // The command waits at the broker (persistent session) until the device is back.
    let t = send_command(&broker.url, to("cfg1"), Command::GetState, T).await;
    let state = state_of(&t, "cfg1");
    assert_eq!(state.boots, 2);
    assert_eq!(state.config, config);
    assert_eq!(state.pending_config, None);
    assert!(state.light, "light_on_boot applied");
    assert_eq!(state.telemetry_interval_ms, 700);
    fleet.stop(T).await;
}

async fn killing_the_simulator_mid_command_reports_interrupted(kind: Kind) {
    let broker = Broker::start(kind).await;
    let dir = tempfile::tempdir().unwrap();
    // Acting takes 5 s: long enough to kill the process in the middle.
    let mut sim = spawn_simulator(&broker.url, dir.path(), "kill", "slow-ms=5000");
    wait_online(&broker.url, "kill1").await;
    let url = broker.url.clone();
    let sender = tokio::spawn(async move {
        send_command(
            &url,
            to("kill1"),
            Command::Light { on: true },
            Duration::from_secs(30),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.kill();
    let _again = spawn_simulator(&broker.url, dir.path(), "kill", "");
    let t = sender.await.unwrap();
    assert_eq!(phase_of(&t, "kill1"), Phase::Interrupted, "{:?}", t.members);
    let t = send_command(&broker.url, to("kill1"), Command::GetState, T).await;
    assert_eq!(
        phase_of(&t, "kill1"),
        Phase::Succeeded,
        "the device is back"
    );
}

async fn an_offline_device_is_a_connectivity_error_by_the_deadline(kind: Kind) {
    let broker = Broker::start(kind).await;
    let fleet = start_fleet(
        specs("off", 1, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    fleet.stop(T).await;
    let deadline = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let t = send_command(
        &broker.url,
        to("off1"),
        Command::Light { on: true },
        deadline,
    )
    .await;
    assert_eq!(
        phase_of(&t, "off1"),
        Phase::TimedOut {
            device_online: Some(false)
        },
        "the retained status said offline"
    );
    let finished = t.members[&dev("off1")].finished_at.unwrap();
    assert!(finished <= t.deadline, "reported by the deadline");
    assert!(started.elapsed() < deadline + Duration::from_secs(3));
}

async fn a_broker_restart_during_a_burst_loses_and_repeats_nothing(kind: Kind) {
    let mut broker = Broker::start(kind).await;
    let fleet = start_fleet(
        specs("burst", 10, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let mut op = Operator::connect(OperatorOptions {
        endpoint: endpoint(&broker.url),
        version: ProtocolVersion::V5,
        timeout: Duration::from_secs(40),
        presence_wait: Duration::from_millis(50),
    })
    .await
    .unwrap();
    let now = device_sim::link::now;
    let mut tids = Vec::new();
    for i in 0..1000u32 {
        let device = format!("burst{}", i % 10 + 1);
        let cmd = Command::Light { on: i % 2 == 0 };
        tids.push((
            device.clone(),
            op.client_mut()
                .submit(to(&device), &cmd, SendOptions::default(), now()),
        ));
    }
    // Let the burst get under way, then take the broker down for a moment.
    let expected = tids.len();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        broker.restart(Duration::from_millis(500)).await;
        broker
    });
    op.run_until(|op| op.tracker().outstanding() == 0).await;
    let _broker = restart.await.unwrap();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for (device, tid) in &tids {
        let t = op.tracker().get(tid).unwrap().clone();
        let phase = phase_of(&t, device);
        assert!(phase.is_terminal(), "{tid}: {phase:?}");
        let ran = fleet.stats().executions_of(&dev(device), tid);
        assert!(ran <= 1, "{tid} executed {ran} times on {device}");
        match &phase {
            Phase::Succeeded => assert_eq!(ran, 1),
            Phase::Rejected { reason } => {
                assert!(matches!(reason, Rejection::OutOfOrder { .. }), "{reason}");
                assert_eq!(ran, 0);
            }
            _ => {}
        }
        *outcomes.entry(phase_label(&phase)).or_default() += 1;
    }
    assert_eq!(outcomes.values().sum::<usize>(), expected);
    println!("{kind:?}: 1,000 commands across a broker restart: {outcomes:?}");
    assert!(outcomes.get("succeeded").copied().unwrap_or(0) > 0);
    op.disconnect().await;
    fleet.stop(T).await;
}

fn phase_label(p: &Phase) -> String {
    match p {
        Phase::Rejected { reason } => format!("rejected ({})", reason.kind()),
        other => other.label().to_owned(),
    }
}

async fn plain_text_round_trip(kind: Kind) {
    let broker = Broker::start(kind).await;
    let fleet = start_fleet(
        specs("txt", 1, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let t = send_text(&broker.url, "txt1", "light: on").await;
    let m = &t.members[&dev("txt1")];
    assert_eq!(m.phase, Phase::Succeeded);
    assert_eq!(
        m.response.as_ref().unwrap().result,
        "SUCCESS: command ran successfully from payload: b'light: on'"
    );
    let t = send_command(&broker.url, to("txt1"), Command::GetState, T).await;
    let state = state_of(&t, "txt1");
    assert!(state.light, "the text command switched the light");
    let t = send_text(&broker.url, "txt1", "open the pod bay doors").await;
    let m = &t.members[&dev("txt1")];
    assert_eq!(m.phase, Phase::Failed);
    assert_eq!(
        m.response.as_ref().unwrap().error.as_deref(),
        Some("FAILURE: command did not run successfully from payload: b'open the pod bay doors'")
    );
    fleet.stop(T).await;
}

/// Devices on a cloud IoT service connect with mutual TLS: the simulator and the sender do too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_client_certificates() {
    use device_sim::send::{send, Payload, SendRequest};
    use device_sim::transport::TlsFiles;

    let pki = crate::support::certs::TestPki::generate();
    let (_broker, tls_url) = Broker::start_mutual_tls(&pki).await;
    let with_cert = |cert: &std::path::Path, key: &std::path::Path| {
        let mut e = endpoint(&tls_url);
        let files = TlsFiles {
            ca: Some(pki.ca.clone()),
            cert: Some(cert.to_path_buf()),
            key: Some(key.to_path_buf()),
        };
        e.tls = Some(files.client_config().unwrap());
        e
    };
    let mut opts = fleet_options(&tls_url, None);
    opts.endpoint = with_cert(&pki.client_cert, &pki.client_key);
    let fleet = start_fleet(specs("tls", 1, &[], &Faults::default()), opts).await;
    let request = |endpoint, payload, timeout| SendRequest {
        endpoint,
        version: ProtocolVersion::V5,
        target: to("tls1"),
        payload,
        wait: true,
        timeout,
        family: None,
    };
    let light = Payload::Command(Command::Light { on: true });
    let sent = send(request(
        with_cert(&pki.client_cert, &pki.client_key),
        light,
        T,
    ))
    .await
    .unwrap();
    assert_eq!(phase_of(&sent, "tls1"), Phase::Succeeded);
    fleet.stop(T).await;

    // A certificate from a CA the broker does not trust gets nowhere.
    let state = Payload::Command(Command::GetState);
    let rogue = with_cert(&pki.rogue_cert, &pki.rogue_key);
    let err = send(request(rogue, state, Duration::from_secs(2)))
        .await
        .expect_err("an untrusted client certificate is refused");
    assert!(err.to_string().contains("could not connect"), "{err:#}");
}

async fn telemetry_changes_rate_at_once_and_logs_are_published(kind: Kind) {
    let broker = Broker::start(kind).await;
    let mut opts = fleet_options(&broker.url, None);
    opts.telemetry = Duration::from_millis(1000);
    let fleet = start_fleet(specs("tel", 1, &[], &Faults::default()), opts).await;
    let url = broker.url.clone();
    let watcher = tokio::spawn(async move {
        crate::support::collect(
            &url,
            &["telemetry/tel1", "log/tel1"],
            Duration::from_millis(3500),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let changed_at = std::time::Instant::now();
    succeed(
        &broker.url,
        "tel1",
        Command::SetTelemetryInterval { interval_ms: 200 },
    )
    .await;
    succeed(&broker.url, "tel1", Command::GetLog { lines: 5 }).await;
    let got = watcher.await.unwrap();
    let telemetry: Vec<_> = got
        .iter()
        .filter(|(_, t, _)| t == "telemetry/tel1")
        .collect();
    let before = telemetry
        .iter()
        .filter(|(at, _, _)| *at < changed_at)
        .count();
    let after: Vec<_> = telemetry
        .iter()
        .filter(|(at, _, _)| *at >= changed_at)
        .collect();
    assert!(
        before <= 2,
        "1 s period before the change: {before} messages in 1.3 s"
    );
    assert!(
        after.len() >= 6,
        "200 ms period after it: {} messages in 2.2 s",
        after.len()
    );
    let last: serde_json::Value = serde_json::from_slice(&after.last().unwrap().2).unwrap();
    assert_eq!(last["interval_ms"], 200);
    let log = got
        .iter()
        .find(|(_, t, _)| t == "log/tel1")
        .expect("get_log publishes on log/<device>");
    let log: serde_json::Value = serde_json::from_slice(&log.2).unwrap();
    let lines = log["lines"].as_array().unwrap();
    assert!(!lines.is_empty() && lines.len() <= 5, "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap().contains("set_telemetry_interval")),
        "{log}"
    );
    fleet.stop(T).await;
}

async fn a_lossy_device_still_gets_every_command_done_once(kind: Kind) {
    let broker = Broker::start(kind).await;
    let faults = Faults::parse(
        // Each attempt gets through with a chance of about 0.64; with the ~9 attempts a 30 s
        // deadline allows, a command fails to get done about once in 10,000.
        "drop-in=0.2,drop-out=0.2,dup-in=0.3,dup-out=0.3,delay-in-ms=50,reorder-out=0.3",
    )
    .unwrap();
    let fleet = start_fleet(
        specs("lossy", 1, &[], &faults),
        fleet_options(&broker.url, None),
    )
    .await;
    for i in 0..6 {
        let t = send_command(
            &broker.url,
            to("lossy1"),
            Command::Led { on: i % 2 == 0 },
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(
            phase_of(&t, "lossy1"),
            Phase::Succeeded,
            "command {i}: retransmitted until answered"
        );
        assert_eq!(
            fleet.stats().executions_of(&dev("lossy1"), &t.tid),
            1,
            "command {i} ran once"
        );
    }
    fleet.stop(T).await;
}

/// Brokers that want a user name and password get them, from devices and the sender alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password() {
    use device_sim::send::{send, Payload, SendRequest};

    let (_broker, url) = Broker::start_with_password("fleet", "s3cret").await;
    let login = |password: &str| {
        let mut e = endpoint(&url);
        e.username = Some("fleet".into());
        e.password = Some(password.into());
        e
    };
    let mut opts = fleet_options(&url, None);
    opts.endpoint = login("s3cret");
    let fleet = start_fleet(specs("pw", 1, &[], &Faults::default()), opts).await;
    let request = |endpoint| SendRequest {
        endpoint,
        version: ProtocolVersion::V5,
        target: to("pw1"),
        payload: Payload::Command(Command::Light { on: true }),
        wait: true,
        timeout: T,
        family: None,
    };
    let sent = send(request(login("s3cret"))).await.unwrap();
    assert_eq!(phase_of(&sent, "pw1"), Phase::Succeeded);
    let err = send(request(login("wrong")))
        .await
        .expect_err("a wrong password is refused");
    assert!(err.to_string().contains("refused"), "{err:#}");
    fleet.stop(T).await;
}

/// `--faults stuck=1`: the relay is held, so a Switchboard device answers the light command
/// `failed`, says why, and reports the light as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_relay_answers_failed_and_reports_the_light_unchanged() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let faults = Faults::parse("stuck=1").unwrap();
    let fleet = start_fleet(
        specs("held", 1, &[], &faults),
        fleet_options(&broker.url, None),
    )
    .await;
    let t = send_command(&broker.url, to("held1"), Command::Light { on: true }, T).await;
    assert_eq!(phase_of(&t, "held1"), Phase::Failed, "{:?}", t.members);
    let response = t.members[&dev("held1")].response.as_ref().unwrap();
    assert!(
        response
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("held"),
        "{response:?}"
    );
    assert!(!state_of(&t, "held1").light, "the light did not switch");
    // A command that changes nothing is not held back.
    let t = send_command(&broker.url, to("held1"), Command::Light { on: false }, T).await;
    assert_eq!(phase_of(&t, "held1"), Phase::Succeeded, "{:?}", t.members);
    fleet.stop(T).await;
}

/// Requests a person might get wrong, published straight to a simulated device: one with a valid
/// TID and a bad field is refused as `malformed` in JSON, carrying that TID; a TID used again for
/// another command is refused as a conflict, carrying the first command's name; the first
/// command's own retransmission still gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_with_a_readable_tid_are_refused_with_it() {
    use crate::support::{collect, publish_raw};
    use switchboard_protocol::envelope::{decode_response, IncomingResponse, Outcome};

    let broker = Broker::start(Kind::Mosquitto).await;
    let fleet = start_fleet(
        specs("strict", 1, &[], &Faults::default()),
        fleet_options(&broker.url, None),
    )
    .await;
    let request = |tid: &str, seq: i64, cmd: &str, args: serde_json::Value| {
        serde_json::json!({"v": 1, "tid": tid, "issuer": "person", "seq": seq, "cmd": cmd,
            "args": args, "issued_at": 0})
        .to_string()
        .into_bytes()
    };
    let (t1, t2) = (
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    );
    let url = broker.url.clone();
    let watch =
        tokio::spawn(
            async move { collect(&url, &["cmd/strict1/resp"], Duration::from_secs(3)).await },
        );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let topic = "cmd/strict1/req";
    publish_raw(
        &broker.url,
        &[
            (
                topic,
                &request(t1, -1, "light", serde_json::json!({"on": true})),
            ),
            (
                topic,
                &request(t2, 1, "light", serde_json::json!({"on": true})),
            ),
            (
                topic,
                &request(t2, 2, "restart", serde_json::json!({"delay_ms": 100})),
            ),
            (
                topic,
                &request(t2, 1, "light", serde_json::json!({"on": true})),
            ),
        ],
    )
    .await;
    let answers: Vec<_> = watch
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, payload)| match decode_response(&payload) {
            Ok(IncomingResponse::Envelope(r)) => r,
            other => panic!("a JSON answer, got {other:?}"),
        })
        .collect();
    assert_eq!(answers.len(), 4, "every request answered: {answers:?}");
    assert_eq!(answers[0].tid.to_string(), t1);
    assert!(
        matches!(&answers[0].outcome, Outcome::Rejected { reason: Rejection::Malformed { detail } } if detail.contains("field `seq`")),
        "{:?}",
        answers[0]
    );
    assert_eq!(answers[1].outcome, Outcome::Succeeded);
    assert_eq!(
        answers[2].outcome,
        Outcome::Rejected {
            reason: Rejection::TidConflict {
                command: "light".into()
            }
        }
    );
    assert_eq!(answers[3].outcome, Outcome::Succeeded, "the replay");
    assert_eq!(answers[3].result, answers[1].result);
    fleet.stop(T).await;
}
