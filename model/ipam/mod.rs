//! The libnetwork IPAM model.
//!
//! - [`bitseq`]: the faithful run-length bitmap (17.05 and 2023 search);
//! - [`bitmap`]: a fast pool (word bitmap + summary) answering exactly like
//!   the 2023 `bitseq`, in near-constant time at any fill level;
//! - [`concurrent`]: linearizable multi-threaded allocators over it (a
//!   `Mutex` baseline and a mailbox for lock-free releases);
//! - [`ops`]: the recorded vectors' op log format (`netrace ipam ops`);
//! - [`pool`]: subnet ↔ ordinal, reserved ordinals;
//! - [`profile`]: which libnetwork version a variant runs;
//! - [`system`]: `RequestAddress`/`ReleaseAddress` over `Handle.set` as
//!   explicit phases, with concurrent `run`/`rm` actors: the model the
//!   explorer checks;
//! - [`threaded`]: the `Handle.set` protocol as real concurrent code, for
//!   loom;
//! - [`sync`]: the atomics and locks [`concurrent`] uses (`std`, or loom's
//!   under `--cfg loom`).
pub mod bitmap;
pub mod bitseq;
pub mod concurrent;
pub mod ops;
pub mod pool;
pub mod profile;
pub mod sync;
pub mod system;
pub mod threaded;
