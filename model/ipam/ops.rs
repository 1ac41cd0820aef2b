//! The operation log format of the recorded `bitseq` vectors, read and
//! written exactly as the Go recorder did.
//!
//! An op is `{"op": "set_any"|"set_any_in_range"|"set"|"unset", "start",
//! "end", "ordinal", "serial"}` with zero numbers and `serial: false` left
//! out (Go's `omitempty`). A result is `{"ordinal"?, "error"?, "unselected",
//! "sequence"}` in that key order, with `>` escaped as `\u003e` as Go's
//! `encoding/json` does. `netrace ipam ops` and `tests/vectors.rs` use this
//! module; see `tests/data/VECTORS.md` for the recording.

use serde::{Deserialize, Serialize};

use super::bitseq::{Bitseq, BitseqError};

/// One operation of a vector.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Op {
    /// `set_any`, `set_any_in_range`, `set` or `unset`.
    pub op: OpKind,
    /// Range start (`set_any_in_range`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start: u64,
    /// Range end, inclusive (`set_any_in_range`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end: u64,
    /// The ordinal (`set`, `unset`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ordinal: u64,
    /// Serial allocation (2023 only upstream; any version here).
    #[serde(default, skip_serializing_if = "is_false")]
    pub serial: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// The operation names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// `SetAny(serial)`.
    SetAny,
    /// `SetAnyInRange(start, end, serial)`.
    SetAnyInRange,
    /// `Set(ordinal)`.
    Set,
    /// `Unset(ordinal)`.
    Unset,
}

/// The outcome of one op, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpResult {
    /// The ordinal handed out by a successful `set_any*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<u64>,
    /// The error text, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The free counter after the call.
    pub unselected: u64,
    /// The run-length list after the call, in libnetwork's print format.
    pub sequence: String,
}

/// Applies one op to a handle and reports like the recorder.
pub fn apply(handle: &mut Bitseq, op: &Op) -> OpResult {
    let outcome: Result<Option<u64>, BitseqError> = match op.op {
        OpKind::SetAny => handle.set_any(op.serial).map(Some),
        OpKind::SetAnyInRange => handle
            .set_any_in_range(op.start, op.end, op.serial)
            .map(Some),
        OpKind::Set => handle.set(op.ordinal).map(|_| None),
        OpKind::Unset => handle.unset(op.ordinal).map(|_| None),
    };
    let (ordinal, error) = match outcome {
        Ok(ordinal) => (ordinal, None),
        Err(e) => (None, Some(e.to_string())),
    };
    OpResult {
        ordinal,
        error,
        unselected: handle.unselected(),
        sequence: handle.sequence_string(),
    }
}

/// Serializes like Go's `encoding/json`: compact, with `<`, `>` and `&`
/// escaped as `\u003c`, `\u003e`, `\u0026`.
pub fn to_go_json<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).expect("op results always serialize");
    go_escape(&text)
}

/// Go's HTML-safe escaping of an already serialized JSON text.
pub fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// One recorded vector: a fresh handle of `bits` bits, ops, and results.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// `17.05` or `head` (the 2023 code).
    pub version: String,
    /// The handle size.
    pub bits: u64,
    /// The recorder's random seed (informational).
    pub seed: u64,
    /// The operations, applied in order.
    pub ops: Vec<Op>,
    /// `results[i]` is the outcome of `ops[i]`.
    pub results: Vec<OpResult>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::bitseq::Version;

    #[test]
    fn omitted_fields_default_to_zero() {
        let op: Op = serde_json::from_str(r#"{"op":"unset"}"#).unwrap();
        assert_eq!(op.ordinal, 0);
        assert_eq!(to_go_json(&op), r#"{"op":"unset"}"#);
    }

    #[test]
    fn results_print_like_go() {
        let mut h = Bitseq::new(32, Version::V2023);
        let r = apply(
            &mut h,
            &Op {
                op: OpKind::SetAny,
                start: 0,
                end: 0,
                ordinal: 0,
                serial: false,
            },
        );
        assert_eq!(
            to_go_json(&r),
            r#"{"ordinal":0,"unselected":31,"sequence":"(0x80000000, 1)-\u003eend"}"#
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<Op>(r#"{"op":"set","ordnal":3}"#).is_err());
        assert!(serde_json::from_str::<Op>(r#"{"op":"grab"}"#).is_err());
    }
}
