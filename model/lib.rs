//! netrace: finds and explains race conditions in container networking.
pub mod ipam;
