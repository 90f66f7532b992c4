//! What a gate changed since it was last asked: saved in place of the whole snapshot.
//!
//! A gate remembers up to thousands of answers, and a device saves before acting and after
//! finishing. Writing the whole [`GateSnapshot`] each time costs in proportion to what is
//! remembered; a [`GateDelta`] costs in proportion to what one command changed. The answers
//! remembered and forgotten are logged in the order they happened (a replay is exact, evictions
//! included); the small parts (issuers' sequence numbers, sequences, commands running) are carried
//! whole.
//!
//! ```text
//!   snapshot S  ──apply(delta 1)──▶  S1  ──apply(delta 2)──▶  S2 == gate.snapshot()
//! ```

use serde::{Deserialize, Serialize};

use super::{Finished, GateSnapshot, JournalEntry, SequenceState};
use crate::topic::IssuerId;

/// One change to the remembered answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RecentChange {
    /// An answer was remembered under its TID (replacing one under the same TID, in place).
    Remembered(Finished),
    /// The oldest remembered answer was forgotten.
    ForgotOldest,
}

/// What changed in a gate between two calls of [`DeviceGate::take_delta`](super::DeviceGate::take_delta).
/// Applied to the snapshot the gate matched at the first call, it gives the snapshot at the
/// second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GateDelta {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) recent: Vec<RecentChange>,
    pub(super) issuers: Vec<(IssuerId, u64)>,
    pub(super) sequences: Vec<SequenceState>,
    pub(super) journal: Vec<JournalEntry>,
}

impl GateSnapshot {
    /// Brings the snapshot forward by what a gate changed since it matched this snapshot.
    pub fn apply(&mut self, delta: GateDelta) {
        for change in delta.recent {
            match change {
                RecentChange::Remembered(f) => {
                    match self.recent.iter_mut().find(|old| old.tid == f.tid) {
                        Some(old) => *old = f,
                        None => self.recent.push(f),
                    }
                }
                RecentChange::ForgotOldest => {
                    if !self.recent.is_empty() {
                        self.recent.remove(0);
                    }
                }
            }
        }
        self.issuers = delta.issuers;
        self.sequences = delta.sequences;
        self.journal = delta.journal;
    }
}
