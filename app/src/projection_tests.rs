//! The projection driven by a real command tracker: what a card, a row and a matrix show after
//! each event, and that an event touches only what it changed.

use core::time::Duration;

use switchboard_protocol::client::ClientEvent;
use switchboard_protocol::envelope::{DeviceState, Outcome, Response, Status};
use switchboard_protocol::tracker::{
    CommandTracker, Retention, SendOptions, Target, TrackerConfig,
};
use switchboard_protocol::{Command, DeviceId, GroupId, IssuerId, Tid, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use crate::view::Cell;

fn dev(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn tracker() -> CommandTracker {
    let mut c = TrackerConfig::new(IssuerId::new("panel").unwrap());
    c.deadline = Duration::from_secs(10);
    CommandTracker::new(c, 5)
}

/// Sends what the tracker has queued, as a broker that acknowledges at once.
fn send_all(t: &mut CommandTracker, now: Timestamp) {
    while let Some(o) = t.poll_transmit() {
        t.handle_sent(o.tid, now);
        t.handle_delivered(o.tid);
    }
}

/// Hands every tracker event to the projection.
fn project(p: &mut Projection, t: &mut CommandTracker, now: Timestamp) {
    while let Some(ev) = t.poll_event() {
        p.on_event(ClientEvent::Command(ev), t, now);
    }
}

fn answer(tid: Tid, device: &str, light: bool) -> Vec<u8> {
    let mut r = Response::new(tid, dev(device), "light", Outcome::Succeeded);
    r.state = Some(DeviceState {
        light,
        ..DeviceState::default()
    });
    r.encode()
}

fn presence(p: &mut Projection, t: &mut CommandTracker, device: &str, groups: &[&str]) {
    let mut s = Status::offline(dev(device));
    s.online = true;
    s.groups = groups.iter().map(|g| GroupId::new(*g).unwrap()).collect();
    t.handle_presence(&dev(device), Some(&s));
    p.on_event(
        ClientEvent::Presence {
            device: dev(device),
            status: Some(s),
        },
        t,
        at(0),
    );
}

#[test]
fn a_light_is_pending_until_the_device_confirms_it() {
    let (mut p, mut t) = (Projection::new(), tracker());
    presence(&mut p, &mut t, "d1", &[]);
    p.take_batch(&t);
    let tid = t.submit(
        Target::Device(dev("d1")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(1),
    );
    p.on_submitted(tid, &t);
    send_all(&mut t, at(1));
    project(&mut p, &mut t, at(1));
    let b = p.take_batch(&t);
    assert_eq!(b.devices.len(), 1);
    let card = &b.devices[0];
    assert_eq!(card.pending_light(), Some(true));
    assert!(!card.light(), "not on before the device says so");
    assert_eq!(b.commands.len(), 1);
    assert!(!b.commands[0].finished);

    t.handle_response(&dev("d1"), &answer(tid, "d1", true), at(9));
    project(&mut p, &mut t, at(9));
    let b = p.take_batch(&t);
    let card = &b.devices[0];
    assert!(card.light() && card.pending_light().is_none(), "{card:?}");
    assert_eq!(b.commands[0].round_trip_ms, Some(8));
    assert!(!p.is_dirty(), "a batch takes everything");
}

#[test]
fn an_answer_touches_one_card_and_one_row_however_long_the_history() {
    let (mut p, mut t) = (Projection::new(), tracker());
    for i in 0..50 {
        presence(&mut p, &mut t, &format!("d{i}"), &[]);
    }
    for round in 0..20u64 {
        let tids: Vec<Tid> = (0..50)
            .map(|i| {
                t.submit(
                    Target::Device(dev(&format!("d{i}"))),
                    &Command::GetState,
                    SendOptions::default(),
                    at(round),
                )
            })
            .collect();
        send_all(&mut t, at(round));
        for (i, tid) in tids.iter().enumerate() {
            t.handle_response(
                &dev(&format!("d{i}")),
                &answer(*tid, &format!("d{i}"), false),
                at(round),
            );
        }
    }
    project(&mut p, &mut t, at(20));
    p.take_batch(&t);
    let tid = t.submit(
        Target::Device(dev("d7")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(30),
    );
    send_all(&mut t, at(30));
    t.handle_response(&dev("d7"), &answer(tid, "d7", true), at(31));
    project(&mut p, &mut t, at(31));
    let b = p.take_batch(&t);
    assert_eq!(b.devices.len(), 1, "only d7's card");
    assert_eq!(
        b.commands.len(),
        1,
        "only its row, with 1,000 commands behind it"
    );
}

#[test]
fn a_fan_out_fills_its_matrix_cell_by_cell() {
    let (mut p, mut t) = (Projection::new(), tracker());
    for i in 0..4 {
        presence(&mut p, &mut t, &format!("g{i}"), &["floor"]);
    }
    let tid = t.submit(
        Target::Group(GroupId::new("floor").unwrap()),
        &Command::Light { on: true },
        SendOptions::default(),
        at(0),
    );
    p.on_submitted(tid, &t);
    assert_eq!(
        p.fanout_tid(),
        Some(tid),
        "a group command opens its matrix"
    );
    send_all(&mut t, at(0));
    t.handle_response(&dev("g2"), &answer(tid, "g2", true), at(5));
    project(&mut p, &mut t, at(5));
    let f = p.take_batch(&t).fanout.unwrap();
    assert_eq!(
        f.cells,
        [Cell::Waiting, Cell::Waiting, Cell::Succeeded, Cell::Waiting]
    );
    assert_eq!(f.progress.succeeded, 1);
    assert!(!f.finished);
    for d in ["g0", "g1", "g3"] {
        t.handle_response(&dev(d), &answer(tid, d, true), at(7));
    }
    project(&mut p, &mut t, at(7));
    let f = p.take_batch(&t).fanout.unwrap();
    assert!(f.cells.iter().all(|c| *c == Cell::Succeeded));
    assert!(f.finished);
    assert_eq!(f.round_trip_ms, Some(7));
}

#[test]
fn forgotten_commands_leave_the_batch_and_odd_answers_become_notices() {
    let mut c = TrackerConfig::new(IssuerId::new("panel").unwrap());
    c.retention = Retention {
        commands: 1,
        ..Retention::DEFAULT
    };
    let (mut p, mut t) = (Projection::new(), CommandTracker::new(c, 1));
    let mut tids = Vec::new();
    for i in 0..3 {
        let tid = t.submit(
            Target::Device(dev("d1")),
            &Command::GetState,
            SendOptions::default(),
            at(i),
        );
        send_all(&mut t, at(i));
        t.handle_response(&dev("d1"), &answer(tid, "d1", false), at(i));
        tids.push(tid);
    }
    t.handle_response(&dev("d1"), b"{\"v\":1,\"tid\":", at(4));
    let stray = Tid::parse("6d1f7c52-0000-4000-8000-000000000001").unwrap();
    t.handle_response(&dev("d1"), &answer(stray, "d1", false), at(4));
    project(&mut p, &mut t, at(4));
    let b = p.take_batch(&t);
    assert_eq!(b.forgotten, tids[..2]);
    assert_eq!(
        b.commands.iter().map(|c| c.tid).collect::<Vec<_>>(),
        [tids[2]],
        "forgotten commands are not drawn"
    );
    let texts: Vec<&str> = b.notices.iter().map(|n| n.text.as_str()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("malformed message from d1")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t.contains("unknown TID")), "{texts:?}");
}

#[test]
fn a_family_device_is_drawn_as_its_family_with_its_reports_as_evidence() {
    use switchboard_protocol::family::homeassistant::Entity;
    use switchboard_protocol::family::tasmota::Tasmota;
    use switchboard_protocol::family::{Address, Family, Observation};

    let (mut p, t) = (Projection::new(), tracker());
    let plug = Address::Tasmota(Tasmota::new("plug1"));
    p.on_event(
        ClientEvent::Discovered {
            device: dev("plug1"),
            address: plug,
            name: Some("Kettle".into()),
        },
        &t,
        at(0),
    );
    let v = p.device(&dev("plug1")).unwrap();
    assert_eq!(
        (v.family, v.name.as_deref()),
        (Family::Tasmota, Some("Kettle"))
    );
    assert!(v.offers("light") && v.offers("get_state") && !v.offers("restart"));
    assert_eq!(v.presence, Presence::Unknown);
    // A retained report is the state as it stood: drawn, but no evidence of reachability.
    let report = |on, retained| ClientEvent::Reported {
        device: dev("plug1"),
        observation: Observation::Power(on),
        retained,
    };
    p.on_event(report(true, true), &t, at(10));
    let v = p.device(&dev("plug1")).unwrap();
    assert!(v.light());
    assert_eq!(v.presence, Presence::Unknown);
    // A live report is: the device is there now.
    p.on_event(report(false, false), &t, at(20));
    let v = p.device(&dev("plug1")).unwrap();
    assert!(!v.light());
    assert_eq!(v.presence, Presence::Online);
    assert_eq!(
        v.evidence,
        Some(Evidence {
            what: "reported",
            at: at(20)
        })
    );

    let mut optimistic = Entity::switch("fan");
    optimistic.state_topic = None;
    p.add_family_device(&dev("fan"), &Address::Homeassistant(optimistic));
    assert!(p.device(&dev("fan")).unwrap().unconfirmable.is_some());
}

#[test]
fn a_device_that_answers_is_online_whatever_an_old_retained_status_says() {
    let (mut p, mut t) = (Projection::new(), tracker());
    // A stale retained status left by an earlier device of that name.
    let old = Status::offline(dev("d7"));
    t.handle_presence(&dev("d7"), Some(&old));
    p.on_event(
        ClientEvent::Presence {
            device: dev("d7"),
            status: Some(old),
        },
        &t,
        at(0),
    );
    assert_eq!(p.device(&dev("d7")).unwrap().presence, Presence::Offline);
    let tid = t.submit(
        Target::Device(dev("d7")),
        &Command::Light { on: true },
        SendOptions::default(),
        at(1),
    );
    send_all(&mut t, at(1));
    t.handle_response(&dev("d7"), &answer(tid, "d7", true), at(5));
    project(&mut p, &mut t, at(5));
    let v = p.device(&dev("d7")).unwrap();
    assert_eq!(
        v.presence,
        Presence::Online,
        "its answer is newer evidence than the status"
    );
    assert_eq!(
        v.evidence,
        Some(Evidence {
            what: "answered",
            at: at(5)
        })
    );
}
