//! What a device keeps across restarts of the program: its own record (saved configuration,
//! firmware, boots) and the gate's memory (recent TIDs, issuers' sequence numbers, sequence
//! positions, the journal of commands in flight). Kept in the fleet's [`Journal`] (one append-only
//! file with group commit), or nowhere: without one, a restart of the device boots from what it
//! holds in memory.
//!
//! A save writes what the gate changed since the last one (a [`GateDelta`]: what one command
//! changed), and the whole record only when the device's own part changed, or every
//! [`WHOLE_EVERY`] saves so that a device's latest whole record is never far back in the journal.

use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_protocol::envelope::Config;
use switchboard_protocol::gate::{DeviceGate, GateDelta, GateSnapshot};
use switchboard_protocol::DeviceId;

use crate::journal::Journal;

/// A whole record is written at least once every this many saves.
pub const WHOLE_EVERY: usize = 32;

/// A device's own part of its record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Configuration applied at the next start.
    #[serde(default)]
    pub saved_config: Config,
    /// Firmware version running.
    #[serde(default)]
    pub firmware: String,
    /// Firmware version staged, if any.
    #[serde(default)]
    pub staged_firmware: Option<String>,
    /// Starts so far.
    #[serde(default)]
    pub boots: u64,
}

/// A device's whole persistent record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// The device's own part.
    #[serde(flatten)]
    pub device: DeviceRecord,
    /// The gate's memory and journal.
    #[serde(default)]
    pub gate: GateSnapshot,
}

/// Where one device's record lives: the fleet's [`Journal`], or nowhere.
#[derive(Clone, Debug)]
pub struct Store {
    device: DeviceId,
    journal: Option<Arc<Journal>>,
    /// The device's part of the last whole record written, and the saves of changes since. `None`
    /// until a whole record is on disk (or after a save failed: the next one is whole).
    written: Option<(DeviceRecord, usize)>,
}

impl Store {
    /// `device`'s record in `journal`, or nowhere when there is none.
    pub fn new(journal: Option<Arc<Journal>>, device: &DeviceId) -> Store {
        Store {
            device: device.clone(),
            journal,
            written: None,
        }
    }

    /// Whether saves reach the disk.
    pub fn is_durable(&self) -> bool {
        self.journal.is_some()
    }

    /// The record the journal held at startup; none for a fresh device or without a journal; a
    /// corrupt one is an error.
    pub fn load(&mut self) -> io::Result<Option<Persisted>> {
        match &self.journal {
            None => Ok(None),
            Some(j) => j.take(&self.device),
        }
    }

    /// Saves `record` and what `gate` changed since the last save; returns once it is on disk.
    /// Without a journal, does nothing. The gate must log its changes
    /// ([`GateConfig::log_changes`](switchboard_protocol::gate::GateConfig::log_changes)) for a
    /// save to be a delta; otherwise every save is whole.
    pub async fn save(&mut self, record: &DeviceRecord, gate: &mut DeviceGate) -> io::Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let delta = gate.take_delta();
        let changes = match (&self.written, &delta) {
            (Some((written, n)), Some(_)) if written == record && *n < WHOLE_EVERY => Some(*n),
            _ => None,
        };
        let result = match (changes, delta) {
            (Some(n), Some(delta)) => {
                let r = journal.save(&self.device, Saved::Changes(&delta)).await;
                if let Some((_, count)) = &mut self.written {
                    *count = n + 1;
                }
                r
            }
            _ => {
                let whole = Persisted {
                    device: record.clone(),
                    gate: gate.snapshot(),
                };
                let r = journal.save(&self.device, Saved::Whole(&whole)).await;
                self.written = Some((record.clone(), 0));
                r
            }
        };
        if result.is_err() {
            self.written = None;
        }
        result
    }
}

/// What a save writes to the journal.
#[derive(Debug)]
pub enum Saved<'a> {
    /// The whole record.
    Whole(&'a Persisted),
    /// What the gate changed since the save before.
    Changes(&'a GateDelta),
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.journal {
            Some(j) => write!(f, "{} ({})", j.path().display(), self.device),
            None => f.write_str("(memory)"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs;

    use serde_json::json;
    use switchboard_protocol::envelope::{DeviceState, Request, Tid, VERSION};
    use switchboard_protocol::gate::{Admission, GateConfig};
    use switchboard_protocol::{IssuerId, Timestamp};

    use super::*;

    /// Runs one command through the gate, saving before acting and after finishing, as a device does.
    async fn command(store: &mut Store, record: &DeviceRecord, gate: &mut DeviceGate, seq: u64) {
        let request = Request {
            v: VERSION,
            tid: Tid::random(&mut fastrand::Rng::with_seed(seq)),
            issuer: IssuerId::new("app").unwrap(),
            seq,
            cmd: "light".into(),
            args: json!({"on": seq.is_multiple_of(2)}),
            issued_at: Timestamp::ZERO,
            ttl_ms: None,
            group: None,
        };
        let state = DeviceState::default();
        let at = Timestamp::from_millis(seq);
        let Admission::Execute(ticket) = gate.admit(&request, at, &state) else {
            panic!("not executed");
        };
        store.save(record, gate).await.unwrap();
        let _ = gate.finish(ticket, Ok(json!({"n": seq})), &state, at);
        store.save(record, gate).await.unwrap();
    }

    #[tokio::test]
    async fn saves_are_changes_between_whole_records_and_reopen_to_the_same_record() {
        let dir = std::env::temp_dir().join(format!("store-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let id = DeviceId::new("d1").unwrap();
        let mut config = GateConfig::new(id.clone());
        config.log_changes = true;
        let mut record = DeviceRecord {
            boots: 1,
            ..DeviceRecord::default()
        };
        let mut gate = DeviceGate::new(config);
        let journal = Arc::new(Journal::open(&dir).unwrap());
        let mut store = Store::new(Some(journal.clone()), &id);
        store.save(&record, &mut gate).await.unwrap();
        for seq in 1..=100 {
            command(&mut store, &record, &mut gate, seq).await;
        }
        // The device's own part changed: the next save is whole, whatever the count.
        record.firmware = "2.0".into();
        command(&mut store, &record, &mut gate, 101).await;
        drop(store);
        drop(journal);

        let text = fs::read_to_string(dir.join("journal.jsonl")).unwrap();
        let wholes = text.lines().filter(|l| l.contains("\"record\"")).count();
        assert_eq!(text.lines().count(), 1 + 2 * 101);
        // Saves 0, 33, 66, ... are whole (every WHOLE_EVERY + 1), then the one after the firmware changed.
        assert_eq!(
            wholes,
            203_usize.div_ceil(WHOLE_EVERY + 1) + 1,
            "{wholes} whole records"
        );
        let longest = text.lines().map(str::len).max().unwrap();
        let changes = text
            .lines()
            .filter(|l| !l.contains("\"record\""))
            .map(str::len)
            .max()
            .unwrap();
        assert!(
            changes * 4 < longest,
            "a change line ({changes} bytes) is far smaller than a whole record ({longest})"
        );

        let reopened = Journal::open(&dir).unwrap();
        let loaded = reopened.take(&id).unwrap().unwrap();
        assert_eq!(loaded.device, record);
        assert_eq!(loaded.gate, gate.snapshot());
        drop(reopened);
        let kept = fs::read_to_string(dir.join("journal.jsonl")).unwrap();
        assert!(
            kept.lines().count() <= WHOLE_EVERY + 1,
            "compacted at open to the last whole record and the changes after it: {} lines",
            kept.lines().count()
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
