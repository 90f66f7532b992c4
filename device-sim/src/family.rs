//! Simulated devices of other families (Tasmota, Shelly, Zigbee2MQTT, ESPHome, a Home Assistant
//! discovery switch): a small task around a session, played by the protocol's
//! [`Firmware`], so each speaks its family's dialect as its documentation describes: presence,
//! retained state, discovery configs, and the family's own answers. A Zigbee2MQTT fleet also gets
//! its bridge's retained device list.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_protocol::family::firmware::{zigbee2mqtt_bridge_devices, Firmware};
use switchboard_protocol::family::homeassistant::Entity;
use switchboard_protocol::family::zigbee2mqtt::Zigbee2mqtt;
use switchboard_protocol::family::{Address, Family};
use switchboard_protocol::session::{Publish, QoS, Session, SessionConfig, SessionEvent};
use switchboard_protocol::DeviceId;
use tokio::sync::watch;

use crate::device::{FleetOptions, Stats};
use crate::link::{now, Link, Wake};

/// The address a simulated device of `family` named `name` takes: its name is the Tasmota topic,
/// the Shelly prefix (`shellyplus1-<name>`, as Shelly's device ids read), the Zigbee2MQTT friendly
/// name, the ESPHome node (with a switch `relay`), or the Home Assistant switch's name.
pub fn address_for(family: Family, name: &DeviceId) -> Option<Address> {
    let n = name.as_str();
    match family {
        Family::Shelly => Address::by_name(family, &format!("shellyplus1-{n}")),
        Family::Esphome => Address::by_name(family, &format!("{n}.relay")),
        Family::Homeassistant => Some(Address::Homeassistant(Entity::switch(n))),
        other => Address::by_name(other, n),
    }
}

/// Runs one family device until `shutdown` says so; it leaves with its presence offline.
pub async fn run(
    address: Address,
    opts: Arc<FleetOptions>,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let id = address.device_id();
    let mut firmware = Firmware::new(address, false);
    let mut config = SessionConfig::new(id.as_str());
    config.version = opts.version;
    config.keep_alive = opts.keep_alive;
    config.will = firmware.will();
    opts.endpoint.apply(&mut config);
    let session = Session::new(config, fastrand::u64(..)).context("session settings")?;
    let mut link = Link::new(session, &opts.endpoint);
    for filter in firmware.subscriptions() {
        link.session_mut()
            .subscribe(&filter, QoS::AtLeastOnce, now())?;
    }
    link.session_mut().connect(now());
    let mut online = false;
    let mut events = Vec::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let stop = async {
            let _ = shutdown.changed().await;
        };
        if link.step(None, &mut events, stop).await == Wake::Interrupted {
            continue;
        }
        for event in std::mem::take(&mut events) {
            match event {
                SessionEvent::Connected { .. } => {
                    if !online {
                        online = true;
                        stats.online.fetch_add(1, Ordering::Relaxed);
                    }
                    for p in firmware.on_connect() {
                        publish(&mut link, &id, p);
                    }
                }
                SessionEvent::Disconnected { .. } | SessionEvent::ConnectionRefused { .. }
                    if online =>
                {
                    online = false;
                    stats.online.fetch_sub(1, Ordering::Relaxed);
                }
                SessionEvent::Message(m) => match firmware.handle(&m.topic, &m.payload) {
                    Ok(handled) => {
                        if handled.switched {
                            stats.executed.fetch_add(1, Ordering::Relaxed);
                        }
                        for p in handled.publishes {
                            stats.answered.fetch_add(1, Ordering::Relaxed);
                            publish(&mut link, &id, p);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(device = %id, topic = %m.topic, error = %e, "bad command")
                    }
                },
                SessionEvent::ProtocolError(e) => {
                    tracing::warn!(device = %id, error = %e, "protocol error");
                }
                _ => {}
            }
        }
    }
    if let Some(will) = firmware.will().filter(|_| link.session().is_connected()) {
        let mut p = Publish::new(will.topic, will.payload, will.qos);
        p.retain = will.retain;
        publish(&mut link, &id, p);
    }
    link.session_mut().disconnect(now());
    let mut events = Vec::new();
    link.flush(&mut events).await;
    if online {
        stats.online.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

fn publish(link: &mut Link, id: &DeviceId, p: Publish) {
    if let Err(e) = link.publish(p) {
        tracing::warn!(device = %id, error = %e, "publish refused");
    }
}

/// The Zigbee2MQTT bridge: publishes the retained device list and its own state, then stays
/// connected (its Last Will marks it offline) until `shutdown`.
pub async fn run_zigbee2mqtt_bridge(
    devices: Vec<Zigbee2mqtt>,
    opts: Arc<FleetOptions>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let base = devices
        .first()
        .map_or_else(|| "zigbee2mqtt".to_owned(), |z| z.base.clone());
    let mut config = SessionConfig::new(format!("{base}-bridge"));
    config.version = opts.version;
    config.keep_alive = opts.keep_alive;
    config.will = Some(switchboard_protocol::session::Will {
        topic: format!("{base}/bridge/state"),
        payload: br#"{"state":"offline"}"#.to_vec(),
        qos: QoS::AtLeastOnce,
        retain: true,
    });
    opts.endpoint.apply(&mut config);
    let mut link = Link::new(Session::new(config, fastrand::u64(..))?, &opts.endpoint);
    link.session_mut().connect(now());
    let refs: Vec<&Zigbee2mqtt> = devices.iter().collect();
    let list = zigbee2mqtt_bridge_devices(&refs);
    let mut events = Vec::new();
    let id = DeviceId::new(format!("{base}-bridge"))
        .unwrap_or_else(|_| DeviceId::new("bridge").expect("valid"));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let stop = async {
            let _ = shutdown.changed().await;
        };
        if link
            .step(
                Some(tokio::time::Instant::now() + Duration::from_secs(3600)),
                &mut events,
                stop,
            )
            .await
            == Wake::Interrupted
        {
            continue;
        }
        for event in std::mem::take(&mut events) {
            if let SessionEvent::Connected { .. } = event {
                let mut state = Publish::new(
                    format!("{base}/bridge/state"),
                    r#"{"state":"online"}"#,
                    QoS::AtLeastOnce,
                );
                state.retain = true;
                publish(&mut link, &id, state);
                publish(&mut link, &id, list.clone());
            }
        }
    }
    link.session_mut().disconnect(now());
    link.flush(&mut events).await;
    Ok(())
}
