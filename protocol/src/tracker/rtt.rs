//! Measured round trips and the retransmission timeout they give, after RFC 6298.
//!
//! Each sample is the time from a command's first transmission to its answer, taken only when the
//! command was transmitted once (Karn's rule: an answer after a retransmission could belong to
//! either copy). The smoothed round-trip time and its variation follow the RFC's gains (1/8 and
//! 1/4); the timeout is `SRTT + max(G, 4 * RTTVAR)`. The tracker keeps one estimate per device and
//! one for the whole fleet, which stands in for devices not measured yet and paces fan-outs.
//!
//! Karn's rule alone would never measure a link slower than the first backoff window: every
//! command there is retransmitted, so no answer is a valid sample. As RFC 6298 (5.5-5.7) does, a
//! retransmission backs the timeout off and the backed-off value stays until a valid sample
//! arrives. It backs off to the time waited in vain, not twice that as TCP does: on links that
//! lose messages at random (not from congestion), doubling cost more commands their deadline in
//! the seeded lossy schedules than it saved copies.

use core::time::Duration;
use std::collections::HashMap;

use crate::time::Timestamp;
use crate::topic::DeviceId;

/// The clock granularity `G` of RFC 6298: the timeout's variation term is never smaller.
const GRANULARITY: Duration = Duration::from_millis(10);

/// A smoothed round-trip estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundTrip {
    /// Smoothed round-trip time, microseconds; `None` before the first sample.
    srtt_us: Option<u64>,
    /// Round-trip variation, microseconds.
    rttvar_us: u64,
    samples: u64,
    /// The timeout backed off by retransmissions since the last valid sample.
    backed_off: Option<Duration>,
}

impl RoundTrip {
    /// Takes in one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        let r = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.samples = self.samples.saturating_add(1);
        self.backed_off = None;
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            Some(srtt) => {
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R|; SRTT <- 7/8 SRTT + 1/8 R
                self.rttvar_us = (self.rttvar_us.saturating_mul(3) + srtt.abs_diff(r)) / 4;
                self.srtt_us = Some((srtt.saturating_mul(7).saturating_add(r)) / 8);
            }
        }
    }

    /// The smoothed round-trip time, once measured.
    pub fn smoothed(&self) -> Option<Duration> {
        self.srtt_us.map(Duration::from_micros)
    }

    /// The retransmission timeout `SRTT + max(G, 4 * RTTVAR)`, or the backed-off one if that is
    /// longer; `None` before anything was learnt.
    pub fn timeout(&self) -> Option<Duration> {
        let measured = self.srtt_us.map(|srtt| {
            let var = Duration::from_micros(self.rttvar_us.saturating_mul(4)).max(GRANULARITY);
            Duration::from_micros(srtt) + var
        });
        match (measured, self.backed_off) {
            (Some(m), Some(b)) => Some(m.max(b)),
            (m, b) => m.or(b),
        }
    }

    /// A command went unanswered for `waited` and is being retransmitted: until the next valid
    /// sample, the timeout is at least that (never more than `cap`).
    pub fn back_off(&mut self, waited: Duration, cap: Duration) {
        let waited = waited.min(cap);
        self.backed_off = Some(self.backed_off.map_or(waited, |b| b.max(waited)));
    }

    /// How many samples it was built from.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// Karn's rule: only an answer to a single transmission (`attempts` 1, no straggler retry)
/// measures the round trip, from the first send to `now`.
pub(super) fn karn_sample(
    attempts: u32,
    retries: u32,
    first_sent_at: Option<Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    match (attempts, retries, first_sent_at) {
        (1, 0, Some(sent)) => Some(now.saturating_since(sent)),
        _ => None,
    }
}

/// Takes in one measured round trip, for the device and for the fleet.
pub(super) fn record(
    per_device: &mut HashMap<DeviceId, RoundTrip>,
    fleet: &mut RoundTrip,
    device: &DeviceId,
    rtt: Duration,
) {
    per_device.entry(device.clone()).or_default().sample(rtt);
    fleet.sample(rtt);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_sample_sets_srtt_and_half_of_it_as_variation() {
        let mut r = RoundTrip::default();
        assert_eq!(r.timeout(), None);
        r.sample(ms(100));
        assert_eq!(r.smoothed(), Some(ms(100)));
        // 100 + 4 * 50
        assert_eq!(r.timeout(), Some(ms(300)));
    }

    #[test]
    fn steady_samples_converge_and_the_timeout_tightens() {
        let mut r = RoundTrip::default();
        for _ in 0..200 {
            r.sample(ms(40));
        }
        assert_eq!(r.smoothed(), Some(ms(40)));
        // The variation decays towards zero; the granularity keeps a margin.
        let t = r.timeout().unwrap();
        assert!(t >= ms(50) && t < ms(52), "{t:?}");
    }

    #[test]
    fn a_retransmission_backs_off_until_a_valid_sample() {
        let mut r = RoundTrip::default();
        r.back_off(ms(400), ms(8_000));
        assert_eq!(r.timeout(), Some(ms(400)));
        r.back_off(ms(200), ms(8_000));
        assert_eq!(r.timeout(), Some(ms(400)), "never shrinks without a sample");
        r.back_off(ms(9_000), ms(8_000));
        assert_eq!(r.timeout(), Some(ms(8_000)), "capped");
        r.sample(ms(100));
        assert_eq!(
            r.timeout(),
            Some(ms(300)),
            "a valid sample ends the backoff"
        );
    }

    #[test]
    fn a_slow_spell_widens_the_timeout_at_once() {
        let mut r = RoundTrip::default();
        for _ in 0..50 {
            r.sample(ms(20));
        }
        let calm = r.timeout().unwrap();
        r.sample(ms(2_000));
        let after = r.timeout().unwrap();
        assert!(after > calm * 10, "{calm:?} -> {after:?}");
    }
}
