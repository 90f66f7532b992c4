//! When, and to whom, a command is sent again: timeouts from measured round trips, fan-out rounds
//! that wait for answers to pause, and the cap on straggler retransmissions in flight.
//!
//! Retransmission adapts to what it measures instead of storming a saturated fleet:
//! - a command is retransmitted no sooner than its device's retransmission timeout, computed from
//!   measured round trips as RFC 6298 does ([`RoundTrip`]), within the [`Backoff`](crate::backoff::Backoff) bounds and
//!   with full jitter above it;
//! - a fan-out's stragglers are retransmitted to only once answers to that command have stopped
//!   arriving for a quiet period (the fleet's timeout, at least the backoff base): while answers
//!   stream in, the broker is busy delivering them, and more copies would only slow it down;
//! - at most [`TrackerConfig::max_straggler_retransmissions`](super::TrackerConfig::max_straggler_retransmissions) straggler retransmissions are in
//!   flight at once; the rest wait for a later round.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::HashMap;

use super::{CommandTracker, Phase, RoundTrip, Target};
use crate::envelope::Tid;
use crate::time::Timestamp;
use crate::topic::DeviceId;

impl CommandTracker {
    /// The shortest retransmission delay for a command to `target`.
    pub(super) fn timeout_for(&self, target: &Target) -> Duration {
        match target {
            Target::Device(d) => device_timeout(&self.round_trips, &self.fleet_round_trip, d),
            Target::Group(_) => self.fleet_round_trip.timeout().unwrap_or_default(),
        }
    }

    /// How long a fan-out waits after its last answer before retransmitting to stragglers.
    pub(super) fn quiet_period(&self) -> Duration {
        let b = &self.config.backoff;
        self.fleet_round_trip
            .timeout()
            .unwrap_or_default()
            .clamp(b.base, b.cap.max(b.base))
    }

    pub(super) fn retransmit(&mut self, tid: Tid, now: Timestamp) {
        let quiet = self.quiet_period();
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        if let Target::Device(d) = &t.target {
            let waited = t
                .last_sent_at
                .map_or(Duration::ZERO, |sent| now.saturating_since(sent));
            self.round_trips
                .entry(d.clone())
                .or_default()
                .back_off(waited, self.config.backoff.cap);
            self.transmit.push_back((tid, None));
            return;
        }
        // The members retransmitted to last round had their chance: their slots are free again.
        for m in t.members.values_mut() {
            if std::mem::take(&mut m.retry_in_flight) {
                self.stragglers_in_flight = self.stragglers_in_flight.saturating_sub(1);
            }
        }
        let budget = self
            .config
            .max_straggler_retransmissions
            .saturating_sub(self.stragglers_in_flight);
        // Stragglers get the same TID on their own topics; members that answered do not.
        let mut sent = 0;
        let mut waiting = false;
        for (d, m) in t.members.iter_mut() {
            if m.phase.is_terminal() {
                continue;
            }
            if sent == budget {
                waiting = true;
                break;
            }
            self.transmit.push_back((tid, Some(d.clone())));
            m.retries += 1;
            m.retry_in_flight = true;
            sent += 1;
        }
        self.stragglers_in_flight += sent;
        if sent > 0 {
            t.attempts += 1;
        } else if waiting {
            // Every slot is taken by other fan-outs: look again after a quiet period.
            let at = now + quiet;
            if at < t.deadline {
                t.next_retry = Some(at);
                self.timers.push(Reverse((at, tid)));
            }
        }
    }

    /// Gives the members of `tid` that timed out or expired another `deadline`, retransmitting to
    /// them with the same TID. Returns how many were reopened.
    pub fn retry_stragglers(&mut self, tid: Tid, deadline: Duration, now: Timestamp) -> usize {
        let Some(t) = self.commands.get_mut(&tid) else {
            return 0;
        };
        if t.text.is_some() {
            return 0;
        }
        let mut reopened = Vec::new();
        for (d, m) in t.members.iter_mut() {
            if matches!(m.phase, Phase::TimedOut { .. } | Phase::Expired) {
                t.progress.count(&m.phase, -1);
                t.progress.count(&Phase::Queued, 1);
                m.phase = Phase::Queued;
                m.finished_at = None;
                m.retries += 1;
                reopened.push(d.clone());
            }
        }
        if reopened.is_empty() {
            return 0;
        }
        t.deadline = now + deadline;
        t.finished_at = None;
        self.timers.push(Reverse((t.deadline, tid)));
        for d in &reopened {
            self.transmit.push_back((tid, Some(d.clone())));
        }
        reopened.len()
    }
}

/// A device's retransmission timeout: its own measurement, else the fleet's, else none.
pub(super) fn device_timeout(
    round_trips: &HashMap<DeviceId, RoundTrip>,
    fleet: &RoundTrip,
    device: &DeviceId,
) -> Duration {
    round_trips
        .get(device)
        .and_then(RoundTrip::timeout)
        .or_else(|| fleet.timeout())
        .unwrap_or_default()
}
