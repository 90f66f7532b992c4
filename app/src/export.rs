//! The history as files: every command the tracker still keeps (the retention rule drops the
//! oldest finished ones), as JSON or as CSV.

use switchboard_protocol::tracker::{CommandTracker, Tracked};

use crate::view::target_label;

fn oldest_first(tracker: &CommandTracker) -> Vec<&Tracked> {
    let mut all: Vec<&Tracked> = tracker.commands().collect();
    all.sort_by_key(|t| t.created_at);
    all
}

/// Every command kept, as JSON (an array of the tracker's records, oldest first).
pub fn json(tracker: &CommandTracker) -> String {
    serde_json::to_string_pretty(&oldest_first(tracker)).unwrap_or_default()
}

/// Every command kept, one CSV row per device and command.
pub fn csv(tracker: &CommandTracker) -> String {
    let mut out = String::from(
        "tid,created_at_ms,target,command,device,phase,round_trip_ms,attempts,detail\n",
    );
    for t in oldest_first(tracker) {
        for (d, m) in &t.members {
            let rtt = m
                .finished_at
                .map(|f| f.saturating_since(t.created_at).as_millis().to_string())
                .unwrap_or_default();
            let detail = m
                .response
                .as_ref()
                .and_then(|r| r.error.clone())
                .unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                t.tid,
                t.created_at.as_millis(),
                field(&target_label(&t.target)),
                field(&t.cmd),
                d,
                m.phase.label(),
                rtt,
                t.attempts,
                field(&detail),
            ));
        }
    }
    out
}

/// A CSV field, quoted when it must be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
