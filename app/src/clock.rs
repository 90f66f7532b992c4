//! The browser's clock: the protocol's time, and a signal ticking every second for countdowns
//! ("reconnecting in 3 s", "next retry in 2 s").

use leptos::prelude::*;
use switchboard_protocol::Timestamp;

/// The browser's wall clock, as the protocol's time.
pub fn now() -> Timestamp {
    Timestamp::from_millis(js_sys::Date::now() as u64)
}

/// A clock signal ticking every second.
#[derive(Clone, Copy, Debug)]
pub struct Clock(pub ReadSignal<Timestamp>);

impl Clock {
    /// Starts the clock; it ticks for as long as the page lives.
    pub fn start() -> Clock {
        let (time, set_time) = signal(now());
        let tick = gloo_timers::callback::Interval::new(1_000, move || set_time.set(now()));
        tick.forget();
        Clock(time)
    }
}
