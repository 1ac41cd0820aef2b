//! What the tests that touch the real kernel share: the skip-or-fail
//! preflight, one lock per test binary, and the namespaces a process owns.
//!
//! These tests need root and network namespaces. Without them each test
//! prints `KERNEL ORACLE SKIPPED: <test>: <why>` on stderr and passes —
//! unless `NETRACE_REQUIRE_KERNEL=1` is set (CI sets it), in which case a
//! skip is a failure. Every test that touches the kernel holds the lock, so
//! that `ip netns list` before and after it is not disturbed by another
//! test of the same binary (names are unique per run anyway).

use std::io::Write as _;
use std::sync::{Mutex, MutexGuard};

use netrace::kernel;

static KERNEL: Mutex<()> = Mutex::new(());

/// The lock, if the kernel oracle can run here; else a loud skip (or a
/// failure under `NETRACE_REQUIRE_KERNEL=1`).
pub fn kernel_or_skip(test: &str) -> Option<MutexGuard<'static, ()>> {
    let guard = KERNEL.lock().unwrap_or_else(|p| p.into_inner());
    match kernel::preflight() {
        Ok(_) => Some(guard),
        Err(e) => {
            if std::env::var("NETRACE_REQUIRE_KERNEL").as_deref() == Ok("1") {
                panic!("NETRACE_REQUIRE_KERNEL=1 but the kernel oracle cannot run: {e}");
            }
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "KERNEL ORACLE SKIPPED: {test}: {e}");
            None
        }
    }
}

/// Every network namespace on the machine, sorted.
pub fn all_netns() -> Vec<String> {
    // The files iproute2 bind-mounts the namespaces on (NETNS_RUN_DIR), read
    // directly: `ip netns list` would spawn a process per look, too slow
    // on a loaded machine to see a namespace that lives a few milliseconds
    // (the oracle's preflight probe).
    let mut names: Vec<String> = match std::fs::read_dir("/var/run/netns") {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read /var/run/netns: {e}"),
    };
    names.sort();
    names
}

/// The network namespaces process `pid` created (named `nr<pid>x…` by
/// `kernel::netns::unique_prefix`): other builds and engineers on the
/// machine create and delete their own at any time.
pub fn netns_of(pid: u32) -> Vec<String> {
    let prefix = format!("nr{pid}x");
    all_netns()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// The network namespaces this test process created.
pub fn own_netns() -> Vec<String> {
    netns_of(std::process::id())
}

/// Runs `f` and checks that this process's namespaces are the same
/// afterwards, even when `f` panics (the panic is then re-raised).
pub fn leaves_no_namespace<T>(f: impl FnOnce() -> T) -> T {
    let before = own_netns();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let after = own_netns();
    assert_eq!(before, after, "network namespaces left behind");
    match r {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// How many kernel runs a test may have in flight at once
/// (`NETRACE_KERNEL_JOBS`, default 4). A run of the oracle mostly waits for
/// the kernel to go quiet (`RunOptions::settle_timeout`, `quiet_period`),
/// so several at once finish sooner even on two cores; each run builds its
/// own namespaces under a unique name (`kernel::netns::unique_prefix`).
pub fn kernel_jobs() -> usize {
    std::env::var("NETRACE_KERNEL_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or(4)
}

/// Calls `f` on every item, [`kernel_jobs`] at a time, and returns the
/// results in the items' order. A panic in any call is re-raised once every
/// call has ended (so each run cleans up its namespaces first), with the
/// first failing item's message.
pub fn par_each<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<std::thread::Result<R>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..kernel_jobs().min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)));
                *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            match m
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every item ran")
            {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
        .collect()
}
