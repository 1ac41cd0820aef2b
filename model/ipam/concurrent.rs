//! Allocators for real multi-threaded use: what a daemon would embed in
//! place of libnetwork's `bitmap.Bitmap` behind `Handle`'s mutex.
//!
//! Upstream: `libnetwork/bitmap/sequence.go` and the `Handle` lock around
//! it in `libnetwork/bitseq/sequence.go` (Apache-2.0); the semantics are
//! [`FastPool`]'s (the 2023 code's), reimplemented, no code copied.
//!
//! Both allocators implement [`Allocator`]: first-fit `SetAny(false)`,
//! serial `SetAny(true)` and `Unset`. Both are **linearizable** with
//! [`FastPool`] as the sequential specification: every concurrent history
//! of these calls returns what some serial order of the same calls,
//! consistent with their real-time order, returns on one [`FastPool`].
//! Called from one thread they answer exactly like [`FastPool`].
//! Checked by: `crate::check::linearizability`'s tests (histories recorded
//! from real threads, a few hundred per `cargo test`) and
//! `tests/loom_allocator.rs` (loom explores the interleavings of the race
//! that breaks a single-pass drain).
//!
//! # [`MutexPool`]: the baseline
//!
//! A `Mutex<FastPool>`; every call locks. This is what libnetwork does
//! (one lock per handle) minus the copy-on-write of the run-length list.
//!
//! # [`MailboxPool`]: deferred releases, allocations under one lock
//!
//! Releases do not take the lock: they drop the ordinal into a mailbox of
//! [`MAILBOX_SLOTS`] atomic slots (one cache line) with one
//! compare-and-swap. An allocation takes the lock, drains the mailbox into
//! the pool, and searches. The whole protocol:
//!
//! | step | who | what | ordering |
//! |---|---|---|---|
//! | R1 | release | `slot.compare_exchange(EMPTY, ordinal + 1)` on the slots in turn, from slot `ordinal % 8`; the first that succeeds: done | SeqCst |
//! | R2 | release, mailbox full | lock, drain, `unset(ordinal)`, unlock | mutex |
//! | A1 | allocation | lock | mutex |
//! | A2 | allocation | one pass over the slots: each non-empty slot is `unset` in the pool, then stored `EMPTY`; repeat passes until one pass reads every slot empty | SeqCst loads, Release stores |
//! | A3 | allocation | `set_any(serial)` on the pool, unlock | mutex |
//!
//! Only the lock holder reads a full slot or clears one, and a slot is
//! refilled only after it has been cleared, so no ordinal is lost or
//! applied twice.
//!
//! Why it is linearizable. A release in the mailbox takes effect at its
//! successful compare-and-swap (R1); a release through the lock (R2) and an
//! allocation at a point inside their critical sections: an allocation at
//! the first load of its last, all-empty pass (call it P). Every release
//! whose R1 came before P is in the pool by then: its slot was non-empty at
//! P, only the lock holder empties slots, so the pass would have seen it.
//! Every release the allocation drained had its R1 before its slot was
//! read, hence before P. Releases after P stay in the mailbox and are
//! ordered after the allocation. So at P the pool holds exactly the effect
//! of every call ordered before the allocation, and nothing else touches
//! the pool until the unlock: the search returns what the sequential pool
//! returns at P (for serial mode too: `curr` lives in the pool, under the
//! lock). The single all-empty pass is what makes this hold: draining the
//! slots once, without checking, could apply a release published late into
//! a slot read late while missing an earlier one that landed in a slot
//! already read, an order no sequential history shows.
//!
//! "Before" here is the single total order of sequentially consistent
//! operations: that is why the slot's compare-and-swap and the drain's
//! loads are `SeqCst` (so are the clock ticks of the checker's
//! `Recorder`). The `Release` store that empties a slot needs no more: the
//! next compare-and-swap on the slot reads it and synchronises with it.
//!
//! Progress. A release is wait-free while the mailbox has an empty slot (at
//! most [`MAILBOX_SLOTS`] compare-and-swaps) and blocks on the
//! lock otherwise. Allocations block on the lock, and an allocation's drain
//! runs one more pass each time a release lands during the previous one: an
//! unbounded stream of releases can delay it (no starvation bound).
//!
//! Designs not taken, and why (see the analysis): a lock-free
//! per-word compare-and-swap first-fit scan is linearizable for allocations
//! alone, but a release can free a bit in a word the scan already passed,
//! so the bit taken is not the lowest free one at any instant; and an
//! allocation that detects this and gives its bit back makes the other
//! allocations, which skipped that bit, non-linearizable instead. Here the
//! allocations are serialised, so the pool is only ever searched in a state
//! that some sequential history reaches.

// The pool through the crate's name and the primitives through
// `super::sync`, so that tests/loom_allocator.rs can compile this file a
// second time with loom's primitives (as tests/loom_handle.rs does for
// `threaded.rs`). Its unit tests live in tests/concurrent.rs for the same
// reason.
use super::sync::{AtomicU64, Mutex, MutexGuard, Ordering};
use netrace::ipam::bitmap::FastPool;
use netrace::ipam::bitseq::BitseqError;

/// Slots in [`MailboxPool`]'s mailbox: one 64-byte cache line of `u64`s.
pub const MAILBOX_SLOTS: usize = 8;

/// An empty mailbox slot; a full one holds `ordinal + 1`.
const EMPTY: u64 = 0;

/// A pool shared by threads: the calls a daemon needs.
pub trait Allocator: Send + Sync {
    /// `SetAny(false)`: the lowest free ordinal.
    fn allocate(&self) -> Result<u64, BitseqError>;
    /// `SetAny(true)`: the lowest free ordinal at or after the cursor,
    /// wrapping to 0.
    fn allocate_serial(&self) -> Result<u64, BitseqError>;
    /// `Unset(ordinal)`.
    fn release(&self, ordinal: u64) -> Result<(), BitseqError>;
    /// The pool size.
    fn bits(&self) -> u64;
    /// The pool after every call that has returned (and maybe some that
    /// are still running), as one [`FastPool`].
    fn snapshot(&self) -> FastPool;
}

/// The baseline: a [`FastPool`] behind one `Mutex`.
#[derive(Debug)]
pub struct MutexPool {
    bits: u64,
    pool: Mutex<FastPool>,
}

impl MutexPool {
    /// Wraps a pool (new or pre-filled).
    pub fn new(pool: FastPool) -> MutexPool {
        MutexPool {
            bits: pool.bits(),
            pool: Mutex::new(pool),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FastPool> {
        self.pool
            .lock()
            .expect("allocator lock poisoned: a thread panicked inside the pool")
    }
}

impl Allocator for MutexPool {
    fn allocate(&self) -> Result<u64, BitseqError> {
        self.lock().set_any(false)
    }

    fn allocate_serial(&self) -> Result<u64, BitseqError> {
        self.lock().set_any(true)
    }

    fn release(&self, ordinal: u64) -> Result<(), BitseqError> {
        self.lock().unset(ordinal)
    }

    fn bits(&self) -> u64 {
        self.bits
    }

    fn snapshot(&self) -> FastPool {
        self.lock().clone()
    }
}

/// The mailbox: its own cache line, apart from the lock and the pool.
#[repr(align(64))]
#[derive(Debug)]
struct Mailbox {
    slots: [AtomicU64; MAILBOX_SLOTS],
}

/// The fast concurrent allocator: releases through a lock-free mailbox,
/// allocations under a lock that drain it (see the module docs for the
/// protocol and why it is linearizable).
#[derive(Debug)]
pub struct MailboxPool {
    mailbox: Mailbox,
    bits: u64,
    pool: Mutex<FastPool>,
}

impl MailboxPool {
    /// Wraps a pool (new or pre-filled).
    pub fn new(pool: FastPool) -> MailboxPool {
        MailboxPool {
            mailbox: Mailbox {
                slots: std::array::from_fn(|_| AtomicU64::new(EMPTY)),
            },
            bits: pool.bits(),
            pool: Mutex::new(pool),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FastPool> {
        self.pool
            .lock()
            .expect("allocator lock poisoned: a thread panicked inside the pool")
    }

    /// Step A2: apply every release in the mailbox, until a whole pass
    /// finds it empty. Needs the lock (the guard proves it).
    fn drain(&self, pool: &mut MutexGuard<'_, FastPool>) {
        loop {
            let mut drained = false;
            for slot in &self.mailbox.slots {
                let value = slot.load(Ordering::SeqCst);
                if value != EMPTY {
                    pool.unset(value - 1)
                        .expect("mailbox ordinals were checked against bits");
                    // Only the lock holder empties a slot; a release may
                    // refill it as soon as it reads EMPTY.
                    slot.store(EMPTY, Ordering::Release);
                    drained = true;
                }
            }
            if !drained {
                return;
            }
        }
    }

    fn allocate_with(&self, serial: bool) -> Result<u64, BitseqError> {
        let mut pool = self.lock();
        self.drain(&mut pool);
        pool.set_any(serial)
    }
}

impl Allocator for MailboxPool {
    fn allocate(&self) -> Result<u64, BitseqError> {
        self.allocate_with(false)
    }

    fn allocate_serial(&self) -> Result<u64, BitseqError> {
        self.allocate_with(true)
    }

    fn release(&self, ordinal: u64) -> Result<(), BitseqError> {
        if ordinal >= self.bits {
            return Err(BitseqError::OutOfSequence);
        }
        // Step R1, starting at a slot picked by the ordinal so that
        // concurrent releases rarely race for the same slot.
        let first = (ordinal % MAILBOX_SLOTS as u64) as usize;
        for k in 0..MAILBOX_SLOTS {
            let slot = &self.mailbox.slots[(first + k) % MAILBOX_SLOTS];
            // No load first: the slot is almost always empty, and a load
            // then a compare-and-swap would move its cache line twice.
            if slot
                .compare_exchange(EMPTY, ordinal + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(());
            }
        }
        // Step R2: the mailbox is full.
        let mut pool = self.lock();
        self.drain(&mut pool);
        pool.unset(ordinal)
    }

    fn bits(&self) -> u64 {
        self.bits
    }

    fn snapshot(&self) -> FastPool {
        let mut pool = self.lock();
        self.drain(&mut pool);
        pool.clone()
    }
}
