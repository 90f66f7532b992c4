//! Bad input on a real broker (docs/PROTOCOL.md, "Bad input"): a burst of bad requests, each
//! followed by a good command, published straight to a simulated device on mosquitto over
//! MQTT 5 and 3.1.1. Every bad one gets its clear answer (or, a message too large to take,
//! the one answer the protocol version allows), the device lists each in its log, stays
//! connected, and answers every good command in the time it would have anyway.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_protocol::envelope::{
    decode_response, IncomingResponse, Outcome, Rejection, Tid, MAX_PAYLOAD,
};
use switchboard_protocol::session::ProtocolVersion;

use crate::support::broker::{Broker, Kind};
use crate::support::{collect, fleet_options, publish_raw, specs, start_fleet};

/// What a bad request must be answered with.
#[derive(Debug)]
enum Expect {
    /// A JSON rejection with the request's TID, of this kind, whose detail names this.
    Rejected(&'static str, &'static str),
    /// The text form's failure (no TID could be read).
    Text,
    /// A message larger than the device takes: on 3.1.1 the device drops it unread and says so
    /// in the text form; on MQTT 5 the broker, told the limit, never delivers it.
    TooLarge,
}

fn request(tid: &Tid, seq: u64) -> serde_json::Value {
    json!({"v": 1, "tid": tid.to_string(), "issuer": "rough", "seq": seq, "cmd": "light",
        "args": {"on": true}, "issued_at": 0})
}

fn bad_requests(rng: &mut fastrand::Rng) -> Vec<(&'static str, Option<Tid>, Vec<u8>, Expect)> {
    let mut out = Vec::new();
    let mut json_case = |class, field: &str, value: serde_json::Value, expect| {
        let tid = Tid::random(rng);
        let mut r = request(&tid, 100 + out.len() as u64);
        r[field] = value;
        out.push((class, Some(tid), r.to_string().into_bytes(), expect));
    };
    json_case(
        "negative seq",
        "seq",
        json!(-1),
        Expect::Rejected("malformed", "`seq`"),
    );
    json_case(
        "issuer with /",
        "issuer",
        json!("a/b"),
        Expect::Rejected("malformed", "`issuer`"),
    );
    json_case(
        "group #",
        "group",
        json!("#"),
        Expect::Rejected("malformed", "`group`"),
    );
    json_case(
        "version 2",
        "v",
        json!(2),
        Expect::Rejected("malformed", "version 2"),
    );
    json_case(
        "unknown command",
        "cmd",
        json!("self_destruct"),
        Expect::Rejected("unknown_command", "self_destruct"),
    );
    json_case(
        "arguments of the wrong type",
        "args",
        json!({"on": "yes"}),
        Expect::Rejected("invalid_arguments", "argument `on`"),
    );
    out.push(("not JSON", None, b"{light".to_vec(), Expect::Text));
    out.push(("invalid UTF-8", None, vec![0xff, 0xfe, 0xfd], Expect::Text));
    out.push((
        "unknown text command",
        None,
        b"self destruct".to_vec(),
        Expect::Text,
    ));
    out.push((
        "larger than the device reads (64 KiB)",
        None,
        vec![b'x'; MAX_PAYLOAD + 1],
        Expect::Text,
    ));
    out.push((
        "larger than the device takes (1 MiB)",
        None,
        vec![b'x'; 1 << 20],
        Expect::TooLarge,
    ));
    out
}

fn kind(r: &Rejection) -> String {
    serde_json::to_value(r).unwrap()["kind"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn burst(version: ProtocolVersion) {
    let broker = Broker::start(Kind::Mosquitto).await;
    let mut options = fleet_options(&broker.url, None);
    options.version = version;
    let fleet = start_fleet(specs("rough", 1, &[], &Default::default()), options).await;
    let mut rng = fastrand::Rng::with_seed(11);
    let bad = bad_requests(&mut rng);
    // Each bad request followed by a good one.
    let mut messages = Vec::new();
    let mut good = Vec::new();
    for (i, (_, _, payload, _)) in bad.iter().enumerate() {
        messages.push(payload.clone());
        let tid = Tid::random(&mut rng);
        let mut r = request(&tid, 1_000 + i as u64);
        r["issuer"] = json!("operator");
        messages.push(r.to_string().into_bytes());
        good.push(tid);
    }
    // Last, the device's log.
    let log_tid = Tid::random(&mut rng);
    let mut r = request(&log_tid, 5_000);
    r["issuer"] = json!("operator");
    r["cmd"] = json!("get_log");
    r["args"] = json!({"lines": 50});
    messages.push(r.to_string().into_bytes());
    let url = broker.url.clone();
    let watch = tokio::spawn(async move {
        collect(
            &url,
            &["cmd/rough1/resp", "log/rough1", "status/rough1"],
            Duration::from_secs(6),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    let refs: Vec<(&str, &[u8])> = messages
        .iter()
        .map(|m| ("cmd/rough1/req", m.as_slice()))
        .collect();
    publish_raw(&broker.url, &refs).await;
    let answers = watch.await.unwrap();

    let mut envelopes = Vec::new();
    let mut texts = Vec::new();
    for (at, topic, payload) in &answers {
        if topic != "cmd/rough1/resp" {
            continue;
        }
        match decode_response(payload) {
            Ok(IncomingResponse::Envelope(r)) => envelopes.push((*at, r)),
            Ok(IncomingResponse::Text(t)) => texts.push(t.text),
            Err(e) => panic!("{version:?}: an answer that does not decode: {e}"),
        }
    }
    // Every good command answered, succeeded, soon.
    for tid in &good {
        let (at, r) = envelopes
            .iter()
            .find(|(_, r)| r.tid == *tid)
            .unwrap_or_else(|| panic!("{version:?}: good command {tid} answered"));
        assert_eq!(r.outcome, Outcome::Succeeded, "{version:?}: {r:?}");
        assert!(
            at.duration_since(sent) < Duration::from_secs(4),
            "{version:?}: answered {:?} after the burst was sent",
            at.duration_since(sent)
        );
    }
    // Every bad request answered as its class says.
    let mut text_expected = 0;
    for (class, tid, _, expect) in &bad {
        match (expect, tid) {
            (Expect::Rejected(k, names), Some(tid)) => {
                let (_, r) = envelopes
                    .iter()
                    .find(|(_, r)| r.tid == *tid)
                    .unwrap_or_else(|| panic!("{version:?}: {class}: answered with its TID"));
                let Outcome::Rejected { reason } = &r.outcome else {
                    panic!("{version:?}: {class}: {r:?}")
                };
                assert_eq!(kind(reason), *k, "{version:?}: {class}: {reason:?}");
                assert!(
                    r.error.as_deref().unwrap_or_default().contains(names),
                    "{version:?}: {class}: {:?} names {names}",
                    r.error
                );
            }
            (Expect::Text, _) => text_expected += 1,
            (Expect::TooLarge, _) if version == ProtocolVersion::V3_1_1 => text_expected += 1,
            (Expect::TooLarge, _) => {}
            (e, t) => unreachable!("{e:?} {t:?}"),
        }
    }
    assert_eq!(
        texts.len(),
        text_expected,
        "{version:?}: text failures {texts:?}"
    );
    assert!(texts.iter().all(|t| t.starts_with("FAILURE:")), "{texts:?}");
    assert!(
        texts.iter().all(|t| t.len() < 4 * MAX_PAYLOAD + 200),
        "no answer grows with what it refuses"
    );
    if version == ProtocolVersion::V3_1_1 {
        assert!(
            texts
                .iter()
                .any(|t| t.contains("1048") && t.contains("dropped unread")),
            "{texts:?}"
        );
    }
    // Listed in the device's own log, and it never lost its connection (its will, `online:
    // false`, would have been published).
    let log = answers
        .iter()
        .find(|(_, t, _)| t == "log/rough1")
        .expect("get_log publishes on log/<device>");
    let log: serde_json::Value = serde_json::from_slice(&log.2).unwrap();
    let lines: Vec<&str> = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    let malformed = lines
        .iter()
        .filter(|l| l.contains("malformed command"))
        .count();
    assert!(
        malformed >= 4,
        "{version:?}: the log lists them: {lines:#?}"
    );
    for (class, tid, _, expect) in &bad {
        if let (Expect::Rejected(..), Some(tid)) = (expect, tid) {
            assert!(
                lines.iter().any(|l| l.contains(&tid.to_string()))
                    || lines.iter().any(|l| l.contains("malformed command")),
                "{version:?}: {class} in the log"
            );
        }
    }
    if version == ProtocolVersion::V3_1_1 {
        assert!(
            lines.iter().any(|l| l.contains("dropped unread")),
            "{lines:#?}"
        );
    }
    let offline = answers
        .iter()
        .filter(|(_, t, p)| {
            t == "status/rough1" && String::from_utf8_lossy(p).contains("\"online\":false")
        })
        .count();
    assert_eq!(offline, 0, "{version:?}: the device stayed connected");
    fleet.stop(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_requests_costs_the_good_ones_nothing_over_mqtt_5() {
    burst(ProtocolVersion::V5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_requests_costs_the_good_ones_nothing_over_mqtt_3_1_1() {
    burst(ProtocolVersion::V3_1_1).await;
}
