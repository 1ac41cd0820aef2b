//! The kernel oracle's run-or-skip rule and this process's network
//! namespaces, for the test binaries that build namespaces of their own
//! (tests/audit_l2.rs, tests/neigh_kernel.rs; `#[path]`-included).
#![allow(dead_code)]

use std::io::Write as _;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use netrace::kernel;

/// `lock`, if the kernel oracle can run here; else a loud skip on the
/// process's stderr (`KERNEL ORACLE SKIPPED: …`), or a failure under
/// `NETRACE_REQUIRE_KERNEL=1` (CI sets it).
pub fn kernel_or_skip(test: &str, lock: &'static Mutex<()>) -> Option<MutexGuard<'static, ()>> {
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
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

/// This process's namespaces (`nr<pid>x…`), sorted.
pub fn own_netns() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    let prefix = format!("nr{}x", std::process::id());
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}
