//! What a device keeps across restarts of the program: its saved configuration, the gate's memory
//! (recent TIDs, issuers' sequence numbers, sequence positions) and the journal of commands in
//! flight. Kept in the fleet's [`Journal`] (one append-only file with group commit), or in memory.

use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_protocol::envelope::Config;
use switchboard_protocol::gate::GateSnapshot;
use switchboard_protocol::DeviceId;

use crate::journal::Journal;

/// A device's persistent record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// Configuration applied at the next start.
    #[serde(default)]
    pub saved_config: Config,
    /// The gate's memory and journal.
    #[serde(default)]
    pub gate: GateSnapshot,
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

/// Where one device's record lives: the fleet's [`Journal`], or memory only.
#[derive(Clone, Debug)]
pub struct Store {
    device: DeviceId,
    journal: Option<Arc<Journal>>,
    memory: Option<Persisted>,
}

impl Store {
    /// `device`'s record in `journal`, or in memory when there is none.
    pub fn new(journal: Option<Arc<Journal>>, device: &DeviceId) -> Store {
        Store {
            device: device.clone(),
            journal,
            memory: None,
        }
    }

    /// Whether a save reaches the disk (a journal), rather than memory only.
    pub fn is_durable(&self) -> bool {
        self.journal.is_some()
    }

    /// Reads the record: the journal's at startup, then the latest saved; none for a fresh
    /// device; a corrupt one is an error.
    pub async fn load(&mut self) -> io::Result<Option<Persisted>> {
        if let Some(p) = &self.memory {
            return Ok(Some(p.clone()));
        }
        match &self.journal {
            None => Ok(None),
            Some(j) => {
                let found = j.take(&self.device)?;
                self.memory.clone_from(&found);
                Ok(found)
            }
        }
    }

    /// Saves the record; with a journal, returns once it is on disk.
    pub async fn save(&mut self, p: &Persisted) -> io::Result<()> {
        if let Some(j) = &self.journal {
            j.save(&self.device, p).await?;
        }
        self.memory = Some(p.clone());
        Ok(())
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.journal {
            Some(j) => write!(f, "{} ({})", j.path().display(), self.device),
            None => f.write_str("(memory)"),
        }
    }
}
