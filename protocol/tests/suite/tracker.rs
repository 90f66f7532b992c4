//! The command tracker, one rule at a time.

use core::time::Duration;

use switchboard_protocol::envelope::{
    decode_request, DeviceState, IncomingRequest, Outcome, Rejection, Response, Status,
};
use switchboard_protocol::tracker::{
    CommandTracker, Phase, Presence, SendOptions, Target, TrackerConfig, TrackerEvent, Unmatched,
};
use switchboard_protocol::{Command, DeviceId, GroupId, IssuerId, Tid, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn tracker() -> CommandTracker {
    let mut c = TrackerConfig::new(IssuerId::new("app").unwrap());
    c.deadline = Duration::from_secs(10);
    CommandTracker::new(c, 42)
}

fn answer(tid: Tid, device: &str, outcome: Outcome) -> Vec<u8> {
    let mut r = Response::new(tid, dev(device), "light", outcome);
    r.state = Some(DeviceState::default());
    r.encode()
}

fn events(t: &mut CommandTracker) -> Vec<TrackerEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

/// Sends everything queued, as a session that the broker acknowledges at once would.
fn pump(t: &mut CommandTracker, now: Timestamp) -> Vec<switchboard_protocol::tracker::Outgoing> {
    let mut out = Vec::new();
    while let Some(o) = t.poll_transmit() {
        t.handle_sent(o.tid, now);
        t.handle_delivered(o.tid);
        out.push(o);
    }
    out
}

#[test]
fn a_command_goes_sent_delivered_succeeded() {
    let mut t = tracker();
    let tid = t.submit(
        Target::Device(dev("device1")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(0),
    );
    assert_eq!(
        t.get(&tid).unwrap().members[&dev("device1")].phase,
        Phase::Queued
    );
    let o = t.poll_transmit().unwrap();
    assert_eq!(o.topic, "cmd/device1/req");
    assert_eq!(o.response_topic.as_deref(), Some("cmd/device1/resp"));
    assert_eq!(o.correlation_data.as_deref(), Some(&tid.as_bytes()[..]));
    let Ok(IncomingRequest::Envelope(req)) = decode_request(&o.payload) else {
        panic!()
    };
    assert_eq!((req.tid, req.seq, req.cmd.as_str()), (tid, 1, "light"));
    assert_eq!(req.ttl_ms, Some(10_000));
    t.handle_sent(tid, at(0));
    t.handle_delivered(tid);
    t.handle_response(
        &dev("device1"),
        &answer(tid, "device1", Outcome::Succeeded),
        at(35),
    );
    let ev = events(&mut t);
    let phases: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            TrackerEvent::Member { phase, .. } => Some(phase.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(phases, [Phase::Sent, Phase::Delivered, Phase::Succeeded]);
    assert!(matches!(ev.last(), Some(TrackerEvent::Finished { tid: x, .. }) if *x == tid));
    assert_eq!(
        t.get(&tid).unwrap().round_trip(),
        Some(Duration::from_millis(35))
    );
    assert_eq!(t.outstanding(), 0);
    assert_eq!(t.poll_timeout(), None, "nothing left to wake up for");
}

#[test]
fn silence_means_retransmissions_with_the_same_tid_then_a_connectivity_error() {
    for (presence, expected) in [
        (Some(true), Some(true)),
        (Some(false), Some(false)),
        (None, None),
    ] {
        let mut t = tracker();
        if let Some(online) = presence {
            t.set_presence(
                dev("d1"),
                Presence {
                    online,
                    groups: vec![],
                },
            );
        }
        let tid = t.submit(
            Target::Device(dev("d1")),
            &Command::GetState,
            SendOptions::default(),
            at(0),
        );
        let mut sends = pump(&mut t, at(0));
        let mut last = at(0);
        while let Some(due) = t.poll_timeout() {
            assert!(due >= last);
            t.handle_timeout(due);
            let more = pump(&mut t, due);
            for o in &more {
                let gap = due.saturating_since(last);
                // Full jitter: never longer than the capped ceiling.
                assert!(gap <= Duration::from_secs(8), "{gap:?}");
                assert!(o.retransmission);
                assert_eq!(o.tid, tid);
            }
            if !more.is_empty() {
                last = due;
            }
            sends.extend(more);
        }
        assert!(
            sends.len() >= 3,
            "retransmitted until the deadline: {}",
            sends.len()
        );
        assert!(last < at(10_000));
        assert_eq!(
            t.get(&tid).unwrap().members[&dev("d1")].phase,
            Phase::TimedOut {
                device_online: expected
            }
        );
    }
}

#[test]
fn retransmission_delays_grow() {
    // Averaged over many trackers, the n-th gap grows with n (exponential backoff).
    let mut sums = [0u64; 4];
    for seed in 0..200 {
        let mut c = TrackerConfig::new(IssuerId::new("app").unwrap());
        c.deadline = Duration::from_secs(60);
        let mut t = CommandTracker::new(c, seed);
        t.submit(
            Target::Device(dev("d1")),
            &Command::GetState,
            SendOptions::default(),
            at(0),
        );
        pump(&mut t, at(0));
        let mut last = at(0);
        for slot in &mut sums {
            let due = t.poll_timeout().unwrap();
            t.handle_timeout(due);
            pump(&mut t, due);
            *slot += due.saturating_since(last).as_millis() as u64;
            last = due;
        }
    }
    assert!(sums.windows(2).all(|w| w[0] < w[1]), "{sums:?}");
}

#[test]
fn never_acknowledged_by_the_broker_is_expired() {
    let mut t = tracker();
    let tid = t.submit(
        Target::Device(dev("d1")),
        &Command::GetState,
        SendOptions::default(),
        at(0),
    );
    let o = t.poll_transmit().unwrap();
    t.handle_send_failed(o.tid, "offline queue full", at(0));
    assert!(matches!(
        events(&mut t).last(),
        Some(TrackerEvent::SendFailed { .. })
    ));
    t.handle_timeout(at(10_000));
    assert_eq!(
        t.get(&tid).unwrap().members[&dev("d1")].phase,
        Phase::Expired
    );
}

#[test]
fn refused_by_the_broker_ends_at_once_and_is_never_sent_again() {
    let mut t = tracker();
    let tid = t.submit(
        Target::Device(dev("d1")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(0),
    );
    let o = t.poll_transmit().unwrap();
    t.handle_sent(o.tid, at(0));
    t.handle_refused(o.tid, "not authorized (0x87)", at(3));
    let tracked = t.get(&tid).unwrap();
    assert_eq!(
        tracked.members[&dev("d1")].phase,
        Phase::Refused {
            reason: "not authorized (0x87)".into()
        }
    );
    assert!(tracked.is_finished());
    assert_eq!(tracked.progress.rejected, 1);
    assert!(events(&mut t)
        .iter()
        .any(|e| matches!(e, TrackerEvent::Finished { tid: f, .. } if *f == tid)));
    // Nothing is retransmitted, and the deadline has nothing left to do.
    t.handle_timeout(at(60_000));
    assert!(t.poll_transmit().is_none());
    assert!(matches!(
        t.get(&tid).unwrap().members[&dev("d1")].phase,
        Phase::Refused { .. }
    ));
}

fn status(device: &str, online: bool, groups: &[&str]) -> Vec<u8> {
    let mut s = Status::offline(dev(device));
    s.online = online;
    s.groups = groups.iter().map(|g| GroupId::new(*g).unwrap()).collect();
    s.encode()
}

#[test]
fn fan_out_reconciles_each_member_and_retries_only_stragglers() {
    let mut t = tracker();
    for i in 1..=5 {
        let name = format!("d{i}");
        t.handle_status(&dev(&name), &status(&name, true, &["floor1"]));
    }
    t.handle_status(&dev("other"), &status("other", true, &["floor2"]));
    let tid = t.submit(
        Target::Group(GroupId::new("floor1").unwrap()),
        &Command::Light { on: true },
        SendOptions::default(),
        at(0),
    );
    let first = pump(&mut t, at(0));
    assert_eq!(first.len(), 1, "one publish for the whole group");
    assert_eq!(first[0].topic, "cmd/group/floor1/req");
    for d in ["d1", "d2", "d3"] {
        t.handle_response(&dev(d), &answer(tid, d, Outcome::Succeeded), at(10));
    }
    let p = t.get(&tid).unwrap().progress;
    assert_eq!((p.expected, p.succeeded, p.pending), (5, 3, 2));
    // Stragglers are retransmitted to once answers have paused for the quiet period (the backoff
    // base while nothing is measured better).
    let (due, retries) = loop {
        let due = t.poll_timeout().unwrap();
        t.handle_timeout(due);
        let retries = pump(&mut t, due);
        if !retries.is_empty() {
            break (due, retries);
        }
    };
    assert!(
        due >= at(10 + 500),
        "retransmitted at {due} while answers were arriving"
    );
    let mut topics: Vec<_> = retries.iter().map(|o| o.topic.as_str()).collect();
    topics.sort();
    assert_eq!(topics, ["cmd/d4/req", "cmd/d5/req"]);
    t.handle_response(&dev("d4"), &answer(tid, "d4", Outcome::Failed), due);
    let rejected = Outcome::Rejected {
        reason: Rejection::UnknownCommand {
            command: "light".into(),
        },
    };
    t.handle_response(&dev("d5"), &answer(tid, "d5", rejected), due);
    let p = t.get(&tid).unwrap().progress;
    assert_eq!((p.succeeded, p.failed, p.rejected, p.pending), (3, 1, 1, 0));
    assert!(events(&mut t)
        .iter()
        .any(|e| matches!(e, TrackerEvent::Finished { tid: x, .. } if *x == tid)));
}

#[test]
fn stragglers_can_be_retried_after_the_deadline() {
    let mut t = tracker();
    for d in ["d1", "d2"] {
        t.handle_status(&dev(d), &status(d, false, &["g"]));
    }
    let tid = t.submit(
        Target::Group(GroupId::new("g").unwrap()),
        &Command::GetState,
        SendOptions::default(),
        at(0),
    );
    pump(&mut t, at(0));
    t.handle_response(&dev("d1"), &answer(tid, "d1", Outcome::Succeeded), at(5));
    t.handle_timeout(at(10_000));
    assert_eq!(t.get(&tid).unwrap().progress.timed_out, 1);
    assert_eq!(
        t.retry_stragglers(tid, Duration::from_secs(5), at(11_000)),
        1
    );
    let again = pump(&mut t, at(11_000));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].topic, "cmd/d2/req");
    t.handle_response(
        &dev("d2"),
        &answer(tid, "d2", Outcome::Succeeded),
        at(11_050),
    );
    assert!(t.get(&tid).unwrap().is_finished());
    assert_eq!(t.get(&tid).unwrap().progress.succeeded, 2);
}

#[test]
fn odd_responses_are_surfaced_not_dropped() {
    let mut t = tracker();
    let tid = t.submit(
        Target::Device(dev("d1")),
        &Command::GetState,
        SendOptions::default(),
        at(0),
    );
    pump(&mut t, at(0));
    events(&mut t);
    let stranger = Tid::random(&mut fastrand::Rng::with_seed(5));
    t.handle_response(
        &dev("d1"),
        &answer(stranger, "d1", Outcome::Succeeded),
        at(1),
    );
    t.handle_response(&dev("d2"), &answer(tid, "d2", Outcome::Succeeded), at(1));
    t.handle_response(&dev("d1"), &answer(tid, "d2", Outcome::Succeeded), at(1));
    t.handle_response(&dev("d1"), b"{not json", at(1));
    t.handle_response(&dev("d1"), b"SUCCESS: but nothing was sent as text", at(1));
    let ev = events(&mut t);
    assert!(
        matches!(&ev[0], TrackerEvent::Unmatched { why: Unmatched::UnknownTid(x), .. } if *x == stranger)
    );
    assert!(matches!(
        &ev[1],
        TrackerEvent::Unmatched {
            why: Unmatched::WrongDevice { .. },
            ..
        }
    ));
    assert!(matches!(
        &ev[2],
        TrackerEvent::Unmatched {
            why: Unmatched::DeviceMismatch { .. },
            ..
        }
    ));
    assert!(matches!(&ev[3], TrackerEvent::Malformed { .. }));
    assert!(matches!(
        &ev[4],
        TrackerEvent::Unmatched {
            why: Unmatched::NoTextCommand,
            ..
        }
    ));
    assert_eq!(t.outstanding(), 1, "none of that touched the real command");
    // A late answer after the timeout updates the member and says it was late.
    t.handle_timeout(at(10_000));
    t.handle_response(
        &dev("d1"),
        &answer(tid, "d1", Outcome::Succeeded),
        at(12_000),
    );
    let m = &t.get(&tid).unwrap().members[&dev("d1")];
    assert!(m.late);
    assert_eq!(m.phase, Phase::Succeeded);
    assert!(events(&mut t)
        .iter()
        .any(|e| matches!(e, TrackerEvent::Late { .. })));
}

#[test]
fn text_commands_are_never_retried_and_ambiguity_is_reported() {
    let mut t = tracker();
    let a = t.submit_text(dev("device1"), "light: on", SendOptions::default(), at(0));
    let b = t.submit_text(dev("device1"), "light: off", SendOptions::default(), at(1));
    let sent = pump(&mut t, at(1));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].payload, b"light: on");
    assert_eq!(sent[0].correlation_data, None);
    assert_eq!(
        t.poll_timeout(),
        Some(at(10_000)),
        "only the deadline, no retry"
    );
    t.handle_response(
        &dev("device1"),
        b"SUCCESS: command ran successfully from payload: b'light: on'",
        at(20),
    );
    let ev = events(&mut t);
    assert!(ev
        .iter()
        .any(|e| matches!(e, TrackerEvent::Ambiguous { tid, outstanding: 2, .. } if *tid == a)));
    assert_eq!(
        t.get(&a).unwrap().members[&dev("device1")].phase,
        Phase::Succeeded
    );
    t.handle_timeout(at(10_001));
    assert!(pump(&mut t, at(10_001)).is_empty());
    assert!(matches!(
        t.get(&b).unwrap().members[&dev("device1")].phase,
        Phase::TimedOut {
            device_online: None
        }
    ));
}

#[test]
fn sequence_numbers_grow_per_command() {
    let mut t = tracker();
    let seqs: Vec<u64> = (0..3)
        .map(|i| {
            t.submit(
                Target::Device(dev("d1")),
                &Command::GetState,
                SendOptions::default(),
                at(i),
            );
            let o = t.poll_transmit().unwrap();
            match decode_request(&o.payload) {
                Ok(IncomingRequest::Envelope(r)) => r.seq,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(t.next_seq(), 4);
}

#[test]
fn a_snapshot_survives_a_restart_and_is_reconciled_after_it() {
    let mut t = tracker();
    let sent = t.submit(
        Target::Device(dev("device1")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(0),
    );
    let o = pump(&mut t, at(0));
    assert_eq!(o.len(), 1);
    let queued = t.submit(
        Target::Device(dev("device2")),
        &Command::GetState,
        SendOptions::default(),
        at(5),
    );
    let done = t.submit(
        Target::Device(dev("device3")),
        &Command::GetState,
        SendOptions::default(),
        at(6),
    );
    let text = t.submit_text(dev("device4"), "light: on", SendOptions::default(), at(7));
    // device3 is done before the restart; device2's command never left.
    while let Some(o) = t.poll_transmit() {
        if o.tid == done || o.tid == text {
            t.handle_sent(o.tid, at(7));
            t.handle_delivered(o.tid);
        } else {
            t.handle_send_failed(o.tid, "offline", at(7));
        }
    }
    t.handle_response(
        &dev("device3"),
        &answer(done, "device3", Outcome::Succeeded),
        at(8),
    );
    assert!(t.get(&queued).is_some());
    let json = serde_json::to_string(&t.snapshot()).unwrap();

    // A new application instance (a reloaded page) with a fresh tracker.
    let mut t = tracker();
    t.restore(serde_json::from_str(&json).unwrap(), at(1_000));
    assert!(
        t.get(&done).is_none(),
        "finished commands are not carried over"
    );
    assert_eq!(t.outstanding(), 3);
    assert_eq!(t.next_seq(), 4, "the sequence counter goes on");
    // The queued one is sent at once, and only it.
    let first: Vec<_> = std::iter::from_fn(|| t.poll_transmit()).collect();
    assert_eq!(
        first.iter().map(|o| o.tid).collect::<Vec<_>>(),
        vec![queued]
    );
    // The delivered one is retransmitted, same TID, after the backoff; the text one never is.
    let retry = t.poll_timeout().unwrap();
    assert!(retry > at(1_000) && retry < at(10_000), "{retry:?}");
    t.handle_timeout(retry);
    let again: Vec<_> = std::iter::from_fn(|| t.poll_transmit()).collect();
    assert_eq!(again.iter().map(|o| o.tid).collect::<Vec<_>>(), vec![sent]);
    assert!(again[0].retransmission);
    // Answers reconcile as if nothing had happened, the text one by its device.
    t.handle_response(
        &dev("device1"),
        &answer(sent, "device1", Outcome::Succeeded),
        at(1_500),
    );
    t.handle_response(
        &dev("device4"),
        b"SUCCESS: command ran successfully from payload: b'light: on'",
        at(1_600),
    );
    assert_eq!(
        t.get(&sent).unwrap().members[&dev("device1")].phase,
        Phase::Succeeded
    );
    assert_eq!(
        t.get(&text).unwrap().members[&dev("device4")].phase,
        Phase::Succeeded
    );
    // The command that never left still times out by its original deadline.
    t.handle_timeout(at(10_005));
    assert_eq!(
        t.get(&queued).unwrap().members[&dev("device2")].phase,
        Phase::Expired
    );
    assert_eq!(t.outstanding(), 0);
}

#[test]
fn finished_commands_are_forgotten_by_the_retention_rule_and_outstanding_ones_never() {
    let mut c = TrackerConfig::new(IssuerId::new("app").unwrap());
    c.deadline = Duration::from_secs(10);
    c.retention = switchboard_protocol::tracker::Retention {
        commands: 3,
        members: 1_000,
        age: Duration::from_secs(60),
    };
    let mut t = CommandTracker::new(c, 1);
    // One command that stays outstanding, the oldest of all.
    let open = t.submit(
        Target::Device(dev("quiet")),
        &Command::GetState,
        SendOptions::default(),
        at(0),
    );
    let mut done = Vec::new();
    for i in 0..5u64 {
        let tid = t.submit(
            Target::Device(dev("d1")),
            &Command::GetState,
            SendOptions::default(),
            at(i),
        );
        pump(&mut t, at(i));
        t.handle_response(&dev("d1"), &answer(tid, "d1", Outcome::Succeeded), at(i));
        done.push(tid);
    }
    let forgotten: Vec<Tid> = events(&mut t)
        .into_iter()
        .filter_map(|e| match e {
            TrackerEvent::Forgotten { tid } => Some(tid),
            _ => None,
        })
        .collect();
    assert_eq!(forgotten, done[..2], "the two oldest finished, in order");
    assert_eq!(t.forgotten(), 2);
    assert!(t.get(&open).is_some(), "outstanding commands are kept");
    assert!(done[2..].iter().all(|tid| t.get(tid).is_some()));
    // Age: a minute after they finished, the rest goes too (at the next timer or event).
    t.handle_timeout(at(5 + 60_000));
    assert!(done.iter().all(|tid| t.get(tid).is_none()));
    assert_eq!(t.forgotten(), 5);
    // The outstanding one timed out meanwhile and is now finished: kept until its own age.
    assert!(t.get(&open).is_some_and(|c| c.is_finished()));
}
