//! A faithful model of libnetwork's `bitseq` run-length bitmap.
//!
//! Upstream: `github.com/docker/libnetwork/bitseq/sequence.go` (Apache-2.0),
//! moved in 2023 to `github.com/moby/moby/libnetwork/bitmap/sequence.go`.
//! This is an independent Rust rewrite from the documented and observed
//! behaviour; no upstream code is copied. The recorded vectors in
//! `tests/data/*.jsonl` (produced by the unmodified Go package) prove it:
//! `tests/vectors.rs` replays every operation and compares every field.
//!
//! What is modelled, function by function:
//! - the representation: a list of `sequence{block u32, count u64}`, each
//!   standing for `count` consecutive equal 32-bit blocks; ordinal `i` is bit
//!   `i % 32` of block `i / 32`, counted from the most significant bit
//!   ([`Bitseq::new`] = `NewHandle`/`bitmap.New`);
//! - `findSequence`, `getAvailableBit`, `getFirstAvailable`,
//!   `getAvailableFromCurrent`, `checkIfAvailable`, `pushReservation`
//!   (with `removeCurrentIfEmpty` and `mergeSequences`), in two versions
//!   ([`Version`]): the 17.05 search with its offset bugs (fixed upstream by
//!   #1799 and #2105) and the 2023 search;
//! - the redundant-request behaviour: when `pushReservation` finds the bit
//!   already in the wanted state it leaves the list alone, but the caller
//!   still adjusts `unselected` and returns the ordinal;
//! - serial allocation (`Handle.curr`, #1788): search from the ordinal after
//!   the last one handed out, wrapping to the start of the range;
//! - libnetwork's print format: `(0xc0000000, 1)->(0x0, 2046)->end`.
//!
//! What is not modelled here: locking, the store and the retry loop of
//! `Handle.set`. Those are separate phases in [`crate::ipam::system`], which
//! calls the pieces below ([`Bitseq::find`], [`Bitseq::push_reservation`])
//! one phase at a time. The list is a `Vec` rather than a linked list; every
//! list surgery of `pushReservation` maps one-to-one onto `Vec` operations.

use std::fmt;

/// Bits per block (`blockLen`).
pub const BLOCK_LEN: u32 = 32;
/// Bytes per block (`blockBytes`).
const BLOCK_BYTES: u64 = (BLOCK_LEN / 8) as u64;
/// A full block (`blockMAX`).
const BLOCK_MAX: u32 = u32::MAX;
/// The most significant bit of a block (`blockFirstBit`).
const BLOCK_FIRST_BIT: u32 = 1 << (BLOCK_LEN - 1);

/// Which upstream code the search functions follow.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Version {
    /// libnetwork branch `17.05.x` (commit 5d4e5de2): `getAvailableBit` may
    /// return the position just past a full tail of its block, and
    /// `getFirstAvailable` adds a whole sequence's length to an offset that
    /// already counted the blocks before the start. Both can hand out an
    /// ordinal that is already set.
    V17_05,
    /// libnetwork `master` as of 2023 (commit 3797618f), after #1799 and
    /// #2105: the search never returns a set bit.
    V2023,
}

impl Version {
    /// The name used on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Version::V17_05 => "17.05",
            Version::V2023 => "2023",
        }
    }

    /// Parses `17.05` or `2023` (also `head`, the vectors' label for 2023).
    pub fn parse(text: &str) -> Option<Version> {
        match text {
            "17.05" => Some(Version::V17_05),
            "2023" | "head" => Some(Version::V2023),
            _ => None,
        }
    }
}

/// One run of equal blocks (`sequence`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Sequence {
    /// The 32-bit block, MSB = lowest ordinal.
    pub block: u32,
    /// How many consecutive blocks equal `block`.
    pub count: u64,
}

/// Errors with libnetwork's exact texts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BitseqError {
    /// `ErrNoBitAvailable`.
    NoBitAvailable,
    /// `ErrBitAllocated`.
    BitAllocated,
    /// `validateOrdinal`: the ordinal is not below `bits`.
    OutOfSequence,
    /// `SetAnyInRange` with `end < start` or `end >= bits`.
    InvalidRange {
        /// The asked start.
        start: u64,
        /// The asked end (inclusive).
        end: u64,
        /// The text differs between versions (`]` in 17.05, `)` in 2023).
        version: Version,
    },
}

impl fmt::Display for BitseqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitseqError::NoBitAvailable => f.write_str("no bit available"),
            BitseqError::BitAllocated => f.write_str("requested bit is already allocated"),
            BitseqError::OutOfSequence => f.write_str("bit does not belong to the sequence"),
            BitseqError::InvalidRange {
                start,
                end,
                version: Version::V17_05,
            } => write!(f, "invalid bit range [{start}, {end}]"),
            BitseqError::InvalidRange {
                start,
                end,
                version: Version::V2023,
            } => write!(f, "invalid bit range [{start}, {end})"),
        }
    }
}

impl std::error::Error for BitseqError {}

/// A byte/bit position as libnetwork passes it around (`bytePos`, `bitPos`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    /// Byte index from the start of the bitmap.
    pub byte: u64,
    /// Bit index within that byte, from the most significant bit.
    pub bit: u64,
}

impl Pos {
    /// `ordinalToPos`.
    pub fn from_ordinal(ordinal: u64) -> Pos {
        Pos {
            byte: ordinal / 8,
            bit: ordinal % 8,
        }
    }

    /// `posToOrdinal`, with Go's wrapping unsigned arithmetic.
    pub fn ordinal(self) -> u64 {
        self.byte.wrapping_mul(8).wrapping_add(self.bit)
    }
}

/// What a caller of `Handle.set` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Request {
    /// `SetAny` / `SetAnyInRange`: the first free ordinal in `[start, end]`.
    Any {
        /// First ordinal of the range.
        start: u64,
        /// Last ordinal of the range (inclusive).
        end: u64,
        /// Serial mode: start from `curr` and wrap.
        serial: bool,
    },
    /// `Set(ordinal)`.
    Set(u64),
    /// `Unset(ordinal)`.
    Unset(u64),
}

impl Request {
    /// True for `Unset`.
    pub fn is_release(self) -> bool {
        matches!(self, Request::Unset(_))
    }
}

/// The bitmap: `bitseq.Handle` without its lock and store, or `bitmap.Bitmap`.
/// Serialised (serde) as the value a real store holds for it: the etcd
/// oracle's protocol runs (tests/etcd_protocol.rs) keep it in etcd as JSON.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Bitseq {
    version: Version,
    bits: u64,
    unselected: u64,
    curr: u64,
    head: Vec<Sequence>,
}

impl Bitseq {
    /// `NewHandle(app, nil, id, bits)`: all `bits` ordinals free.
    pub fn new(bits: u64, version: Version) -> Bitseq {
        Bitseq {
            version,
            bits,
            unselected: bits,
            curr: 0,
            head: vec![Sequence {
                block: 0,
                count: num_blocks(bits),
            }],
        }
    }

    /// Every field as a number, in declaration order, to `out`: the
    /// version's index, `bits`, `unselected`, `curr`, the number of
    /// sequences, then each sequence's block and count. One-to-one with
    /// the value (the list's length comes before it), so the IPAM
    /// model's fingerprint of a handle can hash these numbers as varints
    /// instead of the derived `Hash`'s fixed-width writes.
    pub(crate) fn each_number(&self, mut out: impl FnMut(u64)) {
        let Bitseq {
            version,
            bits,
            unselected,
            curr,
            head,
        } = self;
        out(match version {
            Version::V17_05 => 0,
            Version::V2023 => 1,
        });
        out(*bits);
        out(*unselected);
        out(*curr);
        out(head.len() as u64);
        for Sequence { block, count } in head {
            out(u64::from(*block));
            out(*count);
        }
    }

    /// Which search code this bitmap runs.
    pub fn version(&self) -> Version {
        self.version
    }

    /// `Bits()`.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// `Unselected()`: the free counter as the handle keeps it (it can drift
    /// from the real number of free bits: see [`Bitseq::free_bits`]).
    pub fn unselected(&self) -> u64 {
        self.unselected
    }

    /// The serial cursor `curr`.
    pub fn curr(&self) -> u64 {
        self.curr
    }

    /// The run-length list.
    pub fn sequences(&self) -> &[Sequence] {
        &self.head
    }

    /// The number of clear bits among ordinals `0..bits`, counted from the
    /// list itself (what `unselected` should be).
    pub fn free_bits(&self) -> u64 {
        let len = u64::from(BLOCK_LEN);
        let whole_blocks = self.bits / len; // blocks entirely below `bits`
        let tail = (self.bits % len) as u32; // valid bits of a partial last block
        let mut free = 0;
        let mut first = 0u64; // index of the sequence's first block
        for seq in &self.head {
            let end = first + seq.count;
            let whole = end.min(whole_blocks).saturating_sub(first);
            free += whole * u64::from((!seq.block).count_ones());
            if tail > 0 && first <= whole_blocks && whole_blocks < end {
                let mask = !(u32::MAX >> tail);
                free += u64::from((!seq.block & mask).count_ones());
            }
            first = end;
        }
        free
    }

    /// `IsSet(ordinal)` (`checkIfAvailable` failing means set).
    pub fn is_set(&self, ordinal: u64) -> bool {
        if ordinal >= self.bits {
            return false;
        }
        self.check_if_available(ordinal).is_err()
    }

    /// The ordinals in `0..bits` whose bit is set, in increasing order.
    pub fn set_ordinals(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut base = 0u64;
        for seq in &self.head {
            if seq.block != 0 {
                for b in 0..seq.count {
                    for i in 0..BLOCK_LEN {
                        let ord = base + b * u64::from(BLOCK_LEN) + u64::from(i);
                        if ord < self.bits && seq.block & (BLOCK_FIRST_BIT >> i) != 0 {
                            out.push(ord);
                        }
                    }
                }
            }
            base += seq.count * u64::from(BLOCK_LEN);
        }
        out
    }

    /// `SetAny(serial)`.
    pub fn set_any(&mut self, serial: bool) -> Result<u64, BitseqError> {
        if self.unselected == 0 {
            return Err(BitseqError::NoBitAvailable);
        }
        let end = self.bits.wrapping_sub(1);
        self.apply(Request::Any {
            start: 0,
            end,
            serial,
        })
    }

    /// `SetAnyInRange(start, end, serial)`, `end` inclusive.
    pub fn set_any_in_range(
        &mut self,
        start: u64,
        end: u64,
        serial: bool,
    ) -> Result<u64, BitseqError> {
        if end < start || end >= self.bits {
            return Err(BitseqError::InvalidRange {
                start,
                end,
                version: self.version,
            });
        }
        if self.unselected == 0 {
            return Err(BitseqError::NoBitAvailable);
        }
        self.apply(Request::Any { start, end, serial })
    }

    /// `Set(ordinal)`.
    pub fn set(&mut self, ordinal: u64) -> Result<(), BitseqError> {
        self.validate_ordinal(ordinal)?;
        self.apply(Request::Set(ordinal)).map(|_| ())
    }

    /// `Unset(ordinal)`.
    pub fn unset(&mut self, ordinal: u64) -> Result<(), BitseqError> {
        self.validate_ordinal(ordinal)?;
        self.apply(Request::Unset(ordinal)).map(|_| ())
    }

    /// `validateOrdinal`.
    pub fn validate_ordinal(&self, ordinal: u64) -> Result<(), BitseqError> {
        if ordinal >= self.bits {
            Err(BitseqError::OutOfSequence)
        } else {
            Ok(())
        }
    }

    /// `Handle.set` with no store and no concurrency: find, then reserve.
    pub fn apply(&mut self, request: Request) -> Result<u64, BitseqError> {
        let (ordinal, pos) = self.find(request)?;
        self.push_reservation(pos, request.is_release());
        Ok(ordinal)
    }

    /// The compute phase of `Handle.set` (step 3 of the protocol): locate
    /// the position to change, and for `Any` requests advance `curr`.
    ///
    /// Returns the ordinal the caller will be given and the position
    /// `pushReservation` will change. For the 17.05 search the ordinal may
    /// already be set (the search bugs).
    pub fn find(&mut self, request: Request) -> Result<(u64, Pos), BitseqError> {
        match request {
            Request::Unset(ordinal) => Ok((ordinal, Pos::from_ordinal(ordinal))),
            Request::Set(ordinal) => Ok((ordinal, self.check_if_available(ordinal)?)),
            Request::Any { start, end, serial } => {
                let curr = if serial { self.curr } else { 0 };
                let pos = self.get_available_from_current(start, curr, end)?;
                let ordinal = pos.ordinal();
                self.curr = ordinal.wrapping_add(1);
                Ok((ordinal, pos))
            }
        }
    }

    /// Sets the serial cursor (used when a copy's cursor is written back).
    pub fn set_curr(&mut self, curr: u64) {
        self.curr = curr;
    }

    /// The modify phase of `Handle.set` (step 4): `pushReservation` on this
    /// (copied) list, then `unselected` adjusted by one whether or not the
    /// list changed (the redundant-request behaviour).
    ///
    /// Returns false when the request was redundant (the bit was already in
    /// the wanted state and the list was left as it was).
    pub fn push_reservation(&mut self, pos: Pos, release: bool) -> bool {
        let changed = push_reservation(&mut self.head, pos, release);
        if release {
            self.unselected = self.unselected.wrapping_add(1);
        } else {
            self.unselected = self.unselected.wrapping_sub(1);
        }
        changed
    }

    /// Replaces list and counter with another handle's (the commit phase,
    /// and `GetObject` refreshing a handle from the store). `curr` and the
    /// version stay: upstream neither stores nor commits the serial cursor.
    pub fn overwrite_from(&mut self, other: &Bitseq) {
        self.head.clone_from(&other.head);
        self.unselected = other.unselected;
        self.bits = other.bits;
    }

    /// `checkIfAvailable`.
    fn check_if_available(&self, ordinal: u64) -> Result<Pos, BitseqError> {
        let pos = Pos::from_ordinal(ordinal);
        if let Some(found) = find_sequence(&self.head, pos.byte) {
            let sel = shr(BLOCK_FIRST_BIT, found.in_block_byte_pos * 8 + pos.bit);
            if self.head[found.current].block & sel == 0 {
                return Ok(pos);
            }
        }
        Err(BitseqError::BitAllocated)
    }

    /// `getAvailableFromCurrent`: serial search from `curr`, then from
    /// `start`; anything past `end` is "no bit available".
    fn get_available_from_current(
        &self,
        start: u64,
        curr: u64,
        end: u64,
    ) -> Result<Pos, BitseqError> {
        if curr != 0 && curr > start {
            if let Ok(pos) = self.get_first_available(curr) {
                if pos.ordinal() <= end {
                    return Ok(pos);
                }
            }
        }
        match self.get_first_available(start) {
            Ok(pos) if pos.ordinal() <= end => Ok(pos),
            _ => Err(BitseqError::NoBitAvailable),
        }
    }

    /// `getFirstAvailable`, in the version this bitmap runs.
    fn get_first_available(&self, start: u64) -> Result<Pos, BitseqError> {
        match self.version {
            Version::V17_05 => get_first_available_17_05(&self.head, start),
            Version::V2023 => get_first_available_2023(&self.head, start),
        }
    }

    /// libnetwork's `sequence.toString()`.
    pub fn sequence_string(&self) -> String {
        format_sequences(&self.head)
    }

    /// A compact form for traces: the list without the `->end`.
    pub fn compact_string(&self) -> String {
        let parts: Vec<String> = self
            .head
            .iter()
            .map(|s| format!("(0x{:x},{})", s.block, s.count))
            .collect();
        parts.join("->")
    }

    /// Builds a bitmap directly from a list (for tests and stored values).
    pub fn from_parts(
        version: Version,
        bits: u64,
        unselected: u64,
        curr: u64,
        head: Vec<Sequence>,
    ) -> Bitseq {
        assert!(!head.is_empty(), "a bitseq list always has a head");
        Bitseq {
            version,
            bits,
            unselected,
            curr,
            head,
        }
    }
}

/// libnetwork's print format of a run-length list (`sequence.toString()`):
/// `(0xc0000000, 1)->(0x0, 2046)->end`.
pub fn format_sequences(head: &[Sequence]) -> String {
    let mut out = String::new();
    for seq in head {
        out.push_str(&format!("(0x{:x}, {})->", seq.block, seq.count));
    }
    out.push_str("end");
    out
}

/// `getNumBlocks`.
fn num_blocks(bits: u64) -> u64 {
    bits.div_ceil(u64::from(BLOCK_LEN))
}

/// Go's `x >> n` on `uint32`: zero once `n` reaches the width.
fn shr(x: u32, n: u64) -> u32 {
    if n >= u64::from(BLOCK_LEN) {
        0
    } else {
        x >> n
    }
}

/// What `findSequence` returns when the byte is inside the list.
struct Found {
    current: usize,
    previous: usize,
    prec_blocks: u64,
    in_block_byte_pos: u64,
}

/// `findSequence`: the sequence holding byte `byte_pos`, its predecessor,
/// how many blocks of the sequence come before the byte's block, and the
/// byte's index within its block. `None` when the byte is past the list.
fn find_sequence(head: &[Sequence], byte_pos: u64) -> Option<Found> {
    let mut previous = 0;
    let mut current = 0;
    let mut n = byte_pos;
    while current + 1 < head.len() && n >= head[current].count.wrapping_mul(BLOCK_BYTES) {
        n -= head[current].count * BLOCK_BYTES;
        previous = current;
        current += 1;
    }
    if n >= head[current].count.wrapping_mul(BLOCK_BYTES) {
        return None;
    }
    Some(Found {
        current,
        previous,
        prec_blocks: n / BLOCK_BYTES,
        in_block_byte_pos: byte_pos % BLOCK_BYTES,
    })
}

/// `sequence.getAvailableBit(from)`: the first clear bit of the block at or
/// after bit `from`. The 17.05 version does not notice when it runs off the
/// end of the block and returns the position just after it.
fn get_available_bit(seq: Sequence, from: u64, version: Version) -> Result<Pos, BitseqError> {
    if seq.block == BLOCK_MAX || seq.count == 0 {
        return Err(BitseqError::NoBitAvailable);
    }
    let mut bits = from;
    let mut sel = shr(BLOCK_FIRST_BIT, from);
    while sel > 0 && seq.block & sel != 0 {
        sel >>= 1;
        bits += 1;
    }
    if version == Version::V2023 && sel == 0 {
        return Err(BitseqError::NoBitAvailable);
    }
    Ok(Pos {
        byte: bits / 8,
        bit: bits % 8,
    })
}

/// `getFirstAvailable` as of 17.05: when the start falls inside a run of
/// full blocks, moving past that run adds the whole run's length to an
/// offset that already counts the blocks before the start (#1799).
fn get_first_available_17_05(head: &[Sequence], start: u64) -> Result<Pos, BitseqError> {
    let begin = Pos::from_ordinal(start);
    let Some(found) = find_sequence(head, begin.byte) else {
        return Err(BitseqError::NoBitAvailable);
    };
    let mut byte_offset = begin.byte - found.in_block_byte_pos;
    let mut bit_offset = found.in_block_byte_pos * 8 + begin.bit;
    for seq in &head[found.current..] {
        if seq.block != BLOCK_MAX {
            let pos = get_available_bit(*seq, bit_offset, Version::V17_05)?;
            return Ok(Pos {
                byte: byte_offset.wrapping_add(pos.byte),
                bit: pos.bit,
            });
        }
        bit_offset = 0;
        byte_offset += seq.count * BLOCK_BYTES;
    }
    Err(BitseqError::NoBitAvailable)
}

/// `getFirstAvailable` as of 2023: a block with no clear bit after the start
/// moves on to the next block of the same run, and offsets account for the
/// blocks before the start (#2105).
fn get_first_available_2023(head: &[Sequence], start: u64) -> Result<Pos, BitseqError> {
    let begin = Pos::from_ordinal(start);
    let Some(found) = find_sequence(head, begin.byte) else {
        return Err(BitseqError::NoBitAvailable);
    };
    let mut prec_blocks = found.prec_blocks;
    let mut byte_offset = begin.byte - found.in_block_byte_pos;
    let mut bit_offset = found.in_block_byte_pos * 8 + begin.bit;
    for seq in &head[found.current..] {
        if seq.block != BLOCK_MAX {
            loop {
                match get_available_bit(*seq, bit_offset, Version::V2023) {
                    Ok(pos) => {
                        return Ok(Pos {
                            byte: byte_offset + pos.byte,
                            bit: pos.bit,
                        })
                    }
                    Err(_) if prec_blocks == seq.count.wrapping_sub(1) => break,
                    Err(_) => {
                        bit_offset = 0;
                        byte_offset += BLOCK_BYTES;
                        prec_blocks += 1;
                    }
                }
            }
        }
        bit_offset = 0;
        byte_offset += seq.count * BLOCK_BYTES - prec_blocks * BLOCK_BYTES;
        prec_blocks = 0;
    }
    Err(BitseqError::NoBitAvailable)
}

/// `pushReservation`: flip one bit by splitting its block out of its run
/// (cases A, B and C of the upstream comment), then drop an emptied run and
/// merge equal neighbours. Returns false for a redundant request (the bit
/// was already in the wanted state; the list is left untouched).
fn push_reservation(head: &mut Vec<Sequence>, pos: Pos, release: bool) -> bool {
    let Some(found) = find_sequence(head, pos.byte) else {
        return false;
    };
    let current = found.current;
    let sel = shr(BLOCK_FIRST_BIT, found.in_block_byte_pos * 8 + pos.bit);
    let old_block = head[current].block;
    let new_block = if release {
        old_block & !sel
    } else {
        old_block | sel
    };
    if new_block == old_block {
        return false;
    }
    head[current].count -= 1;
    let new_seq = Sequence {
        block: new_block,
        count: 1,
    };
    if found.prec_blocks == 0 {
        // (A) first block of its run: [prev] [new] [current-1] [next]
        head.insert(current, new_seq);
        let previous = if current == 0 { 0 } else { found.previous };
        if head[current + 1].count == 0 {
            head.remove(current + 1);
        }
        merge_sequences(head, previous);
    } else if found.prec_blocks == head[current].count {
        // (B) last block of its run: [prev] [current-1] [new] [next]
        head.insert(current + 1, new_seq);
        merge_sequences(head, current);
    } else {
        // (C) in the middle: [prev] [pre] [new] [post] [next]; no merging.
        let pre = Sequence {
            block: old_block,
            count: found.prec_blocks,
        };
        head[current].count -= found.prec_blocks;
        head.insert(current, new_seq);
        head.insert(current, pre);
    }
    true
}

/// `mergeSequences`: from `from` to the end of the list, fold every run into
/// its predecessor when their blocks are equal.
fn merge_sequences(head: &mut Vec<Sequence>, from: usize) {
    let mut i = from;
    while i < head.len() {
        while i + 1 < head.len() && head[i].block == head[i + 1].block {
            head[i].count += head[i + 1].count;
            head.remove(i + 1);
        }
        i += 1;
    }
}

impl fmt::Display for Bitseq {
    /// Like libnetwork's `Handle.String()` without the app/id fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bits: {}, unselected: {}, sequence: {}",
            self.bits,
            self.unselected,
            self.sequence_string()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_slash16_with_gateway_prints_like_libnetwork() {
        let mut h = Bitseq::new(65536, Version::V17_05);
        h.set(0).unwrap();
        h.set(65535).unwrap();
        h.set(1).unwrap();
        assert_eq!(
            h.sequence_string(),
            "(0xc0000000, 1)->(0x0, 2046)->(0x1, 1)->end"
        );
        assert_eq!(h.unselected(), 65533);
        assert_eq!(h.free_bits(), 65533);
    }

    #[test]
    fn first_fit_reuses_the_lowest_released_ordinal() {
        for version in [Version::V17_05, Version::V2023] {
            let mut h = Bitseq::new(256, version);
            for want in 0..20 {
                assert_eq!(h.set_any(false), Ok(want));
            }
            h.unset(16).unwrap();
            h.unset(17).unwrap();
            assert_eq!(h.set_any(false), Ok(16));
            assert_eq!(h.set_any(false), Ok(17));
            assert_eq!(h.set_any(false), Ok(20));
        }
    }

    #[test]
    fn serial_does_not_reuse_at_once_and_wraps() {
        let mut h = Bitseq::new(64, Version::V2023);
        for want in 0..10 {
            assert_eq!(h.set_any(true), Ok(want));
        }
        h.unset(3).unwrap();
        assert_eq!(h.set_any(true), Ok(10));
        h.set_any_in_range(11, 63, true).unwrap();
        // Fill to the end, then the cursor wraps to the released 3.
        while h.curr() < 64 {
            h.set_any(true).unwrap();
        }
        assert_eq!(h.set_any(true), Ok(3));
    }

    #[test]
    fn unset_of_a_free_bit_still_counts() {
        let mut h = Bitseq::new(32, Version::V2023);
        h.unset(5).unwrap();
        assert_eq!(h.unselected(), 33);
        assert_eq!(h.free_bits(), 32);
    }

    #[test]
    fn free_bits_ignores_padding_and_counts_runs() {
        let mut h = Bitseq::new(100, Version::V2023);
        assert_eq!(h.free_bits(), 100);
        h.set(99).unwrap();
        h.set(0).unwrap();
        assert_eq!(h.free_bits(), 98);
        let h = Bitseq::from_parts(
            Version::V2023,
            1000,
            0,
            0,
            vec![
                Sequence {
                    block: 0xffff_0000,
                    count: 10,
                },
                Sequence {
                    block: 0,
                    count: 22,
                },
            ],
        );
        // 10 blocks with 16 free each, 21 whole free blocks, and 8 valid
        // bits of the last block (1000 = 31*32 + 8).
        assert_eq!(h.free_bits(), 160 + 21 * 32 + 8);
    }

    #[test]
    fn set_ordinals_lists_what_is_set() {
        let mut h = Bitseq::new(100, Version::V2023);
        for o in [0, 31, 32, 64, 99] {
            h.set(o).unwrap();
        }
        assert_eq!(h.set_ordinals(), vec![0, 31, 32, 64, 99]);
        assert!(h.is_set(64) && !h.is_set(65) && !h.is_set(1000));
    }

    #[test]
    fn search_17_05_hands_out_a_set_bit_after_a_full_block_tail() {
        // Block 0 has its last bit set and all others free except the range
        // start; block 1 starts full. Starting the search at ordinal 31
        // finds bit 31 set, runs off the block and returns 32: set already.
        let mut h = Bitseq::new(64, Version::V17_05);
        h.set(31).unwrap();
        h.set(32).unwrap();
        let got = h.set_any_in_range(31, 63, false).unwrap();
        assert_eq!(got, 32, "17.05 returns the first ordinal of the next block");
        assert_eq!(
            h.unselected(),
            61,
            "the counter drops although nothing changed"
        );
        assert_eq!(h.free_bits(), 62);

        let mut h = Bitseq::new(64, Version::V2023);
        h.set(31).unwrap();
        h.set(32).unwrap();
        assert_eq!(h.set_any_in_range(31, 63, false), Ok(33));
    }
}
