//! The command tracker: what an application runs to follow every command to a terminal state.
//!
//! ```text
//!            poll_transmit         PUBACK              response
//!   Queued ───────────────▶ Sent ─────────▶ Delivered ─────────▶ Succeeded | Failed
//!     │                      │  ▲               │                 | Rejected | Interrupted
//!     │                      │  └─ retransmit ──┘ (same TID, backoff with full jitter)
//!     │ deadline, never      │ deadline, no answer
//!     ▼ reached the broker   ▼
//!   Expired               TimedOut { device_online }
//! ```
//!
//! A command targets one device or a group. A group command is one publish on the group's fan-out
//! topic; its expected members come from presence (`status/<device>`), each member is followed on its
//! own, and retransmissions go to the stragglers' own request topics with the same TID (devices drop
//! duplicates, so a retransmission never runs a command twice).
//!
//! Plain-text commands (the pattern document's form) carry no TID: they are never retransmitted, and
//! a text answer is matched to that device's oldest outstanding text command, flagged as ambiguous
//! when more than one is outstanding.
//!
//! Responses that match nothing (unknown TID, a device not targeted, a malformed payload) and answers
//! that arrive after a member was given up on are reported as events, never dropped and never fatal.
//!
//! Retransmission adapts to what it measures instead of storming a saturated fleet (see
//! `retransmit.rs`).
//!
//! Finished commands are forgotten by the [`Retention`] rule (count, fan-out members, age), with a
//! [`TrackerEvent::Forgotten`] each; outstanding commands never are.
//!

mod answers;
mod conclude;
mod model;
mod presence;
mod query;
mod retention;
mod retransmit;
mod rtt;
mod settle;
mod snapshot;

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

use crate::command::Command;
use crate::envelope::{Request, Tid, VERSION};
use crate::time::Timestamp;
use crate::topic::{self, DeviceId};

pub use model::*;
pub use retention::Retention;
pub use rtt::RoundTrip;
pub use settle::Settlement;

use retention::FinishedQueue;
use retransmit::device_timeout;

/// The application-side tracker. See the module documentation.
#[derive(Debug)]
pub struct CommandTracker {
    config: TrackerConfig,
    next_seq: u64,
    rng: fastrand::Rng,
    commands: HashMap<Tid, Tracked>,
    /// (due, tid): retransmissions and deadlines; stale entries are skipped when popped.
    timers: BinaryHeap<Reverse<(Timestamp, Tid)>>,
    transmit: VecDeque<(Tid, Option<DeviceId>)>,
    events: VecDeque<TrackerEvent>,
    presence: HashMap<DeviceId, Presence>,
    /// Per device, outstanding text commands, oldest first.
    text_outstanding: HashMap<DeviceId, Vec<Tid>>,
    /// Per device, measured round trips.
    round_trips: HashMap<DeviceId, RoundTrip>,
    /// Over every device: stands in for devices not measured yet, and paces fan-outs.
    fleet_round_trip: RoundTrip,
    /// Straggler retransmissions in flight (members with `retry_in_flight`).
    stragglers_in_flight: usize,
    finished: FinishedQueue,
}

impl CommandTracker {
    /// A tracker with no commands; `seed` drives retransmission jitter.
    pub fn new(config: TrackerConfig, seed: u64) -> Self {
        CommandTracker {
            next_seq: config.first_seq,
            config,
            rng: fastrand::Rng::with_seed(seed),
            commands: HashMap::new(),
            timers: BinaryHeap::new(),
            transmit: Default::default(),
            events: Default::default(),
            presence: HashMap::new(),
            text_outstanding: HashMap::new(),
            round_trips: HashMap::new(),
            fleet_round_trip: RoundTrip::default(),
            stragglers_in_flight: 0,
            finished: FinishedQueue::default(),
        }
    }

    /// Submits a command; it is transmitted on the next [`CommandTracker::poll_transmit`].
    pub fn submit(
        &mut self,
        target: Target,
        command: &Command,
        opts: SendOptions,
        now: Timestamp,
    ) -> Tid {
        self.submit_including(target, command, opts, Vec::new(), now)
    }

    /// Submits a command to `target` whose members are those presence knows and `also`
    /// (devices of other families in a group, whose membership presence does not carry).
    pub fn submit_including(
        &mut self,
        target: Target,
        command: &Command,
        opts: SendOptions,
        also: Vec<DeviceId>,
        now: Timestamp,
    ) -> Tid {
        let tid = Tid::random(&mut self.rng);
        let deadline = opts.deadline.unwrap_or(self.config.deadline);
        let seq = self.next_seq;
        self.next_seq += 1;
        let request = Request {
            v: VERSION,
            tid,
            issuer: self.config.issuer.clone(),
            seq,
            cmd: command.name().to_owned(),
            args: command.args(),
            issued_at: now,
            ttl_ms: u64::try_from(deadline.as_millis()).ok(),
            group: match &target {
                Target::Group(g) => Some(g.clone()),
                Target::Device(_) => None,
            },
        };
        let mut members = self.expected_members(&target);
        if !also.is_empty() {
            members.extend(also);
            members.sort();
            members.dedup();
        }
        self.insert(
            tid,
            target,
            command.name().to_owned(),
            Some(request),
            None,
            members,
            now,
            deadline,
        );
        tid
    }

    /// Submits a plain-text command to one device. It is never retransmitted.
    pub fn submit_text(
        &mut self,
        device: DeviceId,
        text: &str,
        opts: SendOptions,
        now: Timestamp,
    ) -> Tid {
        let tid = Tid::random(&mut self.rng);
        let deadline = opts.deadline.unwrap_or(self.config.deadline);
        let cmd = text.split(':').next().unwrap_or_default().trim().to_owned();
        self.text_outstanding
            .entry(device.clone())
            .or_default()
            .push(tid);
        let members = vec![device.clone()];
        self.insert(
            tid,
            Target::Device(device),
            cmd,
            None,
            Some(text.to_owned()),
            members,
            now,
            deadline,
        );
        tid
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        tid: Tid,
        target: Target,
        cmd: String,
        request: Option<Request>,
        text: Option<String>,
        members: Vec<DeviceId>,
        now: Timestamp,
        deadline: Duration,
    ) {
        let mut progress = Progress::default();
        let members: BTreeMap<_, _> = members
            .into_iter()
            .map(|d| {
                progress.expected += 1;
                progress.pending += 1;
                (d, Member::new(Phase::Queued))
            })
            .collect();
        let tracked = Tracked {
            tid,
            target,
            cmd,
            request,
            text,
            created_at: now,
            deadline: now + deadline,
            first_sent_at: None,
            last_sent_at: None,
            last_answer_at: None,
            finished_at: None,
            attempts: 0,
            next_retry: None,
            members,
            progress,
        };
        self.timers.push(Reverse((tracked.deadline, tid)));
        self.commands.insert(tid, tracked);
        self.transmit.push_back((tid, None));
        if progress.expected == 0 {
            self.finish_if_done(tid, now);
        }
    }

    /// The next publish to hand to the session.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        while let Some((tid, only)) = self.transmit.pop_front() {
            let Some(t) = self.commands.get_mut(&tid) else {
                continue;
            };
            if t.is_finished() {
                continue;
            }
            let retransmission = only.is_some() || t.attempts > 0;
            if only.is_none() {
                // A group's straggler round counts once, in `retransmit`.
                t.attempts += 1;
            }
            let topic = match (&only, &t.target) {
                (Some(d), _) | (None, Target::Device(d)) => topic::request(d),
                (None, Target::Group(g)) => topic::group_request(g),
            };
            for (d, m) in t.members.iter_mut() {
                let addressed = only.as_ref().is_none_or(|o| o == d);
                if addressed && m.phase == Phase::Queued {
                    m.phase = Phase::Sent;
                    self.events.push_back(TrackerEvent::Member {
                        tid,
                        device: d.clone(),
                        phase: Phase::Sent,
                    });
                }
            }
            let (payload, response_topic) = match (&t.request, &t.text) {
                (Some(r), _) => {
                    let resp = match &only {
                        Some(d) => Some(topic::response(d)),
                        None => match &t.target {
                            Target::Device(d) => Some(topic::response(d)),
                            Target::Group(_) => None,
                        },
                    };
                    (r.encode(), resp)
                }
                (None, Some(text)) => (text.clone().into_bytes(), None),
                (None, None) => continue,
            };
            let message_expiry = Some(t.deadline.saturating_since(t.created_at));
            return Some(Outgoing {
                tid,
                topic,
                payload,
                response_topic,
                correlation_data: t.request.as_ref().map(|_| tid.as_bytes().to_vec()),
                message_expiry,
                retransmission,
                member: only,
            });
        }
        None
    }

    /// The session accepted a publish for `tid` (handed to the transport or queued offline).
    /// Arms the retransmission timer.
    pub fn handle_sent(&mut self, tid: Tid, now: Timestamp) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        if t.text.is_some() || t.is_finished() {
            return;
        }
        t.first_sent_at.get_or_insert(now);
        t.last_sent_at = Some(now);
        let at_least = match &t.target {
            Target::Device(d) => device_timeout(&self.round_trips, &self.fleet_round_trip, d),
            Target::Group(_) => self.fleet_round_trip.timeout().unwrap_or_default(),
        };
        let delay = self.config.backoff.delay_at_least(
            t.attempts.saturating_sub(1),
            at_least,
            &mut self.rng,
        );
        let at = now + delay;
        if at < t.deadline {
            t.next_retry = Some(at);
            self.timers.push(Reverse((at, tid)));
        } else {
            t.next_retry = None;
        }
    }

    /// The session refused a publish for `tid`; it is retried like a lost one.
    pub fn handle_send_failed(&mut self, tid: Tid, error: impl Into<String>, now: Timestamp) {
        self.events.push_back(TrackerEvent::SendFailed {
            tid,
            error: error.into(),
        });
        if let Some(t) = self.commands.get_mut(&tid) {
            for m in t.members.values_mut() {
                if m.phase == Phase::Sent {
                    m.phase = Phase::Queued;
                }
            }
            if t.text.is_some() {
                // A text command is never retried automatically: give the operator the timeout.
                return;
            }
        }
        self.handle_sent(tid, now);
    }

    /// The broker acknowledged the publish for `tid`.
    pub fn handle_delivered(&mut self, tid: Tid) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        for (d, m) in t.members.iter_mut() {
            if matches!(m.phase, Phase::Queued | Phase::Sent) {
                m.phase = Phase::Delivered;
                self.events.push_back(TrackerEvent::Member {
                    tid,
                    device: d.clone(),
                    phase: Phase::Delivered,
                });
            }
        }
    }

    fn finish_if_done(&mut self, tid: Tid, now: Timestamp) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        if t.is_finished() {
            t.next_retry = None;
            t.finished_at = Some(now);
            self.finished.push(now, tid, t.members.len());
            if t.text.is_some() {
                if let Target::Device(d) = &t.target {
                    if let Some(v) = self.text_outstanding.get_mut(d) {
                        v.retain(|x| *x != tid);
                    }
                }
            }
            self.events.push_back(TrackerEvent::Finished {
                tid,
                progress: t.progress,
            });
            self.forget_by_retention(now);
        }
    }

    /// The earliest instant at which [`CommandTracker::handle_timeout`] has work.
    pub fn poll_timeout(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((at, tid))) = self.timers.peek().copied() {
            match self.commands.get(&tid) {
                Some(t) if !t.is_finished() && (t.deadline == at || t.next_retry == Some(at)) => {
                    return Some(at)
                }
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// Fires retransmissions and deadlines due at `now`, and forgets what the retention rule's
    /// age bound has passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let quiet = self.quiet_period();
        while let Some(Reverse((at, tid))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(t) = self.commands.get_mut(&tid) else {
                continue;
            };
            if t.is_finished() {
                continue;
            }
            if t.deadline <= now {
                self.expire(tid, now);
            } else if t.next_retry == Some(at) {
                t.next_retry = None;
                // A fan-out still being answered waits until the answers pause.
                let resume = t
                    .last_answer_at
                    .filter(|_| matches!(t.target, Target::Group(_)))
                    .map(|last| last + quiet)
                    .filter(|resume| *resume > now);
                match resume {
                    Some(resume) if resume < t.deadline => {
                        t.next_retry = Some(resume);
                        self.timers.push(Reverse((resume, tid)));
                    }
                    // Answers are still arriving right up to the deadline: no round at all.
                    Some(_) => {}
                    None => self.retransmit(tid, now),
                }
            }
        }
        self.forget_by_retention(now);
    }

    fn expire(&mut self, tid: Tid, now: Timestamp) {
        let Some(t) = self.commands.get_mut(&tid) else {
            return;
        };
        for (d, m) in t.members.iter_mut() {
            if m.phase.is_terminal() {
                continue;
            }
            if std::mem::take(&mut m.retry_in_flight) {
                self.stragglers_in_flight = self.stragglers_in_flight.saturating_sub(1);
            }
            let phase = if m.phase == Phase::Delivered {
                Phase::TimedOut {
                    device_online: self.presence.get(d).map(|p| p.online),
                }
            } else {
                Phase::Expired
            };
            t.progress.count(&m.phase, -1);
            t.progress.count(&phase, 1);
            m.phase = phase.clone();
            // It timed out at its deadline, however late the timer fired.
            m.finished_at = Some(t.deadline.min(now));
            self.events.push_back(TrackerEvent::Member {
                tid,
                device: d.clone(),
                phase,
            });
        }
        self.finish_if_done(tid, now);
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TrackerEvent> {
        self.events.pop_front()
    }
}
