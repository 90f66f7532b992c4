//! Outstanding commands across a page reload: saved to this tab's session storage, taken back when
//! the panel starts. The MQTT session is persistent, so answers that arrive meanwhile wait at the
//! broker and reconcile after the reload.

use switchboard_protocol::tracker::{CommandTracker, TrackerSnapshot};

use crate::settings::storage;

/// Where unfinished commands are kept across a reload.
const SNAPSHOT_KEY: &str = "switchboard.outstanding";

/// Saves the tracker's unfinished commands; an error is for a person.
pub fn save(tracker: &CommandTracker) -> Result<(), String> {
    let snap = tracker.snapshot();
    let Some(st) = storage(true) else {
        return Ok(());
    };
    if snap.commands.is_empty() {
        let _ = st.remove_item(SNAPSHOT_KEY);
        return Ok(());
    }
    let json = serde_json::to_string(&snap)
        .map_err(|e| format!("could not save outstanding commands: {e}"))?;
    st.set_item(SNAPSHOT_KEY, &json)
        .map_err(|_| "could not save outstanding commands (storage full)".to_owned())
}

/// What an earlier page of this tab left unfinished, if anything.
pub fn load() -> Option<Result<TrackerSnapshot, String>> {
    let json = storage(true)?.get_item(SNAPSHOT_KEY).ok().flatten()?;
    Some(serde_json::from_str(&json).map_err(|e| format!("saved commands could not be read: {e}")))
}
