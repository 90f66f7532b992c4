//! The catalogue of bad input (docs/PROTOCOL.md, "Bad input"), class by class. Each class is
//! shown to get its clear error, to be listed where an operator sees it (an answer the sender
//! can tie to its command, the device's log, a tracker event the panel lists), and to cost no
//! other command anything: a good command right after it is admitted at once, or answered at
//! once, as if the bad one had never come.

use serde_json::json;
use switchboard_protocol::envelope::{
    decode_log, decode_status, decode_telemetry, DeviceState, Outcome, Rejection, Response, Tid,
    MAX_PAYLOAD,
};
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig, Received, Reply, SequenceDef};
use switchboard_protocol::tracker::{
    CommandTracker, Phase, SendOptions, Target, TrackerConfig, TrackerEvent, Unmatched,
};
use switchboard_protocol::{Command, DeviceId, IssuerId, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const TID: &str = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b";

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn gate() -> DeviceGate {
    let mut config = GateConfig::new(dev("device1"));
    config.sequences.push(SequenceDef::firmware());
    DeviceGate::new(config)
}

/// A request as an application writes one, to change field by field.
fn request(seq: i64) -> serde_json::Value {
    json!({"v": 1, "tid": TID, "issuer": "app", "seq": seq, "cmd": "light",
        "args": {"on": true}, "issued_at": 1_000, "ttl_ms": 30_000})
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut r = request(5);
    r[field] = value;
    r.to_string().into_bytes()
}

/// What the device answered, as the sender reads it.
#[derive(Debug)]
enum Answer {
    /// A JSON rejection for this TID.
    Rejected(Tid, Rejection),
    /// The text form's failure.
    TextFailure(String),
}

/// What a device does with a payload: the gate's decision, executed when it lets it through.
fn receive(g: &mut DeviceGate, payload: &[u8], now: Timestamp) -> (Option<Answer>, bool) {
    let mut rng = fastrand::Rng::with_seed(7);
    let state = DeviceState::default();
    let admission = match g.receive(payload, now, &state, || Tid::random(&mut rng)) {
        Received::Admitted(admission) => admission,
        Received::Malformed { reply, error } => {
            assert!(!error.to_string().is_empty());
            return (answer(reply), false);
        }
    };
    let reply = match admission {
        Admission::Execute(ticket) => {
            let r = g.finish(ticket, Ok(json!(null)), &state, now);
            return (answer(r), true);
        }
        Admission::Reject(reply) | Admission::Replay(reply) => reply,
        Admission::InProgress { .. } => return (None, false),
    };
    (answer(reply), false)
}

fn answer(reply: Reply) -> Option<Answer> {
    match reply {
        Reply::Envelope(Response {
            tid,
            outcome: Outcome::Rejected { reason },
            state,
            ..
        }) => {
            assert!(state.is_some(), "a refusal carries the device's state");
            Some(Answer::Rejected(tid, reason))
        }
        Reply::Envelope(_) => None,
        Reply::Text(t) => Some(Answer::TextFailure(t)),
    }
}

/// What a class must be answered with.
enum Expect {
    /// A JSON `malformed` rejection with the request's TID, whose detail names this.
    Malformed(&'static str),
    /// A JSON rejection with the TID, of this kind.
    Kind(&'static str),
    /// The text form's `FAILURE: ...`, which carries no TID (none could be read).
    Text,
}

/// Device-side classes: what can arrive on `cmd/<device>/req`.
fn device_classes() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let many_keys: serde_json::Map<String, serde_json::Value> =
        (0..5_000).map(|i| (format!("k{i}"), json!(i))).collect();
    vec![
        (
            "oversized (1 MiB)",
            [b"light: on ".as_slice(), &vec![b'x'; 1 << 20]].concat(),
            Expect::Text,
        ),
        ("empty payload", Vec::new(), Expect::Text),
        ("invalid UTF-8", vec![0xff, 0xfe, b'o', b'n', 0xc3], Expect::Text),
        ("not JSON though it opens a brace", b"{light: on".to_vec(), Expect::Text),
        ("JSON that is not an object", b"{}[]".to_vec(), Expect::Text),
        ("no tid", br#"{"v":1,"cmd":"light"}"#.to_vec(), Expect::Text),
        ("a tid that is not a UUID", with("tid", json!("123")), Expect::Text),
        ("wrong envelope version", with("v", json!(2)), Expect::Malformed("version 2")),
        ("version of the wrong type", with("v", json!("1")), Expect::Malformed("`v`")),
        ("seq of the wrong type", with("seq", json!("one")), Expect::Malformed("`seq`")),
        ("negative seq", with("seq", json!(-1)), Expect::Malformed("`seq`")),
        ("seq beyond 64 bits", with("seq", json!(1e30)), Expect::Malformed("`seq`")),
        ("negative ttl_ms", with("ttl_ms", json!(-5)), Expect::Malformed("`ttl_ms`")),
        ("issued_at of the wrong shape", with("issued_at", json!({"at": 0})), Expect::Malformed("`issued_at`")),
        ("issuer with a level separator", with("issuer", json!("a/b")), Expect::Malformed("`issuer`")),
        ("issuer with a wildcard", with("issuer", json!("a+b")), Expect::Malformed("`issuer`")),
        ("group `#`", with("group", json!("#")), Expect::Malformed("`group`")),
        ("issuer naming a $ topic", with("issuer", json!("$SYS")), Expect::Malformed("`issuer`")),
        ("id longer than 128 bytes", with("issuer", json!("a".repeat(129))), Expect::Malformed("`issuer`")),
        ("command name of the wrong type", with("cmd", json!(7)), Expect::Malformed("`cmd`")),
        (
            "nesting 10,000 deep",
            format!(r#"{{"v":1,"tid":"{TID}","issuer":"app","seq":5,"cmd":"light","issued_at":1,"args":{nested}}}"#)
                .into_bytes(),
            Expect::Malformed("recursion"),
        ),
        ("unknown command", with("cmd", json!("self_destruct")), Expect::Kind("unknown_command")),
        ("arguments of the wrong type", with("args", json!({"on": "yes"})), Expect::Kind("invalid_arguments")),
        ("5,000 argument keys", with("args", serde_json::Value::Object(many_keys)), Expect::Kind("invalid_arguments")),
        (
            "a step of a sequence out of turn",
            {
                let mut r = request(5);
                r["cmd"] = json!("firmware_activate");
                r["args"] = json!(null);
                r.to_string().into_bytes()
            },
            Expect::Kind("sequence_violation"),
        ),
        ("expired before it arrived", with("ttl_ms", json!(10)), Expect::Kind("expired")),
        ("unknown text command", b"self destruct".to_vec(), Expect::Text),
        ("text command with a bad argument", b"light: maybe".to_vec(), Expect::Text),
    ]
}

fn kind(r: &Rejection) -> String {
    serde_json::to_value(r).unwrap()["kind"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_bad_request_gets_a_clear_answer_and_costs_the_next_command_nothing() {
    let classes = device_classes();
    assert!(classes.len() >= 25, "{} classes", classes.len());
    let mut g = gate();
    let mut rng = fastrand::Rng::with_seed(3);
    for (i, (class, payload, expect)) in classes.into_iter().enumerate() {
        let now = at(5_000 + i as u64);
        // Each class its own TID and a fresh seq, so that none is refused for an earlier one.
        let tid = Tid::random(&mut rng);
        let payload = own_tid_and_seq(payload, tid, 10 + i as u64);
        let before = g.snapshot();
        let (answer, ran) = receive(&mut g, &payload, now);
        assert!(!ran, "{class}: nothing runs");
        match (expect, answer) {
            (
                Expect::Malformed(names),
                Some(Answer::Rejected(t, Rejection::Malformed { detail })),
            ) => {
                assert_eq!(t, tid, "{class}: carries the request's TID");
                assert!(detail.contains(names), "{class}: {detail:?} names {names}");
                assert_eq!(g.snapshot(), before, "{class}: nothing remembered");
            }
            (Expect::Kind(k), Some(Answer::Rejected(t, reason))) => {
                assert_eq!(t, tid, "{class}");
                assert_eq!(kind(&reason), k, "{class}: {reason:?}");
                if class == "arguments of the wrong type" {
                    assert!(reason.to_string().contains("argument `on`"), "{reason}");
                }
                assert!(!reason.to_string().is_empty());
            }
            (Expect::Text, Some(Answer::TextFailure(text))) => {
                assert!(text.starts_with("FAILURE:"), "{class}: {text}");
                assert!(
                    text.len() < 5 * MAX_PAYLOAD,
                    "{class}: the answer is {} bytes",
                    text.len()
                );
            }
            (_, answer) => panic!("{class}: answered {answer:?}"),
        }
        // The next good command, at the same instant: admitted and run, nothing delayed.
        let good = json!({"v": 1, "tid": Tid::random(&mut rng).to_string(), "issuer": "operator",
            "seq": 100 + i, "cmd": "light", "args": {"on": i % 2 == 0}, "issued_at": now.as_millis(),
            "ttl_ms": 30_000});
        let (answer, ran) = receive(&mut g, good.to_string().as_bytes(), now);
        assert!(
            ran && answer.is_none(),
            "{class}: the next command ran: {answer:?}"
        );
    }
}

/// A payload of the catalogue with `tid` and `seq` in place of the shared ones (as text: some
/// of them are JSON no parser takes).
fn own_tid_and_seq(payload: Vec<u8>, tid: Tid, seq: u64) -> Vec<u8> {
    match String::from_utf8(payload) {
        Ok(text) => text
            .replace(TID, &tid.to_string())
            .replace(r#""seq":5,"#, &format!(r#""seq":{seq},"#))
            .into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

#[test]
fn an_oversized_text_refusal_quotes_only_the_start() {
    let mut g = gate();
    let payload = vec![b'\xff'; 1 << 20];
    let (answer, _) = receive(&mut g, &payload, at(1));
    let Some(Answer::TextFailure(text)) = answer else {
        panic!("{answer:?}")
    };
    assert!(text.len() < 1_000, "{} bytes", text.len());
    assert!(
        text.contains("1048576 bytes; at most 65536 are read"),
        "{text}"
    );
}

#[test]
fn a_replayed_tid_with_other_content_is_a_conflict_and_the_first_answer_stands() {
    let mut g = gate();
    let first = request(1).to_string().into_bytes();
    assert!(receive(&mut g, &first, at(2_000)).1);
    let (answer, ran) = receive(&mut g, &with("cmd", json!("restart")), at(2_001));
    assert!(!ran);
    assert!(
        matches!(answer, Some(Answer::Rejected(_, Rejection::TidConflict { ref command })) if command == "light"),
        "{answer:?}"
    );
    // The first command's own retransmission is still its answer, not run again.
    let (answer, ran) = receive(&mut g, &first, at(2_002));
    assert!(!ran && answer.is_none(), "{answer:?}");
}

#[test]
fn an_older_seq_is_out_of_order_with_the_device_state() {
    let mut g = gate();
    let mut rng = fastrand::Rng::with_seed(9);
    let mut r = request(10);
    r["tid"] = json!(Tid::random(&mut rng).to_string());
    assert!(receive(&mut g, r.to_string().as_bytes(), at(2_000)).1);
    let (answer, _) = receive(&mut g, &with("seq", json!(9)), at(2_001));
    assert!(
        matches!(
            answer,
            Some(Answer::Rejected(
                _,
                Rejection::OutOfOrder {
                    last_seq: 10,
                    got_seq: 9
                }
            ))
        ),
        "{answer:?}"
    );
}

// The application's side: what can arrive on `cmd/<device>/resp`, `status/<device>` and
// `telemetry/<device>` while a command is out.

fn tracker_with_command() -> (CommandTracker, Tid) {
    let mut c = TrackerConfig::new(IssuerId::new("app").unwrap());
    c.deadline = core::time::Duration::from_secs(10);
    let mut t = CommandTracker::new(c, 42);
    let tid = t.submit(
        Target::Device(dev("device1")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(0),
    );
    while let Some(o) = t.poll_transmit() {
        t.handle_sent(o.tid, at(0));
        t.handle_delivered(o.tid);
    }
    while t.poll_event().is_some() {}
    (t, tid)
}

fn good_answer(tid: Tid, device: &str) -> Vec<u8> {
    let mut r = Response::new(tid, dev(device), "light", Outcome::Succeeded);
    r.state = Some(DeviceState::default());
    r.encode()
}

#[test]
fn bad_answers_are_listed_and_the_real_answer_still_reconciles_at_once() {
    let other = Tid::parse("7c9e6679-7425-40de-944b-e07fc1f90ae7").unwrap();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "answer naming another device than its topic",
            "device1",
            Vec::new(),
        ),
        (
            "answer for a TID never issued",
            "device1",
            good_answer(other, "device1"),
        ),
        (
            "answer from a device the command was not for",
            "device2",
            Vec::new(),
        ),
        ("answer that is not JSON", "device1", b"{oops".to_vec()),
        ("answer of invalid UTF-8", "device1", vec![0xff, 0xfe]),
        (
            "answer larger than 64 KiB",
            "device1",
            vec![b' '; MAX_PAYLOAD + 1],
        ),
        (
            "text answer with no text command out",
            "device1",
            b"SUCCESS: done".to_vec(),
        ),
        (
            "answer of another envelope version",
            "device1",
            br#"{"v":9,"tid":"x"}"#.to_vec(),
        ),
    ];
    for (class, topic_device, payload) in cases {
        let (mut t, tid) = tracker_with_command();
        let payload = match class {
            "answer naming another device than its topic" => good_answer(tid, "device2"),
            "answer from a device the command was not for" => good_answer(tid, "device2"),
            _ => payload,
        };
        t.handle_response(&dev(topic_device), &payload, at(5));
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        let listed = events.iter().any(|e| match (class, e) {
            (
                "answer naming another device than its topic",
                TrackerEvent::Unmatched {
                    why: Unmatched::DeviceMismatch { claimed },
                    ..
                },
            ) => claimed == &dev("device2"),
            (
                "answer for a TID never issued",
                TrackerEvent::Unmatched {
                    why: Unmatched::UnknownTid(t),
                    ..
                },
            ) => *t == other,
            (
                "answer from a device the command was not for",
                TrackerEvent::Unmatched {
                    why: Unmatched::WrongDevice { tid: t, .. },
                    ..
                },
            ) => *t == tid,
            (
                "text answer with no text command out",
                TrackerEvent::Unmatched {
                    why: Unmatched::NoTextCommand,
                    ..
                },
            ) => true,
            (_, TrackerEvent::Malformed { error, .. }) => !error.to_string().is_empty(),
            _ => false,
        });
        assert!(listed, "{class}: listed as such: {events:?}");
        assert_eq!(
            t.get(&tid).unwrap().members[&dev("device1")].phase,
            Phase::Delivered,
            "{class}: reconciles nothing"
        );
        // The real answer, right after: the command ends at once.
        t.handle_response(&dev("device1"), &good_answer(tid, "device1"), at(6));
        assert_eq!(
            t.get(&tid).unwrap().members[&dev("device1")].phase,
            Phase::Succeeded,
            "{class}: the real answer still counts"
        );
    }
}

#[test]
fn garbage_on_status_telemetry_and_log_topics_is_an_error_and_presence_stands() {
    let (mut t, tid) = tracker_with_command();
    let online = br#"{"v":1,"device":"device1","online":true}"#;
    t.handle_status(&dev("device1"), online);
    // Retained garbage on the status topic: listed, and the last good presence stands.
    for junk in [&b"\x00\x01binary"[..], b"{\"v\":1,\"device\":7}", b"online"] {
        assert!(decode_status(junk).is_err(), "{junk:?}");
        t.handle_status(&dev("device1"), junk);
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TrackerEvent::Malformed { .. })),
            "{events:?}"
        );
        assert!(t.presence(&dev("device1")).is_some_and(|p| p.online));
    }
    // Binary junk on telemetry and logs: a clear error for the panel to list.
    for junk in [&b"\xde\xad\xbe\xef"[..], b"[1,2", b"{\"v\":1}"] {
        assert!(decode_telemetry(junk).is_err(), "{junk:?}");
        assert!(decode_log(junk).is_err(), "{junk:?}");
    }
    t.handle_response(&dev("device1"), &good_answer(tid, "device1"), at(6));
    assert_eq!(
        t.get(&tid).unwrap().members[&dev("device1")].phase,
        Phase::Succeeded
    );
}

#[test]
fn a_family_payload_that_says_what_its_family_does_not_is_an_error_naming_the_family() {
    use switchboard_protocol::family::shelly::Shelly;
    use switchboard_protocol::family::tasmota::Tasmota;
    use switchboard_protocol::family::zigbee2mqtt::Zigbee2mqtt;
    use switchboard_protocol::family::{Address, Role};
    let cases = [
        (
            Address::Tasmota(Tasmota::new("plug")),
            "stat/plug/RESULT",
            &br#"{"POWER":7}"#[..],
        ),
        (
            Address::Tasmota(Tasmota::new("plug")),
            "stat/plug/POWER",
            b"MAYBE",
        ),
        (
            Address::Tasmota(Tasmota::new("plug")),
            "tele/plug/LWT",
            b"\xff\xfe",
        ),
        (
            Address::Zigbee2mqtt(Zigbee2mqtt::new("bulb")),
            "zigbee2mqtt/bulb",
            br#"{"state":7}"#,
        ),
        (
            Address::Zigbee2mqtt(Zigbee2mqtt::new("bulb")),
            "zigbee2mqtt/bulb",
            b"[1,2",
        ),
        (
            Address::Shelly(Shelly::new("shellyplus1-1")),
            "shellyplus1-1/online",
            b"perhaps",
        ),
    ];
    for (address, topic, payload) in cases {
        let role = address
            .topics()
            .into_iter()
            .find(|(t, _)| t == topic)
            .map(|(_, r)| r)
            .unwrap_or(Role::State);
        let got = address.decode(topic, role, payload);
        let error = got.expect_err(&format!("{topic} {payload:?}"));
        assert!(!error.to_string().is_empty(), "{topic}: {error}");
    }
}
