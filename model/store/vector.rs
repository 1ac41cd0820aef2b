//! Semantics vectors: sequences of etcd requests with the answers a real
//! etcd gave, in one JSON format that both the model ([`run_model`]) and
//! the real server ([`super::oracle::Client::apply`]) speak.
//!
//! A [`Sequence`] runs in a key space of its own on a server other
//! sequences may have used before: its `base_revision` is the server's
//! revision when it started, and its `compact_revision` the server's last
//! compaction then (0 for none). Keys are written without the namespace the
//! real run adds, lease IDs are small numbers the real run offsets, so the
//! model replays a sequence as [`Etcd::resume`]`(base, compact)` and must
//! give every [`Reply`] field for field.
//!
//! What a reply holds and what it leaves out:
//! - every answer's `header.revision`, all key fields (`create_revision`,
//!   `mod_revision`, `version`, `value`, `lease`), `count`, `more`,
//!   `deleted`, `prev_kv(s)`, `succeeded` and the answers of a `Txn`'s ops,
//!   granted TTLs, a lease's keys, watch events (type, key, revision, the kv
//!   and the prev kv) and a cancelled watch's `compact_revision`, and the
//!   error message;
//! - not the `cluster_id`, `member_id` and `raft_term` of headers (they
//!   name the server, not the semantics), nor the seconds a lease has left
//!   (wall clock): `LeaseTimeToLive` gives `granted_ttl` and `keys` only.

use serde::{Deserialize, Serialize};

use super::etcd::{
    Compare, CompareResult, CompareTarget, DeleteRequest, Etcd, EtcdError, Event, KeyValue,
    PutRequest, RangeRequest, RequestOp, ResponseOp, TxnRequest,
};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// One request of a sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// `Put`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The lease (a sequence's own number), 0 for none.
        #[serde(default, skip_serializing_if = "is_zero")]
        lease: i64,
        /// Ask for the previous key.
        #[serde(default, skip_serializing_if = "is_false")]
        prev_kv: bool,
    },
    /// `Range`.
    Range {
        /// The key or prefix.
        key: String,
        /// Every key with this prefix.
        #[serde(default, skip_serializing_if = "is_false")]
        prefix: bool,
        /// Read at this revision (0: now).
        #[serde(default, skip_serializing_if = "is_zero")]
        revision: i64,
        /// At most this many keys (0: all).
        #[serde(default, skip_serializing_if = "is_zero")]
        limit: i64,
        /// Only the count.
        #[serde(default, skip_serializing_if = "is_false")]
        count_only: bool,
    },
    /// `DeleteRange`.
    Delete {
        /// The key or prefix.
        key: String,
        /// Every key with this prefix.
        #[serde(default, skip_serializing_if = "is_false")]
        prefix: bool,
        /// Ask for the deleted keys.
        #[serde(default, skip_serializing_if = "is_false")]
        prev_kv: bool,
    },
    /// `Txn`; its branches hold `put`, `range` and `delete` only.
    Txn {
        /// The compares.
        #[serde(default)]
        compare: Vec<Cmp>,
        /// Run when all hold.
        #[serde(default)]
        success: Vec<Request>,
        /// Run otherwise.
        #[serde(default)]
        failure: Vec<Request>,
    },
    /// `Compact`.
    Compact {
        /// The revision.
        revision: i64,
    },
    /// `LeaseGrant` with a client-chosen ID.
    LeaseGrant {
        /// The lease.
        id: i64,
        /// The TTL asked for, seconds.
        ttl: i64,
    },
    /// `LeaseRevoke`.
    LeaseRevoke {
        /// The lease.
        id: i64,
    },
    /// `LeaseKeepAlive`, one renewal.
    LeaseKeepAlive {
        /// The lease.
        id: i64,
    },
    /// `LeaseTimeToLive` with its keys.
    LeaseTimeToLive {
        /// The lease.
        id: i64,
    },
    /// `Watch` from a revision: the events delivered at once.
    Watch {
        /// The key or prefix.
        key: String,
        /// Every key with this prefix.
        #[serde(default, skip_serializing_if = "is_false")]
        prefix: bool,
        /// The first revision to deliver.
        start_revision: i64,
        /// Ask for each event's previous key.
        #[serde(default, skip_serializing_if = "is_false")]
        prev_kv: bool,
    },
}

/// One compare of a `Txn`: `target` is `version`, `create`, `mod`, `lease`
/// (with `number`) or `value` (with `value`); `result` is `=`, `!=`, `<` or
/// `>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cmp {
    /// The key.
    pub key: String,
    /// The field compared.
    pub target: String,
    /// The relation.
    pub result: String,
    /// The operand of a numeric target.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub number: i64,
    /// The operand of `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A key as a reply shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// `create_revision`.
    pub create_revision: i64,
    /// `mod_revision`.
    pub mod_revision: i64,
    /// `version`.
    pub version: i64,
    /// The value.
    pub value: String,
    /// The lease, 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease: i64,
}

/// A watch event as a reply shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ev {
    /// `put` or `delete`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The key.
    pub key: String,
    /// The revision of the change.
    pub mod_revision: i64,
    /// The key after a put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<Kv>,
    /// The key before, when asked and it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<Kv>,
}

/// The answer to one [`Request`]; the fields its kind has, the rest `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The error message, when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `header.revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// A range's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kvs: Option<Vec<Kv>>,
    /// A range's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// A range cut by its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// A put's previous key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<Kv>,
    /// How many keys a delete removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<i64>,
    /// A delete's removed keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kvs: Option<Vec<Kv>>,
    /// A transaction's compares held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
    /// A transaction's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<Vec<Reply>>,
    /// A grant's or keep-alive's TTL (0: a keep-alive of an unknown lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// `LeaseTimeToLive`'s granted TTL (-1: unknown lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_ttl: Option<i64>,
    /// `LeaseTimeToLive`'s keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// A watch's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Ev>>,
    /// A cancelled watch's compaction revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_revision: Option<i64>,
}

impl Reply {
    /// A failed request's reply.
    pub fn error(message: &str) -> Reply {
        Reply {
            error: Some(message.to_string()),
            ..Reply::default()
        }
    }
}

/// A recorded sequence (one line of a `.jsonl` file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    /// What it exercises.
    pub name: String,
    /// The etcd version that answered.
    pub etcd: String,
    /// The server's revision when the sequence started.
    pub base_revision: i64,
    /// The server's last compaction then, 0 for none.
    pub compact_revision: i64,
    /// The requests, in order.
    pub ops: Vec<Request>,
    /// The answers, `results[i]` to `ops[i]`.
    pub results: Vec<Reply>,
}

fn kv(k: &KeyValue<String>) -> Kv {
    Kv {
        key: k.key.clone(),
        create_revision: k.create_revision,
        mod_revision: k.mod_revision,
        version: k.version,
        value: k.value.clone(),
        lease: k.lease,
    }
}

fn ev(e: &Event<String>, prev_kv: bool) -> Ev {
    Ev {
        kind: if e.kv.is_some() { "put" } else { "delete" }.to_string(),
        key: e.key.clone(),
        mod_revision: e.revision,
        kv: e.kv.as_ref().map(kv),
        prev_kv: if prev_kv {
            e.prev_kv.as_ref().map(kv)
        } else {
            None
        },
    }
}

/// Why a request cannot be put to the model: the format allows it, the
/// model does not (a `Txn` inside a `Txn`, an unknown compare).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

fn compare(c: &Cmp) -> Result<Compare<String>, Unsupported> {
    let target = match (c.target.as_str(), &c.value) {
        ("version", None) => CompareTarget::Version(c.number),
        ("create", None) => CompareTarget::Create(c.number),
        ("mod", None) => CompareTarget::Mod(c.number),
        ("lease", None) => CompareTarget::Lease(c.number),
        ("value", Some(v)) => CompareTarget::Value(v.clone()),
        (t, _) => return Err(Unsupported(format!("compare target {t:?} with {c:?}"))),
    };
    let result = match c.result.as_str() {
        "=" => CompareResult::Equal,
        "!=" => CompareResult::NotEqual,
        "<" => CompareResult::Less,
        ">" => CompareResult::Greater,
        r => return Err(Unsupported(format!("compare result {r:?}"))),
    };
    Ok(Compare {
        key: c.key.clone(),
        target,
        result,
    })
}

fn request_op(r: &Request) -> Result<RequestOp<String>, Unsupported> {
    Ok(match r {
        Request::Put {
            key,
            value,
            lease,
            prev_kv,
        } => RequestOp::Put(PutRequest {
            key: key.clone(),
            value: value.clone(),
            lease: *lease,
            prev_kv: *prev_kv,
        }),
        Request::Range {
            key,
            prefix,
            revision,
            limit,
            count_only,
        } => RequestOp::Range(RangeRequest {
            key: key.clone(),
            prefix: *prefix,
            revision: *revision,
            limit: *limit,
            count_only: *count_only,
        }),
        Request::Delete {
            key,
            prefix,
            prev_kv,
        } => RequestOp::Delete(DeleteRequest {
            key: key.clone(),
            prefix: *prefix,
            prev_kv: *prev_kv,
        }),
        other => return Err(Unsupported(format!("{other:?} inside a txn"))),
    })
}

fn response_op(r: &ResponseOp<String>) -> Reply {
    match r {
        ResponseOp::Range(x) => Reply {
            revision: Some(x.revision),
            kvs: Some(x.kvs.iter().map(kv).collect()),
            count: Some(x.count),
            more: Some(x.more),
            ..Reply::default()
        },
        ResponseOp::Put(x) => Reply {
            revision: Some(x.revision),
            prev_kv: x.prev_kv.as_ref().map(kv),
            ..Reply::default()
        },
        ResponseOp::Delete(x) => Reply {
            revision: Some(x.revision),
            deleted: Some(x.deleted),
            prev_kvs: Some(x.prev_kvs.iter().map(kv).collect()),
            ..Reply::default()
        },
    }
}

fn or_error(r: Result<Reply, EtcdError>) -> Reply {
    r.unwrap_or_else(|e| Reply::error(e.message()))
}

/// Applies one request to the model.
pub fn apply(store: &mut Etcd<String>, req: &Request) -> Result<Reply, Unsupported> {
    Ok(match req {
        Request::Put { .. } | Request::Range { .. } | Request::Delete { .. } => {
            let op = request_op(req)?;
            or_error(match &op {
                RequestOp::Put(p) => store.put(p).map(|x| response_op(&ResponseOp::Put(x))),
                RequestOp::Range(r) => store.range(r).map(|x| response_op(&ResponseOp::Range(x))),
                RequestOp::Delete(d) => {
                    store.delete(d).map(|x| response_op(&ResponseOp::Delete(x)))
                }
            })
        }
        Request::Txn {
            compare: cmps,
            success,
            failure,
        } => {
            let txn = TxnRequest {
                compare: cmps.iter().map(compare).collect::<Result<_, _>>()?,
                success: success.iter().map(request_op).collect::<Result<_, _>>()?,
                failure: failure.iter().map(request_op).collect::<Result<_, _>>()?,
            };
            or_error(store.txn(&txn).map(|t| Reply {
                revision: Some(t.revision),
                succeeded: Some(t.succeeded),
                responses: Some(t.responses.iter().map(response_op).collect()),
                ..Reply::default()
            }))
        }
        Request::Compact { revision } => or_error(store.compact(*revision).map(|rev| Reply {
            revision: Some(rev),
            ..Reply::default()
        })),
        Request::LeaseGrant { id, ttl } => {
            or_error(store.lease_grant(*id, *ttl).map(|ttl| Reply {
                revision: Some(store.revision()),
                ttl: Some(ttl),
                ..Reply::default()
            }))
        }
        Request::LeaseRevoke { id } => or_error(store.lease_revoke(*id).map(|rev| Reply {
            revision: Some(rev),
            ..Reply::default()
        })),
        Request::LeaseKeepAlive { id } => Reply {
            revision: Some(store.revision()),
            ttl: Some(store.lease_keep_alive(*id)),
            ..Reply::default()
        },
        Request::LeaseTimeToLive { id } => {
            let (granted, keys) = match store.lease_time_to_live(*id) {
                Some((granted, _left, keys)) => (granted, keys),
                None => (-1, Vec::new()),
            };
            Reply {
                revision: Some(store.revision()),
                granted_ttl: Some(granted),
                keys: Some(keys),
                ..Reply::default()
            }
        }
        Request::Watch {
            key,
            prefix,
            start_revision,
            prev_kv,
        } => match store.watch(key, *prefix, *start_revision) {
            Ok(events) => Reply {
                events: Some(events.iter().map(|e| ev(e, *prev_kv)).collect()),
                ..Reply::default()
            },
            Err(compacted) => Reply {
                compact_revision: Some(compacted),
                ..Reply::default()
            },
        },
    })
}

/// Replays a sequence through `store` (fresh, [`Etcd::resume`]d at the
/// sequence's base): the replies, one per request.
pub fn run_model(store: &mut Etcd<String>, ops: &[Request]) -> Result<Vec<Reply>, Unsupported> {
    ops.iter().map(|op| apply(store, op)).collect()
}

/// The first difference between two replies, as `path: want … got …`.
pub fn diff(want: &Reply, got: &Reply) -> Option<String> {
    let (w, g) = (
        serde_json::to_value(want).expect("a reply serialises"),
        serde_json::to_value(got).expect("a reply serialises"),
    );
    first_difference("", &w, &g)
}

fn first_difference(path: &str, w: &serde_json::Value, g: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match (w, g) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let sub = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_difference(&sub, va, vb) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{sub}: want {va}, got nothing")),
                }
            }
            b.iter()
                .find(|(k, _)| !a.contains_key(*k))
                .map(|(k, vb)| format!("{path}.{k}: want nothing, got {vb}"))
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                if let Some(d) = first_difference(&format!("{path}[{i}]"), va, vb) {
                    return Some(d);
                }
            }
            (a.len() != b.len()).then(|| format!("{path}: want {} items, got {}", a.len(), b.len()))
        }
        _ => (w != g).then(|| format!("{path}: want {w}, got {g}")),
    }
}

fn shift(rev: i64, base: i64) -> i64 {
    if rev > 0 {
        base + rev
    } else {
        rev
    }
}

/// A template made concrete: every revision it names (`Range.revision`,
/// `Compact.revision`, `Watch.start_revision`, and the operands of `mod`
/// and `create` compares) is an offset from the sequence's base revision,
/// 0 staying 0 ("now", "none"). Templates are how the corpus and the
/// generator of tests/etcd.rs write sequences that run on any server.
pub fn instantiate(ops: &[Request], base: i64) -> Vec<Request> {
    ops.iter()
        .map(|op| {
            let mut op = op.clone();
            match &mut op {
                Request::Range { revision, .. } | Request::Compact { revision } => {
                    *revision = shift(*revision, base)
                }
                Request::Watch { start_revision, .. } => {
                    *start_revision = shift(*start_revision, base)
                }
                Request::Txn {
                    compare,
                    success,
                    failure,
                } => {
                    for c in compare.iter_mut() {
                        if c.target == "mod" || c.target == "create" {
                            c.number = shift(c.number, base);
                        }
                    }
                    *success = instantiate(success, base);
                    *failure = instantiate(failure, base);
                }
                _ => {}
            }
            op
        })
        .collect()
}
