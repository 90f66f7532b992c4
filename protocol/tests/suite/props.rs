//! Property tests: decoding arbitrary bytes never panics, and what is encoded decodes to itself.

use proptest::prelude::*;
use switchboard_protocol::command::{self, Command};
use switchboard_protocol::envelope::{
    decode_request, decode_response, decode_status, DeviceState, IncomingRequest, IncomingResponse,
    Outcome, Rejection, Request, Response, Tid, VERSION,
};
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig};
use switchboard_protocol::tracker::{CommandTracker, TrackerConfig};
use switchboard_protocol::{DeviceId, IssuerId, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
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
                    let _ = gate.finish(t, Ok(serde_json::Value::Null), &state, Timestamp::ZERO);
                }
            }
        }
        prop_assert!(executed.values().all(|n| *n == 1));
    }

    /// A snapshot brought forward by the gate's deltas is the gate's snapshot, whatever ran:
    /// executions, duplicates, stale and expired requests, text commands, sequence steps out of
    /// turn, commands left running, evictions past the window, a restart on the way; and every
    /// delta goes through JSON, as the device's journal writes it.
    #[test]
    fn deltas_applied_to_a_snapshot_give_the_gates_snapshot(
        ops in prop::collection::vec((0usize..16, 0usize..6, 0u64..40, 0u8..4), 1..120)
    ) {
        let mut rng = fastrand::Rng::with_seed(2);
        let tids: Vec<Tid> = (0..16).map(|_| Tid::random(&mut rng)).collect();
        let config = || {
            let mut c = GateConfig::new(DeviceId::new("d").unwrap());
            c.window = 3;
            c.max_remembered = 6;
            c.log_changes = true;
            c
        };
        let mut gate = DeviceGate::new(config());
        let mut saved = gate.snapshot();
        let state = DeviceState::default();
        let mut running = Vec::new();
        for (step, (i, cmd, at, what)) in ops.into_iter().enumerate() {
            let now = Timestamp::from_millis(at * 100);
            let cmds = ["get_state", "firmware_stage", "firmware_verify", "firmware_activate", "nope", "light"];
            let r = Request {
                v: VERSION, tid: tids[i], issuer: IssuerId::new(["a", "b"][i % 2]).unwrap(),
                seq: (i as u64) * 3 + at % 3, cmd: cmds[cmd].into(),
                args: serde_json::json!({"version": "2", "on": true}),
                issued_at: Timestamp::ZERO, ttl_ms: Some(1_000 + 200 * (i as u64 % 4)), group: None,
            };
            let admission = if what == 3 {
                gate.admit_text(b"light: on", Tid::random(&mut rng), now, &state)
            } else {
                gate.admit(&r, now, &state)
            };
            if let Admission::Execute(t) = admission {
                running.push(t);
            }
            if what == 1 && !running.is_empty() {
                let t = running.remove(step % running.len());
                let _ = gate.finish(t, Ok(serde_json::json!({"n": step})), &state, now);
            }
            if what == 2 && step % 7 == 0 {
                // A restart: the gate comes back from what was saved.
                running.clear();
                let delta = gate.take_delta().unwrap();
                saved.apply(serde_json::from_str(&serde_json::to_string(&delta).unwrap()).unwrap());
                let (g, _) = DeviceGate::restore(config(), saved.clone(), &state, now);
                gate = g;
            }
            let delta = gate.take_delta().unwrap();
            saved.apply(serde_json::from_str(&serde_json::to_string(&delta).unwrap()).unwrap());
            prop_assert_eq!(&saved, &gate.snapshot());
        }
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

mod mqtt {
    //! The MQTT session against arbitrary broker bytes, and what it encodes against a plain decoder.

    use super::config;
    use proptest::prelude::*;
    use switchboard_protocol::session::{
        ProtocolVersion, Publish, QoS, Session, SessionConfig, SessionEvent,
    };
    use switchboard_protocol::Timestamp;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A session on MQTT 3.1.1 that a broker has just accepted.
    fn connected() -> Session {
        let mut c = SessionConfig::new("prop");
        c.version = ProtocolVersion::V3_1_1;
        c.version_fallback = false;
        let mut s = Session::new(c, 7).unwrap();
        let t = Timestamp::ZERO;
        s.connect(t);
        s.handle_transport_open(t);
        while s.poll_transmit().is_some() {}
        s.handle_bytes(&[0x20, 0x02, 0x00, 0x00], t); // CONNACK, accepted, no session
        while s.poll_event().is_some() {}
        assert!(s.is_connected());
        s
    }

    fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            out.push(b);
            if n == 0 {
                break;
            }
        }
    }

    /// A broker's PUBLISH at QoS 0, encoded by hand from the MQTT 3.1.1 specification.
    fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(payload);
        let mut p = vec![0x30];
        remaining_length(body.len(), &mut p);
        p.extend(body);
        p
    }

    /// Splits a QoS 1 PUBLISH written by the session into (topic, packet id, payload).
    fn parse_publish(bytes: &[u8]) -> (String, u16, Vec<u8>) {
        assert_eq!(bytes[0] & 0xf0, 0x30, "a PUBLISH");
        assert_eq!((bytes[0] >> 1) & 0x03, 1, "QoS 1");
        let (mut len, mut mult, mut i) = (0usize, 1usize, 1);
        loop {
            len += (bytes[i] & 0x7f) as usize * mult;
            mult *= 128;
            i += 1;
            if bytes[i - 1] & 0x80 == 0 {
                break;
            }
        }
        let body = &bytes[i..i + len];
        let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
        let topic = String::from_utf8(body[2..2 + tl].to_vec()).unwrap();
        let pid = u16::from_be_bytes([body[2 + tl], body[3 + tl]]);
        (topic, pid, body[4 + tl..].to_vec())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_broker_bytes_never_panic_the_session(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..8)) {
            let mut s = connected();
            for (i, c) in chunks.iter().enumerate() {
                let now = Timestamp::from_millis(i as u64 * 10);
                s.handle_bytes(c, now);
                s.handle_timeout(now);
                while s.poll_transmit().is_some() {}
                while s.poll_event().is_some() {}
            }
        }

        #[test]
        fn published_messages_decode_to_what_was_published(topic in "[a-z0-9/]{1,40}", payload in prop::collection::vec(any::<u8>(), 0..2000)) {
            let mut s = connected();
            s.publish(Publish::new(topic.clone(), payload.clone(), QoS::AtLeastOnce), Timestamp::ZERO).unwrap();
            let bytes = s.poll_transmit().unwrap();
            let (t, pid, p) = parse_publish(&bytes);
            prop_assert_eq!(t, topic);
            prop_assert_eq!(p, payload);
            // The broker's PUBACK for that packet id completes it.
            s.handle_bytes(&[0x40, 0x02, (pid >> 8) as u8, pid as u8], Timestamp::ZERO);
            prop_assert!(std::iter::from_fn(|| s.poll_event()).any(|e| matches!(e, SessionEvent::Delivered(_))));
        }

        #[test]
        fn received_messages_arrive_intact_however_they_are_split(topic in "[a-z0-9/]{1,40}", payload in prop::collection::vec(any::<u8>(), 0..2000), split in any::<prop::sample::Index>()) {
            let mut s = connected();
            let packet = publish_packet(&topic, &payload);
            let at = split.index(packet.len());
            s.handle_bytes(&packet[..at], Timestamp::ZERO);
            s.handle_bytes(&packet[at..], Timestamp::ZERO);
            let got: Vec<_> = std::iter::from_fn(|| s.poll_event())
                .filter_map(|e| match e { SessionEvent::Message(m) => Some(m), _ => None })
                .collect();
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(&got[0].topic, &topic);
            prop_assert_eq!(&got[0].payload, &payload);
        }
    }
}
