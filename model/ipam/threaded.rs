//! libnetwork's `Handle.set` protocol as real concurrent code: a handle
//! behind a mutex, a key-value store behind another, and the per-network
//! lock, used by real threads — in each profile.
//!
//! The explorer checks the phase model of [`super::system`]; this module is
//! the same protocol written the way libnetwork writes it (lock, search,
//! copy, unlock, reserve on the copy, write, lock, commit, unlock), calling
//! the very same phase functions ([`Handle::compute`],
//! [`Handle::write_to_store`], [`Handle::commit`], [`Handle::refresh_from`]).
//! It exists so that loom can check it (`tests/loom_handle.rs`): loom
//! schedules every lock acquisition, and finds the 17.05 duplicate and the
//! 17.06 lost update by itself, while 18.03 and classic-swarm-cas pass.
//!
//! The locks come from `super::sync` and everything else through the crate
//! name (`netrace::...`): compiled in the library they are `std::sync`'s;
//! `tests/loom_handle.rs` compiles this same file with loom's, in a plain
//! `cargo test`.

use super::sync::{Mutex, MutexGuard};
use netrace::ipam::bitseq::{Bitseq, BitseqError, Request};
use netrace::ipam::profile::Profile;
use netrace::ipam::system::{Handle, SequentialIpam};
use netrace::store::KvStore;

/// The network as one daemon holds it, shared by the threads of concurrent
/// `docker run`s and `docker rm`s.
pub struct ThreadedNetwork {
    profile: Profile,
    search: (u64, u64),
    /// `bitseq.Handle`'s own `sync.Mutex` and what it guards.
    handle: Mutex<Handle>,
    /// The key-value store (global scope), itself atomic per call.
    store: Option<Mutex<KvStore<Bitseq>>>,
    key: String,
    /// `networkLocker` (17.06+): held by `CreateEndpoint`, not by deletion.
    network: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("no thread panics while holding a netrace lock")
}

impl ThreadedNetwork {
    /// Creates the network (reserved ordinals and gateway taken) exactly as
    /// [`SequentialIpam`] does, then hands the handle to the threads.
    pub fn new(created: &SequentialIpam, profile: &Profile) -> ThreadedNetwork {
        let (handle, store, key) = created.parts();
        let pool = created.pool();
        ThreadedNetwork {
            profile: profile.clone(),
            search: pool.search_range().unwrap_or((0, pool.bits() - 1)),
            handle: Mutex::new(handle),
            store: store.map(Mutex::new),
            key,
            network: Mutex::new(()),
        }
    }

    /// `CreateEndpoint` → `RequestAddress` → `SetAny`: the ordinal handed out.
    pub fn request_address(&self) -> Result<u64, BitseqError> {
        let _network = self.profile.network_lock.then(|| lock(&self.network));
        if lock(&self.handle).bm.unselected() == 0 {
            return Err(BitseqError::NoBitAvailable);
        }
        let (start, end) = self.search;
        self.set(Request::Any {
            start,
            end,
            serial: self.profile.serial,
        })
    }

    /// `endpoint.Delete` → `ReleaseAddress` → `Unset`: no network lock.
    pub fn release_address(&self, ordinal: u64) -> Result<(), BitseqError> {
        self.set(Request::Unset(ordinal)).map(|_| ())
    }

    /// `Handle.set`.
    fn set(&self, request: Request) -> Result<u64, BitseqError> {
        if self.profile.holds_lock_through_commit() {
            // #2105: with no store the handle lock is held from the read to
            // the commit.
            let mut h = lock(&self.handle);
            let (ordinal, pos, mut copy) = h.compute(request)?;
            copy.bm.push_reservation(pos, request.is_release());
            h.commit(&copy);
            return Ok(ordinal);
        }
        loop {
            if let Some(store) = &self.store {
                let entry = lock(store)
                    .get(&self.key)
                    .cloned()
                    .expect("created with the network");
                lock(&self.handle).refresh_from(&entry);
            }
            let (ordinal, pos, mut copy) = lock(&self.handle).compute(request)?;
            copy.bm.push_reservation(pos, request.is_release());
            if let Some(store) = &self.store {
                if copy.write_to_store(&mut lock(store), &self.key).is_err() {
                    continue; // ErrKeyModified: retry from the start
                }
            }
            lock(&self.handle).commit(&copy);
            return Ok(ordinal);
        }
    }

    /// The bitmap that is the truth: the store's when there is one.
    pub fn bitmap(&self) -> Bitseq {
        match &self.store {
            Some(store) => lock(store).get(&self.key).expect("created").value.clone(),
            None => lock(&self.handle).bm.clone(),
        }
    }
}
