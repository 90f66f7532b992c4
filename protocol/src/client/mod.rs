//! The application side in one piece: an MQTT [`Session`] and a [`CommandTracker`] wired together,
//! with the subscriptions and the topic dispatch of a [`Dialect`].
//!
//! The panel and the command-line sender both drive a `Client` and nothing else: commands go in
//! with [`Client::submit`], the transport's bytes with [`Client::handle_bytes`], time with
//! [`Client::handle_timeout`]; bytes come out of [`Client::poll_transmit`], what happened out of
//! [`Client::poll_event`], and the next deadline out of [`Client::poll_timeout`] (the earlier of
//! the session's and the tracker's). In between, the client hands the tracker's publishes to the
//! session, tells the tracker which of them the broker acknowledged or refused, routes answers and
//! presence to the tracker and passes every other message on.
//!
//! The session is made by [`Client::connect`] and can be replaced (other broker settings) while the
//! tracker and its commands live on: publishes the old session had not had acknowledged are
//! retransmitted through the new one with the same TIDs.
//!
//! Devices of other families (Tasmota, Shelly, Zigbee2MQTT, ESPHome, Home Assistant discovery) are
//! added by address ([`Client::add_device`]) or found by [`Client::discover`]. Their commands go
//! through the same tracker (a TID each, the same deadlines and retransmission) but are encoded in
//! the family's dialect, and they are confirmed by the family's evidence: see `families.rs` and
//! [`crate::family::confirm`].

mod dialect;
mod event;
mod families;

use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use crate::command::Command;
use crate::engine::{Engine, TransportRequest};
use crate::envelope::Tid;
use crate::family::discovery::{self, Discovered};
use crate::family::{shelly, Address, Observation, ReadBack};
use crate::session::{Message, QoS, Session, SessionConfig, SessionError, SessionEvent};
use crate::time::Timestamp;
use crate::topic::DeviceId;
use crate::tracker::{
    CommandTracker, Presence, SendOptions, Settlement, Target, TrackerConfig, TrackerEvent,
    TrackerSnapshot,
};

pub use dialect::{Dialect, Route, Switchboard};
pub use event::ClientEvent;
pub use families::MAX_CONFIRM_WINDOW;

use families::Families;

/// A session and a tracker, wired together: see the [module documentation](self).
#[derive(Debug)]
pub struct Client<D: Dialect = Switchboard> {
    dialect: D,
    session: Option<Session>,
    tracker: CommandTracker,
    /// Session publish id -> the command it carries.
    publishes: HashMap<u64, Tid>,
    /// Filters the application asked for beyond the dialect's, kept across sessions.
    extra: Vec<(String, QoS)>,
    /// Devices of other families, and their commands' confirmations.
    families: Families,
    /// Whether every family's discovery announcements are followed.
    discovering: bool,
    events: VecDeque<ClientEvent>,
    /// The latest time handed in: output drained later is accounted at this time.
    now: Timestamp,
    seed: u64,
}

impl<D: Dialect> Client<D> {
    /// A client with no session yet; commands submitted now wait until [`Client::connect`].
    pub fn new(tracker: TrackerConfig, dialect: D, seed: u64) -> Self {
        let src = format!("switchboard-{}", tracker.issuer);
        Client {
            dialect,
            session: None,
            families: Families::new(src),
            discovering: false,
            tracker: CommandTracker::new(tracker, seed),
            publishes: HashMap::new(),
            extra: Vec::new(),
            events: VecDeque::new(),
            now: Timestamp::ZERO,
            seed,
        }
    }

    /// Connects with `config`, replacing any current session (it is closed). The dialect's
    /// filters and those of [`Client::subscribe`] are subscribed on the new session.
    pub fn connect(&mut self, config: SessionConfig, now: Timestamp) -> Result<(), SessionError> {
        self.now = now;
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut session = Session::new(config, self.seed)?;
        for (filter, qos) in self.dialect.subscriptions().iter().chain(&self.extra) {
            session.subscribe(filter, *qos, now)?;
        }
        for filter in self.family_filters() {
            session.subscribe(&filter, QoS::AtLeastOnce, now)?;
        }
        if let Some(mut old) = self.session.take() {
            old.disconnect(now);
            // The old transport goes with the old session: nothing of it is written any more.
            while old.poll_event().is_some() {}
            self.events
                .push_back(ClientEvent::Session(SessionEvent::CloseTransport));
            for (_, tid) in self.publishes.drain() {
                self.tracker
                    .handle_send_failed(tid, "the connection was replaced", now);
            }
        }
        session.connect(now);
        self.session = Some(session);
        self.drive(now);
        Ok(())
    }

    /// Ends the connection on purpose (a DISCONNECT, then a close request); no reconnect follows
    /// until [`Client::reconnect`].
    pub fn disconnect(&mut self, now: Timestamp) {
        if let Some(s) = self.session.as_mut() {
            s.disconnect(now);
        }
        self.drive(now);
    }

    /// Connects again with the current settings: at once, skipping a reconnect wait.
    pub fn reconnect(&mut self, now: Timestamp) {
        if let Some(s) = self.session.as_mut() {
            s.connect(now);
        }
        self.drive(now);
    }

    /// Also subscribes to `filter` (telemetry, logs, ...), now and on every later session; its
    /// messages arrive as [`ClientEvent::Message`].
    pub fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        now: Timestamp,
    ) -> Result<(), SessionError> {
        if let Some(s) = self.session.as_mut() {
            s.subscribe(filter, qos, now)?;
        }
        self.extra.retain(|(f, _)| f != filter);
        self.extra.push((filter.to_owned(), qos));
        self.drive(now);
        Ok(())
    }

    /// Stops a subscription made with [`Client::subscribe`].
    pub fn unsubscribe(&mut self, filter: &str, now: Timestamp) -> Result<(), SessionError> {
        self.extra.retain(|(f, _)| f != filter);
        if let Some(s) = self.session.as_mut() {
            s.unsubscribe(filter, now)?;
        }
        self.drive(now);
        Ok(())
    }

    /// Submits a command; see [`CommandTracker::submit`]. To a device of another family, only
    /// what the family can carry is sent (light on/off, `get_state`); anything else ends
    /// `unsupported` at once.
    pub fn submit(
        &mut self,
        target: Target,
        command: &Command,
        opts: SendOptions,
        now: Timestamp,
    ) -> Tid {
        let tid = self.tracker.submit(target.clone(), command, opts, now);
        if let Target::Device(d) = &target {
            if self.families.address(d).is_some() {
                let timeout = self
                    .tracker
                    .get(&tid)
                    .map(|t| t.deadline.saturating_since(t.created_at))
                    .unwrap_or_default();
                let begun = self.families.begin(d, tid, command, timeout, now);
                if let Some(old) = begun.superseded {
                    self.tracker
                        .settle(old, d, Settlement::Superseded { by: tid }, now);
                }
                if let Some(s) = begun.settled {
                    self.tracker.settle(tid, d, s, now);
                }
            }
        }
        self.drive(now);
        tid
    }

    /// Commands a device of another family from now on: its topics are subscribed (before
    /// anything is published to it) and its reports followed. Returns the id it goes by. An
    /// address already known is replaced.
    pub fn add_device(
        &mut self,
        address: Address,
        now: Timestamp,
    ) -> Result<DeviceId, SessionError> {
        let wanted_replies = self.families.wants_replies();
        let (id, topics) = self.families.add(address);
        if let Some(s) = self.session.as_mut() {
            for t in &topics {
                s.subscribe(t, QoS::AtLeastOnce, now)?;
            }
            if !wanted_replies && self.families.wants_replies() {
                s.subscribe(self.families.reply_topic(), QoS::AtLeastOnce, now)?;
            }
        }
        self.drive(now);
        Ok(id)
    }

    /// Stops commanding a device of another family.
    pub fn remove_device(&mut self, id: &DeviceId, now: Timestamp) -> Result<(), SessionError> {
        let gone = self.families.remove(id);
        if let Some(s) = self.session.as_mut() {
            for t in &gone {
                s.unsubscribe(t, now)?;
            }
        }
        self.drive(now);
        Ok(())
    }

    /// The address of a device of another family, if it is one.
    pub fn family_device(&self, id: &DeviceId) -> Option<&Address> {
        self.families.address(id)
    }

    /// Every device of another family, with its address.
    pub fn family_devices(&self) -> impl Iterator<Item = (&DeviceId, &Address)> {
        self.families.devices()
    }

    /// The power state a device of another family last reported.
    pub fn family_power(&self, id: &DeviceId) -> Option<bool> {
        self.families.power(id)
    }

    /// Follows every family's discovery announcements (see [`crate::family::discovery`]) from
    /// now on: each device found is added and reported as [`ClientEvent::Discovered`].
    pub fn discover(&mut self, now: Timestamp) -> Result<(), SessionError> {
        if !self.discovering {
            self.discovering = true;
            if let Some(s) = self.session.as_mut() {
                for f in discovery::filters() {
                    s.subscribe(&f, QoS::AtLeastOnce, now)?;
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    fn family_filters(&self) -> Vec<String> {
        let mut v: Vec<String> = self.families.topics().cloned().collect();
        if self.families.wants_replies() {
            v.push(self.families.reply_topic().to_owned());
        }
        if self.discovering {
            v.extend(discovery::filters());
        }
        v
    }

    /// Submits a plain-text command to one device; see [`CommandTracker::submit_text`].
    pub fn submit_text(
        &mut self,
        device: DeviceId,
        text: &str,
        opts: SendOptions,
        now: Timestamp,
    ) -> Tid {
        let family = self.families.address(&device).map(Address::family);
        let tid = self.tracker.submit_text(device.clone(), text, opts, now);
        if let Some(family) = family {
            let detail = format!("{} devices take no text commands", family.label());
            self.tracker
                .settle(tid, &device, Settlement::Unsupported { detail }, now);
        }
        self.drive(now);
        tid
    }

    /// Gives a command's timed-out members another `deadline`; see
    /// [`CommandTracker::retry_stragglers`].
    pub fn retry_stragglers(&mut self, tid: Tid, deadline: Duration, now: Timestamp) -> usize {
        let n = self.tracker.retry_stragglers(tid, deadline, now);
        self.drive(now);
        n
    }

    /// Takes back the outstanding commands of an earlier run; see [`CommandTracker::restore`].
    pub fn restore(&mut self, snapshot: TrackerSnapshot, now: Timestamp) {
        self.tracker.restore(snapshot, now);
        self.drive(now);
    }

    /// The tracker, to read commands and presence.
    pub fn tracker(&self) -> &CommandTracker {
        &self.tracker
    }

    /// The current session, once [`Client::connect`] made one.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Moves everything along: the tracker's publishes into the session, the session's events
    /// into the tracker and out to the caller, until nothing changes.
    fn drive(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        let now = self.now;
        loop {
            let mut progressed = false;
            if let Some(session) = self.session.as_mut() {
                while let Some(out) = self.tracker.poll_transmit() {
                    progressed = true;
                    let family = self.families.owns(&out.tid);
                    let publish = if family {
                        match self.families.encode(&out.tid) {
                            Some(ReadBack::Publish(p)) => p,
                            Some(ReadBack::Resubscribe(topic)) => {
                                // `get_state` of a family with a retained state and no query:
                                // the broker answers the subscription with it.
                                match session.subscribe(&topic, QoS::AtLeastOnce, now) {
                                    Ok(()) => {
                                        self.families.sent(&out.tid);
                                        self.tracker.handle_sent(out.tid, now);
                                        self.tracker.handle_delivered(out.tid);
                                    }
                                    Err(e) => {
                                        self.tracker.handle_send_failed(out.tid, e.to_string(), now)
                                    }
                                }
                                continue;
                            }
                            // Settled meanwhile (superseded): nothing to send.
                            None => continue,
                        }
                    } else {
                        out.to_publish()
                    };
                    match session.publish(publish, now) {
                        Ok(id) => {
                            self.publishes.insert(id.as_u64(), out.tid);
                            if family {
                                if let Some(topic) = self.families.sent(&out.tid) {
                                    // Right after the command: the retained state as it stands.
                                    let _ = session.subscribe(&topic, QoS::AtLeastOnce, now);
                                }
                            }
                            self.tracker.handle_sent(out.tid, now);
                        }
                        Err(e) => self.tracker.handle_send_failed(out.tid, e.to_string(), now),
                    }
                }
            }
            while let Some(ev) = self.session.as_mut().and_then(Session::poll_event) {
                progressed = true;
                self.on_session_event(ev, now);
            }
            while let Some(ev) = self.tracker.poll_event() {
                progressed = true;
                if let TrackerEvent::Finished { tid, .. } = &ev {
                    self.families.finished(tid);
                }
                self.events.push_back(ClientEvent::Command(ev));
            }
            if !progressed {
                return;
            }
        }
    }

    /// A message on a family device's topic, an RPC reply or a discovery announcement; gives the
    /// message back when it is none of them.
    fn on_family_message(&mut self, m: Message, now: Timestamp) -> Option<Message> {
        if let Some(routes) = self.families.route(&m.topic) {
            // Owned: settling below needs `self` whole.
            let routes: Vec<_> = routes.to_vec();
            for (device, role) in routes {
                let Some(address) = self.families.address(&device) else {
                    continue;
                };
                match address.decode(&m.topic, role, &m.payload) {
                    Ok(observation) => {
                        if let Some((tid, s)) =
                            self.families.observe(&device, &observation, m.retain)
                        {
                            self.tracker.settle(tid, &device, s, now);
                        }
                        if let Observation::Presence(online) = observation {
                            let groups = self
                                .tracker
                                .presence(&device)
                                .map(|p| p.groups.clone())
                                .unwrap_or_default();
                            self.tracker
                                .set_presence(device.clone(), Presence { online, groups });
                        }
                        if observation != Observation::Nothing {
                            self.events.push_back(ClientEvent::Reported {
                                device,
                                observation,
                                retained: m.retain,
                            });
                        }
                    }
                    Err(error) => self.tracker.handle_malformed(&device, error),
                }
            }
            return None;
        }
        if self.families.wants_replies() && m.topic == self.families.reply_topic() {
            match shelly::decode_reply(&m.payload) {
                Ok(reply) => match self.families.reply(&reply) {
                    Some((tid, s)) => {
                        let device = self
                            .tracker
                            .get(&tid)
                            .and_then(|t| t.members.keys().next().cloned());
                        if let Some(device) = device {
                            self.tracker.settle(tid, &device, s, now);
                        }
                    }
                    None => self.events.push_back(ClientEvent::Undecodable {
                        topic: m.topic,
                        error: format!("reply id {} matches no outstanding command", reply.id),
                    }),
                },
                Err(e) => self.events.push_back(ClientEvent::Undecodable {
                    topic: m.topic,
                    error: e.to_string(),
                }),
            }
            return None;
        }
        if self.discovering {
            match discovery::read(&m.topic, &m.payload) {
                Ok(None) => {}
                Ok(Some(Discovered::Devices { found, .. })) => {
                    for f in found {
                        let known =
                            self.families.address(&f.address.device_id()) == Some(&f.address);
                        if known {
                            continue;
                        }
                        match self.add_device(f.address.clone(), now) {
                            Ok(device) => self.events.push_back(ClientEvent::Discovered {
                                device,
                                address: f.address,
                                name: f.name,
                            }),
                            Err(e) => self.events.push_back(ClientEvent::Undecodable {
                                topic: m.topic.clone(),
                                error: format!("found a device but cannot follow it: {e}"),
                            }),
                        }
                    }
                    return None;
                }
                Ok(Some(Discovered::Gone { family, key })) => {
                    self.events.push_back(ClientEvent::Vanished { family, key });
                    return None;
                }
                Ok(Some(Discovered::Nothing)) => return None,
                Err(e) => {
                    self.events.push_back(ClientEvent::Undecodable {
                        topic: m.topic,
                        error: e.to_string(),
                    });
                    return None;
                }
            }
        }
        Some(m)
    }

    fn on_session_event(&mut self, ev: SessionEvent, now: Timestamp) {
        match ev {
            SessionEvent::Message(m) => {
                let Some(m) = self.on_family_message(m, now) else {
                    return;
                };
                self.on_dialect_message(m, now);
            }
            SessionEvent::Delivered(id) => {
                if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                    self.tracker.handle_delivered(tid);
                }
            }
            SessionEvent::PublishFailed { id, reason } => {
                if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                    self.tracker.handle_send_failed(tid, reason, now);
                }
            }
            other => self.events.push_back(ClientEvent::Session(other)),
        }
    }

    fn on_dialect_message(&mut self, m: Message, now: Timestamp) {
        match self.dialect.route(&m.topic) {
            Route::Answer(device) => match self.dialect.decode_answer(&m.payload) {
                Ok(answer) => self.tracker.handle_answer(&device, answer, now),
                Err(error) => self.tracker.handle_malformed(&device, error),
            },
            Route::Presence(device) => match self.dialect.decode_presence(&m.payload) {
                Ok(status) => {
                    self.tracker.handle_presence(&device, status.as_ref());
                    self.events
                        .push_back(ClientEvent::Presence { device, status });
                }
                Err(error) => self.tracker.handle_malformed(&device, error),
            },
            Route::Other => self.events.push_back(ClientEvent::Message(m)),
        }
    }
}

impl<D: Dialect> Engine for Client<D> {
    type Event = ClientEvent;

    fn handle_transport_open(&mut self, now: Timestamp) {
        if let Some(s) = self.session.as_mut() {
            s.handle_transport_open(now);
        }
        self.drive(now);
    }

    fn handle_transport_closed(&mut self, now: Timestamp) {
        if let Some(s) = self.session.as_mut() {
            s.handle_transport_closed(now);
        }
        self.drive(now);
    }

    fn handle_bytes(&mut self, data: &[u8], now: Timestamp) {
        if let Some(s) = self.session.as_mut() {
            s.handle_bytes(data, now);
        }
        self.drive(now);
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if let Some(s) = self.session.as_mut() {
            s.handle_timeout(now);
        }
        let (settled, read_backs) = self.families.handle_timeout(now);
        for (tid, device, s) in settled {
            self.tracker.settle(tid, &device, s, now);
        }
        if let Some(s) = self.session.as_mut() {
            for r in read_backs {
                // A read-back is a query, not the command: its failure leaves the deadline to tell.
                let _ = match r {
                    ReadBack::Publish(p) => s.publish(p, now).map(|_| ()),
                    ReadBack::Resubscribe(topic) => s.subscribe(&topic, QoS::AtLeastOnce, now),
                };
            }
        }
        self.tracker.handle_timeout(now);
        self.drive(now);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let bytes = self.session.as_mut()?.poll_transmit()?;
        // Handing bytes out can settle QoS 0 publishes: account for it.
        let now = self.now;
        self.drive(now);
        Some(bytes)
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Timestamp> {
        let session = self.session.as_ref().and_then(Session::poll_timeout);
        [
            session,
            self.tracker.poll_timeout(),
            self.families.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn transport_request(event: &ClientEvent) -> Option<TransportRequest> {
        match event {
            ClientEvent::Session(ev) => Session::transport_request(ev),
            _ => None,
        }
    }
}
