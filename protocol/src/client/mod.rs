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

mod dialect;
mod event;

use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use crate::command::Command;
use crate::engine::{Engine, TransportRequest};
use crate::envelope::Tid;
use crate::session::{QoS, Session, SessionConfig, SessionError, SessionEvent};
use crate::time::Timestamp;
use crate::topic::DeviceId;
use crate::tracker::{CommandTracker, SendOptions, Target, TrackerConfig, TrackerSnapshot};

pub use dialect::{Dialect, Route, Switchboard};
pub use event::ClientEvent;

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
    events: VecDeque<ClientEvent>,
    /// The latest time handed in: output drained later is accounted at this time.
    now: Timestamp,
    seed: u64,
}

impl<D: Dialect> Client<D> {
    /// A client with no session yet; commands submitted now wait until [`Client::connect`].
    pub fn new(tracker: TrackerConfig, dialect: D, seed: u64) -> Self {
        Client {
            dialect,
            session: None,
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

    /// Submits a command; see [`CommandTracker::submit`].
    pub fn submit(
        &mut self,
        target: Target,
        command: &Command,
        opts: SendOptions,
        now: Timestamp,
    ) -> Tid {
        let tid = self.tracker.submit(target, command, opts, now);
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
        let tid = self.tracker.submit_text(device, text, opts, now);
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
                    match session.publish(out.to_publish(), now) {
                        Ok(id) => {
                            self.publishes.insert(id.as_u64(), out.tid);
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
                self.events.push_back(ClientEvent::Command(ev));
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_session_event(&mut self, ev: SessionEvent, now: Timestamp) {
        match ev {
            SessionEvent::Message(m) => match self.dialect.route(&m.topic) {
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
            },
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
        [session, self.tracker.poll_timeout()]
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
