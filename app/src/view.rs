//! What the panel shows besides devices, as plain data: the connection, notices, a history row
//! ([`CommandView`]) and a group command's matrix ([`FanoutView`]), computed from the tracker's
//! records.

use std::sync::Arc;

use switchboard_protocol::family::confirm::ConfirmedBy;
use switchboard_protocol::tracker::{Phase, Progress, Target, Tracked};
use switchboard_protocol::{DeviceId, Tid, Timestamp};

/// The connection to the broker, for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conn {
    /// Not connected and not trying.
    Offline,
    /// Opening the socket or waiting for the broker's answer.
    Connecting,
    /// Connected, speaking this protocol version.
    Online {
        /// `5` or `3.1.1`.
        version: &'static str,
    },
    /// Lost; the next attempt is at this time.
    Reconnecting {
        /// When.
        at: Timestamp,
    },
    /// Closed because another tab or client connected with this client id: not retried, or the
    /// two would take the session from each other for ever.
    TakenOver,
}

/// One line of the notices panel: answers that match nothing, malformed payloads, errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// When (browser clock).
    pub at: Timestamp,
    /// `error`, `warning` or `info`.
    pub level: &'static str,
    /// What happened, for a person.
    pub text: String,
}

/// A target for a person.
pub fn target_label(t: &Target) -> String {
    match t {
        Target::Device(d) => d.to_string(),
        Target::Group(g) => format!("group {g}"),
    }
}

/// A phase, with its reason, for a person.
pub fn phase_text(p: &Phase, error: Option<&str>) -> String {
    match p {
        Phase::Rejected { reason } => format!("rejected ({reason})"),
        Phase::TimedOut { device_online } => match device_online {
            Some(true) => "timed out (device online, no answer)".to_owned(),
            Some(false) => "timed out (device offline)".to_owned(),
            None => "timed out (device presence unknown)".to_owned(),
        },
        Phase::Failed => match error {
            Some(e) => format!("failed ({e})"),
            None => "failed".to_owned(),
        },
        Phase::Expired => "expired (never reached the broker)".to_owned(),
        Phase::Contradicted { actual_on } => format!(
            "contradicted (the device reports {})",
            if *actual_on { "on" } else { "off" }
        ),
        Phase::Superseded { .. } => "superseded (a newer command replaced it)".to_owned(),
        Phase::Unsupported { detail } => format!("unsupported ({detail})"),
        Phase::Refused { reason } => format!("refused by the broker ({reason})"),
        other => other.label().to_owned(),
    }
}

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
                // How a device with no TID in its answers confirmed it.
                if let Some(by) = m.confirmed_by.filter(|by| *by != ConfirmedBy::Answer) {
                    status = format!("{status} (confirmed by {})", by.label());
                }
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
                    let mut s = format!(
                        "{} of {}: {} ok, {} failed, {} rejected, {} no answer",
                        answered, p.expected, p.succeeded, p.failed, p.rejected, p.timed_out
                    );
                    // Outcomes only devices of other families have.
                    if p.contradicted > 0 {
                        s.push_str(&format!(", {} contradicted", p.contradicted));
                    }
                    if p.superseded > 0 {
                        s.push_str(&format!(", {} superseded or unsupported", p.superseded));
                    }
                    s
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
                // Only a finished fan-out is walked member by member, once.
                let late = finished && t.members.values().any(|m| m.late);
                (status, class, late, None)
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
            round_trip_ms: round_trip_ms(t),
            late,
            ambiguous,
            answer,
        }
    }

    /// Whether a search string selects this row (ignoring ASCII case: ids and commands are ASCII).
    pub fn matches(&self, q: &str) -> bool {
        let q = q.trim().to_ascii_lowercase();
        q.is_empty()
            || [&self.target, &self.cmd, &self.detail, &self.status]
                .iter()
                .any(|f| f.to_ascii_lowercase().contains(&q))
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
    /// The cell of a member in phase `p`.
    pub fn of(p: &Phase) -> Cell {
        match p {
            Phase::Queued | Phase::Sent | Phase::Delivered => Cell::Waiting,
            Phase::Succeeded => Cell::Succeeded,
            Phase::Failed | Phase::Interrupted | Phase::Contradicted { .. } => Cell::Failed,
            Phase::Rejected { .. }
            | Phase::Refused { .. }
            | Phase::Superseded { .. }
            | Phase::Unsupported { .. } => Cell::Rejected,
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

/// Submission to the last member's end, once finished (from the tracker's own record, so that a
/// fan-out's members are not walked).
fn round_trip_ms(t: &Tracked) -> Option<u64> {
    if !t.is_finished() {
        return None;
    }
    let ms = match (t.finished_at, t.members.len()) {
        (_, 0..=16) | (None, _) => t.round_trip()?.as_millis(),
        (Some(at), _) => at.saturating_since(t.created_at).as_millis(),
    };
    u64::try_from(ms).ok()
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
    /// Devices, sorted; shared, so that a copy of the view per frame copies no ids.
    pub devices: Arc<[DeviceId]>,
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
            round_trip_ms: round_trip_ms(t),
        }
    }

    /// Takes in one member's new phase. Returns `false` when the member is not in the matrix (it
    /// joined the group after the command went out): then rebuild it with [`FanoutView::of`].
    pub fn update(&mut self, device: &DeviceId, phase: &Phase, t: &Tracked) -> bool {
        let Ok(i) = self.devices.binary_search(device) else {
            return false;
        };
        if let Some(cell) = self.cells.get_mut(i) {
            *cell = Cell::of(phase);
        }
        self.progress = t.progress;
        self.finished = t.is_finished();
        self.round_trip_ms = round_trip_ms(t);
        true
    }
}
