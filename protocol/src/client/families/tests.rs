//! The confirmation of commands to family devices, one device and a group at a time.

use super::*;
use crate::family::shelly::Shelly;
use crate::family::tasmota::Tasmota;
use crate::family::zigbee2mqtt::Zigbee2mqtt;
use crate::family::Observation;

fn tid(n: u64) -> Tid {
    Tid::random(&mut fastrand::Rng::with_seed(n))
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A Tasmota plug with a command to `on` sent at 0 ms and a 10 s deadline.
fn plug(on: bool) -> (Families, DeviceId, Tid) {
    let mut f = Families::new("switchboard-test".into());
    let (id, topics) = f.add(Address::Tasmota(Tasmota::new("plug")));
    assert!(topics.contains(&"stat/plug/RESULT".to_owned()));
    let t = tid(1);
    let begun = f.begin(
        &id,
        None,
        t,
        &Command::Light { on },
        Duration::from_secs(10),
        at(0),
    );
    assert!(begun.superseded.is_none() && begun.settled.is_none());
    assert!(
        f.sent(&t, None).is_empty(),
        "Tasmota is not quiet: nothing to read again"
    );
    (f, id, t)
}

#[test]
fn silence_is_read_back_and_the_answer_decides() {
    let (mut f, id, t) = plug(true);
    assert_eq!(
        f.poll_timeout(),
        Some(at(5_000)),
        "half the deadline, at most 5 s"
    );
    let (settled, read_backs) = f.handle_timeout(at(5_000));
    assert!(settled.is_empty());
    let [ReadBack::Publish(p)] = read_backs.as_slice() else {
        panic!("one read-back publish, got {read_backs:?}");
    };
    assert_eq!(
        (p.topic.as_str(), p.payload.as_slice()),
        ("cmnd/plug/POWER", &b""[..])
    );
    let got = f.observe(&id, &Observation::Power(true), false);
    assert_eq!(got, Some((t, Settlement::Confirmed(ConfirmedBy::ReadBack))));
}

#[test]
fn another_value_ends_contradicted_when_the_window_closes() {
    let (mut f, id, t) = plug(true);
    assert_eq!(
        f.observe(&id, &Observation::Power(false), false),
        None,
        "noted"
    );
    let (settled, read_backs) = f.handle_timeout(at(5_000));
    assert!(read_backs.is_empty());
    assert_eq!(
        settled,
        vec![(t, id, Settlement::Contradicted { actual_on: false })]
    );
}

#[test]
fn a_device_presence_says_is_gone_ends_offline_and_a_newer_command_supersedes() {
    let (mut f, id, t) = plug(true);
    f.observe(&id, &Observation::Presence(false), true);
    let (settled, _) = f.handle_timeout(at(5_000));
    assert_eq!(settled, vec![(t, id.clone(), Settlement::Offline)]);
    let (mut f, id, t) = plug(true);
    let newer = tid(2);
    let begun = f.begin(
        &id,
        None,
        newer,
        &Command::Light { on: false },
        Duration::from_secs(10),
        at(100),
    );
    assert_eq!(begun.superseded, Some(t));
    assert!(
        f.encode(&t, None).is_empty(),
        "the superseded command is not sent again"
    );
    assert_eq!(f.encode(&newer, None).len(), 1);
}

/// Tasmota plugs `a` and `b` (listening on GroupTopic `tasmotas`, and `a` put in `mixed` too),
/// a Shelly switch in `mixed`, a Zigbee2MQTT bulb in its own group `lounge`.
fn fleet() -> (Families, [DeviceId; 4]) {
    let mut f = Families::new("switchboard-test".into());
    let (a, _) = f.add(Address::Tasmota(Tasmota::new("a")));
    let (b, _) = f.add(Address::Tasmota(Tasmota::new("b")));
    let (sw, _) = f.add(Address::Shelly(Shelly::new("shellyplus1-1")));
    let (bulb, _) = f.add(Address::Zigbee2mqtt(Zigbee2mqtt::new("bulb")));
    for d in [&a, &b] {
        f.observe(d, &Observation::GroupTopic("tasmotas".into()), false);
    }
    assert!(f.assign(&a, [group("mixed")].into()));
    assert!(f.assign(&sw, [group("mixed")].into()));
    f.keyed(&bulb, "0x01".into());
    f.native_groups(vec![NativeGroup {
        name: "lounge".into(),
        carrier: Address::Zigbee2mqtt(Zigbee2mqtt::new("lounge")),
        members: vec!["0x01".into()],
    }]);
    (f, [a, b, sw, bulb])
}

fn group(s: &str) -> GroupId {
    GroupId::new(s).unwrap()
}

fn begin_group(f: &mut Families, g: &str, t: Tid) -> Vec<DeviceId> {
    let g = group(g);
    let members = f.members(&g);
    for d in &members {
        let begun = f.begin(
            d,
            Some(&g),
            t,
            &Command::Light { on: true },
            Duration::from_secs(10),
            at(0),
        );
        assert!(begun.settled.is_none());
    }
    members
}

fn topics(out: &[ReadBack]) -> Vec<String> {
    let mut v: Vec<String> = out
        .iter()
        .map(|r| match r {
            ReadBack::Publish(p) => p.topic.clone(),
            ReadBack::Resubscribe(t) => format!("resubscribe {t}"),
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_mixed_group_fans_out_per_member_and_each_is_confirmed_on_its_own() {
    let (mut f, [a, _, sw, _]) = fleet();
    let t = tid(7);
    assert_eq!(begin_group(&mut f, "mixed", t), vec![a.clone(), sw.clone()]);
    let out = f.encode(&t, None);
    assert_eq!(
        topics(&out),
        vec!["cmnd/a/POWER".to_owned(), "shellyplus1-1/rpc".to_owned()],
        "neither is carried by a family group: one publish each"
    );
    f.sent(&t, None);
    assert_eq!(
        f.observe(&a, &Observation::Power(true), false),
        Some((t, Settlement::Confirmed(ConfirmedBy::StateReport)))
    );
    f.member_finished(&t, &a);
    assert_eq!(
        topics(&f.encode(&t, None)),
        vec!["shellyplus1-1/rpc".to_owned()],
        "a confirmed member is not sent again"
    );
    assert!(f.encode(&t, Some(&a)).is_empty());
}

#[test]
fn a_tasmota_group_topic_carries_its_members_at_once_and_reads_back_the_silent_one() {
    let (mut f, [a, b, ..]) = fleet();
    let t = tid(8);
    assert_eq!(
        begin_group(&mut f, "tasmotas", t),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        topics(&f.encode(&t, None)),
        vec!["cmnd/tasmotas/POWER".to_owned()],
        "one publish to the GroupTopic"
    );
    assert_eq!(
        topics(&f.encode(&t, Some(&b))),
        vec!["cmnd/b/POWER".to_owned()],
        "a straggler gets its own topic"
    );
    f.sent(&t, None);
    assert_eq!(
        f.observe(&a, &Observation::Power(true), false),
        Some((t, Settlement::Confirmed(ConfirmedBy::StateReport)))
    );
    f.member_finished(&t, &a);
    let (settled, read_backs) = f.handle_timeout(at(5_000));
    assert!(settled.is_empty());
    assert_eq!(topics(&read_backs), vec!["cmnd/b/POWER".to_owned()]);
    assert_eq!(
        f.observe(&b, &Observation::Power(true), false),
        Some((t, Settlement::Confirmed(ConfirmedBy::ReadBack)))
    );
}

#[test]
fn a_zigbee2mqtt_groups_echo_is_discounted_and_the_member_read_back() {
    let (mut f, [.., bulb]) = fleet();
    let t = tid(9);
    assert_eq!(begin_group(&mut f, "lounge", t), vec![bulb.clone()]);
    assert_eq!(
        topics(&f.encode(&t, None)),
        vec!["zigbee2mqtt/lounge/set".to_owned()]
    );
    f.sent(&t, None);
    assert_eq!(
        f.observe(&bulb, &Observation::Power(true), false),
        None,
        "Zigbee2MQTT's optimistic echo of the group's state"
    );
    assert_eq!(
        topics(&f.take_outbox()),
        vec!["zigbee2mqtt/bulb/get".to_owned()]
    );
    assert_eq!(
        f.observe(&bulb, &Observation::Power(false), false),
        Some((t, Settlement::Contradicted { actual_on: false })),
        "the bulb itself never turned on"
    );
}
