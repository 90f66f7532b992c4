//! Translation between the session's own types and mqtt-protocol-core's packets, for both protocol
//! versions. Every version-specific detail of the session lives here, so the state machine in
//! `mod.rs` never matches on `v5_0::` or `v3_1_1::`.

use mqtt_protocol_core::mqtt::packet::{
    v3_1_1, v5_0, CorrelationData, MessageExpiryInterval, Packet, Properties, Property, Qos,
    ResponseTopic, SessionExpiryInterval, SubEntry, SubOpts,
};
use mqtt_protocol_core::mqtt::result_code::{
    ConnectReasonCode, ConnectReturnCode, DisconnectReasonCode, MqttError, PubackReasonCode,
    SubackReasonCode, SubackReturnCode,
};
use mqtt_protocol_core::mqtt::Version;

use super::{Message, ProtocolVersion, Publish, QoS, SessionConfig};

/// The longest topic or filter MQTT can encode, in bytes.
const MAX_TOPIC_LEN: usize = u16::MAX as usize;

impl From<ProtocolVersion> for Version {
    fn from(v: ProtocolVersion) -> Version {
        match v {
            ProtocolVersion::V5 => Version::V5_0,
            ProtocolVersion::V3_1_1 => Version::V3_1_1,
        }
    }
}

fn qos(q: QoS) -> Qos {
    match q {
        QoS::AtMostOnce => Qos::AtMostOnce,
        QoS::AtLeastOnce => Qos::AtLeastOnce,
    }
}

fn from_qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce | Qos::ExactlyOnce => QoS::AtLeastOnce,
    }
}

/// Checks a topic name to publish to: 1 to 65,535 bytes, no wildcards, no NUL.
pub(super) fn validate_topic(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        return Err("a topic name must not be empty");
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err("a topic name must be at most 65,535 bytes");
    }
    if topic.contains(['+', '#']) {
        return Err("a topic name must not contain the wildcards + or #");
    }
    if topic.contains('\0') {
        return Err("a topic name must not contain NUL");
    }
    Ok(())
}

/// Checks a topic filter to subscribe to: `+` fills a whole level, `#` is the whole last level.
pub(super) fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("a topic filter must not be empty");
    }
    if filter.len() > MAX_TOPIC_LEN {
        return Err("a topic filter must be at most 65,535 bytes");
    }
    if filter.contains('\0') {
        return Err("a topic filter must not contain NUL");
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('+') && level != "+" {
            return Err("+ must fill a whole topic level");
        }
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return Err("# must be the whole last topic level");
        }
    }
    Ok(())
}

/// The CONNECT this config sends on `version`.
pub(super) fn connect_packet(
    config: &SessionConfig,
    version: ProtocolVersion,
) -> Result<Packet, MqttError> {
    let keep_alive = config.keep_alive_secs();
    // The flag setters of both builders default the clean-start bit to on, so `clean_start`
    // goes last to have the final word.
    match version {
        ProtocolVersion::V5 => {
            let mut b = v5_0::Connect::builder().client_id(config.client_id.as_str())?;
            if let Some(will) = &config.will {
                b = b.will_message(
                    will.topic.as_str(),
                    &will.payload,
                    qos(will.qos),
                    will.retain,
                )?;
            }
            if let Some(user) = &config.username {
                b = b.user_name(user.as_str())?;
            }
            if let Some(password) = &config.password {
                b = b.password(password)?;
            }
            let expiry = u32::try_from(config.session_expiry.as_secs()).unwrap_or(u32::MAX);
            if expiry > 0 {
                b = b.props(vec![SessionExpiryInterval::new(expiry)?.into()]);
            }
            Ok(b.keep_alive(keep_alive)
                .clean_start(config.clean_start)
                .build()?
                .into())
        }
        ProtocolVersion::V3_1_1 => {
            let mut b = v3_1_1::Connect::builder().client_id(config.client_id.as_str())?;
            if let Some(will) = &config.will {
                b = b.will_message(
                    will.topic.as_str(),
                    &will.payload,
                    qos(will.qos),
                    will.retain,
                )?;
            }
            if let Some(user) = &config.username {
                b = b.user_name(user.as_str())?;
            }
            if let Some(password) = &config.password {
                b = b.password(password)?;
            }
            Ok(b.keep_alive(keep_alive)
                .clean_session(config.clean_start)
                .build()?
                .into())
        }
    }
}

/// A PUBLISH. `expiry_secs` is the Message Expiry Interval still left (MQTT 5 only).
pub(super) fn publish_packet(
    version: ProtocolVersion,
    publish: &Publish,
    packet_id: Option<u16>,
    dup: bool,
    expiry_secs: Option<u32>,
) -> Result<Packet, MqttError> {
    match version {
        ProtocolVersion::V5 => {
            let mut props = Properties::new();
            if let Some(topic) = &publish.response_topic {
                props.push(ResponseTopic::new(topic.as_str())?.into());
            }
            if let Some(data) = &publish.correlation_data {
                props.push(CorrelationData::new(data)?.into());
            }
            if let Some(secs) = expiry_secs {
                props.push(MessageExpiryInterval::new(secs)?.into());
            }
            let mut b = v5_0::Publish::builder()
                .topic_name(publish.topic.as_str())?
                .qos(qos(publish.qos))
                .retain(publish.retain)
                .dup(dup)
                .payload(publish.payload.clone());
            if !props.is_empty() {
                b = b.props(props);
            }
            if let Some(id) = packet_id {
                b = b.packet_id(id);
            }
            Ok(b.build()?.into())
        }
        ProtocolVersion::V3_1_1 => {
            let mut b = v3_1_1::Publish::builder()
                .topic_name(publish.topic.as_str())?
                .qos(qos(publish.qos))
                .retain(publish.retain)
                .dup(dup)
                .payload(publish.payload.clone());
            if let Some(id) = packet_id {
                b = b.packet_id(id);
            }
            Ok(b.build()?.into())
        }
    }
}

/// A SUBSCRIBE for every `(filter, qos)` in `filters`.
pub(super) fn subscribe_packet(
    version: ProtocolVersion,
    packet_id: u16,
    filters: &[(String, QoS)],
) -> Result<Packet, MqttError> {
    let entries = filters
        .iter()
        .map(|(filter, q)| SubEntry::new(filter.as_str(), SubOpts::new().set_qos(qos(*q))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match version {
        ProtocolVersion::V5 => v5_0::Subscribe::builder()
            .packet_id(packet_id)
            .entries(entries)
            .build()?
            .into(),
        ProtocolVersion::V3_1_1 => v3_1_1::Subscribe::builder()
            .packet_id(packet_id)
            .entries(entries)
            .build()?
            .into(),
    })
}

/// An UNSUBSCRIBE for every filter in `filters`.
pub(super) fn unsubscribe_packet(
    version: ProtocolVersion,
    packet_id: u16,
    filters: &[String],
) -> Result<Packet, MqttError> {
    let entries = filters.iter().map(String::as_str);
    Ok(match version {
        ProtocolVersion::V5 => v5_0::Unsubscribe::builder()
            .packet_id(packet_id)
            .entries(entries)?
            .build()?
            .into(),
        ProtocolVersion::V3_1_1 => v3_1_1::Unsubscribe::builder()
            .packet_id(packet_id)
            .entries(entries)?
            .build()?
            .into(),
    })
}

/// A DISCONNECT that ends the session normally (on MQTT 5 the broker then drops the Last Will).
pub(super) fn disconnect_packet(version: ProtocolVersion) -> Result<Packet, MqttError> {
    Ok(match version {
        ProtocolVersion::V5 => v5_0::Disconnect::builder()
            .reason_code(DisconnectReasonCode::NormalDisconnection)
            .build()?
            .into(),
        ProtocolVersion::V3_1_1 => v3_1_1::Disconnect::new().into(),
    })
}

/// What a CONNACK said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ConnackOutcome {
    pub(super) accepted: bool,
    pub(super) session_present: bool,
    /// Human-readable reason, for refusals.
    pub(super) reason: String,
    /// The broker does not speak the protocol version of the CONNECT.
    pub(super) unsupported_version: bool,
    /// Retrying with the same CONNECT cannot help (credentials, client id, ban).
    pub(super) permanent: bool,
}

impl ConnackOutcome {
    fn v5(rc: ConnectReasonCode, session_present: bool) -> Self {
        use ConnectReasonCode as R;
        let what = match rc {
            R::Success => "accepted",
            R::UnsupportedProtocolVersion => "the broker does not speak MQTT 5",
            R::ClientIdentifierNotValid => "the client id is not valid",
            R::BadUserNameOrPassword => "bad user name or password",
            R::NotAuthorized => "not authorized",
            R::ServerUnavailable => "the broker is unavailable",
            R::ServerBusy => "the broker is busy",
            R::Banned => "this client is banned",
            R::BadAuthenticationMethod => "bad authentication method",
            R::QuotaExceeded => "quota exceeded",
            R::ConnectionRateExceeded => "connection rate exceeded",
            R::UseAnotherServer | R::ServerMoved => "the broker redirects to another server",
            _ => "refused",
        };
        ConnackOutcome {
            accepted: rc == R::Success,
            session_present,
            reason: format!("{what} (MQTT 5 CONNACK reason {rc}, 0x{:02x})", rc as u8),
            unsupported_version: rc == R::UnsupportedProtocolVersion,
            permanent: matches!(
                rc,
                R::ClientIdentifierNotValid
                    | R::BadUserNameOrPassword
                    | R::NotAuthorized
                    | R::Banned
                    | R::BadAuthenticationMethod
            ),
        }
    }

    fn v3(rc: ConnectReturnCode, session_present: bool) -> Self {
        use ConnectReturnCode as R;
        let what = match rc {
            R::Accepted => "accepted",
            R::UnacceptableProtocolVersion => "the broker does not speak this MQTT version",
            R::IdentifierRejected => "the client id was rejected",
            R::ServerUnavailable => "the broker is unavailable",
            R::BadUserNameOrPassword => "bad user name or password",
            R::NotAuthorized => "not authorized",
        };
        ConnackOutcome {
            accepted: rc == R::Accepted,
            session_present,
            reason: format!("{what} (MQTT 3.1.1 CONNACK return code {rc}, {})", rc as u8),
            unsupported_version: rc == R::UnacceptableProtocolVersion,
            permanent: matches!(
                rc,
                R::IdentifierRejected | R::BadUserNameOrPassword | R::NotAuthorized
            ),
        }
    }

    /// A 3.1.1-only broker answers an MQTT 5 CONNECT with a 3.1.1 CONNACK, return code 1, which an
    /// MQTT 5 parser rejects as malformed. The session recognises those 4 bytes instead.
    pub(super) fn from_v311_refusal_of_v5(head: &[u8]) -> Option<Self> {
        match head {
            [0x20, 0x02, _, 0x01] => Some(ConnackOutcome::v3(
                ConnectReturnCode::UnacceptableProtocolVersion,
                false,
            )),
            _ => None,
        }
    }
}

/// A received packet, as far as the session cares.
#[derive(Debug)]
pub(super) enum Received {
    Connack(ConnackOutcome),
    Message(Message),
    Puback {
        packet_id: u16,
        /// The MQTT 5 reason, when the broker refused the message.
        failure: Option<PubackFailure>,
    },
    Suback {
        packet_id: u16,
        /// Per filter, in order: the granted QoS, or why the broker refused it.
        granted: Vec<Result<QoS, String>>,
    },
    Unsuback {
        packet_id: u16,
    },
    /// The broker ends the connection (MQTT 5 DISCONNECT).
    Disconnect {
        reason: String,
        /// Another client connected with this client id (0x8E, session taken over).
        taken_over: bool,
    },
    /// A packet this client never asked for and cannot handle.
    Unexpected(&'static str),
    /// Handled inside mqtt-protocol-core (PINGRESP, QoS 2 flow, ...).
    Other,
}

/// A broker's refusal of a publish (an MQTT 5 PUBACK reason code of 0x80 or more).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PubackFailure {
    /// For a person, with the code.
    pub reason: String,
    /// Sending the same publish again cannot succeed: the client may not publish it there
    /// (not authorised), or the broker cannot take it in that form (topic name or payload format
    /// invalid). Other codes (quota exceeded, an unspecified error) may pass on another try.
    pub permanent: bool,
}

fn v5_puback_failure(rc: PubackReasonCode) -> Option<PubackFailure> {
    use PubackReasonCode as R;
    rc.is_failure().then(|| PubackFailure {
        reason: format!("{} (0x{:02x})", reason_text(&rc.to_string()), rc as u8),
        permanent: matches!(
            rc,
            R::NotAuthorized | R::TopicNameInvalid | R::PayloadFormatInvalid
        ),
    })
}

fn v5_suback(rc: SubackReasonCode) -> Result<QoS, String> {
    match rc {
        SubackReasonCode::GrantedQos0 => Ok(QoS::AtMostOnce),
        // A broker never grants more than asked; QoS 2 cannot be asked for here.
        SubackReasonCode::GrantedQos1 | SubackReasonCode::GrantedQos2 => Ok(QoS::AtLeastOnce),
        refused => Err(format!(
            "{} (0x{:02x})",
            reason_text(&refused.to_string()),
            refused as u8
        )),
    }
}

fn v3_suback(rc: SubackReturnCode) -> Result<QoS, String> {
    match rc {
        SubackReturnCode::SuccessMaximumQos0 => Ok(QoS::AtMostOnce),
        SubackReturnCode::SuccessMaximumQos1 | SubackReturnCode::SuccessMaximumQos2 => {
            Ok(QoS::AtLeastOnce)
        }
        // MQTT 3.1.1 says no more than that; brokers send it for a filter the client may not read.
        SubackReturnCode::Failure => Err("failure (0x80; MQTT 3.1.1 gives no reason)".to_owned()),
    }
}

/// `NotAuthorized` -> `not authorized`: a reason code's name as words.
fn reason_text(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn v5_message(p: &v5_0::Publish) -> Message {
    let mut response_topic = None;
    let mut correlation_data = None;
    for prop in p.props() {
        match prop {
            Property::ResponseTopic(t) => response_topic = Some(t.val().to_owned()),
            Property::CorrelationData(d) => correlation_data = Some(d.val().to_vec()),
            _ => {}
        }
    }
    Message {
        topic: p.topic_name().to_owned(),
        payload: p.payload().as_slice().to_vec(),
        qos: from_qos(p.qos()),
        retain: p.retain(),
        dup: p.dup(),
        response_topic,
        correlation_data,
    }
}

fn v3_message(p: &v3_1_1::Publish) -> Message {
    Message {
        topic: p.topic_name().to_owned(),
        payload: p.payload().as_slice().to_vec(),
        qos: from_qos(p.qos()),
        retain: p.retain(),
        dup: p.dup(),
        response_topic: None,
        correlation_data: None,
    }
}

/// Sorts a packet mqtt-protocol-core has parsed and accepted.
pub(super) fn classify(packet: Packet) -> Received {
    match packet {
        Packet::V5_0Connack(c) => {
            Received::Connack(ConnackOutcome::v5(c.reason_code(), c.session_present()))
        }
        Packet::V3_1_1Connack(c) => {
            Received::Connack(ConnackOutcome::v3(c.return_code(), c.session_present()))
        }
        Packet::V5_0Publish(p) => Received::Message(v5_message(&p)),
        Packet::V3_1_1Publish(p) => Received::Message(v3_message(&p)),
        Packet::V5_0Puback(p) => Received::Puback {
            packet_id: p.packet_id(),
            failure: p.reason_code().and_then(v5_puback_failure),
        },
        Packet::V3_1_1Puback(p) => Received::Puback {
            packet_id: p.packet_id(),
            failure: None,
        },
        Packet::V5_0Suback(s) => Received::Suback {
            packet_id: s.packet_id(),
            granted: s.reason_codes().into_iter().map(v5_suback).collect(),
        },
        Packet::V3_1_1Suback(s) => Received::Suback {
            packet_id: s.packet_id(),
            granted: s.return_codes().into_iter().map(v3_suback).collect(),
        },
        Packet::V5_0Unsuback(u) => Received::Unsuback {
            packet_id: u.packet_id(),
        },
        Packet::V3_1_1Unsuback(u) => Received::Unsuback {
            packet_id: u.packet_id(),
        },
        Packet::V5_0Disconnect(d) => Received::Disconnect {
            reason: match d.reason_code() {
                Some(rc) => format!("the broker disconnected: {rc} (0x{:02x})", rc as u8),
                None => "the broker disconnected".to_owned(),
            },
            taken_over: d.reason_code() == Some(DisconnectReasonCode::SessionTakenOver),
        },
        Packet::V5_0Auth(_) => Received::Unexpected(
            "the broker started an AUTH exchange, which this client does not use",
        ),
        _ => Received::Other,
    }
}
