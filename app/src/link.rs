//! The one module that owns the WebSocket. It feeds the protocol's MQTT [`Session`] and
//! [`CommandTracker`] with bytes, socket events and the browser's clock, hands their output back to
//! the socket, arms one browser timer for their next deadline, and turns what they report into the
//! [`Store`]'s signals. The rest of the panel sees signals and calls [`Link`]'s actions.
//!
//! Signals are written in batches ([`FLUSH_EVERY_MS`] at most), outside any borrow of the link's
//! state, so a fan-out answered by 10,000 devices redraws a few times, not 10,000 times.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::Duration;

use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use switchboard_protocol::command::Command;
use switchboard_protocol::envelope::{decode_log, decode_status, decode_telemetry};
use switchboard_protocol::session::{
    ConnectionState, ProtocolVersion, QoS, Session, SessionConfig, SessionEvent,
};
use switchboard_protocol::topic::{self, Topic};
use switchboard_protocol::tracker::{
    CommandTracker, Phase, SendOptions, Target, Tracked, TrackerConfig, TrackerEvent,
    TrackerSnapshot, Unmatched,
};
use switchboard_protocol::{DeviceId, IssuerId, Tid, Timestamp};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::settings::{storage, Settings};
use crate::store::{Conn, DeviceView, Notice, Pending, Presence, Sample, Store, TELEMETRY_KEEP};
use crate::view::{CommandView, FanoutView};

/// Signals are written at most this often.
pub const FLUSH_EVERY_MS: u64 = 16;
/// Unfinished commands are saved for a reload at most this often (and at once after a submit).
const SAVE_EVERY_MS: u64 = 1_000;
/// Where unfinished commands are kept across a reload (this tab's session storage).
const SNAPSHOT_KEY: &str = "switchboard.outstanding";
/// Default command deadline.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The browser's wall clock, as the protocol's time.
pub fn now() -> Timestamp {
    Timestamp::from_millis(js_sys::Date::now() as u64)
}

/// The panel's handle on the broker. `Copy`; get it with `expect_context::<Link>()`.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    inner: StoredValue<Rc<RefCell<Inner>>, LocalStorage>,
    /// What the panel draws from.
    pub store: Store,
}

/// A socket and the callbacks it holds; dropping it detaches them and closes the socket.
struct Socket {
    ws: WebSocket,
    _onopen: Closure<dyn FnMut()>,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

#[derive(Default)]
struct Dirty {
    devices: HashSet<DeviceId>,
    commands: HashSet<Tid>,
    notices: Vec<Notice>,
    conn: bool,
}

struct Inner {
    me: Weak<RefCell<Inner>>,
    store: Store,
    settings: Option<Settings>,
    session: Option<Session>,
    socket: Option<Socket>,
    tracker: CommandTracker,
    publishes: HashMap<u64, Tid>,
    timer: Option<(Timestamp, Timeout)>,
    /// Canonical device views; signals get copies of the dirty ones.
    devices: HashMap<DeviceId, DeviceView>,
    /// Text commands whose answer was matched while several were outstanding.
    ambiguous: HashMap<Tid, usize>,
    dirty: Dirty,
    flush_timer: Option<Timeout>,
    last_flush: Timestamp,
    last_save: Timestamp,
    telemetry_of: Option<DeviceId>,
    close_reason: Option<String>,
    conn_error: Option<String>,
}

impl Link {
    /// A link with no connection yet; restores the commands a reload left unfinished.
    pub fn new(store: Store) -> Link {
        let tracker = new_tracker();
        let inner = Rc::new_cyclic(|me| {
            RefCell::new(Inner {
                me: me.clone(),
                store,
                settings: None,
                session: None,
                socket: None,
                tracker,
                publishes: HashMap::new(),
                timer: None,
                devices: HashMap::new(),
                ambiguous: HashMap::new(),
                dirty: Dirty::default(),
                flush_timer: None,
                last_flush: Timestamp::ZERO,
                last_save: Timestamp::ZERO,
                telemetry_of: None,
                close_reason: None,
                conn_error: None,
            })
        });
        let link = Link {
            inner: StoredValue::new_local(inner),
            store,
        };
        link.with(|i| i.restore_snapshot());
        link.flush();
        link
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let rc = self.inner.get_value();
        let r = f(&mut rc.borrow_mut());
        r
    }

    /// Connects with `settings` (closing any current connection), remembering them.
    pub fn connect(&self, settings: Settings) {
        settings.save();
        self.with(|i| i.connect(settings));
        self.flush();
    }

    /// Closes the connection and stops reconnecting.
    pub fn disconnect(&self) {
        self.with(|i| {
            let t = now();
            if let Some(s) = i.session.as_mut() {
                s.disconnect(t);
            }
            i.pump(t);
        });
        self.flush();
    }

    /// Sends `command` to a device or a group; returns its TID.
    pub fn send(&self, target: Target, command: &Command) -> Tid {
        let tid = self.with(|i| {
            let t = now();
            let group = matches!(target, Target::Group(_));
            let tid = i.tracker.submit(target, command, SendOptions::default(), t);
            if group {
                i.store.fanout.set(Some(tid));
            }
            i.on_submitted(tid, t);
            tid
        });
        self.flush();
        tid
    }

    /// Sends a plain-text command (the pattern document's form) to one device.
    pub fn send_text(&self, device: DeviceId, text: &str) -> Tid {
        let tid = self.with(|i| {
            let t = now();
            view_mut(&mut i.devices, &device, Presence::Unknown);
            let tid = i
                .tracker
                .submit_text(device, text, SendOptions::default(), t);
            i.on_submitted(tid, t);
            tid
        });
        self.flush();
        tid
    }

    /// Gives the members of a command that timed out another deadline.
    pub fn retry_stragglers(&self, tid: Tid) -> usize {
        let n = self.with(|i| {
            let t = now();
            let n = i.tracker.retry_stragglers(tid, DEADLINE, t);
            i.dirty.commands.insert(tid);
            i.pump(t);
            n
        });
        self.flush();
        n
    }

    /// Adds a device that does not announce itself, shown as "presence unknown".
    pub fn add_device(&self, device: DeviceId) {
        self.with(|i| {
            view_mut(&mut i.devices, &device, Presence::Unknown);
            i.dirty.devices.insert(device);
        });
        self.flush();
    }

    /// Opens a device's details: its telemetry is followed while they are open.
    pub fn select(&self, device: Option<DeviceId>) {
        self.store.selected.set(device.clone());
        self.with(|i| {
            let t = now();
            if i.telemetry_of == device {
                return;
            }
            if let (Some(old), Some(s)) = (i.telemetry_of.take(), i.session.as_mut()) {
                let _ = s.unsubscribe(&topic::telemetry(&old), t);
            }
            if let (Some(d), Some(s)) = (&device, i.session.as_mut()) {
                if s.subscribe(&topic::telemetry(d), QoS::AtMostOnce, t)
                    .is_ok()
                {
                    i.telemetry_of = device.clone();
                }
            }
            i.pump(t);
        });
    }

    /// Every command still known, as JSON (an array of the tracker's records).
    pub fn export_json(&self) -> String {
        self.with(|i| {
            let mut all: Vec<&Tracked> = i.tracker.commands().collect();
            all.sort_by_key(|t| t.created_at);
            serde_json::to_string_pretty(&all).unwrap_or_default()
        })
    }

    /// Every command still known, one CSV row per device and command.
    pub fn export_csv(&self) -> String {
        self.with(|i| {
            let mut all: Vec<&Tracked> = i.tracker.commands().collect();
            all.sort_by_key(|t| t.created_at);
            let mut out = String::from(
                "tid,created_at_ms,target,command,device,phase,round_trip_ms,attempts,detail\n",
            );
            for t in all {
                for (d, m) in &t.members {
                    let rtt = m
                        .finished_at
                        .map(|f| f.saturating_since(t.created_at).as_millis().to_string())
                        .unwrap_or_default();
                    let detail = m
                        .response
                        .as_ref()
                        .and_then(|r| r.error.clone())
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{}\n",
                        t.tid,
                        t.created_at.as_millis(),
                        csv(&target_label(&t.target)),
                        csv(&t.cmd),
                        d,
                        m.phase.label(),
                        rtt,
                        t.attempts,
                        csv(&detail),
                    ));
                }
            }
            out
        })
    }

    /// Saves unfinished commands now (the page is going away).
    pub fn save_now(&self) {
        self.with(|i| i.save(now()));
    }

    /// Writes what changed into the store's signals.
    pub fn flush(&self) {
        flush(&self.inner.get_value(), self.store);
    }

    /// Opens a group command's matrix.
    pub fn open_fanout(&self, tid: Tid) {
        self.store.fanout.set(Some(tid));
        self.with(|i| {
            i.dirty.commands.insert(tid);
        });
        self.flush();
    }
}

/// Writes what changed into the store's signals, outside any borrow of the link's state.
fn flush(rc: &Rc<RefCell<Inner>>, store: Store) {
    let (batch, conn, conn_error) = {
        let mut i = rc.borrow_mut();
        i.flush_timer = None;
        i.last_flush = now();
        let batch = i.take_batch();
        let conn = std::mem::take(&mut i.dirty.conn).then(|| i.conn());
        (batch, conn, i.conn_error.clone())
    };
    if let Some(c) = conn {
        if store.conn.get_untracked() != c {
            store.conn.set(c);
        }
        if store.conn_error.get_untracked() != conn_error {
            store.conn_error.set(conn_error);
        }
    }
    store.put_devices(batch.devices);
    for c in batch.commands {
        store.put_command(c);
    }
    if let Some(f) = batch.fanout {
        store.fanout_view.set(Some(f));
    }
    for n in batch.notices {
        store.notice(n.level, n.at, n.text);
    }
}

struct Batch {
    devices: Vec<DeviceView>,
    commands: Vec<CommandView>,
    fanout: Option<FanoutView>,
    notices: Vec<Notice>,
}

fn new_tracker() -> CommandTracker {
    let issuer = format!(
        "panel-{:08x}",
        (js_sys::Math::random() * f64::from(u32::MAX)) as u32
    );
    let issuer = IssuerId::new(issuer).unwrap_or_else(|_| IssuerId::new("panel").expect("valid"));
    let mut config = TrackerConfig::new(issuer);
    config.deadline = DEADLINE;
    // A time-based first number keeps this panel's commands in order on devices across reloads.
    config.first_seq = now().as_millis().saturating_mul(1000);
    CommandTracker::new(config, seed())
}

fn seed() -> u64 {
    (js_sys::Math::random() * (u64::MAX as f64)) as u64
}

impl Inner {
    fn connect(&mut self, settings: Settings) {
        let t = now();
        self.socket = None;
        self.session = None;
        self.telemetry_of = None;
        self.close_reason = None;
        self.conn_error = None;
        self.dirty.conn = true;
        if let Err(e) = settings.check_url() {
            self.conn_error = Some(e);
            self.settings = None;
            return;
        }
        let mut sc = SessionConfig::new(settings.effective_client_id());
        sc.version = settings.version();
        sc.version_fallback = !settings.mqtt311;
        // A persistent session: answers that arrive while the page reloads wait at the broker.
        sc.clean_start = false;
        sc.session_expiry = Duration::from_secs(3600);
        sc.max_offline_queue = 20_000;
        if !settings.username.is_empty() {
            sc.username = Some(settings.username.clone());
            if !settings.password.is_empty() {
                sc.password = Some(settings.password.clone().into_bytes());
            }
        }
        let mut session = match Session::new(sc, seed()) {
            Ok(s) => s,
            Err(e) => {
                self.conn_error = Some(e.to_string());
                return;
            }
        };
        for (filter, qos) in [
            (topic::ALL_RESPONSES, QoS::AtLeastOnce),
            (topic::ALL_STATUS, QoS::AtLeastOnce),
            (topic::ALL_LOGS, QoS::AtLeastOnce),
        ] {
            if let Err(e) = session.subscribe(filter, qos, t) {
                self.conn_error = Some(e.to_string());
            }
        }
        if let Some(d) = self.store.selected.get_untracked() {
            if session
                .subscribe(&topic::telemetry(&d), QoS::AtMostOnce, t)
                .is_ok()
            {
                self.telemetry_of = Some(d);
            }
        }
        session.connect(t);
        self.settings = Some(settings);
        self.session = Some(session);
        self.pump(t);
    }

    fn open_socket(&mut self, t: Timestamp) {
        self.socket = None;
        let Some(settings) = &self.settings else {
            return;
        };
        let url = settings.url.trim().to_owned();
        let ws = match WebSocket::new_with_str(&url, "mqtt") {
            Ok(ws) => ws,
            Err(e) => {
                let msg = e
                    .dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
                    .unwrap_or_else(|| format!("{e:?}"));
                self.conn_error = Some(format!("cannot open {url}: {msg}"));
                if let Some(s) = self.session.as_mut() {
                    s.disconnect(t);
                }
                return;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let me = self.me.clone();
        let onopen = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = me.upgrade() {
                let t = now();
                let mut i = rc.borrow_mut();
                if let Some(s) = i.session.as_mut() {
                    s.handle_transport_open(t);
                }
                i.pump(t);
            }
        });
        let me = self.me.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Ok(buf) = e.data().dyn_into::<js_sys::ArrayBuffer>() else {
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            if let Some(rc) = me.upgrade() {
                let t = now();
                let mut i = rc.borrow_mut();
                if let Some(s) = i.session.as_mut() {
                    s.handle_bytes(&bytes, t);
                }
                i.pump(t);
            }
        });
        let me = self.me.clone();
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            if let Some(rc) = me.upgrade() {
                let t = now();
                let mut i = rc.borrow_mut();
                let reason = e.reason();
                i.close_reason = Some(match (e.code(), reason.is_empty()) {
                    (1006, _) => "the connection to the broker closed abnormally (is the broker running, and is the URL right?)".to_owned(),
                    (code, true) => format!("the broker closed the connection (code {code})"),
                    (code, false) => format!("the broker closed the connection (code {code}: {reason})"),
                });
                i.socket = None;
                if let Some(s) = i.session.as_mut() {
                    s.handle_transport_closed(t);
                }
                i.pump(t);
            }
        });
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        self.socket = Some(Socket {
            ws,
            _onopen: onopen,
            _onmessage: onmessage,
            _onclose: onclose,
        });
    }

    fn on_submitted(&mut self, tid: Tid, t: Timestamp) {
        self.dirty.commands.insert(tid);
        if let Some(tr) = self.tracker.get(&tid) {
            if let Target::Device(d) = &tr.target {
                let view = view_mut(&mut self.devices, d, Presence::Unknown);
                upsert_pending(view, tr, Phase::Queued.label());
                self.dirty.devices.insert(d.clone());
            }
        }
        self.pump(t);
        self.save(t);
    }

    /// Moves everything along: session events, tracker output, socket writes, the next timer.
    fn pump(&mut self, t: Timestamp) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.tracker.poll_transmit() {
                progressed = true;
                let Some(s) = self.session.as_mut() else {
                    self.tracker
                        .handle_send_failed(out.tid, "not connected to a broker", t);
                    continue;
                };
                match s.publish(out.to_publish(), t) {
                    Ok(id) => {
                        self.publishes.insert(id.as_u64(), out.tid);
                        self.tracker.handle_sent(out.tid, t);
                    }
                    Err(e) => self.tracker.handle_send_failed(out.tid, e.to_string(), t),
                }
            }
            while let Some(ev) = self.session.as_mut().and_then(Session::poll_event) {
                progressed = true;
                self.on_session_event(ev, t);
            }
            while let Some(ev) = self.tracker.poll_event() {
                progressed = true;
                self.on_tracker_event(ev, t);
            }
            progressed |= self.write_out();
            if !progressed {
                break;
            }
        }
        self.dirty.conn = true;
        self.arm_timer(t);
        self.schedule_flush(t);
    }

    /// Writes what the session has to send to the socket, if it is open. Returns whether there
    /// was anything.
    fn write_out(&mut self) -> bool {
        let Some(s) = self.session.as_mut() else {
            return false;
        };
        let mut wrote = false;
        while let Some(bytes) = s.poll_transmit() {
            wrote = true;
            if let Some(sock) = &self.socket {
                if sock.ws.ready_state() == WebSocket::OPEN {
                    if let Err(e) = sock.ws.send_with_u8_array(&bytes) {
                        log(&format!("socket write failed: {e:?}"));
                    }
                }
            }
        }
        wrote
    }

    fn arm_timer(&mut self, t: Timestamp) {
        let next = [
            self.session.as_ref().and_then(Session::poll_timeout),
            self.tracker.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(at) = next else {
            self.timer = None;
            return;
        };
        if self.timer.as_ref().is_some_and(|(armed, _)| *armed == at) {
            return;
        }
        let me = self.me.clone();
        let wait = at.saturating_since(t).as_millis().min(u128::from(u32::MAX)) as u32;
        let timeout = Timeout::new(wait, move || {
            if let Some(rc) = me.upgrade() {
                let t = now();
                let mut i = rc.borrow_mut();
                i.timer = None;
                if let Some(s) = i.session.as_mut() {
                    s.handle_timeout(t);
                }
                i.tracker.handle_timeout(t);
                i.pump(t);
            }
        });
        self.timer = Some((at, timeout));
    }

    fn schedule_flush(&mut self, t: Timestamp) {
        if self.flush_timer.is_some() {
            return;
        }
        let since = t.saturating_since(self.last_flush).as_millis() as u64;
        let wait = FLUSH_EVERY_MS.saturating_sub(since) as u32;
        let me = self.me.clone();
        let store = self.store;
        self.flush_timer = Some(Timeout::new(wait, move || {
            if let Some(rc) = me.upgrade() {
                flush(&rc, store);
            }
        }));
    }

    fn conn(&self) -> Conn {
        let Some(s) = &self.session else {
            return Conn::Offline;
        };
        match s.state() {
            ConnectionState::Idle | ConnectionState::Closed => Conn::Offline,
            ConnectionState::Connecting => Conn::Connecting,
            ConnectionState::Connected => Conn::Online {
                version: match s.protocol_version() {
                    Some(ProtocolVersion::V3_1_1) => "3.1.1",
                    _ => "5",
                },
            },
            ConnectionState::WaitingToReconnect { at } => Conn::Reconnecting { at },
        }
    }

    fn on_session_event(&mut self, ev: SessionEvent, t: Timestamp) {
        match ev {
            SessionEvent::OpenTransport => self.open_socket(t),
            SessionEvent::CloseTransport => {
                // Write what is left (a DISCONNECT) first.
                self.write_out();
                self.socket = None;
            }
            SessionEvent::Connected { session_present } => {
                self.conn_error = None;
                self.close_reason = None;
                log(&format!("connected (session present: {session_present})"));
            }
            SessionEvent::ConnectionRefused {
                reason,
                retrying_in,
                ..
            } => {
                let msg = match retrying_in {
                    Some(d) => format!(
                        "the broker refused the connection: {reason} (retrying in {} s)",
                        d.as_secs()
                    ),
                    None => format!("the broker refused the connection: {reason}"),
                };
                self.note("error", t, msg.clone());
                self.conn_error = Some(msg);
            }
            SessionEvent::Disconnected { reason, .. } => {
                let msg = self.close_reason.take().unwrap_or(reason);
                self.note("warning", t, format!("disconnected: {msg}"));
                self.conn_error = Some(msg);
            }
            SessionEvent::Message(m) => self.on_message(&m.topic, &m.payload, t),
            SessionEvent::Delivered(id) => {
                if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                    self.tracker.handle_delivered(tid);
                    self.dirty.commands.insert(tid);
                }
            }
            SessionEvent::PublishFailed { id, reason } => {
                if let Some(tid) = self.publishes.remove(&id.as_u64()) {
                    self.tracker.handle_send_failed(tid, reason, t);
                    self.dirty.commands.insert(tid);
                }
            }
            SessionEvent::Subscribed {
                filter,
                granted: None,
            } => {
                self.note(
                    "error",
                    t,
                    format!("the broker refused the subscription to {filter}"),
                );
            }
            SessionEvent::ProtocolError(e) => {
                self.note("error", t, format!("protocol error from the broker: {e}"));
            }
            _ => {}
        }
    }

    fn on_message(&mut self, topic: &str, payload: &[u8], t: Timestamp) {
        match Topic::parse(topic) {
            Some(Topic::Response(d)) => self.tracker.handle_response(&d, payload, t),
            Some(Topic::Status(d)) => {
                self.tracker.handle_status(&d, payload);
                match decode_status(payload) {
                    Ok(Some(s)) => {
                        let view = view_mut(&mut self.devices, &d, Presence::Offline);
                        view.apply_status(s);
                        self.dirty.devices.insert(d);
                    }
                    Ok(None) => {
                        if let Some(v) = self.devices.get_mut(&d) {
                            v.presence = Presence::Unknown;
                            self.dirty.devices.insert(d);
                        }
                    }
                    // The tracker reported it.
                    Err(_) => {}
                }
            }
            Some(Topic::Telemetry(d)) => match decode_telemetry(payload) {
                Ok(s) => {
                    if let Some(v) = self.devices.get_mut(&d) {
                        v.telemetry.push_back(Sample {
                            at: s.at.as_millis(),
                            value: s.temperature,
                        });
                        while v.telemetry.len() > TELEMETRY_KEEP {
                            v.telemetry.pop_front();
                        }
                        v.telemetry_interval_ms = Some(s.interval_ms);
                        self.dirty.devices.insert(d);
                    }
                }
                Err(e) => self.note("warning", t, format!("telemetry from {d}: {e}")),
            },
            Some(Topic::Log(d)) => match decode_log(payload) {
                Ok(l) => {
                    let view = view_mut(&mut self.devices, &d, Presence::Unknown);
                    view.log = Some(l.lines);
                    self.dirty.devices.insert(d);
                }
                Err(e) => self.note("warning", t, format!("log from {d}: {e}")),
            },
            _ => self.note(
                "warning",
                t,
                format!("message on an unexpected topic {topic}"),
            ),
        }
    }

    fn on_tracker_event(&mut self, ev: TrackerEvent, t: Timestamp) {
        match ev {
            TrackerEvent::Member { tid, device, phase }
            | TrackerEvent::Late { tid, device, phase } => {
                self.dirty.commands.insert(tid);
                let Some(tr) = self.tracker.get(&tid) else {
                    return;
                };
                let view = view_mut(&mut self.devices, &device, Presence::Unknown);
                if phase.is_terminal() {
                    view.pending.retain(|p| p.tid != tid);
                    let m = tr.members.get(&device);
                    if let Some(state) = m
                        .and_then(|m| m.response.as_ref())
                        .and_then(|r| r.state.clone())
                    {
                        view.state = Some(state);
                    } else if phase == Phase::Succeeded {
                        // Success is the device's confirmation, even in text.
                        if let Some(on) = light_asked(tr) {
                            view.confirm_light(on);
                        }
                    }
                    let ok = phase == Phase::Succeeded;
                    view.last_outcome = Some((
                        format!(
                            "{}: {}",
                            tr.cmd,
                            phase_text(
                                &phase,
                                m.and_then(|m| m.response.as_ref())
                                    .and_then(|r| r.error.as_deref())
                            )
                        ),
                        ok,
                    ));
                } else {
                    upsert_pending(view, tr, phase.label());
                }
                self.dirty.devices.insert(device);
            }
            TrackerEvent::Finished { tid, .. } => {
                self.dirty.commands.insert(tid);
            }
            TrackerEvent::Ambiguous {
                tid,
                device,
                outstanding,
            } => {
                self.ambiguous.insert(tid, outstanding);
                self.dirty.commands.insert(tid);
                self.note(
                    "warning",
                    t,
                    format!("{device} answered in text with {outstanding} text commands outstanding: matched to the oldest"),
                );
            }
            TrackerEvent::Unmatched { device, why } => {
                let why = match why {
                    Unmatched::UnknownTid(tid) => format!("unknown TID {tid}"),
                    Unmatched::WrongDevice { tid, target } => {
                        format!("command {tid} was for {}", target_label(&target))
                    }
                    Unmatched::DeviceMismatch { claimed } => {
                        format!("it claims to come from {claimed}")
                    }
                    Unmatched::NoTextCommand => {
                        "a text answer with no text command outstanding".to_owned()
                    }
                    other => format!("{other:?}"),
                };
                self.note(
                    "warning",
                    t,
                    format!("answer from {device} matches no command: {why}"),
                );
            }
            TrackerEvent::Malformed { device, error } => {
                self.note(
                    "error",
                    t,
                    format!("malformed message from {device}: {error}"),
                );
            }
            TrackerEvent::SendFailed { tid, error } => {
                self.dirty.commands.insert(tid);
                self.note("warning", t, format!("command {tid} not sent yet: {error}"));
            }
            other => log(&format!("{other:?}")),
        }
    }

    fn note(&mut self, level: &'static str, at: Timestamp, text: String) {
        log(&text);
        self.dirty.notices.push(Notice { at, level, text });
    }

    fn take_batch(&mut self) -> Batch {
        let t = now();
        let devices = self
            .dirty
            .devices
            .drain()
            .filter_map(|d| self.devices.get(&d).cloned())
            .collect();
        let fanout_tid = self.store.fanout.get_untracked();
        let mut fanout = None;
        let mut commands = Vec::new();
        let mut changed_cmds = false;
        for tid in std::mem::take(&mut self.dirty.commands) {
            let Some(tr) = self.tracker.get(&tid) else {
                continue;
            };
            changed_cmds = true;
            if Some(tid) == fanout_tid {
                fanout = Some(FanoutView::of(tr));
            }
            commands.push(CommandView::of(tr, self.ambiguous.get(&tid).copied()));
        }
        if changed_cmds
            && t.saturating_since(self.last_save) >= Duration::from_millis(SAVE_EVERY_MS)
        {
            self.save(t);
        }
        Batch {
            devices,
            commands,
            fanout,
            notices: std::mem::take(&mut self.dirty.notices),
        }
    }

    fn save(&mut self, t: Timestamp) {
        self.last_save = t;
        let snap = self.tracker.snapshot();
        let Some(st) = storage(true) else {
            return;
        };
        if snap.commands.is_empty() {
            let _ = st.remove_item(SNAPSHOT_KEY);
            return;
        }
        if let Ok(json) = serde_json::to_string(&snap) {
            if st.set_item(SNAPSHOT_KEY, &json).is_err() {
                self.note(
                    "warning",
                    t,
                    "could not save outstanding commands (storage full)".to_owned(),
                );
            }
        }
    }

    fn restore_snapshot(&mut self) {
        let Some(json) = storage(true).and_then(|st| st.get_item(SNAPSHOT_KEY).ok().flatten())
        else {
            return;
        };
        let t = now();
        match serde_json::from_str::<TrackerSnapshot>(&json) {
            Ok(snap) => {
                let tids: Vec<Tid> = snap.commands.iter().map(|c| c.tid).collect();
                let n = tids.len();
                self.tracker.restore(snap, t);
                for tid in tids {
                    self.on_restored(tid);
                }
                self.note(
                    "info",
                    t,
                    format!("{n} outstanding commands restored after a reload"),
                );
            }
            Err(e) => self.note("error", t, format!("saved commands could not be read: {e}")),
        }
    }

    fn on_restored(&mut self, tid: Tid) {
        self.dirty.commands.insert(tid);
        let Some(tr) = self.tracker.get(&tid) else {
            return;
        };
        for (d, m) in &tr.members {
            if m.phase.is_terminal() {
                continue;
            }
            let view = view_mut(&mut self.devices, d, Presence::Unknown);
            upsert_pending(view, tr, m.phase.label());
            self.dirty.devices.insert(d.clone());
        }
        if matches!(tr.target, Target::Group(_)) && self.store.fanout.get_untracked().is_none() {
            self.store.fanout.set(Some(tid));
        }
    }
}

/// A device's canonical view, created with `presence` if the device is new.
fn view_mut<'a>(
    devices: &'a mut HashMap<DeviceId, DeviceView>,
    d: &DeviceId,
    presence: Presence,
) -> &'a mut DeviceView {
    devices
        .entry(d.clone())
        .or_insert_with(|| DeviceView::new(d.clone(), presence))
}

/// Shows command `tr` as pending on `view`, in phase `label`.
fn upsert_pending(view: &mut DeviceView, tr: &Tracked, label: &str) {
    match view.pending.iter_mut().find(|p| p.tid == tr.tid) {
        Some(p) => label.clone_into(&mut p.phase),
        None => view.pending.push(Pending {
            tid: tr.tid,
            cmd: tr.cmd.clone(),
            light: light_asked(tr),
            phase: label.to_owned(),
        }),
    }
}

/// For a `light` command (JSON or the document's text), the state it asks for.
fn light_asked(t: &Tracked) -> Option<bool> {
    match (&t.request, t.text.as_deref()) {
        (Some(r), _) if t.cmd == "light" => r.args.get("on").and_then(serde_json::Value::as_bool),
        (None, Some(text)) if t.cmd.eq_ignore_ascii_case("light") => text
            .split_once(':')
            .and_then(|(_, arg)| switchboard_protocol::command::parse_switch(arg)),
        _ => None,
    }
}

/// A target for a person.
pub fn target_label(t: &Target) -> String {
    match t {
        Target::Device(d) => d.to_string(),
        Target::Group(g) => format!("group {g}"),
    }
}

/// A phase, with its reason, for a person.
pub fn phase_text(p: &Phase, error: Option<&str>) -> String {
    match p {
        Phase::Rejected { reason } => format!("rejected ({reason})"),
        Phase::TimedOut { device_online } => match device_online {
            Some(true) => "timed out (device online, no answer)".to_owned(),
            Some(false) => "timed out (device offline)".to_owned(),
            None => "timed out (device presence unknown)".to_owned(),
        },
        Phase::Failed => match error {
            Some(e) => format!("failed ({e})"),
            None => "failed".to_owned(),
        },
        Phase::Expired => "expired (never reached the broker)".to_owned(),
        other => other.label().to_owned(),
    }
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Logs to the browser console.
pub fn log(msg: &str) {
    web_sys::console::log_1(&msg.into());
}
