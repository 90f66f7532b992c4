//! Durable state for a whole fleet: one append-only journal with group commit.
//!
//! A save appends one line: the device's whole record (`{"device": .., "record": ..}`), or what its
//! gate changed since the save before (`{"device": .., "gate": ..}`, see [`Store`](crate::store)).
//! A device's state is its last whole record with the changes after it applied in order. One
//! writer thread takes every save that is waiting, writes them in one go and syncs the file once,
//! then answers each: a device acts only once its record is on disk (the write-ahead promise of
//! the gate's journal), and a thousand devices saving at once pay for one sync instead of a
//! thousand file rewrites.
//!
//! At open, the journal is read back (a torn last line, left by a crash in the middle of a write,
//! is ignored) and written anew with each device's last whole record and the changes after it.
//! While running, the writer compacts it the same way once it holds many times more lines than
//! devices (a device writes a whole record at least every [`WHOLE_EVERY`] saves, so what is kept
//! per device stays short). Records of the older layout (one `<device>.json` file each) are still read.
//!
//! Written by hand rather than on an embedded database: the whole job is "the latest record per
//! device, durable before acting", and the batching that makes it cheap would sit on top of one
//! anyway.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use serde::{Deserialize, Serialize};
use switchboard_protocol::gate::GateDelta;
use switchboard_protocol::DeviceId;
use tokio::sync::oneshot;

use crate::store::{Persisted, Saved, WHOLE_EVERY};

/// The journal's file name in the state folder.
const FILE: &str = "journal.jsonl";
/// Compact once the file holds this many lines per device (at most `WHOLE_EVERY + 1` of them are
/// kept)...
const COMPACT_FACTOR: usize = 2 * (WHOLE_EVERY + 1);
/// ...and at least this many lines in all.
const COMPACT_FLOOR: usize = 50_000;

/// One line of the journal: a whole record or a gate's changes.
#[derive(Serialize, Deserialize)]
struct Line<D, R, G> {
    device: D,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gate: Option<G>,
}

/// A record on its way to disk, and who waits for it.
struct Save {
    device: DeviceId,
    line: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// The fleet's journal. See the [module documentation](self).
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    saves: Mutex<mpsc::Sender<Save>>,
    /// What the journal held at open, taken by each device as it boots.
    loaded: Mutex<HashMap<DeviceId, Persisted>>,
    /// File syncs so far: fewer than saves whenever saves came together.
    syncs: Arc<AtomicU64>,
}

impl Journal {
    /// Opens (creating it if missing) the journal in `dir`, reads it back, compacts it and starts
    /// its writer thread.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let lines = read_latest(&path)?;
        let mut loaded = HashMap::with_capacity(lines.len());
        for (device, chain) in &lines {
            let record = replay(chain).map_err(|why| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: the record of {device}: {why}", path.display()),
                )
            })?;
            loaded.insert(device.clone(), record);
        }
        rewrite(&path, lines.values().flatten())?;
        let file = OpenOptions::new().append(true).open(&path)?;
        let (tx, rx) = mpsc::channel();
        let devices = lines.keys().cloned().collect();
        let syncs = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            path: path.clone(),
            file,
            lines: lines.values().map(Vec::len).sum(),
            devices,
            syncs: syncs.clone(),
        };
        thread::Builder::new()
            .name("journal".to_owned())
            .spawn(move || writer.run(rx))?;
        Ok(Journal {
            dir: dir.to_owned(),
            saves: Mutex::new(tx),
            loaded: Mutex::new(loaded),
            syncs,
        })
    }

    /// The record `device` had when the journal was opened (once: a device boots from it, then
    /// keeps its own copy), or from the older one-file-per-device layout.
    pub fn take(&self, device: &DeviceId) -> io::Result<Option<Persisted>> {
        let found = self
            .loaded
            .lock()
            .map_err(|_| io::Error::other("the journal's lock was poisoned"))?
            .remove(device);
        if found.is_some() {
            return Ok(found);
        }
        let legacy = self.dir.join(format!("{device}.json"));
        match fs::read_to_string(&legacy) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", legacy.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Appends `device`'s whole record or its gate's changes; returns once it is on disk.
    pub async fn save(&self, device: &DeviceId, saved: Saved<'_>) -> io::Result<()> {
        let (record, gate) = match saved {
            Saved::Whole(r) => (Some(r), None),
            Saved::Changes(g) => (None, Some(g)),
        };
        let line = serde_json::to_vec(&Line {
            device,
            record,
            gate,
        })
        .map_err(io::Error::other)?;
        let (done, wait) = oneshot::channel();
        self.saves
            .lock()
            .map_err(|_| io::Error::other("the journal's lock was poisoned"))?
            .send(Save {
                device: device.clone(),
                line,
                done,
            })
            .map_err(|_| io::Error::other("the journal's writer has stopped"))?;
        wait.await
            .map_err(|_| io::Error::other("the journal's writer has stopped"))?
    }

    /// Where it lives.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// How many times the file was synced so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    file: File,
    /// Lines in the file.
    lines: usize,
    devices: HashSet<DeviceId>,
    syncs: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, saves: mpsc::Receiver<Save>) {
        while let Ok(first) = saves.recv() {
            // Group commit: everything already waiting goes out with the first one.
            let mut batch = vec![first];
            batch.extend(saves.try_iter());
            let result = self.write(&batch);
            for save in batch {
                let answer = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = save.done.send(answer);
            }
            if let Err(e) = self.compact_if_due() {
                tracing::error!(journal = %self.path.display(), error = %e, "could not compact the journal");
            }
        }
    }

    fn write(&mut self, batch: &[Save]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(batch.iter().map(|s| s.line.len() + 1).sum());
        for save in batch {
            buf.extend_from_slice(&save.line);
            buf.push(b'\n');
            self.devices.insert(save.device.clone());
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.lines += batch.len();
        Ok(())
    }

    fn compact_if_due(&mut self) -> io::Result<()> {
        if self.lines < COMPACT_FLOOR || self.lines < COMPACT_FACTOR * self.devices.len() {
            return Ok(());
        }
        let latest = read_latest(&self.path)?;
        rewrite(&self.path, latest.values().flatten())?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = latest.values().map(Vec::len).sum();
        Ok(())
    }
}

/// A device's state from its lines: the whole record, then each change in order.
fn replay(chain: &[Vec<u8>]) -> Result<Persisted, String> {
    let mut record: Option<Persisted> = None;
    for line in chain {
        let parsed: Line<DeviceId, Persisted, GateDelta> =
            serde_json::from_slice(line).map_err(|e| e.to_string())?;
        match (parsed.record, parsed.gate, &mut record) {
            (Some(whole), None, _) => record = Some(whole),
            (None, Some(delta), Some(r)) => r.gate.apply(delta),
            (None, Some(_), None) => {
                return Err("changes without a whole record before them".into())
            }
            _ => return Err("a line is either a whole record or a gate's changes".into()),
        }
    }
    record.ok_or_else(|| "no record".to_owned())
}

/// Each device's lines in the journal at `path` (none if it does not exist) that its state is
/// made of: its last whole record and the changes after it. A last line that does not parse was
/// cut off by a crash and is ignored; one elsewhere is an error.
fn read_latest(path: &Path) -> io::Result<HashMap<DeviceId, Vec<Vec<u8>>>> {
    #[derive(Deserialize)]
    struct Head {
        device: DeviceId,
        #[serde(default)]
        record: Option<serde::de::IgnoredAny>,
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    let mut latest: HashMap<DeviceId, Vec<Vec<u8>>> = HashMap::new();
    let mut bad: Option<(usize, String)> = None;
    for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        if let Some((at, why)) = bad.take() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} line {}: {why}", path.display(), at + 1),
            ));
        }
        match serde_json::from_slice::<Head>(&line) {
            Ok(head) => {
                let chain = latest.entry(head.device).or_default();
                if head.record.is_some() {
                    chain.clear();
                }
                chain.push(line);
            }
            Err(e) => bad = Some((n, e.to_string())),
        }
    }
    if let Some((at, why)) = bad {
        tracing::warn!(journal = %path.display(), line = at + 1, %why, "ignored a torn last line");
    }
    Ok(latest)
}

/// Replaces the journal at `path` with `lines`, one per device, durably.
fn rewrite<'a>(path: &Path, lines: impl Iterator<Item = &'a Vec<u8>>) -> io::Result<()> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = io::BufWriter::new(File::create(&tmp)?);
    for line in lines {
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::DeviceRecord;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("journal-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn record(boots: u64) -> Persisted {
        Persisted {
            device: DeviceRecord {
                boots,
                ..DeviceRecord::default()
            },
            ..Persisted::default()
        }
    }

    #[tokio::test]
    async fn the_latest_record_of_each_device_survives_a_reopen_and_the_file_is_compacted() {
        let d = dir("reopen");
        let (a, b) = (DeviceId::new("a").unwrap(), DeviceId::new("b").unwrap());
        {
            let j = Journal::open(&d).unwrap();
            for boots in 1..=5 {
                j.save(&a, Saved::Whole(&record(boots))).await.unwrap();
            }
            j.save(&b, Saved::Whole(&record(9))).await.unwrap();
        }
        let text = fs::read_to_string(d.join(FILE)).unwrap();
        assert_eq!(text.lines().count(), 6, "one appended line per save");
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.take(&a).unwrap().unwrap().device.boots, 5);
        assert_eq!(j.take(&b).unwrap().unwrap().device.boots, 9);
        assert!(j.take(&a).unwrap().is_none(), "taken once");
        let text = fs::read_to_string(d.join(FILE)).unwrap();
        assert_eq!(text.lines().count(), 2, "compacted at open");
        let _ = fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_ignored_and_a_torn_middle_one_is_an_error() {
        let d = dir("torn");
        let a = DeviceId::new("a").unwrap();
        {
            let j = Journal::open(&d).unwrap();
            j.save(&a, Saved::Whole(&record(3))).await.unwrap();
        }
        let path = d.join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"device\":\"a\",\"reco").unwrap();
        drop(f);
        let j = Journal::open(&d).unwrap();
        assert_eq!(
            j.take(&a).unwrap().unwrap().device.boots,
            3,
            "the cut-off save never happened"
        );
        drop(j);
        fs::write(&path, "garbage\n{\"device\":\"a\",\"record\":{}}\n").unwrap();
        assert!(Journal::open(&d).is_err());
        let _ = fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn devices_saving_at_once_share_syncs_and_all_land() {
        let d = dir("group");
        let j = std::sync::Arc::new(Journal::open(&d).unwrap());
        let mut tasks = Vec::new();
        for i in 0..500 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                let id = DeviceId::new(format!("d{i}")).unwrap();
                j.save(&id, Saved::Whole(&record(i))).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(
            j.syncs() < 500,
            "{} syncs for 500 saves made together",
            j.syncs()
        );
        drop(j);
        let j = Journal::open(&d).unwrap();
        for i in [0u64, 250, 499] {
            let id = DeviceId::new(format!("d{i}")).unwrap();
            assert_eq!(j.take(&id).unwrap().unwrap().device.boots, i);
        }
        let _ = fs::remove_dir_all(&d);
    }
}
