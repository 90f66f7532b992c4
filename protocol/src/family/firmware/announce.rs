//! What a simulated device announces about itself in its family's discovery layout: Tasmota's
//! discovery config, the Home Assistant config ESPHome publishes, ha-mqtt-discoverable's config,
//! and Zigbee2MQTT's bridge device list.

use serde_json::{json, Value};

use super::esphome::component;
use super::retained;
use crate::family::esphome::{Component, Esphome};
use crate::family::homeassistant::{Entity, Kind};
use crate::family::tasmota::Tasmota;
use crate::family::zigbee2mqtt::Zigbee2mqtt;
use crate::session::Publish;

/// A MAC made from the topic, stable per device: twelve upper-case hex digits.
pub(super) fn mac_for(topic: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012X}", h & 0xffff_ffff_ffff)
}

pub(super) fn tasmota_discovery_topic(t: &Tasmota) -> String {
    format!("tasmota/discovery/{}/config", mac_for(&t.topic))
}

/// A discovery config in the firmware's layout (`xdrv_12_discovery.ino`): one relay.
pub(super) fn tasmota_discovery(t: &Tasmota) -> Value {
    let mut rl = vec![0u8; 8];
    rl[usize::from(t.relay.saturating_sub(1)).min(7)] = 1;
    json!({
        "ip": "127.0.0.1",
        "dn": t.topic,
        "fn": [t.topic, null, null, null, null, null, null, null],
        "hn": t.topic,
        "mac": mac_for(&t.topic),
        "md": "Switchboard simulated relay",
        "ty": 0,
        "if": 0,
        "ofln": t.lwt[0],
        "onln": t.lwt[1],
        "state": [t.state_text[0], t.state_text[1], "TOGGLE", "HOLD"],
        "sw": "14.3.0",
        "t": t.topic,
        "ft": t.full_topic,
        "tp": t.prefixes,
        "rl": rl,
        "swc": [-1, -1, -1, -1, -1, -1, -1, -1],
        "swn": [null, null, null, null, null, null, null, null],
        "btn": [0, 0, 0, 0, 0, 0, 0, 0],
        "so": {"4": 0, "11": 0, "13": 0, "17": 0, "20": 0, "30": 0, "68": 0, "73": 0, "82": 0, "114": 0, "117": 0},
        "lk": 0,
        "lt_st": 0,
        "ver": 1
    })
}

pub(super) fn esphome_discovery_topic(e: &Esphome) -> String {
    format!(
        "homeassistant/{}/{}/{}/config",
        component(e),
        e.prefix,
        e.object_id
    )
}

/// The abbreviated Home Assistant config ESPHome announces (`mqtt_component.cpp`).
pub(super) fn esphome_discovery(e: &Esphome) -> Value {
    let base = format!("{}/{}/{}", e.prefix, component(e), e.object_id);
    let mut v = json!({
        "name": e.object_id,
        "stat_t": format!("{base}/state"),
        "cmd_t": format!("{base}/command"),
        "avty_t": format!("{}/status", e.prefix),
        "uniq_id": format!("{}-{}-{}", e.prefix, component(e), e.object_id),
        "dev": {"ids": e.prefix, "name": e.prefix, "mf": "espressif"}
    });
    if e.component == Component::Light {
        v["schema"] = json!("json");
    }
    v
}

pub(super) fn homeassistant_discovery_topic(h: &Entity) -> String {
    let component = match h.kind {
        Kind::Switch => "switch",
        Kind::Light | Kind::LightJson => "light",
    };
    format!("homeassistant/{component}/{}/config", h.unique_id)
}

/// A full-form config, as ha-mqtt-discoverable writes one.
pub(super) fn homeassistant_discovery(h: &Entity) -> Value {
    let mut v = json!({
        "name": h.name.clone().unwrap_or_else(|| h.unique_id.clone()),
        "unique_id": h.unique_id,
        "payload_on": h.payload_on,
        "payload_off": h.payload_off,
    });
    if let Some(t) = &h.command_topic {
        v["command_topic"] = json!(t);
    }
    if let Some(t) = &h.state_topic {
        v["state_topic"] = json!(t);
    }
    if h.kind == Kind::LightJson {
        v["schema"] = json!("json");
    }
    if let Some(a) = h.availability.first() {
        v["availability_topic"] = json!(a.topic);
    }
    v
}

/// Zigbee2MQTT's retained device list for these devices (the bridge publishes it, not a device),
/// each a light with a settable `state`, in the layout of the docs' `bridge/devices`.
pub fn zigbee2mqtt_bridge_devices(devices: &[&Zigbee2mqtt]) -> Publish {
    let list: Vec<Value> = devices
        .iter()
        .map(|z| {
            json!({
                "ieee_address": format!("0x{}", mac_for(&z.name).to_ascii_lowercase()),
                "type": "Router",
                "supported": true,
                "friendly_name": z.name,
                "definition": {
                    "model": "LED1624G9",
                    "vendor": "IKEA",
                    "description": "simulated bulb",
                    "exposes": [{
                        "type": "light",
                        "features": [{"type": "binary", "name": "state", "property": "state",
                            "value_on": "ON", "value_off": "OFF", "value_toggle": "TOGGLE", "access": 7}]
                    }]
                },
                "interview_completed": true
            })
        })
        .collect();
    let base = devices
        .first()
        .map_or(crate::family::zigbee2mqtt::DEFAULT_BASE, |z| {
            z.base.as_str()
        });
    retained(
        format!("{base}/bridge/devices"),
        Value::Array(list).to_string(),
    )
}

/// Zigbee2MQTT's retained group list (the bridge publishes it): each group with its members, in
/// the layout of the docs' `bridge/groups`.
pub fn zigbee2mqtt_bridge_groups(base: &str, groups: &[(String, Vec<&Zigbee2mqtt>)]) -> Publish {
    let list: Vec<Value> = groups
        .iter()
        .enumerate()
        .map(|(i, (name, members))| {
            json!({
                "id": i + 1,
                "friendly_name": name,
                "scenes": [],
                "members": members
                    .iter()
                    .map(|z| json!({
                        "ieee_address": format!("0x{}", mac_for(&z.name).to_ascii_lowercase()),
                        "endpoint": 1
                    }))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    retained(
        format!("{base}/bridge/groups"),
        Value::Array(list).to_string(),
    )
}
