//! The two-peer harness's devices of other families: one of each, played by its firmware, with
//! another controller and locked relays, and what their commands' outcomes must mean.

use switchboard_protocol::family::esphome::Esphome;
use switchboard_protocol::family::homeassistant::Entity;
use switchboard_protocol::family::shelly::Shelly;
use switchboard_protocol::family::tasmota::Tasmota;
use switchboard_protocol::family::zigbee2mqtt::Zigbee2mqtt;
use switchboard_protocol::family::RpcCall;
use switchboard_protocol::tracker::{Member, Tracked};

use super::*;

pub(super) fn family_addresses() -> [Address; FAMILIES] {
    [
        Address::Tasmota(Tasmota::new("tasmota_0A1B2C")),
        Address::Shelly(Shelly::new("shellyplus1-a8032ab12345")),
        Address::Zigbee2mqtt(Zigbee2mqtt::new("hall/bulb")),
        Address::Esphome(Esphome::switch("porch", "relay")),
        Address::Homeassistant(Entity::switch("fountain")),
    ]
}

impl Device {
    pub(super) fn executions(&self) -> Option<&HashMap<Tid, u32>> {
        match &self.kind {
            Kind::Switchboard { executions, .. } => Some(executions),
            Kind::Family { .. } => None,
        }
    }
}

impl World {
    /// A device of another family: it announces itself once connected and answers commands as
    /// its firmware does.
    pub(super) fn on_family_event(&mut self, peer: usize, ev: SessionEvent) {
        let now = self.at();
        let at = self.now;
        let d = &mut self.devices[peer - 1];
        let Kind::Family { firmware, history } = &mut d.kind else {
            return;
        };
        let publishes = match ev {
            SessionEvent::Connected { .. } => firmware.on_connect(),
            SessionEvent::Message(m) => {
                if m.topic.starts_with("cmnd/even/") || m.topic.starts_with("cmnd/odd/") {
                    self.carried += 1;
                }
                let handled = firmware
                    .handle(&m.topic, &m.payload)
                    .unwrap_or_else(|e| panic!("the client sent {} a bad command: {e}", d.id));
                if handled.switched {
                    history.push((at, firmware.is_on()));
                }
                handled.publishes
            }
            _ => Vec::new(),
        };
        for p in publishes {
            d.session.publish(p, now).unwrap();
        }
    }

    /// Another controller switches family device `peer`.
    pub(super) fn switch_locally(&mut self, peer: usize, on: bool) {
        let now = self.at();
        let at = self.now;
        let d = &mut self.devices[peer - 1];
        let Kind::Family { firmware, history } = &mut d.kind else {
            return;
        };
        let was = firmware.is_on();
        let publishes = firmware.set_locally(on);
        if was != on {
            history.push((at, on));
        }
        for p in publishes {
            // Reported only while connected, as a device would.
            if d.session.is_connected() {
                d.session.publish(p, now).unwrap();
            }
        }
    }
}

impl World {
    /// A family device's command: it succeeds only with the device at the target, is
    /// contradicted only by a value the device had, and is superseded only by a newer command.
    /// "Had" allows for reports still in flight when the command was sent: at some instant from
    /// two hops' delay before its first transmission until it was settled.
    pub(super) fn check_family(&self, t: &Tracked, d: &Device, m: &Member, tids: &[Tid]) {
        let Kind::Family { history, firmware } = &d.kind else {
            return;
        };
        let tracker = self.client.tracker();
        let from = t.first_sent_at.map_or(u64::MAX, |s| {
            s.as_millis().saturating_sub(2 * self.faults.max_delay_ms)
        });
        let until = m.finished_at.unwrap().as_millis();
        let had = |on: bool| {
            history.iter().enumerate().any(|(i, (since, v))| {
                let till = history.get(i + 1).map_or(u64::MAX, |(next, _)| *next);
                *v == on && *since <= until && till >= from
            })
        };
        let asked = t
            .request
            .as_ref()
            .filter(|_| t.cmd == "light")
            .and_then(|r| r.args.get("on"))
            .and_then(serde_json::Value::as_bool);
        match &m.phase {
            Phase::Succeeded => {
                if let Some(on) = asked {
                    assert!(
                        had(on),
                        "{} confirmed light {on} on {}, which never had it then: {history:?}",
                        t.tid,
                        d.id
                    );
                }
                assert!(
                    m.confirmed_by.is_some(),
                    "{} succeeded without saying how",
                    t.tid
                );
            }
            Phase::Contradicted { actual_on } => assert!(
                had(*actual_on),
                "{} contradicted by {actual_on} on {}, which never had it: {history:?}",
                t.tid,
                d.id
            ),
            Phase::Superseded { by } => {
                assert!(tids.contains(by), "superseded by an unknown command");
                let newer = tracker.get(by).unwrap();
                assert!(
                    newer.created_at >= t.created_at,
                    "superseded by an older command"
                );
            }
            Phase::Unsupported { .. } => {
                let no_query = firmware
                    .address()
                    .read_back(&RpcCall { id: 0, src: "" })
                    .is_none();
                assert!(
                    t.cmd != "light" && (t.cmd != "get_state" || no_query),
                    "{} unsupported on {}",
                    t.cmd,
                    d.id
                );
            }
            // A locked Shelly answers with an error.
            Phase::Failed => assert!(
                matches!(firmware.address(), Address::Shelly(_)),
                "{} failed on {}",
                t.tid,
                d.id
            ),
            Phase::TimedOut { .. } | Phase::Expired => {}
            other => panic!("{} on {} ended {other:?}", t.tid, d.id),
        }
    }
}
