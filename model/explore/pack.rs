//! Compact storage for breadth-first search: frontier states packed into
//! byte strings, parent links of five bytes, and a visited table of
//! sixteen-byte entries.
//!
//! A breadth-first search holds, at its peak, every visited state's key
//! and parent link and every frontier state. Held as the model's own
//! `State` values, the frontier dominated (an IPAM state with six actors
//! is about 650 bytes with its heap parts). Here:
//!
//! - [`Packer`]: a model may encode a state as a byte string
//!   ([`crate::sim::Model::packer`]) and decode it when the search expands
//!   it; the encoding is the model's (for IPAM, varints of the plain
//!   fields and numbered shared parts, [`crate::ipam::system`]). Packing is
//!   exact: `unpack(pack(s)) == s`, so a search with packing visits the
//!   same states in the same order as one without.
//! - [`Frontier`]: one layer of a search as entries in chunks of
//!   [`CHUNK`] bytes (each entry the difference of its node index to the
//!   previous entry's as a varint, then the packed state), read in order
//!   and freed a chunk at a time; a model without a packer keeps plain
//!   states. The sequential search reads each entry into one state it
//!   reuses ([`Frontier::pop_into`], [`Packer::unpack_into`]) and packs
//!   its successors from a reused state too ([`Frontier::push_ref`]), so
//!   expanding a state need not allocate one.
//! - [`Links`]: the parent links, a `u32` parent and a `u8` choice per
//!   state (choices of 255 and more in a side table), in chunks, so the
//!   links never double their memory when they grow.
//! - [`Key`]: the visited set's key, 96 of the fingerprint's 128 bits in
//!   twelve bytes, so an entry with its `u32` value is sixteen bytes (a
//!   `(u128, u32)` entry is 32: `u128` is 16-byte aligned). Two distinct
//!   states share a key with probability about n²/2⁹⁷ over n states,
//!   below 10⁻¹¹ for 10⁹ states; a shared key merges two states (an
//!   unexplored state, never a false violation).
//!
//! The parallel breadth-first search ([`super::bfs_parallel`]) uses
//! [`Packer`], [`Links`] and [`Key`] too, with its own blocks of packed
//! states and a packer per worker (hence `Packer: Send + Sync`).
//!
//! What this does not do: the depth-first search keeps plain states on
//! its stack; the visited set still has the hash table's spare room (up
//! to half of it just after it doubles).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::Fingerprint;

/// Encodes and decodes a model's states (see the module docs). A packer
/// is made per search and may number the parts states share (a bitmap
/// held by many states is stored once, its number in each state).
/// `Send + Sync`: the parallel search gives each worker a packer to pack
/// with and lets every worker unpack with any of them.
pub trait Packer<S>: Send + Sync {
    /// Appends the encoding of `state` to `out`.
    fn pack(&mut self, state: &S, out: &mut Vec<u8>);
    /// Decodes one state from the front of `bytes` and advances past it.
    fn unpack(&self, bytes: &mut &[u8]) -> S;
    /// [`Packer::unpack`] into `out`, whatever `out` held: the sequential
    /// search decodes every state it expands into one reused state, so a
    /// packer may reuse `out`'s allocations and the shared parts it
    /// already holds. By default `*out = unpack(bytes)`.
    fn unpack_into(&self, bytes: &mut &[u8], out: &mut S) {
        *out = self.unpack(bytes);
    }
}

/// Appends `v` as a LEB128 varint (7 bits a byte, low bits first).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint written by [`put_varint`] and advances past it.
#[inline]
pub fn get_varint(bytes: &mut &[u8]) -> u64 {
    let b = bytes[0];
    if b < 0x80 {
        *bytes = &bytes[1..];
        return u64::from(b);
    }
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[0];
        *bytes = &bytes[1..];
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// Reads one byte and advances past it.
#[inline]
pub fn get_u8(bytes: &mut &[u8]) -> u8 {
    let b = bytes[0];
    *bytes = &bytes[1..];
    b
}

/// Bytes per frontier chunk.
pub const CHUNK: usize = 64 * 1024;

/// Parent links per chunk of [`Links`].
const LINK_CHUNK: usize = 64 * 1024;

/// One layer of a breadth-first search: (state, node index) entries in
/// the order they were pushed.
pub struct Frontier<S> {
    packed: bool,
    /// Packed entries: full chunks, the one being read first.
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// How far the front chunk has been read.
    read: usize,
    /// The node index of the last entry pushed and of the last popped.
    last_pushed: u32,
    last_popped: u32,
    /// Plain entries (a model without a packer).
    plain: std::collections::VecDeque<(S, u32)>,
    len: usize,
    scratch: Vec<u8>,
}

impl<S> Frontier<S> {
    /// An empty layer; `packed` when the search has a packer.
    pub fn new(packed: bool) -> Frontier<S> {
        Frontier {
            packed,
            chunks: std::collections::VecDeque::new(),
            read: 0,
            last_pushed: 0,
            last_popped: 0,
            plain: std::collections::VecDeque::new(),
            len: 0,
            scratch: Vec::new(),
        }
    }

    /// Entries not popped yet.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when every entry was popped.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends an entry. Node indices of a layer's entries increase.
    pub fn push<'p>(&mut self, packer: Option<&mut (dyn Packer<S> + 'p)>, state: S, at: u32) {
        match packer.filter(|_| self.packed) {
            Some(packer) => self.push_packed(packer, &state, at),
            None => {
                self.len += 1;
                self.plain.push_back((state, at));
            }
        }
    }

    /// Packs `state` into the last chunk (a new one when it does not fit).
    fn push_packed(&mut self, packer: &mut dyn Packer<S>, state: &S, at: u32) {
        self.len += 1;
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        put_varint(&mut buf, u64::from(at - self.last_pushed));
        self.last_pushed = at;
        packer.pack(state, &mut buf);
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.len() + buf.len() <= c.capacity());
        if !fits {
            self.chunks
                .push_back(Vec::with_capacity(CHUNK.max(buf.len())));
        }
        self.chunks
            .back_mut()
            .expect("a chunk was just made")
            .extend_from_slice(&buf);
        self.scratch = buf;
    }

    /// Appends an entry by reference ([`Frontier::push`] without taking
    /// the state: a packed frontier only reads it, a plain one clones it).
    pub fn push_ref<'p>(&mut self, packer: Option<&mut (dyn Packer<S> + 'p)>, state: &S, at: u32)
    where
        S: Clone,
    {
        match packer.filter(|_| self.packed) {
            Some(packer) => self.push_packed(packer, state, at),
            None => {
                self.len += 1;
                self.plain.push_back((state.clone(), at));
            }
        }
    }

    /// Takes the first entry into `out` ([`Packer::unpack_into`], so the
    /// caller's state is reused) and returns its node index; a chunk read
    /// to its end is freed.
    pub fn pop_into<'p>(
        &mut self,
        packer: Option<&(dyn Packer<S> + 'p)>,
        out: &mut S,
    ) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        match packer.filter(|_| self.packed) {
            Some(packer) => Some(self.pop_packed(|bytes| packer.unpack_into(bytes, out))),
            None => {
                let (state, at) = self.plain.pop_front().expect("an entry is left");
                *out = state;
                Some(at)
            }
        }
    }

    /// Takes the first entry; a chunk read to its end is freed.
    pub fn pop<'p>(&mut self, packer: Option<&(dyn Packer<S> + 'p)>) -> Option<(S, u32)> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let Some(packer) = packer.filter(|_| self.packed) else {
            return self.plain.pop_front();
        };
        let mut state = None;
        let at = self.pop_packed(|bytes| state = Some(packer.unpack(bytes)));
        Some((state.expect("unpacked"), at))
    }

    /// Reads the first packed entry (its length already taken off
    /// `self.len`): its node index, and its state through `unpack`.
    #[inline]
    fn pop_packed(&mut self, unpack: impl FnOnce(&mut &[u8])) -> u32 {
        if self.chunks.front().is_some_and(|c| self.read == c.len()) {
            self.chunks.pop_front();
            self.read = 0;
        }
        let chunk = self.chunks.front().expect("an entry is left");
        let mut bytes = &chunk[self.read..];
        let before = bytes.len();
        let at = self.last_popped + get_varint(&mut bytes) as u32;
        self.last_popped = at;
        unpack(&mut bytes);
        self.read += before - bytes.len();
        if self.len == 0 {
            // Empty again: the next layer's entries start afresh.
            self.chunks.clear();
            self.read = 0;
            self.last_pushed = 0;
            self.last_popped = 0;
        }
        at
    }

    /// Heap bytes held (an estimate for runs without a counting
    /// allocator), with `state_bytes` the size of a plain entry.
    pub fn capacity_bytes(&self, state_bytes: u64) -> u64 {
        self.chunks.iter().map(|c| c.capacity() as u64).sum::<u64>()
            + self.plain.capacity() as u64 * state_bytes
    }
}

/// The parent links of a breadth-first search: node `i` was reached from
/// node `parent(i)` by choice `choice(i)`; node 0 is the initial state.
#[derive(Default)]
pub struct Links {
    parents: Vec<Vec<u32>>,
    choices: Vec<Vec<u8>>,
    /// Choices of 255 and more, by node.
    wide: BTreeMap<u32, u32>,
    len: usize,
}

impl Links {
    /// Links with the initial state's (which has no parent).
    pub fn new() -> Links {
        let mut l = Links::default();
        l.push(u32::MAX, 0);
        l
    }

    /// Nodes so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no node (never, after [`Links::new`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a node reached from `parent` by `choice`.
    pub fn push(&mut self, parent: u32, choice: u32) {
        if self.len.is_multiple_of(LINK_CHUNK) {
            self.parents.push(Vec::with_capacity(LINK_CHUNK));
            self.choices.push(Vec::with_capacity(LINK_CHUNK));
        }
        let (p, c) = (
            self.parents.last_mut().expect("a chunk"),
            self.choices.last_mut().expect("a chunk"),
        );
        p.push(parent);
        if choice >= 255 {
            c.push(255);
            self.wide.insert(self.len as u32, choice);
        } else {
            c.push(choice as u8);
        }
        self.len += 1;
    }

    /// Drops the nodes from `len` on.
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            let (p, c) = (
                self.parents.last_mut().expect("a chunk"),
                self.choices.last_mut().expect("a chunk"),
            );
            p.pop();
            c.pop();
            self.len -= 1;
            if p.is_empty() {
                self.parents.pop();
                self.choices.pop();
            }
        }
        self.wide.split_off(&(len as u32));
    }

    /// Node `i`'s (parent, choice).
    pub fn get(&self, i: u32) -> (u32, u32) {
        let (k, j) = (i as usize / LINK_CHUNK, i as usize % LINK_CHUNK);
        let choice = match self.choices[k][j] {
            255 => self.wide[&i],
            c => u32::from(c),
        };
        (self.parents[k][j], choice)
    }

    /// The choices from the initial state to node `at`.
    pub fn path_to(&self, mut at: u32) -> Vec<u32> {
        let mut path = Vec::new();
        while at != 0 {
            let (parent, choice) = self.get(at);
            path.push(choice);
            at = parent;
        }
        path.reverse();
        path
    }

    /// Heap bytes the links take (an estimate for runs without a counting
    /// allocator).
    pub fn capacity_bytes(&self) -> u64 {
        self.parents.len() as u64 * LINK_CHUNK as u64 * 5 + self.wide.len() as u64 * 32
    }
}

/// The visited set's key: 96 bits of a fingerprint (see the module docs),
/// 4-byte aligned, so that with a `u32` value an entry takes 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key([u32; 3]);

impl Key {
    /// The key of a fingerprint: its low 96 bits.
    pub fn of(fp: Fingerprint) -> Key {
        Key([fp as u32, (fp >> 32) as u32, (fp >> 64) as u32])
    }
}

impl Hash for Key {
    /// The low 64 bits, in one write (the tables' hasher,
    /// `FingerprintHasher`, takes a `u64` as it is).
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.0[0]) | (u64::from(self.0[1]) << 32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let values = [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut out = Vec::new();
        for v in values {
            put_varint(&mut out, v);
        }
        let mut bytes = &out[..];
        for v in values {
            assert_eq!(get_varint(&mut bytes), v);
        }
        assert!(bytes.is_empty());
        assert_eq!(out.len(), 1 + 1 + 1 + 2 + 2 + 2 + 3 + 5 + 10);
    }

    #[test]
    fn links_keep_wide_choices_and_truncate() {
        let mut l = Links::new();
        for i in 1..(LINK_CHUNK as u32 + 10) {
            l.push(i - 1, i % 300);
        }
        assert_eq!(l.get(299), (298, 299));
        assert_eq!(
            l.get(LINK_CHUNK as u32 + 5),
            (LINK_CHUNK as u32 + 4, (LINK_CHUNK as u32 + 5) % 300)
        );
        assert_eq!(l.path_to(3), vec![1, 2, 3]);
        l.truncate(LINK_CHUNK);
        assert_eq!(l.len(), LINK_CHUNK);
        assert_eq!(l.parents.len(), 1);
        assert!(l.wide.keys().all(|&k| (k as usize) < LINK_CHUNK));
        assert_eq!(l.get(555), (554, 555 % 300));
    }

    #[test]
    fn keys_differ_in_the_kept_bits_only() {
        let a: Fingerprint = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;
        assert_eq!(Key::of(a), Key::of(a ^ (1 << 100)));
        assert_ne!(Key::of(a), Key::of(a ^ (1 << 95)));
        assert_ne!(Key::of(a), Key::of(a ^ 1));
    }
}
