//! What a device keeps across restarts of the program: its saved configuration, the gate's memory
//! (recent TIDs, issuers' sequence numbers, sequence positions) and the journal of commands in
//! flight. One JSON file per device in the state directory, replaced atomically.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_protocol::envelope::Config;
use switchboard_protocol::gate::GateSnapshot;
use switchboard_protocol::DeviceId;

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

/// Where one device's record lives; `None` folder keeps it in memory only.
#[derive(Clone, Debug)]
pub struct Store {
    path: Option<PathBuf>,
    memory: Option<Persisted>,
}

impl Store {
    /// A store for `device` in `dir` (created if missing), or in memory when `dir` is `None`.
    pub fn new(dir: Option<&Path>, device: &DeviceId) -> Store {
        Store {
            path: dir.map(|d| d.join(format!("{device}.json"))),
            memory: None,
        }
    }

    /// Reads the record; a missing file is a fresh device, a corrupt one is an error.
    pub async fn load(&self) -> io::Result<Option<Persisted>> {
        let text = match &self.path {
            None => return Ok(self.memory.clone()),
            Some(p) => match tokio::fs::read_to_string(p).await {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{self}: {e}")))
    }

    /// Writes the record: to a temporary file, then renamed over the old one.
    pub async fn save(&mut self, p: &Persisted) -> io::Result<()> {
        match &self.path {
            None => {
                self.memory = Some(p.clone());
                Ok(())
            }
            Some(path) => {
                let text = serde_json::to_string(p).map_err(io::Error::other)?;
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                let tmp = path.with_extension("json.tmp");
                tokio::fs::write(&tmp, text).await?;
                tokio::fs::rename(&tmp, path).await
            }
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}", p.display()),
            None => f.write_str("(memory)"),
        }
    }
}
