//! Each family's decoders against payloads copied from its own documentation
//! (`tests/fixtures/`, sources in its README).

use switchboard_protocol::family::discovery::{self, Discovered};
use switchboard_protocol::family::homeassistant::{parse_discovery, Announcement, Kind};
use switchboard_protocol::family::shelly::{decode_reply, ReplyOutcome, Shelly};
use switchboard_protocol::family::tasmota::Tasmota;
use switchboard_protocol::family::zigbee2mqtt::Zigbee2mqtt;
use switchboard_protocol::family::{Address, Family, Observation, Role, RpcCall};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!("../fixtures/", $path)).as_slice()
    };
}

#[test]
fn tasmota_discovery_gives_the_light_with_its_topics() {
    let d = discovery::read(
        "tasmota/discovery/142B2F9FAF38/config",
        fixture!("tasmota/discovery-atomlite2.json"),
    )
    .unwrap()
    .unwrap();
    let Discovered::Devices { family, found, .. } = d else {
        panic!("expected devices, got {d:?}");
    };
    assert_eq!(family, Family::Tasmota);
    assert_eq!(found.len(), 1, "rl has one light");
    let a = &found[0].address;
    assert_eq!(found[0].name.as_deref(), Some("Tasmota"));
    assert_eq!(a.device_id().as_str(), "atomlite2");
    let call = RpcCall { id: 1, src: "x" };
    assert_eq!(
        a.set_power(true, &call).unwrap().topic,
        "cmnd/atomlite2/POWER"
    );
    let topics: Vec<String> = a.topics().into_iter().map(|(t, _)| t).collect();
    assert!(topics.contains(&"stat/atomlite2/RESULT".to_owned()));
    assert!(topics.contains(&"tele/atomlite2/LWT".to_owned()));
    // The topic's MAC must be the payload's.
    assert!(discovery::read(
        "tasmota/discovery/000000000000/config",
        fixture!("tasmota/discovery-atomlite2.json")
    )
    .is_err());
    assert_eq!(
        discovery::read("tasmota/discovery/142B2F9FAF38/config", b"").unwrap(),
        Some(Discovered::Gone {
            family: Family::Tasmota,
            key: "142B2F9FAF38".into()
        })
    );
}

#[test]
fn tasmota_state_reports_carry_each_relay() {
    let one = Tasmota::new("demo-sensor");
    assert_eq!(
        one.decode(
            "tele/demo-sensor/STATE",
            Role::State,
            fixture!("tasmota/tele-state-demo-sensor.json")
        ),
        Ok(Observation::Power(true))
    );
    let gd = fixture!("tasmota/stat-state-gd-30w.json");
    for (relay, on) in [(1, true), (2, false), (3, true), (4, false), (5, true)] {
        let t = Tasmota::new("GD-30W").relay(relay);
        assert_eq!(
            t.decode("stat/GD-30W/RESULT", Role::State, gd),
            Ok(Observation::Power(on))
        );
    }
    assert_eq!(
        Tasmota::new("GD-30W")
            .relay(6)
            .decode("stat/GD-30W/RESULT", Role::State, gd),
        Ok(Observation::Nothing)
    );
}

#[test]
fn shelly_speaks_the_documented_frames() {
    let request: serde_json::Value =
        serde_json::from_slice(fixture!("shelly/switch-set-request.json")).unwrap();
    let s = Shelly {
        prefix: "shellypro4pm-f008d1d8b8b8".into(),
        switch: 1,
    };
    let ours: serde_json::Value = serde_json::from_slice(
        &s.set_power(
            true,
            &RpcCall {
                id: 2,
                src: "user_1",
            },
        )
        .payload,
    )
    .unwrap();
    assert_eq!(ours, request, "the same frame as the docs' example");
    let reply = decode_reply(fixture!("shelly/switch-set-reply.json")).unwrap();
    assert_eq!(reply.id, 0);
    assert_eq!(reply.device, "shellydev1-c8f09e47e6f0");
    assert_eq!(reply.outcome, ReplyOutcome::Set { was_on: Some(true) });
    let zero = Shelly::new("shellypro4pm-f008d1d8b8b8");
    assert_eq!(
        zero.decode(
            "shellypro4pm-f008d1d8b8b8/events/rpc",
            Role::State,
            fixture!("shelly/notify-status.json")
        ),
        Ok(Observation::Power(true))
    );
    assert_eq!(
        s.decode(
            "shellypro4pm-f008d1d8b8b8/events/rpc",
            Role::State,
            fixture!("shelly/notify-status.json")
        ),
        Ok(Observation::Nothing),
        "a notification about switch:0 says nothing about switch:1"
    );
    assert_eq!(
        zero.decode(
            "shellypro4pm-f008d1d8b8b8/status/switch:0",
            Role::State,
            fixture!("shelly/switch-status.json")
        ),
        Ok(Observation::Power(false))
    );
}

#[test]
fn zigbee2mqtt_states_and_device_list() {
    let z = Zigbee2mqtt::new("my_bulb");
    assert_eq!(
        z.decode(Role::State, fixture!("zigbee2mqtt/state-led1545g12.json")),
        Ok(Observation::Power(true))
    );
    assert_eq!(
        z.decode(Role::State, fixture!("zigbee2mqtt/state-linkquality.json")),
        Ok(Observation::Power(true))
    );
    let d = discovery::read(
        "zigbee2mqtt/bridge/devices",
        fixture!("zigbee2mqtt/bridge-devices.json"),
    )
    .unwrap()
    .unwrap();
    let Discovered::Devices {
        found, complete, ..
    } = d
    else {
        panic!("expected devices, got {d:?}");
    };
    assert!(complete);
    assert_eq!(found.len(), 1, "the unsupported device exposes nothing");
    assert_eq!(found[0].address, Address::Zigbee2mqtt(z));
}

#[test]
fn home_assistant_configs_in_full_and_abbreviated_forms_agree() {
    let read = |topic: &str, payload: &[u8]| match parse_discovery("homeassistant", topic, payload)
        .unwrap()
    {
        Announcement::Entities(mut e) => e.remove(0),
        other => panic!("expected an entity, got {other:?}"),
    };
    let full = read(
        "homeassistant/switch/irrigation/config",
        fixture!("homeassistant/switch-irrigation.json"),
    );
    let short = read(
        "homeassistant/switch/irrigation/config",
        fixture!("homeassistant/switch-irrigation-abbreviated.json"),
    );
    for e in [&full, &short] {
        assert_eq!(e.kind, Kind::Switch);
        assert_eq!(
            e.command_topic.as_deref(),
            Some("homeassistant/switch/irrigation/set")
        );
        assert_eq!(
            e.state_topic.as_deref(),
            Some("homeassistant/switch/irrigation/state")
        );
        assert!(e.confirmable());
    }
    assert_eq!(full.unique_id, "irr01ad");
    assert_eq!(
        short.unique_id, "irrigation",
        "no unique_id: the topic's object id"
    );
    let a = Address::Homeassistant(full);
    assert_eq!(
        a.decode("homeassistant/switch/irrigation/state", Role::State, b"ON"),
        Ok(Observation::Power(true))
    );
    assert!(a
        .decode(
            "homeassistant/switch/irrigation/state",
            Role::State,
            b"MAYBE"
        )
        .is_err());

    let light = read(
        "homeassistant/light/kitchen/config",
        fixture!("homeassistant/light-kitchen-json.json"),
    );
    assert_eq!(light.kind, Kind::LightJson);
    assert_eq!(
        light.command_topic.as_deref(),
        Some("homeassistant/light/kitchen/set")
    );
    let a = Address::Homeassistant(light);
    let p = a.set_power(true, &RpcCall { id: 0, src: "" }).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&p.payload).unwrap(),
        serde_json::json!({"state": "ON"})
    );
    assert_eq!(
        a.decode(
            "homeassistant/light/kitchen/state",
            Role::State,
            br#"{"state": "ON", "brightness": 255}"#
        ),
        Ok(Observation::Power(true))
    );

    assert_eq!(
        parse_discovery(
            "homeassistant",
            "homeassistant/device/0AFFD2/config",
            fixture!("homeassistant/device-kitchen-sensors.json")
        )
        .unwrap(),
        Announcement::NotSwitchable,
        "sensors cannot be switched"
    );
    assert_eq!(
        parse_discovery(
            "homeassistant",
            "homeassistant/switch/irrigation/config",
            b""
        )
        .unwrap(),
        Announcement::Removed("irrigation".into())
    );
}

#[test]
fn a_config_without_a_state_topic_is_unconfirmable() {
    let config = br#"{"name":"Fan","command_topic":"garage/fan/set","uniq_id":"fan1"}"#;
    let Announcement::Entities(e) =
        parse_discovery("homeassistant", "homeassistant/switch/fan1/config", config).unwrap()
    else {
        panic!("expected an entity");
    };
    assert!(!e[0].confirmable());
    assert!(e[0].unconfirmable_because().unwrap().contains("optimistic"));
    let jinja =
        br#"{"cmd_t":"a/set","stat_t":"a/state","val_tpl":"{{ value_json.power | upper }}"}"#;
    let Announcement::Entities(e) =
        parse_discovery("homeassistant", "homeassistant/switch/a/config", jinja).unwrap()
    else {
        panic!("expected an entity");
    };
    assert!(!e[0].confirmable(), "a template that cannot be read here");
    let bad = br#"{"cmd_t":"a/#","stat_t":"a/state"}"#;
    assert!(parse_discovery("homeassistant", "homeassistant/switch/a/config", bad).is_err());
}
