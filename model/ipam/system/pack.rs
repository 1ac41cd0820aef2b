//! The IPAM model's frontier encoding ([`crate::explore::pack::Packer`]):
//! an [`IpamState`] as a byte string for the breadth-first search's
//! frontier, decoded when the search expands it.
//!
//! The parts states share (`Arc`: a daemon's handle, an actor's private
//! copy, the store) are numbered per search: the packer keeps each
//! distinct part once, in a table, and a state holds its number. Parts
//! are told apart by value (their cached fingerprint finds the candidates,
//! `==` decides), so two equal parts get one number and unpacking gives
//! back an equal state. The holders, shared too, are written inline (a
//! search meets thousands of distinct lists; a table of them cost more
//! bytes per visited state than it saved), in the encoding their
//! fingerprint hashes, so unpacking hashes those bytes as they are
//! (`Part for Vec<Option<u64>>`). The plain fields are LEB128 varints: an
//! `Option<u64>` as 0 or `v + 1`, an enum as a tag byte and its value.
//! A six-actor state of the seed scenario packs into about 40 bytes
//! (650 with its heap parts when held as an `IpamState`).
//! `unpack_into` decodes into the sequential search's reused state: its
//! vectors are kept, a shared part it already points to is not touched
//! (no reference-count traffic), and its holders stay when the decoded
//! ones are equal, or are written in place when no other state shares
//! them; `unpack` is `unpack_into` an empty state (one decoder).
//!
//! What it does not do: the numbered parts stay in the tables until the
//! search ends (there are few: distinct bitmaps, not states).
//! This is netrace's own encoding; nothing upstream is modelled here.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::{Actor, Cached, Daemon, Faults, Handle, IpamState, Outcome};
use crate::explore::pack::{get_u8, get_varint, put_varint, Packer};
use crate::explore::FingerprintHasher;
use crate::ipam::bitseq::{Bitseq, Pos};
use crate::store::KvStore;

/// A table of distinct shared parts, numbered in the order first seen.
struct Parts<T> {
    all: Vec<Arc<Cached<T>>>,
    /// Cached fingerprint -> numbers of the parts with it (lookups only,
    /// never iterated).
    by_fp: HashMap<u128, Vec<u32>, BuildHasherDefault<FingerprintHasher>>,
}

impl<T: super::Part + PartialEq> Parts<T> {
    fn new() -> Parts<T> {
        Parts {
            all: Vec::new(),
            by_fp: HashMap::default(),
        }
    }

    /// The number of `part`, given one if it is new.
    fn number(&mut self, part: &Arc<Cached<T>>) -> u32 {
        let ids = self.by_fp.entry(part.fingerprint()).or_default();
        for &id in ids.iter() {
            let known = &self.all[id as usize];
            if Arc::ptr_eq(known, part) || **known == **part {
                return id;
            }
        }
        let id = self.all.len() as u32;
        ids.push(id);
        self.all.push(Arc::clone(part));
        id
    }

    fn get(&self, id: u64) -> Arc<Cached<T>> {
        Arc::clone(&self.all[id as usize])
    }

    /// `slot` made to point to part `id`, unless it already does (no
    /// reference-count traffic for a part the reused state holds).
    #[inline]
    fn set(&self, slot: &mut Arc<Cached<T>>, id: u64) {
        let part = &self.all[id as usize];
        if !Arc::ptr_eq(slot, part) {
            *slot = Arc::clone(part);
        }
    }

    /// [`Parts::set`] for an optional part (`None` for 0, part `v - 1`
    /// for `v`).
    #[inline]
    fn set_opt(&self, slot: &mut Option<Arc<Cached<T>>>, v: u64) {
        match (slot.as_mut(), v.checked_sub(1)) {
            (Some(slot), Some(id)) => self.set(slot, id),
            (_, id) => *slot = id.map(|id| self.get(id)),
        }
    }
}

/// The packer of one search.
pub(super) struct IpamPacker {
    handles: Parts<Handle>,
    stores: Parts<KvStore<Bitseq>>,
}

impl IpamPacker {
    pub(super) fn new() -> IpamPacker {
        IpamPacker {
            handles: Parts::new(),
            stores: Parts::new(),
        }
    }
}

#[inline]
fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    put_varint(out, v.map_or(0, |v| v + 1));
}

#[inline]
fn get_opt(bytes: &mut &[u8]) -> Option<u64> {
    get_varint(bytes).checked_sub(1)
}

#[inline]
fn put_lock(out: &mut Vec<u8>, lock: Option<u8>) {
    put_varint(out, lock.map_or(0, |a| u64::from(a) + 1));
}

#[inline]
fn get_lock(bytes: &mut &[u8]) -> Option<u8> {
    get_varint(bytes).checked_sub(1).map(|a| a as u8)
}

impl Packer<IpamState> for IpamPacker {
    fn pack(&mut self, state: &IpamState, out: &mut Vec<u8>) {
        // Every field named, so a field added to the state does not
        // compile until it is packed.
        let IpamState {
            daemons,
            store,
            actors,
            holders,
            records,
            faults_left,
        } = state;
        put_varint(out, daemons.len() as u64);
        for Daemon {
            handle,
            handle_lock,
            network_lock,
        } in daemons
        {
            put_varint(out, u64::from(self.handles.number(handle)));
            put_lock(out, *handle_lock);
            put_lock(out, *network_lock);
        }
        put_opt(
            out,
            store.as_ref().map(|s| u64::from(self.stores.number(s))),
        );
        out.extend_from_slice(&faults_left.budgets());
        put_varint(out, actors.len() as u64);
        for Actor {
            pc,
            ordinal,
            pos,
            copy,
            outcome,
        } in actors
        {
            out.push(*pc);
            put_opt(out, *ordinal);
            match pos {
                None => out.push(0),
                Some(Pos { byte, bit }) => {
                    out.push(1);
                    put_varint(out, *byte);
                    put_varint(out, *bit);
                }
            }
            put_opt(
                out,
                copy.as_ref().map(|c| u64::from(self.handles.number(c))),
            );
            let (tag, value) = outcome.tagged();
            out.push(tag);
            if let Some(v) = value {
                put_varint(out, v);
            }
        }
        // The holders inline, not numbered: a search meets thousands of
        // distinct lists, and a table of them would cost more bytes per
        // visited state than the frontier saves.
        put_varint(out, holders.len() as u64);
        for h in holders.iter() {
            put_opt(out, *h);
        }
        put_varint(out, records.len() as u64);
        for r in records {
            put_opt(out, *r);
        }
    }

    /// Decodes into the search's reused state: its vectors keep their
    /// allocations, a shared part it already points to stays (no
    /// reference-count traffic), and its holders stay when the decoded
    /// ones are equal (often: only commit, delete and crashes change
    /// them). The result equals [`IpamPacker::unpack`]'s.
    fn unpack_into(&self, input: &mut &[u8], out: &mut IpamState) {
        // Read through a local cursor, kept in registers, and advance
        // `input` once at the end (writing it back after every byte cost
        // two stores a read).
        let mut cursor = *input;
        let bytes = &mut cursor;
        let IpamState {
            daemons,
            store,
            actors,
            holders,
            records,
            faults_left,
        } = out;
        let n = get_varint(bytes) as usize;
        if daemons.len() != n {
            daemons.clear();
            daemons.reserve_exact(n);
            for _ in 0..n {
                daemons.push(Daemon {
                    handle: self.handles.get(0),
                    handle_lock: None,
                    network_lock: None,
                });
            }
        }
        for d in daemons.iter_mut() {
            self.handles.set(&mut d.handle, get_varint(bytes));
            d.handle_lock = get_lock(bytes);
            d.network_lock = get_lock(bytes);
        }
        let v = get_varint(bytes);
        self.stores.set_opt(store, v);
        *faults_left = Faults {
            store_timeouts: get_u8(bytes),
            lost_answers: get_u8(bytes),
            lost_requests: get_u8(bytes),
            crashes: get_u8(bytes),
        };
        let n = get_varint(bytes) as usize;
        if actors.len() != n {
            actors.clear();
            actors.resize_with(n, || Actor {
                pc: 0,
                ordinal: None,
                pos: None,
                copy: None,
                outcome: Outcome::Pending,
            });
        }
        for a in actors.iter_mut() {
            a.pc = get_u8(bytes);
            a.ordinal = get_opt(bytes);
            a.pos = (get_u8(bytes) == 1).then(|| Pos {
                byte: get_varint(bytes),
                bit: get_varint(bytes),
            });
            let v = get_varint(bytes);
            self.handles.set_opt(&mut a.copy, v);
            a.outcome = get_outcome(bytes);
        }
        // The holders: kept when equal to the decoded ones, else written
        // in place when no other state shares them, else a new part.
        let start = *bytes;
        let n = get_varint(bytes) as usize;
        let mut read = *bytes;
        if holders.len() == n && holders.iter().all(|h| *h == get_opt(&mut read)) {
            *bytes = read;
        } else {
            let mut fresh = Vec::new();
            let list = match Arc::get_mut(holders) {
                Some(own) => own.get_mut(),
                None => &mut fresh,
            };
            list.clear();
            list.reserve_exact(n);
            for _ in 0..n {
                list.push(get_opt(bytes));
            }
            // The holders' bytes are the encoding their fingerprint
            // hashes (`Part for Vec<Option<u64>>`): hash them as they are.
            let fingerprint = xxhash_rust::xxh3::xxh3_128(&start[..start.len() - bytes.len()]);
            match Arc::get_mut(holders) {
                Some(own) => own.set_fingerprint(fingerprint),
                None => *holders = Arc::new(Cached::with_fingerprint(fresh, fingerprint)),
            }
        }
        unpack_records(bytes, records);
        *input = cursor;
    }

    /// [`IpamPacker::unpack_into`] into an empty state: one decoder for
    /// both, so they cannot disagree.
    fn unpack(&self, bytes: &mut &[u8]) -> IpamState {
        let mut state = IpamState {
            daemons: Vec::new(),
            store: None,
            actors: Vec::new(),
            holders: Arc::new(Cached::new(Vec::new())),
            records: Vec::new(),
            faults_left: Faults::default(),
        };
        self.unpack_into(bytes, &mut state);
        state
    }
}

/// An actor's outcome as [`Outcome::tagged`] wrote it.
#[inline]
fn get_outcome(bytes: &mut &[u8]) -> Outcome {
    match get_u8(bytes) {
        0 => Outcome::Pending,
        1 => Outcome::Allocated(get_varint(bytes)),
        2 => Outcome::Released(get_varint(bytes)),
        3 => Outcome::NoAddress,
        4 => Outcome::StoreTimeout,
        5 => Outcome::Crashed,
        _ => Outcome::NameTaken,
    }
}

/// The endpoint records into `records` (its allocation kept).
#[inline]
fn unpack_records(bytes: &mut &[u8], records: &mut Vec<Option<u64>>) {
    let n = get_varint(bytes) as usize;
    records.clear();
    records.reserve_exact(n);
    for _ in 0..n {
        records.push(get_opt(bytes));
    }
}
