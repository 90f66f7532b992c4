//! Every device family's decoders on the same bytes: each family's reports on each of its topics,
//! Shelly's RPC replies, every discovery announcement and Zigbee2MQTT's group list, and
//! discovery on a topic the input names (its first line). None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::family::esphome::Esphome;
use switchboard_protocol::family::homeassistant::Entity;
use switchboard_protocol::family::shelly::{decode_reply, Shelly};
use switchboard_protocol::family::tasmota::Tasmota;
use switchboard_protocol::family::zigbee2mqtt::{parse_groups, Zigbee2mqtt};
use switchboard_protocol::family::{discovery, Address};

fuzz_target!(|data: &[u8]| {
    let addresses = [
        Address::Tasmota(Tasmota::new("plug")),
        Address::Tasmota(Tasmota::new("strip").relay(2)),
        Address::Shelly(Shelly::new("shellyplus1-1")),
        Address::Zigbee2mqtt(Zigbee2mqtt::new("bulb")),
        Address::Esphome(Esphome::switch("node", "relay")),
        Address::Esphome(Esphome::light("node", "lamp")),
        Address::Homeassistant(Entity::switch("fan")),
    ];
    for a in &addresses {
        for (topic, role) in a.topics() {
            let _ = a.decode(&topic, role, data);
        }
    }
    let _ = decode_reply(data);
    let _ = parse_groups(data);
    for topic in discovery::filters() {
        let concrete = topic.replace('+', "x1");
        let _ = discovery::read(&concrete, data);
    }
    let _ = discovery::read("homeassistant/switch/node/fan/config", data);
    let _ = discovery::read("homeassistant/device/node/config", data);
    // A topic of the input's own: its first line, the rest as the payload.
    if let Some(newline) = data.iter().position(|b| *b == b'\n') {
        if let Ok(topic) = std::str::from_utf8(&data[..newline]) {
            let _ = discovery::read(topic, &data[newline + 1..]);
        }
    }
});
