//! Outstanding commands across a restart of the application (a page reload): what is kept and
//! how it is taken back.

use std::cmp::Reverse;

use super::{CommandTracker, Phase, Target, Tracked, TrackerSnapshot};
use crate::time::Timestamp;

impl CommandTracker {
    /// What must survive a restart of the application (a page reload): every unfinished command and
    /// the sequence counter. Restore it with [`CommandTracker::restore`].
    pub fn snapshot(&self) -> TrackerSnapshot {
        let mut commands: Vec<Tracked> = self
            .commands
            .values()
            .filter(|t| !t.is_finished())
            .cloned()
            .collect();
        commands.sort_by_key(|t| t.created_at);
        TrackerSnapshot {
            next_seq: self.next_seq,
            commands,
        }
    }

    /// Takes back the unfinished commands of a [`CommandTracker::snapshot`], taken before a
    /// restart, and follows them on.
    ///
    /// Whatever happened to them while the application was away is unknown: a member that was
    /// queued is sent, a member that reached the broker keeps its phase and its command is
    /// retransmitted with the same TID after the first backoff delay (the device replays its answer
    /// rather than run it again; an answer the broker kept for the application's persistent session
    /// usually arrives first). Text commands are never retransmitted. Deadlines stay as they were:
    /// a command whose deadline passed meanwhile times out at once. Commands already known are left
    /// alone; the sequence counter never goes backwards.
    pub fn restore(&mut self, snapshot: TrackerSnapshot, now: Timestamp) {
        self.next_seq = self.next_seq.max(snapshot.next_seq);
        for mut t in snapshot.commands {
            if t.is_finished() || self.commands.contains_key(&t.tid) {
                continue;
            }
            let tid = t.tid;
            let text = t.text.is_some();
            let mut queued = false;
            for m in t.members.values_mut() {
                if m.phase == Phase::Sent && !text {
                    // The session that was sending it is gone: send it again.
                    m.phase = Phase::Queued;
                }
                queued |= m.phase == Phase::Queued;
            }
            t.next_retry = None;
            self.timers.push(Reverse((t.deadline, tid)));
            if text {
                if let Target::Device(d) = &t.target {
                    self.text_outstanding
                        .entry(d.clone())
                        .or_default()
                        .push(tid);
                }
                if queued && t.attempts == 0 {
                    self.transmit.push_back((tid, None));
                }
            } else if queued {
                self.transmit.push_back((tid, None));
            } else {
                let at_least = self.timeout_for(&t.target);
                let at = now
                    + self.config.backoff.delay_at_least(
                        t.attempts.saturating_sub(1),
                        at_least,
                        &mut self.rng,
                    );
                if at < t.deadline {
                    t.next_retry = Some(at);
                    self.timers.push(Reverse((at, tid)));
                }
            }
            self.commands.insert(tid, t);
        }
    }
}
