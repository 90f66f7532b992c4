//! The device gate: what a device runs on every incoming command before acting on it.
//!
//! The gate decides, for each request, one of four things ([`Admission`]):
//! - **execute** it (the device acts, then hands the outcome back through [`DeviceGate::finish`]);
//! - **replay** the answer of a finished command whose TID it has seen (a duplicate delivery or a
//!   retransmission is never executed twice);
//! - report that the command is **in progress** (a retransmission of one still running);
//! - **reject** it, with the device's current state: stale sequence number (`out_of_order`),
//!   time to live over (`expired`), unknown command, invalid arguments, or a step of an ordered
//!   sequence out of turn (`sequence_violation`).
//!
//! It also keeps a **journal** of commands being executed. The caller persists [`DeviceGate::snapshot`]
//! before acting and after finishing; after a restart, [`DeviceGate::restore`] returns a report for
//! every command that was cut off, with the outcome `interrupted`.
//!
//! Checks run in this order: duplicate, expiry, issuer order, command syntax, sequence. Every
//! rejection is remembered under its TID like any other answer, so a retransmission of a rejected
//! command gets the same rejection.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::envelope::{
    text_response, DeviceState, Outcome, Rejection, Request, Response, SequencePosition, Tid,
};
use crate::time::Timestamp;
use crate::topic::{DeviceId, IssuerId};

/// An ordered sequence of commands that must run one after the other.
///
/// ```text
///                 step 0 ok               step 1 ok              last step ok
///   ┌──────┐ ─────────────────▶ ┌────────┐ ──────────▶ ┌────────┐ ───────────▶ ┌──────┐
///   │ Idle │                    │ Done 0 │             │ Done 1 │    ...       │ Idle │
///   └──────┘ ◀── step 0 fails ─ └────────┘             └────────┘              └──────┘
///      │                            │ step k fails: stays at Done k-1
///      │ step k>0: rejected         │ step j != 1 (j>0): rejected, expected = step 1
///      ▼                            ▼ step 0: starts over
///   sequence_violation         sequence_violation
/// ```
///
/// While a step runs the sequence is `Running k`; any other step of the same sequence is rejected
/// until it finishes. Step 0 may always start the sequence over (for example to stage another
/// firmware image), except while a step is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceDef {
    /// The sequence's name, e.g. `firmware`.
    pub name: String,
    /// The command names of its steps, in order.
    pub steps: Vec<String>,
}

impl SequenceDef {
    /// A sequence of the given steps.
    pub fn new(
        name: impl Into<String>,
        steps: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        SequenceDef {
            name: name.into(),
            steps: steps.into_iter().map(Into::into).collect(),
        }
    }

    /// Firmware update: `firmware_stage` -> `firmware_verify` -> `firmware_activate`.
    pub fn firmware() -> Self {
        SequenceDef::new(
            "firmware",
            ["firmware_stage", "firmware_verify", "firmware_activate"],
        )
    }
}

/// Where one sequence stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", content = "step", rename_all = "snake_case")]
pub enum SequenceState {
    /// Nothing started; only step 0 may run.
    #[default]
    Idle,
    /// Step `k` is running.
    Running(usize),
    /// Step `k` finished; step `k + 1` (or step 0) may run.
    Done(usize),
}

/// One ordered sequence and where it stands: the state machine drawn on [`SequenceDef`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    def: SequenceDef,
    state: SequenceState,
}

impl Sequence {
    /// A sequence at rest.
    pub fn new(def: SequenceDef) -> Self {
        Sequence {
            def,
            state: SequenceState::Idle,
        }
    }

    /// Its definition.
    pub fn def(&self) -> &SequenceDef {
        &self.def
    }

    /// Where it stands.
    pub fn state(&self) -> SequenceState {
        self.state
    }

    /// The index of `step` in this sequence, if it is one of its steps.
    pub fn step_index(&self, step: &str) -> Option<usize> {
        self.def.steps.iter().position(|s| s == step)
    }

    /// Starts step `k` if it may run now (the sequence becomes `Running k`), or says why not.
    pub fn start(&mut self, k: usize) -> Result<(), Rejection> {
        let allowed = match self.state {
            SequenceState::Running(_) => false,
            SequenceState::Idle => k == 0,
            SequenceState::Done(d) => k == 0 || k == d + 1,
        };
        if !allowed {
            return Err(Rejection::SequenceViolation {
                sequence: self.def.name.clone(),
                expected: self.expected(),
                got: self.def.steps.get(k).cloned().unwrap_or_default(),
            });
        }
        self.state = SequenceState::Running(k);
        Ok(())
    }

    /// The running step finished: on success the sequence moves on (back to `Idle` after the last
    /// step), otherwise it goes back to where it was before the step.
    pub fn finish(&mut self, ok: bool) {
        match self.state {
            SequenceState::Running(k) if ok => {
                self.state = if k + 1 >= self.def.steps.len() {
                    SequenceState::Idle
                } else {
                    SequenceState::Done(k)
                };
            }
            SequenceState::Running(0) => self.state = SequenceState::Idle,
            SequenceState::Running(k) => self.state = SequenceState::Done(k - 1),
            SequenceState::Idle | SequenceState::Done(_) => {}
        }
    }

    /// The step that may run now; `None` while a step is running.
    pub fn expected(&self) -> Option<String> {
        match self.state {
            SequenceState::Idle => self.def.steps.first().cloned(),
            SequenceState::Running(_) => None,
            SequenceState::Done(k) => self.def.steps.get(k + 1).cloned(),
        }
    }

    /// Its position, for a state report.
    pub fn position(&self) -> SequencePosition {
        let done = match self.state {
            SequenceState::Done(k) => self.def.steps.get(k).cloned(),
            _ => None,
        };
        SequencePosition {
            done,
            next: self.expected(),
        }
    }
}

/// Settings of a gate.
#[derive(Clone, Debug)]
pub struct GateConfig {
    /// The device this gate guards.
    pub device: DeviceId,
    /// How many finished TIDs are remembered for duplicate suppression at least. A TID whose
    /// command has not expired yet (its retransmissions may still come) is kept beyond this, up to
    /// `max_remembered`.
    pub window: usize,
    /// Hard cap on remembered TIDs, whatever their expiry. Past it the oldest are forgotten; their
    /// stale sequence numbers still keep them from running again.
    pub max_remembered: usize,
    /// How many issuers' sequence numbers are remembered (least recently seen forgotten first).
    pub max_issuers: usize,
    /// The ordered sequences this device enforces.
    pub sequences: Vec<SequenceDef>,
}

impl GateConfig {
    /// Defaults: 64 TIDs, 16 issuers, the firmware sequence.
    pub fn new(device: DeviceId) -> Self {
        GateConfig {
            device,
            window: 64,
            max_remembered: 4096,
            max_issuers: 16,
            sequences: vec![SequenceDef::firmware()],
        }
    }
}

/// The answer the gate remembers for a finished TID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Finished {
    tid: Tid,
    cmd: String,
    #[serde(flatten)]
    outcome: Outcome,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    error: Option<String>,
    /// Until when a retransmission may arrive (the request's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
}

/// A command being executed, as written to the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Its TID (generated by the device for a text command).
    pub tid: Tid,
    /// Its name.
    pub cmd: String,
    /// When execution started.
    pub started_at: Timestamp,
    /// When the request expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// For a text command, the payload as received (the answer quotes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Vec<u8>>,
    /// The index (in the gate's configuration) of the sequence it is a step of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<usize>,
}

/// Everything the gate must keep across a restart. Serialise it with serde and store it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GateSnapshot {
    recent: Vec<Finished>,
    issuers: Vec<(IssuerId, u64)>,
    sequences: Vec<SequenceState>,
    journal: Vec<JournalEntry>,
}

/// Permission to execute one command; hand it back to [`DeviceGate::finish`].
#[derive(Debug)]
#[must_use = "a ticket must be finished, or the command stays in the journal"]
pub struct Ticket {
    tid: Tid,
    command: Command,
    text: Option<Vec<u8>>,
}

impl Ticket {
    /// The command to execute.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// Its TID.
    pub fn tid(&self) -> Tid {
        self.tid
    }

    /// Whether it came in the plain-text form (and so must be answered in text).
    pub fn is_text(&self) -> bool {
        self.text.is_some()
    }
}

/// What to do with an incoming request.
#[derive(Debug)]
pub enum Admission {
    /// Execute the command, then call [`DeviceGate::finish`].
    Execute(Ticket),
    /// Already finished: publish this answer again, do not execute.
    Replay(Reply),
    /// Already running: do nothing; its answer follows when it finishes.
    InProgress {
        /// The TID.
        tid: Tid,
    },
    /// Refused: publish this answer; the command did not run.
    Reject(Reply),
}

/// An answer to publish on the device's response topic.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // short-lived, moved once: boxing buys nothing
pub enum Reply {
    /// A JSON envelope.
    Envelope(Response),
    /// The pattern document's text form.
    Text(String),
}

impl Reply {
    /// Bytes for the wire.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Envelope(r) => r.encode(),
            Reply::Text(t) => t.clone().into_bytes(),
        }
    }
}

/// The device-side gate. See the module documentation.
#[derive(Debug)]
pub struct DeviceGate {
    config: GateConfig,
    recent: HashMap<Tid, Finished>,
    recent_order: VecDeque<Tid>,
    /// Issuer -> highest accepted sequence number; most recently seen last.
    issuers: Vec<(IssuerId, u64)>,
    sequences: Vec<Sequence>,
    journal: Vec<JournalEntry>,
    dirty: bool,
}

impl DeviceGate {
    /// A gate with no history.
    pub fn new(config: GateConfig) -> Self {
        let sequences = config
            .sequences
            .iter()
            .cloned()
            .map(Sequence::new)
            .collect();
        DeviceGate {
            config,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            issuers: Vec::new(),
            sequences,
            journal: Vec::new(),
            dirty: false,
        }
    }

    /// Rebuilds a gate from a snapshot taken before a restart, and answers every command that was
    /// running then with `interrupted` (their TIDs stay remembered, so a retransmission gets the same
    /// answer and is not executed).
    pub fn restore(
        config: GateConfig,
        snapshot: GateSnapshot,
        state: &DeviceState,
        now: Timestamp,
    ) -> (DeviceGate, Vec<Reply>) {
        let mut gate = DeviceGate::new(config);
        for f in snapshot.recent {
            gate.remember(f, now);
        }
        gate.issuers = snapshot.issuers;
        if snapshot.sequences.len() == gate.sequences.len() {
            for (seq, st) in gate.sequences.iter_mut().zip(snapshot.sequences) {
                seq.state = st;
            }
        }
        let mut replies = Vec::new();
        for entry in snapshot.journal {
            if let Some(seq) = entry.sequence.and_then(|i| gate.sequences.get_mut(i)) {
                seq.finish(false);
            }
            let outcome = Outcome::Interrupted;
            let finished = Finished {
                tid: entry.tid,
                cmd: entry.cmd.clone(),
                error: outcome.default_error(),
                outcome,
                result: serde_json::Value::Null,
                expires_at: entry.expires_at,
            };
            replies.push(gate.reply_for(&finished, entry.text.as_deref(), state));
            gate.remember(finished, now);
        }
        gate.dirty = true;
        (gate, replies)
    }

    /// What must be stored to survive a restart.
    pub fn snapshot(&self) -> GateSnapshot {
        GateSnapshot {
            recent: self
                .recent_order
                .iter()
                .filter_map(|t| self.recent.get(t).cloned())
                .collect(),
            issuers: self.issuers.clone(),
            sequences: self.sequences.iter().map(Sequence::state).collect(),
            journal: self.journal.clone(),
        }
    }

    /// `true` once if anything worth persisting changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        core::mem::take(&mut self.dirty)
    }

    /// The commands being executed now.
    pub fn journal(&self) -> &[JournalEntry] {
        &self.journal
    }

    /// Each sequence's position, by name, for the device's state report.
    pub fn sequence_positions(&self) -> BTreeMap<String, SequencePosition> {
        self.sequences
            .iter()
            .map(|s| (s.def.name.clone(), s.position()))
            .collect()
    }

    /// Decides what to do with an enveloped request.
    pub fn admit(&mut self, req: &Request, now: Timestamp, state: &DeviceState) -> Admission {
        if self.journal.iter().any(|j| j.tid == req.tid) {
            return Admission::InProgress { tid: req.tid };
        }
        if let Some(f) = self.recent.get(&req.tid) {
            return Admission::Replay(self.reply_for(f, None, state));
        }
        let expires_at = req.expires_at();
        if let Some(expired_at) = expires_at.filter(|at| *at < now) {
            return self.reject(
                req.tid,
                &req.cmd,
                None,
                expires_at,
                Rejection::Expired { expired_at },
                now,
                state,
            );
        }
        let last = self.last_seq(&req.issuer);
        if let Some(last_seq) = last.filter(|last| req.seq <= *last) {
            let reason = Rejection::OutOfOrder {
                last_seq,
                got_seq: req.seq,
            };
            return self.reject(req.tid, &req.cmd, None, expires_at, reason, now, state);
        }
        self.record_seq(&req.issuer, req.seq);
        match Command::from_parts(&req.cmd, &req.args) {
            Ok(command) => self.start(req.tid, command, None, expires_at, now, state),
            Err(reason) => self.reject(req.tid, &req.cmd, None, expires_at, reason, now, state),
        }
    }

    /// Decides what to do with a plain-text command. `tid` is an id the device makes up for it so it
    /// can be journaled; text commands carry none, so duplicates cannot be recognised.
    pub fn admit_text(
        &mut self,
        payload: &[u8],
        tid: Tid,
        now: Timestamp,
        state: &DeviceState,
    ) -> Admission {
        let text = String::from_utf8_lossy(payload);
        match Command::parse_text(&text) {
            Ok(command) => self.start(tid, command, Some(payload.to_vec()), None, now, state),
            Err(reason) => {
                let name = text.split(':').next().unwrap_or_default().trim().to_owned();
                self.reject(tid, &name, Some(payload), None, reason, now, state)
            }
        }
    }

    /// Records the outcome of an executed command and returns the answer to publish.
    /// `Ok(result)` is success; `Err(message)` is failure.
    pub fn finish(
        &mut self,
        ticket: Ticket,
        outcome: Result<serde_json::Value, String>,
        state: &DeviceState,
        now: Timestamp,
    ) -> Reply {
        let entry = self
            .journal
            .iter()
            .position(|j| j.tid == ticket.tid)
            .map(|i| self.journal.remove(i));
        let ok = outcome.is_ok();
        let expires_at = entry.as_ref().and_then(|e| e.expires_at);
        if let Some(seq) = entry
            .and_then(|e| e.sequence)
            .and_then(|i| self.sequences.get_mut(i))
        {
            seq.finish(ok);
        }
        let (result, error) = match outcome {
            Ok(v) => (v, None),
            Err(e) => (serde_json::Value::Null, Some(e)),
        };
        let finished = Finished {
            tid: ticket.tid,
            cmd: ticket.command.name().to_owned(),
            outcome: if ok {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            result,
            error,
            expires_at,
        };
        let reply = self.reply_for(&finished, ticket.text.as_deref(), state);
        self.remember(finished, now);
        self.dirty = true;
        reply
    }

    fn start(
        &mut self,
        tid: Tid,
        command: Command,
        text: Option<Vec<u8>>,
        expires_at: Option<Timestamp>,
        now: Timestamp,
        state: &DeviceState,
    ) -> Admission {
        let mut sequence = None;
        for (i, seq) in self.sequences.iter_mut().enumerate() {
            if let Some(k) = seq.step_index(command.name()) {
                if let Err(reason) = seq.start(k) {
                    let text = text.as_deref();
                    return self.reject(tid, command.name(), text, expires_at, reason, now, state);
                }
                sequence = Some(i);
                break;
            }
        }
        self.journal.push(JournalEntry {
            tid,
            cmd: command.name().to_owned(),
            started_at: now,
            expires_at,
            text: text.clone(),
            sequence,
        });
        self.dirty = true;
        Admission::Execute(Ticket { tid, command, text })
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        tid: Tid,
        cmd: &str,
        text: Option<&[u8]>,
        expires_at: Option<Timestamp>,
        reason: Rejection,
        now: Timestamp,
        state: &DeviceState,
    ) -> Admission {
        let finished = Finished {
            tid,
            cmd: cmd.to_owned(),
            error: Some(reason.to_string()),
            outcome: Outcome::Rejected { reason },
            result: serde_json::Value::Null,
            expires_at,
        };
        let reply = self.reply_for(&finished, text, state);
        if text.is_none() {
            self.remember(finished, now);
            self.dirty = true;
        }
        Admission::Reject(reply)
    }

    fn reply_for(&self, f: &Finished, text: Option<&[u8]>, state: &DeviceState) -> Reply {
        if let Some(payload) = text {
            return Reply::Text(text_response(f.outcome == Outcome::Succeeded, payload));
        }
        let mut state = state.clone();
        state.sequences = self.sequence_positions();
        Reply::Envelope(Response {
            v: crate::envelope::VERSION,
            tid: f.tid,
            device: self.config.device.clone(),
            cmd: f.cmd.clone(),
            outcome: f.outcome.clone(),
            result: f.result.clone(),
            error: f.error.clone(),
            state: Some(state),
        })
    }

    /// Remembers an answer under its TID. The oldest are forgotten once more than `window` are
    /// kept, except those whose command has not expired yet (a retransmission may still come),
    /// which are kept up to `max_remembered`.
    fn remember(&mut self, f: Finished, now: Timestamp) {
        if self.config.window == 0 {
            return;
        }
        let tid = f.tid;
        if self.recent.insert(tid, f).is_none() {
            self.recent_order.push_back(tid);
        }
        while self.recent_order.len() > self.config.window {
            let live = self
                .recent_order
                .front()
                .and_then(|t| self.recent.get(t))
                .and_then(|f| f.expires_at)
                .is_some_and(|at| at >= now);
            if live && self.recent_order.len() <= self.config.max_remembered {
                break;
            }
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
    }

    fn last_seq(&self, issuer: &IssuerId) -> Option<u64> {
        self.issuers
            .iter()
            .find(|(i, _)| i == issuer)
            .map(|(_, s)| *s)
    }

    fn record_seq(&mut self, issuer: &IssuerId, seq: u64) {
        self.issuers.retain(|(i, _)| i != issuer);
        self.issuers.push((issuer.clone(), seq));
        let excess = self
            .issuers
            .len()
            .saturating_sub(self.config.max_issuers.max(1));
        self.issuers.drain(..excess);
        self.dirty = true;
    }
}
