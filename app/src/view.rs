//! What a command looks like on screen, computed from the tracker's record: a history row
//! ([`CommandView`]) and a group command's matrix ([`FanoutView`]).

use switchboard_protocol::tracker::{Phase, Progress, Target, Tracked};
use switchboard_protocol::{DeviceId, Tid, Timestamp};

use crate::link::{phase_text, target_label};

/// One history row.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandView {
    /// The TID.
    pub tid: Tid,
    /// `device1` or `group floor1`.
    pub target: String,
    /// Whether it went to a group.
    pub group: bool,
    /// The command's name.
    pub cmd: String,
    /// Its arguments (JSON) or its text.
    pub detail: String,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// Its deadline.
    pub deadline: Timestamp,
    /// Transmissions so far.
    pub attempts: u32,
    /// When the next retransmission is due.
    pub next_retry: Option<Timestamp>,
    /// Counts over its devices.
    pub progress: Progress,
    /// Nothing more will happen.
    pub finished: bool,
    /// Where it stands, for a person: `delivered`, `retrying 2`, `succeeded`, `rejected (...)`,
    /// `87/100 answered`.
    pub status: String,
    /// A CSS class for the status: `pending`, `ok`, `bad`, `timeout`.
    pub class: &'static str,
    /// Submission to last answer, once finished.
    pub round_trip_ms: Option<u64>,
    /// An answer came after it had been given up on.
    pub late: bool,
    /// A text answer was matched to it while this many text commands were outstanding.
    pub ambiguous: Option<usize>,
    /// The device's text answer, for a text command.
    pub answer: Option<String>,
}

impl CommandView {
    /// The row for `t`.
    pub fn of(t: &Tracked, ambiguous: Option<usize>) -> CommandView {
        let finished = t.is_finished();
        let (status, class, late, answer) = match (&t.target, t.members.values().next()) {
            (Target::Device(_), Some(m)) => {
                let error = m.response.as_ref().and_then(|r| r.error.as_deref());
                let mut status = phase_text(&m.phase, error);
                if !m.phase.is_terminal() && t.attempts > 1 {
                    status = format!("retrying {}", t.attempts - 1);
                }
                let answer = t.text.as_ref().and_then(|_| {
                    m.response
                        .as_ref()
                        .and_then(|r| r.result.as_str().map(str::to_owned))
                });
                (status, Cell::of(&m.phase).class(), m.late, answer)
            }
            _ => {
                let p = t.progress;
                let answered = p.answered();
                let status = if finished {
                    format!(
                        "{} of {}: {} ok, {} failed, {} rejected, {} no answer",
                        answered, p.expected, p.succeeded, p.failed, p.rejected, p.timed_out
                    )
                } else if t.attempts > 1 {
                    format!(
                        "{answered}/{} answered, retrying {}",
                        p.expected,
                        t.attempts - 1
                    )
                } else {
                    format!("{answered}/{} answered", p.expected)
                };
                let class = if !finished {
                    "pending"
                } else if p.succeeded == p.expected {
                    "ok"
                } else if p.timed_out > 0 {
                    "timeout"
                } else {
                    "bad"
                };
                (status, class, t.members.values().any(|m| m.late), None)
            }
        };
        CommandView {
            tid: t.tid,
            target: target_label(&t.target),
            group: matches!(t.target, Target::Group(_)),
            cmd: t.cmd.clone(),
            detail: match (&t.text, &t.request) {
                (Some(text), _) => text.clone(),
                (None, Some(r)) if !r.args.is_null() => r.args.to_string(),
                _ => String::new(),
            },
            created_at: t.created_at,
            deadline: t.deadline,
            attempts: t.attempts,
            next_retry: t.next_retry,
            progress: t.progress,
            finished,
            status,
            class,
            round_trip_ms: t.round_trip().map(|d| d.as_millis() as u64),
            late,
            ambiguous,
            answer,
        }
    }

    /// Whether a search string selects this row.
    pub fn matches(&self, q: &str) -> bool {
        let q = q.trim().to_lowercase();
        q.is_empty()
            || [&self.target, &self.cmd, &self.detail, &self.status]
                .iter()
                .any(|f| f.to_lowercase().contains(&q))
            || self.tid.to_string().contains(&q)
    }
}

/// One device's cell in a fan-out matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Not answered yet.
    Waiting,
    /// Ran and succeeded.
    Succeeded,
    /// Ran and failed, or was interrupted.
    Failed,
    /// Refused it.
    Rejected,
    /// Did not answer in time.
    TimedOut,
}

impl Cell {
    fn of(p: &Phase) -> Cell {
        match p {
            Phase::Queued | Phase::Sent | Phase::Delivered => Cell::Waiting,
            Phase::Succeeded => Cell::Succeeded,
            Phase::Failed | Phase::Interrupted => Cell::Failed,
            Phase::Rejected { .. } => Cell::Rejected,
            Phase::TimedOut { .. } | Phase::Expired => Cell::TimedOut,
        }
    }

    /// The CSS class of a history status in this state: `pending`, `ok`, `bad` or `timeout`.
    pub fn class(self) -> &'static str {
        match self {
            Cell::Waiting => "pending",
            Cell::Succeeded => "ok",
            Cell::Failed | Cell::Rejected => "bad",
            Cell::TimedOut => "timeout",
        }
    }

    /// Its colour in the matrix.
    pub fn colour(self) -> &'static str {
        match self {
            Cell::Waiting => "#c9ced6",
            Cell::Succeeded => "#2e9d57",
            Cell::Failed => "#d64545",
            Cell::Rejected => "#e08a1e",
            Cell::TimedOut => "#6b5bd2",
        }
    }

    /// Its name.
    pub fn label(self) -> &'static str {
        match self {
            Cell::Waiting => "no answer yet",
            Cell::Succeeded => "succeeded",
            Cell::Failed => "failed",
            Cell::Rejected => "rejected",
            Cell::TimedOut => "timed out",
        }
    }

    /// Every kind, in legend order.
    pub const ALL: [Cell; 5] = [
        Cell::Succeeded,
        Cell::Failed,
        Cell::Rejected,
        Cell::Waiting,
        Cell::TimedOut,
    ];
}

/// A group command's matrix: one cell per device.
#[derive(Clone, Debug, PartialEq)]
pub struct FanoutView {
    /// The command.
    pub tid: Tid,
    /// `group floor1`.
    pub target: String,
    /// The command's name.
    pub cmd: String,
    /// Devices, sorted.
    pub devices: Vec<DeviceId>,
    /// Their cells, in the same order.
    pub cells: Vec<Cell>,
    /// Counts.
    pub progress: Progress,
    /// Every device is terminal.
    pub finished: bool,
    /// Submission to last answer, once finished.
    pub round_trip_ms: Option<u64>,
}

impl FanoutView {
    /// The matrix of `t`.
    pub fn of(t: &Tracked) -> FanoutView {
        FanoutView {
            tid: t.tid,
            target: target_label(&t.target),
            cmd: t.cmd.clone(),
            devices: t.members.keys().cloned().collect(),
            cells: t.members.values().map(|m| Cell::of(&m.phase)).collect(),
            progress: t.progress,
            finished: t.is_finished(),
            round_trip_ms: t.round_trip().map(|d| d.as_millis() as u64),
        }
    }
}
