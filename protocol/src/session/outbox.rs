//! The publish ledger: every publish the session has accepted and not yet seen through, whether it
//! waits for a connection, for room in the broker's receive window, for its bytes to be written
//! (QoS 0) or for its PUBACK (QoS 1). Nothing leaves the ledger except as delivered or failed, and
//! the queue stays in acceptance order, so a reconnect resends in the order the caller published.

use core::mem;
use std::collections::{BTreeMap, VecDeque};

use super::{Publish, PublishId};
use crate::time::Timestamp;

/// A publish the session has accepted and not yet seen through.
#[derive(Clone, Debug)]
pub(super) struct Outgoing {
    pub(super) id: PublishId,
    pub(super) publish: Publish,
    /// When the session accepted it; message expiry counts from here.
    pub(super) accepted_at: Timestamp,
    /// The packet id it was last sent with, while a resumed session may still know it (DUP resend).
    pub(super) resend: Option<u16>,
    /// Sent at least once: it counts as in flight, not as queued.
    pub(super) sent_before: bool,
}

/// See the [module documentation](self).
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Waiting to be handed to the broker, oldest first.
    queue: VecDeque<Outgoing>,
    /// Entries of `queue` never sent: the offline queue that `max_offline_queue` bounds.
    queued_fresh: usize,
    /// QoS 1 publishes sent on the current connection, by packet id, awaiting PUBACK.
    in_flight: BTreeMap<u16, Outgoing>,
    /// QoS 0 publishes whose bytes wait in the transmit buffer.
    unwritten: Vec<Outgoing>,
    next_id: u64,
}

impl Outbox {
    /// Queues a publish under a fresh id.
    pub(super) fn accept(&mut self, publish: Publish, now: Timestamp) -> PublishId {
        let id = PublishId(self.next_id);
        self.next_id += 1;
        self.queue.push_back(Outgoing {
            id,
            publish,
            accepted_at: now,
            resend: None,
            sent_before: false,
        });
        self.queued_fresh += 1;
        id
    }

    /// Takes back the publish just accepted as `id` if it is still queued and the queue holds more
    /// than `capacity` fresh entries; its id is then handed out again.
    pub(super) fn take_back_overflow(&mut self, id: PublishId, capacity: usize) -> Option<Publish> {
        if self.queued_fresh <= capacity || self.queue.back().map(|o| o.id) != Some(id) {
            return None;
        }
        let refused = self.queue.pop_back()?;
        self.queued_fresh = self.queued_fresh.saturating_sub(1);
        self.next_id -= 1;
        Some(refused.publish)
    }

    /// The next publish to send.
    pub(super) fn front(&self) -> Option<&Outgoing> {
        self.queue.front()
    }

    /// Removes the next publish to send, which the caller then reports as sent or failed.
    pub(super) fn pop_front(&mut self) -> Option<Outgoing> {
        let entry = self.queue.pop_front()?;
        if !entry.sent_before {
            self.queued_fresh = self.queued_fresh.saturating_sub(1);
        }
        Some(entry)
    }

    /// `entry` was handed to the connection: QoS 1 under `packet_id`, QoS 0 without one.
    pub(super) fn sent(&mut self, mut entry: Outgoing, packet_id: Option<u16>) {
        match packet_id {
            Some(packet_id) => {
                entry.sent_before = true;
                entry.resend = None;
                self.in_flight.insert(packet_id, entry);
            }
            None => self.unwritten.push(entry),
        }
    }

    /// The broker acknowledged `packet_id`.
    pub(super) fn acked(&mut self, packet_id: u16) -> Option<PublishId> {
        self.in_flight.remove(&packet_id).map(|o| o.id)
    }

    /// The transmit buffer went to the transport: its QoS 0 publishes are delivered.
    pub(super) fn written(&mut self) -> Vec<PublishId> {
        self.unwritten.drain(..).map(|o| o.id).collect()
    }

    /// The connection is gone: in-flight publishes wait to be resent. With `bytes_lost`, so do the
    /// QoS 0 publishes whose bytes never reached the transport.
    pub(super) fn connection_lost(&mut self, bytes_lost: bool) {
        let mut back: Vec<Outgoing> = mem::take(&mut self.in_flight)
            .into_iter()
            .map(|(packet_id, mut o)| {
                o.resend = Some(packet_id);
                o
            })
            .collect();
        if bytes_lost {
            self.queued_fresh += self.unwritten.len();
            back.append(&mut self.unwritten);
        }
        self.requeue(back);
    }

    /// Stale bytes were dropped before a new transport: their QoS 0 publishes go out again.
    pub(super) fn unwritten_lost(&mut self) {
        let stale = mem::take(&mut self.unwritten);
        self.queued_fresh += stale.len();
        self.requeue(stale);
    }

    /// A new connection is up. Publishes awaiting a resend keep their packet id (and go out with
    /// DUP) only where `resume(packet_id)` says the broker still knows it; the rest go out as new.
    pub(super) fn new_connection(&mut self, mut resume: impl FnMut(u16) -> bool) {
        for entry in &mut self.queue {
            if let Some(packet_id) = entry.resend {
                if !resume(packet_id) {
                    entry.resend = None;
                }
            }
        }
    }

    /// Publishes accepted and never sent.
    pub(super) fn queued_len(&self) -> usize {
        self.queued_fresh
    }

    /// QoS 1 publishes sent and not acknowledged, including those waiting to be resent.
    pub(super) fn in_flight_len(&self) -> usize {
        self.in_flight.len() + self.queue.iter().filter(|o| o.sent_before).count()
    }

    fn requeue(&mut self, entries: Vec<Outgoing>) {
        if entries.is_empty() {
            return;
        }
        let mut all: Vec<Outgoing> = self.queue.drain(..).chain(entries).collect();
        all.sort_by_key(|o| o.id);
        self.queue = all.into();
    }
}
