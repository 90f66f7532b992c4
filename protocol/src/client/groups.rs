//! Which groups the devices of other families belong to, and what carries a group command to
//! each of them.
//!
//! A device belongs to a group for one of two reasons:
//! - the operator put it there ([`Memberships::assign`]): a group may mix families, and each
//!   member is then commanded on its own topic;
//! - its family keeps the group: a Tasmota device listens on its GroupTopic (learned from its
//!   `STATUS1` or `INFO1`), a Zigbee2MQTT group lists its members on `bridge/groups`. One publish
//!   to the group's own topic (its *carrier*) then reaches every such member at once, and each is
//!   still confirmed on its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::family::discovery::NativeGroup;
use crate::family::Address;
use crate::topic::{DeviceId, GroupId};

/// See the [module documentation](self).
#[derive(Debug, Default)]
pub(super) struct Memberships {
    /// What the operator said.
    assigned: HashMap<DeviceId, BTreeSet<GroupId>>,
    /// What the families keep: per device, each group with the address that reaches it.
    native: HashMap<DeviceId, BTreeMap<GroupId, Address>>,
    /// Zigbee2MQTT devices by IEEE address.
    zigbee_keys: HashMap<String, DeviceId>,
    /// Zigbee2MQTT's last group list, applied again when devices come.
    zigbee_groups: Vec<NativeGroup>,
}

impl Memberships {
    /// Every group `device` is in.
    pub(super) fn of(&self, device: &DeviceId) -> Vec<GroupId> {
        let mut all: BTreeSet<GroupId> = self.assigned.get(device).cloned().unwrap_or_default();
        if let Some(n) = self.native.get(device) {
            all.extend(n.keys().cloned());
        }
        all.into_iter().collect()
    }

    /// Every device in `group`, sorted.
    pub(super) fn members(&self, group: &GroupId) -> Vec<DeviceId> {
        let mut v: BTreeSet<DeviceId> = self
            .assigned
            .iter()
            .filter(|(_, gs)| gs.contains(group))
            .map(|(d, _)| d.clone())
            .collect();
        v.extend(
            self.native
                .iter()
                .filter(|(_, gs)| gs.contains_key(group))
                .map(|(d, _)| d.clone()),
        );
        v.into_iter().collect()
    }

    /// The address that reaches `device` together with the rest of `group`, if its family
    /// keeps that group.
    pub(super) fn carrier(&self, device: &DeviceId, group: &GroupId) -> Option<&Address> {
        self.native.get(device)?.get(group)
    }

    /// The operator's groups for `device`; returns whether its groups changed.
    pub(super) fn assign(&mut self, device: &DeviceId, groups: BTreeSet<GroupId>) -> bool {
        let before = self.of(device);
        if groups.is_empty() {
            self.assigned.remove(device);
        } else {
            self.assigned.insert(device.clone(), groups);
        }
        self.of(device) != before
    }

    /// A Tasmota device said it listens on `group_topic`; returns whether its groups changed.
    /// A GroupTopic that cannot be a group's name is left alone.
    pub(super) fn listens_on(
        &mut self,
        device: &DeviceId,
        address: &Address,
        group_topic: &str,
    ) -> bool {
        let (Address::Tasmota(t), Ok(group)) = (address, GroupId::new(group_topic)) else {
            return false;
        };
        let carrier = Address::Tasmota(t.through_group(group_topic));
        let before = self.of(device);
        // One GroupTopic at a time: the one it said last.
        let native = self.native.entry(device.clone()).or_default();
        native.clear();
        native.insert(group, carrier);
        self.of(device) != before
    }

    /// A Zigbee2MQTT device is known by `key` (its IEEE address).
    pub(super) fn keyed(&mut self, device: &DeviceId, key: String) -> Vec<DeviceId> {
        self.zigbee_keys.insert(key, device.clone());
        self.apply_zigbee_groups()
    }

    /// Zigbee2MQTT's whole group list; returns the devices whose groups changed.
    pub(super) fn zigbee_groups(&mut self, groups: Vec<NativeGroup>) -> Vec<DeviceId> {
        self.zigbee_groups = groups;
        self.apply_zigbee_groups()
    }

    fn apply_zigbee_groups(&mut self) -> Vec<DeviceId> {
        let mut wanted: HashMap<DeviceId, BTreeMap<GroupId, Address>> = HashMap::new();
        for g in &self.zigbee_groups {
            let Ok(group) = GroupId::new(&g.name) else {
                continue;
            };
            for key in &g.members {
                if let Some(d) = self.zigbee_keys.get(key) {
                    wanted
                        .entry(d.clone())
                        .or_default()
                        .insert(group.clone(), g.carrier.clone());
                }
            }
        }
        let mut changed = Vec::new();
        let devices: BTreeSet<DeviceId> = self.zigbee_keys.values().cloned().collect();
        for d in devices {
            let now = wanted.remove(&d).unwrap_or_default();
            let before = self.native.get(&d).cloned().unwrap_or_default();
            if now != before {
                if now.is_empty() {
                    self.native.remove(&d);
                } else {
                    self.native.insert(d.clone(), now);
                }
                changed.push(d);
            }
        }
        changed
    }

    /// Forgets a device.
    pub(super) fn remove(&mut self, device: &DeviceId) {
        self.assigned.remove(device);
        self.native.remove(device);
        self.zigbee_keys.retain(|_, d| d != device);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::tasmota::Tasmota;
    use crate::family::zigbee2mqtt::Zigbee2mqtt;

    fn id(s: &str) -> DeviceId {
        DeviceId::new(s).unwrap()
    }

    fn group(s: &str) -> GroupId {
        GroupId::new(s).unwrap()
    }

    #[test]
    fn the_operators_groups_and_the_families_own_add_up() {
        let mut m = Memberships::default();
        let plug = Address::Tasmota(Tasmota::new("plug"));
        assert!(m.assign(&id("plug"), [group("kitchen")].into()));
        assert!(m.listens_on(&id("plug"), &plug, "tasmotas"));
        assert!(!m.listens_on(&id("plug"), &plug, "tasmotas"), "unchanged");
        assert_eq!(m.of(&id("plug")), vec![group("kitchen"), group("tasmotas")]);
        assert_eq!(m.members(&group("kitchen")), vec![id("plug")]);
        assert!(m.carrier(&id("plug"), &group("kitchen")).is_none());
        let Some(Address::Tasmota(t)) = m.carrier(&id("plug"), &group("tasmotas")) else {
            panic!("the GroupTopic carries it");
        };
        assert_eq!(t.set_power(true).topic, "cmnd/tasmotas/POWER");

        let bulb = id("bulb");
        let lounge = NativeGroup {
            name: "lounge".to_owned(),
            carrier: Address::Zigbee2mqtt(Zigbee2mqtt::new("lounge")),
            members: vec!["0x01".to_owned()],
        };
        assert_eq!(m.zigbee_groups(vec![lounge]), Vec::<DeviceId>::new());
        assert_eq!(m.keyed(&bulb, "0x01".to_owned()), vec![bulb.clone()]);
        assert_eq!(m.members(&group("lounge")), vec![bulb.clone()]);
        assert_eq!(m.zigbee_groups(Vec::new()), vec![bulb.clone()], "left it");
        assert!(m.of(&bulb).is_empty());
        m.remove(&id("plug"));
        assert!(m.members(&group("kitchen")).is_empty());
    }
}
