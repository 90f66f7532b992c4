//! What the panel draws from, as reactive signals. Components get the read-only [`Store`]; the one
//! [`StoreWriter`] belongs to the link, so data flows one way: socket -> client -> projection ->
//! signals -> view.
//!
//! Each device and each command has its own signal, so an answer redraws one card and one row, not
//! the fleet; lists hold ids only.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use leptos::prelude::*;
use switchboard_protocol::{DeviceId, GroupId, Tid};

use crate::device_view::DeviceView;
use crate::view::{CommandView, Conn, FanoutView, Notice};

/// How many notices are kept.
pub const NOTICES_KEEP: usize = 200;

/// Every signal the panel draws from, read-only. `Copy`: pass it around freely.
#[derive(Clone, Copy, Debug)]
pub struct Store {
    /// The connection.
    pub conn: ReadSignal<Conn>,
    /// The last connection error, for a person (wrong URL, refused credentials, closed socket).
    pub conn_error: ReadSignal<Option<String>>,
    /// Device ids, sorted.
    pub device_ids: ReadSignal<Vec<DeviceId>>,
    /// Known groups with their member counts.
    pub groups: ReadSignal<BTreeMap<GroupId, usize>>,
    /// Commands kept, oldest first.
    pub history: ReadSignal<VecDeque<Tid>>,
    /// How many older finished commands the retention rule has dropped.
    pub forgotten: ReadSignal<u64>,
    /// Notices, oldest first.
    pub notices: ReadSignal<VecDeque<Notice>>,
    /// The device whose details are open.
    pub selected: ReadSignal<Option<DeviceId>>,
    /// The open group command's matrix.
    pub fanout_view: ReadSignal<Option<FanoutView>>,
    devices: StoredValue<HashMap<DeviceId, RwSignal<DeviceView>>>,
    commands: StoredValue<HashMap<Tid, RwSignal<CommandView>>>,
}

impl Store {
    /// A device's signal.
    pub fn device(&self, id: &DeviceId) -> Option<ReadSignal<DeviceView>> {
        self.devices
            .with_value(|m| m.get(id).map(|s| s.read_only()))
    }

    /// A command's signal.
    pub fn command(&self, tid: &Tid) -> Option<ReadSignal<CommandView>> {
        self.commands
            .with_value(|m| m.get(tid).map(|s| s.read_only()))
    }
}

/// The writing half of the store: only the link holds it (and the pump it drives).
#[derive(Clone, Copy, Debug)]
pub struct StoreWriter {
    store: Store,
    conn: WriteSignal<Conn>,
    conn_error: WriteSignal<Option<String>>,
    device_ids: WriteSignal<Vec<DeviceId>>,
    groups: WriteSignal<BTreeMap<GroupId, usize>>,
    history: WriteSignal<VecDeque<Tid>>,
    forgotten: WriteSignal<u64>,
    notices: WriteSignal<VecDeque<Notice>>,
    selected: WriteSignal<Option<DeviceId>>,
    fanout_view: WriteSignal<Option<FanoutView>>,
}

impl StoreWriter {
    /// An empty store and its writer.
    pub fn new() -> StoreWriter {
        let (conn, set_conn) = signal(Conn::Offline);
        let (conn_error, set_conn_error) = signal(None);
        let (device_ids, set_device_ids) = signal(Vec::new());
        let (groups, set_groups) = signal(BTreeMap::new());
        let (history, set_history) = signal(VecDeque::new());
        let (forgotten, set_forgotten) = signal(0);
        let (notices, set_notices) = signal(VecDeque::new());
        let (selected, set_selected) = signal(None);
        let (fanout_view, set_fanout_view) = signal(None);
        StoreWriter {
            store: Store {
                conn,
                conn_error,
                device_ids,
                groups,
                history,
                forgotten,
                notices,
                selected,
                fanout_view,
                devices: StoredValue::new(HashMap::new()),
                commands: StoredValue::new(HashMap::new()),
            },
            conn: set_conn,
            conn_error: set_conn_error,
            device_ids: set_device_ids,
            groups: set_groups,
            history: set_history,
            forgotten: set_forgotten,
            notices: set_notices,
            selected: set_selected,
            fanout_view: set_fanout_view,
        }
    }

    /// The read-only store this writer writes.
    pub fn store(&self) -> Store {
        self.store
    }

    /// The connection and its last error, written only when they changed.
    pub fn set_conn(&self, conn: Conn, error: Option<String>) {
        if self.store.conn.get_untracked() != conn {
            self.conn.set(conn);
        }
        if self.store.conn_error.get_untracked() != error {
            self.conn_error.set(error);
        }
    }

    /// Opens (or closes) a device's details.
    pub fn set_selected(&self, device: Option<DeviceId>) {
        if self.store.selected.get_untracked() != device {
            self.selected.set(device);
        }
    }

    /// Shows a group command's matrix.
    pub fn set_fanout_view(&self, view: Option<FanoutView>) {
        self.fanout_view.set(view);
    }

    /// Shows devices' latest views. New devices get a signal and join the sorted list in one
    /// merge (a discovery can bring thousands at once); group counts follow the memberships that
    /// changed. The cost is that of what changed, plus one pass over the list when devices are new.
    pub fn put_devices(&self, views: Vec<DeviceView>) {
        let mut moves: Vec<(Vec<GroupId>, Vec<GroupId>)> = Vec::new();
        let mut added = Vec::new();
        for d in views {
            match self.store.devices.with_value(|m| m.get(&d.id).copied()) {
                Some(s) => {
                    if let Some(old) =
                        s.with_untracked(|old| (old.groups != d.groups).then(|| old.groups.clone()))
                    {
                        moves.push((old, d.groups.clone()));
                    }
                    s.set(d);
                }
                None => {
                    if !d.groups.is_empty() {
                        moves.push((Vec::new(), d.groups.clone()));
                    }
                    let id = d.id.clone();
                    self.store.devices.update_value(|m| {
                        m.insert(id.clone(), RwSignal::new(d));
                    });
                    added.push(id);
                }
            }
        }
        if !added.is_empty() {
            added.sort_by(|a, b| natural(a.as_str(), b.as_str()));
            self.device_ids.update(|v| merge_sorted(v, added));
        }
        if !moves.is_empty() {
            self.groups.update(|counts| {
                for (old, new) in moves {
                    for g in old {
                        if let Some(n) = counts.get_mut(&g) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                counts.remove(&g);
                            }
                        }
                    }
                    for g in new {
                        *counts.entry(g).or_default() += 1;
                    }
                }
            });
        }
    }

    /// Shows commands' latest state, listing new ones at the end of the history in one update.
    pub fn put_commands(&self, views: Vec<CommandView>) {
        let mut added = Vec::new();
        for c in views {
            match self.store.commands.with_value(|m| m.get(&c.tid).copied()) {
                Some(s) => s.set(c),
                None => {
                    let tid = c.tid;
                    self.store.commands.update_value(|m| {
                        m.insert(tid, RwSignal::new(c));
                    });
                    added.push(tid);
                }
            }
        }
        if !added.is_empty() {
            self.history.update(|h| h.extend(added));
        }
    }

    /// Drops commands the tracker forgot; `total` is how many it has forgotten in all.
    pub fn forget_commands(&self, tids: &[Tid], total: u64) {
        if !tids.is_empty() {
            let gone: HashSet<&Tid> = tids.iter().collect();
            self.store.commands.update_value(|m| {
                for tid in tids {
                    if let Some(s) = m.remove(tid) {
                        s.dispose();
                    }
                }
            });
            self.history.update(|h| h.retain(|t| !gone.contains(t)));
        }
        if self.store.forgotten.get_untracked() != total {
            self.forgotten.set(total);
        }
    }

    /// Adds notices, forgetting the oldest beyond [`NOTICES_KEEP`].
    pub fn notices(&self, new: Vec<Notice>) {
        if new.is_empty() {
            return;
        }
        self.notices.update(|n| {
            n.extend(new);
            while n.len() > NOTICES_KEEP {
                n.pop_front();
            }
        });
    }
}

impl Default for StoreWriter {
    fn default() -> Self {
        StoreWriter::new()
    }
}

/// Merges `added` (sorted) into `ids` (sorted): a few into many by binary search (a discovery
/// brings a few dozen per flush into thousands), otherwise in one pass.
fn merge_sorted(ids: &mut Vec<DeviceId>, added: Vec<DeviceId>) {
    let before = |a: &DeviceId, b: &DeviceId| natural(a.as_str(), b.as_str()).is_le();
    if ids
        .last()
        .is_none_or(|last| added.first().is_some_and(|first| before(last, first)))
    {
        ids.extend(added);
        return;
    }
    if added.len() * 16 < ids.len() {
        for id in added {
            let at = ids.partition_point(|x| before(x, &id));
            ids.insert(at, id);
        }
        return;
    }
    let old = std::mem::take(ids);
    ids.reserve(old.len() + added.len());
    let mut old = old.into_iter().peekable();
    let mut new = added.into_iter().peekable();
    loop {
        let take_old = match (old.peek(), new.peek()) {
            (Some(a), Some(b)) => before(a, b),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_old { old.next() } else { new.next() };
        ids.extend(next);
    }
}

/// Orders ids as a person would: `device2` before `device10`.
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, tail) = s.split_at(s.len() - digits);
        (head, tail.parse().ok())
    }
    let (ha, na) = split(a);
    let (hb, nb) = split(b);
    ha.cmp(hb).then(na.cmp(&nb)).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ids(names: &[&str]) -> Vec<DeviceId> {
        names
            .iter()
            .map(|n| DeviceId::new(*n).expect("valid"))
            .collect()
    }

    #[test]
    fn new_ids_join_the_list_in_natural_order() {
        let mut list = Vec::new();
        for batch in [
            &["device10", "device2"][..],
            &["device1", "device100"],
            &["device3"],
            &["device200", "device101"],
            &["alpha", "device20"],
        ] {
            let mut added = ids(batch);
            added.sort_by(|a, b| natural(a.as_str(), b.as_str()));
            merge_sorted(&mut list, added);
        }
        // A few into many takes the binary-search path.
        let mut many: Vec<DeviceId> = (1..=100)
            .map(|i| DeviceId::new(format!("d{}", 2 * i)).expect("valid"))
            .collect();
        merge_sorted(&mut many, ids(&["d3", "d101"]));
        let at = |n: &str| many.iter().position(|d| d.as_str() == n);
        assert_eq!((at("d2"), at("d3"), at("d4")), (Some(0), Some(1), Some(2)));
        assert_eq!(
            (at("d100"), at("d101"), at("d102")),
            (Some(50), Some(51), Some(52))
        );
        assert!(many
            .windows(2)
            .all(|w| natural(w[0].as_str(), w[1].as_str()).is_lt()));
        let names: Vec<&str> = list.iter().map(DeviceId::as_str).collect();
        assert_eq!(
            names,
            [
                "alpha",
                "device1",
                "device2",
                "device3",
                "device10",
                "device20",
                "device100",
                "device101",
                "device200"
            ]
        );
    }
}
