//! How long finished commands are kept: by count, by fan-out members and by age, oldest finished
//! first. Outstanding commands are never forgotten.

use core::time::Duration;
use std::collections::VecDeque;

use super::{CommandTracker, TrackerEvent};
use crate::envelope::Tid;
use crate::time::Timestamp;

/// The retention rule of a tracker. A finished command is forgotten as soon as any bound is
/// exceeded, oldest finished first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// At most this many finished commands are kept.
    pub commands: usize,
    /// At most this many members over all finished commands (a fan-out to 10,000 devices counts
    /// 10,000), so that a few huge fan-outs cannot hold the memory that many small commands would.
    pub members: usize,
    /// A finished command is kept at most this long after it finished.
    pub age: Duration,
}

impl Retention {
    /// 1,000 commands, 100,000 members, one hour.
    pub const DEFAULT: Retention = Retention {
        commands: 1_000,
        members: 100_000,
        age: Duration::from_secs(3_600),
    };
}

impl Default for Retention {
    fn default() -> Self {
        Retention::DEFAULT
    }
}

/// Finished commands in the order they finished.
#[derive(Debug, Default)]
pub(super) struct FinishedQueue {
    /// (finished at, TID, members). An entry is stale when its command was reopened since
    /// (`retry_stragglers`) or already forgotten; stale entries are skipped.
    order: VecDeque<(Timestamp, Tid, usize)>,
    members: usize,
    /// Finished commands forgotten so far.
    forgotten: u64,
}

impl FinishedQueue {
    pub(super) fn push(&mut self, at: Timestamp, tid: Tid, members: usize) {
        self.order.push_back((at, tid, members));
        self.members = self.members.saturating_add(members);
    }

    /// The next command the rule forgets at `now`, popped; `live(tid, at)` says whether an entry
    /// still stands for a finished command.
    pub(super) fn pop_expired(
        &mut self,
        rule: &Retention,
        now: Timestamp,
        mut live: impl FnMut(&Tid, Timestamp) -> bool,
    ) -> Option<Tid> {
        while let Some(&(at, tid, members)) = self.order.front() {
            let over = self.order.len() > rule.commands
                || self.members > rule.members
                || at + rule.age <= now;
            if !live(&tid, at) {
                self.order.pop_front();
                self.members = self.members.saturating_sub(members);
                continue;
            }
            if !over {
                return None;
            }
            self.order.pop_front();
            self.members = self.members.saturating_sub(members);
            self.forgotten = self.forgotten.saturating_add(1);
            return Some(tid);
        }
        None
    }

    pub(super) fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

impl CommandTracker {
    /// Forgets finished commands beyond the retention rule, oldest finished first.
    pub(super) fn forget_by_retention(&mut self, now: Timestamp) {
        let commands = &mut self.commands;
        while let Some(tid) =
            self.finished
                .pop_expired(&self.config.retention, now, |tid, finished_at| {
                    commands
                        .get(tid)
                        .is_some_and(|t| t.is_finished() && t.finished_at == Some(finished_at))
                })
        {
            commands.remove(&tid);
            self.events.push_back(TrackerEvent::Forgotten { tid });
        }
    }
}
