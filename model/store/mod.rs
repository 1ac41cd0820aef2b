//! A versioned key-value store with compare-and-swap, standing for the
//! consul/etcd/zookeeper store behind libnetwork's `datastore` (via libkv)
//! in classic Swarm's global scope.
//!
//! What is modelled: every write bumps one store-wide index (consul's
//! `ModifyIndex`, etcd's revision) and records it on the key; `atomic_put`
//! succeeds only if the caller's last-seen index still matches (libkv
//! `AtomicPut`, which libnetwork's `PutObjectAtomic` calls with the
//! object's `dbIndex`), failing with [`StoreError::KeyModified`]
//! (`ErrKeyModified`, a retry error for `Handle.set`) or
//! [`StoreError::KeyExists`] when creating a key that exists.
//!
//! The *no store* mode of local-scope networks (#1130) is not a store at
//! all: callers hold `Option<KvStore<_>>` and `None` means `writeToStore`
//! returns at once, checking nothing.
//!
//! Not modelled: watches, TTLs, network partitions, or a store that loses
//! or reorders writes.

use std::collections::BTreeMap;
use std::fmt;

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

/// One stored value and the index of its last write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry<V> {
    /// The value.
    pub value: V,
    /// The store index of the write that produced it.
    pub index: u64,
}

/// The store: keys in order, one global index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvStore<V> {
    entries: BTreeMap<String, Entry<V>>,
    last_index: u64,
}

impl<V: Clone> Default for KvStore<V> {
    fn default() -> Self {
        KvStore {
            entries: BTreeMap::new(),
            last_index: 0,
        }
    }
}

impl<V: Clone> KvStore<V> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Get(key)`: the value and its index.
    pub fn get(&self, key: &str) -> Option<&Entry<V>> {
        self.entries.get(key)
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
        match (self.entries.get(key), previous) {
            (Some(_), None) => return Err(StoreError::KeyExists),
            (Some(entry), Some(index)) if entry.index != index => {
                return Err(StoreError::KeyModified)
            }
            (None, Some(_)) => return Err(StoreError::KeyModified),
            _ => {}
        }
        self.last_index += 1;
        self.entries.insert(
            key.to_string(),
            Entry {
                value,
                index: self.last_index,
            },
        );
        Ok(self.last_index)
    }

    /// The last index handed out.
    pub fn last_index(&self) -> u64 {
        self.last_index
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
        assert_eq!(
            s.get("k").unwrap(),
            &Entry {
                value: 2,
                index: i2
            }
        );
        assert!(i2 > i1);
        assert_eq!(
            s.atomic_put("missing", 1, Some(7)),
            Err(StoreError::KeyModified)
        );
    }
}
