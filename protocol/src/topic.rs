//! Identifiers and the topic tree.
//!
//! ```text
//! cmd/<device>/req            request to one device            (app -> device)
//! cmd/<device>/resp           response from one device         (device -> app)
//! cmd/group/<group>/req       fan-out request to a group       (app -> every member)
//! status/<device>             retained presence and state      (device; Last Will sets "offline")
//! telemetry/<device>          periodic telemetry               (device -> app)
//! log/<device>                log lines published on request   (device -> app)
//! ```
//!
//! `cmd/<device>/req` and `cmd/<device>/resp` are exactly the pattern document's topics, so a device
//! written like its sample works unchanged. Group requests have four levels and so never collide with a
//! device's three-level request topic, even for a device named `group`.
//!
//! Ids are parsed once into [`DeviceId`] / [`GroupId`] / [`IssuerId`]: 1 to 128 bytes of ASCII letters,
//! digits and `-_.:@`. That keeps MQTT wildcards (`+`, `#`), level separators (`/`), `$`-topics,
//! control characters and spaces out of every topic the crate builds.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::IdError;

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

fn validate(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            len: s.len(),
            max: MAX_ID_LEN,
        });
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(IdError::BadChar {
            kind,
            id: s.to_owned(),
            ch: c,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s)?;
                Ok($name(s))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A device's id: its MQTT client id and the `<device>` level of its topics.
    DeviceId,
    "device"
);
id_type!(
    /// A group of devices that share a fan-out request topic.
    GroupId,
    "group"
);
id_type!(
    /// Whoever issues commands (an application instance, a panel tab, a script).
    IssuerId,
    "issuer"
);

/// The request topic of one device: `cmd/<device>/req`.
pub fn request(device: &DeviceId) -> String {
    format!("cmd/{device}/req")
}

/// The response topic of one device: `cmd/<device>/resp`.
pub fn response(device: &DeviceId) -> String {
    format!("cmd/{device}/resp")
}

/// The fan-out request topic of a group: `cmd/group/<group>/req`.
pub fn group_request(group: &GroupId) -> String {
    format!("cmd/group/{group}/req")
}

/// The retained presence topic of one device: `status/<device>`.
pub fn status(device: &DeviceId) -> String {
    format!("status/{device}")
}

/// The telemetry topic of one device: `telemetry/<device>`.
pub fn telemetry(device: &DeviceId) -> String {
    format!("telemetry/{device}")
}

/// The log topic of one device: `log/<device>`.
pub fn log(device: &DeviceId) -> String {
    format!("log/{device}")
}

/// Filter an application subscribes to for every device's responses.
pub const ALL_RESPONSES: &str = "cmd/+/resp";
/// Filter an application subscribes to for every device's presence.
pub const ALL_STATUS: &str = "status/+";
/// Filter an application subscribes to for every device's telemetry.
pub const ALL_TELEMETRY: &str = "telemetry/+";
/// Filter an application subscribes to for every device's logs.
pub const ALL_LOGS: &str = "log/+";

/// What an incoming topic is, once parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topic {
    /// `cmd/<device>/req`
    Request(DeviceId),
    /// `cmd/<device>/resp`
    Response(DeviceId),
    /// `cmd/group/<group>/req`
    GroupRequest(GroupId),
    /// `status/<device>`
    Status(DeviceId),
    /// `telemetry/<device>`
    Telemetry(DeviceId),
    /// `log/<device>`
    Log(DeviceId),
}

impl Topic {
    /// Parses a topic name; `None` for anything outside Switchboard's tree or with an invalid id.
    pub fn parse(topic: &str) -> Option<Topic> {
        let mut levels = topic.split('/');
        let parts: [Option<&str>; 5] = [
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
            levels.next(),
        ];
        match parts {
            [Some("cmd"), Some("group"), Some(g), Some("req"), None] => {
                GroupId::new(g).ok().map(Topic::GroupRequest)
            }
            [Some("cmd"), Some(d), Some("req"), None, None] => {
                DeviceId::new(d).ok().map(Topic::Request)
            }
            [Some("cmd"), Some(d), Some("resp"), None, None] => {
                DeviceId::new(d).ok().map(Topic::Response)
            }
            [Some("status"), Some(d), None, None, None] => DeviceId::new(d).ok().map(Topic::Status),
            [Some("telemetry"), Some(d), None, None, None] => {
                DeviceId::new(d).ok().map(Topic::Telemetry)
            }
            [Some("log"), Some(d), None, None, None] => DeviceId::new(d).ok().map(Topic::Log),
            _ => None,
        }
    }

    /// The topic name this value stands for.
    pub fn name(&self) -> String {
        match self {
            Topic::Request(d) => request(d),
            Topic::Response(d) => response(d),
            Topic::GroupRequest(g) => group_request(g),
            Topic::Status(d) => status(d),
            Topic::Telemetry(d) => telemetry(d),
            Topic::Log(d) => log(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn dev(s: &str) -> DeviceId {
        DeviceId::new(s).expect("valid id")
    }

    #[test]
    fn document_topics() {
        assert_eq!(request(&dev("device1")), "cmd/device1/req");
        assert_eq!(response(&dev("device1")), "cmd/device1/resp");
    }

    #[test]
    fn rejects_wildcards_separators_and_bounds() {
        for bad in ["", "a/b", "a+", "#", "$SYS", "a b", "é", "a\0"] {
            assert!(DeviceId::new(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(DeviceId::new("x".repeat(MAX_ID_LEN)).is_ok());
        let err = DeviceId::new("x".repeat(MAX_ID_LEN + 1)).unwrap_err();
        assert!(err.to_string().contains("129"), "{err}");
        let err = GroupId::new("floor/1").unwrap_err();
        assert!(err.to_string().contains("floor/1"), "{err}");
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<DeviceId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<DeviceId>("\"cmd/#\"").is_err());
    }

    #[test]
    fn parse_round_trips_and_group_never_collides() {
        let topics = [
            Topic::Request(dev("group")),
            Topic::Response(dev("d1")),
            Topic::GroupRequest(GroupId::new("floor1").expect("valid")),
            Topic::Status(dev("d1")),
            Topic::Telemetry(dev("d1")),
            Topic::Log(dev("d1")),
        ];
        for t in topics {
            assert_eq!(Topic::parse(&t.name()), Some(t.clone()), "{}", t.name());
        }
        for junk in [
            "cmd",
            "cmd/a",
            "cmd/a/b",
            "cmd/a/req/x",
            "x/y",
            "cmd/a+/req",
            "",
        ] {
            assert_eq!(Topic::parse(junk), None, "{junk}");
        }
    }
}
