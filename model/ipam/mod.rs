//! The libnetwork IPAM model.
//!
//! - [`bitseq`]: the faithful run-length bitmap (17.05 and 2023 search);
//! - [`ops`]: the recorded vectors' op log format (`netrace ipam ops`);
//! - [`pool`]: subnet ↔ ordinal, reserved ordinals;
//! - [`profile`]: which libnetwork version a variant runs;
//! - [`system`]: `RequestAddress`/`ReleaseAddress` over `Handle.set` as
//!   explicit phases, with concurrent `run`/`rm` actors: the model the
//!   explorer checks.
pub mod bitseq;
pub mod ops;
pub mod pool;
pub mod profile;
pub mod system;
