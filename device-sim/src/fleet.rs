//! A fleet: many devices on one tokio runtime, a summary line, and a clean stop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use switchboard_protocol::family::Address;

use crate::device::{self, DeviceSpec, FleetOptions, Stats};
use crate::family;
use crate::journal::Journal;

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
