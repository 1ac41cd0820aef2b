//! The libnetwork IPAM model: the `bitseq` bitmap and its op log format.
pub mod bitseq;
pub mod ops;
