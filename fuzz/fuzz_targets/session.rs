//! The MQTT session fed arbitrary broker bytes after a CONNACK (the first byte picks MQTT 5 or
//! 3.1.1): it may refuse them and close, never panic, and keeps producing output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::session::{ProtocolVersion, QoS, Session, SessionConfig};
use switchboard_protocol::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let v5 = first & 1 == 1;
    let mut config = SessionConfig::new("fuzz");
    config.version = if v5 {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    };
    let mut s = Session::new(config, u64::from(first)).expect("valid settings");
    let mut t = Timestamp::ZERO;
    let _ = s.subscribe("cmd/+/resp", QoS::AtLeastOnce, t);
    s.connect(t);
    s.handle_transport_open(t);
    let connack: &[u8] = if v5 {
        &[0x20, 0x03, 0, 0, 0]
    } else {
        &[0x20, 0x02, 0, 0]
    };
    s.handle_bytes(connack, t);
    // In a few pieces, as a socket would hand them over.
    for chunk in rest.chunks(61) {
        t = Timestamp::from_millis(t.as_millis() + 7);
        s.handle_bytes(chunk, t);
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
        s.handle_timeout(t);
    }
});
