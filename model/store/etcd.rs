//! etcd's v3 key-value semantics, as much of them as the allocators need.
//!
//! Stands for etcd 3.4's server side: the multi-version store of
//! `server/mvcc` (`kvstore.go`, `kvstore_txn.go`, `watchable_store.go`,
//! `index.go`), the request checks and the transaction of
//! `etcdserver/apply.go` (`applierV3backend.Put`, `Range`, `DeleteRange`,
//! `Txn`, `applyCompare`, `checkRequestPut`), and the lessor of
//! `lease/lessor.go` (`Grant`, `Revoke`, `Renew`, `Promote`), all
//! Apache-2.0, <https://github.com/etcd-io/etcd> at `release-3.4`. Written
//! from etcd's API reference (`api/etcdserverpb/rpc.proto`,
//! <https://etcd.io/docs/v3.4/learning/api/>) and from what a real
//! etcd 3.4.23 answers: tests/etcd.rs replays the recorded answers of
//! tests/data/etcd-3.4.23.jsonl through this model field by field, and, when
//! Debian's `etcd-server` is installed, replays new generated sequences
//! against a real server.
//!
//! What is modelled:
//! - **One global revision.** A fresh store is at revision 1. Every request
//!   that changes something bumps it by one, a transaction or a lease
//!   revocation once for all its changes; one that changes nothing (a
//!   `DeleteRange` matching no key, a failed compare whose branch only
//!   reads) leaves it alone.
//! - **Per key** `create_revision`, `mod_revision`, `version` (1 at creation,
//!   +1 per put; a delete ends the key's generation, the next put starts a
//!   new one at version 1) and the `lease` the key is attached to.
//! - **`Put`** (with `lease`, `prev_kv`), **`DeleteRange`** (one key or a
//!   prefix, `prev_kv`), **`Range`** (one key or a prefix; `revision` for a
//!   read of the past, `limit`, `count_only`; `count` is every match, `more`
//!   says `limit` cut the list), **`Txn`** (compares on `VALUE`, `VERSION`,
//!   `CREATE`, `MOD` and `LEASE` with `=`, `!=`, `<`, `>`; a compare of
//!   `VALUE` on a missing key is false, the others compare 0; then the
//!   `success` or the `failure` operations, which see the transaction's own
//!   earlier writes; two writes of one key in one transaction are refused).
//! - **Leases**: `LeaseGrant` with a client-chosen ID and a TTL raised to the
//!   server's minimum ([`MIN_TTL`], 2 s for etcd's default heartbeat and
//!   election ticks), `LeaseKeepAlive`, `LeaseRevoke` deleting the attached
//!   keys in key order at one revision, `LeaseTimeToLive`, and expiry on a
//!   simulated clock ([`Etcd::advance`]), which revokes. A restart keeps
//!   every lease and renews it (`Promote` on the new leader).
//! - **`Watch`** from a revision, on one key or a prefix: the ordered events
//!   since then, each with its `prev_kv`; from a compacted revision the
//!   watch is cancelled with the compaction revision.
//! - **`Compact`**: reads of revisions before it fail with
//!   [`EtcdError::Compacted`]; a read at the compaction revision itself
//!   still works; compacting at or below the last compaction fails the same
//!   way; a revision beyond the current one is [`EtcdError::FutureRevision`].
//!
//! Two retentions: [`Etcd::new`] keeps the whole history (what etcd does
//! until it is compacted), [`Etcd::compacting`] keeps none, as if compacted
//! at every revision, so that a search over protocols that never read the
//! past does not tell apart states whose only difference is history.
//!
//! Not modelled: range ends other than a prefix, `sort_order`, `keys_only`,
//! `min/max_*_revision` filters, nested transactions, watch filters and
//! progress notifications, authentication, a cluster of several members
//! (one member, which may restart), and the wall clock behind real lease
//! expiry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A store revision (etcd's `int64`).
pub type Revision = i64;

/// A lease ID; 0 is "no lease".
pub type LeaseId = i64;

/// The smallest TTL the server grants, in seconds: `lessor.minLeaseTTL`,
/// which etcd sets to `ceil(3 * election-ticks / 2 * heartbeat)`, 2 s for the
/// defaults (10 ticks, 100 ms). A grant asking less gets this.
pub const MIN_TTL: i64 = 2;

/// etcd's default election timeout, milliseconds (`--election-timeout`):
/// the `extend` of `lessor.Promote` when a member becomes leader, so a
/// restart gives every lease this much on top of its TTL.
pub const ELECTION_TIMEOUT_MS: u64 = 1000;

/// One stored key (etcd's `mvccpb.KeyValue`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyValue<V> {
    /// The key.
    pub key: String,
    /// The revision of the put that created this generation of the key.
    pub create_revision: Revision,
    /// The revision of the key's last put.
    pub mod_revision: Revision,
    /// Puts since creation, 1 for the first.
    pub version: i64,
    /// The value.
    pub value: V,
    /// The lease the key is attached to, 0 for none.
    pub lease: LeaseId,
}

/// Why a request failed, with etcd's message (as its gRPC gateway prints it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtcdError {
    /// `mvcc.ErrCompacted`: the revision asked for was compacted.
    Compacted,
    /// `mvcc.ErrFutureRev`: the revision asked for is beyond the current one.
    FutureRevision,
    /// `lease.ErrLeaseNotFound`.
    LeaseNotFound,
    /// `lease.ErrLeaseExists`: a grant with an ID in use.
    LeaseExists,
    /// `rpctypes.ErrGRPCDuplicateKey`: two writes of one key in one `Txn`.
    DuplicateKey,
    /// `rpctypes.ErrGRPCEmptyKey`: a request without a key.
    EmptyKey,
}

impl EtcdError {
    /// The message etcd 3.4 sends.
    pub fn message(self) -> &'static str {
        match self {
            EtcdError::Compacted => "etcdserver: mvcc: required revision has been compacted",
            EtcdError::FutureRevision => "etcdserver: mvcc: required revision is a future revision",
            EtcdError::LeaseNotFound => "etcdserver: requested lease not found",
            EtcdError::LeaseExists => "etcdserver: lease already exists",
            EtcdError::DuplicateKey => "etcdserver: duplicate key given in txn request",
            EtcdError::EmptyKey => "etcdserver: key is not provided",
        }
    }
}

impl fmt::Display for EtcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// `RangeRequest`, as far as it is modelled.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct RangeRequest {
    /// The key, or the prefix when `prefix`.
    pub key: String,
    /// Every key starting with `key` (`range_end` = `key` + 1).
    pub prefix: bool,
    /// Read the store as it was at this revision; 0 for now.
    pub revision: Revision,
    /// At most this many keys; 0 for all.
    pub limit: i64,
    /// Only the count.
    pub count_only: bool,
}

/// `PutRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PutRequest<V> {
    /// The key.
    pub key: String,
    /// The value.
    pub value: V,
    /// Attach the key to this lease (0: none, detaching it from any).
    pub lease: LeaseId,
    /// Return the key as it was.
    pub prev_kv: bool,
}

/// `DeleteRangeRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct DeleteRequest {
    /// The key, or the prefix when `prefix`.
    pub key: String,
    /// Every key starting with `key`.
    pub prefix: bool,
    /// Return the deleted keys.
    pub prev_kv: bool,
}

/// One operation of a transaction (`RequestOp`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestOp<V> {
    /// `request_range`.
    Range(RangeRequest),
    /// `request_put`.
    Put(PutRequest<V>),
    /// `request_delete_range`.
    Delete(DeleteRequest),
}

/// `RangeResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RangeResponse<V> {
    /// `header.revision`: the store's revision when it answered.
    pub revision: Revision,
    /// The keys, in key order (none when `count_only`).
    pub kvs: Vec<KeyValue<V>>,
    /// How many keys matched, `limit` or not.
    pub count: i64,
    /// `limit` left keys out.
    pub more: bool,
}

/// `PutResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PutResponse<V> {
    /// `header.revision`.
    pub revision: Revision,
    /// The key before the put, when asked and it existed.
    pub prev_kv: Option<KeyValue<V>>,
}

/// `DeleteRangeResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeleteResponse<V> {
    /// `header.revision`.
    pub revision: Revision,
    /// How many keys were deleted.
    pub deleted: i64,
    /// The deleted keys, when asked.
    pub prev_kvs: Vec<KeyValue<V>>,
}

/// One operation's answer in a transaction (`ResponseOp`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResponseOp<V> {
    /// `response_range`.
    Range(RangeResponse<V>),
    /// `response_put`.
    Put(PutResponse<V>),
    /// `response_delete_range`.
    Delete(DeleteResponse<V>),
}

/// What a compare looks at, with the operand (`Compare.target` and its
/// `target_union`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CompareTarget<V> {
    /// `VERSION`.
    Version(i64),
    /// `CREATE` (`create_revision`).
    Create(Revision),
    /// `MOD` (`mod_revision`).
    Mod(Revision),
    /// `VALUE`.
    Value(V),
    /// `LEASE`.
    Lease(LeaseId),
}

/// The relation a compare asks for (`Compare.result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareResult {
    /// `EQUAL`.
    Equal,
    /// `GREATER`: the key's field is greater than the operand.
    Greater,
    /// `LESS`.
    Less,
    /// `NOT_EQUAL`.
    NotEqual,
}

/// One compare of a `Txn`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Compare<V> {
    /// The key compared.
    pub key: String,
    /// Its field and the operand.
    pub target: CompareTarget<V>,
    /// The relation.
    pub result: CompareResult,
}

/// `TxnRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnRequest<V> {
    /// All must hold for `success` to run.
    pub compare: Vec<Compare<V>>,
    /// Run when every compare holds.
    pub success: Vec<RequestOp<V>>,
    /// Run otherwise.
    pub failure: Vec<RequestOp<V>>,
}

/// `TxnResponse`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnResponse<V> {
    /// `header.revision`.
    pub revision: Revision,
    /// The compares held.
    pub succeeded: bool,
    /// One answer per operation of the branch that ran.
    pub responses: Vec<ResponseOp<V>>,
}

/// One change, as a watch delivers it (`mvccpb.Event`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event<V> {
    /// The key.
    pub key: String,
    /// The revision of the change.
    pub revision: Revision,
    /// The key after a put; `None` for a delete.
    pub kv: Option<KeyValue<V>>,
    /// The key before the change, if it existed.
    pub prev_kv: Option<KeyValue<V>>,
}

/// A lease (`lease.Lease`), its deadline on the store's clock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The granted TTL, seconds.
    pub ttl: i64,
    /// When it expires, milliseconds on [`Etcd::now_ms`]'s clock.
    pub deadline_ms: u64,
    /// The keys attached to it.
    pub keys: BTreeSet<String>,
}

/// A rule of this model deliberately broken, so that a test can show the
/// recorded vectors catch it (tests/etcd.rs). Never set outside tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mutant {
    /// A put inside a `Txn` keeps the key's old `mod_revision`.
    TxnPutKeepsModRevision,
    /// A delete keeps the key's version, so the next put continues it.
    DeleteKeepsVersion,
    /// A read at the compaction revision itself is refused too.
    CompactionExclusive,
    /// Revoking a lease leaves its keys.
    RevokeKeepsKeys,
}

/// One member's store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Etcd<V> {
    revision: Revision,
    compact_revision: Revision,
    keys: BTreeMap<String, KeyValue<V>>,
    /// Every change in order, when history is kept.
    history: Option<Vec<Event<V>>>,
    leases: BTreeMap<LeaseId, Lease>,
    now_ms: u64,
    mutant: Option<Mutant>,
}

impl<V: Clone + Ord> Default for Etcd<V> {
    fn default() -> Self {
        Self::new()
    }
}

fn matches(key: &str, want: &str, prefix: bool) -> bool {
    if prefix {
        key.starts_with(want)
    } else {
        key == want
    }
}

impl<V: Clone + Ord> Etcd<V> {
    /// A fresh store at revision 1 that keeps its history.
    pub fn new() -> Self {
        Etcd {
            revision: 1,
            compact_revision: 0,
            keys: BTreeMap::new(),
            history: Some(Vec::new()),
            leases: BTreeMap::new(),
            now_ms: 0,
            mutant: None,
        }
    }

    /// A fresh store that keeps no history: every read of the past and every
    /// watch from before the next revision fails as compacted.
    pub fn compacting() -> Self {
        Etcd {
            history: None,
            ..Self::new()
        }
    }

    /// An empty key space on a store already at `revision`, compacted at
    /// `compact_revision` (0: never): how a sequence sees a server that other
    /// sequences used before, in key spaces of their own.
    pub fn resume(revision: Revision, compact_revision: Revision) -> Self {
        Etcd {
            revision,
            compact_revision,
            ..Self::new()
        }
    }

    /// This store with a rule broken on purpose (see [`Mutant`]).
    pub fn with_mutant(mut self, mutant: Mutant) -> Self {
        self.mutant = Some(mutant);
        self
    }

    /// The current revision (`header.revision`).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The last compaction's revision, 0 if none.
    pub fn compact_revision(&self) -> Revision {
        if self.history.is_none() {
            self.revision
        } else {
            self.compact_revision
        }
    }

    /// The simulated clock, milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The key as it is now.
    pub fn get(&self, key: &str) -> Option<&KeyValue<V>> {
        self.keys.get(key)
    }

    /// The live leases.
    pub fn leases(&self) -> &BTreeMap<LeaseId, Lease> {
        &self.leases
    }

    fn mutant(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }

    /// The keys as they were at `revision` (`revision` checked already).
    fn keys_at(&self, revision: Revision) -> BTreeMap<&str, &KeyValue<V>> {
        let mut at: BTreeMap<&str, &KeyValue<V>> =
            self.keys.iter().map(|(k, kv)| (k.as_str(), kv)).collect();
        if revision == self.revision {
            return at;
        }
        // Undo the changes after `revision`, newest first.
        let history = self.history.as_deref().unwrap_or_default();
        for event in history.iter().rev() {
            if event.revision <= revision {
                break;
            }
            at.remove(event.key.as_str());
            if let Some(prev) = &event.prev_kv {
                at.insert(prev.key.as_str(), prev);
            }
        }
        at
    }

    /// Checks a revision to read at: `Ok(resolved)` or why not.
    fn readable(&self, revision: Revision) -> Result<Revision, EtcdError> {
        if revision <= 0 {
            return Ok(self.revision);
        }
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        let compacted = self.compact_revision();
        if revision < compacted
            || (revision == compacted && self.mutant(Mutant::CompactionExclusive))
        {
            return Err(EtcdError::Compacted);
        }
        Ok(revision)
    }

    /// `Range`.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse<V>, EtcdError> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        let at = self.readable(req.revision)?;
        Ok(self.range_at(req, at, self.revision))
    }

    fn range_at(&self, req: &RangeRequest, at: Revision, header: Revision) -> RangeResponse<V> {
        let found: Vec<&KeyValue<V>> = if at == self.revision {
            self.keys
                .range(req.key.clone()..)
                .take_while(|(k, _)| matches(k, &req.key, req.prefix))
                .map(|(_, kv)| kv)
                .collect()
        } else {
            self.keys_at(at)
                .into_iter()
                .filter(|(k, _)| matches(k, &req.key, req.prefix))
                .map(|(_, kv)| kv)
                .collect()
        };
        let count = found.len() as i64;
        let kept = if req.limit > 0 {
            found.len().min(req.limit as usize)
        } else {
            found.len()
        };
        RangeResponse {
            revision: header,
            kvs: if req.count_only {
                Vec::new()
            } else {
                found[..kept].iter().map(|kv| (*kv).clone()).collect()
            },
            count,
            // `more` comes from cutting the list of keys: a count-only read
            // has none to cut.
            more: !req.count_only && kept < found.len(),
        }
    }

    fn record(&mut self, event: Event<V>) {
        if let Some(h) = self.history.as_mut() {
            h.push(event);
        }
    }

    /// Writes `req` at revision `rev` (already chosen). `in_txn` for the
    /// transaction rule [`Mutant::TxnPutKeepsModRevision`] breaks.
    fn write_put(
        &mut self,
        req: &PutRequest<V>,
        rev: Revision,
        in_txn: bool,
    ) -> Option<KeyValue<V>> {
        let prev = self.keys.get(&req.key).cloned();
        let kv = KeyValue {
            key: req.key.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: match &prev {
                Some(p) if in_txn && self.mutant(Mutant::TxnPutKeepsModRevision) => p.mod_revision,
                _ => rev,
            },
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: req.value.clone(),
            lease: req.lease,
        };
        if let Some(p) = &prev {
            if p.lease != 0 && p.lease != req.lease {
                if let Some(l) = self.leases.get_mut(&p.lease) {
                    l.keys.remove(&req.key);
                }
            }
        }
        if req.lease != 0 {
            if let Some(l) = self.leases.get_mut(&req.lease) {
                l.keys.insert(req.key.clone());
            }
        }
        self.keys.insert(req.key.clone(), kv.clone());
        self.record(Event {
            key: req.key.clone(),
            revision: rev,
            kv: Some(kv),
            prev_kv: prev.clone(),
        });
        prev
    }

    fn delete_matching(&self, req: &DeleteRequest) -> Vec<String> {
        self.keys
            .range(req.key.clone()..)
            .take_while(|(k, _)| matches(k, &req.key, req.prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn write_delete(&mut self, key: &str, rev: Revision) -> Option<KeyValue<V>> {
        let prev = self.keys.remove(key)?;
        if prev.lease != 0 {
            if let Some(l) = self.leases.get_mut(&prev.lease) {
                l.keys.remove(key);
            }
        }
        if self.mutant(Mutant::DeleteKeepsVersion) {
            // The tombstone keeps the generation going: the next put
            // continues its version and creation revision.
            self.keys.insert(
                key.to_string(),
                KeyValue {
                    mod_revision: rev,
                    ..prev.clone()
                },
            );
        }
        self.record(Event {
            key: key.to_string(),
            revision: rev,
            kv: None,
            prev_kv: Some(prev.clone()),
        });
        Some(prev)
    }

    fn check_lease(&self, lease: LeaseId) -> Result<(), EtcdError> {
        if lease != 0 && !self.leases.contains_key(&lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        Ok(())
    }

    /// `Put`.
    pub fn put(&mut self, req: &PutRequest<V>) -> Result<PutResponse<V>, EtcdError> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        self.check_lease(req.lease)?;
        self.revision += 1;
        let prev = self.write_put(req, self.revision, false);
        Ok(PutResponse {
            revision: self.revision,
            prev_kv: prev.filter(|_| req.prev_kv),
        })
    }

    /// `DeleteRange`.
    pub fn delete(&mut self, req: &DeleteRequest) -> Result<DeleteResponse<V>, EtcdError> {
        if req.key.is_empty() {
            return Err(EtcdError::EmptyKey);
        }
        let doomed = self.delete_matching(req);
        if !doomed.is_empty() {
            self.revision += 1;
        }
        let rev = self.revision;
        let prev: Vec<KeyValue<V>> = doomed
            .iter()
            .filter_map(|k| self.write_delete(k, rev))
            .collect();
        Ok(DeleteResponse {
            revision: rev,
            deleted: prev.len() as i64,
            prev_kvs: if req.prev_kv { prev } else { Vec::new() },
        })
    }

    fn holds(&self, c: &Compare<V>) -> bool {
        use std::cmp::Ordering;
        let kv = self.keys.get(&c.key);
        let order = match (&c.target, kv) {
            // `applyCompare`: comparing a value of a missing key always fails.
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.cmp(v),
            (CompareTarget::Version(n), kv) => kv.map_or(0, |kv| kv.version).cmp(n),
            (CompareTarget::Create(n), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(n),
            (CompareTarget::Mod(n), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(n),
            (CompareTarget::Lease(n), kv) => kv.map_or(0, |kv| kv.lease).cmp(n),
        };
        match c.result {
            CompareResult::Equal => order == Ordering::Equal,
            CompareResult::NotEqual => order != Ordering::Equal,
            CompareResult::Greater => order == Ordering::Greater,
            CompareResult::Less => order == Ordering::Less,
        }
    }

    /// `Txn`: the compares, then one branch, all its writes at one revision.
    pub fn txn(&mut self, req: &TxnRequest<V>) -> Result<TxnResponse<V>, EtcdError> {
        // `checkTxnRequest` / `checkRequestPut`: requests are checked up
        // front, both branches, before any compare.
        for op in req.success.iter().chain(&req.failure) {
            match op {
                RequestOp::Range(r) if r.key.is_empty() => return Err(EtcdError::EmptyKey),
                RequestOp::Put(p) if p.key.is_empty() => return Err(EtcdError::EmptyKey),
                RequestOp::Delete(d) if d.key.is_empty() => return Err(EtcdError::EmptyKey),
                _ => {}
            }
        }
        for ops in [&req.success, &req.failure] {
            check_duplicates(ops)?;
        }
        let succeeded = req.compare.iter().all(|c| self.holds(c));
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        for op in ops {
            match op {
                RequestOp::Put(p) => self.check_lease(p.lease)?,
                RequestOp::Range(r) => {
                    self.readable(r.revision)?;
                }
                RequestOp::Delete(_) => {}
            }
        }
        let begin = self.revision;
        let mut wrote = false;
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                RequestOp::Range(r) => {
                    // Reads see the transaction's own writes.
                    let at = if r.revision > 0 {
                        r.revision
                    } else {
                        self.revision
                    };
                    responses.push(ResponseOp::Range(self.range_at(r, at, self.revision)));
                }
                RequestOp::Put(p) => {
                    if !wrote {
                        self.revision += 1;
                        wrote = true;
                    }
                    let prev = self.write_put(p, begin + 1, true);
                    responses.push(ResponseOp::Put(PutResponse {
                        revision: begin + 1,
                        prev_kv: prev.filter(|_| p.prev_kv),
                    }));
                }
                RequestOp::Delete(d) => {
                    let doomed = self.delete_matching(d);
                    if !doomed.is_empty() && !wrote {
                        self.revision += 1;
                        wrote = true;
                    }
                    let rev = self.revision;
                    let prev: Vec<KeyValue<V>> = doomed
                        .iter()
                        .filter_map(|k| self.write_delete(k, rev))
                        .collect();
                    responses.push(ResponseOp::Delete(DeleteResponse {
                        revision: rev,
                        deleted: prev.len() as i64,
                        prev_kvs: if d.prev_kv { prev } else { Vec::new() },
                    }));
                }
            }
        }
        let end = self.revision;
        Ok(TxnResponse {
            revision: end,
            succeeded,
            responses,
        })
    }

    /// `Compact(revision)`: the store's revision (`header.revision`).
    pub fn compact(&mut self, revision: Revision) -> Result<Revision, EtcdError> {
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        if revision <= self.compact_revision() {
            return Err(EtcdError::Compacted);
        }
        // The history stays: reads check the compaction revision, and a
        // read at it undoes only the changes after it.
        self.compact_revision = revision;
        Ok(self.revision)
    }

    /// `LeaseGrant(ID, TTL)`: the granted TTL.
    pub fn lease_grant(&mut self, id: LeaseId, ttl: i64) -> Result<i64, EtcdError> {
        if self.leases.contains_key(&id) {
            return Err(EtcdError::LeaseExists);
        }
        let ttl = ttl.max(MIN_TTL);
        self.leases.insert(
            id,
            Lease {
                ttl,
                deadline_ms: self.now_ms + ttl as u64 * 1000,
                keys: BTreeSet::new(),
            },
        );
        Ok(ttl)
    }

    /// `LeaseRevoke(ID)`: deletes the lease's keys in key order at one
    /// revision; the store's revision after.
    pub fn lease_revoke(&mut self, id: LeaseId) -> Result<Revision, EtcdError> {
        let lease = self.leases.remove(&id).ok_or(EtcdError::LeaseNotFound)?;
        if self.mutant(Mutant::RevokeKeepsKeys) {
            return Ok(self.revision);
        }
        let live: Vec<&String> = lease
            .keys
            .iter()
            .filter(|k| self.keys.contains_key(k.as_str()))
            .collect();
        if !live.is_empty() {
            self.revision += 1;
            let rev = self.revision;
            for k in live {
                self.write_delete(k, rev);
            }
        }
        Ok(self.revision)
    }

    /// `LeaseKeepAlive(ID)`: the TTL renewed, 0 when the lease is unknown
    /// (etcd answers a keep-alive of an unknown lease with TTL 0).
    pub fn lease_keep_alive(&mut self, id: LeaseId) -> i64 {
        let now = self.now_ms;
        match self.leases.get_mut(&id) {
            Some(l) => {
                l.deadline_ms = now + l.ttl as u64 * 1000;
                l.ttl
            }
            None => 0,
        }
    }

    /// `LeaseTimeToLive(ID)`: the granted TTL, the seconds left (rounded
    /// down, as etcd's `Remaining().Seconds()`), and the attached keys.
    pub fn lease_time_to_live(&self, id: LeaseId) -> Option<(i64, i64, Vec<String>)> {
        let l = self.leases.get(&id)?;
        let left = l.deadline_ms.saturating_sub(self.now_ms) / 1000;
        Some((l.ttl, left as i64, l.keys.iter().cloned().collect()))
    }

    /// Moves the simulated clock on by `ms` and revokes every lease whose
    /// deadline passed, earliest deadline first (ties by ID). Returns them.
    pub fn advance(&mut self, ms: u64) -> Vec<LeaseId> {
        self.now_ms += ms;
        let mut due: Vec<(u64, LeaseId)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline_ms <= self.now_ms)
            .map(|(id, l)| (l.deadline_ms, *id))
            .collect();
        due.sort();
        for &(_, id) in &due {
            let _ = self.lease_revoke(id);
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Expires one lease now, whatever its deadline: the explorer's way of
    /// ordering an expiry against other steps. The store's revision after,
    /// or [`EtcdError::LeaseNotFound`].
    pub fn expire(&mut self, id: LeaseId) -> Result<Revision, EtcdError> {
        self.lease_revoke(id)
    }

    /// The member restarts: keys, revisions and leases are durable; every
    /// lease is renewed for its full TTL plus the election timeout
    /// (`EtcdServer.applyEntryNormal` calls `lessor.Promote(ElectionTimeout)`
    /// at the leader's first entry of its term; `Lease.refresh(extend)`
    /// sets the expiry to now + extend + `RemainingTTL`, which is the TTL
    /// unless lease checkpoints are on, and 3.4 has them off by default).
    /// The simulated clock does not move: the restart takes no time here.
    pub fn restart(&mut self) {
        let now = self.now_ms;
        for l in self.leases.values_mut() {
            l.deadline_ms = now + ELECTION_TIMEOUT_MS + l.ttl as u64 * 1000;
        }
    }

    /// `Watch` from `start` (0: from the next revision) on a key or prefix:
    /// the events so far, in order. `Err(compact_revision)` when `start` is
    /// before the last compaction: etcd cancels the watch with it.
    pub fn watch(
        &self,
        key: &str,
        prefix: bool,
        start: Revision,
    ) -> Result<Vec<Event<V>>, Revision> {
        let start = if start <= 0 { self.revision + 1 } else { start };
        let compacted = self.compact_revision();
        let Some(history) = self.history.as_deref() else {
            return if start > self.revision {
                Ok(Vec::new())
            } else {
                Err(compacted)
            };
        };
        if start < compacted || (start == compacted && self.mutant(Mutant::CompactionExclusive)) {
            return Err(compacted);
        }
        // An event's previous key is read at the revision before it
        // (`watchableStore` with `prev_kv`): gone once that is compacted.
        Ok(history
            .iter()
            .filter(|e| e.revision >= start && matches(&e.key, key, prefix))
            .map(|e| Event {
                prev_kv: e.prev_kv.clone().filter(|_| e.revision > compacted),
                ..e.clone()
            })
            .collect())
    }
}

/// `checkTxnRequest`'s duplicate rule: no key written twice in one branch,
/// a put and a delete of an overlapping range included.
fn check_duplicates<V>(ops: &[RequestOp<V>]) -> Result<(), EtcdError> {
    let mut puts: Vec<&str> = Vec::new();
    let mut dels: Vec<(&str, bool)> = Vec::new();
    for op in ops {
        match op {
            RequestOp::Put(p) => {
                if puts.contains(&p.key.as_str()) {
                    return Err(EtcdError::DuplicateKey);
                }
                puts.push(&p.key);
            }
            RequestOp::Delete(d) => dels.push((&d.key, d.prefix)),
            RequestOp::Range(_) => {}
        }
    }
    for (k, prefix) in dels {
        if puts.iter().any(|p| matches(p, k, prefix)) {
            return Err(EtcdError::DuplicateKey);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &mut Etcd<String>, k: &str, v: &str) -> Revision {
        s.put(&PutRequest {
            key: k.into(),
            value: v.into(),
            lease: 0,
            prev_kv: false,
        })
        .unwrap()
        .revision
    }

    fn get(s: &Etcd<String>, k: &str, rev: Revision) -> Result<Vec<String>, EtcdError> {
        s.range(&RangeRequest {
            key: k.into(),
            revision: rev,
            ..Default::default()
        })
        .map(|r| r.kvs.into_iter().map(|kv| kv.value).collect())
    }

    #[test]
    fn revisions_versions_and_generations() {
        let mut s = Etcd::new();
        assert_eq!(s.revision(), 1);
        assert_eq!(put(&mut s, "a", "1"), 2);
        assert_eq!(put(&mut s, "a", "2"), 3);
        let a = s.get("a").unwrap().clone();
        assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 3, 2));
        let d = s
            .delete(&DeleteRequest {
                key: "a".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((d.revision, d.deleted), (4, 1));
        // Deleting nothing changes nothing.
        let d = s
            .delete(&DeleteRequest {
                key: "a".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((d.revision, d.deleted), (4, 0));
        assert_eq!(put(&mut s, "a", "3"), 5);
        let a = s.get("a").unwrap();
        assert_eq!((a.create_revision, a.version), (5, 1));
        // The past, and its limits.
        assert_eq!(get(&s, "a", 3).unwrap(), vec!["2".to_string()]);
        assert_eq!(get(&s, "a", 4).unwrap(), Vec::<String>::new());
        assert_eq!(get(&s, "a", 6), Err(EtcdError::FutureRevision));
        s.compact(3).unwrap();
        assert_eq!(get(&s, "a", 2), Err(EtcdError::Compacted));
        assert_eq!(get(&s, "a", 3).unwrap(), vec!["2".to_string()]);
        assert_eq!(s.compact(3), Err(EtcdError::Compacted));
        assert_eq!(s.watch("a", false, 2), Err(3));
        assert_eq!(s.watch("a", false, 3).unwrap().len(), 3);
    }

    #[test]
    fn a_txn_writes_at_one_revision_and_sees_its_own_writes() {
        let mut s = Etcd::new();
        put(&mut s, "a", "1");
        let t = TxnRequest {
            compare: vec![Compare {
                key: "a".into(),
                target: CompareTarget::Mod(2),
                result: CompareResult::Equal,
            }],
            success: vec![
                RequestOp::Put(PutRequest {
                    key: "a".into(),
                    value: "2".into(),
                    lease: 0,
                    prev_kv: true,
                }),
                RequestOp::Put(PutRequest {
                    key: "b".into(),
                    value: "x".into(),
                    lease: 0,
                    prev_kv: false,
                }),
                RequestOp::Range(RangeRequest {
                    key: "".into(),
                    ..Default::default()
                }),
            ],
            failure: vec![],
        };
        assert_eq!(s.txn(&t), Err(EtcdError::EmptyKey));
        let mut t = t;
        t.success[2] = RequestOp::Range(RangeRequest {
            key: "b".into(),
            ..Default::default()
        });
        let r = s.txn(&t).unwrap();
        assert!(r.succeeded);
        assert_eq!(r.revision, 3);
        let ResponseOp::Range(seen) = &r.responses[2] else {
            panic!()
        };
        assert_eq!(seen.kvs[0].mod_revision, 3);
        // The same compare now fails: the failure branch is empty.
        let r = s.txn(&t).unwrap();
        assert!(!r.succeeded);
        assert_eq!(r.revision, 3);
        // A value compare on a missing key fails, whatever the relation.
        let c = TxnRequest {
            compare: vec![Compare {
                key: "zz".into(),
                target: CompareTarget::Value(String::new()),
                result: CompareResult::NotEqual,
            }],
            success: vec![],
            failure: vec![],
        };
        assert!(!s.txn(&c).unwrap().succeeded);
    }

    #[test]
    fn leases_expire_on_the_simulated_clock_and_restart_renews_them() {
        let mut s = Etcd::new();
        assert_eq!(s.lease_grant(7, 1), Ok(MIN_TTL));
        assert_eq!(s.lease_grant(7, 5), Err(EtcdError::LeaseExists));
        s.put(&PutRequest {
            key: "k".into(),
            value: "v".to_string(),
            lease: 7,
            prev_kv: false,
        })
        .unwrap();
        assert_eq!(s.advance(1500), Vec::<LeaseId>::new());
        s.restart();
        // A full TTL (2 s) again, plus the election timeout (1 s).
        assert_eq!(s.advance(2500), Vec::<LeaseId>::new());
        assert_eq!(s.advance(499), Vec::<LeaseId>::new());
        assert_eq!(s.advance(1), vec![7]);
        assert!(s.get("k").is_none());
        assert_eq!(s.revision(), 3);
        assert_eq!(s.lease_keep_alive(7), 0);
        assert_eq!(
            s.put(&PutRequest {
                key: "k".into(),
                value: "v".to_string(),
                lease: 7,
                prev_kv: false,
            }),
            Err(EtcdError::LeaseNotFound)
        );
    }

    #[test]
    fn the_compacting_store_refuses_the_past() {
        let mut s: Etcd<String> = Etcd::compacting();
        put(&mut s, "a", "1");
        put(&mut s, "a", "2");
        assert_eq!(get(&s, "a", 2), Err(EtcdError::Compacted));
        assert_eq!(get(&s, "a", 3).unwrap(), vec!["2".to_string()]);
        assert_eq!(s.watch("a", false, 0), Ok(vec![]));
        assert_eq!(s.watch("a", false, 2), Err(3));
    }
}
