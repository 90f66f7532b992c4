//! A fleet: many devices on one tokio runtime, what they share (options, counters) and what
//! each is (its spec), a summary line, and a clean stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use switchboard_protocol::envelope::Tid;
use switchboard_protocol::family::Address;
use switchboard_protocol::session::ProtocolVersion;
use switchboard_protocol::{DeviceId, GroupId};

use crate::device;
use crate::family;
use crate::faults::Faults;
use crate::journal::Journal;
use crate::transport::Endpoint;

/// What every device of a fleet shares.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// The broker, and how to reach it.
    pub endpoint: Endpoint,
    /// MQTT version to try first (falls back to 3.1.1 when refused).
    pub version: ProtocolVersion,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Where devices keep what survives a restart; `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    /// Default telemetry period; zero turns telemetry off until a device is told otherwise.
    pub telemetry: Duration,
    /// Record every execution by device and TID in [`Stats::executions`] (for tests and audits).
    pub audit: bool,
}

/// One device's identity and faults.
#[derive(Clone, Debug)]
pub struct DeviceSpec {
    /// Its id (and MQTT client id).
    pub id: DeviceId,
    /// Groups whose fan-out topic it subscribes to.
    pub groups: Vec<GroupId>,
    /// What goes wrong for it.
    pub faults: Faults,
    /// `None`: it speaks Switchboard's envelope (and the pattern document's text); otherwise the
    /// family and address it plays.
    pub family: Option<Address>,
}

/// Counters shared by a fleet, for the summary line.
#[derive(Debug, Default)]
pub struct Stats {
    /// Devices connected now.
    pub online: AtomicUsize,
    /// Commands executed.
    pub executed: AtomicU64,
    /// Answers published (executions, replays and rejections).
    pub answered: AtomicU64,
    /// With [`FleetOptions::audit`]: how many times each device executed each TID.
    pub executions: std::sync::Mutex<std::collections::HashMap<(DeviceId, Tid), u32>>,
}

impl Stats {
    /// How many times `device` executed `tid` (needs [`FleetOptions::audit`]).
    pub fn executions_of(&self, device: &DeviceId, tid: &Tid) -> u32 {
        self.executions
            .lock()
            .map_or(0, |m| m.get(&(device.clone(), *tid)).copied().unwrap_or(0))
    }
}

/// A running fleet.
#[derive(Debug)]
pub struct Fleet {
    stats: Arc<Stats>,
    size: usize,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Fleet {
    /// Starts every device, each its own task, after opening the fleet's journal when
    /// `opts.state_dir` names one.
    pub fn start(specs: Vec<DeviceSpec>, opts: FleetOptions) -> std::io::Result<Fleet> {
        let journal = match &opts.state_dir {
            Some(dir) => Some(Arc::new(Journal::open(dir)?)),
            None => None,
        };
        let opts = Arc::new(opts);
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let size = specs.len();
        let mut bulbs = Vec::new();
        for spec in specs {
            let id = spec.id.clone();
            let (opts, stats, stopped) = (opts.clone(), stats.clone(), stopped.clone());
            if let Some(address) = spec.family {
                let groups: Vec<String> = spec.groups.iter().map(ToString::to_string).collect();
                if let Address::Zigbee2mqtt(z) = &address {
                    bulbs.push((z.clone(), groups.clone()));
                }
                let faults = spec.faults;
                tasks.spawn(async move {
                    if let Err(e) = family::run(address, groups, faults, opts, stats, stopped).await
                    {
                        tracing::error!(device = %id, error = %e, "device stopped");
                    }
                });
                continue;
            }
            let journal = journal.clone();
            tasks.spawn(async move {
                if let Err(e) = device::run(spec, opts, journal, stats, stopped).await {
                    tracing::error!(device = %id, error = %e, "device stopped");
                }
            });
        }
        if !bulbs.is_empty() {
            let (opts, stopped) = (opts.clone(), stopped.clone());
            tasks.spawn(async move {
                if let Err(e) = family::run_zigbee2mqtt_bridge(bulbs, opts, stopped).await {
                    tracing::error!(error = %e, "the Zigbee2MQTT bridge stopped");
                }
            });
        }
        Ok(Fleet {
            stats,
            size,
            stop,
            tasks,
        })
    }

    /// Shared counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Waits until every device is connected, or `timeout` passes. Returns how many are online.
    pub async fn wait_online(&self, timeout: Duration) -> usize {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let online = self.stats.online.load(Ordering::Relaxed);
            if online >= self.size || tokio::time::Instant::now() >= until {
                return online;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Prints a summary line every `every` until the returned future is dropped.
    pub async fn report(&self, every: Duration) {
        let mut last = self.stats.executed.load(Ordering::Relaxed);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let executed = self.stats.executed.load(Ordering::Relaxed);
            let rate = (executed - last) as f64 / every.as_secs_f64();
            last = executed;
            tracing::info!(
                "devices online {}/{} · commands executed {} ({:.1}/s) · answers {}",
                self.stats.online.load(Ordering::Relaxed),
                self.size,
                executed,
                rate,
                self.stats.answered.load(Ordering::Relaxed),
            );
        }
    }

    /// Asks every device to leave cleanly (retained status offline) and waits for them.
    pub async fn stop(mut self, timeout: Duration) {
        let _ = self.stop.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("some devices did not stop in time");
            self.tasks.abort_all();
        }
    }
}
