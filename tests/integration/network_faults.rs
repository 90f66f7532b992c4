//! A burst of 1,000 commands while the link to the broker misbehaves for real: a fifth of the
//! packets dropped each way, 300 ms of delay with jitter, a 30 s partition. The broker (mosquitto)
//! lives in a network namespace of the test's own; the devices and the sender reach it over a
//! veth pair. Every command ends terminal by its deadline, none runs twice, and after the partition
//! everyone reconnects by themselves and reconciles what was outstanding. Without root (no
//! namespaces), the tests say so and pass over it; CI runs as root.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use device_sim::faults::Faults;
use device_sim::link::now;
use device_sim::send::{Operator, OperatorOptions};
use switchboard_protocol::session::ProtocolVersion;
use switchboard_protocol::tracker::{SendOptions, Tracked};
use switchboard_protocol::{Command, Tid};

use crate::panel::click;
use crate::support::browser::{dist, Browser, StaticServer};
use crate::support::netlab::{delay_line, NetLab};
use crate::support::{dev, endpoint, fleet_options, specs, start_fleet, to};

const DEVICES: usize = 10;
const COMMANDS: usize = 1_000;

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// 20% of the packets dropped, each way, for the whole burst.
    Loss,
    /// 300 ms each way, plus up to 100 ms of jitter.
    Delay,
    /// Nothing gets through for 30 s, starting just before the burst is sent.
    Partition,
}

/// The lab, or `None` (after saying why) where namespaces cannot be made.
fn lab_or_skip() -> Option<NetLab> {
    NetLab::start()
        .inspect_err(|why| {
            eprintln!("SKIPPED: no network namespace for this test ({why}); run as root");
        })
        .ok()
}

/// Starts `fault` on the link just before the traffic: the loss for good, the partition for 30 s
/// (the returned task heals it). The delay is the path itself ([`path_to`]).
fn begin(lab: &NetLab, fault: Fault) -> Option<tokio::task::JoinHandle<()>> {
    match fault {
        Fault::Loss => {
            lab.lossy(0.2);
            None
        }
        Fault::Delay => None,
        Fault::Partition => {
            let heal = lab.partition();
            Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                heal.now();
            }))
        }
    }
}

/// Where a client reaches the broker's `port` across the faulty link: the broker itself, or the
/// delay line in front of it.
async fn path_to(lab: &NetLab, fault: Fault, port: u16) -> SocketAddr {
    let broker = SocketAddr::from((lab.broker_ip, port));
    match fault {
        Fault::Delay => {
            delay_line(
                broker,
                Duration::from_millis(300),
                Duration::from_millis(100),
            )
            .await
        }
        Fault::Loss | Fault::Partition => broker,
    }
}

async fn burst_under(fault: Fault) {
    let Some(mut lab) = lab_or_skip() else {
        return;
    };
    lab.start_mosquitto().await;
    let url = format!("mqtt://{}", path_to(&lab, fault, 1883).await);
    let fleet = start_fleet(
        specs("nf", DEVICES, &[], &Faults::default()),
        fleet_options(&url, None),
    )
    .await;
    let deadline = Duration::from_secs(90);
    let mut op = Operator::connect(OperatorOptions {
        endpoint: endpoint(&url),
        version: ProtocolVersion::V5,
        timeout: deadline,
        presence_wait: Duration::from_millis(300),
    })
    .await
    .unwrap();

    let healer = begin(&lab, fault);
    let started = Instant::now();
    let tids: Vec<Tid> = (0..COMMANDS)
        .map(|i| {
            op.client_mut().submit(
                to(&format!("nf{}", i % DEVICES + 1)),
                &Command::Light { on: i % 2 == 0 },
                SendOptions::default(),
                now(),
            )
        })
        .collect();
    let finished = tokio::time::timeout(
        deadline + Duration::from_secs(10),
        op.run_until(|op| {
            tids.iter()
                .all(|t| op.tracker().get(t).is_some_and(Tracked::is_finished))
        }),
    )
    .await;
    let took = started.elapsed();
    if let Some(h) = healer {
        h.await.unwrap();
    }
    assert!(
        finished.is_ok(),
        "{fault:?}: every command terminal by its deadline ({deadline:?}); not all were after {took:?}"
    );

    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    let mut attempts = 0;
    for tid in &tids {
        let t = op.tracker().get(tid).unwrap();
        attempts += t.attempts;
        let (device, m) = t.members.iter().next().unwrap();
        *outcomes.entry(m.phase.label()).or_default() += 1;
        assert!(
            fleet.stats().executions_of(device, tid) <= 1,
            "{fault:?}: {tid} ran twice on {device}"
        );
        assert!(
            m.finished_at.is_some_and(|f| f <= t.deadline),
            "{fault:?}: {tid} ended after its deadline: {m:?}"
        );
    }
    eprintln!(
        "{fault:?}: {COMMANDS} commands to {DEVICES} devices terminal in {took:?}, {attempts} transmissions: {outcomes:?}"
    );
    // Nothing was lost for good: the link recovered well within the deadline, so every command
    // reached its device and was answered (succeeded, or refused as out of order after a
    // retransmission overtook it), none timed out.
    let answered = outcomes.get("succeeded").copied().unwrap_or(0)
        + outcomes.get("rejected").copied().unwrap_or(0);
    assert_eq!(answered, COMMANDS, "{fault:?}: {outcomes:?}");
    assert!(
        outcomes.get("succeeded").copied().unwrap_or(0) >= COMMANDS * 9 / 10,
        "{fault:?}: {outcomes:?}"
    );
    if let Fault::Partition = fault {
        // Everyone came back by themselves.
        assert_eq!(fleet.wait_online(Duration::from_secs(30)).await, DEVICES);
        assert!(
            took >= Duration::from_secs(30),
            "the partition held: {took:?}"
        );
    }
    op.disconnect().await;
    fleet.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_survives_a_fifth_of_the_packets_lost() {
    burst_under(Fault::Loss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_survives_300_ms_of_delay_with_jitter() {
    burst_under(Fault::Delay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_survives_a_30_s_partition() {
    burst_under(Fault::Partition).await;
}

/// The panel in headless Chromium sends one command to a group of 100 devices across the faulty
/// link: every member ends terminal (the matrix completes), none runs it twice, and after a
/// partition the panel and the devices are back by themselves.
async fn panel_fan_out_under(fault: Fault) {
    let Some(mut lab) = lab_or_skip() else {
        return;
    };
    lab.start_mosquitto().await;
    let tcp = path_to(&lab, fault, 1883).await;
    let ws = path_to(&lab, fault, 8083).await;
    let fleet = start_fleet(
        specs("nfan", 100, &["hall"], &Faults::default()),
        fleet_options(&format!("mqtt://{tcp}"), None),
    )
    .await;
    let server = StaticServer::start(dist());
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/?broker=ws://{ws}/mqtt", server.url))
        .await
        .unwrap();
    let t = Duration::from_secs(60);
    browser
        .until(
            "100 devices in group hall",
            "const o = document.querySelector('select[name=\"group\"] option'); return o && o.textContent.includes('100 devices');",
            t,
        )
        .await;
    let healer = begin(&lab, fault);
    let started = Instant::now();
    click(&browser, "[data-action=\"fanout\"]").await;
    let tid = browser
        .until(
            "the matrix complete",
            "const f = document.querySelector('[data-fanout]'); return f && f.dataset.complete === 'true' ? f.dataset.fanout : '';",
            Duration::from_secs(120),
        )
        .await;
    let took = started.elapsed();
    let counts = browser
        .client
        .execute(
            "const f = document.querySelector('[data-fanout]').dataset; return [f.answered, f.succeeded].join(' ');",
            vec![],
        )
        .await
        .unwrap();
    eprintln!(
        "{fault:?}: the panel's fan-out to 100 complete in {took:?}; answered, succeeded: {counts}"
    );
    browser.screenshot(&format!("fanout-under-{fault:?}")).await;
    let tid = Tid::parse(tid.as_str().unwrap()).unwrap();
    for i in 1..=100 {
        let d = dev(&format!("nfan{i}"));
        assert!(
            fleet.stats().executions_of(&d, &tid) <= 1,
            "{fault:?}: nfan{i} ran it twice"
        );
    }
    match fault {
        Fault::Loss | Fault::Delay => {
            assert_eq!(counts, "100 100", "{fault:?}: every member confirmed");
        }
        Fault::Partition => {
            healer.unwrap().await.unwrap();
            assert_eq!(fleet.wait_online(Duration::from_secs(60)).await, 100);
            browser
                .until(
                    "the panel online again",
                    "const b = document.querySelector('[data-conn]'); return b && b.dataset.conn === 'online';",
                    Duration::from_secs(60),
                )
                .await;
            // The panel reconciles the answers that were held up, and a new command goes through.
            click(&browser, "[data-action=\"fanout\"]").await;
            let again = browser
                .until(
                    "a second fan-out after the partition",
                    &format!("const f = document.querySelector('[data-fanout]'); return f && f.dataset.fanout !== '{tid}' && f.dataset.complete === 'true' ? [f.dataset.answered, f.dataset.succeeded].join(' ') : '';"),
                    Duration::from_secs(60),
                )
                .await;
            assert_eq!(again, "100 100", "after the partition: {again}");
        }
    }
    browser.close().await;
    fleet.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panels_fan_out_survives_a_fifth_of_the_packets_lost() {
    panel_fan_out_under(Fault::Loss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panels_fan_out_survives_300_ms_of_delay_with_jitter() {
    panel_fan_out_under(Fault::Delay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panels_fan_out_survives_a_30_s_partition() {
    panel_fan_out_under(Fault::Partition).await;
}
