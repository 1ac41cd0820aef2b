//! The Linux datapath of an overlay network, as plain data: the bridge
//! ([`bridge`]), the VXLAN device ([`vxlan`]) and a container's stack
//! ([`endpoint`]), the neighbour subsystem of a container interface with
//! the kernel's timers on a simulated clock ([`neigh`], not yet wired into
//! the system model), and the netlink requests that program vxlan's tables
//! ([`netlink`]).
//!
//! Each piece is a state (`BTreeMap`s only, so states hash and iterate
//! deterministically) plus pure functions that stand for one kernel
//! function each, named in the piece's docs. Frames are real bytes
//! ([`crate::wire`]). Nothing here knows about schedules: the overlay
//! system ([`crate::overlay`]) decides which frame is processed next, and
//! the explorer decides among those choices.
//!
//! The kernel oracle (`netrace kernel`, docs/kernel-oracle.md) checks
//! these pieces against the real bridge and vxlan of the running kernel.
pub mod bridge;
pub mod endpoint;
pub mod neigh;
pub mod netlink;
pub mod vxlan;
