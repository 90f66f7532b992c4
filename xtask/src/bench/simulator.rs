//! The device simulator's measurements: memory per simulated device (with the embedded broker and
//! with mosquitto) and commands answered per second.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::fleet::{fitting, Fleet, Mosquitto};
use super::process::{log_file, rss_kb, Budget, Child, TempDir};
use super::{thousands, Bench, Row};
use crate::step::{Failure, Result};

/// Fleet sizes whose memory is measured, after a one-device baseline.
const FLEET_SIZES: &[usize] = &[1_000, 10_000];
/// How long a fleet runs after `online` before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);
/// The fleet that commands are sent to.
const COMMAND_FLEET: usize = 1_000;
/// Measured group fan-outs (after one warm-up).
const FAN_OUTS: usize = 5;
/// Measured single-device round trips.
const ROUND_TRIPS: usize = 20;

/// Memory per device with the broker in the same process: the simulator as shipped.
pub fn memory_embedded(bench: &Bench, budget: &Budget) -> Result<Vec<Row>> {
    let baseline = measure_rss(bench, budget, 1, None)?.sim;
    let mut rows = vec![baseline_row("embedded broker", baseline)];
    for &wanted in FLEET_SIZES {
        // Each device holds two sockets here: its own and the broker's end.
        let devices = fitting(wanted, 2, bench.fd_limit);
        let rss = measure_rss(bench, budget, devices, None)?.sim;
        rows.push(Row {
            name: format!(
                "memory per device, {} devices, embedded broker{}",
                thousands(devices),
                capped_note(wanted, devices, bench.fd_limit)
            ),
            value: format!("{:.1}", kb_each(rss, baseline, devices - 1)),
            unit: "KB/device",
            how: format!(
                "(VmRSS({}) - VmRSS(1)) / {} of device-sim {SETTLE:?} after `online`; the broker \
                 runs in the same process, so this includes its per-connection state",
                thousands(devices),
                thousands(devices - 1)
            ),
        });
    }
    Ok(rows)
}

/// Memory per device with an external mosquitto: the simulator's devices alone, and mosquitto's
/// own cost per connection beside them.
pub fn memory_mosquitto(bench: &Bench, budget: &Budget) -> Result<Vec<Row>> {
    let baseline = measure_rss(bench, budget, 1, Some(Mosquitto::start(bench, budget)?))?;
    let mut rows = vec![baseline_row("mosquitto", baseline.sim)];
    for &wanted in FLEET_SIZES {
        let devices = fitting(wanted, 1, bench.fd_limit);
        let rss = measure_rss(
            bench,
            budget,
            devices,
            Some(Mosquitto::start(bench, budget)?),
        )?;
        let n = thousands(devices);
        let capped = capped_note(wanted, devices, bench.fd_limit);
        rows.push(Row {
            name: format!("memory per device, {n} devices, mosquitto{capped}"),
            value: format!("{:.1}", kb_each(rss.sim, baseline.sim, devices - 1)),
            unit: "KB/device",
            how: format!(
                "(VmRSS({n}) - VmRSS(1)) / {} of device-sim alone, {SETTLE:?} after `online`: \
                 devices only, the broker is another process",
                thousands(devices - 1)
            ),
        });
        rows.push(Row {
            name: format!("mosquitto per connection, {n} devices{capped}"),
            value: format!("{:.1}", kb_each(rss.broker, baseline.broker, devices - 1)),
            unit: "KB/conn",
            how: format!(
                "(VmRSS({n}) - VmRSS(1)) / {} of mosquitto (a fresh one per fleet), read with \
                 device-sim's",
                thousands(devices - 1)
            ),
        });
    }
    Ok(rows)
}

/// Commands answered per second by a 1,000-device fleet, and one device's round trip.
pub fn commands(bench: &Bench, budget: &Budget) -> Result<Vec<Row>> {
    let devices = fitting(COMMAND_FLEET, 2, bench.fd_limit);
    if devices < COMMAND_FLEET {
        return Err(Failure::new(format!(
            "{COMMAND_FLEET} devices need more than the open-files limit of {}",
            bench.fd_limit
        )));
    }
    let group = format!("--groups=all=1-{devices}");
    let fleet = Fleet::start(bench, budget, devices, &[group.as_str()], "commands")?;
    let url = fleet
        .tcp_url
        .clone()
        .ok_or_else(|| Failure::new("device-sim did not print its embedded broker's TCP URL"))?;
    let rss_before = rss_kb(fleet.process.id())?;

    let mut rates = Vec::new();
    for round in 0..=FAN_OUTS {
        let answers = send(bench, budget, &url, &["--group", "all", "get_state"])?;
        let succeeded = answers.iter().filter(|a| a.phase == "succeeded").count();
        if succeeded != devices {
            return Err(Failure::new(format!(
                "fan-out {round}: {succeeded} of {devices} devices succeeded"
            )));
        }
        let slowest = answers.iter().filter_map(|a| a.rtt_ms).max().unwrap_or(0);
        let rate = devices as f64 / (slowest.max(1) as f64 / 1000.0);
        println!(
            "    fan-out {round}{}: {devices} answers, the last after {slowest} ms: {rate:.0} commands/s",
            if round == 0 { " (warm-up)" } else { "" }
        );
        if round > 0 {
            rates.push(rate);
        }
    }
    let mut trips = Vec::new();
    for _ in 0..ROUND_TRIPS {
        let answers = send(bench, budget, &url, &["device1", "get_state"])?;
        match answers.as_slice() {
            [a] if a.phase == "succeeded" => trips.push(a.rtt_ms.unwrap_or(0)),
            other => {
                return Err(Failure::new(format!(
                    "one-device round trip: expected one success, got {} answer(s): {:?}",
                    other.len(),
                    other.first().map(|a| a.phase.as_str())
                )))
            }
        }
    }
    let rss_after = rss_kb(fleet.process.id())?;
    fleet.stop()?;
    let answered = devices * (FAN_OUTS + 1) + ROUND_TRIPS;

    rates.sort_by(f64::total_cmp);
    trips.sort_unstable();
    let n = thousands(devices);
    let fan_out = format!(
        "`device-sim send --group all get_state --wait` to {n} devices on the embedded broker \
         (TCP): {n} / time from submit to the last answer reconciled, {FAN_OUTS} runs after a warm-up"
    );
    let trip = format!(
        "`device-sim send device1 get_state --wait`, {ROUND_TRIPS} runs, {n} devices idle: submit \
         to answer reconciled as `send` prints it (whole ms), process start and connect excluded"
    );
    Ok(vec![
        Row {
            name: format!("fan-out, {n} devices, best"),
            value: format!("{:.0}", rates.last().copied().unwrap_or(0.0)),
            unit: "commands/s",
            how: fan_out.clone(),
        },
        Row {
            name: format!("fan-out, {n} devices, median"),
            value: format!("{:.0}", rates[rates.len() / 2]),
            unit: "commands/s",
            how: fan_out,
        },
        Row {
            name: format!("memory growth per command, {n} devices"),
            value: format!("{:.1}", kb_each(rss_after, rss_before, answered)),
            unit: "KB/command",
            how: format!(
                "(VmRSS after - VmRSS before) / {} commands answered by the rows above; embedded \
                 broker included",
                thousands(answered)
            ),
        },
        Row {
            name: "one-device round trip, median".to_owned(),
            value: trips[trips.len() / 2].to_string(),
            unit: "ms",
            how: trip.clone(),
        },
        Row {
            name: "one-device round trip, slowest".to_owned(),
            value: trips.last().copied().unwrap_or(0).to_string(),
            unit: "ms",
            how: trip,
        },
    ])
}

/// What durable state costs: the same fan-out to 1,000 devices with state in memory and with
/// `--state-dir` (the fleet's journal, synced before each command acts), runs alternating.
pub fn durable(bench: &Bench, budget: &Budget) -> Result<Vec<Row>> {
    let devices = fitting(COMMAND_FLEET, 2, bench.fd_limit);
    let group = format!("--groups=all=1-{devices}");
    let dir = TempDir::new("state")?;
    let state = format!("--state-dir={}", dir.0.display());
    let memory = Fleet::start(bench, budget, devices, &[group.as_str()], "durable-memory")?;
    let journal = Fleet::start(
        bench,
        budget,
        devices,
        &[group.as_str(), state.as_str()],
        "durable-journal",
    )?;
    let urls = [&memory, &journal].map(|f| f.tcp_url.clone());
    let [Some(memory_url), Some(journal_url)] = urls else {
        return Err(Failure::new(
            "device-sim did not print its embedded broker's TCP URL",
        ));
    };
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..=FAN_OUTS {
        for (i, url) in [&memory_url, &journal_url].into_iter().enumerate() {
            let answers = send(bench, budget, url, &["--group", "all", "get_state"])?;
            let succeeded = answers.iter().filter(|a| a.phase == "succeeded").count();
            if succeeded != devices {
                return Err(Failure::new(format!(
                    "fan-out {round}: {succeeded} of {devices} devices succeeded"
                )));
            }
            let slowest = answers.iter().filter_map(|a| a.rtt_ms).max().unwrap_or(0);
            if round > 0 {
                times[i].push(slowest);
            }
        }
    }
    memory.stop()?;
    journal.stop()?;
    for t in &mut times {
        t.sort_unstable();
    }
    let [m, j] = [&times[0], &times[1]].map(|t| t[t.len() / 2]);
    let n = thousands(devices);
    let how = format!(
        "`device-sim send --group all get_state --wait` to {n} devices on the embedded broker, submit to the last answer, median of {FAN_OUTS} runs alternating with the other fleet"
    );
    Ok(vec![
        Row {
            name: format!("fan-out to {n}, state in memory"),
            value: m.to_string(),
            unit: "ms",
            how: how.clone(),
        },
        Row {
            name: format!("fan-out to {n}, --state-dir (journal)"),
            value: j.to_string(),
            unit: "ms",
            how,
        },
        Row {
            name: "durable state, --state-dir / memory".to_owned(),
            value: format!("{:.2}", j as f64 / m.max(1) as f64),
            unit: "x",
            how: "target: at most 1.20".to_owned(),
        },
    ])
}

fn baseline_row(broker: &str, rss_kb: u64) -> Row {
    Row {
        name: format!("device-sim RSS, 1 device, {broker}"),
        value: format!("{:.1}", rss_kb as f64 / 1024.0),
        unit: "MB",
        how: format!("VmRSS {SETTLE:?} after `online`: the baseline of the rows below"),
    }
}

/// Resident memory, in KB, of the simulator and of the external broker (0 when embedded).
struct Rss {
    sim: u64,
    broker: u64,
}

/// Starts `devices` devices (on `mosquitto` when given, else on the embedded broker), lets them
/// settle, reads the memory of each process and stops them.
fn measure_rss(
    bench: &Bench,
    budget: &Budget,
    devices: usize,
    mosquitto: Option<Mosquitto>,
) -> Result<Rss> {
    let broker = mosquitto.as_ref().map(|m| format!("--broker={}", m.url));
    let label = format!(
        "memory-{devices}-{}",
        if mosquitto.is_some() {
            "mosquitto"
        } else {
            "embedded"
        }
    );
    let extra: Vec<&str> = broker.iter().map(String::as_str).collect();
    let fleet = Fleet::start(bench, budget, devices, &extra, &label)?;
    budget.sleep(SETTLE)?;
    let rss = Rss {
        sim: rss_kb(fleet.process.id())?,
        broker: match &mosquitto {
            Some(m) => rss_kb(m.process.id())?,
            None => 0,
        },
    };
    println!(
        "    {devices} device(s): online after {:.1} s; device-sim {:.1} MB{}",
        fleet.online_after.as_secs_f64(),
        rss.sim as f64 / 1024.0,
        if mosquitto.is_some() {
            format!(", mosquitto {:.1} MB", rss.broker as f64 / 1024.0)
        } else {
            String::new()
        }
    );
    fleet.stop()?;
    if let Some(m) = mosquitto {
        m.process.stop()?;
    }
    Ok(rss)
}

/// One line of `device-sim send`'s report: `<device>\t<phase>\t<rtt> ms\t<detail>`.
struct Answer {
    phase: String,
    rtt_ms: Option<u64>,
}

/// Runs `device-sim send --wait` with `words` and reads its report.
fn send(bench: &Bench, budget: &Budget, url: &str, words: &[&str]) -> Result<Vec<Answer>> {
    let mut command = Command::new(&bench.sim);
    command
        .args(["send", "--wait", "--timeout-secs=30"])
        .arg(format!("--broker={url}"))
        .args(words)
        .stdout(Stdio::piped())
        .stderr(log_file(&bench.logs.join("send.log"))?);
    let shown = format!("device-sim send {}", words.join(" "));
    let mut process = Child::spawn(&mut command, shown.clone())?;
    let mut stdout = process.take_stdout()?;
    // Read while it runs: a thousand report lines do not fit in a pipe.
    let reader = thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let status = process.wait_until(budget.deadline(Duration::from_secs(60)))?;
    drop(process);
    let text = reader
        .join()
        .map_err(|_| Failure::new("the thread reading `send` panicked"))?
        .map_err(|e| Failure::new(format!("reading `{shown}`: {e}")))?;
    match status {
        Some(status) if status.success() => {}
        Some(status) => {
            let head: String = text.lines().take(3).collect::<Vec<_>>().join(" | ");
            return Err(Failure::new(format!(
                "`{shown}` failed ({status}): {head} (log: {})",
                bench.logs.join("send.log").display()
            )));
        }
        None => return Err(Failure::new(format!("`{shown}` did not finish in time"))),
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (_device, phase, rtt) = (fields.next()?, fields.next()?, fields.next()?);
            Some(Answer {
                phase: phase.to_owned(),
                rtt_ms: rtt.strip_suffix(" ms").and_then(|ms| ms.parse().ok()),
            })
        })
        .collect())
}

fn capped_note(wanted: usize, devices: usize, limit: u64) -> String {
    if devices == wanted {
        String::new()
    } else {
        format!(" (not {}: open-files limit {limit})", thousands(wanted))
    }
}

/// (`after` - `before`) / `count`: what each of `count` things added, in KB.
fn kb_each(after_kb: u64, before_kb: u64, count: usize) -> f64 {
    (after_kb as f64 - before_kb as f64) / count.max(1) as f64
}
