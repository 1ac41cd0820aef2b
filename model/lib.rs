//! netrace finds and explains race conditions in container networking.
//!
//! It is an in-process, deterministic model of libnetwork's address
//! allocator and the key-value store under it ([`ipam`], [`store`]), run
//! by its own explorer ([`explore`]) against named properties ([`check`]),
//! described by scenario files ([`scenario`]) and driven from the command
//! line ([`cli`]). Start with README.md, then docs/user-guide.md.
//!
//! Map of the crate:
//! - [`sim`]: the [`sim::Model`] contract and traces;
//! - [`explore`]: exhaustive search, random walks, replay, shrinking,
//!   replay tokens;
//! - [`check`]: verdicts per variant and property;
//! - [`ipam`]: libnetwork's `bitseq` and `Handle.set` protocol, profiles;
//! - [`catalogue`]: the allocator catalogue over etcd (Kubernetes
//!   ClusterIP and its repair loop, more to come);
//! - [`store`]: etcd's v3 semantics, libkv's check-and-set over it, and the
//!   etcd oracle (a real etcd server and its client);
//! - [`wire`]: Ethernet, ARP, IPv4, UDP and VXLAN as real bytes; pcapng capture files;
//! - [`l2`]: the Linux bridge, vxlan device, a container's ARP stack, the
//!   neighbour subsystem with its timers on a simulated clock, and the
//!   netlink requests that program vxlan's tables;
//! - [`overlay`]: libnetwork's overlay driver, the L2 system model, and many
//!   hosts with their peer tables and the control plane;
//! - [`kernel`]: the kernel oracle, L2 schedules run on the real bridge and vxlan;
//! - [`picture`]: sequence diagrams (SVG) and the HTML report;
//! - [`scenario`]: the TOML scenario format, and `scenario::kind`, the one
//!   place a kind of scenario registers;
//! - [`fuzzing`]: the bodies of the cargo-fuzz targets;
//! - [`audit`]: `netrace audit --docker-log`: dockerd debug logs to IPAM scenarios;
//! - [`cli`]: the `netrace` command.
#![warn(missing_docs)]

// Lets files compiled both here and by a test crate (`ipam/threaded.rs`,
// compiled with loom's locks by tests/loom_handle.rs) name the crate.
extern crate self as netrace;

pub mod audit;
pub mod catalogue;
pub mod check;
pub mod cli;
pub mod explore;
pub mod fuzzing;
pub mod ipam;
pub mod kernel;
pub mod l2;
pub mod overlay;
pub mod picture;
pub mod scenario;
pub mod sim;
pub mod store;
pub mod wire;
