//! The run's resource limits: the memory counted by the binary's
//! allocator, `--max-memory` and `--time-limit` parsing, the default
//! memory budget from the machine's memory, and the SIGINT flag.
//!
//! This is I/O at the edge: the explorer only sees
//! [`crate::explore::Limits`] (a probe function, a deadline, a flag).

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::scenario::InputError;

/// Per-thread slots of the byte count, each on its own cache line: the
/// threads of a parallel search allocate all the time, and one shared
/// counter would bounce its cache line between cores on every call. A
/// block freed on another thread than the one that allocated it makes
/// one slot go down and another up; only the sum means anything.
const SLOTS: usize = 16;

#[repr(align(64))]
struct Slot(AtomicI64);

static IN_USE: [Slot; SLOTS] = [const { Slot(AtomicI64::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Bytes a thread counts locally before it adds them to its slot: an
/// atomic add per allocation cost about 7% of a search's time. The sum
/// read by [`memory_in_use`] lags by at most this much per thread.
const FLUSH_AT: i64 = 4096;

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    static PENDING: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    // During a thread's teardown its cells may be gone: slot 0 then.
    let flush = PENDING
        .try_with(|p| {
            let n = p.get() + bytes;
            if (-FLUSH_AT..=FLUSH_AT).contains(&n) {
                p.set(n);
                0
            } else {
                p.set(0);
                n
            }
        })
        .unwrap_or(bytes);
    if flush == 0 {
        return;
    }
    let slot = MY_SLOT
        .try_with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS);
            }
            s.get()
        })
        .unwrap_or(0);
    IN_USE[slot].0.fetch_add(flush, Ordering::Relaxed);
}

/// The system allocator, counting the bytes in use. The `netrace` binary
/// installs it as its global allocator so that `--max-memory` measures
/// what the process really holds, not an estimate.
pub struct CountingAlloc;

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only arithmetic on the side (thread-local access with a
// `const` initialiser and no destructor does not allocate).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !COUNTING.load(Ordering::Relaxed) {
            COUNTING.store(true, Ordering::Relaxed);
        }
        add(layout.size() as i64);
        MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as i64));
        MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !COUNTING.load(Ordering::Relaxed) {
            COUNTING.store(true, Ordering::Relaxed);
        }
        add(layout.size() as i64);
        MiMalloc.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as i64 - layout.size() as i64);
        MiMalloc.realloc(ptr, layout, new_size)
    }
}

/// Bytes in use, as [`CountingAlloc`] counts them (0 when it is not the
/// global allocator).
pub fn memory_in_use() -> u64 {
    let sum: i64 = IN_USE.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    sum.max(0) as u64
}

/// Whether [`CountingAlloc`] is the global allocator of this process.
pub fn memory_is_counted() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

/// The limits of a search run from the command line: `max_memory` of the
/// heap as the counting allocator sees it, an optional time limit, and
/// Ctrl-C (after [`catch_sigint`]).
pub fn run_limits(max_memory: u64, time_limit: Option<Duration>) -> crate::explore::Limits {
    crate::explore::Limits {
        max_memory: Some(max_memory),
        memory_in_use: memory_is_counted().then_some(memory_in_use as fn() -> u64),
        time_limit,
        interrupt: Some(&INTERRUPTED),
    }
}

/// The default memory budget: three quarters of the memory available
/// when the run starts (`MemAvailable` in /proc/meminfo), 4 GiB where that
/// cannot be read. Below the OOM killer's reach on a machine not already
/// short of memory.
pub fn default_max_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4 << 30, |kib| kib * 1024 / 4 * 3)
}

/// Splits `12.5M` into the number and the unit after it.
fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    Some((num.parse().ok()?, unit.trim()))
}

/// Parses a size: a number of bytes, or with a unit `K`, `M`, `G`, `T`
/// (powers of 1024; `KiB`, `MB` ... accepted alike).
pub fn parse_size(flag: &str, text: &str) -> Result<u64, InputError> {
    let bad = || {
        InputError::whole(
            flag,
            format!("{text:?} is not a size"),
            "give bytes with a unit, for example 512M or 8G",
        )
    };
    let (n, unit) = number_and_unit(text).ok_or_else(bad)?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    let bytes = n * (1u64 << shift) as f64;
    if !(1.0..1e18).contains(&bytes) {
        return Err(InputError::whole(
            flag,
            format!("{text} is not a usable memory budget"),
            "give a size from 1M to the machine's memory, for example 8G",
        ));
    }
    if bytes < (1u64 << 20) as f64 {
        return Err(InputError::whole(
            flag,
            format!("{text} is too small to run a search in"),
            "give at least 1M",
        ));
    }
    Ok(bytes as u64)
}

/// Parses a duration: seconds, or with a unit `ms`, `s`, `m`, `h`.
pub fn parse_duration(flag: &str, text: &str) -> Result<Duration, InputError> {
    let bad = || {
        InputError::whole(
            flag,
            format!("{text:?} is not a duration"),
            "give a duration such as 30s, 5m or 2h",
        )
    };
    let (n, unit) = number_and_unit(text).ok_or_else(bad)?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs <= 30.0 * 86_400.0) {
        return Err(InputError::whole(
            flag,
            format!("{text} is not a usable time limit"),
            "give a positive duration of at most 30 days",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Set by SIGINT; the explorer looks at it between states.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // A second Ctrl-C ends the process at once.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the SIGINT handler that sets [`INTERRUPTED`].
pub fn catch_sigint() {
    // SAFETY: a zeroed sigaction with a plain handler that only touches
    // an atomic (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("f", "512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("f", "2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("f", "1.5G").unwrap(), 3 << 29);
        assert!(parse_size("f", "12 parsecs").is_err());
        assert!(parse_size("f", "0").is_err());
        assert!(parse_size("f", "100").is_err());
        assert_eq!(parse_duration("f", "90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("f", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("f", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_duration("f", "0s").is_err());
        assert!(parse_duration("f", "soon").is_err());
    }
}
