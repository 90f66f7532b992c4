//! What the tracker knows of devices' presence: who is online, and who is in which group (a
//! fan-out's expected members).

use super::{CommandTracker, Presence, Target};
use crate::envelope::{decode_status, Status};
use crate::topic::DeviceId;

impl CommandTracker {
    /// A message arrived on `status/<device>` (the Switchboard envelope).
    pub fn handle_status(&mut self, device: &DeviceId, payload: &[u8]) {
        match decode_status(payload) {
            Ok(status) => self.handle_presence(device, status.as_ref()),
            Err(error) => self.handle_malformed(device, error),
        }
    }

    /// A device's presence, decoded: `None` when its retained status was cleared.
    pub fn handle_presence(&mut self, device: &DeviceId, status: Option<&Status>) {
        match status {
            Some(s) => {
                self.presence.insert(
                    device.clone(),
                    Presence {
                        online: s.online,
                        groups: s.groups.clone(),
                    },
                );
            }
            None => {
                self.presence.remove(device);
            }
        }
    }

    /// Sets presence directly (for devices known by other means).
    pub fn set_presence(&mut self, device: DeviceId, presence: Presence) {
        self.presence.insert(device, presence);
    }

    /// What presence says about `device`.
    pub fn presence(&self, device: &DeviceId) -> Option<&Presence> {
        self.presence.get(device)
    }

    /// The members a target is expected to have, from presence.
    pub(super) fn expected_members(&self, target: &Target) -> Vec<DeviceId> {
        match target {
            Target::Device(d) => vec![d.clone()],
            Target::Group(g) => {
                let mut v: Vec<_> = self
                    .presence
                    .iter()
                    .filter(|(_, p)| p.groups.contains(g))
                    .map(|(d, _)| d.clone())
                    .collect();
                v.sort();
                v
            }
        }
    }
}
