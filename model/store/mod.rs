//! The key-value stores under the allocators.
//!
//! - [`etcd`]: etcd's v3 semantics (revisions, `Put`, `DeleteRange`,
//!   `Range`, `Txn`, leases, `Watch`, compaction), checked against a real
//!   etcd 3.4 (tests/etcd.rs, docs/etcd-oracle.md).
//! - [`KvStore`], below: the check-and-set that libnetwork's `datastore`
//!   uses through libkv in classic Swarm's global scope, as a thin profile
//!   over [`etcd::Etcd`].
//! - [`vector`]: request sequences with recorded answers, run through the
//!   model; [`oracle`]: a real etcd server and a client that runs them there.
//!
//! [`KvStore::atomic_put`] stands for libkv's `AtomicPut(key, value,
//! previous)`, which libnetwork's `PutObjectAtomic` calls with the object's
//! `dbIndex` (libnetwork `datastore/datastore.go`, Apache-2.0): with no
//! previous it creates the key and fails with [`StoreError::KeyExists`] if
//! it exists; with a previous index it replaces the key only if its index is
//! still that one, else [`StoreError::KeyModified`] (`ErrKeyModified`, a
//! retry error for `Handle.set`). Over etcd v3 that is one transaction, as
//! libkv's and its successors' etcd v3 backends build it: `If(create_revision
//! = 0) Then(Put)` for a create, `If(mod_revision = previous) Then(Put)` for a
//! replace; the index is the key's `mod_revision` (consul's `ModifyIndex`).
//! The store keeps no history ([`etcd::Etcd::compacting`]): the protocol
//! never reads the past, and two search states that differ only in history
//! are the same state.
//!
//! The *no store* mode of local-scope networks (#1130) is not a store at
//! all: callers hold `Option<KvStore<_>>` and `None` means `writeToStore`
//! returns at once, checking nothing.
//!
//! Not modelled here: watches, TTLs, network partitions, or a store that
//! loses or reorders writes.

pub mod etcd;
pub mod oracle;
pub mod vector;

use std::fmt;

use etcd::{Compare, CompareResult, CompareTarget, Etcd, PutRequest, RequestOp, TxnRequest};

pub use etcd::KeyValue;

/// Why a conditional write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreError {
    /// The key changed since the caller read it (`ErrKeyModified`).
    KeyModified,
    /// Creating a key that already exists (`ErrKeyExists`).
    KeyExists,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::KeyModified => {
                f.write_str("Unable to complete atomic operation, key modified")
            }
            StoreError::KeyExists => {
                f.write_str("Previous K/V pair exists, cannot complete Atomic operation")
            }
        }
    }
}

impl<V> KeyValue<V> {
    /// The key's index as libkv reports it (`KVPair.LastIndex`): its
    /// `mod_revision`.
    pub fn index(&self) -> u64 {
        self.mod_revision as u64
    }
}

/// The check-and-set store: an etcd that keeps no history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvStore<V> {
    etcd: Etcd<V>,
}

impl<V: Clone + Ord> Default for KvStore<V> {
    fn default() -> Self {
        KvStore {
            etcd: Etcd::compacting(),
        }
    }
}

impl<V: Clone + Ord> KvStore<V> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Get(key)`: the value, its index being `mod_revision`.
    pub fn get(&self, key: &str) -> Option<&KeyValue<V>> {
        self.etcd.get(key)
    }

    /// `AtomicPut(key, value, previous)`: with `previous = None` creates the
    /// key (failing if it exists); with `Some(index)` replaces it only if
    /// its index is still `index`. Returns the new index.
    pub fn atomic_put(
        &mut self,
        key: &str,
        value: V,
        previous: Option<u64>,
    ) -> Result<u64, StoreError> {
        let (target, error) = match previous {
            None => (CompareTarget::Create(0), StoreError::KeyExists),
            Some(index) => (CompareTarget::Mod(index as i64), StoreError::KeyModified),
        };
        let txn = TxnRequest {
            compare: vec![Compare {
                key: key.to_string(),
                target,
                result: CompareResult::Equal,
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: key.to_string(),
                value,
                lease: 0,
                prev_kv: false,
            })],
            failure: vec![],
        };
        match self.etcd.txn(&txn) {
            Ok(r) if r.succeeded => Ok(r.revision as u64),
            Ok(_) => Err(error),
            Err(e) => unreachable!("a check-and-set transaction is well formed: {e}"),
        }
    }

    /// The last index handed out (the store's revision).
    pub fn last_index(&self) -> u64 {
        self.etcd.revision() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_admits_one_writer_per_index() {
        let mut s = KvStore::new();
        let i1 = s.atomic_put("k", 1, None).unwrap();
        assert_eq!(s.atomic_put("k", 9, None), Err(StoreError::KeyExists));
        // Two writers both read index i1; the first wins.
        let i2 = s.atomic_put("k", 2, Some(i1)).unwrap();
        assert_eq!(s.atomic_put("k", 3, Some(i1)), Err(StoreError::KeyModified));
        let k = s.get("k").unwrap();
        assert_eq!((k.value, k.mod_revision as u64, k.version), (2, i2, 2));
        assert!(i2 > i1);
        assert_eq!(
            s.atomic_put("missing", 1, Some(7)),
            Err(StoreError::KeyModified)
        );
    }
}
