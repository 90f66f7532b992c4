//! The device gate, one rule at a time.

use serde_json::json;
use switchboard_protocol::envelope::{DeviceState, Outcome, Rejection, Request, Tid, VERSION};
use switchboard_protocol::gate::{
    Admission, DeviceGate, GateConfig, Reply, Sequence, SequenceDef, SequenceState,
};
use switchboard_protocol::{DeviceId, IssuerId, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn gate() -> DeviceGate {
    let mut config = GateConfig::new(DeviceId::new("device1").unwrap());
    config
        .sequences
        .push(SequenceDef::new("abc", ["a", "b", "c"]));
    DeviceGate::new(config)
}

fn req(rng: &mut fastrand::Rng, seq: u64, cmd: &str, args: serde_json::Value) -> Request {
    Request {
        v: VERSION,
        tid: Tid::random(rng),
        issuer: IssuerId::new("app").unwrap(),
        seq,
        cmd: cmd.into(),
        args,
        issued_at: Timestamp::from_millis(1000),
        ttl_ms: Some(10_000),
        group: None,
    }
}

fn now() -> Timestamp {
    Timestamp::from_millis(2000)
}

fn rejection(a: Admission) -> Rejection {
    match a {
        Admission::Reject(Reply::Envelope(r)) => match r.outcome {
            Outcome::Rejected { reason } => {
                assert!(r.state.is_some(), "a rejection carries the current state");
                reason
            }
            o => panic!("not rejected: {o:?}"),
        },
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn run(g: &mut DeviceGate, r: &Request) -> Reply {
    match g.admit(r, now(), &DeviceState::default()) {
        Admission::Execute(t) => g.finish(t, Ok(json!(null)), &DeviceState::default(), now()),
        other => panic!("expected execute, got {other:?}"),
    }
}

#[test]
fn duplicate_of_a_finished_command_replays_the_same_answer() {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut g = gate();
    let r = req(&mut rng, 1, "light", json!({"on": true}));
    let first = run(&mut g, &r);
    match g.admit(&r, now(), &DeviceState::default()) {
        Admission::Replay(again) => assert_eq!(again, first),
        other => panic!("{other:?}"),
    }
}

#[test]
fn duplicate_of_a_running_command_is_in_progress() {
    let mut rng = fastrand::Rng::with_seed(2);
    let mut g = gate();
    let r = req(&mut rng, 1, "restart", json!(null));
    let Admission::Execute(ticket) = g.admit(&r, now(), &DeviceState::default()) else {
        panic!("first delivery executes");
    };
    assert!(matches!(
        g.admit(&r, now(), &DeviceState::default()),
        Admission::InProgress { tid } if tid == r.tid
    ));
    assert_eq!(g.journal().len(), 1);
    let _ = g.finish(ticket, Ok(json!(null)), &DeviceState::default(), now());
    assert!(g.journal().is_empty());
}

#[test]
fn stale_sequence_number_is_out_of_order() {
    let mut rng = fastrand::Rng::with_seed(3);
    let mut g = gate();
    run(&mut g, &req(&mut rng, 5, "led", json!({"on": true})));
    let reason = rejection(g.admit(
        &req(&mut rng, 4, "led", json!({"on": false})),
        now(),
        &DeviceState::default(),
    ));
    assert_eq!(
        reason,
        Rejection::OutOfOrder {
            last_seq: 5,
            got_seq: 4
        }
    );
    // Another issuer has its own numbering.
    let mut other = req(&mut rng, 1, "led", json!({"on": false}));
    other.issuer = IssuerId::new("other").unwrap();
    run(&mut g, &other);
}

#[test]
fn expired_command_is_not_run() {
    let mut rng = fastrand::Rng::with_seed(4);
    let mut g = gate();
    let r = req(&mut rng, 1, "light", json!({"on": true}));
    let late = Timestamp::from_millis(11_001);
    match g.admit(&r, late, &DeviceState::default()) {
        Admission::Reject(Reply::Envelope(resp)) => assert_eq!(
            resp.outcome,
            Outcome::Rejected {
                reason: Rejection::Expired {
                    expired_at: Timestamp::from_millis(11_000)
                }
            }
        ),
        other => panic!("{other:?}"),
    }
    // The rejection is remembered: a retransmission gets it again, even if its clock looks fine.
    assert!(matches!(
        g.admit(&r, now(), &DeviceState::default()),
        Admission::Replay(_)
    ));
}

#[test]
fn unknown_commands_and_bad_arguments_are_rejected_with_types() {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut g = gate();
    let reason = rejection(g.admit(
        &req(&mut rng, 1, "fly", json!(null)),
        now(),
        &DeviceState::default(),
    ));
    assert!(matches!(reason, Rejection::UnknownCommand { command } if command == "fly"));
    let reason = rejection(g.admit(
        &req(&mut rng, 2, "light", json!({"on": 3})),
        now(),
        &DeviceState::default(),
    ));
    assert!(matches!(reason, Rejection::InvalidArguments { .. }));
}

#[test]
fn a_then_c_is_a_sequence_violation_naming_b() {
    let mut abc = Sequence::new(SequenceDef::new("abc", ["a", "b", "c"]));
    assert_eq!(abc.expected().as_deref(), Some("a"));
    assert!(abc.start(1).is_err(), "b cannot open the sequence");
    abc.start(0).unwrap();
    abc.finish(true);
    assert_eq!(abc.state(), SequenceState::Done(0));
    assert_eq!(
        abc.start(2),
        Err(Rejection::SequenceViolation {
            sequence: "abc".into(),
            expected: Some("b".into()),
            got: "c".into()
        })
    );
    abc.start(1).unwrap();
    assert_eq!(abc.expected(), None, "nothing may run while b runs");
    abc.finish(true);
    abc.start(2).unwrap();
    abc.finish(true);
    assert_eq!(abc.state(), SequenceState::Idle, "c completes the sequence");
    // The gate applies the same machine to the firmware sequence.
    let mut rng = fastrand::Rng::with_seed(6);
    let mut g = gate();
    let reason = rejection(g.admit(
        &req(&mut rng, 2, "firmware_activate", json!(null)),
        now(),
        &DeviceState::default(),
    ));
    assert_eq!(
        reason,
        Rejection::SequenceViolation {
            sequence: "firmware".into(),
            expected: Some("firmware_stage".into()),
            got: "firmware_activate".into()
        }
    );
}

#[test]
fn firmware_sequence_runs_in_order_and_reports_its_position() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut g = gate();
    run(
        &mut g,
        &req(&mut rng, 1, "firmware_stage", json!({"version": "2.0"})),
    );
    let pos = &g.sequence_positions()["firmware"];
    assert_eq!(pos.done.as_deref(), Some("firmware_stage"));
    assert_eq!(pos.next.as_deref(), Some("firmware_verify"));
    // stage -> activate skips verify: rejected, and the state in the answer says where it stands.
    match g.admit(
        &req(&mut rng, 2, "firmware_activate", json!(null)),
        now(),
        &DeviceState::default(),
    ) {
        Admission::Reject(Reply::Envelope(r)) => {
            assert!(r.error.unwrap().contains("expected step firmware_verify"));
            let st = r.state.unwrap();
            assert_eq!(
                st.sequences["firmware"].next.as_deref(),
                Some("firmware_verify")
            );
        }
        other => panic!("{other:?}"),
    }
    run(&mut g, &req(&mut rng, 3, "firmware_verify", json!(null)));
    run(&mut g, &req(&mut rng, 4, "firmware_activate", json!(null)));
    assert_eq!(
        g.sequence_positions()["firmware"].done,
        None,
        "back to idle"
    );
}

#[test]
fn a_failed_step_does_not_advance_the_sequence() {
    let mut rng = fastrand::Rng::with_seed(8);
    let mut g = gate();
    run(
        &mut g,
        &req(&mut rng, 1, "firmware_stage", json!({"version": "2.0"})),
    );
    let Admission::Execute(t) = g.admit(
        &req(&mut rng, 2, "firmware_verify", json!(null)),
        now(),
        &DeviceState::default(),
    ) else {
        panic!()
    };
    // While verify runs, no other step may start.
    let reason = rejection(g.admit(
        &req(&mut rng, 3, "firmware_stage", json!({"version": "3.0"})),
        now(),
        &DeviceState::default(),
    ));
    assert!(matches!(
        reason,
        Rejection::SequenceViolation { expected: None, .. }
    ));
    let reply = g.finish(
        t,
        Err("checksum mismatch".into()),
        &DeviceState::default(),
        now(),
    );
    let Reply::Envelope(r) = reply else { panic!() };
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.error.as_deref(), Some("checksum mismatch"));
    assert_eq!(
        g.sequence_positions()["firmware"].next.as_deref(),
        Some("firmware_verify")
    );
}

#[test]
fn restart_mid_command_reports_interrupted_and_never_reruns_it() {
    let mut rng = fastrand::Rng::with_seed(9);
    let mut g = gate();
    let r = req(&mut rng, 1, "firmware_stage", json!({"version": "2.0"}));
    let Admission::Execute(_lost) = g.admit(&r, now(), &DeviceState::default()) else {
        panic!()
    };
    let text_tid = Tid::random(&mut rng);
    let Admission::Execute(_lost_text) =
        g.admit_text(b"light: on", text_tid, now(), &DeviceState::default())
    else {
        panic!()
    };
    // The device persists its snapshot (here: through JSON, as a file would) and dies.
    let stored = serde_json::to_string(&g.snapshot()).unwrap();
    let mut config = GateConfig::new(DeviceId::new("device1").unwrap());
    config
        .sequences
        .push(SequenceDef::new("abc", ["a", "b", "c"]));
    let (mut g, replies) = DeviceGate::restore(
        config,
        serde_json::from_str(&stored).unwrap(),
        &DeviceState::default(),
        now(),
    );
    assert_eq!(replies.len(), 2);
    match &replies[0] {
        Reply::Envelope(resp) => {
            assert_eq!(resp.tid, r.tid);
            assert_eq!(resp.outcome, Outcome::Interrupted);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        replies[1],
        Reply::Text("FAILURE: command did not run successfully from payload: b'light: on'".into())
    );
    assert!(g.journal().is_empty());
    assert_eq!(
        g.sequence_positions()["firmware"].done,
        None,
        "stage unwound"
    );
    match g.admit(&r, now(), &DeviceState::default()) {
        Admission::Replay(Reply::Envelope(resp)) => assert_eq!(resp.outcome, Outcome::Interrupted),
        other => panic!("a retransmission must not re-run it: {other:?}"),
    }
}

#[test]
fn text_commands_answer_in_the_documents_form() {
    let mut rng = fastrand::Rng::with_seed(10);
    let mut g = gate();
    let Admission::Execute(t) = g.admit_text(
        b"light: on",
        Tid::random(&mut rng),
        now(),
        &DeviceState::default(),
    ) else {
        panic!()
    };
    assert!(t.is_text());
    let reply = g.finish(t, Ok(json!(null)), &DeviceState::default(), now());
    assert_eq!(
        reply.encode(),
        b"SUCCESS: command ran successfully from payload: b'light: on'".to_vec()
    );
    match g.admit_text(
        b"open the pod bay doors",
        Tid::random(&mut rng),
        now(),
        &DeviceState::default(),
    ) {
        Admission::Reject(Reply::Text(t)) => assert!(t.starts_with("FAILURE:"), "{t}"),
        other => panic!("{other:?}"),
    }
}

fn remembered(g: &DeviceGate) -> usize {
    serde_json::to_value(g.snapshot()).unwrap()["recent"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn tids_are_remembered_while_retransmissions_may_come_and_no_longer() {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut config = GateConfig::new(DeviceId::new("d").unwrap());
    config.window = 4;
    config.max_remembered = 8;
    let mut g = DeviceGate::new(config);
    let reqs: Vec<_> = (1..=6)
        .map(|s| req(&mut rng, s, "get_state", json!(null)))
        .collect();
    for r in &reqs {
        run(&mut g, r);
    }
    // All six are still live (ttl 10 s): beyond the window of 4, each is kept and replayed.
    assert_eq!(remembered(&g), 6);
    assert!(matches!(
        g.admit(&reqs[0], now(), &DeviceState::default()),
        Admission::Replay(_)
    ));
    // The hard cap holds whatever the expiry.
    for s in 7..=12 {
        run(&mut g, &req(&mut rng, s, "get_state", json!(null)));
    }
    assert_eq!(remembered(&g), 8);
    // Once they have expired, the window applies again.
    let mut late = req(&mut rng, 13, "get_state", json!(null));
    late.issued_at = Timestamp::from_millis(50_000);
    let after = Timestamp::from_millis(50_001);
    let Admission::Execute(t) = g.admit(&late, after, &DeviceState::default()) else {
        panic!()
    };
    let _ = g.finish(t, Ok(json!(null)), &DeviceState::default(), after);
    assert_eq!(remembered(&g), 4);
    // A forgotten one is kept from running again by its stale sequence number.
    let reason = rejection(g.admit(&reqs[0], now(), &DeviceState::default()));
    assert!(matches!(reason, Rejection::OutOfOrder { .. }));
}

#[test]
fn a_tid_replayed_with_another_command_is_a_conflict_and_the_first_answer_stays() {
    let mut rng = fastrand::Rng::with_seed(41);
    let mut g = gate();
    let first = req(&mut rng, 1, "light", json!({"on": true}));
    let answer = run(&mut g, &first);
    let mut other = req(&mut rng, 2, "led", json!({"on": true}));
    other.tid = first.tid;
    let refused = g.admit(&other, now(), &DeviceState::default());
    let Admission::Reject(Reply::Envelope(r)) = &refused else {
        panic!("expected a rejection, got {refused:?}");
    };
    assert_eq!(r.tid, first.tid, "the refusal carries the TID");
    assert_eq!(
        rejection(refused),
        Rejection::TidConflict {
            command: "light".into()
        }
    );
    // The same arguments under another sequence number are another request too.
    let mut same_cmd = first.clone();
    same_cmd.seq = 9;
    assert!(matches!(
        rejection(g.admit(&same_cmd, now(), &DeviceState::default())),
        Rejection::TidConflict { .. }
    ));
    // The first command's retransmission still gets the first answer.
    match g.admit(&first, now(), &DeviceState::default()) {
        Admission::Replay(again) => assert_eq!(again, answer),
        other => panic!("expected the replay, got {other:?}"),
    }
}

#[test]
fn a_tid_reused_while_its_command_runs_is_a_conflict() {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut g = gate();
    let first = req(&mut rng, 1, "light", json!({"on": true}));
    let Admission::Execute(ticket) = g.admit(&first, now(), &DeviceState::default()) else {
        panic!("runs");
    };
    let mut other = req(&mut rng, 2, "light", json!({"on": false}));
    other.tid = first.tid;
    assert!(matches!(
        rejection(g.admit(&other, now(), &DeviceState::default())),
        Rejection::TidConflict { .. }
    ));
    assert!(matches!(
        g.admit(&first, now(), &DeviceState::default()),
        Admission::InProgress { .. }
    ));
    let _ = g.finish(ticket, Ok(json!({})), &DeviceState::default(), now());
}

#[test]
fn a_request_with_a_readable_tid_and_a_bad_field_is_refused_as_malformed_with_its_tid() {
    use switchboard_protocol::envelope::decode_request;
    let g = gate();
    let tid = Tid::random(&mut fastrand::Rng::with_seed(43));
    let bad_fields = [
        ("seq", json!(-1)),
        ("ttl_ms", json!(-5)),
        ("issuer", json!("a/b")),
        ("group", json!("#")),
        ("v", json!("1")),
        ("seq", json!("one")),
        ("issued_at", json!({"at": 0})),
    ];
    for (field, value) in bad_fields {
        let mut v = json!({"v": 1, "tid": tid.to_string(), "issuer": "app", "seq": 1,
            "cmd": "light", "args": {"on": true}, "issued_at": 0});
        v[field] = value;
        let payload = v.to_string();
        let error = decode_request(payload.as_bytes()).expect_err(&payload);
        let Some(Reply::Envelope(r)) =
            g.refuse_malformed(payload.as_bytes(), &error, &DeviceState::default())
        else {
            panic!("{payload}: no envelope refusal");
        };
        assert_eq!(r.tid, tid, "{payload}");
        assert_eq!(r.cmd, "light");
        let Outcome::Rejected {
            reason: Rejection::Malformed { detail },
        } = &r.outcome
        else {
            panic!("{payload}: {r:?}");
        };
        assert!(
            detail.contains(&format!("`{field}`")),
            "names {field}: {detail}"
        );
    }
    // No TID to read: no envelope (the device answers in the text form).
    for payload in [&b"{not json"[..], br#"{"v":1,"tid":"nope"}"#, b"light: on"] {
        let error = decode_request(payload).err();
        if let Some(error) = error {
            assert!(g
                .refuse_malformed(payload, &error, &DeviceState::default())
                .is_none());
        }
    }
}
