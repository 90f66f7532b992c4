//! The pump: the protocol's [`Client`], the socket, one browser timer and the [`Projection`],
//! moved along by every input (socket events, the timer, the operator's actions), and the store
//! written from the projection on the next animation frame, or at once when the panel was idle.
//!
//! Every input runs [`input`]: the pump's state is borrowed for the input and its consequences,
//! then released before any signal is written, so nothing drawn can reach back into it.

mod connection;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use gloo_timers::callback::Timeout;
use leptos::prelude::{GetUntracked, WithUntracked};
use switchboard_protocol::client::{Client, ClientEvent, Switchboard};
use switchboard_protocol::session::{only_acknowledgements, QoS};
use switchboard_protocol::tracker::{Retention, TrackerConfig};
use switchboard_protocol::{DeviceId, Engine, IssuerId, Timestamp};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::clock::now;
use crate::persistence;
use crate::projection::Projection;
use crate::settings::{random_id, Settings};
use crate::socket::Socket;
use crate::store::StoreWriter;
use crate::tabs::Tabs;

/// Default command deadline.
pub const DEADLINE: Duration = Duration::from_secs(15);
/// What the history keeps: 1,000 finished commands, or fewer when fan-outs hold 50,000 members
/// between them, each for at most an hour. A tab left open all day levels off there.
pub const RETENTION: Retention = Retention {
    commands: 1_000,
    members: 50_000,
    age: Duration::from_secs(3_600),
};
/// Within one frame's time, this many flushes are made at once; more wait for the next animation
/// frame. A press and its answers are drawn as they come; a stream of thousands is drawn per frame.
const FRAME_MS: u64 = 16;
const FLUSHES_PER_FRAME: u32 = 4;
/// If animation frames do not come (a hidden tab), the store is written after this long anyway.
const FRAME_FALLBACK_MS: u32 = 250;
/// Unfinished commands are saved for a reload at most this often.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Everything the link moves along. See the [module documentation](self).
pub struct Pump {
    me: Weak<RefCell<Pump>>,
    writer: StoreWriter,
    pub(crate) client: Client,
    pub(crate) projection: Projection,
    socket: Option<Socket>,
    settings: Option<Settings>,
    timer: Option<(Timestamp, Timeout)>,
    /// A flush is planned (an animation frame, with a fallback timer), and why.
    flush_planned: Option<(Timeout, Flush)>,
    /// Unfinished commands are to be saved after the current task.
    save_planned: Option<Timeout>,
    /// Bytes the client wrote that have not left yet (acknowledgements waiting for company).
    unsent: Vec<u8>,
    /// `unsent` is to be written after the current burst of socket events.
    write_planned: Option<Timeout>,
    /// The current pacing window and the flushes made at once in it.
    window: (Timestamp, u32),
    last_save: Timestamp,
    telemetry_of: Option<DeviceId>,
    selected: Option<DeviceId>,
    close_reason: Option<String>,
    conn_error: Option<String>,
    /// The broker gave this client id's session to another client, or another tab of this
    /// browser holds the id.
    taken_over: bool,
    /// The other tabs of this browser.
    tabs: Option<Tabs>,
}

impl std::fmt::Debug for Pump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pump")
            .field("client", &self.client)
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl Pump {
    /// A pump with no connection yet, writing through `writer`.
    pub fn new(writer: StoreWriter) -> Rc<RefCell<Pump>> {
        let issuer = IssuerId::new(random_id("panel"))
            .unwrap_or_else(|_| IssuerId::new("panel").expect("a valid id"));
        let mut config = TrackerConfig::new(issuer);
        config.deadline = DEADLINE;
        config.first_seq = TrackerConfig::first_seq_at(now());
        config.retention = RETENTION;
        let mut client = Client::new(config, Switchboard, seed());
        // Logs a device publishes on request (`get_log`); subscribed on every session.
        let logs = (switchboard_protocol::topic::ALL_LOGS, QoS::AtLeastOnce);
        if let Err(e) = client.subscribe(logs.0, logs.1, now()) {
            log(&format!("cannot follow device logs: {e}"));
        }
        Rc::new_cyclic(|me| {
            let hears = me.clone();
            let tabs = Tabs::open(move |m| {
                if let Some(rc) = hears.upgrade() {
                    input(&rc, |p, t| p.on_tab_message(m, t));
                }
            });
            RefCell::new(Pump {
                me: me.clone(),
                writer,
                client,
                projection: Projection::new(),
                socket: None,
                settings: None,
                timer: None,
                flush_planned: None,
                save_planned: None,
                unsent: Vec::new(),
                write_planned: None,
                window: (Timestamp::ZERO, 0),
                last_save: Timestamp::ZERO,
                telemetry_of: None,
                selected: None,
                close_reason: None,
                conn_error: None,
                taken_over: false,
                tabs,
            })
        })
    }

    /// Opens a device's details: its telemetry is followed while they are open.
    pub fn select(&mut self, device: Option<DeviceId>, t: Timestamp) {
        self.selected.clone_from(&device);
        if self.telemetry_of == device {
            return;
        }
        if let Some(old) = self.telemetry_of.take() {
            let _ = self
                .client
                .unsubscribe(&switchboard_protocol::topic::telemetry(&old), t);
        }
        if let Some(d) = &device {
            let filter = switchboard_protocol::topic::telemetry(d);
            if self.client.subscribe(&filter, QoS::AtMostOnce, t).is_ok() {
                self.telemetry_of = device;
            }
        }
    }

    /// Takes back what an earlier page of this tab left unfinished.
    pub fn restore(&mut self, t: Timestamp) {
        match persistence::load() {
            None => {}
            Some(Ok(snap)) => {
                let tids: Vec<_> = snap.commands.iter().map(|c| c.tid).collect();
                self.client.restore(snap, t);
                for tid in &tids {
                    self.projection.on_restored(*tid, self.client.tracker());
                }
                let n = tids.len();
                self.projection.note(
                    "info",
                    t,
                    format!("{n} outstanding commands restored after a reload"),
                );
            }
            Some(Err(e)) => self.projection.note("error", t, e),
        }
    }

    /// Saves unfinished commands now.
    pub fn save(&mut self, t: Timestamp) {
        self.save_planned = None;
        self.last_save = t;
        if let Err(e) = persistence::save(self.client.tracker()) {
            self.projection.note("warning", t, e);
        }
    }

    /// Carries out what the client asks for and takes in what it reports, until it is quiet;
    /// then re-arms the timer.
    ///
    /// Writes leave in as few WebSocket messages as possible (MQTT allows several packets per
    /// message; each message is a browser call that costs more than the packets): what one turn
    /// writes leaves together, and acknowledgements of the broker's messages wait for the end of
    /// the current burst of socket events (a zero timer), so that a stream of answers is
    /// acknowledged a few dozen at a time. Anything else takes waiting acknowledgements with it.
    /// A hidden tab writes at once: its timers are throttled to a second or more, and the broker
    /// sends no more than its in-flight window before the acknowledgements come.
    fn settle(&mut self, t: Timestamp) {
        loop {
            let mut urgent = false;
            while let Some(bytes) = self.client.poll_transmit() {
                urgent |= !only_acknowledgements(&bytes);
                self.unsent.extend_from_slice(&bytes);
            }
            if urgent || page_hidden() {
                self.write_unsent();
            } else if !self.unsent.is_empty() && self.write_planned.is_none() {
                let me = self.me.clone();
                self.write_planned = Some(Timeout::new(0, move || {
                    if let Some(rc) = me.upgrade() {
                        rc.borrow_mut().write_unsent();
                    }
                }));
            }
            let Some(ev) = self.client.poll_event() else {
                break;
            };
            self.on_event(ev, t);
        }
        self.arm_timer(t);
    }

    /// Lets the socket go, with what was waiting for it: acknowledgements belong to their
    /// connection (the broker sends again what a new one has not acknowledged).
    fn drop_socket(&mut self) {
        self.socket = None;
        self.unsent.clear();
        self.write_planned = None;
    }

    /// Writes what waits to the socket, in one message.
    fn write_unsent(&mut self) {
        self.write_planned = None;
        if self.unsent.is_empty() {
            return;
        }
        if let Some(Err(e)) = self.socket.as_ref().map(|s| s.send(&self.unsent)) {
            log(&e);
        }
        self.unsent.clear();
    }

    fn on_event(&mut self, ev: ClientEvent, t: Timestamp) {
        match ev {
            ClientEvent::Session(ev) => self.on_session_event(ev, t),
            other => self.projection.on_event(other, self.client.tracker(), t),
        }
    }

    /// Arms the browser timer for the client's next deadline. A timer already armed for the same
    /// time or earlier is kept: the keep-alive deadline moves with every packet written, and
    /// re-arming per message would cost a timer per answer in a fan-out. An early wake finds
    /// nothing due and arms again.
    fn arm_timer(&mut self, t: Timestamp) {
        let Some(at) = self.client.poll_timeout() else {
            return;
        };
        if self.timer.as_ref().is_some_and(|(armed, _)| *armed <= at) {
            return;
        }
        let me = self.me.clone();
        let wait = at.saturating_since(t).as_millis().min(u128::from(u32::MAX)) as u32;
        let timeout = Timeout::new(wait, move || {
            if let Some(rc) = me.upgrade() {
                input(&rc, |p, t| {
                    p.timer = None;
                    p.client.handle_timeout(t);
                });
            }
        });
        self.timer = Some((at, timeout));
    }

    /// Whether the store should be written now: something the operator waits for changed and few
    /// flushes were made in this frame's time. Otherwise a flush is planned for the next animation
    /// frame: for progress on the way (`delivered`), and for a stream of answers beyond the few.
    fn flush_now_or_plan(&mut self, t: Timestamp) -> bool {
        if !self.has_news() {
            // A keep-alive, an acknowledgement, a timer that found nothing due: no frame.
            return false;
        }
        if !self.projection.is_urgent() {
            self.plan_flush(Flush::Lazy);
            return false;
        }
        if matches!(self.flush_planned, Some((_, Flush::Paced))) {
            return false;
        }
        if t.saturating_since(self.window.0) >= Duration::from_millis(FRAME_MS) {
            self.window = (t, 0);
        }
        if self.window.1 < FLUSHES_PER_FRAME {
            self.window.1 += 1;
            // A lazy flush still planned finds nothing left to write.
            self.flush_planned = None;
            return true;
        }
        self.plan_flush(Flush::Paced);
        false
    }

    /// Whether the store would change: the projection has something, or the connection, its
    /// error or the open device moved.
    fn has_news(&self) -> bool {
        let store = self.writer.store();
        self.projection.is_dirty()
            || store.conn.with_untracked(|c| *c != self.conn())
            || store.conn_error.with_untracked(|e| *e != self.conn_error)
            || store.selected.with_untracked(|s| *s != self.selected)
            || store.forgotten.get_untracked() != self.client.tracker().forgotten()
    }

    /// Plans a flush for the next animation frame, with a fallback timer for a hidden tab.
    fn plan_flush(&mut self, why: Flush) {
        if let Some((_, planned)) = &mut self.flush_planned {
            if why == Flush::Paced {
                *planned = Flush::Paced;
            }
            return;
        }
        let me = self.me.clone();
        let frame = Closure::once_into_js(move || {
            if let Some(rc) = me.upgrade() {
                flush_planned(&rc);
            }
        });
        if let Some(w) = web_sys::window() {
            let _ = w.request_animation_frame(frame.unchecked_ref());
        }
        let me = self.me.clone();
        let fallback = Timeout::new(FRAME_FALLBACK_MS, move || {
            if let Some(rc) = me.upgrade() {
                flush_planned(&rc);
            }
        });
        self.flush_planned = Some((fallback, why));
    }

    /// Saves unfinished commands after the current task, and at most once per [`SAVE_EVERY`]: a
    /// press is drawn first, and a stream of presses costs one save a second. A page going away
    /// saves at once (`pagehide`).
    fn plan_save(&mut self, t: Timestamp) {
        if self.save_planned.is_some() {
            return;
        }
        let due = self.last_save + SAVE_EVERY;
        let wait = due
            .saturating_since(t)
            .as_millis()
            .min(u128::from(u32::MAX)) as u32;
        let me = self.me.clone();
        self.save_planned = Some(Timeout::new(wait, move || {
            if let Some(rc) = me.upgrade() {
                let mut p = rc.borrow_mut();
                p.save_planned = None;
                p.save(now());
            }
        }));
    }
}

/// Why a flush waits for the next animation frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Only progress on the way changed: drawn with the next frame, or with the next answer.
    Lazy,
    /// Enough flushes were made in this frame's time: the rest waits for the frame.
    Paced,
}

/// Runs an operator's action through the pump and writes the store at once. It does not count
/// for the pacing, so the broker's answer to it is drawn at once too.
pub fn action<R>(rc: &Rc<RefCell<Pump>>, f: impl FnOnce(&mut Pump, Timestamp) -> R) -> R {
    let t = now();
    let r = {
        let mut p = rc.borrow_mut();
        let r = f(&mut p, t);
        p.settle(t);
        r
    };
    flush(rc);
    r
}

/// Runs one input from the broker or a timer through the pump, then writes the store if the
/// panel was idle for a frame, or plans a flush for the next animation frame.
pub fn input<R>(rc: &Rc<RefCell<Pump>>, f: impl FnOnce(&mut Pump, Timestamp) -> R) -> R {
    let t = now();
    let (r, flush_now) = {
        let mut p = rc.borrow_mut();
        let r = f(&mut p, t);
        p.settle(t);
        let flush_now = p.flush_now_or_plan(t);
        (r, flush_now)
    };
    if flush_now {
        flush(rc);
    }
    r
}

/// A planned flush is due (an animation frame, or its fallback timer, whichever comes first).
fn flush_planned(rc: &Rc<RefCell<Pump>>) {
    let planned = rc.borrow_mut().flush_planned.take().is_some();
    if planned {
        flush(rc);
    }
}

/// Writes what changed into the store, outside any borrow of the pump. An operator's action
/// flushes this way at once, without delaying the broker's answer to it by a frame.
pub fn flush(rc: &Rc<RefCell<Pump>>) {
    let (writer, batch, conn, conn_error, selected, forgotten) = {
        let mut guard = rc.borrow_mut();
        let p = &mut *guard;
        let t = now();
        let batch = p.projection.take_batch(p.client.tracker());
        let outstanding_changed = !batch.commands.is_empty();
        if outstanding_changed {
            p.plan_save(t);
        }
        (
            p.writer,
            batch,
            p.conn(),
            p.conn_error.clone(),
            p.selected.clone(),
            p.client.tracker().forgotten(),
        )
    };
    writer.set_conn(conn, conn_error);
    writer.set_selected(selected);
    writer.put_devices(batch.devices);
    writer.put_commands(batch.commands);
    writer.forget_commands(&batch.forgotten, forgotten);
    if let Some(f) = batch.fanout {
        writer.set_fanout_view(Some(f));
    }
    for n in &batch.notices {
        log(&n.text);
    }
    writer.notices(batch.notices);
}

/// Whether the page is hidden (a background tab), where timers are throttled.
fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

fn seed() -> u64 {
    (js_sys::Math::random() * (u64::MAX as f64)) as u64
}

/// Logs to the browser console.
pub fn log(msg: &str) {
    web_sys::console::log_1(&msg.into());
}
