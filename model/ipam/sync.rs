//! The synchronisation primitives of the allocator code that runs on real
//! threads ([`super::concurrent`], [`super::threaded`]), in one place so
//! that loom can exercise the same code.
//!
//! Built normally, these are `std::sync`'s. Two ways put loom's in their
//! place:
//! - a test crate compiles the file again next to its own `mod sync` of
//!   loom types (`#[path = "../model/ipam/concurrent.rs"]`): what
//!   `tests/loom_allocator.rs` and `tests/loom_handle.rs` do, in a plain
//!   `cargo test`;
//! - `RUSTFLAGS="--cfg loom"` maps this module itself to `loom::sync`, for
//!   running other code under loom (use a separate `CARGO_TARGET_DIR`; the
//!   library then only works inside `loom::model`).
//!
//! Nothing else on these paths may use atomics or locks, so that the loom
//! models cover all of their synchronisation.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Mutex, MutexGuard};
