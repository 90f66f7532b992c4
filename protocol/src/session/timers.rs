//! The session's deadlines: one slot per kind of timer; the next deadline is their minimum.
//!
//! mqtt-protocol-core asks for its keep-alive timers with `RequestTimerReset { kind, duration_ms }`
//! and `RequestTimerCancel(kind)`; the session turns each into an absolute deadline here, next to
//! its own connect and reconnect timers, and hands the due ones back when `handle_timeout` runs.

use core::time::Duration;

use mqtt_protocol_core::mqtt::connection::TimerKind;

use crate::time::Timestamp;

/// One kind of deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// mqtt-protocol-core: time to send a PINGREQ.
    PingreqSend,
    /// mqtt-protocol-core: the peer's keep-alive ran out (a server-side timer; kept for
    /// completeness).
    PingreqRecv,
    /// mqtt-protocol-core: the PINGRESP did not come in time.
    PingrespRecv,
    /// The transport did not open, or the CONNACK did not come, in time.
    Connect,
    /// Time for the next connection attempt.
    Reconnect,
}

impl Timer {
    /// Every timer, in the order due timers fire when they share a deadline.
    const ALL: [Timer; 5] = [
        Timer::Connect,
        Timer::PingrespRecv,
        Timer::PingreqRecv,
        Timer::PingreqSend,
        Timer::Reconnect,
    ];

    /// The mqtt-protocol-core timer this is, if it is one.
    pub(super) fn kind(self) -> Option<TimerKind> {
        match self {
            Timer::PingreqSend => Some(TimerKind::PingreqSend),
            Timer::PingreqRecv => Some(TimerKind::PingreqRecv),
            Timer::PingrespRecv => Some(TimerKind::PingrespRecv),
            Timer::Connect | Timer::Reconnect => None,
        }
    }
}

impl From<TimerKind> for Timer {
    fn from(kind: TimerKind) -> Self {
        match kind {
            TimerKind::PingreqSend => Timer::PingreqSend,
            TimerKind::PingreqRecv => Timer::PingreqRecv,
            TimerKind::PingrespRecv => Timer::PingrespRecv,
        }
    }
}

/// The armed deadlines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Timers {
    pingreq_send: Option<Timestamp>,
    pingreq_recv: Option<Timestamp>,
    pingresp_recv: Option<Timestamp>,
    connect: Option<Timestamp>,
    reconnect: Option<Timestamp>,
}

impl Timers {
    fn slot(&mut self, timer: Timer) -> &mut Option<Timestamp> {
        match timer {
            Timer::PingreqSend => &mut self.pingreq_send,
            Timer::PingreqRecv => &mut self.pingreq_recv,
            Timer::PingrespRecv => &mut self.pingresp_recv,
            Timer::Connect => &mut self.connect,
            Timer::Reconnect => &mut self.reconnect,
        }
    }

    fn get(&self, timer: Timer) -> Option<Timestamp> {
        match timer {
            Timer::PingreqSend => self.pingreq_send,
            Timer::PingreqRecv => self.pingreq_recv,
            Timer::PingrespRecv => self.pingresp_recv,
            Timer::Connect => self.connect,
            Timer::Reconnect => self.reconnect,
        }
    }

    /// Arms `timer` to fire at `at`, replacing any earlier deadline.
    pub(super) fn set(&mut self, timer: Timer, at: Timestamp) {
        *self.slot(timer) = Some(at);
    }

    /// Arms `timer` to fire `after` from `now`; a zero duration disarms it.
    pub(super) fn set_after(&mut self, timer: Timer, now: Timestamp, after: Duration) {
        *self.slot(timer) = (!after.is_zero()).then(|| now + after);
    }

    /// Disarms `timer`.
    pub(super) fn cancel(&mut self, timer: Timer) {
        *self.slot(timer) = None;
    }

    /// Disarms every timer.
    pub(super) fn clear(&mut self) {
        *self = Timers::default();
    }

    /// The earliest armed deadline.
    pub(super) fn next(&self) -> Option<Timestamp> {
        Timer::ALL.into_iter().filter_map(|t| self.get(t)).min()
    }

    /// Disarms and returns one timer whose deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: Timestamp) -> Option<Timer> {
        let due = Timer::ALL
            .into_iter()
            .filter_map(|t| self.get(t).filter(|at| *at <= now).map(|at| (at, t)))
            .min_by_key(|(at, _)| *at)
            .map(|(_, t)| t)?;
        self.cancel(due);
        Some(due)
    }
}
