//! The allocator system: libnetwork's `RequestAddress` / `ReleaseAddress`
//! over `bitseq.Handle.set`, cut into the phases at which real goroutines
//! interleave, with concurrent `docker run` and `docker rm` actors.
//!
//! Upstream: `ipam/allocator.go` (`RequestAddress`, `ReleaseAddress`,
//! `getAddress`), `bitseq/sequence.go` (`Handle.set`, `SetAny`), and for
//! the locks `network.go` (`CreateEndpoint`, `networkLocker`, #1808) and
//! the 18.03 `Handle.set` (#2105); all Apache-2.0, rewritten here from
//! their documented behaviour.
//!
//! A `run` actor is one `docker run` on the network: `CreateEndpoint`
//! (optionally under the network lock) calls `RequestAddress`, which calls
//! `SetAny`/`SetAnyInRange`. An `rm` actor is one `docker rm`: the endpoint
//! is deleted, then `ReleaseAddress` calls `Unset`. Each actor advances one
//! phase per step:
//!
//! | phase | upstream | touches |
//! |---|---|---|
//! | `netlock` | `networkLocker.Lock(n.id)` (17.06+) | the network lock |
//! | `precheck` | `SetAny`: `if h.Unselected() == 0` | reads the handle |
//! | `read` | `h.Lock(); store = h.store; h.Unlock()`, then `store.GetObject` | the store (if any); 18.03 takes the handle lock here |
//! | `compute` | `h.Lock()`; `getAvailableFromCurrent` / `checkIfAvailable`; `h.curr = ret+1`; `nh := h.getCopy()`; `h.Unlock()` | reads the handle, writes `curr` |
//! | `modify` | `pushReservation` on `nh`, `nh.unselected±1` | the private copy only |
//! | `write` | `nh.writeToStore()`: no store → returns; store → `AtomicPut` at `nh.dbIndex`, `ErrKeyModified` → retry from `read` | the store |
//! | `commit` | `h.Lock(); h.head = nh.head; h.unselected = ...; h.Unlock()` | writes the handle; the endpoint now holds its address |
//! | `netunlock` | `networkLocker.Unlock(n.id)` | the network lock |
//! | `delete` | `endpoint.Delete` → `releaseAddress` (rm only) | the endpoint stops holding its address |
//!
//! ## Endpoint records and recovery ([`IpamSpec::endpoints`])
//!
//! Classic Swarm keeps each endpoint of a global-scope network as a record
//! in the cluster store beside the address bitmask (libnetwork
//! `network.go` `CreateEndpoint`: `ep.assignAddress` then
//! `updateToStore(ep)`; `endpoint.go` `Delete`: `deleteFromStore(ep)` then
//! `releaseAddress`). With `endpoints` on, a run gains two phases and an rm's
//! `delete` also deletes the record:
//!
//! | phase | upstream | touches |
//! |---|---|---|
//! | `epstore` | `CreateEndpoint`: `updateToStore(ep)` after the address | the endpoint's record appears in the store |
//! | `join` | the daemon's `connectToNetwork`: `NewSandbox`, `ep.Join` → `sb.storeUpdate()` lists the endpoint in the local sandbox store | the container is up |
//! | `delete` | `sb.delete` → `ep.Leave`, `ep.Delete`: `deleteFromStore(ep)` | the record is gone, the endpoint no longer holds its address |
//!
//! A daemon failure ([`Faults::crashes`]) then ends the way libnetwork's
//! restart leaves it: the endpoint objects die with the process; at start
//! `sandboxCleanup` deletes (`ep.Delete(true)`) the endpoints that a stored
//! sandbox lists, which a run killed before `join` has not got yet, and
//! `cleanupLocalEndpoints` removes stale endpoints of *local*-scope
//! networks only, so a global-scope record written by `epstore` stays. An
//! rm killed after `delete` cannot be finished either: its sandbox's
//! cleanup finds no record (`getEndpointFromStore` fails) and releases
//! nothing. Every run the failure killed is started again with the same
//! name: `lookup` is `CreateEndpoint`'s `EndpointByName`, which reads the
//! records from the store and fails with "endpoint with name X already
//! exists in network N" when a stale one is there. With the profile's
//! `force_disconnect`, the operator first runs `docker network disconnect
//! -f N X` (moby `ForceEndpointDelete` → `ep.Delete(true)`): `disconnect`
//! deletes a record found under that name and the release phases after it
//! (`read` … `commit`) release its address.
//!
//! Containers that were up when their daemon failed are modelled as staying
//! up with their address: their stored sandbox lists their endpoint, the
//! cleanup deletes it and releases the address, and the restart allocates
//! again, one sequential `Handle.set` after another; no record is left
//! behind, and the model does not follow the new address.
//!
//! Not modelled: IPv6, the endpoint count (`IncEndpointCnt`), the
//! endpoint's join record update, the daemon restart's own cleanup racing
//! other daemons (it is a sequence of compare-and-swaps, like any
//! `Handle.set`), or the store failing in ways other than a CAS conflict or
//! a timeout.

use std::hash::Hash;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::bitseq::{Bitseq, BitseqError, Pos, Request};
use super::pool::Pool;
use super::profile::Profile;
use crate::sim::{Checked, Model, Property, Trace, When};
use crate::store::{KeyValue, KvStore, StoreError};

mod pack;
mod sketch;

/// Names a container in a scenario: by name or by the address it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A container name.
    Name(String),
    /// The container holding this address at that point.
    Address(Ipv4Addr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => f.write_str(n),
            Target::Address(a) => write!(f, "{a}"),
        }
    }
}

/// One concurrent operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorKind {
    /// `docker run --name NAME` on the network.
    Run(String),
    /// `docker rm -f TARGET`.
    Rm(Target),
}

/// One sequential setup operation (on daemon 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupOp {
    /// Start a container with this name.
    Run(String),
    /// Remove a running container.
    Rm(Target),
}

/// A concurrent operation and the daemon it runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorSpec {
    /// What it does.
    pub kind: ActorKind,
    /// Which daemon (0-based); more than one needs a store.
    pub daemon: usize,
}

/// The allocator part of a scenario, independent of the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpamSpec {
    /// The network's name (`bridge`).
    pub network: String,
    /// The subnet.
    pub subnet: Ipv4Net,
    /// The gateway; `None` = the first host address.
    pub gateway: Option<Ipv4Addr>,
    /// `--ip-range`.
    pub ip_range: Option<Ipv4Net>,
    /// Operations applied one after another before the concurrent phase.
    pub setup: Vec<SetupOp>,
    /// The concurrent operations.
    pub actors: Vec<ActorSpec>,
    /// How many store faults the explorer may inject.
    pub faults: Faults,
    /// Classic Swarm's endpoint records in the cluster store, the
    /// daemon's restart cleanup after a failure, and the restart of the
    /// runs it killed (the module docs' second table). Needs a store.
    pub endpoints: bool,
}

/// The store faults a scenario allows (`[faults]`), each a budget the
/// explorer spends where it likes. Only profiles with a store see them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Faults {
    /// An `AtomicPut` whose answer never comes: the request times out, and
    /// the client cannot tell whether it was applied (Jepsen's `:info`).
    /// The explorer tries both. `writeToStore` returns the timeout, which
    /// is not a `RetryError`, so `Handle.set` gives up ("internal failure
    /// while setting the bit").
    pub store_timeouts: u8,
    /// Timeouts of one kind only: the `AtomicPut` was applied and its
    /// answer lost (a partition that drops answers).
    pub lost_answers: u8,
    /// Timeouts of the other kind: the request never reached the store.
    pub lost_requests: u8,
    /// A hard failure of an actor's daemon between two of its steps: every
    /// unfinished actor on that daemon dies, the locks die with the
    /// process, and the daemon comes back with its handle read from the
    /// store. Containers already up keep their addresses.
    pub crashes: u8,
}

impl Faults {
    /// The four budgets in field order: how both [`IpamSystem`]'s
    /// fingerprint and the frontier packer (`system/pack.rs`) write them.
    pub(crate) fn budgets(self) -> [u8; 4] {
        [
            self.store_timeouts,
            self.lost_answers,
            self.lost_requests,
            self.crashes,
        ]
    }
}

/// One phase of an actor's program (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Take the per-network lock.
    NetLock,
    /// `SetAny`'s early `Unselected() == 0` check.
    Precheck,
    /// Read the store pointer and refresh from the store.
    Read,
    /// Search and copy.
    Compute,
    /// Reserve on the copy.
    Modify,
    /// Write the copy to the store.
    Write,
    /// Overwrite the handle with the copy.
    Commit,
    /// Release the per-network lock.
    NetUnlock,
    /// Delete the endpoint (rm); with endpoint records, its record too.
    Delete,
    /// `updateToStore(ep)`: the endpoint's record enters the store.
    EpStore,
    /// `ep.Join`: the sandbox lists the endpoint, the container is up.
    Join,
    /// `EndpointByName` at the start of a restarted run's `CreateEndpoint`.
    Lookup,
    /// `docker network disconnect -f` before a restarted run starts again.
    Disconnect,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::NetLock => "netlock",
            Phase::Precheck => "precheck",
            Phase::Read => "read",
            Phase::Compute => "compute",
            Phase::Modify => "modify",
            Phase::Write => "write",
            Phase::Commit => "commit",
            Phase::NetUnlock => "netunlock",
            Phase::Delete => "delete",
            Phase::EpStore => "epstore",
            Phase::Join => "join",
            Phase::Lookup => "lookup",
            Phase::Disconnect => "disconnect",
        }
    }
}

/// `bitseq.Handle` without its mutex: the bitmap plus its store bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    /// The bitmap (list, `unselected`, `curr`).
    pub bm: Bitseq,
    /// `dbIndex`: the store index this handle was read at.
    pub db_index: u64,
    /// `dbExists`.
    pub db_exists: bool,
}

impl Handle {
    /// `store.GetObject(key, h)`: list, counter and index from the store;
    /// the serial cursor stays (it is not stored).
    pub fn refresh_from(&mut self, entry: &KeyValue<Bitseq>) {
        self.bm.overwrite_from(&entry.value);
        self.db_index = entry.index();
        self.db_exists = true;
    }

    /// The compute phase: search (moving the serial cursor of this handle)
    /// and `nh := h.getCopy()`. Returns the ordinal, where to reserve it,
    /// and the copy.
    pub fn compute(&mut self, request: Request) -> Result<(u64, Pos, Handle), BitseqError> {
        let (ordinal, pos) = self.bm.find(request)?;
        Ok((ordinal, pos, self.clone()))
    }

    /// The write phase with a store: `AtomicPut` of this copy at its
    /// `dbIndex` (creating the key when it does not exist yet).
    pub fn write_to_store(
        &mut self,
        store: &mut KvStore<Bitseq>,
        key: &str,
    ) -> Result<u64, StoreError> {
        let previous = self.db_exists.then_some(self.db_index);
        let index = store.atomic_put(key, cursorless(&self.bm), previous)?;
        self.db_index = index;
        self.db_exists = true;
        Ok(index)
    }

    /// The commit phase: the handle takes the copy's list, counter and index.
    pub fn commit(&mut self, copy: &Handle) {
        self.bm.overwrite_from(&copy.bm);
        self.db_index = copy.db_index;
        self.db_exists = copy.db_exists;
    }
}

/// One daemon's view: its handle and the locks it keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Daemon {
    /// The daemon's in-memory handle. Shared (copy-on-write) between the
    /// states that have it unchanged, like the actors' copies: most steps
    /// leave it alone, so a state in a search's frontier does not carry a
    /// bitmap of its own. `Arc` hashes and compares as the plain handle.
    pub handle: Arc<Cached<Handle>>,
    /// Who holds the handle lock across steps (18.03 without a store).
    pub handle_lock: Option<u8>,
    /// Who holds the per-network lock (17.06+).
    pub network_lock: Option<u8>,
}

/// How an actor ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Still running.
    Pending,
    /// `RequestAddress` returned this ordinal.
    Allocated(u64),
    /// `ReleaseAddress` released this ordinal.
    Released(u64),
    /// The allocation failed: no free address (`ErrNoBitAvailable`).
    NoAddress,
    /// The store request timed out ([`Faults::store_timeouts`]): the
    /// request or release failed, whatever the store did.
    StoreTimeout,
    /// The actor's daemon failed while it ran ([`Faults::crashes`]).
    Crashed,
    /// A restarted run found a stale endpoint record under its name:
    /// "endpoint with name X already exists in network N".
    NameTaken,
}

impl Outcome {
    /// The outcome as a tag byte and its ordinal, if it has one: how both
    /// [`IpamSystem`]'s fingerprint and the frontier packer
    /// (`system/pack.rs`) write it.
    pub(crate) fn tagged(self) -> (u8, Option<u64>) {
        match self {
            Outcome::Pending => (0, None),
            Outcome::Allocated(o) => (1, Some(o)),
            Outcome::Released(o) => (2, Some(o)),
            Outcome::NoAddress => (3, None),
            Outcome::StoreTimeout => (4, None),
            Outcome::Crashed => (5, None),
            Outcome::NameTaken => (6, None),
        }
    }
}

/// A part of a state with its fingerprint, computed once and kept until
/// the part changes: a part is shared (`Arc`, copy-on-write) by every
/// state that holds it unchanged (an actor's private copy, see
/// [`Actor::copy`]; a daemon's handle; the store), and [`IpamSystem`]'s
/// [`Model::fingerprint`] hashes it by this value instead of walking its
/// bitmap or its key-value map in each of them. It compares and hashes
/// (`Hash`) as the plain value, so the symmetry reduction's order of actors
/// is unchanged.
#[derive(Debug)]
pub struct Cached<T> {
    value: T,
    fingerprint: std::sync::OnceLock<u128>,
}

/// A private copy (`nh`) with its fingerprint.
pub type CachedHandle = Cached<Handle>;

/// How a shared part is fingerprinted ([`Cached::fingerprint`]).
pub trait Part: Hash + Sized {
    /// A 128-bit hash of the value: [`crate::explore::fingerprint`]
    /// unless the part has a cheaper exact encoding.
    fn part_fingerprint(&self) -> u128 {
        crate::explore::fingerprint(self)
    }
}

/// A handle: its bitmap's numbers (`Bitseq::each_number`), `dbIndex`
/// and `dbExists` as LEB128 varints, one call of XXH3-128 over about 20
/// bytes, where the derived `Hash` writes 8 bytes a number and an enum
/// discriminant. Every field is in, the list after its length, so the
/// bytes are one-to-one with the handle.
impl Part for Handle {
    fn part_fingerprint(&self) -> u128 {
        let Handle {
            bm,
            db_index,
            db_exists,
        } = self;
        let mut e = FpBytes::<128>::new();
        bm.each_number(|v| e.varint(v));
        e.varint(*db_index);
        e.byte(u8::from(*db_exists));
        xxhash_rust::xxh3::xxh3_128(e.as_slice())
    }
}

impl Part for KvStore<Bitseq> {}

/// The holders: their count and each holder (0 for `None`, `o + 1` for
/// `Some(o)`) as LEB128 varints, one call of XXH3-128 over about 25
/// bytes, where the derived `Hash` writes 16 bytes a holder. The
/// packer writes the same bytes (`system::pack`) and hashes them as they
/// are when it unpacks a state.
impl Part for Vec<Option<u64>> {
    fn part_fingerprint(&self) -> u128 {
        let mut e = FpBytes::<128>::new();
        e.varint(self.len() as u64);
        for h in self {
            e.varint(h.map_or(0, |o| o + 1));
        }
        xxhash_rust::xxh3::xxh3_128(e.as_slice())
    }
}

impl<T: Hash> Cached<T> {
    /// The value, its fingerprint not computed yet.
    pub fn new(value: T) -> Cached<T> {
        Cached {
            value,
            fingerprint: std::sync::OnceLock::new(),
        }
    }

    /// The value with its fingerprint, known already (the packer hashes
    /// the holders' packed bytes, which are their fingerprint's input).
    pub(crate) fn with_fingerprint(value: T, fingerprint: u128) -> Cached<T> {
        Cached {
            value,
            fingerprint: std::sync::OnceLock::from(fingerprint),
        }
    }

    /// Records the fingerprint of the value as it is now (the packer
    /// hashes the holders' packed bytes, which are their fingerprint's
    /// input, after writing them in place).
    pub(crate) fn set_fingerprint(&mut self, fingerprint: u128) {
        self.fingerprint = std::sync::OnceLock::from(fingerprint);
    }

    /// The value, to change: its fingerprint is forgotten. (In a search
    /// the value is always shared with the parent state when a step
    /// changes it, so `Arc::make_mut` clones it first and the clone has
    /// no fingerprint yet; this keeps it right for any other caller.)
    pub fn get_mut(&mut self) -> &mut T {
        self.fingerprint = std::sync::OnceLock::new();
        &mut self.value
    }
}

impl<T: Part> Cached<T> {
    /// [`Part::part_fingerprint`] of the value, computed on first use.
    pub fn fingerprint(&self) -> u128 {
        *self
            .fingerprint
            .get_or_init(|| self.value.part_fingerprint())
    }
}

impl<T> std::ops::Deref for Cached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Clone + Hash> Clone for Cached<T> {
    /// A clone is made to be changed (`Arc::make_mut`): without the
    /// fingerprint.
    fn clone(&self) -> Cached<T> {
        Cached::new(self.value.clone())
    }
}

impl<T: PartialEq> PartialEq for Cached<T> {
    fn eq(&self, other: &Cached<T>) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Cached<T> {}

impl<T: Hash> Hash for Cached<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

/// One actor's private state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    /// Index into the actor's program; past the end = done.
    pub pc: u8,
    /// The ordinal being allocated or released.
    pub ordinal: Option<u64>,
    /// Where `pushReservation` will act.
    pub pos: Option<Pos>,
    /// `nh`, the private copy. Shared (copy-on-write) between the states
    /// that have it unchanged, so a step clones one actor's copy at most,
    /// not every actor's; `Arc` and [`CachedHandle`] hash and compare as
    /// the plain handle.
    pub copy: Option<Arc<CachedHandle>>,
    /// The result.
    pub outcome: Outcome,
}

/// The whole world of an IPAM scenario.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IpamState {
    /// One entry per daemon.
    pub daemons: Vec<Daemon>,
    /// The key-value store, for profiles with one; shared (copy-on-write)
    /// between the states that have it unchanged, like the daemons'
    /// handles (only `write`, a timeout's lost answer and the setup change
    /// it).
    pub store: Option<Arc<Cached<KvStore<Bitseq>>>>,
    /// One entry per concurrent actor.
    pub actors: Vec<Actor>,
    /// Per container, the ordinal it holds while its endpoint is live.
    /// Shared (copy-on-write) between the states that have it unchanged,
    /// like the handles: only `commit`, `delete`, a crash and the setup
    /// change it, so most steps clone a pointer, not the list, and
    /// [`IpamSystem`]'s fingerprint and packer take it by its cached
    /// fingerprint. Change it with [`IpamState::holders_mut`].
    pub holders: Arc<Cached<Vec<Option<u64>>>>,
    /// Per container, the address of its endpoint record in the cluster
    /// store ([`IpamSpec::endpoints`]; empty without). The records are
    /// keys of their own that only their endpoint writes: no compare of
    /// the protocol involves them, so they are kept beside the store's
    /// bitmask rather than in it.
    pub records: Vec<Option<u64>>,
    /// The fault budgets not spent yet.
    pub faults_left: Faults,
}

impl Clone for IpamState {
    fn clone(&self) -> IpamState {
        IpamState {
            daemons: self.daemons.clone(),
            store: self.store.clone(),
            actors: self.actors.clone(),
            holders: Arc::clone(&self.holders),
            records: self.records.clone(),
            faults_left: self.faults_left,
        }
    }

    /// `self` made equal to `source` in place, for the search's reused
    /// successor (`Model::next_state_into`): the vectors keep their
    /// allocations, and a shared part `self` already points to is left
    /// alone (no reference-count traffic for the parts a step did not
    /// change).
    fn clone_from(&mut self, source: &IpamState) {
        let IpamState {
            daemons,
            store,
            actors,
            holders,
            records,
            faults_left,
        } = source;
        if self.daemons.len() == daemons.len() {
            // Every field named, so a field added to a daemon or an actor
            // does not compile until it is copied here.
            for (to, from) in self.daemons.iter_mut().zip(daemons) {
                let Daemon {
                    handle,
                    handle_lock,
                    network_lock,
                } = from;
                share(&mut to.handle, handle);
                to.handle_lock = *handle_lock;
                to.network_lock = *network_lock;
            }
        } else {
            self.daemons.clone_from(daemons);
        }
        match (&mut self.store, store) {
            (Some(to), Some(from)) => share(to, from),
            (to, from) => to.clone_from(from),
        }
        if self.actors.len() == actors.len() {
            for (to, from) in self.actors.iter_mut().zip(actors) {
                let Actor {
                    pc,
                    ordinal,
                    pos,
                    copy,
                    outcome,
                } = from;
                to.pc = *pc;
                to.ordinal = *ordinal;
                to.pos = *pos;
                match (&mut to.copy, copy) {
                    (Some(to), Some(from)) => share(to, from),
                    (to, from) => to.clone_from(from),
                }
                to.outcome = *outcome;
            }
        } else {
            self.actors.clone_from(actors);
        }
        share(&mut self.holders, holders);
        self.records.clone_from(records);
        self.faults_left = *faults_left;
    }
}

/// `to` made to point where `from` does, unless it already does.
#[inline]
fn share<T>(to: &mut Arc<T>, from: &Arc<T>) {
    if !Arc::ptr_eq(to, from) {
        *to = Arc::clone(from);
    }
}

impl IpamState {
    /// The holders, to change (the state's own copy, see
    /// [`IpamState::holders`]).
    pub fn holders_mut(&mut self) -> &mut Vec<Option<u64>> {
        cow(&mut self.holders)
    }
}

/// A shared part, to change: the state's own copy (cloned first when
/// another state holds it too), its cached fingerprint forgotten.
fn cow<T: Clone + Hash>(part: &mut Arc<Cached<T>>) -> &mut T {
    Arc::make_mut(part).get_mut()
}

/// The step "actor `n` takes its next phase", or a fault there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step {
    /// The actor's index.
    pub actor: u8,
    /// A fault injected instead of the plain step.
    pub fault: Fault,
}

/// A fault a [`Step`] injects ([`Faults`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// None: the actor takes its phase.
    None,
    /// At `write`: the `AtomicPut` reaches the store (and succeeds or
    /// fails there as usual), its answer is lost, the client times out.
    AnswerLost,
    /// At `write`: the request is lost on the way, the client times out.
    RequestLost,
    /// Before the actor's next phase: its daemon fails and restarts.
    Crash,
}

impl Fault {
    fn tag(self) -> u64 {
        match self {
            Fault::None => 0,
            Fault::AnswerLost => 1,
            Fault::RequestLost => 2,
            Fault::Crash => 3,
        }
    }
}

#[derive(Clone, Debug)]
struct ActorDef {
    run: bool,
    container: usize,
    daemon: usize,
    program: Vec<Phase>,
    /// Where the program of a restarted run begins (runs with endpoint
    /// records); the first attempt ends there.
    restart_at: Option<u8>,
    /// The phases of a run's program that release an address (after a
    /// force-disconnect), as a range of program positions.
    release: std::ops::Range<u8>,
}

impl ActorDef {
    /// Whether the `Handle.set` at program position `pc` releases.
    fn releasing(&self, pc: u8) -> bool {
        !self.run || self.release.contains(&pc)
    }

    /// Where the attempt that position `pc` belongs to ends.
    fn attempt_end(&self, pc: u8) -> u8 {
        match self.restart_at {
            Some(r) if pc < r => r,
            _ => self.program.len() as u8,
        }
    }
}

/// The model: a scenario's allocator under one profile.
#[derive(Clone, Debug)]
pub struct IpamSystem {
    profile: Profile,
    pool: Pool,
    network: String,
    containers: Vec<String>,
    actors: Vec<ActorDef>,
    init: IpamState,
    store_key: String,
    endpoints: bool,
    /// Classes of interchangeable actors (see [`IpamSystem::symmetry_classes`]).
    symmetric: Vec<Vec<u8>>,
}

/// Scenario problems found while building the model (the scenario layer
/// adds file positions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// Something about the network or pool.
    Network(String),
    /// Something about the setup phase.
    Setup(String),
    /// Something about actor `n`.
    Actor(usize, String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Network(m) | BuildError::Setup(m) | BuildError::Actor(_, m) => {
                f.write_str(m)
            }
        }
    }
}

impl IpamSystem {
    /// Builds the model: creates the network (bitmap with network and
    /// broadcast reserved, gateway requested), runs the setup operations
    /// one after another, and prepares the concurrent actors.
    pub fn new(spec: &IpamSpec, profile: &Profile) -> Result<IpamSystem, BuildError> {
        let subnet = spec.subnet.trunc();
        let gateway = spec
            .gateway
            .unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1)));
        let pool = Pool::new(subnet, gateway, spec.ip_range, profile.store)
            .map_err(BuildError::Network)?;
        let daemons = spec.actors.iter().map(|a| a.daemon + 1).max().unwrap_or(1);
        if daemons > 1 && !profile.store {
            return Err(BuildError::Network(format!(
                "profile {} has no store (local scope): a network is private to one daemon, so actors cannot run on daemon {}",
                profile.name,
                daemons - 1
            )));
        }
        if daemons > 8 {
            return Err(BuildError::Network(
                "at most 8 daemons are supported".into(),
            ));
        }
        if spec.endpoints && !profile.store {
            return Err(BuildError::Network(format!(
                "profile {} has no store: endpoint records ([recovery] endpoints) live in the cluster store of a global-scope network",
                profile.name
            )));
        }
        if profile.force_disconnect && !spec.endpoints {
            return Err(BuildError::Network(
                "force_disconnect deletes endpoint records: it needs [recovery] endpoints = true"
                    .into(),
            ));
        }
        let created = SequentialIpam::create(pool.clone(), profile).map_err(BuildError::Network)?;
        let (handle, store, store_key) = (created.handle, created.store, created.key);
        // Every daemon knows the network from its creation on.
        let mut state = IpamState {
            daemons: (0..daemons)
                .map(|_| Daemon {
                    handle: Arc::new(Cached::new(handle.clone())),
                    handle_lock: None,
                    network_lock: None,
                })
                .collect(),
            store: store.map(|s| Arc::new(Cached::new(s))),
            actors: Vec::new(),
            holders: Arc::new(Cached::new(Vec::new())),
            records: Vec::new(),
            faults_left: if profile.store {
                spec.faults
            } else {
                Faults::default()
            },
        };

        // Setup, on daemon 0, one operation at a time.
        let mut containers: Vec<String> = Vec::new();
        let (start, end) = pool.search_range().unwrap_or((0, pool.bits() - 1));
        for op in &spec.setup {
            match op {
                SetupOp::Run(name) => {
                    if containers.contains(name) {
                        return Err(BuildError::Setup(format!(
                            "container name {name} is used twice"
                        )));
                    }
                    let ordinal = sequential(
                        Arc::make_mut(&mut state.daemons[0].handle).get_mut(),
                        state.store.as_mut().map(|s| Arc::make_mut(s).get_mut()),
                        &store_key,
                        Request::Any {
                            start,
                            end,
                            serial: profile.serial,
                        },
                    )
                    .map_err(|e| BuildError::Setup(format!("starting {name}: {e}")))?;
                    containers.push(name.clone());
                    state.holders_mut().push(Some(ordinal));
                    if spec.endpoints {
                        state.records.push(Some(ordinal));
                    }
                }
                SetupOp::Rm(target) => {
                    let index = resolve(target, &containers, &state.holders, &pool)
                        .map_err(|e| BuildError::Setup(format!("rm {target}: {e}")))?;
                    let ordinal = state.holders_mut()[index]
                        .take()
                        .expect("resolve returns live containers");
                    if spec.endpoints {
                        state.records[index] = None;
                    }
                    sequential(
                        Arc::make_mut(&mut state.daemons[0].handle).get_mut(),
                        state.store.as_mut().map(|s| Arc::make_mut(s).get_mut()),
                        &store_key,
                        Request::Unset(ordinal),
                    )
                    .map_err(|e| BuildError::Setup(format!("rm {target}: {e}")))?;
                }
            }
        }
        let setup_containers = containers.len();
        let live = state.holders.iter().flatten().count();
        let runs = spec
            .actors
            .iter()
            .filter(|a| matches!(a.kind, ActorKind::Run(_)))
            .count();
        if (live + runs) as u64 > pool.capacity() {
            return Err(BuildError::Network(format!(
                "pool {} has room for {} containers, but {live} run after setup and {runs} more start",
                pool.net,
                pool.capacity()
            )));
        }

        // Concurrent actors: every run names a new container first, so an rm
        // may target a container another actor starts.
        let mut defs = Vec::new();
        for (i, a) in spec.actors.iter().enumerate() {
            if let ActorKind::Run(name) = &a.kind {
                if containers.contains(name) {
                    return Err(BuildError::Actor(
                        i,
                        format!("container name {name} is used twice"),
                    ));
                }
                containers.push(name.clone());
                state.holders_mut().push(None);
                if spec.endpoints {
                    state.records.push(None);
                }
            }
        }
        let mut rm_targets = Vec::new();
        for (i, a) in spec.actors.iter().enumerate() {
            let (run, container) = match &a.kind {
                ActorKind::Run(name) => (
                    true,
                    containers
                        .iter()
                        .position(|c| c == name)
                        .expect("added above"),
                ),
                ActorKind::Rm(target) => {
                    let index = match target {
                        Target::Name(n) => {
                            containers.iter().position(|c| c == n).ok_or_else(|| {
                                BuildError::Actor(i, format!("rm {n}: no container has this name"))
                            })?
                        }
                        Target::Address(_) => {
                            resolve(target, &containers, &state.holders, &pool)
                                .map_err(|e| BuildError::Actor(i, format!("rm {target}: {e}")))?
                        }
                    };
                    if rm_targets.contains(&index) {
                        return Err(BuildError::Actor(
                            i,
                            format!(
                                "rm {target}: the container is already removed by another actor"
                            ),
                        ));
                    }
                    if index < setup_containers && state.holders[index].is_none() {
                        return Err(BuildError::Actor(
                            i,
                            format!("rm {target}: the container was already removed during setup"),
                        ));
                    }
                    rm_targets.push(index);
                    (false, index)
                }
            };
            const SET: [Phase; 5] = [
                Phase::Read,
                Phase::Compute,
                Phase::Modify,
                Phase::Write,
                Phase::Commit,
            ];
            // One attempt at CreateEndpoint and its join; a restarted run
            // starts with the name check.
            let attempt = |program: &mut Vec<Phase>, restarted: bool| {
                if profile.network_lock {
                    program.push(Phase::NetLock);
                }
                if restarted {
                    program.push(Phase::Lookup);
                }
                program.push(Phase::Precheck);
                program.extend(SET);
                if spec.endpoints {
                    program.extend([Phase::EpStore, Phase::Join]);
                }
                if profile.network_lock {
                    program.push(Phase::NetUnlock);
                }
            };
            let mut program = Vec::new();
            let mut restart_at = None;
            let mut release = 0..0;
            if run {
                attempt(&mut program, false);
                if spec.endpoints {
                    restart_at = Some(program.len() as u8);
                    if profile.force_disconnect {
                        program.push(Phase::Disconnect);
                        let start = program.len() as u8;
                        program.extend(SET);
                        release = start..program.len() as u8;
                    }
                    attempt(&mut program, true);
                }
            } else {
                program.push(Phase::Delete);
                program.extend(SET);
            }
            defs.push(ActorDef {
                run,
                container,
                daemon: a.daemon,
                program,
                restart_at,
                release,
            });
            state.actors.push(Actor {
                pc: 0,
                ordinal: None,
                pos: None,
                copy: None,
                outcome: Outcome::Pending,
            });
        }
        if defs.len() > 64 {
            return Err(BuildError::Network(
                "at most 64 concurrent actors are supported".into(),
            ));
        }
        // Interchangeable actors: concurrent runs on one daemon whose
        // containers no rm targets. Their programs are equal (the profile
        // makes them) and each owns a fresh container; nothing but its name
        // tells one from another.
        let mut symmetric: Vec<Vec<u8>> = Vec::new();
        for daemon in 0..spec.actors.iter().map(|a| a.daemon + 1).max().unwrap_or(0) {
            let class: Vec<u8> = defs
                .iter()
                .enumerate()
                .filter(|(_, d)| d.run && d.daemon == daemon && !rm_targets.contains(&d.container))
                .map(|(i, _)| i as u8)
                .collect();
            if class.len() >= 2 {
                symmetric.push(class);
            }
        }
        Ok(IpamSystem {
            profile: profile.clone(),
            pool,
            network: spec.network.clone(),
            containers,
            actors: defs,
            init: state,
            store_key,
            endpoints: spec.endpoints,
            symmetric,
        })
    }

    /// The classes of interchangeable actors, by actor index: concurrent
    /// `docker run`s on the same daemon whose containers no concurrent rm
    /// targets. Permuting the actors of a class (their private state,
    /// their containers' holdings and the locks they hold) maps the model
    /// onto itself: the symmetry [`Model::canonical`] reduces by.
    pub fn symmetry_classes(&self) -> &[Vec<u8>] {
        &self.symmetric
    }

    /// The profile this model runs.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Container names, by index (setup containers first).
    pub fn containers(&self) -> &[String] {
        &self.containers
    }

    /// The bitmap that is the truth for accounting: the store's value when
    /// there is a store, else daemon 0's handle.
    pub fn authoritative<'a>(&self, state: &'a IpamState) -> &'a Bitseq {
        match &state.store {
            Some(store) => {
                &store
                    .get(&self.store_key)
                    .expect("created with the network")
                    .value
            }
            None => &state.daemons[0].handle.bm,
        }
    }

    /// Like libnetwork's `Handle.String()`.
    fn describe_handle(&self, h: &Handle) -> String {
        format!(
            "App: ipam/default/data, ID: {}, DBIndex: 0x{:x}, bits: {}, unselected: {}, sequence: {}",
            self.pool.id,
            h.db_index,
            h.bm.bits(),
            h.bm.unselected(),
            h.bm.sequence_string()
        )
    }

    /// `name=address` for every live endpoint, with runs of consecutive
    /// `setup-N` containers on consecutive addresses folded into one item.
    fn live_summary(&self, state: &IpamState) -> String {
        let live: Vec<(&str, u64)> = self
            .containers
            .iter()
            .zip(state.holders.iter())
            .filter_map(|(c, h)| h.map(|o| (c.as_str(), o)))
            .collect();
        let setup_no = |name: &str| {
            name.strip_prefix("setup-")
                .and_then(|n| n.parse::<u64>().ok())
        };
        let mut items = Vec::new();
        let mut i = 0;
        while i < live.len() {
            let mut j = i;
            if let Some(first) = setup_no(live[i].0) {
                while j + 1 < live.len()
                    && setup_no(live[j + 1].0) == Some(first + (j + 1 - i) as u64)
                    && live[j + 1].1 == live[i].1 + (j + 1 - i) as u64
                {
                    j += 1;
                }
            }
            if j - i >= 2 {
                items.push(format!(
                    "{}..{}={}..{} ({} containers)",
                    live[i].0,
                    live[j].0,
                    self.pool.address(live[i].1),
                    self.pool.address(live[j].1),
                    j - i + 1
                ));
            } else {
                for (name, ordinal) in &live[i..=j] {
                    items.push(format!("{name}={}", self.pool.address(*ordinal)));
                }
            }
            i = j + 1;
        }
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(" ")
        }
    }

    fn request_for(&self, releasing: bool, actor: &Actor) -> Request {
        if !releasing {
            let (start, end) = self
                .pool
                .search_range()
                .unwrap_or((0, self.pool.bits() - 1));
            Request::Any {
                start,
                end,
                serial: self.profile.serial,
            }
        } else {
            Request::Unset(
                actor
                    .ordinal
                    .expect("a release knows its ordinal after delete or disconnect"),
            )
        }
    }

    /// Ends an actor's program early (after a failure): skip to `netunlock`
    /// if it holds the network lock, else to the end.
    /// [`Fault::AnswerLost`] or [`Fault::RequestLost`] at actor `i`'s
    /// write: the store applies the `AtomicPut` or not, the client gets a
    /// timeout, and `Handle.set` returns it (not a `RetryError`).
    fn time_out(&self, s: &mut IpamState, i: usize, fault: Fault, trace: &mut Trace) {
        let def = &self.actors[i];
        // Spend the budget of this kind first, then the general one.
        let f = &mut s.faults_left;
        let own = if fault == Fault::AnswerLost {
            &mut f.lost_answers
        } else {
            &mut f.lost_requests
        };
        if *own > 0 {
            *own -= 1;
        } else {
            f.store_timeouts -= 1;
        }
        let a = &mut s.actors[i];
        let mut copy = a.copy.take().expect("computed");
        let read_at = copy.db_index;
        if fault == Fault::AnswerLost {
            let store = Arc::make_mut(s.store.as_mut().expect("timeouts need a store")).get_mut();
            let applied = Arc::make_mut(&mut copy)
                .get_mut()
                .write_to_store(store, &self.store_key);
            trace.line(match applied {
                Ok(index) => format!(
                    "nh.writeToStore(): AtomicPut at index 0x{read_at:x} is applied (new index 0x{index:x}), but its answer is lost"
                ),
                Err(e) => format!(
                    "nh.writeToStore(): AtomicPut at index 0x{read_at:x} fails in the store ({e}), and the answer is lost"
                ),
            });
        } else {
            trace.line(format!(
                "nh.writeToStore(): AtomicPut at index 0x{read_at:x} is lost before the store"
            ));
        }
        trace.line(
            "the request times out: not a RetryError, so Handle.set returns \"internal failure while setting the bit\"",
        );
        if self.profile.holds_lock_through_commit() {
            s.daemons[def.daemon].handle_lock = None;
        }
        let a = &mut s.actors[i];
        let releasing = def.releasing(a.pc);
        a.pos = None;
        a.outcome = Outcome::StoreTimeout;
        Self::bail(def, a);
        trace.line(if !releasing {
            format!(
                "RequestAddress fails: {} does not start",
                self.containers[def.container]
            )
        } else {
            "ReleaseAddress fails: the address stays allocated".to_string()
        });
    }

    /// [`Fault::Crash`] of `daemon`: its unfinished actors die, its locks
    /// with them, and it restarts with its handle read from the store.
    fn crash(&self, s: &mut IpamState, daemon: usize, trace: &mut Trace) {
        s.faults_left.crashes -= 1;
        let mut killed = Vec::new();
        let mut restarted = Vec::new();
        for (i, def) in self.actors.iter().enumerate() {
            let a = &mut s.actors[i];
            if def.daemon != daemon || a.pc as usize >= def.program.len() {
                continue;
            }
            let who = format!(
                "{} {}",
                if def.run { "run" } else { "rm" },
                self.containers[def.container]
            );
            a.copy = None;
            a.pos = None;
            let end = def.attempt_end(a.pc);
            let joined = def.program[..a.pc as usize]
                .iter()
                .rposition(|p| *p == Phase::Join)
                .is_some_and(|j| def.attempt_end(j as u8) == end);
            match def.restart_at {
                // Up already: only the network unlock was left.
                _ if joined => {
                    a.pc = def.program.len() as u8;
                    continue;
                }
                Some(r) => {
                    // The endpoint object dies with the process; its record
                    // (if written) stays in the store. The container is
                    // started again.
                    cow(&mut s.holders)[def.container] = None;
                    a.pc = r;
                    a.ordinal = None;
                    a.outcome = Outcome::Crashed;
                    restarted.push(self.containers[def.container].clone());
                }
                None => {
                    a.pc = def.program.len() as u8;
                    a.ordinal = None;
                    a.outcome = Outcome::Crashed;
                }
            }
            killed.push(who);
        }
        let d = &mut s.daemons[daemon];
        d.network_lock = None;
        d.handle_lock = None;
        if let Some(store) = &s.store {
            let h = Arc::make_mut(&mut d.handle).get_mut();
            h.refresh_from(
                store
                    .get(&self.store_key)
                    .expect("created with the network"),
            );
            h.bm.set_curr(0);
        }
        trace.line(format!(
            "daemon{daemon} fails hard: {} die{}; it restarts and reads the handle from the store",
            if killed.is_empty() {
                "no operation".to_string()
            } else {
                killed.join(", ")
            },
            if killed.len() == 1 { "s" } else { "" }
        ));
        if self.endpoints {
            trace.line(
                "sandboxCleanup deletes the endpoints its stored sandboxes list; cleanupLocalEndpoints skips global-scope networks",
            );
            if !restarted.is_empty() {
                trace.line(format!("started again: {}", restarted.join(", ")));
            }
        }
    }

    /// Ends the actor's current attempt early (after a failure): skip to
    /// its `netunlock` if it has one, else past the end of the program.
    fn bail(def: &ActorDef, actor: &mut Actor) {
        // A force-disconnect's release that fails is only logged
        // (`releaseAddress`): the run goes on to start again.
        if def.run && def.release.contains(&actor.pc) {
            actor.pc = def.release.end;
            return;
        }
        let end = def.attempt_end(actor.pc);
        actor.pc = def.program[actor.pc as usize..end as usize]
            .iter()
            .position(|p| *p == Phase::NetUnlock)
            .map_or(def.program.len() as u8, |k| actor.pc + k as u8);
    }
}

/// The value stored for a handle: libnetwork stores bits, unselected and
/// the list, not the serial cursor.
fn cursorless(bm: &Bitseq) -> Bitseq {
    let mut v = bm.clone();
    v.set_curr(0);
    v
}

/// The allocator used one call at a time, as a daemon with no concurrency
/// would: `RequestAddress` and `ReleaseAddress` over the same `Handle.set`
/// phases the explorer interleaves, run back to back. The proptest
/// state-machine test checks it against a reference allocator for every
/// profile.
#[derive(Clone, Debug)]
pub struct SequentialIpam {
    pool: Pool,
    serial: bool,
    handle: Handle,
    store: Option<KvStore<Bitseq>>,
    key: String,
}

impl SequentialIpam {
    /// Creates the network: `NewHandle` (written to the store when the
    /// profile has one), `Set(0)`, `Set(last)` (`insertBitMask`), then the
    /// gateway.
    pub fn new(
        subnet: Ipv4Net,
        gateway: Option<Ipv4Addr>,
        ip_range: Option<Ipv4Net>,
        profile: &Profile,
    ) -> Result<SequentialIpam, String> {
        let subnet = subnet.trunc();
        let gateway =
            gateway.unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1)));
        SequentialIpam::create(
            Pool::new(subnet, gateway, ip_range, profile.store)?,
            profile,
        )
    }

    fn create(pool: Pool, profile: &Profile) -> Result<SequentialIpam, String> {
        let key = format!("docker/network/v1.0/bitseq/ipam/default/data/{}", pool.id);
        let mut store = profile.store.then(KvStore::new);
        let mut handle = Handle {
            bm: Bitseq::new(pool.bits(), profile.search),
            db_index: 0,
            db_exists: false,
        };
        if let Some(s) = store.as_mut() {
            handle
                .write_to_store(s, &key)
                .expect("a fresh store accepts the handle");
        }
        for ordinal in pool.reserved() {
            sequential(&mut handle, store.as_mut(), &key, Request::Set(ordinal))
                .map_err(|e| format!("reserving ordinal {ordinal}: {e}"))?;
        }
        Ok(SequentialIpam {
            pool,
            serial: profile.serial,
            handle,
            store,
            key,
        })
    }

    /// `RequestAddress(pool, nil, ...)`: the next address by the profile's
    /// search (first-fit or serial, in the ip range if there is one).
    pub fn request_address(&mut self) -> Result<Ipv4Addr, String> {
        let (start, end) = self
            .pool
            .search_range()
            .unwrap_or((0, self.pool.bits() - 1));
        let request = Request::Any {
            start,
            end,
            serial: self.serial,
        };
        let ordinal = sequential(&mut self.handle, self.store.as_mut(), &self.key, request)?;
        Ok(self.pool.address(ordinal))
    }

    /// `ReleaseAddress(pool, addr)`.
    pub fn release_address(&mut self, addr: Ipv4Addr) -> Result<(), String> {
        let ordinal = self
            .pool
            .ordinal(addr)
            .ok_or_else(|| format!("{addr} is not in pool {}", self.pool.net))?;
        sequential(
            &mut self.handle,
            self.store.as_mut(),
            &self.key,
            Request::Unset(ordinal),
        )
        .map(|_| ())
    }

    /// The handle, the store and the store key, for code that shares them
    /// between threads ([`super::threaded`]).
    pub fn parts(&self) -> (Handle, Option<KvStore<Bitseq>>, String) {
        (self.handle.clone(), self.store.clone(), self.key.clone())
    }

    /// The daemon's bitmap.
    pub fn bitseq(&self) -> &Bitseq {
        &self.handle.bm
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

/// One whole `Handle.set` with nothing interleaving: the same phases as
/// the actors' (read, compute, modify, write, commit), back to back; a CAS
/// conflict (only possible if someone else wrote) retries from the read.
fn sequential(
    handle: &mut Handle,
    mut store: Option<&mut KvStore<Bitseq>>,
    key: &str,
    request: Request,
) -> Result<u64, String> {
    loop {
        if let Request::Any { .. } = request {
            if handle.bm.unselected() == 0 {
                return Err("no available IPv4 addresses (no bit available)".into());
            }
        }
        if let Some(store) = store.as_deref() {
            handle.refresh_from(store.get(key).expect("created with the network"));
        }
        let (ordinal, pos, mut copy) = handle.compute(request).map_err(|e| e.to_string())?;
        copy.bm.push_reservation(pos, request.is_release());
        if let Some(store) = store.as_deref_mut() {
            if copy.write_to_store(store, key).is_err() {
                continue;
            }
        }
        handle.commit(&copy);
        return Ok(ordinal);
    }
}

/// Finds the live container a target names.
fn resolve(
    target: &Target,
    containers: &[String],
    holders: &[Option<u64>],
    pool: &Pool,
) -> Result<usize, String> {
    match target {
        Target::Name(n) => {
            let i = containers
                .iter()
                .position(|c| c == n)
                .ok_or_else(|| "no container has this name".to_string())?;
            if holders[i].is_none() {
                return Err("the container is not running at that point".into());
            }
            Ok(i)
        }
        Target::Address(a) => {
            let ordinal = pool
                .ordinal(*a)
                .ok_or_else(|| format!("{a} is not in pool {}", pool.net))?;
            holders
                .iter()
                .position(|h| *h == Some(ordinal))
                .ok_or_else(|| "no running container holds this address at that point".to_string())
        }
    }
}

impl IpamSystem {
    /// One step of `step`'s actor (or the fault it names), applied to `s`
    /// in place: [`Model::next_state`] and [`Model::next_state_into`].
    fn step(&self, s: &mut IpamState, step: &Step, trace: &mut Trace) {
        let i = step.actor as usize;
        let def = &self.actors[i];
        let at = s.actors[i].pc;
        let phase = def.program[at as usize];
        let releasing = def.releasing(at);
        let name = &self.containers[def.container];
        let hold = self.profile.holds_lock_through_commit();
        match step.fault {
            Fault::None => {}
            Fault::Crash => {
                self.crash(s, def.daemon, trace);
                return;
            }
            Fault::AnswerLost | Fault::RequestLost => {
                self.time_out(s, i, step.fault, trace);
                return;
            }
        }
        s.actors[i].pc += 1;
        match phase {
            Phase::NetLock => {
                s.daemons[def.daemon].network_lock = Some(step.actor);
                trace.line(format!(
                    "networkLocker.Lock({}): CreateEndpoint {name} holds the network lock",
                    self.network
                ));
            }
            Phase::NetUnlock => {
                s.daemons[def.daemon].network_lock = None;
                trace.line(format!("networkLocker.Unlock({})", self.network));
            }
            Phase::Delete => {
                let ordinal = cow(&mut s.holders)[def.container]
                    .take()
                    .expect("delete is enabled only when live");
                s.actors[i].ordinal = Some(ordinal);
                if self.endpoints {
                    s.records[def.container] = None;
                    trace.line(format!(
                        "ep.Delete: deleteFromStore(ep): the record of endpoint {name} leaves the store"
                    ));
                }
                if trace.is_on() {
                    trace.line(format!(
                        "level=debug msg=\"Releasing addresses for endpoint {name}'s interface on network {}\"",
                        self.network
                    ));
                    trace.line(format!(
                        "endpoint {name} deleted: it no longer holds {}",
                        self.pool.address(ordinal)
                    ));
                }
            }
            Phase::Precheck => {
                let unselected = s.daemons[def.daemon].handle.bm.unselected();
                if trace.is_on() {
                    trace.line(format!(
                        "level=debug msg=\"Assigning addresses for endpoint {name}'s interface on network {}\"",
                        self.network
                    ));
                    trace.line(format!(
                        "level=debug msg=\"RequestAddress({}, <nil>, map[])\"",
                        self.pool.id
                    ));
                    trace.line(format!("SetAny: h.Unselected() = {unselected}"));
                }
                if unselected == 0 {
                    s.actors[i].outcome = Outcome::NoAddress;
                    Self::bail(def, &mut s.actors[i]);
                    trace.line("no bit available: the container fails to start (no available IPv4 addresses)");
                }
            }
            Phase::Read => {
                if releasing && trace.is_on() {
                    let ordinal = s.actors[i].ordinal.expect("set by delete");
                    trace.line(format!(
                        "level=debug msg=\"ReleaseAddress({}, {})\"",
                        self.pool.id,
                        self.pool.address(ordinal)
                    ));
                }
                if hold {
                    s.daemons[def.daemon].handle_lock = Some(step.actor);
                    trace.line("h.Lock(): held until commit (no store)");
                }
                match &s.store {
                    None => trace.line("store = h.store: nil (local scope, nothing to refresh)"),
                    Some(store) => {
                        let entry = store
                            .get(&self.store_key)
                            .expect("created with the network");
                        let h = Arc::make_mut(&mut s.daemons[def.daemon].handle).get_mut();
                        let before = trace.is_on().then(|| self.describe_handle(h));
                        h.refresh_from(entry);
                        if let Some(before) = before {
                            trace.line(format!(
                                "store.GetObject({}) refreshes the handle",
                                self.store_key
                            ));
                            trace.line(format!("  handle before: {before}"));
                            trace.line(format!("  handle after:  {}", self.describe_handle(h)));
                        }
                    }
                }
            }
            Phase::Compute => {
                let request = self.request_for(releasing, &s.actors[i]);
                let h = Arc::make_mut(&mut s.daemons[def.daemon].handle).get_mut();
                match h.compute(request) {
                    Ok((ordinal, pos, copy)) => {
                        if trace.is_on() {
                            let what = match request {
                                Request::Any { start, end, serial } => format!(
                                    "{}({start}, {end}) = ordinal {ordinal} ({})",
                                    if serial {
                                        "serial search"
                                    } else {
                                        "first free"
                                    },
                                    self.pool.address(ordinal)
                                ),
                                _ => format!(
                                    "release ordinal {ordinal} ({})",
                                    self.pool.address(ordinal)
                                ),
                            };
                            trace.line(format!("h.Lock(); {what}"));
                            if h.bm.is_set(ordinal) && !releasing {
                                trace.line(format!("  note: ordinal {ordinal} is already set in the handle (search bug)"));
                            }
                            trace.line(format!(
                                "  nh := h.getCopy(): {}",
                                self.describe_handle(&copy)
                            ));
                            trace.line(if hold {
                                "  (handle lock still held)"
                            } else {
                                "h.Unlock()"
                            });
                        }
                        let a = &mut s.actors[i];
                        a.ordinal = Some(ordinal);
                        a.pos = Some(pos);
                        a.copy = Some(Arc::new(CachedHandle::new(copy)));
                    }
                    Err(e) => {
                        if hold {
                            s.daemons[def.daemon].handle_lock = None;
                        }
                        s.actors[i].outcome = Outcome::NoAddress;
                        Self::bail(def, &mut s.actors[i]);
                        trace.line(format!("h.Lock(); search fails: {e}; h.Unlock()"));
                    }
                }
            }
            Phase::Modify => {
                let a = &mut s.actors[i];
                let pos = a.pos.expect("computed");
                let copy = Arc::make_mut(a.copy.as_mut().expect("computed")).get_mut();
                let changed = copy.bm.push_reservation(pos, releasing);
                if trace.is_on() {
                    let ordinal = a.ordinal.expect("computed");
                    let copy = a.copy.as_ref().expect("computed");
                    trace.line(format!(
                        "pushReservation({ordinal}, release={}) on nh{}",
                        releasing,
                        if changed {
                            ""
                        } else {
                            ": redundant request, list unchanged, counter adjusted anyway"
                        }
                    ));
                    trace.line(format!("  nh: {}", self.describe_handle(copy)));
                }
            }
            Phase::Write => match s.store.as_mut() {
                None => trace.line("nh.writeToStore(): no store, returns nil (nothing checked)"),
                Some(store) => {
                    let store = Arc::make_mut(store).get_mut();
                    let a = &mut s.actors[i];
                    let copy = Arc::make_mut(a.copy.as_mut().expect("computed")).get_mut();
                    let read_at = copy.db_index;
                    match copy.write_to_store(store, &self.store_key) {
                        Ok(index) => {
                            trace.line(format!(
                                "nh.writeToStore(): AtomicPut at index 0x{read_at:x} succeeds, new index 0x{index:x}"
                            ));
                        }
                        Err(e) => {
                            trace.line(format!(
                                "nh.writeToStore(): AtomicPut at index 0x{read_at:x} fails: {e}; retry from the start of set()"
                            ));
                            a.copy = None;
                            a.pos = None;
                            a.pc = def.program[..at as usize]
                                .iter()
                                .rposition(|p| *p == Phase::Read)
                                .expect("has read") as u8;
                        }
                    }
                }
            },
            Phase::Commit => {
                let copy = s.actors[i].copy.take().expect("computed");
                let ordinal = s.actors[i].ordinal.expect("computed");
                let h = Arc::make_mut(&mut s.daemons[def.daemon].handle).get_mut();
                let before = trace.is_on().then(|| self.describe_handle(h));
                h.commit(&copy);
                if let Some(before) = before {
                    trace.line("h.Lock(); h.head, h.unselected, h.dbIndex = nh's; h.Unlock()");
                    trace.line(format!("  handle before: {before}"));
                    trace.line(format!("  handle after:  {}", self.describe_handle(h)));
                }
                if hold {
                    s.daemons[def.daemon].handle_lock = None;
                }
                s.actors[i].pos = None;
                if !releasing {
                    s.actors[i].outcome = Outcome::Allocated(ordinal);
                    cow(&mut s.holders)[def.container] = Some(ordinal);
                    if trace.is_on() {
                        trace.line(format!(
                            "RequestAddress returns {}: endpoint {name} {} it",
                            self.pool.with_prefix(ordinal),
                            if self.endpoints {
                                "holds"
                            } else {
                                "is up with"
                            }
                        ));
                    }
                } else {
                    s.actors[i].outcome = Outcome::Released(ordinal);
                    trace.line(format!(
                        "ReleaseAddress of {} returns",
                        self.pool.address(ordinal)
                    ));
                }
            }
            Phase::EpStore => {
                let ordinal = s.actors[i].ordinal.expect("allocated");
                s.records[def.container] = Some(ordinal);
                trace.line(format!(
                    "updateToStore(ep): the record of endpoint {name} ({}) enters the store",
                    self.pool.address(ordinal)
                ));
            }
            Phase::Join => {
                trace.line(format!(
                    "NewSandbox, ep.Join: sb.storeUpdate() lists endpoint {name}; container {name} is up"
                ));
            }
            Phase::Lookup => {
                trace.line(format!(
                    "CreateEndpoint({name}): EndpointByName reads the endpoint records from the store"
                ));
                if let Some(o) = s.records[def.container] {
                    s.actors[i].outcome = Outcome::NameTaken;
                    Self::bail(def, &mut s.actors[i]);
                    trace.line(format!(
                        "  a stale record holds {}: \"endpoint with name {name} already exists in network {}\"; {name} does not start",
                        self.pool.address(o),
                        self.network
                    ));
                }
            }
            Phase::Disconnect => {
                trace.line(format!(
                    "docker network disconnect -f {} {name}: ForceEndpointDelete: EndpointByName({name})",
                    self.network
                ));
                match s.records[def.container].take() {
                    Some(o) => {
                        s.actors[i].ordinal = Some(o);
                        trace.line(format!(
                            "  ep.Delete(true): deleteFromStore(ep), then releaseAddress({})",
                            self.pool.address(o)
                        ));
                    }
                    None => {
                        s.actors[i].pc = def.release.end;
                        trace.line("  no endpoint with that name: nothing to delete");
                    }
                }
            }
        }
        // The first attempt done: the restart program is not for it.
        if def.restart_at == Some(s.actors[i].pc) {
            s.actors[i].pc = def.program.len() as u8;
        }
    }
}

impl Model for IpamSystem {
    type State = IpamState;
    type Action = Step;

    fn init_state(&self) -> IpamState {
        self.init.clone()
    }

    fn actions(&self, state: &IpamState, out: &mut Vec<Step>) {
        for (i, (def, actor)) in self.actors.iter().zip(&state.actors).enumerate() {
            let Some(&phase) = def.program.get(actor.pc as usize) else {
                continue;
            };
            let daemon = &state.daemons[def.daemon];
            let me = Some(i as u8);
            let enabled = match phase {
                Phase::NetLock => daemon.network_lock.is_none(),
                // With the lock held through commit, anyone else touching
                // the handle waits for it.
                Phase::Precheck | Phase::Read => {
                    daemon.handle_lock.is_none() || daemon.handle_lock == me
                }
                Phase::Delete => state.holders[def.container].is_some(),
                _ => true,
            };
            let actor = i as u8;
            if enabled {
                out.push(Step {
                    actor,
                    fault: Fault::None,
                });
                if phase == Phase::Write {
                    let f = &state.faults_left;
                    if f.store_timeouts > 0 || f.lost_answers > 0 {
                        out.push(Step {
                            actor,
                            fault: Fault::AnswerLost,
                        });
                    }
                    if f.store_timeouts > 0 || f.lost_requests > 0 {
                        out.push(Step {
                            actor,
                            fault: Fault::RequestLost,
                        });
                    }
                }
            }
            // A daemon fails whatever its actor is waiting for.
            if state.faults_left.crashes > 0 {
                out.push(Step {
                    actor,
                    fault: Fault::Crash,
                });
            }
        }
    }

    fn next_state(&self, state: &IpamState, step: &Step, trace: &mut Trace) -> IpamState {
        let mut s = state.clone();
        self.step(&mut s, step, trace);
        s
    }

    /// `out` made a copy of `state` in place (its vectors and the shared
    /// parts it already points to kept), then stepped.
    fn next_state_into(
        &self,
        state: &IpamState,
        step: &Step,
        trace: &mut Trace,
        out: &mut IpamState,
    ) {
        out.clone_from(state);
        self.step(out, step, trace);
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut out = vec![
            Property {
                name: "ipam.unique",
                when: When::Always,
                summary: "no two live endpoints hold the same address",
                check: check_unique,
            },
            Property {
                name: "ipam.accounted",
                when: When::Quiescent,
                summary:
                    "at quiescence the bitmap equals reserved ∪ held: no leak, no phantom free",
                check: check_accounted,
            },
            Property {
                name: "ipam.counter",
                when: When::Always,
                summary: "every handle's free counter equals its number of free bits",
                check: check_counter,
            },
        ];
        if self.endpoints {
            out.extend([
                Property {
                    name: "store.restartable",
                    when: When::Quiescent,
                    summary: "after a daemon failure, no endpoint record in the store names a container that is not running: every container of the failed node starts again",
                    check: check_restartable,
                },
                Property {
                    name: "ipam.no_leak_after_recovery",
                    when: When::Quiescent,
                    summary: "after a daemon failure and its recovery, every address is reserved, held by a running container, or free",
                    check: check_no_leak_after_recovery,
                },
            ]);
        }
        out
    }

    fn lanes(&self) -> Vec<crate::sim::Lane> {
        self.diagram_lanes()
    }

    fn sketch(&self, before: &IpamState, step: &Step, after: &IpamState) -> crate::sim::Sketch {
        self.diagram_step(before, step, after)
    }

    fn describe(&self, state: &IpamState, step: &Step) -> String {
        let def = &self.actors[step.actor as usize];
        let phase = def.program[state.actors[step.actor as usize].pc as usize];
        let kind = if def.run { "run" } else { "rm" };
        let daemon = if state.daemons.len() > 1 {
            format!(" @daemon{}", def.daemon)
        } else {
            String::new()
        };
        let fault = match step.fault {
            Fault::None => "",
            Fault::AnswerLost => " (its answer lost: timeout)",
            Fault::RequestLost => " (the request lost: timeout)",
            Fault::Crash => " interrupted: the daemon fails",
        };
        format!(
            "{kind} {}{daemon}: {}{fault}",
            self.containers[def.container],
            phase.name()
        )
    }

    fn action_key(&self, _state: &IpamState, step: &Step) -> u64 {
        u64::from(step.actor) | step.fault.tag() << 8
    }

    fn blocked(&self, state: &IpamState, key: u64) -> Option<String> {
        let i = usize::try_from(key & 0xff)
            .ok()
            .filter(|&i| i < self.actors.len())?;
        if key >> 8 != 0 {
            let f = &state.faults_left;
            let spent = match key >> 8 {
                3 => f.crashes == 0,
                1 => f.store_timeouts == 0 && f.lost_answers == 0,
                _ => f.store_timeouts == 0 && f.lost_requests == 0,
            };
            if spent {
                return Some("the scenario's budget for this fault is spent".into());
            }
        }
        let def = &self.actors[i];
        let kind = if def.run { "run" } else { "rm" };
        let who = format!("{kind} {}", self.containers[def.container]);
        let holder = |a: u8| {
            let d = &self.actors[a as usize];
            format!(
                "{} {}",
                if d.run { "run" } else { "rm" },
                self.containers[d.container]
            )
        };
        let Some(&phase) = def.program.get(state.actors[i].pc as usize) else {
            return Some(format!("{who} has already finished"));
        };
        let daemon = &state.daemons[def.daemon];
        Some(match phase {
            Phase::NetLock => match daemon.network_lock {
                Some(a) => format!(
                    "{who} waits at netlock: the network lock (networkLocker.Lock) is held by {}",
                    holder(a)
                ),
                None => return None,
            },
            Phase::Precheck | Phase::Read => match daemon.handle_lock {
                Some(a) if a as usize != i => format!(
                    "{who} waits at {}: the handle lock (Handle.Lock, held through commit) is held by {}",
                    phase.name(),
                    holder(a)
                ),
                _ => return None,
            },
            Phase::Delete => format!("{who} has no endpoint to delete"),
            _ => return None,
        })
    }

    fn is_local(&self, state: &IpamState, step: &Step) -> bool {
        if step.fault != Fault::None {
            return false;
        }
        let def = &self.actors[step.actor as usize];
        let phase = def.program[state.actors[step.actor as usize].pc as usize];
        match phase {
            Phase::Modify => true,
            Phase::Read => state.store.is_none() && !self.profile.holds_lock_through_commit(),
            Phase::Write => state.store.is_none(),
            _ => false,
        }
    }

    /// Sorts the actors of each symmetry class by a stable fingerprint of
    /// what distinguishes them in `state`: the actor's private state, what
    /// its container holds, and which locks it holds. Actors with equal
    /// keys are equal in all of that, so the order among them does not
    /// matter: every arrangement of an orbit gets the same representative
    /// (up to a 128-bit fingerprint collision, which only costs reduction).
    fn canonical(&self, state: &IpamState) -> Option<IpamState> {
        let mut out: Option<IpamState> = None;
        for class in &self.symmetric {
            let key = |i: u8| {
                let def = &self.actors[i as usize];
                let daemon = &state.daemons[def.daemon];
                let mut h = crate::explore::StableHasher::new();
                state.actors[i as usize].hash(&mut h);
                state.holders[def.container].hash(&mut h);
                state.records.get(def.container).hash(&mut h);
                (daemon.network_lock == Some(i)).hash(&mut h);
                (daemon.handle_lock == Some(i)).hash(&mut h);
                h.finish128()
            };
            let mut order: Vec<(u128, u8)> = class.iter().map(|&i| (key(i), i)).collect();
            order.sort_unstable();
            if order.iter().zip(class).all(|((_, src), dst)| src == dst) {
                continue;
            }
            let t = out.get_or_insert_with(|| state.clone());
            for (&dst, &(_, src)) in class.iter().zip(&order) {
                let (d, s) = (dst as usize, src as usize);
                t.actors[d] = state.actors[s].clone();
                cow(&mut t.holders)[self.actors[d].container] =
                    state.holders[self.actors[s].container];
                if self.endpoints {
                    t.records[self.actors[d].container] = state.records[self.actors[s].container];
                }
            }
            let moved = |lock: Option<u8>| {
                lock.and_then(|a| order.iter().position(|&(_, src)| src == a))
                    .map(|k| class[k])
            };
            for (t, d) in t.daemons.iter_mut().zip(&state.daemons) {
                if let Some(a) = moved(d.network_lock) {
                    t.network_lock = Some(a);
                }
                if let Some(a) = moved(d.handle_lock) {
                    t.handle_lock = Some(a);
                }
            }
        }
        out
    }

    fn has_symmetry(&self) -> bool {
        !self.symmetric.is_empty()
    }

    /// Frontier states as byte strings with numbered shared parts
    /// (`system::pack`).
    fn packer(&self) -> Option<Box<dyn crate::explore::pack::Packer<IpamState> + '_>> {
        Some(Box::new(pack::IpamPacker::new()))
    }

    /// The state's fields in order, as one byte string hashed by one call
    /// of XXH3-128 ([`xxhash_rust::xxh3::xxh3_128`], what
    /// [`crate::explore::StateHasher`] does for input of up to 1,024
    /// bytes, without its buffers): each count, lock, ordinal and
    /// position as a LEB128 varint (an `Option` as 0 for `None` and
    /// `v + 1` for `Some(v)`), each enum as a tag byte and its value, and
    /// each shared part (a daemon's handle, an actor's private copy, the
    /// store) as its cached 128-bit fingerprint instead of its bitmap.
    /// Every field is self-delimiting and every list has its length
    /// first, so the byte string is one-to-one with the state, and two
    /// states share a fingerprint only on a 128-bit hash collision. A
    /// six-actor state of the seed scenario is about 150 bytes (the
    /// fixed-width records of before took about 560, past XXH3's
    /// 240-byte short-input path). The patterns name every field, so a
    /// field added to the state or an actor does not compile until it is
    /// hashed here.
    fn fingerprint(&self, state: &IpamState) -> crate::explore::Fingerprint {
        let IpamState {
            daemons,
            store,
            actors,
            holders,
            records,
            faults_left,
        } = state;
        let mut e = FpBytes::<512>::new();
        // `Some(o)` as `o + 1`, `None` as 0.
        let opt = |o: &Option<u64>| o.map_or(0, |o| o + 1);
        let lock = |l: &Option<u8>| l.map_or(0, |a| u64::from(a) + 1);
        e.varint(daemons.len() as u64);
        for Daemon {
            handle,
            handle_lock,
            network_lock,
        } in daemons
        {
            e.u128(handle.fingerprint());
            e.varint(lock(handle_lock));
            e.varint(lock(network_lock));
        }
        match store {
            None => e.byte(0),
            Some(store) => {
                e.byte(1);
                e.u128(store.fingerprint());
            }
        }
        for b in faults_left.budgets() {
            e.byte(b);
        }
        e.varint(actors.len() as u64);
        for Actor {
            pc,
            ordinal,
            pos,
            copy,
            outcome,
        } in actors
        {
            e.byte(*pc);
            e.varint(opt(ordinal));
            match pos {
                None => e.byte(0),
                Some(Pos { byte, bit }) => {
                    e.byte(1);
                    e.varint(*byte);
                    e.varint(*bit);
                }
            }
            match copy {
                None => e.byte(0),
                Some(c) => {
                    e.byte(1);
                    e.u128(c.fingerprint());
                }
            }
            let (tag, value) = outcome.tagged();
            e.byte(tag);
            if let Some(v) = value {
                e.varint(v);
            }
        }
        e.u128(holders.fingerprint());
        e.varint(records.len() as u64);
        for r in records {
            e.varint(opt(r));
        }
        xxhash_rust::xxh3::xxh3_128(e.as_slice())
    }

    fn summarize(&self, state: &IpamState) -> Vec<String> {
        let mut out = Vec::new();
        for (d, daemon) in state.daemons.iter().enumerate() {
            out.push(format!(
                "daemon{d} handle: {}",
                self.describe_handle(&daemon.handle)
            ));
        }
        if let Some(store) = &state.store {
            let e = store
                .get(&self.store_key)
                .expect("created with the network");
            out.push(format!(
                "store {}: index 0x{:x}, unselected: {}, sequence: {}",
                self.store_key,
                e.index(),
                e.value.unselected(),
                e.value.sequence_string()
            ));
        }
        out.push(format!("live endpoints: {}", self.live_summary(state)));
        if self.endpoints {
            let records: Vec<String> = self
                .containers
                .iter()
                .zip(&state.records)
                .filter_map(|(c, r)| r.map(|o| format!("{c}={}", self.pool.address(o))))
                .collect();
            out.push(format!(
                "endpoint records in the store: {}",
                if records.is_empty() {
                    "none".to_string()
                } else {
                    records.join(" ")
                }
            ));
        }
        for (def, a) in self.actors.iter().zip(&state.actors) {
            let status = match a.outcome {
                Outcome::Pending if (a.pc as usize) < def.program.len() => {
                    format!("waiting at {}", def.program[a.pc as usize].name())
                }
                Outcome::Pending => "done".into(),
                Outcome::Allocated(o) => format!("got {}", self.pool.address(o)),
                Outcome::Released(o) => format!("released {}", self.pool.address(o)),
                Outcome::NoAddress => "failed: no available address".into(),
                Outcome::StoreTimeout => "failed: the store request timed out".into(),
                Outcome::Crashed if (a.pc as usize) < def.program.len() => format!(
                    "died with its daemon, started again: waiting at {}",
                    def.program[a.pc as usize].name()
                ),
                Outcome::Crashed => "died with its daemon".into(),
                Outcome::NameTaken => format!(
                    "failed to start again: endpoint with name {} already exists in network {}",
                    self.containers[def.container], self.network
                ),
            };
            out.push(format!(
                "{} {}: {status}",
                if def.run { "run" } else { "rm" },
                self.containers[def.container]
            ));
        }
        out
    }
}

/// The byte string [`IpamSystem`]'s fingerprint hashes: on the stack up
/// to `N` bytes (512 for a state: every state of the bundled scenarios;
/// 128 for a part, so that its smaller buffer costs less to clear), on
/// the heap past that. Written a byte or a fixed-width value at a time, so that no
/// write is a call of `memcpy`.
struct FpBytes<const N: usize> {
    stack: [u8; N],
    len: usize,
    /// Everything, once more than the stack's `N` bytes were written.
    heap: Vec<u8>,
}

impl<const N: usize> FpBytes<N> {
    #[inline(always)]
    fn new() -> FpBytes<N> {
        FpBytes {
            stack: [0; N],
            len: 0,
            heap: Vec::new(),
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        if self.len < self.stack.len() {
            self.stack[self.len] = b;
            self.len += 1;
        } else {
            self.spill(b);
        }
    }

    #[cold]
    #[inline(never)]
    fn spill(&mut self, b: u8) {
        if self.heap.is_empty() {
            self.heap.extend_from_slice(&self.stack);
        }
        self.heap.push(b);
    }

    #[inline(always)]
    fn u128(&mut self, v: u128) {
        if self.len + 16 <= self.stack.len() {
            self.stack[self.len..self.len + 16].copy_from_slice(&v.to_le_bytes());
            self.len += 16;
        } else {
            for b in v.to_le_bytes() {
                self.byte(b);
            }
        }
    }

    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    fn as_slice(&self) -> &[u8] {
        if self.heap.is_empty() {
            &self.stack[..self.len]
        } else {
            &self.heap
        }
    }
}

fn check_unique(m: &IpamSystem, s: &IpamState) -> Result<Checked, String> {
    for (i, a) in s.holders.iter().enumerate() {
        let Some(a) = a else { continue };
        for (j, b) in s.holders.iter().enumerate().skip(i + 1) {
            if Some(*a) == *b {
                return Err(format!(
                    "{} is held by {} and {}",
                    m.pool.address(*a),
                    m.containers[i],
                    m.containers[j]
                ));
            }
        }
    }
    // Uniqueness speaks about two holders at once.
    Ok(Checked::when(s.holders.iter().flatten().count() >= 2))
}

/// Whether a daemon failure happened on the way to `s` (the recovery
/// properties speak only about those states).
fn recovered(m: &IpamSystem, s: &IpamState) -> bool {
    s.faults_left.crashes < m.init.faults_left.crashes
}

fn check_restartable(m: &IpamSystem, s: &IpamState) -> Result<Checked, String> {
    if !recovered(m, s) {
        return Ok(Checked::Nothing);
    }
    let stale: Vec<String> = m
        .containers
        .iter()
        .zip(s.records.iter().zip(s.holders.iter()))
        .filter_map(|(c, (record, held))| match (record, held) {
            (Some(o), None) => Some(format!(
                "the store keeps the endpoint record of {c} ({}), but {c} is not running: starting it fails with \"endpoint with name {c} already exists in network {}\"",
                m.pool.address(*o),
                m.network
            )),
            _ => None,
        })
        .collect();
    none_of(stale)
}

/// `Something` checked when there is no problem, else the problems.
fn none_of(problems: Vec<String>) -> Result<Checked, String> {
    if problems.is_empty() {
        Ok(Checked::Something)
    } else {
        Err(problems.join("; "))
    }
}

/// What accounting compares: the ordinals set in the authoritative bitmap,
/// and the reserved and held ones (both sorted).
fn set_and_expected(m: &IpamSystem, s: &IpamState) -> (Vec<u64>, Vec<u64>) {
    let mut expected: Vec<u64> = m.pool.reserved().to_vec();
    expected.extend(s.holders.iter().flatten());
    expected.sort_unstable();
    expected.dedup();
    (m.authoritative(s).set_ordinals(), expected)
}

fn check_no_leak_after_recovery(m: &IpamSystem, s: &IpamState) -> Result<Checked, String> {
    if !recovered(m, s) {
        return Ok(Checked::Nothing);
    }
    let (set, live) = set_and_expected(m, s);
    let leaked: Vec<String> = set
        .into_iter()
        .filter(|o| live.binary_search(o).is_err())
        .map(|o| {
            let stale = m
                .containers
                .iter()
                .zip(&s.records)
                .find(|(_, r)| **r == Some(o));
            match stale {
                Some((c, _)) => format!(
                    "{} is set in the store, held by the stale endpoint record of {c}",
                    m.pool.address(o)
                ),
                None => format!(
                    "{} is set in the store and held by no one",
                    m.pool.address(o)
                ),
            }
        })
        .collect();
    none_of(leaked)
}

fn check_accounted(m: &IpamSystem, s: &IpamState) -> Result<Checked, String> {
    let (set, expected) = set_and_expected(m, s);
    let leaked: Vec<String> = set
        .iter()
        .filter(|o| expected.binary_search(o).is_err())
        .map(|o| m.pool.address(*o).to_string())
        .collect();
    let phantom: Vec<String> = expected
        .iter()
        .filter(|o| set.binary_search(o).is_err())
        .map(|o| m.pool.address(*o).to_string())
        .collect();
    let mut parts = Vec::new();
    if !leaked.is_empty() {
        parts.push(format!(
            "leaked (set, held by no one): {}",
            leaked.join(", ")
        ));
    }
    if !phantom.is_empty() {
        parts.push(format!(
            "phantom free (held, but clear in the bitmap): {}",
            phantom.join(", ")
        ));
    }
    none_of(parts)
}

fn check_counter(m: &IpamSystem, s: &IpamState) -> Result<Checked, String> {
    // Every state is checked: no vector or name is built unless the
    // counter is wrong.
    let wrong = |what: &dyn Fn() -> String, bm: &Bitseq| {
        let free = bm.free_bits();
        (bm.unselected() != free).then(|| {
            format!(
                "{}: unselected = {} but {free} bits are free",
                what(),
                bm.unselected()
            )
        })
    };
    for (d, daemon) in s.daemons.iter().enumerate() {
        if let Some(e) = wrong(&|| format!("daemon{d} handle"), &daemon.handle.bm) {
            return Err(e);
        }
    }
    if let Some(store) = &s.store {
        let bm = &store.get(&m.store_key).expect("created").value;
        if let Some(e) = wrong(&|| "store".to_string(), bm) {
            return Err(e);
        }
    }
    Ok(Checked::Something)
}
