//! loom checks the concurrent allocators in a plain `cargo test`:
//! `model/ipam/concurrent.rs` is compiled here a second time with loom's
//! atomics and `Mutex` (the `sync` module below), so that every atomic
//! access and lock acquisition is a point where loom may switch threads,
//! and loom explores the interleavings (up to a preemption bound of 3).
//!
//! The race: a first-fit allocation against a thread releasing 8 (mailbox
//! slot 0) and then 69 (slot 5) in a 128-bit pool with 0..=69 allocated.
//! An allocation that read slot 0 before the first release and slot 5
//! after the second would take 69 while 8 is free: `MailboxPool` must
//! drain until one pass finds the mailbox empty. (Draining a single pass
//! instead fails this test with that history.) Every explored history must
//! be linearizable and end in the observed pool.

mod sync {
    pub use loom::sync::atomic::{AtomicU64, Ordering};
    pub use loom::sync::{Mutex, MutexGuard};
}

#[path = "../model/ipam/concurrent.rs"]
#[allow(dead_code)]
mod concurrent;

use concurrent::{Allocator, MailboxPool, MutexPool};
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use netrace::check::linearizability::{check_ending_in, Call, Limits, Operation};
use netrace::ipam::bitmap::FastPool;

fn initial() -> FastPool {
    let mut pool = FastPool::new(128);
    for _ in 0..70 {
        pool.set_any(false).unwrap();
    }
    pool
}

/// Runs one call between two ticks of a loom-visible clock.
fn record<A: Allocator>(clock: &AtomicU64, thread: usize, alloc: &A, call: Call) -> Operation {
    let invoke = clock.fetch_add(1, Ordering::SeqCst);
    let ret = match call {
        Call::SetAny { serial: false } => alloc.allocate().map(Some),
        Call::SetAny { serial: true } => alloc.allocate_serial().map(Some),
        Call::Unset(o) => alloc.release(o).map(|_| None),
        other => unreachable!("{other} is not an Allocator call"),
    };
    let respond = clock.fetch_add(1, Ordering::SeqCst);
    Operation {
        thread,
        call,
        ret,
        invoke,
        respond,
        indeterminate: false,
    }
}

fn explore<A: Allocator + 'static>(make: fn(FastPool) -> A) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let init = initial();
        let alloc = Arc::new(make(init.clone()));
        let clock = Arc::new(AtomicU64::new(0));
        let releaser = {
            let (alloc, clock) = (Arc::clone(&alloc), Arc::clone(&clock));
            loom::thread::spawn(move || {
                vec![
                    record(&clock, 1, &*alloc, Call::Unset(8)),
                    record(&clock, 1, &*alloc, Call::Unset(69)),
                ]
            })
        };
        let mut history = vec![record(&clock, 0, &*alloc, Call::SetAny { serial: false })];
        history.extend(releaser.join().unwrap());
        let observed = alloc.snapshot();
        if let Err(e) = check_ending_in(&init, &history, &observed, Limits::default()) {
            panic!("{e}");
        }
    });
}

#[test]
fn mailbox_pool_is_linearizable_under_loom() {
    explore(MailboxPool::new);
}

#[test]
fn mutex_pool_is_linearizable_under_loom() {
    explore(MutexPool::new);
}
