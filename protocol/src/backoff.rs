//! Exponential backoff with full jitter, as plain data.
//!
//! One policy serves both command retransmission (the tracker) and reconnection (the session), so the
//! fleet never hammers a broker that has just come back. "Full jitter" draws each delay uniformly from
//! `[0, min(cap, base * 2^attempt)]`, which spreads retries of many clients over the whole window
//! instead of synchronising them (see "Exponential Backoff and Jitter", AWS Architecture Blog).
//!
//! A small floor keeps a delay from collapsing to zero, which would turn a retry into a busy loop.

use core::time::Duration;

use serde::{Deserialize, Serialize};

/// How long to wait before attempt number `n` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub base: Duration,
    /// No delay is ever longer than this.
    pub cap: Duration,
    /// No delay is ever shorter than this.
    pub floor: Duration,
}

impl Backoff {
    /// The default for command retransmission: 500 ms, doubling up to 8 s.
    pub const COMMANDS: Backoff = Backoff {
        base: Duration::from_millis(500),
        cap: Duration::from_secs(8),
        floor: Duration::from_millis(50),
    };

    /// The default for reconnecting to a broker: 250 ms, doubling up to 30 s.
    pub const RECONNECT: Backoff = Backoff {
        base: Duration::from_millis(250),
        cap: Duration::from_secs(30),
        floor: Duration::from_millis(100),
    };

    /// The ceiling of the jitter window for `attempt`: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.cap, |d| d.min(self.cap))
            .max(self.floor)
    }

    /// A delay for `attempt` drawn with full jitter from the caller's random source.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let floor = u64::try_from(self.floor.as_millis()).unwrap_or(0).min(ms);
        Duration::from_millis(rng.u64(floor..=ms))
    }

    /// A delay for `attempt` that waits out `at_least` (a measured retransmission timeout) first:
    /// `at_least` plus a full-jitter draw from the window for `attempt`, never more than `cap`.
    /// Retransmitting sooner than the measured round trip only adds a copy that the answer
    /// overtakes; the jitter on top still spreads many clients' retries apart. With `at_least`
    /// zero this is [`Backoff::delay`].
    pub fn delay_at_least(
        &self,
        attempt: u32,
        at_least: Duration,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        let jitter = self.delay(attempt, rng);
        if at_least.is_zero() {
            return jitter;
        }
        (at_least + jitter).min(self.cap)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::COMMANDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::COMMANDS;
        assert_eq!(b.ceiling(0), Duration::from_millis(500));
        assert_eq!(b.ceiling(1), Duration::from_millis(1000));
        assert_eq!(b.ceiling(3), Duration::from_millis(4000));
        assert_eq!(b.ceiling(4), Duration::from_secs(8));
        assert_eq!(b.ceiling(200), Duration::from_secs(8));
    }

    #[test]
    fn delays_stay_in_the_jitter_window_and_spread() {
        let b = Backoff::COMMANDS;
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..10 {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let d = b.delay(attempt, &mut rng);
                assert!(
                    d >= b.floor && d <= b.ceiling(attempt),
                    "{d:?} at {attempt}"
                );
                seen.insert(d);
            }
            assert!(
                seen.len() > 20,
                "jitter must spread delays, got {}",
                seen.len()
            );
        }
    }

    #[test]
    fn a_measured_timeout_raises_the_window_but_not_past_the_cap() {
        let b = Backoff::COMMANDS;
        let mut rng = fastrand::Rng::with_seed(3);
        for attempt in 0..6 {
            for _ in 0..100 {
                let d = b.delay_at_least(attempt, Duration::from_millis(1_200), &mut rng);
                let window = b.ceiling(attempt);
                assert!(d >= Duration::from_millis(1_200).min(b.cap), "{d:?}");
                assert!(
                    d <= (Duration::from_millis(1_200) + window).min(b.cap),
                    "{d:?}"
                );
                let huge = b.delay_at_least(attempt, Duration::from_secs(60), &mut rng);
                assert_eq!(huge, b.cap, "a timeout beyond the cap is the cap");
            }
        }
        let zero = b.delay_at_least(2, Duration::ZERO, &mut fastrand::Rng::with_seed(9));
        assert_eq!(zero, b.delay(2, &mut fastrand::Rng::with_seed(9)));
    }

    #[test]
    fn same_seed_same_delays() {
        let b = Backoff::RECONNECT;
        let a: Vec<_> = {
            let mut r = fastrand::Rng::with_seed(42);
            (0..8).map(|n| b.delay(n, &mut r)).collect()
        };
        let c: Vec<_> = {
            let mut r = fastrand::Rng::with_seed(42);
            (0..8).map(|n| b.delay(n, &mut r)).collect()
        };
        assert_eq!(a, c);
    }
}
