//! What can be read of a tracker: its commands, what it has forgotten, what it has measured.

use super::{CommandTracker, RoundTrip, Tracked};
use crate::envelope::Tid;
use crate::topic::DeviceId;

impl CommandTracker {
    /// A command by TID.
    pub fn get(&self, tid: &Tid) -> Option<&Tracked> {
        self.commands.get(tid)
    }

    /// Every command known, in no particular order.
    pub fn commands(&self) -> impl Iterator<Item = &Tracked> {
        self.commands.values()
    }

    /// How many commands are not finished.
    pub fn outstanding(&self) -> usize {
        self.commands.values().filter(|t| !t.is_finished()).count()
    }

    /// How many finished commands the retention rule has forgotten so far.
    pub fn forgotten(&self) -> u64 {
        self.finished.forgotten()
    }

    /// The measured round trips to `device`, if any.
    pub fn round_trip(&self, device: &DeviceId) -> Option<&RoundTrip> {
        self.round_trips.get(device)
    }

    /// The round trips measured over every device.
    pub fn fleet_round_trip(&self) -> &RoundTrip {
        &self.fleet_round_trip
    }

    /// Straggler retransmissions in flight now (at most
    /// [`TrackerConfig::max_straggler_retransmissions`](super::TrackerConfig::max_straggler_retransmissions)).
    pub fn stragglers_in_flight(&self) -> usize {
        self.stragglers_in_flight
    }

    /// The sequence number the next command will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}
