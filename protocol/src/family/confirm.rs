//! When a power command to a device of a family counts as done, for every family alike.
//!
//! A family with no request id is confirmed by what the device reports afterwards: the first state
//! report after the command was sent whose value equals the target. A report before the send is
//! no evidence (the subscription is made before publishing, so anything older is the state as it
//! was). A family that publishes nothing when a command changes nothing (an ESPHome switch) keeps
//! its state retained: its state topic is subscribed again right after the command is sent, and a
//! retained state equal to the target then confirms it. A different value reported after
//! the send is noted: another controller, or the device refusing; if nothing better comes, the
//! command ends contradicted with that value. When the confirmation window closes with no report,
//! a device that presence says is gone ends offline; otherwise its state is read back once (where
//! the family has a query) and what it reports decides. A family with a request id (Shelly) is
//! confirmed by the answer that carries the id.
//!
//! A device commanded through a group whose coordinator publishes every member's state as soon as
//! it sends the group command (Zigbee2MQTT's groups are optimistic by default: a Zigbee group
//! command is a multicast nobody acknowledges) has those reports discounted: they are the
//! coordinator's guess. The first of them, or the window closing, reads the device back, and only
//! what it then reports decides.

use serde::{Deserialize, Serialize};

/// How a command came to count as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmedBy {
    /// The device's answer carrying the command's TID.
    Answer,
    /// The device's answer carrying the id the TID maps onto (Shelly's RPC `id`).
    AnswerWithId,
    /// A state report after the command was sent, equal to the target.
    StateReport,
    /// The retained state, read again after the command was sent, equalled the target, and the
    /// family publishes nothing when nothing changes.
    RetainedState,
    /// The state read back after the confirmation window, equal to the target.
    ReadBack,
}

impl ConfirmedBy {
    /// For a person: `answer`, `answer with id`, `state report`, `retained state`, `read back`.
    pub fn label(self) -> &'static str {
        match self {
            ConfirmedBy::Answer => "answer",
            ConfirmedBy::AnswerWithId => "answer with id",
            ConfirmedBy::StateReport => "state report",
            ConfirmedBy::RetainedState => "retained state",
            ConfirmedBy::ReadBack => "read back",
        }
    }
}

/// How a power command ended, as far as confirmation goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The device is at the target.
    Confirmed(ConfirmedBy),
    /// The device reported another value and never the target.
    Contradicted {
        /// What it reported last.
        actual_on: bool,
    },
    /// The device answered with an error (an RPC error).
    Failed {
        /// Its message.
        message: String,
    },
}

/// What to do when the confirmation window closes with no verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowClosed {
    /// End now with this verdict.
    End(Verdict),
    /// Presence says the device is gone: end as timed out, offline.
    Offline,
    /// Ask the device for its state and wait for the answer until the deadline.
    ReadBack,
    /// Nothing to ask: wait for a late report until the deadline.
    Wait,
}

/// Where one power command stands: see the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    target: bool,
    quiet: bool,
    sent: bool,
    noted: Option<bool>,
    reading_back: bool,
    /// Reports before a read-back are a group coordinator's guess.
    echoed: bool,
    /// Such a guess came: read back now.
    read_back_due: bool,
}

impl Confirmation {
    /// A command that sets the power to `target`; `quiet_when_unchanged`: the family publishes
    /// nothing when nothing changes, and keeps its state retained.
    pub fn new(target: bool, quiet_when_unchanged: bool) -> Self {
        Confirmation {
            target,
            quiet: quiet_when_unchanged,
            sent: false,
            noted: None,
            reading_back: false,
            echoed: false,
            read_back_due: false,
        }
    }

    /// The command goes through a group whose coordinator echoes every member's state at once
    /// (see the [module documentation](self)).
    pub fn through_echoing_group(mut self) -> Self {
        self.echoed = true;
        self
    }

    /// Whether the device must be read back now (a coordinator's echo came); true once.
    pub fn take_read_back_due(&mut self) -> bool {
        if self.read_back_due && !self.reading_back {
            self.read_back_due = false;
            self.reading_back = true;
            return true;
        }
        false
    }

    /// The target.
    pub fn target(&self) -> bool {
        self.target
    }

    /// The command was handed to the session: reports from now on are evidence.
    pub fn sent(&mut self) {
        self.sent = true;
    }

    /// Whether a read-back is outstanding.
    pub fn reading_back(&self) -> bool {
        self.reading_back
    }

    /// A live (not retained) state report.
    pub fn observe(&mut self, on: bool) -> Option<Verdict> {
        if !self.sent {
            return None;
        }
        if self.echoed && !self.reading_back {
            self.read_back_due = true;
            return None;
        }
        if on == self.target {
            let by = if self.reading_back {
                ConfirmedBy::ReadBack
            } else {
                ConfirmedBy::StateReport
            };
            return Some(Verdict::Confirmed(by));
        }
        if self.reading_back {
            // The read-back answer: the device is not at the target.
            return Some(Verdict::Contradicted { actual_on: on });
        }
        self.noted = Some(on);
        None
    }

    /// A retained state delivered after the send (a resubscription): the state as it stands. It
    /// answers a read-back; for a quiet family it confirms a target it already equals (the
    /// device will publish nothing); otherwise it is no evidence.
    pub fn observe_retained(&mut self, on: bool) -> Option<Verdict> {
        if self.reading_back {
            return self.observe(on);
        }
        (self.quiet && self.sent && on == self.target)
            .then_some(Verdict::Confirmed(ConfirmedBy::RetainedState))
    }

    /// The device answered the command's own id: applied.
    pub fn applied(&mut self) -> Verdict {
        Verdict::Confirmed(ConfirmedBy::AnswerWithId)
    }

    /// The confirmation window closed with no verdict. `online` is what presence says;
    /// `can_read_back` whether the family has a query.
    pub fn window_closed(&mut self, online: Option<bool>, can_read_back: bool) -> WindowClosed {
        if let Some(actual_on) = self.noted {
            return WindowClosed::End(Verdict::Contradicted { actual_on });
        }
        if online == Some(false) {
            return WindowClosed::Offline;
        }
        if can_read_back && !self.reading_back {
            self.reading_back = true;
            self.read_back_due = false;
            self.sent = true;
            return WindowClosed::ReadBack;
        }
        WindowClosed::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_before_the_send_is_no_evidence() {
        let mut c = Confirmation::new(true, false);
        assert_eq!(c.observe(true), None);
        assert_eq!(c.observe_retained(true), None);
        c.sent();
        assert_eq!(
            c.observe_retained(true),
            None,
            "not quiet: a retained copy is no evidence"
        );
        assert_eq!(
            c.observe(true),
            Some(Verdict::Confirmed(ConfirmedBy::StateReport))
        );
    }

    #[test]
    fn a_quiet_family_is_confirmed_by_its_retained_state_read_after_the_send() {
        let mut c = Confirmation::new(true, true);
        assert_eq!(c.observe_retained(true), None, "not sent yet");
        c.sent();
        assert_eq!(
            c.observe_retained(false),
            None,
            "the device will act and report"
        );
        assert_eq!(
            c.observe_retained(true),
            Some(Verdict::Confirmed(ConfirmedBy::RetainedState))
        );
    }

    #[test]
    fn another_value_is_noted_and_ends_contradicted_unless_the_target_follows() {
        let mut c = Confirmation::new(true, false);
        c.sent();
        assert_eq!(c.observe(false), None);
        assert_eq!(
            c.clone().window_closed(Some(true), true),
            WindowClosed::End(Verdict::Contradicted { actual_on: false })
        );
        assert_eq!(
            c.observe(true),
            Some(Verdict::Confirmed(ConfirmedBy::StateReport))
        );
    }

    #[test]
    fn silence_reads_back_once_unless_presence_says_gone() {
        let mut c = Confirmation::new(false, false);
        c.sent();
        assert_eq!(
            c.clone().window_closed(Some(false), true),
            WindowClosed::Offline
        );
        assert_eq!(c.window_closed(None, true), WindowClosed::ReadBack);
        assert_eq!(c.window_closed(None, true), WindowClosed::Wait);
        assert_eq!(
            c.observe(true),
            Some(Verdict::Contradicted { actual_on: true })
        );
        let mut d = Confirmation::new(false, false);
        d.sent();
        d.window_closed(None, true);
        assert_eq!(
            d.observe(false),
            Some(Verdict::Confirmed(ConfirmedBy::ReadBack))
        );
        let mut e = Confirmation::new(false, false);
        e.sent();
        assert_eq!(e.window_closed(None, false), WindowClosed::Wait);
    }

    #[test]
    fn a_group_coordinators_echo_is_no_evidence_and_reads_back() {
        let mut c = Confirmation::new(true, false).through_echoing_group();
        c.sent();
        assert_eq!(c.observe(true), None, "the coordinator's guess");
        assert!(c.take_read_back_due());
        assert!(!c.take_read_back_due(), "once");
        assert_eq!(
            c.observe(false),
            Some(Verdict::Contradicted { actual_on: false }),
            "the device's own state, read back"
        );
        let mut quiet = Confirmation::new(true, false).through_echoing_group();
        quiet.sent();
        assert_eq!(
            quiet.window_closed(Some(true), true),
            WindowClosed::ReadBack
        );
        assert_eq!(
            quiet.observe(true),
            Some(Verdict::Confirmed(ConfirmedBy::ReadBack))
        );
    }
}
