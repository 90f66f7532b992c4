//! The subscriptions a session keeps alive across connections, and its SUBSCRIBE and UNSUBSCRIBE
//! requests awaiting an answer.
//!
//! A filter is *confirmed* once the broker granted it in the current broker session. A new broker
//! session (CONNACK without session present) unconfirms every filter, so all are sent again;
//! a resumed one only needs what changed while offline.

use core::mem;
use std::collections::{BTreeMap, BTreeSet};

use super::{QoS, SessionEvent};

#[derive(Clone, Copy, Debug)]
struct Subscription {
    qos: QoS,
    confirmed: bool,
}

#[derive(Clone, Debug)]
enum Request {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

/// See the [module documentation](self).
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    filters: BTreeMap<String, Subscription>,
    /// Unsubscribed while offline; sent on the next connection if the broker kept the session.
    unsubscribe_later: BTreeSet<String>,
    /// Requests sent on the current connection, by packet id.
    awaiting: BTreeMap<u16, Request>,
}

impl Subscriptions {
    /// Remembers `filter` as wanted and not yet confirmed.
    pub(super) fn add(&mut self, filter: &str, qos: QoS) {
        self.unsubscribe_later.remove(filter);
        self.filters.insert(
            filter.to_owned(),
            Subscription {
                qos,
                confirmed: false,
            },
        );
    }

    /// Forgets `filter`; with `later`, unsubscribes it on the next connection.
    pub(super) fn remove(&mut self, filter: &str, later: bool) {
        self.filters.remove(filter);
        if later {
            self.unsubscribe_later.insert(filter.to_owned());
        }
    }

    /// A CONNACK arrived. Without a session present the broker knows no filter: every filter is
    /// sent again, and unsubscribing what it already forgot is done at once (the events say so).
    pub(super) fn new_connection(&mut self, session_present: bool) -> Vec<SessionEvent> {
        if session_present {
            return Vec::new();
        }
        for sub in self.filters.values_mut() {
            sub.confirmed = false;
        }
        mem::take(&mut self.unsubscribe_later)
            .into_iter()
            .map(|filter| SessionEvent::Unsubscribed { filter })
            .collect()
    }

    /// Filters the broker has not granted in this session.
    pub(super) fn unconfirmed(&self) -> Vec<(String, QoS)> {
        self.filters
            .iter()
            .filter(|(_, s)| !s.confirmed)
            .map(|(f, s)| (f.clone(), s.qos))
            .collect()
    }

    /// Filters to unsubscribe now.
    pub(super) fn take_unsubscribe_later(&mut self) -> Vec<String> {
        mem::take(&mut self.unsubscribe_later).into_iter().collect()
    }

    /// A SUBSCRIBE for `filters` went out as `packet_id`.
    pub(super) fn subscribe_sent(&mut self, packet_id: u16, filters: Vec<String>) {
        self.awaiting.insert(packet_id, Request::Subscribe(filters));
    }

    /// An UNSUBSCRIBE for `filters` went out as `packet_id`.
    pub(super) fn unsubscribe_sent(&mut self, packet_id: u16, filters: Vec<String>) {
        self.awaiting
            .insert(packet_id, Request::Unsubscribe(filters));
    }

    /// A SUBSCRIBE could not be sent: the filters are refused and forgotten.
    pub(super) fn subscribe_failed(
        &mut self,
        filters: Vec<String>,
        reason: &str,
    ) -> Vec<SessionEvent> {
        filters
            .into_iter()
            .map(|filter| {
                self.filters.remove(&filter);
                SessionEvent::SubscriptionRefused {
                    filter,
                    reason: reason.to_owned(),
                }
            })
            .collect()
    }

    /// The SUBACK for `packet_id`: `granted` holds one entry per filter, the QoS or why the broker
    /// refused it. Refused filters are forgotten.
    pub(super) fn suback(
        &mut self,
        packet_id: u16,
        granted: &[Result<QoS, String>],
    ) -> Vec<SessionEvent> {
        let Some(Request::Subscribe(filters)) = self.awaiting.remove(&packet_id) else {
            return Vec::new();
        };
        let mut events = Vec::with_capacity(filters.len());
        for (i, filter) in filters.into_iter().enumerate() {
            match granted.get(i) {
                Some(Ok(granted)) => {
                    if let Some(sub) = self.filters.get_mut(&filter) {
                        sub.confirmed = true;
                    }
                    events.push(SessionEvent::Subscribed {
                        filter,
                        granted: *granted,
                    });
                }
                refused => {
                    self.filters.remove(&filter);
                    let reason = match refused {
                        Some(Err(reason)) => reason.clone(),
                        _ => "the SUBACK has no code for it".to_owned(),
                    };
                    events.push(SessionEvent::SubscriptionRefused { filter, reason });
                }
            }
        }
        events
    }

    /// The UNSUBACK for `packet_id`.
    pub(super) fn unsuback(&mut self, packet_id: u16) -> Vec<SessionEvent> {
        match self.awaiting.remove(&packet_id) {
            Some(Request::Unsubscribe(filters)) => filters
                .into_iter()
                .map(|filter| SessionEvent::Unsubscribed { filter })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The connection is gone: unanswered SUBSCRIBEs stay unconfirmed (and go out again),
    /// unanswered UNSUBSCRIBEs wait for the next connection.
    pub(super) fn connection_lost(&mut self) {
        for (_, request) in mem::take(&mut self.awaiting) {
            if let Request::Unsubscribe(filters) = request {
                for filter in filters {
                    if !self.filters.contains_key(&filter) {
                        self.unsubscribe_later.insert(filter);
                    }
                }
            }
        }
    }
}
