//! The concurrent allocators (`model/ipam/concurrent.rs`) called from one
//! thread answer like the fast pool, fall back to the lock when the
//! mailbox is full, and never hand out an ordinal twice under threads.
//! Linearizability itself: `check::linearizability`'s tests and
//! tests/loom_allocator.rs.

use std::sync::Arc;

use netrace::ipam::bitmap::FastPool;
use netrace::ipam::concurrent::{Allocator, MailboxPool, MutexPool};
fn both(bits: u64) -> [Box<dyn Allocator>; 2] {
    [
        Box::new(MutexPool::new(FastPool::new(bits))),
        Box::new(MailboxPool::new(FastPool::new(bits))),
    ]
}

#[test]
fn one_thread_answers_like_the_fast_pool() {
    for alloc in both(200) {
        let mut spec = FastPool::new(200);
        let mut x = 12345u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = x >> 33;
            match r % 4 {
                0 => assert_eq!(alloc.allocate(), spec.set_any(false)),
                1 => assert_eq!(alloc.allocate_serial(), spec.set_any(true)),
                _ => {
                    let o = (r >> 3) % 210;
                    assert_eq!(alloc.release(o), spec.unset(o));
                }
            }
        }
        assert_eq!(alloc.snapshot(), spec);
    }
}

#[test]
fn a_full_mailbox_falls_back_to_the_lock() {
    let pool = MailboxPool::new(FastPool::new(64));
    for want in 0..20 {
        assert_eq!(pool.allocate(), Ok(want));
    }
    for o in 0..20 {
        pool.release(o).unwrap();
    }
    let snap = pool.snapshot();
    assert_eq!(snap.free_bits(), 64);
    assert_eq!(snap.unselected(), 64);
    assert_eq!(pool.allocate(), Ok(0));
}

#[test]
fn threads_never_share_an_ordinal() {
    for alloc in both(4000) {
        let alloc: Arc<dyn Allocator> = Arc::from(alloc);
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let alloc = Arc::clone(&alloc);
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..2000 {
                        if i % 3 == 2 {
                            let o = held.swap_remove(i % held.len());
                            alloc.release(o).unwrap();
                        } else if t % 2 == 0 {
                            held.push(alloc.allocate().unwrap());
                        } else {
                            held.push(alloc.allocate_serial().unwrap());
                        }
                    }
                    held
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "an ordinal was handed out twice");
        let snap = alloc.snapshot();
        assert_eq!(snap.free_bits(), 4000 - n as u64);
        assert!(all.iter().all(|&o| snap.is_set(o)));
    }
}
