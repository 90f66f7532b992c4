//! Measured round trips and the retransmission timeout they give, after RFC 6298.
//!
//! Each sample is the time from a command's first transmission to its answer, taken only when the
//! command was transmitted once (Karn's rule: an answer after a retransmission could belong to
//! either copy). The smoothed round-trip time and its variation follow the RFC's gains (1/8 and
//! 1/4); the timeout is `SRTT + max(G, 4 * RTTVAR)`. The tracker keeps one estimate per device and
//! one for the whole fleet, which stands in for devices not measured yet and paces fan-outs.

use core::time::Duration;

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
}

impl RoundTrip {
    /// Takes in one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        let r = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.samples = self.samples.saturating_add(1);
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

    /// The retransmission timeout `SRTT + max(G, 4 * RTTVAR)`, once measured.
    pub fn timeout(&self) -> Option<Duration> {
        let srtt = self.srtt_us?;
        let var = Duration::from_micros(self.rttvar_us.saturating_mul(4)).max(GRANULARITY);
        Some(Duration::from_micros(srtt) + var)
    }

    /// How many samples it was built from.
    pub fn samples(&self) -> u64 {
        self.samples
    }
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
