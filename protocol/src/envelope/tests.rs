//! The envelope's tests: round trips, size limits, versions, the document's text form.

use super::*;
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn sample_request() -> Request {
    Request {
        v: VERSION,
        tid: Tid::random(&mut fastrand::Rng::with_seed(1)),
        issuer: IssuerId::new("panel-1").expect("valid"),
        seq: 7,
        cmd: "light".into(),
        args: serde_json::json!({"on": true}),
        issued_at: Timestamp::from_millis(1_700_000_000_000),
        ttl_ms: Some(30_000),
        group: None,
    }
}

#[test]
fn telemetry_and_log_round_trip_and_bad_ones_are_errors() {
    let t = Telemetry {
        v: VERSION,
        device: DeviceId::new("d1").expect("valid"),
        seq: 3,
        at: Timestamp::from_millis(5),
        interval_ms: 400,
        light: true,
        temperature: 21.5,
    };
    let bytes = serde_json::to_vec(&t).expect("encodes");
    assert_eq!(decode_telemetry(&bytes), Ok(t));
    let l = LogLines {
        v: VERSION,
        device: DeviceId::new("d1").expect("valid"),
        lines: vec!["boot".into(), "light on".into()],
    };
    let bytes = serde_json::to_vec(&l).expect("encodes");
    assert_eq!(decode_log(&bytes), Ok(l));
    assert!(decode_telemetry(br#"{"v":1,"device":"d1"}"#).is_err());
    assert!(decode_log(b"not json").is_err());
    assert!(decode_log(&vec![b' '; MAX_PAYLOAD + 1]).is_err());
}

#[test]
fn request_round_trips() {
    let r = sample_request();
    match decode_request(&r.encode()) {
        Ok(IncomingRequest::Envelope(back)) => assert_eq!(back, r),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.expires_at(),
        Some(Timestamp::from_millis(1_700_000_030_000))
    );
}

#[test]
fn response_round_trips_with_rejection() {
    let mut resp = Response::new(
        sample_request().tid,
        DeviceId::new("device1").expect("valid"),
        "firmware_activate",
        Outcome::Rejected {
            reason: Rejection::SequenceViolation {
                sequence: "firmware".into(),
                expected: Some("firmware_verify".into()),
                got: "firmware_activate".into(),
            },
        },
    );
    resp.state = Some(DeviceState::default());
    let bytes = resp.encode();
    let text = String::from_utf8(bytes.clone()).expect("utf8");
    assert!(text.contains(r#""outcome":"rejected""#), "{text}");
    assert!(text.contains(r#""kind":"sequence_violation""#), "{text}");
    match decode_response(&bytes) {
        Ok(IncomingResponse::Envelope(back)) => assert_eq!(back, resp),
        other => panic!("{other:?}"),
    }
    assert!(resp
        .error
        .as_deref()
        .is_some_and(|e| e.contains("expected step firmware_verify")));
}

#[test]
fn text_is_text_and_json_must_be_valid() {
    assert_eq!(
        decode_request(b"light: on"),
        Ok(IncomingRequest::Text(b"light: on".to_vec()))
    );
    assert!(matches!(
        decode_request(b"  {\"v\":1"),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        decode_request(br#"{"v":2,"tid":"x"}"#),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    ));
    assert!(matches!(
        decode_request(br#"{"tid":"x"}"#),
        Err(DecodeError::Malformed { .. })
    ));
    assert_eq!(decode_request(b"  \n"), Err(DecodeError::Empty));
    let big = vec![b'a'; MAX_PAYLOAD + 1];
    assert!(matches!(
        decode_request(&big),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn a_whole_envelope_of_another_version_is_reported_as_such() {
    let mut r = sample_request();
    r.v = 2;
    assert_eq!(
        decode_request(&r.encode()),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    );
    assert_eq!(
        decode_request(br#"{"v":300,"tid":"x"}"#),
        Err(DecodeError::UnsupportedVersion { version: 300 })
    );
    assert!(matches!(
        decode_request(br#"{"v":"1","tid":"x"}"#),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn bad_ids_inside_envelopes_are_rejected() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&sample_request().encode()).expect("json");
    v["issuer"] = "a/b".into();
    let bytes = serde_json::to_vec(&v).expect("json");
    let err = decode_request(&bytes).unwrap_err();
    assert!(err.to_string().contains("a/b"), "{err}");
}

#[test]
fn text_answers_match_the_document() {
    assert_eq!(
        text_response(true, b"light: on"),
        "SUCCESS: command ran successfully from payload: b'light: on'"
    );
    assert_eq!(
        text_response(false, b"x"),
        "FAILURE: command did not run successfully from payload: b'x'"
    );
    match decode_response(text_response(true, b"light: on").as_bytes()) {
        Ok(IncomingResponse::Text(t)) => assert!(t.success),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_response(b"hello"),
        Err(DecodeError::UnrecognisedText { .. })
    ));
}

#[test]
fn python_repr_escapes_like_cpython() {
    assert_eq!(python_bytes_repr(b"it's"), "b\"it's\"");
    assert_eq!(python_bytes_repr(b"a'\"b"), "b'a\\'\"b'");
    assert_eq!(python_bytes_repr(b"\t\n\r\\"), "b'\\t\\n\\r\\\\'");
    assert_eq!(python_bytes_repr(&[0, 0x7f, 0xff]), "b'\\x00\\x7f\\xff'");
    assert_eq!(python_bytes_repr(b""), "b''");
}

#[test]
fn rejection_kinds_match_the_wire() {
    let all = [
        Rejection::OutOfOrder {
            last_seq: 2,
            got_seq: 1,
        },
        Rejection::SequenceViolation {
            sequence: "s".into(),
            expected: None,
            got: "b".into(),
        },
        Rejection::Expired {
            expired_at: Timestamp::ZERO,
        },
        Rejection::UnknownCommand {
            command: "x".into(),
        },
        Rejection::InvalidArguments { detail: "d".into() },
        Rejection::Malformed { detail: "d".into() },
    ];
    for r in all {
        let wire = serde_json::to_value(&r).expect("json");
        assert_eq!(wire["kind"], r.kind());
    }
}

#[test]
fn tid_bytes_round_trip() {
    let tid = Tid::random(&mut fastrand::Rng::with_seed(9));
    assert_eq!(Tid::from_slice(tid.as_bytes()), Some(tid));
    assert_eq!(Tid::parse(&tid.to_string()), Some(tid));
    assert_ne!(tid, Tid::random(&mut fastrand::Rng::with_seed(10)));
}
