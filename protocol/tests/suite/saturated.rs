//! A saturated fleet: one fan-out to thousands of devices through a broker that delivers answers
//! at a bounded rate, and single commands over a slow link. Retransmission must adapt: none while
//! answers still stream in, few beyond the ones that losses call for, and no command that would
//! have been answered by its deadline ends timed out.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use switchboard_protocol::envelope::{DeviceState, Outcome, Response, Status, Tid};
use switchboard_protocol::topic::Topic;
use switchboard_protocol::tracker::{CommandTracker, Phase, SendOptions, Target, TrackerConfig};
use switchboard_protocol::{Command, DeviceId, GroupId, IssuerId, Timestamp};
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request reaches device `n`.
    Request(usize),
    /// Device `n`'s answer enters the broker's queue towards the application.
    Answered(usize),
    /// The broker hands the application the next queued answer.
    Deliver(usize),
}

/// The world: devices, a broker with a bounded answer rate, and the tracker under test.
struct Fleet {
    now: u64,
    rng: fastrand::Rng,
    devices: Vec<DeviceId>,
    tracker: CommandTracker,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    order: u64,
    /// The broker delivers one answer every `answer_gap_us` microseconds, FIFO.
    answer_gap_us: u64,
    broker_free_at_us: u64,
    /// One-way delay of the link between the application and the broker.
    link_ms: u64,
    /// A device takes this long to act.
    exec_ms: (u64, u64),
    /// Share of answers the broker loses.
    loss: f64,
    retransmissions: u64,
    /// (time, devices) of every retransmission round.
    retransmitted_at: Vec<u64>,
    last_first_answer_at: u64,
}

impl Fleet {
    fn new(devices: usize, seed: u64) -> Fleet {
        let mut config = TrackerConfig::new(IssuerId::new("app").unwrap());
        config.deadline = Duration::from_secs(30);
        let mut tracker = CommandTracker::new(config, seed);
        let group = GroupId::new("all").unwrap();
        let devices: Vec<DeviceId> = (0..devices)
            .map(|i| DeviceId::new(format!("d{i}")).unwrap())
            .collect();
        for d in &devices {
            let mut s = Status::offline(d.clone());
            s.online = true;
            s.groups = vec![group.clone()];
            tracker.handle_status(d, &s.encode());
        }
        Fleet {
            now: 0,
            rng: fastrand::Rng::with_seed(seed),
            devices,
            tracker,
            queue: BinaryHeap::new(),
            order: 0,
            answer_gap_us: 200,
            broker_free_at_us: 0,
            link_ms: 1,
            exec_ms: (1, 5),
            loss: 0.0,
            retransmissions: 0,
            retransmitted_at: Vec::new(),
            last_first_answer_at: 0,
        }
    }

    fn at(&self) -> Timestamp {
        Timestamp::from_millis(self.now)
    }

    fn schedule(&mut self, at: u64, e: Event) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, e)));
    }

    fn index(&self, d: &DeviceId) -> usize {
        self.devices.iter().position(|x| x == d).unwrap()
    }

    /// Hands the tracker's publishes to the broker, which fans them out.
    fn transmit(&mut self) {
        let now = self.at();
        let mut round = 0;
        while let Some(out) = self.tracker.poll_transmit() {
            self.tracker.handle_sent(out.tid, now);
            self.tracker.handle_delivered(out.tid);
            if out.retransmission {
                self.retransmissions += 1;
                round += 1;
            }
            let reach = self.now + self.link_ms;
            match Topic::parse(&out.topic) {
                Some(Topic::GroupRequest(_)) => {
                    for i in 0..self.devices.len() {
                        // The broker writes the fan-out out at 20 messages per ms.
                        self.schedule(reach + i as u64 / 20, Event::Request(i));
                    }
                }
                Some(Topic::Request(d)) => {
                    let i = self.index(&d);
                    self.schedule(reach, Event::Request(i));
                }
                other => panic!("unexpected publish on {other:?}"),
            }
        }
        if round > 0 {
            self.retransmitted_at.push(self.now);
        }
    }

    fn run(&mut self, tid: Tid) {
        self.transmit();
        let mut answered = vec![false; self.devices.len()];
        loop {
            let next_net = self.queue.peek().map(|Reverse((at, _, _))| *at);
            let next_timer = self.tracker.poll_timeout().map(Timestamp::as_millis);
            let Some(t) = [next_net, next_timer].into_iter().flatten().min() else {
                break;
            };
            self.now = t;
            while let Some(Reverse((at, _, e))) = self.queue.peek().copied() {
                if at > self.now {
                    break;
                }
                self.queue.pop();
                match e {
                    Event::Request(i) => {
                        let exec = self.rng.u64(self.exec_ms.0..=self.exec_ms.1);
                        self.schedule(self.now + exec, Event::Answered(i));
                    }
                    Event::Answered(i) => {
                        if self.rng.f64() < self.loss {
                            continue;
                        }
                        let now_us = self.now * 1000;
                        let start = self.broker_free_at_us.max(now_us);
                        self.broker_free_at_us = start + self.answer_gap_us;
                        let at = (start + self.answer_gap_us).div_ceil(1000) + self.link_ms;
                        self.schedule(at, Event::Deliver(i));
                    }
                    Event::Deliver(i) => {
                        let d = self.devices[i].clone();
                        let mut r = Response::new(tid, d.clone(), "get_state", Outcome::Succeeded);
                        r.state = Some(DeviceState::default());
                        if !answered[i] {
                            answered[i] = true;
                            self.last_first_answer_at = self.now;
                        }
                        self.tracker.handle_response(&d, &r.encode(), self.at());
                    }
                }
            }
            self.tracker.handle_timeout(self.at());
            self.transmit();
            while self.tracker.poll_event().is_some() {}
        }
    }

    fn fan_out(&mut self) -> Tid {
        let tid = self.tracker.submit(
            Target::Group(GroupId::new("all").unwrap()),
            &Command::GetState,
            SendOptions::default(),
            self.at(),
        );
        self.run(tid);
        tid
    }
}

#[test]
fn no_straggler_is_retransmitted_to_while_answers_stream_in() {
    // 10,000 answers at one per 0.2 ms: the broker needs 2 s to deliver them all.
    let mut fleet = Fleet::new(10_000, 1);
    let tid = fleet.fan_out();
    let t = fleet.tracker.get(&tid).unwrap();
    assert_eq!(t.progress.succeeded, 10_000, "{:?}", t.progress);
    assert!(
        fleet.last_first_answer_at >= 2_000,
        "the broker really was the bottleneck: {} ms",
        fleet.last_first_answer_at
    );
    assert_eq!(
        fleet.retransmissions, 0,
        "retransmitted while answers streamed in, at {:?}",
        fleet.retransmitted_at
    );
}

#[test]
fn a_lossy_saturated_fan_out_retransmits_only_to_the_lost_and_finishes() {
    for seed in 0..5 {
        let mut fleet = Fleet::new(5_000, seed);
        fleet.loss = 0.02;
        let tid = fleet.fan_out();
        let t = fleet.tracker.get(&tid).unwrap();
        assert_eq!(
            t.progress.succeeded, 5_000,
            "every device answers by the deadline: {:?}",
            t.progress
        );
        // About 100 answers are lost (2%), and 2% of the retransmissions' answers again.
        assert!(
            fleet.retransmissions <= 200,
            "{} retransmissions for ~100 lost answers",
            fleet.retransmissions
        );
        let first_round = fleet.retransmitted_at.first().copied().unwrap_or(u64::MAX);
        // The stream of first answers had ended before the first round of retransmissions.
        let streaming_until = 5_000 * 200 / 1000;
        assert!(
            first_round >= streaming_until,
            "first round at {first_round} ms, answers streamed until ~{streaming_until} ms"
        );
        assert!(fleet.tracker.stragglers_in_flight() == 0);
    }
}

#[test]
fn straggler_retransmissions_in_flight_are_capped() {
    // Every first answer is lost: all 2,000 members are stragglers at once.
    let mut fleet = Fleet::new(2_000, 9);
    fleet.loss = 1.0;
    let tid = fleet.tracker.submit(
        Target::Group(GroupId::new("all").unwrap()),
        &Command::GetState,
        SendOptions::default(),
        fleet.at(),
    );
    fleet.transmit();
    // Run until the first retransmission round, then look at it.
    while fleet.retransmissions == 0 {
        let due = fleet
            .tracker
            .poll_timeout()
            .expect("a retransmission is planned");
        fleet.now = due.as_millis();
        fleet.tracker.handle_timeout(due);
        fleet.transmit();
    }
    assert_eq!(fleet.retransmissions, 256, "the default cap");
    assert_eq!(fleet.tracker.stragglers_in_flight(), 256);
    // The others get their turn in later rounds, and all end by the deadline.
    fleet.loss = 0.0;
    fleet.run(tid);
    let t = fleet.tracker.get(&tid).unwrap();
    assert_eq!(t.progress.succeeded, 2_000, "{:?}", t.progress);
    assert_eq!(fleet.tracker.stragglers_in_flight(), 0);
}

#[test]
fn a_slow_link_is_learned_and_not_retransmitted_into() {
    // A 3 s round trip: longer than the first backoff window (0.5 s) but well within the deadline.
    let mut fleet = Fleet::new(1, 4);
    fleet.link_ms = 1_500;
    let d = fleet.devices[0].clone();
    let mut per_command = Vec::new();
    for _ in 0..20 {
        let before = fleet.retransmissions;
        let tid = fleet.tracker.submit(
            Target::Device(d.clone()),
            &Command::GetState,
            SendOptions::default(),
            fleet.at(),
        );
        fleet.run(tid);
        let t = fleet.tracker.get(&tid).unwrap();
        assert_eq!(t.members[&d].phase, Phase::Succeeded);
        per_command.push(fleet.retransmissions - before);
    }
    let rto = fleet.tracker.round_trip(&d).unwrap().timeout().unwrap();
    assert!(rto >= Duration::from_secs(3), "{rto:?}");
    // Once measured, the round trip is waited out: no more copies after the first few commands
    // (without the measurement, every command here would be sent at least twice).
    assert!(
        per_command[10..].iter().all(|n| *n == 0),
        "retransmissions per command: {per_command:?}"
    );
    assert!(per_command.iter().sum::<u64>() <= 12, "{per_command:?}");
}
