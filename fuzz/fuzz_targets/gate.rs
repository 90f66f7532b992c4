//! The device gate fed what arrives on a request topic: each input is split into several
//! payloads (at NUL bytes) that the gate receives in turn, executing what it lets through. Never
//! a panic, never a TID executed twice, and every payload gets an answer unless its command is
//! already running.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::envelope::{DeviceState, Tid};
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig, Received, SequenceDef};
use switchboard_protocol::{DeviceId, Timestamp};

fuzz_target!(|data: &[u8]| {
    let mut config = GateConfig::new(DeviceId::new("d1").expect("valid"));
    config.sequences.push(SequenceDef::new(
        "firmware",
        ["firmware_stage", "firmware_commit"],
    ));
    let mut gate = DeviceGate::new(config);
    let state = DeviceState::default();
    // TIDs for text commands, from the input (no OS randomness).
    let seed = data
        .iter()
        .fold(0, |h: u64, b| h.rotate_left(5) ^ u64::from(*b));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ran = HashSet::new();
    for (i, payload) in data.split(|b| *b == 0).enumerate() {
        let now = Timestamp::from_millis(1_000 * i as u64);
        match gate.receive(payload, now, &state, || Tid::random(&mut rng)) {
            Received::Admitted(Admission::Execute(ticket)) => {
                assert!(ran.insert(ticket.tid()), "a TID executed twice");
                let _ = gate.finish(ticket, Ok(serde_json::Value::Null), &state, now);
            }
            Received::Admitted(Admission::Replay(reply) | Admission::Reject(reply)) => {
                assert!(!reply.encode().is_empty());
            }
            Received::Malformed { reply, .. } => {
                assert!(
                    reply.encode().len() <= 4 * switchboard_protocol::envelope::MAX_PAYLOAD + 512
                );
            }
            Received::Admitted(Admission::InProgress { .. }) => {
                unreachable!("every admitted command finished")
            }
        }
    }
    let _ = gate.snapshot();
});
