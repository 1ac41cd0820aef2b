//! Calico IPAM: the garbage collector's release by handle against a
//! re-created node (calico #3589, libcalico-go #1325, fix calico #5613) and
//! the block-affinity claim with a failed cleanup (libcalico-go #778, fix
//! #785; calico #6001, fix #6003), over etcd.
//!
//! Stands for projectcalico/calico and projectcalico/libcalico-go
//! (Apache-2.0), checked against the upstream code (docs/fidelity.md says
//! where; every step below is named after the function it stands for):
//!
//! - Blocks: `libcalico-go/lib/ipam/ipam_block.go`. A pool is cut into
//!   blocks; a block is one object (`/calico/ipam/v2/assignment/ipv4/block/
//!   <cidr>`) with its `Affinity` (`host:<name>`), its allocations (ordinal
//!   → attribute with the handle) and, from #5613 on, its `SequenceNumber`,
//!   incremented by every `updateBlock`, and the sequence number of each
//!   allocation (`SetSequenceNumberForOrdinal`). Every change of a block is
//!   a compare-and-swap on its revision, retried on conflict: the model
//!   takes a read and its successful swap as one step (a conflict only
//!   repeats the pair, against a newer block).
//! - `allocateip.go` (calico-node's tunnel-ip-allocator),
//!   `ensureHostTunnelAddress`: a node whose spec has no tunnel address
//!   first releases, defensively, every address of the handle
//!   `ipip-tunnel-addr-<node>` (`ReleaseByHandle`), then
//!   `assignHostTunnelAddr` (`AutoAssign` with that handle), then writes the
//!   address into the node's spec (`updateNodeWithAddress`); tunl0 gets it.
//! - The IPAM garbage collector of kube-controllers,
//!   `kube-controllers/pkg/controllers/node/ipam.go` as #5613 found it
//!   (calico 778d0c5741^): `checkAllocations` marks the tunnel addresses of
//!   a node that no longer exists as confirmed leaks (recording address,
//!   handle and, from #5613, the allocation's sequence number);
//!   `garbageCollectIPs` later makes a final `allocationIsValid` check
//!   (for a tunnel address, the node name cached by `checkAllocations`, no
//!   new read) and releases. Before #5613 the release is
//!   `ReleaseByHandle(handle)`: every address of that handle at the time
//!   of the release, including one the re-created node took after the
//!   decision (#1325's words). #5613: `ReleaseIPs` with `ReleaseOptions{
//!   Address, Handle, SequenceNumber}`; the block refuses when the
//!   allocation's handle or sequence number differ (`allocationBlock.
//!   release`, `ErrorBadSequenceNumber`).
//! - The block claim, `ipam_block_reader_writer.go`. Before #785
//!   (libcalico-go 862ef275^1), `claimNewAffineBlock` →
//!   `claimBlockAffinity`: `Create` the affinity (its error ignored),
//!   `Create` the block with `Affinity = host:<me>`; if the block exists
//!   and is not ours, `Delete` the affinity and return the error, and if
//!   that delete fails the affinity stays. `autoAssign` then only uses
//!   affine blocks whose `Affinity` names the host (`assignFromExistingBlock`
//!   with the affinity check, its error swallowed), but the stale affinity
//!   stays in the store, where calico-node's BGP configuration (confd,
//!   which watches the host's affinities) advertises the block. #785:
//!   `getPendingAffinity` writes the affinity `pending`, `claimAffineBlock`
//!   creates the block, `confirmAffinity` confirms it; the cleanup deletes
//!   the pending affinity conditioned on its revision and logs a failure;
//!   the next `autoAssign` of that host meets the stale affinity in
//!   `getBlockFromAffinity` (the block names another host) and deletes it.
//!   #6003 (for #6001): confd treats pending affinities as absent, so a
//!   stale pending affinity is not advertised while it waits.
//!
//! The actors: each node of the scenario exists at the start with its
//! tunnel address, is deleted (`DeleteNode`) and re-created under the same
//! name (`CreateNode`), then runs `ensureHostTunnelAddress` as three steps;
//! pods on a re-created node each take an address from the node's block
//! (`AutoAssign`, the pod's status written in the same step); the garbage
//! collector runs `checkAllocations` and `garbageCollectIPs` as often as
//! the scenario says; hosts each make `AutoAssign` calls that claim blocks.
//!
//! Time: the leak grace period and the collector's sync interval are not
//! clocks here but the order of events: whatever the delay between the
//! collector's decision and its release, the explorer tries every step of
//! the other actors inside it. The modelled code (778d0c5741^) marks a
//! deleted node's tunnel addresses as confirmed leaks at once; its
//! `LeakGracePeriod` delays only pod addresses of nodes that still exist,
//! which the scenarios do not have.
//!
//! Not modelled: the handle objects (`/calico/ipam/v2/handle/…`, the index
//! from a handle to its blocks; `ReleaseByHandle` here scans the blocks),
//! the collector's watch cache lagging the store (it reads the store when
//! it runs, which only narrows its window), the tunnel-ip-allocator's later
//! reconciliation (it reassigns a tunnel address the collector freed, after
//! the pod has it), pod deletion and the pod-address leak path, the
//! non-strict hunt through other hosts' blocks (`StrictAffinity` is
//! assumed), the random order in which a host walks the blocks
//! (`randomBlockGenerator`, seeded by the host name: every host here walks
//! them in ascending order, so two hosts collide on the first free block),
//! block release and deletion, IPv6.

use std::collections::BTreeMap;

use super::{put, Pool};
use crate::sim::{Checked, Model, Property, Trace, When};
use crate::store::etcd::{
    Compare, CompareResult, CompareTarget, DeleteRequest, Etcd, RangeRequest, RequestOp, Revision,
    TxnRequest,
};

/// The prefix of the block objects.
pub const BLOCKS: &str = "/calico/ipam/v2/assignment/ipv4/block/";
/// The prefix of the affinities: `/calico/ipam/v2/host/<host>/ipv4/block/<cidr>`.
pub const HOSTS: &str = "/calico/ipam/v2/host/";
/// The prefix of the node objects.
pub const NODES: &str = "/calico/resources/v3/projectcalico.org/nodes/";
/// The prefix of the pod objects.
pub const PODS: &str = "/registry/pods/default/";

/// An affinity's state (`model.BlockAffinity.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AffinityState {
    /// Before #785: an affinity has no state.
    Plain,
    /// #785: written before the block is claimed.
    Pending,
    /// #785: the block is ours.
    Confirmed,
}

/// One allocation in a block: its handle and sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alloc {
    /// The handle (`AttrPrimary`).
    pub handle: String,
    /// The block's sequence number when it was made (#5613).
    pub seq: u64,
}

/// An `AllocationBlock`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    /// The host it is affine to.
    pub affinity: String,
    /// Ordinal → allocation.
    pub allocs: BTreeMap<u32, Alloc>,
    /// `SequenceNumber`.
    pub seq: u64,
}

/// A stored object's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Obj {
    /// A block.
    Block(Block),
    /// A host's affinity to a block.
    Affinity(AffinityState),
    /// A node: the tunnel address in its spec.
    Node(Option<u32>),
    /// A pod: the address in its status.
    Pod(u32),
}

/// The profiles, in the order of the fixes.
pub const PROFILE_NAMES: [&str; 4] = ["calico-pre-785", "calico-785", "calico-5613", "calico-6003"];

/// What a variant runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoProfile {
    /// The profile's name.
    pub name: String,
    /// #785: pending and confirmed affinities, stale ones deleted on use.
    pub pending_affinities: bool,
    /// #5613: the collector releases by address, handle and sequence number.
    pub release_by_seq: bool,
    /// #6003: pending affinities are not advertised.
    pub confirmed_only: bool,
}

impl CalicoProfile {
    /// A built-in profile by name: each one has the fixes before it.
    pub fn builtin(name: &str) -> Option<CalicoProfile> {
        let level = PROFILE_NAMES.iter().position(|p| *p == name)?;
        Some(CalicoProfile {
            name: name.to_string(),
            pending_affinities: level >= 1,
            release_by_seq: level >= 2,
            confirmed_only: level >= 3,
        })
    }

    /// One line: what the profile does.
    pub fn summary(&self) -> String {
        format!(
            "{}; the collector releases {}; {} advertised",
            if self.pending_affinities {
                "affinities pending until the block is claimed, stale ones deleted on use (#785)"
            } else {
                "an affinity written before the block, deleted if the claim fails (before #785)"
            },
            if self.release_by_seq {
                "by address, handle and sequence number (#5613)"
            } else {
                "by handle (ReleaseByHandle)"
            },
            if self.confirmed_only {
                "only confirmed affinities are (#6003)"
            } else {
                "every affinity is"
            }
        )
    }
}

/// A host that claims blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Its name.
    pub name: String,
    /// Its `AutoAssign` calls, one after the other.
    pub assigns: u8,
}

/// The variant-independent description of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalicoSpec {
    /// The IP pool (every address, network address included, is usable).
    pub pool: Pool,
    /// Addresses per block.
    pub block_size: u32,
    /// Nodes: each exists with a tunnel address from its own block (node
    /// i, block i), is deleted and re-created under the same name.
    pub nodes: Vec<String>,
    /// Pods: name and the node (index) they run on once it is re-created.
    pub pods: Vec<(String, u8)>,
    /// `checkAllocations` + `garbageCollectIPs` passes.
    pub gc_runs: u8,
    /// Hosts claiming blocks (their blocks follow the nodes' blocks).
    pub hosts: Vec<HostSpec>,
    /// Deletes of an affinity after a lost claim that may fail.
    pub cleanup_failures: u8,
}

impl CalicoSpec {
    /// How many blocks the pool has.
    pub fn blocks(&self) -> u32 {
        self.pool.size / self.block_size
    }
}

/// Where a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodePhase {
    /// Up with its first tunnel address.
    Up,
    /// Its Node object was deleted.
    Deleted,
    /// Re-created; `ensureHostTunnelAddress` is next.
    Created,
    /// Old tunnel addresses released by handle.
    Released,
    /// `AutoAssign` gave it this offset (or nothing: pool full).
    Assigned(Option<u32>),
    /// The spec has the address; tunl0 has it.
    Done,
}

/// A confirmed leak as `checkAllocations` recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Leak {
    /// The address.
    pub offset: u32,
    /// Its handle.
    pub handle: String,
    /// Its allocation's sequence number.
    pub seq: u64,
}

/// The garbage collector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gc {
    /// Passes not started.
    pub runs_left: u8,
    /// The leaks `checkAllocations` found, waiting for `garbageCollectIPs`.
    pub leaks: Option<Vec<Leak>>,
}

/// Where a host's current `AutoAssign` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostPhase {
    /// Between calls.
    Idle,
    /// No affine block had room: look for an unclaimed block.
    Find,
    /// Found unclaimed block: write the affinity.
    Affinity(u32),
    /// Affinity written at this revision: create the block.
    Claim(u32, Revision),
    /// The block is ours: confirm the affinity (#785).
    Confirm(u32, Revision),
    /// The block is another host's: delete our affinity.
    Cleanup(u32, Revision),
    /// Assign from the claimed block.
    Assign(u32),
}

/// A host: its phase and the calls it has made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Host {
    /// The current call's phase.
    pub phase: HostPhase,
    /// Calls made (finished or under way).
    pub calls: u8,
}

/// The whole state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CalicoState {
    /// The store.
    pub store: Etcd<Obj>,
    /// Each node.
    pub nodes: Vec<NodePhase>,
    /// Each pod: `None` until its ADD ran, then its offset (or no room).
    pub pods: Vec<Option<Option<u32>>>,
    /// The collector.
    pub gc: Gc,
    /// Each host.
    pub hosts: Vec<Host>,
    /// Cleanup failures left.
    pub faults_left: u8,
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The node's object is deleted.
    DeleteNode(u8),
    /// The node is re-created under its name, its spec without a tunnel address.
    CreateNode(u8),
    /// `ensureHostTunnelAddress`: `ReleaseByHandle(ipip-tunnel-addr-<node>)`.
    ReleaseTunnel(u8),
    /// `assignHostTunnelAddr`: `AutoAssign` with the tunnel handle.
    AssignTunnel(u8),
    /// `updateNodeWithAddress`: the spec gets the address, tunl0 has it.
    UpdateNode(u8),
    /// A pod's CNI ADD: `AutoAssign` from its node's block.
    AssignPod(u8),
    /// The collector's `checkAllocations`.
    CheckAllocations,
    /// The collector's `garbageCollectIPs`.
    GarbageCollectIps,
    /// `autoAssign`'s affine path (`getAffineBlocks`, then per affinity
    /// `assignFromExistingBlock`; #785: `getBlockFromAffinity`).
    AffineAssign(u8),
    /// `findUnclaimedBlock` (the search of `claimNewAffineBlock`).
    FindUnclaimedBlock(u8),
    /// `claimBlockAffinity`'s affinity `Create`; #785 `getPendingAffinity`.
    WriteAffinity(u8),
    /// The block's `Create` (`claimBlockAffinity`, `claimAffineBlock`).
    CreateBlock(u8),
    /// `confirmAffinity` (#785).
    ConfirmAffinity(u8),
    /// The affinity's `Delete` after a lost claim; `true`: the request fails.
    DeleteAffinity(u8, bool),
    /// `assignFromExistingBlock` from the block just claimed.
    AssignFromBlock(u8),
}

/// A Calico model: one scenario under one profile.
#[derive(Debug)]
pub struct CalicoSystem {
    spec: CalicoSpec,
    profile: CalicoProfile,
    init: CalicoState,
}

/// The tunnel handle of a node (`generateHandleAndAttributes`).
pub fn tunnel_handle(node: &str) -> String {
    format!("ipip-tunnel-addr-{node}")
}

fn pod_handle(pod: &str) -> String {
    format!("k8s-pod-network.{pod}")
}

impl CalicoSystem {
    /// The model of `spec` under `profile`, or why the pool is too small.
    pub fn new(spec: &CalicoSpec, profile: &CalicoProfile) -> Result<Self, String> {
        let needed = spec.nodes.len() as u32 + u32::from(!spec.hosts.is_empty());
        if spec.blocks() < needed.max(1) {
            return Err(format!(
                "the pool has {} blocks of {} addresses: the nodes need one each and the hosts at least one",
                spec.blocks(),
                spec.block_size
            ));
        }
        let mut store: Etcd<Obj> = Etcd::compacting();
        for (i, n) in spec.nodes.iter().enumerate() {
            let b = i as u32;
            let block = Block {
                affinity: n.clone(),
                allocs: [(
                    0,
                    Alloc {
                        handle: tunnel_handle(n),
                        seq: 1,
                    },
                )]
                .into_iter()
                .collect(),
                seq: 2,
            };
            let s = Self::key_parts(spec, b);
            store
                .put(&put(&format!("{BLOCKS}{s}"), Obj::Block(block)))
                .expect("a valid put");
            store
                .put(&put(
                    &format!("{HOSTS}{n}/ipv4/block/{s}"),
                    Obj::Affinity(if profile.pending_affinities {
                        AffinityState::Confirmed
                    } else {
                        AffinityState::Plain
                    }),
                ))
                .expect("a valid put");
            store
                .put(&put(
                    &format!("{NODES}{n}"),
                    Obj::Node(Some(b * spec.block_size)),
                ))
                .expect("a valid put");
        }
        let init = CalicoState {
            store,
            nodes: vec![NodePhase::Up; spec.nodes.len()],
            pods: vec![None; spec.pods.len()],
            gc: Gc {
                runs_left: spec.gc_runs,
                leaks: None,
            },
            hosts: vec![
                Host {
                    phase: HostPhase::Idle,
                    calls: 0
                };
                spec.hosts.len()
            ],
            faults_left: spec.cleanup_failures,
        };
        Ok(CalicoSystem {
            spec: spec.clone(),
            profile: profile.clone(),
            init,
        })
    }

    /// The scenario as this model runs it.
    pub fn spec(&self) -> &CalicoSpec {
        &self.spec
    }

    /// The profile.
    pub fn profile(&self) -> &CalicoProfile {
        &self.profile
    }

    /// A block's CIDR as a key part: `10.65.0.4-30`.
    fn key_parts(spec: &CalicoSpec, b: u32) -> String {
        let prefix = 32 - spec.block_size.trailing_zeros();
        format!("{}-{prefix}", spec.pool.addr(b * spec.block_size))
    }

    fn block_key(&self, b: u32) -> String {
        format!("{BLOCKS}{}", Self::key_parts(&self.spec, b))
    }

    fn affinity_key(&self, host: &str, b: u32) -> String {
        format!(
            "{HOSTS}{host}/ipv4/block/{}",
            Self::key_parts(&self.spec, b)
        )
    }

    fn cidr(&self, b: u32) -> String {
        Self::key_parts(&self.spec, b).replace('-', "/")
    }

    fn ip(&self, offset: u32) -> std::net::Ipv4Addr {
        self.spec.pool.addr(offset)
    }

    /// The block `b` and its revision, if it exists.
    pub fn block(&self, store: &Etcd<Obj>, b: u32) -> Option<(Block, Revision)> {
        store.get(&self.block_key(b)).map(|kv| match &kv.value {
            Obj::Block(bl) => (bl.clone(), kv.mod_revision),
            _ => panic!("a block key holds another object"),
        })
    }

    /// Every affinity: (host, block, state, revision).
    pub fn affinities(&self, store: &Etcd<Obj>) -> Vec<(String, u32, AffinityState, Revision)> {
        let r = store
            .range(&RangeRequest {
                key: HOSTS.to_string(),
                prefix: true,
                ..RangeRequest::default()
            })
            .expect("a read of now");
        let mut out = Vec::new();
        for kv in r.kvs {
            let Obj::Affinity(st) = kv.value else {
                continue;
            };
            let rest = &kv.key[HOSTS.len()..];
            let host = rest.split('/').next().unwrap_or_default().to_string();
            let b = (0..self.spec.blocks())
                .find(|b| {
                    kv.key
                        .ends_with(&format!("/{}", Self::key_parts(&self.spec, *b)))
                })
                .expect("an affinity names a block of the pool");
            out.push((host, b, st, kv.mod_revision));
        }
        out
    }

    fn node_spec(store: &Etcd<Obj>, name: &str) -> Option<Option<u32>> {
        store
            .get(&format!("{NODES}{name}"))
            .map(|kv| match kv.value {
                Obj::Node(t) => t,
                _ => panic!("a node key holds another object"),
            })
    }

    /// Every live holder of an address: (owner, offset).
    fn holders(&self, store: &Etcd<Obj>) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for n in &self.spec.nodes {
            if let Some(Some(o)) = Self::node_spec(store, n) {
                out.push((format!("node {n} (tunl0)"), o));
            }
        }
        let r = store
            .range(&RangeRequest {
                key: PODS.to_string(),
                prefix: true,
                ..RangeRequest::default()
            })
            .expect("a read of now");
        for kv in r.kvs {
            if let Obj::Pod(o) = kv.value {
                out.push((format!("pod {}", &kv.key[PODS.len()..]), o));
            }
        }
        out
    }

    /// A compare-and-swap of block `b` read at `rev`.
    fn swap_block(store: &mut Etcd<Obj>, key: &str, rev: Revision, block: Block) -> bool {
        store
            .txn(&TxnRequest {
                compare: vec![Compare {
                    key: key.to_string(),
                    target: CompareTarget::Mod(rev),
                    result: CompareResult::Equal,
                }],
                success: vec![RequestOp::Put(put(key, Obj::Block(block)))],
                failure: vec![],
            })
            .expect("a valid transaction")
            .succeeded
    }

    /// `allocationBlock.autoAssign` + `updateBlock`: the lowest free
    /// ordinal of block `b` with `handle`, swapped in; the offset, or
    /// `None` when the block is full or absent.
    fn assign_in_block(&self, store: &mut Etcd<Obj>, b: u32, handle: String) -> Option<u32> {
        let (mut block, rev) = self.block(store, b)?;
        let ord = (0..self.spec.block_size).find(|o| !block.allocs.contains_key(o))?;
        block.allocs.insert(
            ord,
            Alloc {
                handle,
                seq: block.seq,
            },
        );
        block.seq += 1;
        let key = self.block_key(b);
        assert!(
            Self::swap_block(store, &key, rev, block),
            "read and swap are one step"
        );
        Some(b * self.spec.block_size + ord)
    }

    /// `ReleaseByHandle`: every allocation with `handle`, in every block;
    /// the offsets released.
    fn release_by_handle(&self, store: &mut Etcd<Obj>, handle: &str) -> Vec<u32> {
        let mut released = Vec::new();
        for b in 0..self.spec.blocks() {
            let Some((mut block, rev)) = self.block(store, b) else {
                continue;
            };
            let ords: Vec<u32> = block
                .allocs
                .iter()
                .filter(|(_, a)| a.handle == handle)
                .map(|(o, _)| *o)
                .collect();
            if ords.is_empty() {
                continue;
            }
            for o in &ords {
                block.allocs.remove(o);
                released.push(b * self.spec.block_size + o);
            }
            block.seq += 1;
            let key = self.block_key(b);
            assert!(Self::swap_block(store, &key, rev, block));
        }
        released
    }

    /// `ReleaseIPs` with `ReleaseOptions{Address, Handle, SequenceNumber}`:
    /// `Err` says why the block refused.
    fn release_checked(&self, store: &mut Etcd<Obj>, leak: &Leak) -> Result<(), String> {
        let b = leak.offset / self.spec.block_size;
        let ord = leak.offset % self.spec.block_size;
        let Some((mut block, rev)) = self.block(store, b) else {
            return Err("no block".into());
        };
        match block.allocs.get(&ord) {
            None => return Err("not allocated".into()),
            Some(a) if a.seq != leak.seq => {
                return Err(format!(
                    "ErrorBadSequenceNumber: requested {}, the allocation has {}",
                    leak.seq, a.seq
                ))
            }
            Some(a) if a.handle != leak.handle => {
                return Err(format!("handle {} is not {}", a.handle, leak.handle))
            }
            Some(_) => {}
        }
        block.allocs.remove(&ord);
        block.seq += 1;
        let key = self.block_key(b);
        assert!(Self::swap_block(store, &key, rev, block));
        Ok(())
    }

    /// `checkAllocations`: the tunnel allocations of nodes that do not
    /// exist, when no pod allocation of that node is valid.
    fn check_allocations(&self, store: &Etcd<Obj>) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for (i, n) in self.spec.nodes.iter().enumerate() {
            if Self::node_spec(store, n).is_some() {
                continue;
            }
            // A valid pod allocation of the node blocks its cleanup.
            let pod_valid = self.spec.pods.iter().any(|(p, node)| {
                usize::from(*node) == i && store.get(&format!("{PODS}{p}")).is_some()
            });
            if pod_valid {
                continue;
            }
            let handle = tunnel_handle(n);
            for b in 0..self.spec.blocks() {
                let Some((block, _)) = self.block(store, b) else {
                    continue;
                };
                for (o, a) in &block.allocs {
                    if a.handle == handle {
                        leaks.push(Leak {
                            offset: b * self.spec.block_size + o,
                            handle: handle.clone(),
                            seq: a.seq,
                        });
                    }
                }
            }
        }
        leaks
    }

    /// The blocks a host may advertise: its affinities (all, or the
    /// confirmed ones under #6003).
    fn advertised(&self, store: &Etcd<Obj>) -> Vec<(String, u32)> {
        self.affinities(store)
            .into_iter()
            .filter(|(_, _, st, _)| !(self.profile.confirmed_only && *st == AffinityState::Pending))
            .map(|(h, b, _, _)| (h, b))
            .collect()
    }

    /// The first block of the hosts' range that does not exist.
    fn unclaimed(&self, store: &Etcd<Obj>) -> Option<u32> {
        (self.spec.nodes.len() as u32..self.spec.blocks()).find(|b| self.block(store, *b).is_none())
    }

    fn put_pod(store: &mut Etcd<Obj>, name: &str, offset: u32) {
        store
            .put(&put(&format!("{PODS}{name}"), Obj::Pod(offset)))
            .expect("a valid put");
    }

    fn host_pod(&self, h: u8, call: u8) -> String {
        format!("{}-{call}", self.spec.hosts[h as usize].name)
    }

    fn blocks_text(&self, store: &Etcd<Obj>) -> Vec<String> {
        (0..self.spec.blocks())
            .filter_map(|b| {
                let (bl, rev) = self.block(store, b)?;
                let allocs: Vec<String> = bl
                    .allocs
                    .iter()
                    .map(|(o, a)| {
                        format!(
                            "{}→{} (seq {})",
                            self.ip(b * self.spec.block_size + o),
                            a.handle,
                            a.seq
                        )
                    })
                    .collect();
                Some(format!(
                    "block {} (r{rev}, host:{}): [{}]",
                    self.cidr(b),
                    bl.affinity,
                    allocs.join(", ")
                ))
            })
            .collect()
    }
}

fn unique(m: &CalicoSystem, s: &CalicoState) -> Result<Checked, String> {
    let h = m.holders(&s.store);
    super::unique(&m.spec.pool, h.iter().map(|(n, o)| (n.as_str(), *o)))
}

fn no_leak(m: &CalicoSystem, s: &CalicoState) -> Result<Checked, String> {
    let mut allocated = 0u64;
    for b in 0..m.spec.blocks() {
        if let Some((bl, _)) = m.block(&s.store, b) {
            for o in bl.allocs.keys() {
                allocated |= 1u64 << (b * m.spec.block_size + o);
            }
        }
    }
    let used = m
        .holders(&s.store)
        .iter()
        .fold(0u64, |u, (_, o)| u | 1u64 << o);
    // One more collector pass, alone: it releases what checkAllocations
    // finds (the grace period has passed for everything at quiescence).
    let freed = m
        .check_allocations(&s.store)
        .iter()
        .fold(0u64, |f, l| f | 1u64 << l.offset);
    super::no_leak(
        &m.spec.pool,
        allocated,
        allocated & !freed,
        used,
        "one more pass of the IPAM garbage collector",
    )
}

fn tunnel_addr_kept(m: &CalicoSystem, s: &CalicoState) -> Result<Checked, String> {
    let mut any = false;
    for n in &m.spec.nodes {
        let Some(Some(o)) = CalicoSystem::node_spec(&s.store, n) else {
            continue;
        };
        any = true;
        let b = o / m.spec.block_size;
        let alloc = m
            .block(&s.store, b)
            .and_then(|(bl, _)| bl.allocs.get(&(o % m.spec.block_size)).cloned());
        if alloc.as_ref().map(|a| a.handle.as_str()) != Some(tunnel_handle(n).as_str()) {
            return Err(format!(
                "{} is on node {n}'s tunl0 but IPAM has it {}",
                m.ip(o),
                match alloc {
                    Some(a) => format!("allocated to {}", a.handle),
                    None => "free".to_string(),
                }
            ));
        }
    }
    Ok(Checked::when(any))
}

fn one_block_owner(m: &CalicoSystem, s: &CalicoState) -> Result<Checked, String> {
    let adv = m.advertised(&s.store);
    for (h, b) in &adv {
        let owner = m.block(&s.store, *b).map(|(bl, _)| bl.affinity);
        if owner.as_deref() != Some(h.as_str()) {
            return Err(format!(
                "host {h} has an affinity to block {} and advertises it, but {}",
                m.cidr(*b),
                match owner {
                    Some(o) => format!("the block is host {o}'s"),
                    None => "the block does not exist".to_string(),
                }
            ));
        }
    }
    Ok(Checked::when(!adv.is_empty()))
}

impl Model for CalicoSystem {
    type State = CalicoState;
    type Action = Action;

    fn init_state(&self) -> CalicoState {
        self.init.clone()
    }

    fn actions(&self, s: &CalicoState, out: &mut Vec<Action>) {
        for (i, phase) in s.nodes.iter().enumerate() {
            let n = i as u8;
            out.extend(match phase {
                NodePhase::Up => Some(Action::DeleteNode(n)),
                NodePhase::Deleted => Some(Action::CreateNode(n)),
                NodePhase::Created => Some(Action::ReleaseTunnel(n)),
                NodePhase::Released => Some(Action::AssignTunnel(n)),
                NodePhase::Assigned(_) => Some(Action::UpdateNode(n)),
                NodePhase::Done => None,
            });
        }
        for (i, pod) in s.pods.iter().enumerate() {
            let node = self.spec.pods[i].1 as usize;
            let created = !matches!(s.nodes[node], NodePhase::Up | NodePhase::Deleted);
            if pod.is_none() && created {
                out.push(Action::AssignPod(i as u8));
            }
        }
        match &s.gc.leaks {
            Some(_) => out.push(Action::GarbageCollectIps),
            None if s.gc.runs_left > 0 => out.push(Action::CheckAllocations),
            None => {}
        }
        for (i, host) in s.hosts.iter().enumerate() {
            let h = i as u8;
            match host.phase {
                HostPhase::Idle if host.calls < self.spec.hosts[i].assigns => {
                    out.push(Action::AffineAssign(h))
                }
                HostPhase::Idle => {}
                HostPhase::Find => out.push(Action::FindUnclaimedBlock(h)),
                HostPhase::Affinity(_) => out.push(Action::WriteAffinity(h)),
                HostPhase::Claim(..) => out.push(Action::CreateBlock(h)),
                HostPhase::Confirm(..) => out.push(Action::ConfirmAffinity(h)),
                HostPhase::Cleanup(..) => {
                    out.push(Action::DeleteAffinity(h, false));
                    if s.faults_left > 0 {
                        out.push(Action::DeleteAffinity(h, true));
                    }
                }
                HostPhase::Assign(_) => out.push(Action::AssignFromBlock(h)),
            }
        }
    }

    fn next_state(&self, s: &CalicoState, a: &Action, trace: &mut Trace) -> CalicoState {
        let mut n = s.clone();
        match *a {
            Action::DeleteNode(i) => {
                let name = &self.spec.nodes[i as usize];
                n.store
                    .delete(&DeleteRequest {
                        key: format!("{NODES}{name}"),
                        ..DeleteRequest::default()
                    })
                    .expect("a valid delete");
                trace.line(format!(
                    "Node {name} deleted; its tunnel address stays allocated with handle {}",
                    tunnel_handle(name)
                ));
                n.nodes[i as usize] = NodePhase::Deleted;
            }
            Action::CreateNode(i) => {
                let name = &self.spec.nodes[i as usize];
                n.store
                    .put(&put(&format!("{NODES}{name}"), Obj::Node(None)))
                    .expect("a valid put");
                trace.line(format!(
                    "Node {name} re-created: no tunnel address in its spec"
                ));
                n.nodes[i as usize] = NodePhase::Created;
            }
            Action::ReleaseTunnel(i) => {
                let name = &self.spec.nodes[i as usize];
                let handle = tunnel_handle(name);
                let r = self.release_by_handle(&mut n.store, &handle);
                if trace.is_on() {
                    let ips: Vec<String> = r.iter().map(|o| self.ip(*o).to_string()).collect();
                    trace.line(format!(
                        "ensureHostTunnelAddress: ReleaseByHandle({handle}) releases [{}]",
                        ips.join(", ")
                    ));
                }
                n.nodes[i as usize] = NodePhase::Released;
            }
            Action::AssignTunnel(i) => {
                let name = &self.spec.nodes[i as usize];
                let got = self.assign_in_block(&mut n.store, u32::from(i), tunnel_handle(name));
                trace.line(match got {
                    Some(o) => format!(
                        "assignHostTunnelAddr: AutoAssign gives {} (handle {})",
                        self.ip(o),
                        tunnel_handle(name)
                    ),
                    None => "assignHostTunnelAddr: the block is full".to_string(),
                });
                n.nodes[i as usize] = NodePhase::Assigned(got);
            }
            Action::UpdateNode(i) => {
                let name = &self.spec.nodes[i as usize];
                let NodePhase::Assigned(got) = s.nodes[i as usize] else {
                    unreachable!("UpdateNode after AssignTunnel")
                };
                n.store
                    .put(&put(&format!("{NODES}{name}"), Obj::Node(got)))
                    .expect("a valid put");
                if let Some(o) = got {
                    trace.line(format!(
                        "updateNodeWithAddress: node {name}'s IPv4IPIPTunnelAddr = {}; tunl0 has it",
                        self.ip(o)
                    ));
                }
                n.nodes[i as usize] = NodePhase::Done;
            }
            Action::AssignPod(p) => {
                let (name, node) = &self.spec.pods[p as usize];
                let got = self.assign_in_block(&mut n.store, u32::from(*node), pod_handle(name));
                match got {
                    Some(o) => {
                        Self::put_pod(&mut n.store, name, o);
                        trace.line(format!(
                            "CNI ADD: AutoAssign gives pod {name} {}",
                            self.ip(o)
                        ));
                    }
                    None => trace.line(format!("CNI ADD: no free address for pod {name}")),
                }
                n.pods[p as usize] = Some(got);
            }
            Action::CheckAllocations => {
                let leaks = self.check_allocations(&s.store);
                if trace.is_on() {
                    let v: Vec<String> = leaks
                        .iter()
                        .map(|l| format!("{} ({}, seq {})", self.ip(l.offset), l.handle, l.seq))
                        .collect();
                    trace.line(format!(
                        "checkAllocations: confirmed leaks [{}]",
                        v.join(", ")
                    ));
                }
                n.gc.runs_left -= 1;
                n.gc.leaks = Some(leaks);
            }
            Action::GarbageCollectIps => {
                let leaks = n.gc.leaks.take().expect("checked");
                for l in &leaks {
                    if self.profile.release_by_seq {
                        let r = self.release_checked(&mut n.store, l);
                        trace.line(match r {
                            Ok(()) => format!(
                                "garbageCollectIPs: ReleaseIPs({}, {}, seq {}) releases it",
                                self.ip(l.offset),
                                l.handle,
                                l.seq
                            ),
                            Err(e) => format!(
                                "garbageCollectIPs: ReleaseIPs({}, {}, seq {}) refused: {e}",
                                self.ip(l.offset),
                                l.handle,
                                l.seq
                            ),
                        });
                    } else {
                        let r = self.release_by_handle(&mut n.store, &l.handle);
                        if trace.is_on() {
                            let ips: Vec<String> =
                                r.iter().map(|o| self.ip(*o).to_string()).collect();
                            trace.line(format!(
                                "garbageCollectIPs: leak {}; ReleaseByHandle({}) releases [{}]",
                                self.ip(l.offset),
                                l.handle,
                                ips.join(", ")
                            ));
                        }
                    }
                }
            }
            Action::AffineAssign(h) => {
                let host = &self.spec.hosts[h as usize].name;
                let call = s.hosts[h as usize].calls;
                n.hosts[h as usize].calls += 1;
                let mut got = None;
                for (ah, b, st, rev) in self.affinities(&s.store) {
                    if &ah != host {
                        continue;
                    }
                    let owner = self.block(&n.store, b).map(|(bl, _)| bl.affinity);
                    if owner.as_deref() != Some(host.as_str()) {
                        if self.profile.pending_affinities && owner.is_some() {
                            // getBlockFromAffinity: a stale affinity, deleted.
                            let key = self.affinity_key(host, b);
                            let ok = n
                                .store
                                .txn(&TxnRequest {
                                    compare: vec![Compare {
                                        key: key.clone(),
                                        target: CompareTarget::Mod(rev),
                                        result: CompareResult::Equal,
                                    }],
                                    success: vec![RequestOp::Delete(DeleteRequest {
                                        key,
                                        ..DeleteRequest::default()
                                    })],
                                    failure: vec![],
                                })
                                .expect("a valid transaction")
                                .succeeded;
                            trace.line(format!(
                                "getBlockFromAffinity: block {} is not ours: stale affinity {}",
                                self.cidr(b),
                                if ok { "deleted" } else { "changed, kept" }
                            ));
                        } else {
                            trace.line(format!(
                                "assignFromExistingBlock {}: affinity check fails (block is {}), next",
                                self.cidr(b),
                                owner.as_deref().unwrap_or("absent")
                            ));
                        }
                        continue;
                    }
                    if self.profile.pending_affinities && st == AffinityState::Pending {
                        n.store
                            .put(&put(
                                &self.affinity_key(host, b),
                                Obj::Affinity(AffinityState::Confirmed),
                            ))
                            .expect("a valid put");
                    }
                    got =
                        self.assign_in_block(&mut n.store, b, pod_handle(&self.host_pod(h, call)));
                    if got.is_some() {
                        break;
                    }
                }
                match got {
                    Some(o) => {
                        let pod = self.host_pod(h, call);
                        Self::put_pod(&mut n.store, &pod, o);
                        trace.line(format!(
                            "autoAssign: affine block gives pod {pod} {}",
                            self.ip(o)
                        ));
                    }
                    None => {
                        trace.line("autoAssign: no affine block with room: claim a new block");
                        n.hosts[h as usize].phase = HostPhase::Find;
                    }
                }
            }
            Action::FindUnclaimedBlock(h) => match self.unclaimed(&s.store) {
                Some(b) => {
                    trace.line(format!(
                        "findUnclaimedBlock: {} does not exist",
                        self.cidr(b)
                    ));
                    n.hosts[h as usize].phase = HostPhase::Affinity(b);
                }
                None => {
                    trace.line("findUnclaimedBlock: no free blocks; the call fails");
                    n.hosts[h as usize].phase = HostPhase::Idle;
                }
            },
            Action::WriteAffinity(h) => {
                let HostPhase::Affinity(b) = s.hosts[h as usize].phase else {
                    unreachable!()
                };
                let host = &self.spec.hosts[h as usize].name;
                let key = self.affinity_key(host, b);
                let existing = s.store.get(&key).map(|kv| kv.value.clone());
                let state = if self.profile.pending_affinities {
                    match existing {
                        Some(Obj::Affinity(AffinityState::Confirmed)) => AffinityState::Confirmed,
                        _ => AffinityState::Pending,
                    }
                } else {
                    AffinityState::Plain
                };
                if existing != Some(Obj::Affinity(state)) {
                    n.store
                        .put(&put(&key, Obj::Affinity(state)))
                        .expect("a valid put");
                }
                let rev = n.store.get(&key).expect("written").mod_revision;
                trace.line(format!(
                    "{}: affinity {host} → {} ({state:?})",
                    if self.profile.pending_affinities {
                        "getPendingAffinity"
                    } else {
                        "claimBlockAffinity: Create"
                    },
                    self.cidr(b)
                ));
                n.hosts[h as usize].phase = HostPhase::Claim(b, rev);
            }
            Action::CreateBlock(h) => {
                let HostPhase::Claim(b, rev) = s.hosts[h as usize].phase else {
                    unreachable!()
                };
                let host = &self.spec.hosts[h as usize].name;
                let key = self.block_key(b);
                let block = Block {
                    affinity: host.clone(),
                    allocs: BTreeMap::new(),
                    seq: 0,
                };
                let created = n
                    .store
                    .txn(&TxnRequest {
                        compare: vec![Compare {
                            key: key.clone(),
                            target: CompareTarget::Version(0),
                            result: CompareResult::Equal,
                        }],
                        success: vec![RequestOp::Put(put(&key, Obj::Block(block)))],
                        failure: vec![RequestOp::Range(RangeRequest {
                            key: key.clone(),
                            ..RangeRequest::default()
                        })],
                    })
                    .expect("a valid transaction")
                    .succeeded;
                let owner = self.block(&n.store, b).expect("exists").0.affinity;
                let next = if created || &owner == host {
                    trace.line(format!(
                        "Create block {}: {}",
                        self.cidr(b),
                        if created {
                            "created, host:".to_string() + host
                        } else {
                            "exists, already ours".to_string()
                        }
                    ));
                    if self.profile.pending_affinities {
                        HostPhase::Confirm(b, rev)
                    } else {
                        HostPhase::Assign(b)
                    }
                } else {
                    trace.line(format!(
                        "Create block {}: exists, host:{owner}: another host beat us",
                        self.cidr(b)
                    ));
                    HostPhase::Cleanup(b, rev)
                };
                n.hosts[h as usize].phase = next;
            }
            Action::ConfirmAffinity(h) => {
                let HostPhase::Confirm(b, _) = s.hosts[h as usize].phase else {
                    unreachable!()
                };
                let host = &self.spec.hosts[h as usize].name;
                n.store
                    .put(&put(
                        &self.affinity_key(host, b),
                        Obj::Affinity(AffinityState::Confirmed),
                    ))
                    .expect("a valid put");
                trace.line(format!("confirmAffinity: {host} → {}", self.cidr(b)));
                n.hosts[h as usize].phase = HostPhase::Assign(b);
            }
            Action::DeleteAffinity(h, fails) => {
                let HostPhase::Cleanup(b, rev) = s.hosts[h as usize].phase else {
                    unreachable!()
                };
                let host = &self.spec.hosts[h as usize].name;
                let key = self.affinity_key(host, b);
                if fails {
                    n.faults_left -= 1;
                    trace.line(format!(
                        "Delete affinity {host} → {}: the request fails; the affinity stays",
                        self.cidr(b)
                    ));
                } else if self.profile.pending_affinities {
                    n.store
                        .txn(&TxnRequest {
                            compare: vec![Compare {
                                key: key.clone(),
                                target: CompareTarget::Mod(rev),
                                result: CompareResult::Equal,
                            }],
                            success: vec![RequestOp::Delete(DeleteRequest {
                                key,
                                ..DeleteRequest::default()
                            })],
                            failure: vec![],
                        })
                        .expect("a valid transaction");
                    trace.line(format!("Delete pending affinity {host} → {}", self.cidr(b)));
                } else {
                    n.store
                        .delete(&DeleteRequest {
                            key,
                            ..DeleteRequest::default()
                        })
                        .expect("a valid delete");
                    trace.line(format!("Delete affinity {host} → {}", self.cidr(b)));
                }
                n.hosts[h as usize].phase = if self.profile.pending_affinities {
                    // errBlockClaimConflict: find a new one.
                    HostPhase::Find
                } else {
                    trace.line("claimNewAffineBlock returns the error: the call fails");
                    HostPhase::Idle
                };
            }
            Action::AssignFromBlock(h) => {
                let HostPhase::Assign(b) = s.hosts[h as usize].phase else {
                    unreachable!()
                };
                let call = s.hosts[h as usize].calls - 1;
                let pod = self.host_pod(h, call);
                match self.assign_in_block(&mut n.store, b, pod_handle(&pod)) {
                    Some(o) => {
                        Self::put_pod(&mut n.store, &pod, o);
                        trace.line(format!(
                            "assignFromExistingBlock {}: pod {pod} gets {}",
                            self.cidr(b),
                            self.ip(o)
                        ));
                    }
                    None => trace.line("assignFromExistingBlock: the block is full"),
                }
                n.hosts[h as usize].phase = HostPhase::Idle;
            }
        }
        n
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: "ipam.unique",
                when: When::Always,
                summary: "no two live objects (a node's tunl0, a pod) have one address",
                check: unique,
            },
            Property {
                name: "ipam.no_leak",
                when: When::Quiescent,
                summary: "at quiescence, after one more pass of the IPAM garbage collector, every address no live object uses is free",
                check: no_leak,
            },
            Property {
                name: "calico.tunnel_addr_kept",
                when: When::Always,
                summary: "the address on a live node's tunl0 is allocated in IPAM to that node's tunnel handle",
                check: tunnel_addr_kept,
            },
            Property {
                name: "calico.one_block_owner",
                when: When::Quiescent,
                summary: "at quiescence, every advertised block affinity names the host that owns the block",
                check: one_block_owner,
            },
        ]
    }

    fn describe(&self, _s: &CalicoState, a: &Action) -> String {
        let node = |i: u8| &self.spec.nodes[i as usize];
        let host = |i: u8| &self.spec.hosts[i as usize].name;
        match *a {
            Action::DeleteNode(i) => format!("node {}: deleted", node(i)),
            Action::CreateNode(i) => format!("node {}: re-created", node(i)),
            Action::ReleaseTunnel(i) => {
                format!(
                    "calico-node {}: ReleaseByHandle (old tunnel addresses)",
                    node(i)
                )
            }
            Action::AssignTunnel(i) => format!("calico-node {}: assignHostTunnelAddr", node(i)),
            Action::UpdateNode(i) => format!("calico-node {}: updateNodeWithAddress", node(i)),
            Action::AssignPod(p) => {
                format!("pod {}: CNI ADD, AutoAssign", self.spec.pods[p as usize].0)
            }
            Action::CheckAllocations => "IPAM GC: checkAllocations".to_string(),
            Action::GarbageCollectIps => "IPAM GC: garbageCollectIPs".to_string(),
            Action::AffineAssign(h) => format!("host {}: autoAssign, affine blocks", host(h)),
            Action::FindUnclaimedBlock(h) => format!("host {}: findUnclaimedBlock", host(h)),
            Action::WriteAffinity(h) => format!("host {}: write affinity", host(h)),
            Action::CreateBlock(h) => format!("host {}: create block", host(h)),
            Action::ConfirmAffinity(h) => format!("host {}: confirmAffinity", host(h)),
            Action::DeleteAffinity(h, false) => format!("host {}: delete affinity", host(h)),
            Action::DeleteAffinity(h, true) => {
                format!("host {}: delete affinity (the request fails)", host(h))
            }
            Action::AssignFromBlock(h) => format!("host {}: assignFromExistingBlock", host(h)),
        }
    }

    fn action_key(&self, _s: &CalicoState, a: &Action) -> u64 {
        const GC: u64 = 0xff;
        let (actor, tag) = match *a {
            Action::DeleteNode(i) => (u64::from(i), 1),
            Action::CreateNode(i) => (u64::from(i), 2),
            Action::ReleaseTunnel(i) => (u64::from(i), 3),
            Action::AssignTunnel(i) => (u64::from(i), 4),
            Action::UpdateNode(i) => (u64::from(i), 5),
            Action::AssignPod(p) => (0x40 + u64::from(p), 6),
            Action::CheckAllocations => (GC, 7),
            Action::GarbageCollectIps => (GC, 8),
            Action::AffineAssign(h) => (0x80 + u64::from(h), 9),
            Action::FindUnclaimedBlock(h) => (0x80 + u64::from(h), 10),
            Action::WriteAffinity(h) => (0x80 + u64::from(h), 11),
            Action::CreateBlock(h) => (0x80 + u64::from(h), 12),
            Action::ConfirmAffinity(h) => (0x80 + u64::from(h), 13),
            Action::DeleteAffinity(h, false) => (0x80 + u64::from(h), 14),
            Action::DeleteAffinity(h, true) => (0x80 + u64::from(h), 15),
            Action::AssignFromBlock(h) => (0x80 + u64::from(h), 16),
        };
        actor | tag << 8
    }

    fn summarize(&self, s: &CalicoState) -> Vec<String> {
        let mut out = self.blocks_text(&s.store);
        let affs: Vec<String> = self
            .affinities(&s.store)
            .iter()
            .map(|(h, b, st, _)| format!("{h}→{} ({st:?})", self.cidr(*b)))
            .collect();
        if !affs.is_empty() {
            out.push(format!("affinities: [{}]", affs.join(", ")));
        }
        let holders: Vec<String> = self
            .holders(&s.store)
            .iter()
            .map(|(n, o)| format!("{n}={}", self.ip(*o)))
            .collect();
        out.push(format!("holders: [{}]", holders.join(", ")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CalicoSpec {
        CalicoSpec {
            pool: Pool {
                cidr: "10.65.0.0/29".parse().unwrap(),
                first: "10.65.0.0".parse().unwrap(),
                size: 8,
            },
            block_size: 4,
            nodes: vec!["n1".into()],
            pods: vec![],
            gc_runs: 0,
            hosts: vec![],
            cleanup_failures: 0,
        }
    }

    #[test]
    fn release_by_handle_frees_every_address_of_the_handle_and_release_by_seq_only_its_own() {
        let p = CalicoProfile::builtin("calico-5613").unwrap();
        let m = CalicoSystem::new(&spec(), &p).unwrap();
        let mut store = m.init_state().store;
        let old = m.check_allocations(&store);
        assert!(old.is_empty(), "the node exists");
        // The node's handle takes a second address: by handle frees both.
        let o = m
            .assign_in_block(&mut store, 0, tunnel_handle("n1"))
            .unwrap();
        assert_eq!(o, 1);
        let mut s2 = store.clone();
        assert_eq!(
            m.release_by_handle(&mut s2, &tunnel_handle("n1")),
            vec![0, 1]
        );
        // By address, handle and sequence number: a stale number is refused.
        let leak = Leak {
            offset: 1,
            handle: tunnel_handle("n1"),
            seq: 1,
        };
        let e = m.release_checked(&mut store, &leak).unwrap_err();
        assert!(e.contains("ErrorBadSequenceNumber"), "{e}");
        let right = Leak { seq: 2, ..leak };
        assert_eq!(m.release_checked(&mut store, &right), Ok(()));
    }

    #[test]
    fn profiles_accumulate_the_fixes() {
        let p = CalicoProfile::builtin("calico-pre-785").unwrap();
        assert!(!p.pending_affinities && !p.release_by_seq && !p.confirmed_only);
        let p = CalicoProfile::builtin("calico-785").unwrap();
        assert!(p.pending_affinities && !p.release_by_seq && !p.confirmed_only);
        let p = CalicoProfile::builtin("calico-5613").unwrap();
        assert!(p.pending_affinities && p.release_by_seq && !p.confirmed_only);
        let p = CalicoProfile::builtin("calico-6003").unwrap();
        assert!(p.pending_affinities && p.release_by_seq && p.confirmed_only);
        assert!(CalicoProfile::builtin("calico-3.22").is_none());
    }
}
