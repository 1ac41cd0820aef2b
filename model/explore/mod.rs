//! The explorers: exhaustive breadth-first search with a visited set of
//! stable 128-bit fingerprints and a partial-order reduction, seeded
//! random walks, replay of a schedule, and shrinking of a violating
//! schedule ([`shrink`](mod@shrink)).
//!
//! Every explorer reports, per property, the first violation it found as a
//! schedule (a list of choice indices, see [`crate::sim`]), whether the
//! property ever had anything to check, and whether the whole bounded
//! space was covered. Breadth-first search finds a shortest violating
//! schedule of the reduced graph; the shrinker then removes every step the
//! violation does not need, so what users see is minimal under step
//! removal.
//!
//! A search ends early for a named reason ([`Stop`]): a bound of the
//! scenario ([`Bounds`]), a resource limit of the run ([`Limits`]: memory,
//! time, an interrupt), or a sampling strategy that never covers a space.
//! A report that ended early is never `complete`, and [`crate::check`]
//! turns that into the verdict `unknown` for every property not violated.
//!
//! Depth-first search ([`dfs`]), PCT ([`pct`]) and shards ([`Shard`]) are
//! here too.

pub mod pack;
mod parallel;
pub mod shrink;
pub mod token;

pub use parallel::bfs_parallel;
use parallel::Checks;
pub use shrink::shrink;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sim::{Checked, Model, Property, Trace, When};

/// Limits on a search that are part of the scenario: the bounded space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Stop after this many distinct states (exhaustive) or steps (random).
    pub max_states: u64,
    /// Do not expand states at this depth.
    pub max_depth: u32,
}

/// The largest `max_states` a scenario or the command line may ask for
/// (state indices are 32-bit).
pub const MAX_STATES_LIMIT: u64 = 1_000_000_000;
/// The largest `max_depth` a scenario or the command line may ask for.
pub const MAX_DEPTH_LIMIT: u32 = 1_000_000;

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_states: 2_000_000,
            max_depth: 1_000,
        }
    }
}

/// A bound a user gave that no search can run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadBound {
    /// `max_states` or `max_depth`.
    pub bound: &'static str,
    /// The value given.
    pub value: i64,
    /// What to give instead.
    pub hint: String,
}

impl Bounds {
    /// These bounds with the given ones replacing theirs, each checked;
    /// `Err` names the bound that is impossible and what to give instead.
    /// The scenario loader and the command line both use it, so they
    /// refuse the same values.
    pub fn with(self, max_states: Option<i64>, max_depth: Option<i64>) -> Result<Bounds, BadBound> {
        let mut b = self;
        if let Some(value) = max_states {
            if value < 1 || value as u64 > MAX_STATES_LIMIT {
                return Err(BadBound {
                    bound: "max_states",
                    value,
                    hint: format!("give a number of states from 1 to {MAX_STATES_LIMIT}"),
                });
            }
            b.max_states = value as u64;
        }
        if let Some(value) = max_depth {
            if value < 1 || value as u64 > u64::from(MAX_DEPTH_LIMIT) {
                return Err(BadBound {
                    bound: "max_depth",
                    value,
                    hint: format!("give a depth from 1 to {MAX_DEPTH_LIMIT}"),
                });
            }
            b.max_depth = value as u32;
        }
        Ok(b)
    }
}

/// Limits of one run, set by the user of the command line rather than by
/// the scenario. Checked every [`CHECK_EVERY`] states.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// End the search as `unknown (memory)` before the memory in use
    /// (as `memory_in_use` reports it) passes this many bytes.
    pub max_memory: Option<u64>,
    /// Bytes in use by the process, as the binary's counting allocator
    /// sees them. `None`: memory is not watched.
    pub memory_in_use: Option<fn() -> u64>,
    /// End the search as `unknown (time)` once it has run this long
    /// (counted from the start of each search).
    pub time_limit: Option<std::time::Duration>,
    /// End the search as `unknown (interrupted)` once this flag is set
    /// (by the SIGINT handler).
    pub interrupt: Option<&'static AtomicBool>,
}

/// How often (in states or steps) a search looks at its [`Limits`] and
/// reports progress.
pub const CHECK_EVERY: u64 = 1024;

/// Why a search ended before covering the whole bounded space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stop {
    /// The scenario's (or `--max-states`) state bound.
    MaxStates,
    /// The depth bound: some state at that depth was not expanded.
    MaxDepth,
    /// The memory budget (`--max-memory`).
    Memory,
    /// The time limit.
    Time,
    /// SIGINT (Ctrl-C).
    Interrupted,
    /// A sampling strategy (random walks) never covers a space.
    Sampling,
    /// Stopped at the first violation (`stop_at_first`, or every property
    /// already violated).
    FirstViolation,
}

impl Stop {
    /// Every reason, in declaration order.
    pub const ALL: [Stop; 7] = [
        Stop::MaxStates,
        Stop::MaxDepth,
        Stop::Memory,
        Stop::Time,
        Stop::Interrupted,
        Stop::Sampling,
        Stop::FirstViolation,
    ];

    /// The reason named `name` (as [`Stop::as_str`] prints it).
    pub fn parse(name: &str) -> Option<Stop> {
        Stop::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The name used in verdicts: `unknown (max_states)`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::MaxStates => "max_states",
            Stop::MaxDepth => "max_depth",
            Stop::Memory => "memory",
            Stop::Time => "time",
            Stop::Interrupted => "interrupted",
            Stop::Sampling => "sampling",
            Stop::FirstViolation => "first_violation",
        }
    }

    /// What a user can do about it, for the `(!)` lines.
    pub fn remedy(self) -> &'static str {
        match self {
            Stop::MaxStates => "raise --max-states (or [bounds] max_states in the scenario)",
            Stop::MaxDepth => "raise --max-depth (or [bounds] max_depth in the scenario)",
            Stop::Memory => "raise --max-memory, or make the scenario smaller",
            Stop::Time => "raise --time-limit",
            Stop::Interrupted => "run it again without interrupting",
            Stop::Sampling => {
                "random walks and PCT never cover a space: use --strategy bfs to prove a property"
            }
            Stop::FirstViolation => "run without --fail-fast to decide every property",
        }
    }
}

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Exhaustive breadth-first search.
    Bfs,
    /// Exhaustive depth-first search: the same verdicts as `Bfs` when
    /// complete, with a visited set of bare fingerprints and a frontier
    /// as deep as the search (not as wide), so it needs far less memory;
    /// its counterexamples are long and are shortened afterwards.
    Dfs,
    /// Probabilistic concurrency testing (see [`pct`]): `runs` runs from
    /// a seed, each with random actor priorities and `depth - 1` priority
    /// change points.
    Pct {
        /// The seed; run `i` uses its own stream derived from it.
        seed: u64,
        /// How many runs.
        runs: u64,
        /// The bug depth `d` the runs aim at (1 or more).
        depth: u32,
    },
    /// `walks` random walks from a seed.
    Random {
        /// The seed; walk `i` uses its own stream derived from it.
        seed: u64,
        /// How many walks.
        walks: u64,
    },
}

impl Strategy {
    /// The strategy's name, as `--strategy` and the JSON rows spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
            Strategy::Random { .. } => "random",
            Strategy::Pct { .. } => "pct",
        }
    }

    /// Whether the strategy covers the whole bounded space (when it is
    /// not stopped), rather than sampling it.
    pub fn is_exhaustive(&self) -> bool {
        matches!(self, Strategy::Bfs | Strategy::Dfs)
    }
}

/// Search options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The bounded space.
    pub bounds: Bounds,
    /// Resource limits of this run.
    pub limits: Limits,
    /// Which explorer.
    pub strategy: Strategy,
    /// Use the partial-order reduction (exhaustive search only).
    pub por: bool,
    /// Use the model's symmetry reduction, when it has one
    /// ([`Model::canonical`]; exhaustive search only).
    pub symmetry: bool,
    /// Stop at the first violation of any property (for "time to first
    /// violation" measurements); the report is then not complete.
    pub stop_at_first: bool,
    /// Check only this property (an index into [`Model::properties`]),
    /// and end the search at its first violation: the search for a
    /// shorter counterexample of one property. `None`: every property.
    pub target: Option<usize>,
    /// Explore only this shard's part of the space ([`Shard`]).
    pub shard: Option<Shard>,
    /// Threads of a breadth-first search ([`bfs_parallel`]); 1 runs the
    /// sequential [`bfs`]. Results are identical for every value.
    pub jobs: usize,
}

/// One of `count` deterministic parts of a search (`--shard`), for
/// spreading one search over the jobs of a batch system.
///
/// Breadth-first: every shard runs the same search until the first layer
/// of at least [`SHARD_SPLIT_WIDTH`] × `count` states, then keeps the
/// layer's states whose position is `index` modulo `count` and goes on
/// from those alone (with the states of the shared prefix, other shards'
/// roots included, already visited). Every reachable state is in the
/// prefix or reachable from some root along a shortest path that avoids
/// the prefix, so the union of the shards covers the space; states
/// reachable from the roots of two shards are explored by both (the
/// repeated work). The partial-order reduction's cycle proviso stays
/// sound in a shard: node indices still grow with depth, and a reduced
/// step into the prefix (a smaller depth) expands its state fully.
/// Random walks and PCT: shard `index` takes the runs `r` with
/// `r % count == index` (and PCT's first run, whose length sets its change
/// points). Depth-first search is not split: each shard runs all of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: u64,
    /// 1 or more.
    pub count: u64,
}

/// A breadth-first search splits among `count` shards at the first layer
/// of at least this many states per shard.
pub const SHARD_SPLIT_WIDTH: usize = 8;

impl Default for Options {
    fn default() -> Self {
        Options {
            bounds: Bounds::default(),
            limits: Limits::default(),
            strategy: Strategy::Bfs,
            por: true,
            symmetry: true,
            stop_at_first: false,
            target: None,
            shard: None,
            jobs: 1,
        }
    }
}

/// A found violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The schedule from the initial state to the violating state.
    pub schedule: Vec<u32>,
    /// What the property said.
    pub message: String,
}

/// The outcome of a search.
#[derive(Clone, Debug)]
pub struct Report {
    /// Distinct states visited (exhaustive) or steps taken (random).
    pub states: u64,
    /// True when every reachable state of the bounded space was expanded
    /// (and checked): the strategy is exhaustive and nothing stopped it.
    pub complete: bool,
    /// Why the search ended early, if it did.
    pub stop: Option<Stop>,
    /// The deepest state reached.
    pub max_depth_seen: u32,
    /// Per property (in [`Model::properties`] order), the first violation.
    pub violations: Vec<Option<Violation>>,
    /// Per property, whether some checked state had something to check
    /// ([`Checked::Something`]); a property that never had is vacuous.
    pub checked: Vec<bool>,
    /// Heap bytes the search took at its peak (visited set, parent links,
    /// frontier states with their heap parts), measured by the binary's
    /// counting allocator; without one (the library in tests), an estimate
    /// from the tables' capacities and the states' inline size. 0 for
    /// sampling strategies.
    pub bytes: u64,
}

/// Progress of a long search, for the progress line on stderr.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// States (or steps) so far.
    pub states: u64,
    /// The search depth reached.
    pub depth: u32,
    /// The state bound.
    pub max_states: u64,
}

/// A 128-bit fingerprint of a state, the key of the visited set.
pub type Fingerprint = u128;

/// The hasher behind [`fingerprint`], the visited set's key: XXH3-128 (the
/// `xxhash-rust` crate; XXH3's output is fixed by its specification since
/// xxHash 0.8.0, streaming and one-shot alike), fed every integer as
/// little-endian bytes of a fixed width (`usize`/`isize` as 64 bits), so a
/// fingerprint does not depend on the platform's word size, nor on a
/// random seed. (std hashes a slice of integers as its memory bytes in
/// one write, so a big-endian platform would give other fingerprints:
/// the pinned test would fail there.) What it does depend on is the sequence of writes
/// std's `Hash` impls make for the model's types; `tests/soundness.rs`
/// pins the fingerprints of fixed values, so a Rust release that changed
/// them would fail that test instead of silently changing results.
///
/// Collision risk: XXH3-128 is not cryptographic, but the states are not
/// chosen by an adversary, and over such inputs two distinct states share
/// a fingerprint with probability about n²/2¹²⁹ over n states, below
/// 10⁻²⁰ for 10⁹ states; a collision would merge two states (an
/// unexplored state, never a false violation). docs/user-guide.md states
/// it.
///
/// Speed: the model's `Hash` impls write a few bytes at a time; the
/// hasher gathers writes in a 1,024-byte buffer and feeds the hash function
/// whole buffers, and a state that fits the buffer (every IPAM state of
/// the bundled scenarios) is hashed in one call.
/// Both functions are streaming (the output depends only on the
/// concatenation of the bytes written), so the results are exactly those
/// of writing every integer straight through.
pub type StateHasher = Buffered<xxhash_rust::xxh3::Xxh3Default, 1024>;

/// SipHash-1-3 with 128-bit output and fixed keys (the `siphasher`
/// crate) behind the same buffered, fixed-width writes as
/// [`StateHasher`]: the hash of values whose hash decides an outcome
/// (the symmetry reduction's order of actors, L2 delivery keys), kept as
/// it was when [`fingerprint`] moved to XXH3 so that representatives and
/// counterexamples did not change.
pub type StableHasher = Buffered<siphasher::sip128::SipHasher13, 256>;

/// A 128-bit hash function that [`Buffered`] feeds whole buffers.
pub trait HashCore: Clone {
    /// The function in its initial state.
    fn start() -> Self;
    /// Adds bytes.
    fn update(&mut self, bytes: &[u8]);
    /// The result over everything added and then `tail`; `fed` says
    /// whether anything was added before the tail.
    fn result(&self, tail: &[u8], fed: bool) -> u128;
}

impl HashCore for siphasher::sip128::SipHasher13 {
    fn start() -> Self {
        siphasher::sip128::SipHasher13::new_with_keys(0x6e65_7472_6163_6521, 0x7374_6174_6573_0001)
    }
    fn update(&mut self, bytes: &[u8]) {
        Hasher::write(self, bytes);
    }
    fn result(&self, tail: &[u8], _fed: bool) -> u128 {
        use siphasher::sip128::Hasher128;
        let mut sip = *self;
        Hasher::write(&mut sip, tail);
        sip.finish128().as_u128()
    }
}

impl HashCore for xxhash_rust::xxh3::Xxh3Default {
    fn start() -> Self {
        xxhash_rust::xxh3::Xxh3Default::new()
    }
    fn update(&mut self, bytes: &[u8]) {
        xxhash_rust::xxh3::Xxh3Default::update(self, bytes);
    }
    fn result(&self, tail: &[u8], fed: bool) -> u128 {
        if fed {
            let mut x = self.clone();
            x.update(tail);
            x.digest128()
        } else {
            xxhash_rust::xxh3::xxh3_128(tail)
        }
    }
}

/// A [`HashCore`] behind a write buffer of `N` bytes, with every integer
/// written as little-endian bytes of a fixed width.
pub struct Buffered<C, const N: usize> {
    core: C,
    fed: bool,
    buf: [u8; N],
    len: usize,
}

impl<C: HashCore, const N: usize> Buffered<C, N> {
    /// A hasher in its initial state.
    pub fn new() -> Buffered<C, N> {
        Buffered {
            core: C::start(),
            fed: false,
            buf: [0; N],
            len: 0,
        }
    }

    /// The 128-bit result.
    pub fn finish128(&self) -> u128 {
        self.core.result(&self.buf[..self.len], self.fed)
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > N {
            self.core.update(&self.buf[..self.len]);
            self.fed = true;
            self.len = 0;
            if bytes.len() > N {
                self.core.update(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

impl<C: HashCore, const N: usize> Default for Buffered<C, N> {
    fn default() -> Self {
        Buffered::new()
    }
}

impl<C: HashCore, const N: usize> Hasher for Buffered<C, N> {
    fn finish(&self) -> u64 {
        self.finish128() as u64
    }
    fn write(&mut self, bytes: &[u8]) {
        self.put(bytes);
    }
    fn write_u8(&mut self, i: u8) {
        self.put(&[i]);
    }
    fn write_u16(&mut self, i: u16) {
        self.put(&i.to_le_bytes());
    }
    fn write_u32(&mut self, i: u32) {
        self.put(&i.to_le_bytes());
    }
    fn write_u64(&mut self, i: u64) {
        self.put(&i.to_le_bytes());
    }
    fn write_u128(&mut self, i: u128) {
        self.put(&i.to_le_bytes());
    }
    fn write_usize(&mut self, i: usize) {
        self.put(&(i as u64).to_le_bytes());
    }
    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    fn write_isize(&mut self, i: isize) {
        self.write_u64(i as i64 as u64);
    }
}

/// The stable 128-bit fingerprint of a state (see [`StateHasher`]).
pub fn fingerprint<S: Hash>(state: &S) -> Fingerprint {
    let mut h = StateHasher::new();
    state.hash(&mut h);
    h.finish128()
}

/// [`fingerprint`] with [`StableHasher`]: for hashes whose value decides
/// an outcome.
pub fn stable_hash<S: Hash>(value: &S) -> u128 {
    let mut h = StableHasher::new();
    value.hash(&mut h);
    h.finish128()
}

/// Hashes a fingerprint by its low 64 bits: it is already uniformly
/// distributed, and no random seed is involved.
#[derive(Default)]
pub(crate) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// The visited set of breadth-first search: a fingerprint's 96-bit key
/// ([`pack::Key`]) to a node index or a depth, 16 bytes an entry.
type Visited = HashMap<pack::Key, u32, BuildHasherDefault<FingerprintHasher>>;

/// Runs the chosen strategy.
pub fn explore<M: Model>(
    model: &M,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    match options.strategy {
        Strategy::Dfs => dfs(model, options, progress),
        Strategy::Bfs => bfs(model, options, progress),
        Strategy::Random { seed, walks } => {
            random_walks_with(model, seed, walks, options, progress)
        }
        Strategy::Pct { seed, runs, depth } => pct(model, seed, runs, depth, options, progress),
    }
}

/// What the property checks of a search have seen so far.
struct Findings {
    found: Vec<Option<Violation>>,
    checked: Vec<bool>,
    /// The properties checked at all (all, or [`Options::target`]).
    tracked: Vec<bool>,
    /// End at the first violation of a tracked property.
    stop_at_first: bool,
}

impl Findings {
    fn new(n: usize, options: &Options) -> Findings {
        Findings {
            found: vec![None; n],
            checked: vec![false; n],
            tracked: (0..n)
                .map(|i| options.target.is_none_or(|t| t == i))
                .collect(),
            stop_at_first: options.stop_at_first || options.target.is_some(),
        }
    }

    /// Checks the `Always` properties, and when `quiescent` the
    /// `Quiescent` ones, recording the first violation of each.
    fn check_state<M: Model>(
        &mut self,
        model: &M,
        props: &[Property<M>],
        state: &M::State,
        quiescent: bool,
        schedule: &mut dyn FnMut() -> Vec<u32>,
    ) {
        for (i, p) in props.iter().enumerate() {
            if !self.tracked[i]
                || self.found[i].is_some()
                || (p.when == When::Quiescent && !quiescent)
            {
                continue;
            }
            match (p.check)(model, state) {
                Ok(Checked::Something) => self.checked[i] = true,
                Ok(Checked::Nothing) => {}
                Err(message) => {
                    self.checked[i] = true;
                    self.found[i] = Some(Violation {
                        schedule: schedule(),
                        message,
                    });
                }
            }
        }
    }

    /// Which properties [`Findings::check_state`] would check now on a
    /// state (`quiescent` or not): tracked, not yet violated, and due.
    fn due<M: Model>(&self, props: &[Property<M>], quiescent: bool) -> Vec<bool> {
        props
            .iter()
            .enumerate()
            .map(|(i, p)| {
                self.tracked[i] && self.found[i].is_none() && (p.when == When::Always || quiescent)
            })
            .collect()
    }

    /// Records results computed elsewhere (by [`Checks::run`]) exactly as
    /// [`Findings::check_state`] would have recorded its own.
    fn record(&mut self, results: &Checks, schedule: &mut dyn FnMut() -> Vec<u32>) {
        for (i, r) in results.0.iter().enumerate() {
            if self.found[i].is_some() {
                continue;
            }
            match r {
                None | Some(Ok(Checked::Nothing)) => {}
                Some(Ok(Checked::Something)) => self.checked[i] = true,
                Some(Err(message)) => {
                    self.checked[i] = true;
                    self.found[i] = Some(Violation {
                        schedule: schedule(),
                        message: message.clone(),
                    });
                }
            }
        }
    }

    /// True when the search has nothing left to find: every tracked
    /// property violated, or with `stop_at_first` any of them.
    fn done(&self) -> bool {
        let mut tracked = self.found.iter().zip(&self.tracked).filter(|(_, t)| **t);
        if self.stop_at_first {
            tracked.any(|(f, _)| f.is_some())
        } else {
            tracked.all(|(f, _)| f.is_some())
        }
    }
}

/// Looks at the run's limits; `Some` when one says stop. `extra` is the
/// memory the next step is about to allocate (a table about to grow).
fn limit_hit(limits: &Limits, started: Instant, extra: u64) -> Option<Stop> {
    if limits.interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Some(Stop::Interrupted);
    }
    if limits.time_limit.is_some_and(|t| started.elapsed() >= t) {
        return Some(Stop::Time);
    }
    if let (Some(max), Some(used)) = (limits.max_memory, limits.memory_in_use) {
        if used().saturating_add(extra) > max {
            return Some(Stop::Memory);
        }
    }
    None
}

/// The heap a search takes, as the binary's counting allocator sees it
/// ([`Limits::memory_in_use`]): the growth from the search's start to the
/// highest of the samples taken every [`CHECK_EVERY`] states and at the
/// end. Everything the search holds is in it: the visited set, parent
/// links, and the frontier's states with their heap parts.
struct HeapWatch {
    used: Option<fn() -> u64>,
    base: u64,
    peak: u64,
}

impl HeapWatch {
    fn new(limits: &Limits) -> HeapWatch {
        let base = limits.memory_in_use.map_or(0, |f| f());
        HeapWatch {
            used: limits.memory_in_use,
            base,
            peak: base,
        }
    }

    fn sample(&mut self) {
        if let Some(f) = self.used {
            self.peak = self.peak.max(f());
        }
    }

    /// The measured growth, or `estimate` without a counting allocator.
    fn bytes(&mut self, estimate: u64) -> u64 {
        self.sample();
        if self.used.is_some() {
            self.peak - self.base
        } else {
            estimate
        }
    }
}

/// The bytes a visited table of `len` entries and `capacity` slots is
/// about to take when it doubles to take `incoming` more (17 a slot: a
/// fingerprint and an index or a control byte), with `links` parent
/// links (8 bytes each) that may grow with it; 0 when it has room.
fn table_growth(len: usize, capacity: usize, incoming: usize, links: usize) -> u64 {
    if len + incoming > capacity {
        capacity as u64 * 2 * 17 + links as u64 * 8
    } else {
        0
    }
}

/// What every exhaustive search does before it keeps a new state: the
/// state bound, the run's limits (every [`CHECK_EVERY`] states, and
/// before a table doubles: the one allocation that can jump past a
/// memory budget between two checks), heap samples and progress.
struct Pacer<'a> {
    options: &'a Options,
    started: Instant,
    next_check: u64,
    heap: HeapWatch,
}

impl<'a> Pacer<'a> {
    fn new(options: &'a Options) -> Pacer<'a> {
        Pacer {
            options,
            started: Instant::now(),
            next_check: CHECK_EVERY,
            heap: HeapWatch::new(&options.limits),
        }
    }

    /// The run's limits, when the next allocation takes `growth` bytes.
    fn limits(&self, growth: u64) -> Option<Stop> {
        limit_hit(&self.options.limits, self.started, growth)
    }

    /// `Err` with the reason to stop before keeping one more state, when
    /// `states` are kept already and the next allocation takes `growth`
    /// bytes; `depth` is the new state's, for the progress report.
    fn admit(
        &mut self,
        states: u64,
        growth: u64,
        depth: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), Stop> {
        let max_states = self.options.bounds.max_states;
        if states >= max_states {
            return Err(Stop::MaxStates);
        }
        if states >= self.next_check || growth > 0 {
            if let Some(s) = self.limits(growth) {
                return Err(s);
            }
            if states >= self.next_check {
                self.next_check += CHECK_EVERY;
                self.heap.sample();
                progress(Progress {
                    states,
                    depth,
                    max_states,
                });
            }
        }
        Ok(())
    }
}

/// `state`, or its representative when the symmetry reduction is on.
fn canonical<M: Model>(model: &M, symmetry: bool, mut state: M::State) -> M::State {
    canonicalize(model, symmetry, &mut state);
    state
}

/// [`canonical`] in place: `state` replaced by its representative when
/// the symmetry reduction is on and it is not one already.
fn canonicalize<M: Model>(model: &M, symmetry: bool, state: &mut M::State) {
    if symmetry {
        if let Some(rep) = model.canonical(state) {
            *state = rep;
        }
    }
}

/// Maps a schedule over representatives (each choice an index into the
/// actions of the representative reached so far) to a concrete schedule
/// from the initial state: at each step, the first concrete action whose
/// successor has the same representative as the reduced step's. One
/// exists by [`Model::canonical`]'s contract; the concrete states stay
/// in the orbits of the reduced ones, step for step.
pub fn concretize<M: Model>(model: &M, schedule: &[u32]) -> Vec<u32> {
    let mut trace = Trace::off();
    let mut concrete = model.init_state();
    let mut reduced = canonical(model, true, concrete.clone());
    let (mut actions, mut reduced_actions) = (Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(schedule.len());
    for &choice in schedule {
        reduced_actions.clear();
        model.actions(&reduced, &mut reduced_actions);
        let target = canonical(
            model,
            true,
            model.next_state(&reduced, &reduced_actions[choice as usize], &mut trace),
        );
        actions.clear();
        model.actions(&concrete, &mut actions);
        let (index, next) = actions
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                let next = model.next_state(&concrete, a, &mut trace);
                (canonical(model, true, next.clone()) == target).then_some((i, next))
            })
            .expect("Model::canonical's contract: a concrete step into every reduced successor");
        out.push(index as u32);
        concrete = next;
        reduced = target;
    }
    out
}

/// The violations of a search over representatives, as concrete
/// schedules, each with the message its own final state gives (the
/// names in it are the concrete actors').
fn concrete_violations<M: Model>(
    model: &M,
    symmetry: bool,
    found: Vec<Option<Violation>>,
) -> Vec<Option<Violation>> {
    if !symmetry {
        return found;
    }
    let props = model.properties();
    found
        .into_iter()
        .zip(&props)
        .map(|(v, p)| {
            let v = v?;
            let schedule = concretize(model, &v.schedule);
            let mut state = model.init_state();
            let mut actions = Vec::new();
            let mut trace = Trace::off();
            for &c in &schedule {
                actions.clear();
                model.actions(&state, &mut actions);
                state = model.next_state(&state, &actions[c as usize], &mut trace);
            }
            let message = (p.check)(model, &state).err().unwrap_or(v.message);
            Some(Violation { schedule, message })
        })
        .collect()
}

/// Exhaustive breadth-first search with a visited set of fingerprints.
///
/// The partial-order reduction: when a state has an enabled action that
/// [`Model::is_local`] says is local, only that action is explored from the
/// state (its ample set). Local actions commute with every other action
/// and change nothing a property reads, so every property violation stays
/// reachable, provided no action is ignored forever along a cycle of
/// reduced states. The cycle proviso guarantees that: when the ample
/// successor has already been visited at a depth no greater than the
/// state's own (so the edge may close a cycle), the state is expanded
/// fully. Why that suffices: on any cycle, take the state first
/// discovered deepest; its successor on the cycle cannot be discovered
/// later than it, so it was already visited at a depth no greater, and
/// the proviso expands that state fully — no cycle ignores an action.
/// An ample successor found already in the next layer (a diamond, not a
/// cycle) needs no full expansion. Node indices grow with depth in
/// breadth-first order, so "no greater depth" is an index comparison.
/// Choices are recorded as indices into the *full* action list, so
/// schedules found with the reduction replay without it.
///
/// The symmetry reduction (with [`Options::symmetry`], for a model with
/// [`Model::has_symmetry`]): every state is replaced by its
/// representative ([`Model::canonical`]) before it is fingerprinted,
/// stored and expanded, so a state count counts orbits. Properties are
/// symmetric by the contract, so a violation is found in the reduced
/// space exactly when one exists in the full space; the schedule found
/// over representatives is mapped back to a concrete one ([`concretize`])
/// of the same length, so breadth-first counterexamples stay shortest
/// and their tokens replay without the reduction.
///
/// `complete` is true only when the frontier was emptied with every state
/// in it expanded: a bound, a limit or an early stop leaves it false.
pub fn bfs<M: Model>(model: &M, options: &Options, progress: &mut dyn FnMut(Progress)) -> Report {
    if options.jobs > 1 {
        return bfs_parallel(model, options, progress);
    }
    let mut pacer = Pacer::new(options);
    let props = model.properties();
    let mut findings = Findings::new(props.len(), options);
    let bounds = options.bounds;
    // fingerprint key -> node index; links.get(i) = (parent index, choice).
    let mut visited: Visited = Visited::default();
    let mut links = pack::Links::new();
    // Frontier states packed into byte strings when the model can
    // (pack.rs); the layer being expanded and the next one.
    let mut packer = model.packer();
    let packed = packer.is_some();
    let mut current: pack::Frontier<M::State> = pack::Frontier::new(packed);
    let mut next: pack::Frontier<M::State> = pack::Frontier::new(packed);
    let symmetry = options.symmetry && model.has_symmetry();
    let canon = |s: M::State| canonical(model, symmetry, s);
    let init = canon(model.init_state());
    visited.insert(pack::Key::of(model.fingerprint(&init)), 0);
    let mut actions = Vec::new();
    findings.check_state(model, &props, &init, false, &mut Vec::new);
    // The state being expanded and its successor being looked at: two
    // states reused for the whole search (`Frontier::pop_into`,
    // `Model::next_state_into`), so expanding allocates little.
    let mut state = init.clone();
    let mut succ = init.clone();
    // The successor of `state` by `action`, into `out`: its representative
    // when the symmetry reduction is on.
    let mut trace = Trace::off();
    let mut successor = |state: &M::State, action: &M::Action, out: &mut M::State| {
        model.next_state_into(state, action, &mut trace, out);
        canonicalize(model, symmetry, out);
    };
    current.push(packer.as_deref_mut(), init, 0);
    let mut stop: Option<Stop> = None;
    let mut depth_bound_hit = false;
    let mut max_depth_seen = 0;
    let state_bytes = std::mem::size_of::<(M::State, u32)>() as u64;
    let mut frontier_bytes = 0u64;
    // The depth of the layer being expanded, and the index of the first
    // node of the next one, once one exists.
    let mut depth = 0u32;
    let mut next_layer: Option<u32> = None;
    let mut unsplit = options.shard.filter(|s| s.count > 1);
    'search: loop {
        if current.is_empty() {
            if next.is_empty() {
                break;
            }
            frontier_bytes = frontier_bytes
                .max(current.capacity_bytes(state_bytes) + next.capacity_bytes(state_bytes));
            std::mem::swap(&mut current, &mut next);
            depth += 1;
            next_layer = None;
            // `current` is now exactly this layer.
            if let Some(shard) = unsplit {
                if current.len() >= SHARD_SPLIT_WIDTH * shard.count as usize {
                    unsplit = None;
                    let mut kept = pack::Frontier::new(packed);
                    let mut j = 0u64;
                    while let Some((state, at)) = current.pop(packer.as_deref()) {
                        if j % shard.count == shard.index {
                            kept.push(packer.as_deref_mut(), state, at);
                        }
                        j += 1;
                    }
                    current = kept;
                    continue;
                }
            }
        }
        let Some(at) = current.pop_into(packer.as_deref(), &mut state) else {
            continue;
        };
        max_depth_seen = max_depth_seen.max(depth);
        actions.clear();
        model.actions(&state, &mut actions);
        if actions.is_empty() {
            // Quiesced: the `Quiescent` properties apply. Breadth-first
            // order makes this the shortest path to such a state.
            findings.check_state(model, &props, &state, true, &mut || links.path_to(at));
        } else if depth >= bounds.max_depth {
            depth_bound_hit = true;
        } else {
            let mut ample: Option<usize> = if options.por {
                actions.iter().position(|a| model.is_local(&state, a))
            } else {
                None
            };
            // The cycle proviso: an ample successor already visited at a
            // depth no greater than this state's may close a cycle of
            // reduced states; expand fully instead. Each successor is
            // written into `succ`, reused (`Model::next_state_into`).
            let mut first = None;
            if let Some(a) = ample {
                successor(&state, &actions[a], &mut succ);
                let key = pack::Key::of(model.fingerprint(&succ));
                match visited.get(&key) {
                    Some(&seen) if next_layer.is_none_or(|first| seen < first) => ample = None,
                    Some(_) => {}
                    None => first = Some((a, key)),
                }
            }
            // Entry 0 is the new ample successor (already in `succ`),
            // entry n > 0 action n - 1's when the state is expanded fully.
            let all = if ample.is_none() { actions.len() } else { 0 };
            for n in first.map_or(1, |_| 0)..=all {
                let (index, key) = match first.filter(|_| n == 0) {
                    Some(known) => known,
                    None => {
                        successor(&state, &actions[n - 1], &mut succ);
                        (n - 1, pack::Key::of(model.fingerprint(&succ)))
                    }
                };
                if visited.contains_key(&key) {
                    continue;
                }
                let growth = table_growth(visited.len(), visited.capacity(), 1, 0);
                if let Err(s) = pacer.admit(links.len() as u64, growth, depth + 1, progress) {
                    stop = Some(s);
                    break 'search;
                }
                let here = links.len() as u32;
                next_layer.get_or_insert(here);
                visited.insert(key, here);
                links.push(at, index as u32);
                findings.check_state(model, &props, &succ, false, &mut || links.path_to(here));
                next.push_ref(packer.as_deref_mut(), &succ, here);
            }
        }
        if findings.done() {
            if !current.is_empty() || !next.is_empty() {
                stop = Some(Stop::FirstViolation);
            }
            break;
        }
    }
    if stop.is_none() && depth_bound_hit {
        stop = Some(Stop::MaxDepth);
    }
    frontier_bytes =
        frontier_bytes.max(current.capacity_bytes(state_bytes) + next.capacity_bytes(state_bytes));
    let bytes = pacer
        .heap
        .bytes(visited.capacity() as u64 * 17 + links.capacity_bytes() + frontier_bytes);
    Report {
        states: links.len() as u64,
        complete: stop.is_none(),
        stop,
        max_depth_seen,
        violations: concrete_violations(model, symmetry, findings.found),
        checked: findings.checked,
        bytes,
    }
}

/// One state on the depth-first stack: its enabled actions and the
/// choices still to explore from it (popped from the back).
struct Frame<S, A> {
    state: S,
    fp: Fingerprint,
    actions: Vec<A>,
    todo: Vec<u32>,
    /// The choice that led here from the frame below.
    choice: u32,
}

type FingerprintSet = HashSet<Fingerprint, BuildHasherDefault<FingerprintHasher>>;

/// Exhaustive depth-first search with a visited set of fingerprints
/// (16 bytes a state, no parent links: the path to a state is the stack).
///
/// The partial-order reduction is the one of [`bfs`] with the depth-first
/// form of the cycle proviso (the stack proviso of Peled and of Holzmann's
/// SPIN): a state explores only its ample action unless that action's
/// successor is on the stack, where the edge closes a cycle; then it is
/// expanded fully. On every cycle the state pushed last has its cycle
/// successor on the stack, so no action is ignored around a cycle.
///
/// With a depth bound, a state first reached deep and later reached
/// shallower is not explored again, so a search that hit the bound may
/// miss states within it; such a search is never complete (its verdicts
/// read `unknown (max_depth)`), so this costs precision, not soundness.
/// `complete` is true only when the stack emptied with every state
/// expanded.
pub fn dfs<M: Model>(model: &M, options: &Options, progress: &mut dyn FnMut(Progress)) -> Report {
    let mut pacer = Pacer::new(options);
    let props = model.properties();
    let mut findings = Findings::new(props.len(), options);
    let bounds = options.bounds;
    let mut visited = FingerprintSet::default();
    let mut on_stack = FingerprintSet::default();
    let mut trace = Trace::off();
    let mut stop: Option<Stop> = None;
    let mut depth_bound_hit = false;
    let mut max_depth_seen = 0u32;
    let symmetry = options.symmetry && model.has_symmetry();
    let path = |stack: &[Frame<M::State, M::Action>], last: Option<u32>| -> Vec<u32> {
        stack.iter().skip(1).map(|f| f.choice).chain(last).collect()
    };
    // Builds the frame of a newly visited state `depth` steps deep: its
    // actions, and which of them to explore (the ample one, or all).
    let frame = |state: M::State,
                 fp: Fingerprint,
                 choice: u32,
                 depth: u32,
                 on_stack: &FingerprintSet,
                 depth_bound_hit: &mut bool,
                 trace: &mut Trace| {
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let todo: Vec<u32> = if actions.is_empty() {
            Vec::new()
        } else if depth >= bounds.max_depth {
            *depth_bound_hit = true;
            Vec::new()
        } else {
            let ample = if options.por {
                actions.iter().position(|a| model.is_local(&state, a))
            } else {
                None
            };
            match ample {
                Some(a)
                    if !on_stack.contains(&model.fingerprint(&canonical(
                        model,
                        symmetry,
                        model.next_state(&state, &actions[a], trace),
                    ))) =>
                {
                    vec![a as u32]
                }
                _ => (0..actions.len() as u32).rev().collect(),
            }
        };
        Frame {
            state,
            fp,
            actions,
            todo,
            choice,
        }
    };
    let init = canonical(model, symmetry, model.init_state());
    let init_fp = model.fingerprint(&init);
    visited.insert(init_fp);
    on_stack.insert(init_fp);
    findings.check_state(model, &props, &init, false, &mut Vec::new);
    let mut stack = vec![frame(
        init,
        init_fp,
        u32::MAX,
        0,
        &on_stack,
        &mut depth_bound_hit,
        &mut trace,
    )];
    if stack[0].actions.is_empty() {
        findings.check_state(model, &props, &stack[0].state, true, &mut Vec::new);
    }
    let frame_bytes = std::mem::size_of::<Frame<M::State, M::Action>>() as u64;
    'search: while let Some(top) = stack.last_mut() {
        let Some(choice) = top.todo.pop() else {
            on_stack.remove(&top.fp);
            stack.pop();
            continue;
        };
        let next = canonical(
            model,
            symmetry,
            model.next_state(&top.state, &top.actions[choice as usize], &mut trace),
        );
        let fp = model.fingerprint(&next);
        if visited.contains(&fp) {
            continue;
        }
        let growth = table_growth(visited.len(), visited.capacity(), 1, 0);
        if let Err(s) = pacer.admit(visited.len() as u64, growth, stack.len() as u32, progress) {
            stop = Some(s);
            break 'search;
        }
        visited.insert(fp);
        let depth = stack.len() as u32;
        max_depth_seen = max_depth_seen.max(depth);
        findings.check_state(model, &props, &next, false, &mut || {
            path(&stack, Some(choice))
        });
        let f = frame(
            next,
            fp,
            choice,
            depth,
            &on_stack,
            &mut depth_bound_hit,
            &mut trace,
        );
        if f.actions.is_empty() {
            findings.check_state(model, &props, &f.state, true, &mut || {
                path(&stack, Some(choice))
            });
        }
        on_stack.insert(fp);
        stack.push(f);
        if findings.done() {
            if stack.iter().any(|f| !f.todo.is_empty()) {
                stop = Some(Stop::FirstViolation);
            }
            break;
        }
    }
    if stop.is_none() && depth_bound_hit {
        stop = Some(Stop::MaxDepth);
    }
    let bytes = pacer.heap.bytes(
        visited.capacity() as u64 * 17
            + on_stack.capacity() as u64 * 17
            + stack.capacity() as u64 * frame_bytes,
    );
    Report {
        states: visited.len() as u64,
        complete: stop.is_none(),
        stop,
        max_depth_seen,
        violations: concrete_violations(model, symmetry, findings.found),
        checked: findings.checked,
        bytes,
    }
}

/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
/// Nagarakatte, "A Randomized Scheduler with Probabilistic Guarantees of
/// Finding Bugs", ASPLOS 2010), over the model's actions.
///
/// A *thread* is an [`Model::action_key`] (an IPAM actor; in L2 models
/// each frame in flight and each container's next script step). Each run
/// gives every thread, when it is first enabled, a random priority above
/// `depth`, and picks `depth - 1` change points uniformly among the steps
/// `1..=k`; at every step it takes the enabled action of the highest
/// priority, and at the `j`-th change point the thread about to run drops
/// to priority `j` (below every initial one). `k` is the length of the
/// first run, which has no change point.
///
/// The guarantee, for a system of `n` threads whose runs take at most `k`
/// steps: a bug of depth `d` (one that needs `d` ordering constraints
/// between steps to show) is found by each run with probability at least
/// `1 / (n · k^(d-1))`, so `runs` runs miss it with probability at most
/// `(1 - 1/(n·k^(d-1)))^runs`. It holds when every thread is one
/// sequential actor, as in the IPAM models; the L2 models' threads are
/// events, so there it is a heuristic. Like random walks, PCT never covers
/// a space: the report's stop is [`Stop::Sampling`] unless a bound or a
/// limit came first.
pub fn pct<M: Model>(
    model: &M,
    seed: u64,
    runs: u64,
    depth: u32,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    let depth = depth.max(1);
    sample(model, runs, options, progress, |run, k| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ run);
        // Change points: none in the first run, which measures `k`.
        let mut changes: Vec<u64> = if run == 0 || k == 0 {
            Vec::new()
        } else {
            (1..depth).map(|_| rng.gen_range(1..=k)).collect()
        };
        changes.sort_unstable();
        let mut priority: BTreeMap<u64, u64> = BTreeMap::new();
        let mut step = 0u64;
        move |state: &M::State, actions: &[M::Action]| {
            let keys: Vec<u64> = actions.iter().map(|a| model.action_key(state, a)).collect();
            for key in &keys {
                priority
                    .entry(*key)
                    .or_insert_with(|| u64::from(depth) + rng.gen_range(0..u64::MAX / 2));
            }
            let highest = |priority: &BTreeMap<u64, u64>| {
                keys.iter()
                    .enumerate()
                    .max_by_key(|(i, key)| (priority[key], std::cmp::Reverse(*i)))
                    .map(|(i, _)| i)
                    .expect("an enabled action")
            };
            let mut choice = highest(&priority);
            step += 1;
            if let Some(j) = changes.iter().position(|&c| c == step) {
                // The thread about to run drops below every initial
                // priority; the choice is made again.
                priority.insert(keys[choice], j as u64 + 1);
                changes[j] = 0;
                choice = highest(&priority);
            }
            choice
        }
    })
}

/// The loop every sampling strategy shares: `runs` runs from the initial
/// state, each checked as it goes and ended at quiescence, at the depth
/// bound or once every property is violated; the whole ended by the
/// state bound (counted in steps), a limit, or with `stop_at_first` the
/// first violation. `new_run(i, k)` makes run `i`'s chooser, given the
/// length `k` of the first run (0 for the first run itself); the chooser picks the index of the enabled
/// action to take at each step.
fn sample<M, C>(
    model: &M,
    runs: u64,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
    mut new_run: impl FnMut(u64, u64) -> C,
) -> Report
where
    M: Model,
    C: FnMut(&M::State, &[M::Action]) -> usize,
{
    let started = Instant::now();
    let bounds = options.bounds;
    let props = model.properties();
    let mut findings = Findings::new(props.len(), options);
    let mut steps = 0u64;
    let mut max_depth_seen = 0;
    let mut stop = None;
    let mut trace = Trace::off();
    let mut actions = Vec::new();
    let mut next_check = CHECK_EVERY;
    let mut first_len: u64 = 0;
    'runs: for run in 0..runs {
        if let Some(shard) = options.shard {
            if run != 0 && run % shard.count.max(1) != shard.index {
                continue;
            }
        }
        let mut choose = new_run(run, first_len);
        let mut state = model.init_state();
        let mut schedule: Vec<u32> = Vec::new();
        loop {
            actions.clear();
            model.actions(&state, &mut actions);
            let quiescent = actions.is_empty();
            findings.check_state(model, &props, &state, quiescent, &mut || schedule.clone());
            if quiescent || findings.done() {
                break;
            }
            if schedule.len() as u32 >= bounds.max_depth {
                stop = stop.or(Some(Stop::MaxDepth));
                break;
            }
            if steps >= bounds.max_states {
                stop = Some(Stop::MaxStates);
                break 'runs;
            }
            if steps >= next_check {
                next_check += CHECK_EVERY;
                if let Some(s) = limit_hit(&options.limits, started, 0) {
                    stop = Some(s);
                    break 'runs;
                }
                progress(Progress {
                    states: steps,
                    depth: max_depth_seen,
                    max_states: bounds.max_states,
                });
            }
            let choice = choose(&state, &actions);
            state = model.next_state(&state, &actions[choice], &mut trace);
            schedule.push(choice as u32);
            steps += 1;
            max_depth_seen = max_depth_seen.max(schedule.len() as u32);
        }
        if run == 0 {
            first_len = schedule.len() as u64;
        }
        if findings.done() {
            break;
        }
    }
    Report {
        states: steps,
        complete: false,
        stop: Some(stop.unwrap_or(Stop::Sampling)),
        max_depth_seen,
        violations: findings.found,
        checked: findings.checked,
        bytes: 0,
    }
}

/// `walks` random walks, each choosing uniformly among enabled actions with
/// its own ChaCha8 stream seeded from `(seed, walk)`. Never complete: the
/// report's stop is [`Stop::Sampling`] unless a bound or limit came first.
pub fn random_walks<M: Model>(
    model: &M,
    seed: u64,
    walks: u64,
    bounds: Bounds,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    let options = Options {
        bounds,
        ..Options::default()
    };
    random_walks_with(model, seed, walks, &options, progress)
}

/// [`random_walks`] with the run's [`Limits`] and `stop_at_first`.
pub fn random_walks_with<M: Model>(
    model: &M,
    seed: u64,
    walks: u64,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    sample(model, walks, options, progress, |walk, _| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ walk);
        move |_: &M::State, actions: &[M::Action]| rng.gen_range(0..actions.len())
    })
}

/// Why a schedule could not be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The 1-based step that could not be taken.
    pub step: usize,
    /// The choice the schedule asked for.
    pub choice: u32,
    /// How many actions were enabled there.
    pub enabled: usize,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.enabled == 0 {
            write!(
                f,
                "the schedule diverges at step {}: the system had already quiesced (no action enabled)",
                self.step
            )
        } else {
            write!(
                f,
                "the schedule diverges at step {}: it chooses action {} but only {} were enabled",
                self.step, self.choice, self.enabled
            )
        }
    }
}

/// One replayed step.
#[derive(Clone, Debug)]
pub struct ReplayStep {
    /// The action's headline ([`Model::describe`]).
    pub headline: String,
    /// What the model logged.
    pub lines: Vec<String>,
    /// The frames this step delivered, with where and when.
    pub frames: Vec<crate::sim::CapturedFrame>,
    /// Properties first violated in the state after this step:
    /// (property name, explanation).
    pub violations: Vec<(&'static str, String)>,
    /// The step as a sequence diagram draws it ([`Model::sketch`]).
    pub sketch: crate::sim::Sketch,
}

/// The result of replaying a schedule.
#[derive(Clone, Debug)]
pub struct Replay<S> {
    /// Every step in order.
    pub steps: Vec<ReplayStep>,
    /// The final state.
    pub final_state: S,
    /// True when no action is enabled in the final state.
    pub quiescent: bool,
    /// Every property violated at some point: (name, first explanation).
    pub violated: Vec<(&'static str, String)>,
}

/// The headline of the replay step that holds the initial state's
/// violations (present only when it has some; it is not a step).
pub const INITIAL_STATE: &str = "initial state";

/// Replays a schedule with the trace on, checking properties after each
/// step. The same model and schedule always give the same result.
pub fn replay<M: Model>(model: &M, schedule: &[u32]) -> Result<Replay<M::State>, Divergence> {
    let props = model.properties();
    let mut state = model.init_state();
    let mut steps = Vec::new();
    let mut violated: Vec<(&'static str, String)> = Vec::new();
    let mut actions = Vec::new();
    let check = |state: &M::State, quiescent: bool, violated: &mut Vec<(&'static str, String)>| {
        let mut new = Vec::new();
        for p in &props {
            if violated.iter().any(|(n, _)| *n == p.name) {
                continue;
            }
            if p.when == When::Quiescent && !quiescent {
                continue;
            }
            if let Err(message) = (p.check)(model, state) {
                violated.push((p.name, message.clone()));
                new.push((p.name, message));
            }
        }
        new
    };
    model.actions(&state, &mut actions);
    let initial = check(&state, actions.is_empty(), &mut violated);
    if !initial.is_empty() {
        steps.push(ReplayStep {
            headline: INITIAL_STATE.to_string(),
            lines: Vec::new(),
            frames: Vec::new(),
            violations: initial,
            sketch: crate::sim::Sketch::default(),
        });
    }
    for (i, &choice) in schedule.iter().enumerate() {
        let Some(action) = actions.get(choice as usize).cloned() else {
            return Err(Divergence {
                step: i + 1,
                choice,
                enabled: actions.len(),
            });
        };
        let headline = model.describe(&state, &action);
        let mut trace = Trace::on();
        let after = model.next_state(&state, &action, &mut trace);
        let sketch = model.sketch(&state, &action, &after);
        state = after;
        actions.clear();
        model.actions(&state, &mut actions);
        let violations = check(&state, actions.is_empty(), &mut violated);
        steps.push(ReplayStep {
            headline,
            lines: trace.take(),
            frames: trace.take_frames(),
            violations,
            sketch,
        });
    }
    Ok(Replay {
        steps,
        quiescent: actions.is_empty(),
        final_state: state,
        violated,
    })
}

/// The action keys ([`Model::action_key`]) of a schedule's steps.
pub fn keys_of<M: Model>(model: &M, schedule: &[u32]) -> Result<Vec<u64>, Divergence> {
    let mut trace = Trace::off();
    let mut state = model.init_state();
    let mut actions = Vec::new();
    let mut out = Vec::with_capacity(schedule.len());
    for (i, &choice) in schedule.iter().enumerate() {
        actions.clear();
        model.actions(&state, &mut actions);
        let Some(action) = actions.get(choice as usize) else {
            return Err(Divergence {
                step: i + 1,
                choice,
                enabled: actions.len(),
            });
        };
        out.push(model.action_key(&state, action));
        state = model.next_state(&state, action, &mut trace);
    }
    Ok(out)
}

/// Where a schedule replayed by action keys could not go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The 1-based step that could not be taken.
    pub step: usize,
    /// Why, as the model explains it ([`Model::blocked`]), or a generic
    /// sentence when it cannot say.
    pub reason: String,
}

/// Replays a schedule given as action keys (a schedule found on another
/// variant of the same scenario): each step takes the enabled action with
/// that key. Where none is enabled, the replay stops there and says why
/// (a lock held, a check that refused): that is how a fix is seen at work.
/// Returns the choices taken too, so the result can be re-encoded.
pub fn replay_keys<M: Model>(
    model: &M,
    keys: &[u64],
) -> (Replay<M::State>, Vec<u32>, Option<Blocked>) {
    let mut trace = Trace::off();
    let mut state = model.init_state();
    let mut actions = Vec::new();
    let mut choices = Vec::new();
    let mut blocked = None;
    for (i, &key) in keys.iter().enumerate() {
        actions.clear();
        model.actions(&state, &mut actions);
        match actions
            .iter()
            .position(|a| model.action_key(&state, a) == key)
        {
            Some(index) => {
                state = model.next_state(&state, &actions[index], &mut trace);
                choices.push(index as u32);
            }
            None => {
                blocked = Some(Blocked {
                    step: i + 1,
                    reason: model.blocked(&state, key).unwrap_or_else(|| {
                        if actions.is_empty() {
                            "the system has already quiesced: no action is enabled".to_string()
                        } else {
                            "that step is not enabled here (the actor waits or has finished)"
                                .to_string()
                        }
                    }),
                });
                break;
            }
        }
    }
    let r = replay(model, &choices).expect("the choices were just taken");
    (r, choices, blocked)
}
