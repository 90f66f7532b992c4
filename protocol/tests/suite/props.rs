//! Property tests: decoding arbitrary bytes never panics, and what is encoded decodes to itself.

use proptest::prelude::*;
use switchboard_protocol::command::{self, Command};
use switchboard_protocol::envelope::{
    decode_request, decode_response, decode_status, DeviceState, IncomingRequest,
    IncomingResponse, Outcome, Rejection, Request, Response, Tid, VERSION,
};
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig};
use switchboard_protocol::tracker::{CommandTracker, TrackerConfig};
use switchboard_protocol::{DeviceId, IssuerId, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(target_family = "wasm") { 128 } else { 512 },
        // No files in a browser; failures print their minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:@-]{1,40}"
}

fn tid() -> impl Strategy<Value = Tid> {
    any::<u64>().prop_map(|s| Tid::random(&mut fastrand::Rng::with_seed(s)))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn request() -> impl Strategy<Value = Request> {
    (
        tid(),
        id(),
        any::<u64>(),
        prop::sample::select(command::NAMES),
        json_value(),
        any::<u64>(),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(tid, issuer, seq, cmd, args, at, ttl)| Request {
            v: VERSION,
            tid,
            issuer: IssuerId::new(issuer).unwrap(),
            seq,
            cmd: cmd.to_owned(),
            // `null` arguments are left out on the wire and come back as null.
            args,
            issued_at: Timestamp::from_millis(at),
            ttl_ms: ttl,
            group: None,
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Succeeded),
        Just(Outcome::Failed),
        Just(Outcome::Interrupted),
        (any::<u64>(), any::<u64>()).prop_map(|(last_seq, got_seq)| Outcome::Rejected {
            reason: Rejection::OutOfOrder { last_seq, got_seq }
        }),
        (".{0,10}", proptest::option::of(".{0,10}"), ".{0,10}").prop_map(
            |(sequence, expected, got)| Outcome::Rejected {
                reason: Rejection::SequenceViolation {
                    sequence,
                    expected,
                    got
                }
            }
        ),
        ".{0,20}".prop_map(|detail| Outcome::Rejected {
            reason: Rejection::InvalidArguments { detail }
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = decode_status(&bytes);
        let _ = Command::parse_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_json_objects_never_panic_any_decoder(v in json_value(), cmd in ".{0,12}") {
        let bytes = serde_json::to_vec(&v).unwrap();
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = Command::from_parts(&cmd, &v);
    }

    #[test]
    fn requests_round_trip(r in request()) {
        match decode_request(&r.encode()) {
            Ok(IncomingRequest::Envelope(back)) => prop_assert_eq!(back, r),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn responses_round_trip(t in tid(), device in id(), outcome in outcome(), result in json_value(), error in proptest::option::of(".{0,30}")) {
        let mut r = Response::new(t, DeviceId::new(device).unwrap(), "light", outcome);
        r.result = result;
        r.error = error;
        r.state = Some(DeviceState::default());
        match decode_response(&r.encode()) {
            Ok(IncomingResponse::Envelope(back)) => prop_assert_eq!(back, r),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn commands_round_trip_through_their_parts(on in any::<bool>(), ms in command::MIN_TELEMETRY_MS..command::MAX_TELEMETRY_MS, lines in 1..=command::MAX_LOG_LINES) {
        for c in [Command::Light { on }, Command::SetTelemetryInterval { interval_ms: ms }, Command::GetLog { lines }] {
            prop_assert_eq!(Command::from_parts(c.name(), &c.args()), Ok(c.clone()));
        }
    }

    /// Whatever order, duplication and sequence numbers a device sees, it executes each TID at most
    /// once and executes an issuer's commands in increasing sequence order.
    #[test]
    fn the_gate_never_executes_twice_or_backwards(ops in prop::collection::vec((0usize..12, 0u64..20, any::<bool>()), 1..80)) {
        let mut rng = fastrand::Rng::with_seed(1);
        let tids: Vec<Tid> = (0..12).map(|_| Tid::random(&mut rng)).collect();
        let mut gate = DeviceGate::new(GateConfig::new(DeviceId::new("d").unwrap()));
        let mut executed = std::collections::HashMap::new();
        let mut last = None;
        let state = DeviceState::default();
        for (i, seq, finish) in ops {
            // A TID always carries the same sequence number, as a retransmission does.
            let r = Request {
                v: VERSION, tid: tids[i], issuer: IssuerId::new("a").unwrap(), seq: seq + i as u64 * 20,
                cmd: "get_state".into(), args: serde_json::Value::Null,
                issued_at: Timestamp::ZERO, ttl_ms: None, group: None,
            };
            if let Admission::Execute(t) = gate.admit(&r, Timestamp::ZERO, &state) {
                *executed.entry(r.tid).or_insert(0) += 1;
                prop_assert!(last < Some(r.seq), "{:?} then {}", last, r.seq);
                last = Some(r.seq);
                if finish {
                    let _ = gate.finish(t, Ok(serde_json::Value::Null), &state);
                }
            }
        }
        prop_assert!(executed.values().all(|n| *n == 1));
    }

    #[test]
    fn the_tracker_survives_any_response_payload(bytes in prop::collection::vec(any::<u8>(), 0..300), device in id()) {
        let mut t = CommandTracker::new(TrackerConfig::new(IssuerId::new("app").unwrap()), 1);
        let d = DeviceId::new(device).unwrap();
        t.handle_response(&d, &bytes, Timestamp::ZERO);
        t.handle_status(&d, &bytes);
        prop_assert_eq!(t.outstanding(), 0);
    }
}
