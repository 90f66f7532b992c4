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
//! the family's dialect, and they are confirmed by the family's evidence: see `families/` and
//! [`crate::family::confirm`].

mod dialect;
mod event;
mod families;
mod family_devices;
mod groups;

use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use crate::command::Command;
use crate::engine::{Engine, TransportRequest};
use crate::envelope::Tid;
use crate::family::{Address, ReadBack};
use crate::session::{Message, QoS, Session, SessionConfig, SessionError, SessionEvent};
use crate::time::Timestamp;
use crate::topic::DeviceId;
use crate::tracker::{
    CommandTracker, SendOptions, Settlement, Target, TrackerConfig, TrackerEvent, TrackerSnapshot,
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
    /// `unsupported` at once. A group's members are the devices presence puts in it and the
    /// devices of other families in it (see [`Client::assign_groups`]); each is confirmed on
    /// its own.
    pub fn submit(
        &mut self,
        target: Target,
        command: &Command,
        opts: SendOptions,
        now: Timestamp,
    ) -> Tid {
        let (family_members, group) = match &target {
            Target::Device(d) if self.families.address(d).is_some() => (vec![d.clone()], None),
            Target::Device(_) => (Vec::new(), None),
            Target::Group(g) => (self.families.members(g), Some(g.clone())),
        };
        let tid = self.tracker.submit_including(
            target,
            command,
            opts,
            if group.is_some() {
                family_members.clone()
            } else {
                Vec::new()
            },
            now,
        );
        let timeout = self
            .tracker
            .get(&tid)
            .map(|t| t.deadline.saturating_since(t.created_at))
            .unwrap_or_default();
        for d in &family_members {
            let begun = self
                .families
                .begin(d, group.as_ref(), tid, command, timeout, now);
            if let Some(old) = begun.superseded {
                self.tracker
                    .settle(old, d, Settlement::Superseded { by: tid }, now);
            }
            if let Some(s) = begun.settled {
                self.tracker.settle(tid, d, s, now);
            }
        }
        self.drive(now);
        tid
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
                    let carried = self.families.encode(&out.tid, out.member.as_ref());
                    // Switchboard's own devices among the members take the envelope.
                    let own = match &out.member {
                        Some(d) => self.families.address(d).is_none(),
                        None => self.tracker.get(&out.tid).is_some_and(|t| {
                            t.members.keys().any(|d| self.families.address(d).is_none())
                        }),
                    };
                    let mut outcome: Result<bool, String> = Ok(false);
                    let mut publishes = Vec::new();
                    if own {
                        publishes.push(out.to_publish());
                    }
                    for r in carried {
                        match r {
                            ReadBack::Publish(p) => publishes.push(p),
                            // `get_state` of a family with a retained state and no query: the
                            // broker answers the subscription with it.
                            ReadBack::Resubscribe(topic) => {
                                match session.subscribe(&topic, QoS::AtLeastOnce, now) {
                                    Ok(()) => outcome = outcome.map(|_| true),
                                    Err(e) => outcome = Err(e.to_string()),
                                }
                            }
                        }
                    }
                    if publishes.is_empty() && outcome == Ok(false) {
                        // Settled meanwhile (superseded): nothing to send.
                        continue;
                    }
                    let resubscribed = outcome == Ok(true);
                    for p in publishes {
                        match session.publish(p, now) {
                            Ok(id) => {
                                self.publishes.insert(id.as_u64(), out.tid);
                            }
                            Err(e) => outcome = Err(e.to_string()),
                        }
                    }
                    match outcome {
                        Ok(_) => {
                            for topic in self.families.sent(&out.tid, out.member.as_ref()) {
                                // Right after the command: the retained state as it stands.
                                let _ = session.subscribe(&topic, QoS::AtLeastOnce, now);
                            }
                            self.tracker.handle_sent(out.tid, now);
                            if resubscribed && !own {
                                self.tracker.handle_delivered(out.tid);
                            }
                        }
                        Err(e) => self.tracker.handle_send_failed(out.tid, e, now),
                    }
                }
                for r in self.families.take_outbox() {
                    progressed = true;
                    // A read-back is a query, not the command: its failure leaves the deadline
                    // to tell.
                    let _ = match r {
                        ReadBack::Publish(p) => session.publish(p, now).map(|_| ()),
                        ReadBack::Resubscribe(topic) => {
                            session.subscribe(&topic, QoS::AtLeastOnce, now)
                        }
                    };
                }
            }
            while let Some(ev) = self.session.as_mut().and_then(Session::poll_event) {
                progressed = true;
                self.on_session_event(ev, now);
            }
            while let Some(ev) = self.tracker.poll_event() {
                progressed = true;
                match &ev {
                    TrackerEvent::Finished { tid, .. } => self.families.finished(tid),
                    TrackerEvent::Member { tid, device, phase } if phase.is_terminal() => {
                        self.families.member_finished(tid, device)
                    }
                    _ => {}
                }
                self.events.push_back(ClientEvent::Command(ev));
            }
            if !progressed {
                return;
            }
        }
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
            SessionEvent::PublishRefused { id, ref reason } => {
                if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                    self.tracker.handle_refused(tid, reason.clone(), now);
                }
                // The operator hears of it too: a refusal is the broker's access control at work.
                self.events.push_back(ClientEvent::Session(ev));
            }
            SessionEvent::Connected { .. } => {
                if let Some(s) = self.session.as_mut() {
                    for probe in self.families.probes() {
                        // Queries: the next connect asks again.
                        let _ = s.publish(probe, now);
                    }
                }
                self.events.push_back(ClientEvent::Session(ev));
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
