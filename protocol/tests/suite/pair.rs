//! The glue under test: a [`Client`] and several devices (a [`Session`] and a [`DeviceGate`] each),
//! every one speaking real MQTT 5 bytes to a broker stand-in built on mqtt-protocol-core's server
//! role, over links that delay, reorder across connections, drop and duplicate routed messages and
//! cut devices' connections, under a virtual clock. In the style of quinn-proto's `Pair`: the
//! whole path from `Client::submit` to the device's answer reconciled, seeded and repeatable.
//!
//! Beside Switchboard's own devices, one device of each other family (Tasmota, Shelly,
//! Zigbee2MQTT, ESPHome, a Home Assistant discovery switch) is played by its
//! [`Firmware`] on the same broker, and some of them are switched locally meanwhile (another
//! controller).
//!
//! For every schedule it checks that every command ends terminal by its deadline, that no device
//! executes a TID twice, that every success the client records was executed exactly once, and that
//! a family device's command succeeds only with the device at the target and ends contradicted
//! only with a value the device had.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use mqtt_protocol_core::mqtt::common::Cursor;
use mqtt_protocol_core::mqtt::connection::Event as BrokerEvent;
use mqtt_protocol_core::mqtt::packet::{v5_0, GenericPacketTrait, Packet, Qos};
use mqtt_protocol_core::mqtt::result_code::{ConnectReasonCode, SubackReasonCode};
use mqtt_protocol_core::mqtt::{role, Connection, Version};
use switchboard_protocol::client::{Client, ClientEvent, Switchboard};
use switchboard_protocol::envelope::{decode_request, DeviceState, IncomingRequest, Status, Tid};
use switchboard_protocol::family::firmware::Firmware;
use switchboard_protocol::family::Address;
use switchboard_protocol::gate::{Admission, DeviceGate, GateConfig, Reply, Ticket};
use switchboard_protocol::session::{Publish, QoS, Session, SessionConfig, SessionEvent};
use switchboard_protocol::topic::{self, Topic};
use switchboard_protocol::tracker::{Phase, SendOptions, Target, TrackerConfig};
use switchboard_protocol::{Command, DeviceId, Engine, GroupId, IssuerId, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[path = "pair_family.rs"]
mod family;
use family::family_addresses;

const SCHEDULES: u64 = 150;
/// Switchboard devices are peers 1..=DEVICES; one device of each other family follows.
const DEVICES: usize = 4;
const FAMILIES: usize = 5;
const PEERS: usize = 1 + DEVICES + FAMILIES;
const DEADLINE: Duration = Duration::from_secs(10);
/// The client is peer 0; devices are 1..=DEVICES.
const APP: usize = 0;

/// Bytes in flight on one hop, for one connection of a peer.
#[derive(Debug)]
enum Hop {
    ToBroker(usize, u64, Vec<u8>),
    ToPeer(usize, u64, Vec<u8>),
}

/// The broker's end of one peer's connection.
struct BrokerEnd {
    conn: Connection<role::Server>,
    /// Which connection of the peer this is: bytes of older ones are dropped.
    generation: u64,
    filters: Vec<String>,
}

/// One simulated device: its session and what plays it.
struct Device {
    id: DeviceId,
    groups: Vec<GroupId>,
    session: Session,
    kind: Kind,
}

// A handful of devices per world: their size does not matter.
#[allow(clippy::large_enum_variant)]
enum Kind {
    /// Switchboard's own: its gate, its state, what it runs, how often it ran each TID.
    Switchboard {
        gate: DeviceGate,
        state: DeviceState,
        running: Vec<(u64, Ticket)>,
        executions: HashMap<Tid, u32>,
    },
    /// Another family's: its firmware, and its relay's history (from when, on or off).
    Family {
        firmware: Firmware,
        history: Vec<(u64, bool)>,
    },
}

struct Faults {
    max_delay_ms: u64,
    drop: f64,
    duplicate: f64,
    cuts: Vec<(u64, usize)>,
}

struct World {
    now: u64,
    rng: fastrand::Rng,
    faults: Faults,
    client: Client,
    devices: Vec<Device>,
    /// The broker's end per peer, while connected.
    ends: Vec<Option<BrokerEnd>>,
    /// The current connection of each peer (0: none yet).
    generation: Vec<u64>,
    /// The latest delivery time per (peer, direction), so that one connection's bytes stay in order.
    last_at: Vec<[u64; 2]>,
    retained: BTreeMap<String, Vec<u8>>,
    net: BinaryHeap<Reverse<(u64, u64, usize)>>,
    hops: HashMap<usize, Hop>,
    next: usize,
    routed_drops: u64,
    cuts_done: u64,
    /// Another controller switches a family device: (when, peer, on), in time order.
    local: Vec<(u64, usize, bool)>,
    /// A family device's relay is locked (commands change nothing) from, until: (peer, from, until).
    locks: Vec<(usize, u64, u64)>,
    /// Commands a family device took on a group's own topic (a Tasmota GroupTopic).
    carried: u64,
}

fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn packet_bytes(p: Packet) -> Vec<u8> {
    p.to_continuous_buffer()
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = fastrand::Rng::with_seed(seed);
        let cuts = (0..rng.usize(0..4))
            .map(|_| (rng.u64(1_500..9_000), rng.usize(1..PEERS)))
            .collect();
        let faults = Faults {
            max_delay_ms: rng.u64(1..150),
            drop: rng.f64() * 0.2,
            duplicate: rng.f64() * 0.2,
            cuts,
        };
        let mut local: Vec<(u64, usize, bool)> = (0..rng.usize(0..3))
            .map(|_| {
                (
                    rng.u64(1_000..8_000),
                    rng.usize(DEVICES + 1..PEERS),
                    rng.bool(),
                )
            })
            .collect();
        local.sort_by_key(|l| l.0);
        let locks = (0..rng.usize(0..4))
            .map(|_| {
                let from = rng.u64(500..4_000);
                (
                    rng.usize(DEVICES + 1..PEERS),
                    from,
                    from + rng.u64(500..12_000),
                )
            })
            .collect();
        let mut config = TrackerConfig::new(IssuerId::new("app").unwrap());
        config.deadline = DEADLINE;
        let mut client = Client::new(config, Switchboard, rng.u64(..));
        client
            .connect(SessionConfig::new("app"), Timestamp::ZERO)
            .unwrap();
        let devices = (0..DEVICES)
            .map(|i| {
                let id = DeviceId::new(format!("d{i}")).unwrap();
                let groups = vec![GroupId::new(if i % 2 == 0 { "even" } else { "odd" }).unwrap()];
                let mut sc = SessionConfig::new(id.as_str());
                let mut offline = Status::offline(id.clone());
                offline.groups = groups.clone();
                sc.will = Some(switchboard_protocol::session::Will {
                    topic: topic::status(&id),
                    payload: offline.encode(),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                });
                let mut session = Session::new(sc, rng.u64(..)).unwrap();
                session
                    .subscribe(&topic::request(&id), QoS::AtLeastOnce, Timestamp::ZERO)
                    .unwrap();
                for g in &groups {
                    session
                        .subscribe(&topic::group_request(g), QoS::AtLeastOnce, Timestamp::ZERO)
                        .unwrap();
                }
                session.connect(Timestamp::ZERO);
                Device {
                    kind: Kind::Switchboard {
                        gate: DeviceGate::new(GateConfig::new(id.clone())),
                        state: DeviceState::default(),
                        running: Vec::new(),
                        executions: HashMap::new(),
                    },
                    id,
                    groups,
                    session,
                }
            })
            .collect::<Vec<_>>();
        let mut devices = devices;
        for (i, address) in family_addresses().into_iter().enumerate() {
            let on = rng.bool();
            // Family devices share the groups: the Tasmota device by its GroupTopic (which the
            // client learns from the device), the others as the operator puts them.
            let group = GroupId::new(if i % 2 == 0 { "even" } else { "odd" }).unwrap();
            let firmware =
                Firmware::new(address.clone(), on).in_groups(vec![group.as_str().to_owned()]);
            let tasmota = matches!(address, Address::Tasmota(_));
            let id = client.add_device(address, Timestamp::ZERO).unwrap();
            if !tasmota {
                client.assign_groups(&id, [group.clone()].into());
            }
            let mut sc = SessionConfig::new(id.as_str());
            sc.will = firmware.will();
            let mut session = Session::new(sc, rng.u64(..)).unwrap();
            for f in firmware.subscriptions() {
                session
                    .subscribe(&f, QoS::AtLeastOnce, Timestamp::ZERO)
                    .unwrap();
            }
            session.connect(Timestamp::ZERO);
            devices.push(Device {
                id,
                groups: vec![group],
                session,
                kind: Kind::Family {
                    firmware,
                    history: vec![(0, on)],
                },
            });
        }
        World {
            now: 0,
            rng,
            faults,
            client,
            devices,
            ends: (0..PEERS).map(|_| None).collect(),
            generation: vec![0; PEERS],
            last_at: vec![[0; 2]; PEERS],
            retained: BTreeMap::new(),
            net: BinaryHeap::new(),
            hops: HashMap::new(),
            next: 0,
            routed_drops: 0,
            cuts_done: 0,
            local,
            locks,
            carried: 0,
        }
    }

    fn at(&self) -> Timestamp {
        Timestamp::from_millis(self.now)
    }

    /// Puts bytes on the hop towards the broker (`to_broker`) or towards the peer, after a delay
    /// that never lets them overtake the connection's earlier bytes.
    fn send(&mut self, peer: usize, to_broker: bool, bytes: Vec<u8>) {
        let dir = usize::from(!to_broker);
        let at =
            (self.now + self.rng.u64(0..=self.faults.max_delay_ms)).max(self.last_at[peer][dir]);
        self.last_at[peer][dir] = at;
        let generation = self.generation[peer];
        let hop = if to_broker {
            Hop::ToBroker(peer, generation, bytes)
        } else {
            Hop::ToPeer(peer, generation, bytes)
        };
        let id = self.next;
        self.next += 1;
        self.hops.insert(id, hop);
        self.net.push(Reverse((at, id as u64, id)));
    }

    /// Carries out what every engine asks of its transport and writes what it hands out.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            moved |= self.pump_peer(APP);
            for i in 1..PEERS {
                moved |= self.pump_peer(i);
            }
            if !moved {
                return;
            }
        }
    }

    fn pump_peer(&mut self, peer: usize) -> bool {
        let mut moved = false;
        loop {
            let bytes = if peer == APP {
                self.client.poll_transmit()
            } else {
                self.devices[peer - 1].session.poll_transmit()
            };
            let Some(bytes) = bytes else { break };
            moved = true;
            if self.ends[peer].is_some() {
                self.send(peer, true, bytes);
            }
        }
        if peer == APP {
            while let Some(ev) = self.client.poll_event() {
                moved = true;
                if let ClientEvent::Session(s) = &ev {
                    self.on_transport(APP, s);
                }
            }
        } else {
            while let Some(ev) = self.devices[peer - 1].session.poll_event() {
                moved = true;
                self.on_transport(peer, &ev);
                self.on_device_event(peer, ev);
            }
        }
        moved
    }

    fn on_transport(&mut self, peer: usize, ev: &SessionEvent) {
        match ev {
            SessionEvent::OpenTransport => {
                self.generation[peer] += 1;
                let mut conn = Connection::<role::Server>::new(Version::Undetermined);
                conn.set_auto_pub_response(true);
                self.ends[peer] = Some(BrokerEnd {
                    conn,
                    generation: self.generation[peer],
                    filters: Vec::new(),
                });
                let now = self.at();
                if peer == APP {
                    self.client.handle_transport_open(now);
                } else {
                    self.devices[peer - 1].session.handle_transport_open(now);
                }
            }
            SessionEvent::CloseTransport => self.close(peer, false),
            _ => {}
        }
    }

    /// The broker forgets the peer's connection; with `will`, it publishes the peer's Last Will
    /// (here: the device's offline status) as a broker does when a connection drops.
    fn close(&mut self, peer: usize, will: bool) {
        self.ends[peer] = None;
        self.generation[peer] += 1;
        if will && peer != APP {
            let d = &self.devices[peer - 1];
            match &d.kind {
                Kind::Switchboard { .. } => {
                    let mut s = Status::offline(d.id.clone());
                    s.groups = d.groups.clone();
                    self.route(&topic::status(&d.id), &s.encode(), true);
                }
                Kind::Family { firmware, .. } => {
                    if let Some(w) = firmware.will() {
                        self.route(&w.topic, &w.payload, w.retain);
                    }
                }
            }
        }
    }

    fn on_device_event(&mut self, peer: usize, ev: SessionEvent) {
        let now = self.at();
        if let Kind::Family { .. } = self.devices[peer - 1].kind {
            self.on_family_event(peer, ev);
            return;
        }
        match ev {
            SessionEvent::Connected { .. } => {
                let d = &mut self.devices[peer - 1];
                let mut s = Status::offline(d.id.clone());
                s.online = true;
                s.groups = d.groups.clone();
                let mut p = Publish::new(topic::status(&d.id), s.encode(), QoS::AtLeastOnce);
                p.retain = true;
                d.session.publish(p, now).unwrap();
            }
            SessionEvent::Message(m) => {
                let Ok(IncomingRequest::Envelope(req)) = decode_request(&m.payload) else {
                    panic!("the client sends envelopes only, got {:?}", m.payload);
                };
                let exec_ms = self.rng.u64(0..100);
                let d = &mut self.devices[peer - 1];
                let Kind::Switchboard {
                    gate,
                    state,
                    running,
                    executions,
                } = &mut d.kind
                else {
                    unreachable!("family devices are handled above")
                };
                match gate.admit(&req, now, state) {
                    Admission::Execute(ticket) => {
                        *executions.entry(ticket.tid()).or_default() += 1;
                        running.push((self.now + exec_ms, ticket));
                    }
                    Admission::Replay(reply) | Admission::Reject(reply) => {
                        answer(&d.id, &mut d.session, &reply, now);
                    }
                    Admission::InProgress { .. } => {}
                }
            }
            _ => {}
        }
    }

    /// Bytes reached the broker from `peer`.
    fn at_broker(&mut self, peer: usize, generation: u64, bytes: &[u8]) {
        let Some(end) = self.ends[peer]
            .as_mut()
            .filter(|e| e.generation == generation)
        else {
            return;
        };
        let mut cursor = Cursor::new(bytes);
        let mut events = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            let before = cursor.position();
            events.extend(end.conn.recv(&mut cursor));
            if cursor.position() == before {
                break;
            }
        }
        for ev in events {
            match ev {
                BrokerEvent::RequestSendPacket { packet, .. } => {
                    self.send(peer, false, packet_bytes(packet));
                }
                BrokerEvent::NotifyPacketReceived(packet) => self.on_broker_packet(peer, packet),
                BrokerEvent::NotifyError(e) => panic!("peer {peer} broke the protocol: {e}"),
                _ => {}
            }
        }
    }

    fn broker_send(&mut self, peer: usize, packet: Packet) {
        let Some(end) = self.ends[peer].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        for ev in end.conn.send(packet) {
            if let BrokerEvent::RequestSendPacket { packet, .. } = ev {
                out.push(packet_bytes(packet));
            }
        }
        for bytes in out {
            self.send(peer, false, bytes);
        }
    }

    fn on_broker_packet(&mut self, peer: usize, packet: Packet) {
        match packet {
            Packet::V5_0Connect(_) => {
                let ack = v5_0::Connack::builder()
                    .session_present(false)
                    .reason_code(ConnectReasonCode::Success)
                    .build()
                    .unwrap();
                self.broker_send(peer, ack.into());
            }
            Packet::V5_0Subscribe(s) => {
                let filters: Vec<String> = s
                    .entries()
                    .iter()
                    .map(|e| e.topic_filter().to_owned())
                    .collect();
                let codes = filters
                    .iter()
                    .map(|_| SubackReasonCode::GrantedQos1)
                    .collect();
                let ack = v5_0::Suback::builder()
                    .packet_id(s.packet_id())
                    .reason_codes(codes)
                    .build()
                    .unwrap();
                self.broker_send(peer, ack.into());
                let retained: Vec<(String, Vec<u8>)> = self
                    .retained
                    .iter()
                    .filter(|(t, _)| filters.iter().any(|f| matches(f, t)))
                    .map(|(t, p)| (t.clone(), p.clone()))
                    .collect();
                if let Some(end) = self.ends[peer].as_mut() {
                    end.filters.extend(filters);
                }
                for (t, p) in retained {
                    self.deliver(peer, &t, &p, true);
                }
            }
            Packet::V5_0Publish(p) => {
                let topic = p.topic_name().to_owned();
                let payload = p.payload().as_slice().to_vec();
                self.route(&topic, &payload, p.retain());
            }
            Packet::V5_0Pingreq(_) => self.broker_send(peer, v5_0::Pingresp::new().into()),
            Packet::V5_0Disconnect(_) => self.close(peer, false),
            _ => {}
        }
    }

    /// The broker routes a publish to every subscriber, losing or doubling some copies.
    fn route(&mut self, topic: &str, payload: &[u8], retain: bool) {
        if retain {
            if payload.is_empty() {
                self.retained.remove(topic);
            } else {
                self.retained.insert(topic.to_owned(), payload.to_vec());
            }
        }
        let subscribers: Vec<usize> = (0..PEERS)
            .filter(|i| {
                self.ends[*i]
                    .as_ref()
                    .is_some_and(|e| e.filters.iter().any(|f| matches(f, topic)))
            })
            .collect();
        for peer in subscribers {
            if self.rng.f64() < self.faults.drop {
                self.routed_drops += 1;
                continue;
            }
            let copies = if self.rng.f64() < self.faults.duplicate {
                2
            } else {
                1
            };
            for _ in 0..copies {
                self.deliver(peer, topic, payload, false);
            }
        }
    }

    fn deliver(&mut self, peer: usize, topic: &str, payload: &[u8], retain: bool) {
        let Some(end) = self.ends[peer].as_mut() else {
            return;
        };
        let Ok(id) = end.conn.acquire_packet_id() else {
            return;
        };
        let publish = v5_0::Publish::builder()
            .topic_name(topic)
            .unwrap()
            .qos(Qos::AtLeastOnce)
            .retain(retain)
            .packet_id(id)
            .payload(payload.to_vec())
            .build()
            .unwrap();
        self.broker_send(peer, publish.into());
    }

    fn at_peer(&mut self, peer: usize, generation: u64, bytes: &[u8]) {
        if self.generation[peer] != generation {
            return;
        }
        let now = self.at();
        if peer == APP {
            self.client.handle_bytes(bytes, now);
        } else {
            self.devices[peer - 1].session.handle_bytes(bytes, now);
        }
    }

    fn finish_due(&mut self) {
        let now = self.at();
        for d in &mut self.devices {
            let Kind::Switchboard {
                gate,
                state,
                running,
                ..
            } = &mut d.kind
            else {
                continue;
            };
            let (due, rest): (Vec<_>, Vec<_>) =
                running.drain(..).partition(|(at, _)| *at <= self.now);
            *running = rest;
            for (_, ticket) in due {
                match ticket.command() {
                    Command::Light { on } => state.light = *on,
                    Command::Led { on } => state.led = *on,
                    _ => {}
                }
                let reply = gate.finish(ticket, Ok(serde_json::Value::Null), state, now);
                answer(&d.id, &mut d.session, &reply, now);
            }
        }
    }

    fn next_time(&mut self, subs: &[(u64, Target, Command)], next_sub: usize) -> Option<u64> {
        let mut t = u64::MAX;
        if let Some(Reverse((at, _, _))) = self.net.peek() {
            t = t.min(*at);
        }
        for d in &mut self.devices {
            if let Kind::Switchboard { running, .. } = &d.kind {
                for (at, _) in running {
                    t = t.min(*at);
                }
            }
            if let Some(at) = Engine::poll_timeout(&mut d.session) {
                t = t.min(at.as_millis());
            }
        }
        if let Some(at) = self.client.poll_timeout() {
            t = t.min(at.as_millis());
        }
        if let Some((at, _, _)) = subs.get(next_sub) {
            t = t.min(*at);
        }
        if let Some((at, _)) = self.faults.cuts.first() {
            t = t.min(*at);
        }
        if let Some((at, _, _)) = self.local.first() {
            t = t.min(*at);
        }
        for &(_, from, until) in &self.locks {
            for at in [from, until] {
                if at > self.now {
                    t = t.min(at);
                }
            }
        }
        (t != u64::MAX).then_some(t)
    }

    /// Returns (commands, member successes, routed copies lost, connections cut) and how family
    /// devices' commands ended.
    fn run(mut self) -> ((u64, u64, u64, u64), BTreeMap<String, u64>) {
        let n = self.rng.usize(5..20);
        let mut subs: Vec<(u64, Target, Command)> = (0..n)
            .map(|_| {
                let at = self.rng.u64(1_000..6_000);
                let target = if self.rng.f64() < 0.25 {
                    Target::Group(
                        GroupId::new(if self.rng.bool() { "even" } else { "odd" }).unwrap(),
                    )
                } else {
                    Target::Device(self.devices[self.rng.usize(..PEERS - 1)].id.clone())
                };
                let cmd = match self.rng.u8(0..3) {
                    0 => Command::Light {
                        on: self.rng.bool(),
                    },
                    1 => Command::Led {
                        on: self.rng.bool(),
                    },
                    _ => Command::GetState,
                };
                (at, target, cmd)
            })
            .collect();
        subs.sort_by_key(|s| s.0);
        let mut next_sub = 0;
        let mut tids = Vec::new();
        let end_by = 6_000 + DEADLINE.as_millis() as u64 + 5_000;
        self.pump();
        while let Some(t) = self.next_time(&subs, next_sub) {
            if t > end_by {
                break;
            }
            assert!(t >= self.now, "time never goes backwards");
            self.now = t;
            let now = self.at();
            while let Some((at, target, cmd)) = subs.get(next_sub).cloned() {
                if at > self.now {
                    break;
                }
                tids.push(
                    self.client
                        .submit(target, &cmd, SendOptions::default(), now),
                );
                next_sub += 1;
            }
            for &(peer, from, until) in &self.locks {
                if let Kind::Family { firmware, .. } = &mut self.devices[peer - 1].kind {
                    firmware.lock((from..until).contains(&self.now));
                }
            }
            while self.local.first().is_some_and(|(at, _, _)| *at <= self.now) {
                let (_, peer, on) = self.local.remove(0);
                self.switch_locally(peer, on);
            }
            while self
                .faults
                .cuts
                .first()
                .is_some_and(|(at, _)| *at <= self.now)
            {
                let (_, peer) = self.faults.cuts.remove(0);
                if self.ends[peer].is_some() {
                    self.cuts_done += 1;
                    self.close(peer, true);
                    self.devices[peer - 1].session.handle_transport_closed(now);
                }
            }
            while let Some(Reverse((at, _, id))) = self.net.peek().copied() {
                if at > self.now {
                    break;
                }
                self.net.pop();
                match self.hops.remove(&id) {
                    Some(Hop::ToBroker(p, g, b)) => self.at_broker(p, g, &b),
                    Some(Hop::ToPeer(p, g, b)) => self.at_peer(p, g, &b),
                    None => {}
                }
                self.pump();
            }
            self.finish_due();
            self.client.handle_timeout(now);
            for d in &mut self.devices {
                Engine::handle_timeout(&mut d.session, now);
            }
            self.pump();
        }
        self.check(&tids);
        let tracker = self.client.tracker();
        let succeeded = tids
            .iter()
            .filter_map(|tid| tracker.get(tid))
            .flat_map(|t| t.members.values())
            .filter(|m| m.phase == Phase::Succeeded)
            .count() as u64;
        let mut family = BTreeMap::new();
        family.insert("carried by a GroupTopic".to_owned(), self.carried);
        for t in tids.iter().filter_map(|tid| tracker.get(tid)) {
            for (device, m) in &t.members {
                let d = self.devices.iter().find(|d| &d.id == device).unwrap();
                if d.executions().is_none() {
                    let how = match m.confirmed_by {
                        Some(by) => format!("succeeded by {}", by.label()),
                        None => m.phase.label().to_owned(),
                    };
                    *family.entry(how).or_default() += 1;
                    if matches!(t.target, Target::Group(_)) {
                        *family.entry("in a group command".to_owned()).or_default() += 1;
                    }
                }
            }
        }
        (
            (
                tids.len() as u64,
                succeeded,
                self.routed_drops,
                self.cuts_done,
            ),
            family,
        )
    }

    fn check(&self, tids: &[Tid]) {
        let tracker = self.client.tracker();
        assert_eq!(tracker.outstanding(), 0, "every command is terminal");
        for d in &self.devices {
            for (tid, n) in d.executions().into_iter().flatten() {
                assert_eq!(*n, 1, "{tid} executed {n} times on {}", d.id);
            }
        }
        for tid in tids {
            let t = tracker.get(tid).unwrap();
            for (device, m) in &t.members {
                let d = self.devices.iter().find(|d| &d.id == device).unwrap();
                if !m.late {
                    assert!(
                        m.finished_at.unwrap() <= t.deadline,
                        "{tid} on {device} after its deadline"
                    );
                }
                let Some(executions) = d.executions() else {
                    self.check_family(t, d, m, tids);
                    continue;
                };
                let ran = executions.get(tid).copied().unwrap_or(0);
                match &m.phase {
                    Phase::Succeeded => {
                        assert_eq!(ran, 1, "{tid} succeeded on {device}, ran {ran} times")
                    }
                    Phase::Rejected { .. } => assert_eq!(ran, 0, "{tid} rejected yet ran"),
                    Phase::TimedOut { .. } | Phase::Expired => {}
                    other => panic!("{tid} on {device} ended {other:?}"),
                }
            }
        }
    }
}

/// The device publishes its answer on its response topic.
fn answer(id: &DeviceId, session: &mut Session, reply: &Reply, now: Timestamp) {
    let p = Publish::new(topic::response(id), reply.encode(), QoS::AtLeastOnce);
    session.publish(p, now).unwrap();
}

#[test]
fn a_client_and_devices_over_a_broker_stand_in_keep_every_rule() {
    let (mut commands, mut succeeded, mut drops, mut cuts) = (0, 0, 0, 0);
    let mut family: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..SCHEDULES {
        let world = World::new(seed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
        match result {
            Ok(((c, ok, d, k), f)) => {
                for (how, n) in f {
                    *family.entry(how).or_default() += n;
                }
                commands += c;
                succeeded += ok;
                drops += d;
                cuts += k;
            }
            Err(e) => std::panic::resume_unwind(Box::new(format!(
                "schedule seed {seed} failed: {}",
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ))),
        }
    }
    let summary = format!(
        "{SCHEDULES} schedules: {commands} commands, {succeeded} member successes, \
         {drops} routed copies lost, {cuts} connections cut; family devices: {family:?}"
    );
    println!("{summary}");
    #[cfg(target_family = "wasm")]
    wasm_bindgen_test::console_log!("{summary}");
    // The schedules must exercise the faults, and get work done, or the assertions prove little.
    assert!(commands > SCHEDULES * 5, "{summary}");
    assert!(succeeded > commands / 2, "{summary}");
    assert!(
        drops > 0 && cuts > 0,
        "{drops} routed copies lost, {cuts} connections cut"
    );
    // Every way of ending a family command must occur, or its rule went untested.
    for how in [
        "succeeded by state report",
        "succeeded by answer with id",
        "succeeded by retained state",
        "superseded",
        "unsupported",
        "contradicted",
        "in a group command",
        "carried by a GroupTopic",
    ] {
        assert!(
            family.get(how).copied().unwrap_or(0) > 0,
            "no family command {how}: {summary}"
        );
    }
}

#[test]
fn the_broker_stand_in_matches_filters_as_mqtt_does() {
    assert!(matches("cmd/+/resp", "cmd/d1/resp"));
    assert!(!matches("cmd/+/resp", "cmd/group/g/req"));
    assert!(matches("status/#", "status/d1"));
    assert!(!matches("cmd/d1/req", "cmd/d10/req"));
    assert_eq!(
        Topic::parse("cmd/group/even/req"),
        Some(Topic::GroupRequest(GroupId::new("even").unwrap()))
    );
}
