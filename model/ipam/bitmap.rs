//! A fast address pool with libnetwork's fixed `bitmap.Bitmap` semantics.
//!
//! Upstream: `github.com/moby/moby/libnetwork/bitmap/sequence.go`
//! (Apache-2.0), the 2023 code that [`super::bitseq`] models with
//! [`Version::V2023`]. The semantics are reimplemented here on a different
//! representation; no upstream code is copied.
//!
//! [`FastPool`] answers every call exactly as `Bitseq::new(bits,
//! Version::V2023)` does, call for call: the same ordinal or error, the same
//! `unselected` counter and serial cursor `curr`, and the same run-length
//! list, printed by [`FastPool::sequence_string`] in libnetwork's format.
//! `tests/bitmap_equivalence.rs` checks this against the recorded vectors
//! and, by proptest, against [`Bitseq`] on random operation sequences. What
//! that covers, quirks included:
//! - first-fit `SetAny`/`SetAnyInRange` (the lowest free ordinal of the
//!   range) and serial mode (`Handle.curr`: the lowest free ordinal at or
//!   after `curr` when `curr != 0 && curr > start`, else from `start`);
//!   `curr` becomes `ordinal + 1` after every successful search, serial or
//!   not;
//! - the early `NoBitAvailable` when the *counter* `unselected` is 0;
//! - `Unset` of a free bit: nothing changes but `unselected` still grows;
//! - `InvalidRange` (`end < start` or `end >= bits`, checked before the
//!   counter), `OutOfSequence` for ordinals `>= bits`, `BitAllocated`.
//!
//! What it does not model: the 17.05 search bugs ([`Version::V17_05`]), the
//! store, the handle's lock and its copy-on-write protocol. Those belong to
//! [`super::bitseq`] and [`super::system`], which stay the models the
//! explorer checks; this type is what an allocator for the same job can do.
//!
//! # Memory layout
//!
//! - `words`: one bit per ordinal, 64 ordinals per `u64`, ordinal `o` at bit
//!   `o % 64` (least significant first) of word `o / 64`; a set bit is an
//!   allocated ordinal. Padding bits past `bits` are kept set so that no
//!   search can return them (the printed list shows them clear, as
//!   libnetwork does).
//! - `summary`: levels of "has a free bit below" flags, 64-ary: bit `i` of
//!   level 0 is set when word `i` is not full, bit `i` of level `k + 1`
//!   when word `i` of level `k` is not zero. Levels stop at one word.
//! - `low`: every word below it is full (a hint that makes first-fit from 0
//!   a single word test while a pool fills up or churns at its bottom).
//!
//! A search looks at its first word, then climbs the summary to the next
//! word with a free bit and walks down: at most `2 × levels + 2` word reads
//! whatever the fill level or fragmentation. For a /8 (2^24 ordinals):
//! 262,144 words (2 MiB) plus 4,096 + 64 + 1 summary words (33 KiB), i.e.
//! 2,130,440 bytes of words and 2,130,592 with the headers: **1.016 bits
//! per address** ([`FastPool::bytes`] counts it, a unit test pins it below
//! 1.1, and `benches/allocator.rs` prints it).

use std::fmt;
use std::hash::{Hash, Hasher};

use super::bitseq::{Bitseq, BitseqError, Sequence, Version, BLOCK_LEN};
use super::ops::{Op, OpKind, OpResult};

/// Ordinals per word.
const WORD_BITS: u64 = 64;

/// A flat word bitmap with a summary tree, answering like libnetwork's
/// 2023 `bitmap.Bitmap` (see the module docs).
///
/// Equality and hashing look at what the upstream handle holds (`bits`,
/// `unselected`, `curr` and the bits), not at the search hint.
#[derive(Clone)]
pub struct FastPool {
    bits: u64,
    unselected: u64,
    curr: u64,
    /// Every word below `low` is full.
    low: usize,
    words: Vec<u64>,
    summary: Vec<Vec<u64>>,
}

impl FastPool {
    /// `bitmap.New(bits)`: all `bits` ordinals free.
    pub fn new(bits: u64) -> FastPool {
        let n_words =
            usize::try_from(bits.div_ceil(WORD_BITS)).expect("the pool's words fit in memory");
        let mut words = vec![0u64; n_words];
        let tail = bits % WORD_BITS;
        if tail != 0 {
            // Padding past `bits` counts as allocated.
            words[n_words - 1] = u64::MAX << tail;
        }
        let mut summary = Vec::new();
        let mut below = n_words;
        while below > 1 {
            let n = below.div_ceil(WORD_BITS as usize);
            let mut level = vec![u64::MAX; n];
            let rest = below % WORD_BITS as usize;
            if rest != 0 {
                level[n - 1] = (1u64 << rest) - 1;
            }
            summary.push(level);
            below = n;
        }
        let pool = FastPool {
            bits,
            unselected: bits,
            curr: 0,
            low: 0,
            words,
            summary,
        };
        // Every word of a new pool has a free bit (a partial last word has
        // at least one valid ordinal), so every summary flag starts set.
        pool.check_summary_if_small();
        pool
    }

    /// `Bits()`.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// `Unselected()`: the free counter as upstream keeps it (it grows on
    /// every `Unset`, even of a free bit; see [`FastPool::free_bits`]).
    pub fn unselected(&self) -> u64 {
        self.unselected
    }

    /// The serial cursor `curr`.
    pub fn curr(&self) -> u64 {
        self.curr
    }

    /// The number of free ordinals, counted from the bits.
    pub fn free_bits(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_zeros())).sum()
    }

    /// `IsSet(ordinal)`; false past the end.
    pub fn is_set(&self, ordinal: u64) -> bool {
        ordinal < self.bits && self.words[word_of(ordinal)] & bit_of(ordinal) != 0
    }

    /// Bytes of heap and inline storage this pool uses.
    pub fn bytes(&self) -> usize {
        let heap: usize = self.words.len() + self.summary.iter().map(Vec::len).sum::<usize>();
        heap * std::mem::size_of::<u64>()
            + self.summary.len() * std::mem::size_of::<Vec<u64>>()
            + std::mem::size_of::<Self>()
    }

    /// `SetAny(serial)`.
    pub fn set_any(&mut self, serial: bool) -> Result<u64, BitseqError> {
        if self.unselected == 0 {
            return Err(BitseqError::NoBitAvailable);
        }
        self.take_any(0, self.bits.wrapping_sub(1), serial)
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
                version: Version::V2023,
            });
        }
        if self.unselected == 0 {
            return Err(BitseqError::NoBitAvailable);
        }
        self.take_any(start, end, serial)
    }

    /// `Set(ordinal)`.
    pub fn set(&mut self, ordinal: u64) -> Result<(), BitseqError> {
        if ordinal >= self.bits {
            return Err(BitseqError::OutOfSequence);
        }
        if self.words[word_of(ordinal)] & bit_of(ordinal) != 0 {
            return Err(BitseqError::BitAllocated);
        }
        self.mark(ordinal);
        self.unselected = self.unselected.wrapping_sub(1);
        Ok(())
    }

    /// `Unset(ordinal)`: the counter grows even if the bit was free.
    pub fn unset(&mut self, ordinal: u64) -> Result<(), BitseqError> {
        if ordinal >= self.bits {
            return Err(BitseqError::OutOfSequence);
        }
        self.clear(ordinal);
        self.unselected = self.unselected.wrapping_add(1);
        Ok(())
    }

    /// Applies one vector op and reports like the recorder
    /// ([`super::ops::apply`] for [`Bitseq`]).
    pub fn apply(&mut self, op: &Op) -> OpResult {
        let outcome: Result<Option<u64>, BitseqError> = match op.op {
            OpKind::SetAny => self.set_any(op.serial).map(Some),
            OpKind::SetAnyInRange => self.set_any_in_range(op.start, op.end, op.serial).map(Some),
            OpKind::Set => self.set(op.ordinal).map(|_| None),
            OpKind::Unset => self.unset(op.ordinal).map(|_| None),
        };
        let (ordinal, error) = match outcome {
            Ok(ordinal) => (ordinal, None),
            Err(e) => (None, Some(e.to_string())),
        };
        OpResult {
            ordinal,
            error,
            unselected: self.unselected,
            sequence: self.sequence_string(),
        }
    }

    /// The run-length list libnetwork would hold for these bits: 32-bit
    /// blocks (most significant bit = lowest ordinal, padding clear), equal
    /// neighbours merged. A fresh pool of 0 bits is `(0x0, 0)`, as upstream.
    pub fn sequences(&self) -> Vec<Sequence> {
        let n_blocks = self.bits.div_ceil(u64::from(BLOCK_LEN));
        let mut out: Vec<Sequence> = Vec::new();
        for k in 0..n_blocks {
            let block = self.block(k);
            match out.last_mut() {
                Some(last) if last.block == block => last.count += 1,
                _ => out.push(Sequence { block, count: 1 }),
            }
        }
        if out.is_empty() {
            out.push(Sequence { block: 0, count: 0 });
        }
        out
    }

    /// libnetwork's `sequence.toString()` of [`FastPool::sequences`].
    pub fn sequence_string(&self) -> String {
        super::bitseq::format_sequences(&self.sequences())
    }

    /// The faithful handle with the same bits, counter and cursor (for
    /// benchmarks and tests that need a fragmented `Bitseq` quickly).
    pub fn to_bitseq(&self) -> Bitseq {
        Bitseq::from_parts(
            Version::V2023,
            self.bits,
            self.unselected,
            self.curr,
            self.sequences(),
        )
    }

    /// Block `k` as libnetwork stores it.
    fn block(&self, k: u64) -> u32 {
        let word = self.words[(k / 2) as usize];
        let half = if k.is_multiple_of(2) {
            word as u32
        } else {
            (word >> 32) as u32
        };
        let mut block = half.reverse_bits();
        let first = k * u64::from(BLOCK_LEN);
        if first + u64::from(BLOCK_LEN) > self.bits {
            // Only the top `valid` bits stand for ordinals; padding prints 0.
            let valid = (self.bits - first) as u32;
            block &= !(u32::MAX >> valid);
        }
        block
    }

    /// `getAvailableFromCurrent` + marking: the search of a `SetAny*` whose
    /// arguments are already validated.
    fn take_any(&mut self, start: u64, end: u64, serial: bool) -> Result<u64, BitseqError> {
        let mut found = None;
        if serial && self.curr != 0 && self.curr > start {
            found = self.first_free_from(self.curr).filter(|&o| o <= end);
        }
        if found.is_none() {
            found = self.first_free_from(start).filter(|&o| o <= end);
        }
        let ordinal = found.ok_or(BitseqError::NoBitAvailable)?;
        self.curr = ordinal + 1;
        self.mark(ordinal);
        self.unselected = self.unselected.wrapping_sub(1);
        Ok(ordinal)
    }

    /// The lowest free ordinal at or after `from` (none past the end).
    fn first_free_from(&mut self, from: u64) -> Option<u64> {
        let low_start = self.low as u64 * WORD_BITS;
        if from <= low_start {
            // Everything below `low` is full: start there and move the hint
            // to the word found (every word between was full).
            let found = self.next_free(low_start);
            self.low = match found {
                Some(o) => word_of(o),
                None => self.words.len(),
            };
            found
        } else {
            self.next_free(from)
        }
    }

    /// The lowest free ordinal at or after `from`, from the words and the
    /// summary only.
    #[inline]
    fn next_free(&self, from: u64) -> Option<u64> {
        let w = usize::try_from(from / WORD_BITS).ok()?;
        let word = *self.words.get(w)?;
        let free = !word & (u64::MAX << (from % WORD_BITS));
        if free != 0 {
            return Some(w as u64 * WORD_BITS + u64::from(free.trailing_zeros()));
        }
        // Climb to the first level with a flagged entry after ours...
        let mut idx = w + 1;
        let mut level = 0;
        loop {
            let flags = self.summary.get(level)?;
            let i = idx / WORD_BITS as usize;
            let masked = *flags.get(i)? & (u64::MAX << (idx % WORD_BITS as usize));
            if masked != 0 {
                idx = i * WORD_BITS as usize + masked.trailing_zeros() as usize;
                break;
            }
            idx = i + 1;
            level += 1;
        }
        // ...and walk down along the lowest flags to a word.
        while level > 0 {
            level -= 1;
            idx = idx * WORD_BITS as usize + self.summary[level][idx].trailing_zeros() as usize;
        }
        let free = !self.words[idx];
        debug_assert_ne!(free, 0, "summary flags a full word {idx}");
        Some(idx as u64 * WORD_BITS + u64::from(free.trailing_zeros()))
    }

    /// Sets a bit (known to be clear) and clears the summary flags of
    /// nodes it filled.
    #[inline]
    fn mark(&mut self, ordinal: u64) {
        let w = word_of(ordinal);
        self.words[w] |= bit_of(ordinal);
        if self.words[w] != u64::MAX {
            return;
        }
        let mut idx = w;
        for level in &mut self.summary {
            let i = idx / WORD_BITS as usize;
            level[i] &= !(1u64 << (idx % WORD_BITS as usize));
            if level[i] != 0 {
                return;
            }
            idx = i;
        }
    }

    /// Clears a bit (maybe already clear) and flags the nodes that were
    /// full.
    #[inline]
    fn clear(&mut self, ordinal: u64) {
        let w = word_of(ordinal);
        let was_full = self.words[w] == u64::MAX;
        self.words[w] &= !bit_of(ordinal);
        self.low = self.low.min(w);
        if !was_full {
            return;
        }
        let mut idx = w;
        for level in &mut self.summary {
            let i = idx / WORD_BITS as usize;
            let was_empty = level[i] == 0;
            level[i] |= 1u64 << (idx % WORD_BITS as usize);
            if !was_empty {
                return;
            }
            idx = i;
        }
    }

    /// Recomputes the summary from the words and compares (tests; small
    /// pools only in debug builds).
    fn check_summary_if_small(&self) {
        if cfg!(debug_assertions) && self.words.len() <= 64 {
            self.assert_consistent();
        }
    }

    /// Panics unless the summary, the padding and the hint agree with the
    /// words (an internal invariant; used by tests).
    pub fn assert_consistent(&self) {
        let tail = self.bits % WORD_BITS;
        if tail != 0 {
            let pad = u64::MAX << tail;
            assert_eq!(
                self.words[self.words.len() - 1] & pad,
                pad,
                "padding bits must stay set"
            );
        }
        let mut below: Vec<bool> = self.words.iter().map(|&w| w != u64::MAX).collect();
        for (k, level) in self.summary.iter().enumerate() {
            assert_eq!(level.len(), below.len().div_ceil(WORD_BITS as usize));
            for (i, flag) in below.iter().enumerate() {
                let got = level[i / 64] & (1 << (i % 64)) != 0;
                assert_eq!(got, *flag, "summary level {k} entry {i}");
            }
            below = level.iter().map(|&w| w != 0).collect();
        }
        assert!(below.len() <= 1, "the summary ends with one word");
        assert!(
            self.words[..self.low.min(self.words.len())]
                .iter()
                .all(|&w| w == u64::MAX),
            "every word below the hint is full"
        );
    }
}

/// The word holding an ordinal.
#[inline]
fn word_of(ordinal: u64) -> usize {
    (ordinal / WORD_BITS) as usize
}

/// An ordinal's bit in its word.
#[inline]
fn bit_of(ordinal: u64) -> u64 {
    1u64 << (ordinal % WORD_BITS)
}

impl PartialEq for FastPool {
    fn eq(&self, other: &FastPool) -> bool {
        self.bits == other.bits
            && self.unselected == other.unselected
            && self.curr == other.curr
            && self.words == other.words
    }
}

impl Eq for FastPool {}

impl Hash for FastPool {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
        self.unselected.hash(state);
        self.curr.hash(state);
        self.words.hash(state);
    }
}

impl fmt::Debug for FastPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FastPool {{ bits: {}, unselected: {}, curr: {}, sequence: {} }}",
            self.bits,
            self.unselected,
            self.curr,
            self.sequence_string()
        )
    }
}

impl fmt::Display for FastPool {
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
    fn slash8_uses_at_most_1_1_bits_per_address() {
        let pool = FastPool::new(1 << 24);
        let bytes = pool.bytes();
        let bits_per_address = bytes as f64 * 8.0 / (1u64 << 24) as f64;
        assert_eq!(pool.words.len(), 262_144);
        assert_eq!(
            pool.summary.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4096, 64, 1]
        );
        assert!(
            bits_per_address <= 1.1,
            "{bytes} bytes = {bits_per_address:.4} bits per address"
        );
        assert!(bits_per_address > 1.0);
        if cfg!(target_pointer_width = "64") {
            // The figure the module docs and docs/performance.md quote.
            assert_eq!(bytes, 2_130_592);
        }
    }

    #[test]
    fn new_slash16_with_gateway_prints_like_libnetwork() {
        let mut p = FastPool::new(65536);
        p.set(0).unwrap();
        p.set(65535).unwrap();
        p.set(1).unwrap();
        assert_eq!(
            p.sequence_string(),
            "(0xc0000000, 1)->(0x0, 2046)->(0x1, 1)->end"
        );
        assert_eq!(p.unselected(), 65533);
        assert_eq!(p.free_bits(), 65533);
    }

    #[test]
    fn padding_is_never_handed_out_and_prints_clear() {
        let mut p = FastPool::new(100);
        for want in 0..100 {
            assert_eq!(p.set_any(false), Ok(want));
        }
        assert_eq!(p.unselected(), 0);
        assert_eq!(p.set_any(false), Err(BitseqError::NoBitAvailable));
        assert_eq!(p.sequence_string(), "(0xffffffff, 3)->(0xf0000000, 1)->end");
        p.assert_consistent();
    }

    #[test]
    fn counter_not_bits_gates_set_any() {
        // A redundant unset lifts the counter above the real free count;
        // once the pool is full the search itself says no.
        let mut p = FastPool::new(2);
        p.unset(1).unwrap();
        assert_eq!(p.unselected(), 3);
        assert_eq!(p.set_any(false), Ok(0));
        assert_eq!(p.set_any(false), Ok(1));
        assert_eq!(p.set_any(false), Err(BitseqError::NoBitAvailable));
        assert_eq!(p.unselected(), 1);
    }

    #[test]
    fn zero_bits_behaves_like_upstream() {
        let mut p = FastPool::new(0);
        let mut h = Bitseq::new(0, Version::V2023);
        assert_eq!(p.set_any(true), h.set_any(true));
        assert_eq!(
            p.set_any_in_range(0, 0, false),
            h.set_any_in_range(0, 0, false)
        );
        assert_eq!(p.set(0), h.set(0));
        assert_eq!(p.unset(0), h.unset(0));
        assert_eq!(p.sequence_string(), h.sequence_string());
        assert_eq!(p.sequence_string(), "(0x0, 0)->end");
    }

    #[test]
    fn serial_search_wraps_and_skips_like_bitseq() {
        let mut p = FastPool::new(64);
        for want in 0..10 {
            assert_eq!(p.set_any(true), Ok(want));
        }
        p.unset(3).unwrap();
        assert_eq!(p.set_any(true), Ok(10));
        p.set_any_in_range(11, 63, true).unwrap();
        while p.curr() < 64 {
            p.set_any(true).unwrap();
        }
        assert_eq!(p.set_any(true), Ok(3));
    }

    #[test]
    fn summary_stays_consistent_across_levels() {
        // 3 summary levels need > 4096 words; churn across word and level
        // boundaries and check the whole structure.
        let bits = 64 * 4096 * 2 + 77;
        let mut p = FastPool::new(bits);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let o = x % bits;
            if x & (1 << 40) == 0 {
                let _ = p.set(o);
            } else {
                p.unset(o).unwrap();
            }
            if x & (1 << 41) == 0 {
                let _ = p.set_any(x & (1 << 42) == 0);
            }
        }
        p.assert_consistent();
        assert_eq!(p.summary.len(), 3);
        assert_eq!(p.to_bitseq().free_bits(), p.free_bits());
    }
}
