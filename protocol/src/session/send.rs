//! Handing the ledgers to mqtt-protocol-core: publishes as the broker's receive window allows,
//! SUBSCRIBE and UNSUBSCRIBE in batches, and every send failure turned into an event.

use mqtt_protocol_core::mqtt::result_code::MqttError;

use super::config::MQTT_MAX_PACKET;
use super::outbox::Outgoing;
use super::subscriptions::Subscriptions;
use super::{wire, Phase, Publish, QoS, Session, SessionError, SessionEvent};
use crate::time::Timestamp;

/// Filters per SUBSCRIBE when many are (re)sent at once, to stay far below any packet size limit.
const SUBSCRIBE_BATCH: usize = 32;

impl Session {
    /// Hands queued publishes to the broker, oldest first, as far as its receive window allows.
    pub(super) fn flush(&mut self, now: Timestamp) {
        while self.phase == Phase::Connected {
            let (Some(conn), Some(front)) = (self.conn.as_mut(), self.outbox.front()) else {
                break;
            };
            let packet_id = match front.publish.qos {
                QoS::AtMostOnce => None,
                QoS::AtLeastOnce => {
                    if conn.get_receive_maximum_vacancy_for_send() == Some(0) {
                        break;
                    }
                    match front.resend {
                        Some(packet_id) => Some(packet_id),
                        None => match conn.acquire_packet_id() {
                            Ok(packet_id) => Some(packet_id),
                            Err(_) => break, // all 65,535 ids in flight
                        },
                    }
                }
            };
            let Some(entry) = self.outbox.pop_front() else {
                break;
            };
            self.send_publish(entry, packet_id, now);
        }
    }

    pub(super) fn send_publish(&mut self, entry: Outgoing, packet_id: Option<u16>, now: Timestamp) {
        let expiry_secs = match entry.publish.message_expiry {
            None => None,
            Some(total) => {
                let left = total.saturating_sub(now.saturating_since(entry.accepted_at));
                if left.is_zero() {
                    self.release(packet_id);
                    let reason = if entry.sent_before {
                        "expired before the broker acknowledged it (it may have arrived)"
                    } else {
                        "expired in the queue before it could be sent"
                    };
                    self.events.push_back(SessionEvent::PublishFailed {
                        id: entry.id,
                        reason: reason.to_owned(),
                    });
                    return;
                }
                let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                Some(u32::try_from(secs).unwrap_or(u32::MAX))
            }
        };
        let dup = entry.resend.is_some();
        let sent = wire::publish_packet(
            self.attempt_version,
            &entry.publish,
            packet_id,
            dup,
            expiry_secs,
        )
        .map_err(|e| format!("cannot encode the publish: {e}"))
        .and_then(|packet| {
            let conn = self
                .conn
                .as_mut()
                .ok_or_else(|| "no connection".to_owned())?;
            Ok(conn.send(packet))
        });
        let failure = match sent {
            Ok(events) => self.apply(events, now).error.map(|e| match e {
                MqttError::PacketTooLarge => {
                    "the publish is larger than the broker's maximum packet size".to_owned()
                }
                e => format!("mqtt-protocol-core refused to send it: {e}"),
            }),
            Err(e) => Some(e),
        };
        if let Some(reason) = failure {
            self.release(packet_id);
            self.events.push_back(SessionEvent::PublishFailed {
                id: entry.id,
                reason,
            });
            return;
        }
        self.outbox.sent(entry, packet_id);
    }

    pub(super) fn release(&mut self, packet_id: Option<u16>) {
        if let (Some(conn), Some(packet_id)) = (self.conn.as_mut(), packet_id) {
            let _released = conn.release_packet_id(packet_id);
        }
    }

    pub(super) fn send_subscribe(&mut self, filters: Vec<(String, QoS)>, now: Timestamp) {
        for batch in filters.chunks(SUBSCRIBE_BATCH) {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            // Without a free packet id the filters stay unconfirmed and go out on the next
            // connection.
            let Ok(packet_id) = conn.acquire_packet_id() else {
                return;
            };
            let names: Vec<String> = batch.iter().map(|(f, _)| f.clone()).collect();
            let error = match wire::subscribe_packet(self.attempt_version, packet_id, batch) {
                Ok(packet) => {
                    let events = conn.send(packet);
                    self.apply(events, now).error
                }
                Err(e) => Some(e),
            };
            if let Some(error) = error {
                self.release(Some(packet_id));
                let reason = format!("the SUBSCRIBE could not be sent: {error}");
                let events = self.subscriptions.subscribe_failed(names, &reason);
                self.events.extend(events);
                continue;
            }
            self.subscriptions.subscribe_sent(packet_id, names);
        }
    }

    pub(super) fn send_unsubscribe(&mut self, filters: Vec<String>, now: Timestamp) {
        for batch in filters.chunks(SUBSCRIBE_BATCH) {
            let retry_later = |subscriptions: &mut Subscriptions| {
                for filter in batch {
                    subscriptions.remove(filter, true);
                }
            };
            let Some(conn) = self.conn.as_mut() else {
                retry_later(&mut self.subscriptions);
                continue;
            };
            let Ok(packet_id) = conn.acquire_packet_id() else {
                retry_later(&mut self.subscriptions);
                continue;
            };
            let error = match wire::unsubscribe_packet(self.attempt_version, packet_id, batch) {
                Ok(packet) => {
                    let events = conn.send(packet);
                    self.apply(events, now).error
                }
                Err(e) => Some(e),
            };
            if error.is_some() {
                self.release(Some(packet_id));
                retry_later(&mut self.subscriptions);
                continue;
            }
            self.subscriptions
                .unsubscribe_sent(packet_id, batch.to_vec());
        }
    }
}

/// Refuses, before it is queued, a publish MQTT cannot carry.
pub(super) fn check_publish(publish: &Publish) -> Result<(), SessionError> {
    wire::validate_topic(&publish.topic).map_err(|reason| SessionError::InvalidTopic {
        topic: publish.topic.clone(),
        reason,
    })?;
    let invalid = |reason| SessionError::InvalidPublish {
        topic: publish.topic.clone(),
        reason,
    };
    if let Some(response_topic) = &publish.response_topic {
        wire::validate_topic(response_topic)
            .map_err(|_| invalid("the response topic is not a valid topic name"))?;
    }
    if publish
        .correlation_data
        .as_ref()
        .is_some_and(|d| d.len() > usize::from(u16::MAX))
    {
        return Err(invalid("correlation data must be at most 65,535 bytes"));
    }
    let overhead = publish.topic.len()
        + publish.response_topic.as_ref().map_or(0, String::len)
        + publish.correlation_data.as_ref().map_or(0, Vec::len)
        + 64;
    if publish.payload.len().saturating_add(overhead) > MQTT_MAX_PACKET as usize {
        return Err(invalid("the payload exceeds MQTT's 256 MiB packet limit"));
    }
    Ok(())
}
