//! Simulated devices of other families (Tasmota, Shelly, Zigbee2MQTT, ESPHome, a Home Assistant
//! discovery switch): a small task around a session, played by the protocol's
//! [`Firmware`], so each speaks its family's dialect as its documentation describes: presence,
//! retained state, discovery configs, and the family's own answers. A device's `--groups` are
//! the groups its family keeps (a Tasmota GroupTopic, Zigbee2MQTT groups). A Zigbee2MQTT fleet
//! also gets its bridge's retained device and group lists.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchboard_protocol::family::firmware::{
    zigbee2mqtt_bridge_devices, zigbee2mqtt_bridge_groups, Firmware,
};
use switchboard_protocol::family::homeassistant::Entity;
use switchboard_protocol::family::zigbee2mqtt::Zigbee2mqtt;
use switchboard_protocol::family::{Address, Family};
use switchboard_protocol::session::{Message, Publish, QoS, Session, SessionConfig, SessionEvent};
use switchboard_protocol::DeviceId;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::{Delayed, Faults};
use crate::fleet::{FleetOptions, Stats};
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

/// Runs one family device until `shutdown` says so; it leaves with its presence offline. The
/// fleet's `--faults` apply as to Switchboard's devices: incoming commands dropped, doubled or
/// delayed (`slow-ms` delays every one), answers dropped, doubled or delayed; and a `stuck` relay
/// does not switch.
pub async fn run(
    address: Address,
    groups: Vec<String>,
    faults: Faults,
    opts: Arc<FleetOptions>,
    stats: Arc<Stats>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let id = address.device_id();
    let firmware = Firmware::new(address, false).in_groups(groups);
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
    let mut device = Played {
        id,
        firmware,
        faults,
        rng: fastrand::Rng::new(),
        stats,
        online: false,
        inbox: Delayed::default(),
        outbox: Delayed::default(),
    };
    let mut events = Vec::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let stop = async {
            let _ = shutdown.changed().await;
        };
        if link.step(device.next_due(), &mut events, stop).await == Wake::Interrupted {
            continue;
        }
        for event in std::mem::take(&mut events) {
            device.on_event(&mut link, event);
        }
        device.on_timers(&mut link);
    }
    if let Some(will) = device
        .firmware
        .will()
        .filter(|_| link.session().is_connected())
    {
        let mut p = Publish::new(will.topic, will.payload, will.qos);
        p.retain = will.retain;
        publish(&mut link, &device.id, p);
    }
    link.session_mut().disconnect(now());
    let mut events = Vec::new();
    link.flush(&mut events).await;
    device.set_online(false);
    Ok(())
}

/// One family device as played: its firmware, its faults and what waits out a delay.
struct Played {
    id: DeviceId,
    firmware: Firmware,
    faults: Faults,
    rng: fastrand::Rng,
    stats: Arc<Stats>,
    online: bool,
    /// Commands waiting out an injected delay.
    inbox: Delayed<Message>,
    /// Answers waiting out an injected delay.
    outbox: Delayed<Publish>,
}

impl Played {
    fn set_online(&mut self, online: bool) {
        if online != self.online {
            self.online = online;
            if online {
                self.stats.online.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.online.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.inbox
            .next_due()
            .into_iter()
            .chain(self.outbox.next_due())
            .min()
    }

    fn on_event(&mut self, link: &mut Link, event: SessionEvent) {
        match event {
            SessionEvent::Connected { .. } => {
                self.set_online(true);
                // Announcements are not answers: no faults on them.
                for p in self.firmware.on_connect() {
                    publish(link, &self.id, p);
                }
            }
            SessionEvent::Disconnected { .. } | SessionEvent::ConnectionRefused { .. } => {
                self.set_online(false);
            }
            SessionEvent::TakenOver { reason } => {
                self.set_online(false);
                tracing::error!(device = %self.id, %reason, "another client connected with this device's client id; not reconnecting");
            }
            SessionEvent::Message(m) => {
                for delay in self.faults.incoming(&mut self.rng) {
                    let delay = delay + self.faults.slow;
                    if delay.is_zero() {
                        self.handle(link, &m);
                    } else {
                        self.inbox.push(delay, m.clone());
                    }
                }
            }
            SessionEvent::ProtocolError(e) => {
                tracing::warn!(device = %self.id, error = %e, "protocol error");
            }
            SessionEvent::Dropped { topic, size, max } => {
                tracing::warn!(device = %self.id, %topic, size, max, "message too large: dropped unread");
            }
            SessionEvent::SubscriptionRefused { filter, reason } => {
                tracing::error!(device = %self.id, %filter, %reason, "broker refused the subscription");
            }
            SessionEvent::PublishRefused { reason, .. } => {
                tracing::error!(device = %self.id, %reason, "broker refused a publish");
            }
            _ => {}
        }
    }

    fn handle(&mut self, link: &mut Link, m: &Message) {
        let stuck = self.faults.stuck > 0.0 && self.rng.f64() < self.faults.stuck;
        self.firmware.lock(stuck);
        match self.firmware.handle(&m.topic, &m.payload) {
            Ok(handled) => {
                if handled.switched {
                    self.stats.executed.fetch_add(1, Ordering::Relaxed);
                }
                for p in handled.publishes {
                    self.stats.answered.fetch_add(1, Ordering::Relaxed);
                    for delay in self.faults.outgoing(&mut self.rng) {
                        if delay.is_zero() {
                            publish(link, &self.id, p.clone());
                        } else {
                            self.outbox.push(delay, p.clone());
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(device = %self.id, topic = %m.topic, error = %e, "bad command")
            }
        }
    }

    fn on_timers(&mut self, link: &mut Link) {
        let now_i = Instant::now();
        for m in self.inbox.take_due(now_i) {
            self.handle(link, &m);
        }
        for p in self.outbox.take_due(now_i) {
            publish(link, &self.id, p);
        }
    }
}

fn publish(link: &mut Link, id: &DeviceId, p: Publish) {
    if let Err(e) = link.publish(p) {
        tracing::warn!(device = %id, error = %e, "publish refused");
    }
}

/// The Zigbee2MQTT bridge: publishes the retained device and group lists and its own state, then
/// stays connected (its Last Will marks it offline) until `shutdown`. Each device comes with its
/// groups.
pub async fn run_zigbee2mqtt_bridge(
    devices: Vec<(Zigbee2mqtt, Vec<String>)>,
    opts: Arc<FleetOptions>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let base = devices
        .first()
        .map_or_else(|| "zigbee2mqtt".to_owned(), |(z, _)| z.base.clone());
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
    let refs: Vec<&Zigbee2mqtt> = devices.iter().map(|(z, _)| z).collect();
    let list = zigbee2mqtt_bridge_devices(&refs);
    let mut by_group: std::collections::BTreeMap<&str, Vec<&Zigbee2mqtt>> = Default::default();
    for (z, groups) in &devices {
        for g in groups {
            by_group.entry(g.as_str()).or_default().push(z);
        }
    }
    let by_group: Vec<(String, Vec<&Zigbee2mqtt>)> = by_group
        .into_iter()
        .map(|(g, members)| (g.to_owned(), members))
        .collect();
    let group_list = zigbee2mqtt_bridge_groups(&base, &by_group);
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
                publish(&mut link, &id, group_list.clone());
            }
        }
    }
    link.session_mut().disconnect(now());
    link.flush(&mut events).await;
    Ok(())
}
