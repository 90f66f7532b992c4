//! The client's side of devices of other families: following them (added by address or found
//! by discovery), the groups they are in, and what their messages settle.

use std::collections::BTreeSet;

use super::{Client, ClientEvent, Dialect};
use crate::family::discovery::{self, Discovered};
use crate::family::{shelly, Address, Observation};
use crate::session::{Message, QoS, SessionError};
use crate::time::Timestamp;
use crate::topic::{DeviceId, GroupId};
use crate::tracker::Presence;

impl<D: Dialect> Client<D> {
    /// Commands a device of another family from now on: its topics are subscribed (before
    /// anything is published to it) and its reports followed. Returns the id it goes by. An
    /// address already known is replaced.
    pub fn add_device(
        &mut self,
        address: Address,
        now: Timestamp,
    ) -> Result<DeviceId, SessionError> {
        let wanted_replies = self.families.wants_replies();
        let (id, topics) = self.families.add(address);
        if let Some(s) = self.session.as_mut() {
            for t in &topics {
                s.subscribe(t, QoS::AtLeastOnce, now)?;
            }
            if !wanted_replies && self.families.wants_replies() {
                s.subscribe(self.families.reply_topic(), QoS::AtLeastOnce, now)?;
            }
            if let Some(probe) = self.families.probe(&id) {
                // A query: if it fails, the device's next connect announces the same.
                let _ = s.publish(probe, now);
            }
        }
        self.drive(now);
        Ok(id)
    }

    /// Stops commanding a device of another family.
    pub fn remove_device(&mut self, id: &DeviceId, now: Timestamp) -> Result<(), SessionError> {
        let groups = self.families.groups_of(id);
        let gone = self.families.remove(id);
        if !groups.is_empty() {
            self.events.push_back(ClientEvent::Grouped {
                device: id.clone(),
                groups: Vec::new(),
            });
        }
        if let Some(s) = self.session.as_mut() {
            for t in &gone {
                s.unsubscribe(t, now)?;
            }
        }
        self.drive(now);
        Ok(())
    }

    /// The address of a device of another family, if it is one.
    pub fn family_device(&self, id: &DeviceId) -> Option<&Address> {
        self.families.address(id)
    }

    /// Every device of another family, with its address.
    pub fn family_devices(&self) -> impl Iterator<Item = (&DeviceId, &Address)> {
        self.families.devices()
    }

    /// The power state a device of another family last reported.
    pub fn family_power(&self, id: &DeviceId) -> Option<bool> {
        self.families.power(id)
    }

    /// Puts a device of another family in `groups` (replacing the groups given before; the
    /// groups its family keeps stay). A command to one of them reaches it, each member confirmed
    /// on its own. Returns whether its groups changed (false for a device not followed).
    pub fn assign_groups(&mut self, id: &DeviceId, groups: BTreeSet<GroupId>) -> bool {
        let changed = self.families.assign(id, groups);
        if changed {
            self.grouped(id.clone());
        }
        changed
    }

    /// Every group a device of another family is in: those given by
    /// [`Client::assign_groups`] and those its family keeps (a Tasmota GroupTopic, a
    /// Zigbee2MQTT group).
    pub fn family_groups(&self, id: &DeviceId) -> Vec<GroupId> {
        self.families.groups_of(id)
    }

    fn grouped(&mut self, device: DeviceId) {
        let groups = self.families.groups_of(&device);
        self.events
            .push_back(ClientEvent::Grouped { device, groups });
    }

    /// Follows every family's discovery announcements (see [`crate::family::discovery`]) from
    /// now on: each device found is added and reported as [`ClientEvent::Discovered`].
    pub fn discover(&mut self, now: Timestamp) -> Result<(), SessionError> {
        if !self.discovering {
            self.discovering = true;
            if let Some(s) = self.session.as_mut() {
                for f in discovery::filters() {
                    s.subscribe(&f, QoS::AtLeastOnce, now)?;
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    pub(super) fn family_filters(&self) -> Vec<String> {
        let mut v: Vec<String> = self.families.topics().cloned().collect();
        if self.families.wants_replies() {
            v.push(self.families.reply_topic().to_owned());
        }
        if self.discovering {
            v.extend(discovery::filters());
        }
        v
    }

    /// A message on a family device's topic, an RPC reply or a discovery announcement; gives the
    /// message back when it is none of them.
    pub(super) fn on_family_message(&mut self, m: Message, now: Timestamp) -> Option<Message> {
        if let Some(routes) = self.families.route(&m.topic) {
            // Owned: settling below needs `self` whole.
            let routes: Vec<_> = routes.to_vec();
            for (device, role) in routes {
                let Some(address) = self.families.address(&device) else {
                    continue;
                };
                match address.decode(&m.topic, role, &m.payload) {
                    Ok(observation) => {
                        let groups = matches!(observation, Observation::GroupTopic(_))
                            .then(|| self.families.groups_of(&device));
                        if let Some((tid, s)) =
                            self.families.observe(&device, &observation, m.retain)
                        {
                            self.tracker.settle(tid, &device, s, now);
                        }
                        if groups.is_some_and(|g| g != self.families.groups_of(&device)) {
                            self.grouped(device.clone());
                        }
                        if let Observation::Presence(online) = observation {
                            let groups = self
                                .tracker
                                .presence(&device)
                                .map(|p| p.groups.clone())
                                .unwrap_or_default();
                            self.tracker
                                .set_presence(device.clone(), Presence { online, groups });
                        }
                        if observation != Observation::Nothing {
                            self.events.push_back(ClientEvent::Reported {
                                device,
                                observation,
                                retained: m.retain,
                            });
                        }
                    }
                    Err(error) => self.tracker.handle_malformed(&device, error),
                }
            }
            return None;
        }
        if self.families.wants_replies() && m.topic == self.families.reply_topic() {
            match shelly::decode_reply(&m.payload) {
                Ok(reply) => match self.families.reply(&reply) {
                    Some((tid, device, s)) => self.tracker.settle(tid, &device, s, now),
                    None => self.events.push_back(ClientEvent::Undecodable {
                        topic: m.topic,
                        error: format!("reply id {} matches no outstanding command", reply.id),
                    }),
                },
                Err(e) => self.events.push_back(ClientEvent::Undecodable {
                    topic: m.topic,
                    error: e.to_string(),
                }),
            }
            return None;
        }
        if self.discovering {
            match discovery::read(&m.topic, &m.payload) {
                Ok(None) => {}
                Ok(Some(Discovered::Devices { found, .. })) => {
                    for f in found {
                        let known =
                            self.families.address(&f.address.device_id()) == Some(&f.address);
                        if known {
                            continue;
                        }
                        match self.add_device(f.address.clone(), now) {
                            Ok(device) => {
                                self.events.push_back(ClientEvent::Discovered {
                                    device: device.clone(),
                                    address: f.address,
                                    name: f.name,
                                });
                                if let Some(key) = f.key {
                                    for d in self.families.keyed(&device, key) {
                                        self.grouped(d);
                                    }
                                }
                            }
                            Err(e) => self.events.push_back(ClientEvent::Undecodable {
                                topic: m.topic.clone(),
                                error: format!("found a device but cannot follow it: {e}"),
                            }),
                        }
                    }
                    return None;
                }
                Ok(Some(Discovered::Groups { groups, .. })) => {
                    for d in self.families.native_groups(groups) {
                        self.grouped(d);
                    }
                    return None;
                }
                Ok(Some(Discovered::Gone { family, key })) => {
                    self.events.push_back(ClientEvent::Vanished { family, key });
                    return None;
                }
                Ok(Some(Discovered::Nothing)) => return None,
                Err(e) => {
                    self.events.push_back(ClientEvent::Undecodable {
                        topic: m.topic,
                        error: e.to_string(),
                    });
                    return None;
                }
            }
        }
        Some(m)
    }
}
