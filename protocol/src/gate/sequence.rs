//! Ordered sequences of commands (firmware: stage, verify, activate) and where each stands.

use serde::{Deserialize, Serialize};

use crate::envelope::{Rejection, SequencePosition};

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
    pub(super) def: SequenceDef,
    pub(super) state: SequenceState,
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
