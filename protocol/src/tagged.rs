//! Reading the envelope's tagged objects in one pass: a response with its outcome beside the other
//! fields, a rejection's `kind`, a member's `phase`, a command's target.
//!
//! serde's derived readers for tagged enums (and for a flattened field) first copy each object
//! into an intermediate tree and then read it again. That costs time on every answer and was one
//! of the largest parts of the panel's download. Here each one is read as a flat struct, its tag a
//! plain field beside optional ones, and checked into the enum. The JSON is the same: writing
//! keeps serde's derived form, and the tests below hold both to each other.

use serde::Deserialize;

use crate::envelope::{DeviceState, Outcome, Rejection, Response, Tid};
use crate::time::Timestamp;
use crate::topic::{DeviceId, GroupId};
use crate::tracker::{Phase, Target};

fn need<T>(value: Option<T>, field: &'static str, of: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{field}` for {of}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RejectionKind {
    OutOfOrder,
    SequenceViolation,
    Expired,
    UnknownCommand,
    InvalidArguments,
    Malformed,
    TidConflict,
}

/// A [`Rejection`] as it is read.
#[derive(Deserialize)]
pub(crate) struct FlatRejection {
    kind: RejectionKind,
    last_seq: Option<u64>,
    got_seq: Option<u64>,
    sequence: Option<String>,
    expected: Option<String>,
    got: Option<String>,
    expired_at: Option<Timestamp>,
    command: Option<String>,
    detail: Option<String>,
}

impl TryFrom<FlatRejection> for Rejection {
    type Error = String;

    fn try_from(f: FlatRejection) -> Result<Rejection, String> {
        Ok(match f.kind {
            RejectionKind::OutOfOrder => Rejection::OutOfOrder {
                last_seq: need(f.last_seq, "last_seq", "out_of_order")?,
                got_seq: need(f.got_seq, "got_seq", "out_of_order")?,
            },
            RejectionKind::SequenceViolation => Rejection::SequenceViolation {
                sequence: need(f.sequence, "sequence", "sequence_violation")?,
                expected: f.expected,
                got: need(f.got, "got", "sequence_violation")?,
            },
            RejectionKind::Expired => Rejection::Expired {
                expired_at: need(f.expired_at, "expired_at", "expired")?,
            },
            RejectionKind::UnknownCommand => Rejection::UnknownCommand {
                command: need(f.command, "command", "unknown_command")?,
            },
            RejectionKind::InvalidArguments => Rejection::InvalidArguments {
                detail: need(f.detail, "detail", "invalid_arguments")?,
            },
            RejectionKind::Malformed => Rejection::Malformed {
                detail: need(f.detail, "detail", "malformed")?,
            },
            RejectionKind::TidConflict => Rejection::TidConflict {
                command: need(f.command, "command", "tid_conflict")?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeKind {
    Succeeded,
    Failed,
    Rejected,
    Interrupted,
}

fn outcome(kind: OutcomeKind, reason: Option<Rejection>) -> Result<Outcome, String> {
    Ok(match kind {
        OutcomeKind::Succeeded => Outcome::Succeeded,
        OutcomeKind::Failed => Outcome::Failed,
        OutcomeKind::Rejected => Outcome::Rejected {
            reason: need(reason, "reason", "outcome `rejected`")?,
        },
        OutcomeKind::Interrupted => Outcome::Interrupted,
    })
}

/// An [`Outcome`] as it is read (the gate's memory flattens one into its records).
#[derive(Deserialize)]
pub(crate) struct FlatOutcome {
    outcome: OutcomeKind,
    reason: Option<Rejection>,
}

impl TryFrom<FlatOutcome> for Outcome {
    type Error = String;

    fn try_from(f: FlatOutcome) -> Result<Outcome, String> {
        outcome(f.outcome, f.reason)
    }
}

/// A [`Response`] as it is read.
#[derive(Deserialize)]
pub(crate) struct FlatResponse {
    v: u8,
    tid: Tid,
    device: DeviceId,
    cmd: String,
    outcome: OutcomeKind,
    reason: Option<Rejection>,
    #[serde(default)]
    result: serde_json::Value,
    error: Option<String>,
    state: Option<DeviceState>,
}

impl TryFrom<FlatResponse> for Response {
    type Error = String;

    fn try_from(f: FlatResponse) -> Result<Response, String> {
        Ok(Response {
            v: f.v,
            tid: f.tid,
            device: f.device,
            cmd: f.cmd,
            outcome: outcome(f.outcome, f.reason)?,
            result: f.result,
            error: f.error,
            state: f.state,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum PhaseKind {
    Queued,
    Sent,
    Delivered,
    Succeeded,
    Failed,
    Rejected,
    Interrupted,
    TimedOut,
    Expired,
    Contradicted,
    Superseded,
    Unsupported,
}

/// A [`Phase`] as it is read.
#[derive(Deserialize)]
pub(crate) struct FlatPhase {
    phase: PhaseKind,
    reason: Option<Rejection>,
    device_online: Option<bool>,
    actual_on: Option<bool>,
    by: Option<Tid>,
    detail: Option<String>,
}

impl TryFrom<FlatPhase> for Phase {
    type Error = String;

    fn try_from(f: FlatPhase) -> Result<Phase, String> {
        Ok(match f.phase {
            PhaseKind::Queued => Phase::Queued,
            PhaseKind::Sent => Phase::Sent,
            PhaseKind::Delivered => Phase::Delivered,
            PhaseKind::Succeeded => Phase::Succeeded,
            PhaseKind::Failed => Phase::Failed,
            PhaseKind::Rejected => Phase::Rejected {
                reason: need(f.reason, "reason", "phase `rejected`")?,
            },
            PhaseKind::Interrupted => Phase::Interrupted,
            PhaseKind::TimedOut => Phase::TimedOut {
                device_online: f.device_online,
            },
            PhaseKind::Expired => Phase::Expired,
            PhaseKind::Contradicted => Phase::Contradicted {
                actual_on: need(f.actual_on, "actual_on", "phase `contradicted`")?,
            },
            PhaseKind::Superseded => Phase::Superseded {
                by: need(f.by, "by", "phase `superseded`")?,
            },
            PhaseKind::Unsupported => Phase::Unsupported {
                detail: need(f.detail, "detail", "phase `unsupported`")?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TargetKind {
    Device,
    Group,
}

/// A [`Target`] as it is read.
#[derive(Deserialize)]
pub(crate) struct FlatTarget {
    kind: TargetKind,
    id: String,
}

impl TryFrom<FlatTarget> for Target {
    type Error = String;

    fn try_from(f: FlatTarget) -> Result<Target, String> {
        Ok(match f.kind {
            TargetKind::Device => Target::Device(DeviceId::new(f.id).map_err(|e| e.to_string())?),
            TargetKind::Group => Target::Group(GroupId::new(f.id).map_err(|e| e.to_string())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{decode_response, IncomingResponse};
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn round_trip<T>(value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let json = serde_json::to_string(value).expect("writes");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    fn rejections() -> Vec<Rejection> {
        vec![
            Rejection::OutOfOrder {
                last_seq: 7,
                got_seq: 3,
            },
            Rejection::SequenceViolation {
                sequence: "firmware".into(),
                expected: None,
                got: "firmware_verify".into(),
            },
            Rejection::SequenceViolation {
                sequence: "firmware".into(),
                expected: Some("firmware_stage".into()),
                got: "firmware_activate".into(),
            },
            Rejection::Expired {
                expired_at: Timestamp::from_millis(12),
            },
            Rejection::UnknownCommand {
                command: "dance".into(),
            },
            Rejection::InvalidArguments {
                detail: "on must be a boolean".into(),
            },
            Rejection::Malformed {
                detail: "not JSON".into(),
            },
            Rejection::TidConflict {
                command: "light".into(),
            },
        ]
    }

    #[test]
    fn what_is_written_is_read_back() {
        for r in rejections() {
            assert_eq!(round_trip(&r), r);
            let phase = Phase::Rejected { reason: r.clone() };
            assert_eq!(round_trip(&phase), phase);
            let resp = Response::new(
                Tid::random(&mut fastrand::Rng::with_seed(3)),
                DeviceId::new("d1").expect("valid"),
                "light",
                Outcome::Rejected { reason: r },
            );
            assert_eq!(round_trip(&resp), resp);
        }
        for phase in [
            Phase::Queued,
            Phase::Sent,
            Phase::Delivered,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Interrupted,
            Phase::TimedOut {
                device_online: None,
            },
            Phase::TimedOut {
                device_online: Some(false),
            },
            Phase::Expired,
            Phase::Contradicted { actual_on: true },
            Phase::Superseded {
                by: Tid::random(&mut fastrand::Rng::with_seed(4)),
            },
            Phase::Unsupported {
                detail: "no command topic".into(),
            },
        ] {
            assert_eq!(round_trip(&phase), phase);
        }
        for outcome in [Outcome::Succeeded, Outcome::Failed, Outcome::Interrupted] {
            let mut resp = Response::new(
                Tid::random(&mut fastrand::Rng::with_seed(4)),
                DeviceId::new("d1").expect("valid"),
                "get_state",
                outcome,
            );
            resp.result = serde_json::json!({"lines": ["a"]});
            resp.state = Some(DeviceState::default());
            assert_eq!(round_trip(&resp), resp);
        }
        for target in [
            Target::Device(DeviceId::new("d1").expect("valid")),
            Target::Group(GroupId::new("floor1").expect("valid")),
        ] {
            assert_eq!(round_trip(&target), target);
        }
    }

    #[test]
    fn the_documented_wire_form_is_read() {
        let tid = "7f0c1f8e-3b7a-4c1e-9d2a-5e6f7a8b9c0d";
        let json = format!(
            r#"{{"v":1,"tid":"{tid}","device":"device1","cmd":"light","outcome":"rejected",
                "reason":{{"kind":"out_of_order","last_seq":9,"got_seq":4}},
                "error":"out of order","unknown_field":true}}"#
        );
        match decode_response(json.as_bytes()) {
            Ok(IncomingResponse::Envelope(r)) => {
                assert_eq!(
                    r.outcome,
                    Outcome::Rejected {
                        reason: Rejection::OutOfOrder {
                            last_seq: 9,
                            got_seq: 4
                        }
                    }
                );
                assert_eq!(r.result, serde_json::Value::Null);
                assert_eq!(r.error.as_deref(), Some("out of order"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tag_without_its_fields_is_a_clear_error() {
        let tid = "7f0c1f8e-3b7a-4c1e-9d2a-5e6f7a8b9c0d";
        let no_reason =
            format!(r#"{{"v":1,"tid":"{tid}","device":"d1","cmd":"x","outcome":"rejected"}}"#);
        let err = decode_response(no_reason.as_bytes()).expect_err("no reason");
        assert!(err.to_string().contains("`reason`"), "{err}");
        let bad_kind = format!(
            r#"{{"v":1,"tid":"{tid}","device":"d1","cmd":"x","outcome":"rejected","reason":{{"kind":"bored"}}}}"#
        );
        let err = decode_response(bad_kind.as_bytes()).expect_err("unknown kind");
        assert!(err.to_string().contains("bored"), "{err}");
        let half = format!(
            r#"{{"v":1,"tid":"{tid}","device":"d1","cmd":"x","outcome":"rejected","reason":{{"kind":"out_of_order","got_seq":1}}}}"#
        );
        let err = decode_response(half.as_bytes()).expect_err("half a rejection");
        assert!(err.to_string().contains("last_seq"), "{err}");
        let err = serde_json::from_str::<Target>(r#"{"kind":"device","id":"a/b"}"#)
            .expect_err("a topic separator in an id");
        assert!(err.to_string().contains("a/b"), "{err}");
        let err = serde_json::from_str::<Phase>(r#"{"phase":"lost"}"#).expect_err("no such phase");
        assert!(err.to_string().contains("lost"), "{err}");
    }
}
