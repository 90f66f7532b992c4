//! Devices of other families on real brokers: the simulator plays one of each (Tasmota, Shelly,
//! Zigbee2MQTT, ESPHome, a Home Assistant discovery switch), the protocol's `Client` discovers and
//! commands them with confirmed state; and two peers nobody here wrote check the dialects:
//! Home Assistant's own Tasmota library (`hatasmota`) reads and commands the simulated Tasmota
//! device, and a switch written with `ha-mqtt-discoverable` is discovered and turned on.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use device_sim::faults::Faults;
use device_sim::fleet::DeviceSpec;
use device_sim::send::{Operator, OperatorOptions};
use switchboard_protocol::family::confirm::ConfirmedBy;
use switchboard_protocol::family::{Address, Family};
use switchboard_protocol::session::ProtocolVersion;
use switchboard_protocol::tracker::{Phase, SendOptions, Target, Tracked};
use switchboard_protocol::{Command, DeviceId, Tid};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::broker::{Broker, Kind};
use crate::support::reference::python;
use crate::support::{endpoint, fleet_options, start_fleet};

const T: Duration = Duration::from_secs(10);

/// A simulated device of `family` named `name`, as `device-sim --family` makes one.
pub(crate) fn family_spec(family: Family, name: &str) -> DeviceSpec {
    let name = DeviceId::new(name).unwrap();
    let address = device_sim::family::address_for(family, &name).unwrap();
    DeviceSpec {
        id: address.device_id(),
        groups: Vec::new(),
        faults: Faults::default(),
        family: Some(address),
    }
}

/// One device of each family, named `<family>1`.
pub(crate) fn one_of_each() -> Vec<DeviceSpec> {
    [
        Family::Tasmota,
        Family::Shelly,
        Family::Zigbee2mqtt,
        Family::Esphome,
        Family::Homeassistant,
    ]
    .into_iter()
    .map(|f| family_spec(f, &format!("{f}1")))
    .collect()
}

async fn operator(url: &str) -> Operator {
    Operator::connect(OperatorOptions {
        endpoint: endpoint(url),
        version: ProtocolVersion::V5,
        timeout: T,
        presence_wait: Duration::from_millis(50),
    })
    .await
    .unwrap()
}

/// Submits `command` to `device` and follows it to its end.
async fn command(op: &mut Operator, device: &DeviceId, command: Command) -> Tracked {
    let tid: Tid = op.client_mut().submit(
        Target::Device(device.clone()),
        &command,
        SendOptions::default(),
        device_sim::link::now(),
    );
    op.run_until(|op| op.tracker().get(&tid).is_none_or(Tracked::is_finished))
        .await;
    op.tracker().get(&tid).cloned().unwrap()
}

/// Follows the client's discovery until every one of `ids` is known, or fails after `T`.
async fn discover(op: &mut Operator, ids: &[DeviceId]) -> BTreeMap<DeviceId, Address> {
    op.client_mut().discover(device_sim::link::now()).unwrap();
    let until = Instant::now() + T;
    let found = |op: &Operator| ids.iter().all(|id| op.client().family_device(id).is_some());
    let step = async {
        op.run_until(|op| found(op)).await;
    };
    let _ = tokio::time::timeout_at(until.into(), step).await;
    let known: BTreeMap<_, _> = op
        .client()
        .family_devices()
        .map(|(id, a)| (id.clone(), a.clone()))
        .collect();
    for id in ids {
        assert!(
            known.contains_key(id),
            "{id} not discovered; found {known:?}"
        );
    }
    known
}

fn member(t: &Tracked) -> &switchboard_protocol::tracker::Member {
    t.members.values().next().unwrap()
}

async fn every_family_discovered_and_confirmed(kind: Kind) {
    let broker = Broker::start(kind).await;
    let specs = one_of_each();
    let ids: Vec<DeviceId> = specs.iter().map(|s| s.id.clone()).collect();
    let fleet = start_fleet(specs, fleet_options(&broker.url, None)).await;
    let mut op = operator(&broker.url).await;
    let known = discover(&mut op, &ids).await;
    for id in &ids {
        let family = known[id].family();
        let expected = if family == Family::Shelly {
            ConfirmedBy::AnswerWithId
        } else {
            ConfirmedBy::StateReport
        };
        for on in [true, false] {
            let t = command(&mut op, id, Command::Light { on }).await;
            let m = member(&t);
            assert_eq!(
                m.phase,
                Phase::Succeeded,
                "{id} ({family}) light {on}: {m:?}"
            );
            assert_eq!(m.confirmed_by, Some(expected), "{id} ({family}) light {on}");
            assert_eq!(op.client().family_power(id), Some(on), "{id} reported {on}");
        }
        let t = command(&mut op, id, Command::Led { on: true }).await;
        assert!(
            matches!(member(&t).phase, Phase::Unsupported { .. }),
            "{id}: a family with no LED refuses it unsent"
        );
    }
    // An ESPHome switch publishes nothing when a command changes nothing: its retained state,
    // read again after the command, confirms it.
    let esphome = ids
        .iter()
        .find(|id| known[*id].family() == Family::Esphome)
        .unwrap();
    let t = command(&mut op, esphome, Command::Light { on: false }).await;
    assert_eq!(member(&t).phase, Phase::Succeeded);
    assert_eq!(member(&t).confirmed_by, Some(ConfirmedBy::RetainedState));
    op.disconnect().await;
    fleet.stop(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_discovered_and_confirmed_on_mosquitto() {
    every_family_discovered_and_confirmed(Kind::Mosquitto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_discovered_and_confirmed_on_the_embedded_broker() {
    every_family_discovered_and_confirmed(Kind::Embedded).await;
}

/// A device that never answers: it times out, with what presence says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_device_that_is_gone_times_out_offline() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let spec = family_spec(Family::Tasmota, "lamp9");
    let address = spec.family.clone().unwrap();
    let fleet = start_fleet(vec![spec], fleet_options(&broker.url, None)).await;
    // The device leaves: its LWT says Offline, retained.
    fleet.stop(T).await;
    let mut op = operator(&broker.url).await;
    let id = op
        .client_mut()
        .add_device(address, device_sim::link::now())
        .unwrap();
    let t = command(&mut op, &id, Command::Light { on: true }).await;
    assert_eq!(
        member(&t).phase,
        Phase::TimedOut {
            device_online: Some(false)
        },
        "presence says offline, and nothing answered"
    );
    op.disconnect().await;
}

/// Runs `script` from `tests/families/` with `args`; returns the child, reading its stdout.
fn peer(script: &str, args: &[&str]) -> tokio::process::Child {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("families")
        .join(script);
    tokio::process::Command::new(python())
        .arg("-u")
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistants_tasmota_library_reads_and_commands_the_simulated_tasmota() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let spec = family_spec(Family::Tasmota, "tasmota_49A3BC");
    let address = spec.family.clone().unwrap();
    let fleet = start_fleet(vec![spec], fleet_options(&broker.url, None)).await;
    let port = broker.url.rsplit(':').next().unwrap().to_owned();
    let child = peer("hatasmota_check.py", &["127.0.0.1", &port]);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("hatasmota_check.py finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hatasmota_check.py failed: {stderr}");
    let seen: serde_json::Value =
        serde_json::from_slice(out.stdout.trim_ascii()).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let Address::Tasmota(ours) = &address else {
        unreachable!()
    };
    let topics: Vec<String> = address.topics().into_iter().map(|(t, _)| t).collect();
    // hatasmota builds from our discovery config the topics our profile follows...
    for key in ["result_topic", "state_topic", "availability_topic"] {
        let t = seen[key].as_str().unwrap().to_owned();
        assert!(
            topics.contains(&t),
            "hatasmota's {key} {t} is not one of ours: {topics:?}"
        );
    }
    // ...and where it asks for the parameters and reads them, where our profile learns the
    // device's GroupTopic.
    assert_eq!(seen["status_command_topic"], ours.probe().topic);
    let status1 = seen["status1_topic"].as_str().unwrap().to_owned();
    assert!(topics.contains(&status1), "{status1} not among {topics:?}");
    assert_eq!(seen["availability_online"], ours.lwt[1]);
    assert_eq!(seen["name"], ours.topic);
    // ...its command (`Power1`) switched our device, and it read our answer as ON.
    assert_eq!(seen["command_topic"], "cmnd/tasmota_49A3BC/Power1");
    assert_eq!(seen["power_after_command"], seen["state_power_on"]);
    assert_eq!(seen["power_after_command"], "ON");
    // And the relay's command topic is the one our profile publishes to: Tasmota takes `POWER`
    // and `Power1` alike for a device with one relay.
    let ours_set = address
        .set_power(
            true,
            &switchboard_protocol::family::RpcCall { id: 0, src: "" },
        )
        .unwrap();
    assert_eq!(ours_set.topic, "cmnd/tasmota_49A3BC/POWER");
    assert!(format!("{}1", ours_set.topic)
        .eq_ignore_ascii_case(seen["command_topic"].as_str().unwrap()));
    fleet.stop(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_announced_with_ha_mqtt_discoverable_is_discovered_and_turned_on() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let port = broker.url.rsplit(':').next().unwrap().to_owned();
    let mut child = peer("hmd_switch.py", &["127.0.0.1", &port, "garden-pump"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l == "ready" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "hmd_switch.py announces its switch");
    let mut op = operator(&broker.url).await;
    let id = DeviceId::new("garden-pump").unwrap();
    let known = discover(&mut op, std::slice::from_ref(&id)).await;
    assert_eq!(known[&id].family(), Family::Homeassistant);
    assert!(known[&id].confirmable(), "it announces a state topic");
    let t = command(&mut op, &id, Command::Light { on: true }).await;
    let m = member(&t);
    assert_eq!(m.phase, Phase::Succeeded, "{m:?}");
    assert_eq!(m.confirmed_by, Some(ConfirmedBy::StateReport));
    let heard = tokio::time::timeout(T, async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l == "command ON" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "the switch's callback ran");
    op.disconnect().await;
}

/// Lost, doubled and delayed commands (`--faults`) to devices with no request id: the same
/// command is retransmitted (it is absolute, so that is safe) until a report confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_family_devices_are_still_confirmed() {
    let broker = Broker::start(Kind::Mosquitto).await;
    let faults = Faults::parse("drop-in=0.2,dup-in=0.2,delay-in-ms=50").unwrap();
    let specs: Vec<DeviceSpec> = [(Family::Tasmota, "lossy1"), (Family::Zigbee2mqtt, "lossy2")]
        .into_iter()
        .map(|(f, n)| DeviceSpec {
            faults: faults.clone(),
            ..family_spec(f, n)
        })
        .collect();
    let ids: Vec<DeviceId> = specs.iter().map(|s| s.id.clone()).collect();
    let addresses: Vec<Address> = specs.iter().map(|s| s.family.clone().unwrap()).collect();
    let fleet = start_fleet(specs, fleet_options(&broker.url, None)).await;
    let mut op = operator(&broker.url).await;
    for a in addresses {
        op.client_mut()
            .add_device(a, device_sim::link::now())
            .unwrap();
    }
    let mut retransmitted = 0;
    // 40 commands: the chance that none of them is lost (0.8^40) is below one in 7,000.
    for round in 0..20 {
        for id in &ids {
            let on = round % 2 == 0;
            let t = command(&mut op, id, Command::Light { on }).await;
            let m = member(&t);
            assert_eq!(
                m.phase,
                Phase::Succeeded,
                "{id} light {on}, round {round}: {m:?}"
            );
            assert_eq!(op.client().family_power(id), Some(on));
            retransmitted += t.attempts - 1;
            // A doubled copy may still be on its way (up to delay-in-ms): it must land before the
            // next command, or it switches the device back, which a family with no request id
            // rightly reports as contradicted.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(
        retransmitted > 0,
        "a fifth of the commands were lost: some were sent again"
    );
    op.disconnect().await;
    fleet.stop(T).await;
}
