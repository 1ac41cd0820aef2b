//! The parallel breadth-first search (`--jobs N`, N > 1): the same
//! states, counts, verdicts and counterexamples as the sequential
//! [`super::bfs`], on a pool of `N` worker threads.
//!
//! What it holds per state is what [`super::bfs`] holds: a 16-byte
//! visited key ([`pack::Key`], here mapping to the state's depth), a
//! 5-byte parent link ([`pack::Links`]), and, for a model with a packer
//! ([`crate::sim::Model::packer`]), frontier states packed into byte
//! strings. Each worker has a packer of its own (a packer numbers the
//! parts states share, so it is written by one thread at a time); a
//! layer is a list of [`Block`]s of at most [`BLOCK`] states, each
//! packed by one worker's packer and readable by any worker (unpacking
//! only reads a packer). Successors are plain states only while a chunk
//! of the layer is being expanded.
//!
//! Each phase that runs on the workers runs as one task per worker
//! thread (`rayon`'s `broadcast`, task `i` on thread `i`), so the thread
//! that made a successor state also checks, packs and frees it: no state
//! crosses threads, and a worker's heap stays its own.
//!
//! A chunk costs one broadcast: its task finishes the previous chunk
//! (phase 3), expands this one (phase 1) and claims its new states in the
//! visited set (phase 2a), with a [`Meeting`] (a spinning barrier between
//! the tasks, which all run at once) between the phases; the calling
//! thread records the previous chunk's findings (phase 4) and numbers
//! this one's new states (phase 2b) between broadcasts. A broadcast wakes
//! the pool's sleeping threads and puts the calling thread to sleep: the
//! three broadcasts a chunk took before cost two cores about 40% more CPU
//! than one core on a cheap model (docs/performance.md, ninth part).
//!
//! What it does not do: it does not parallelise layers smaller than
//! [`PARALLEL_MIN`] states (they run on the calling thread), and a chunk
//! is split among the workers at block boundaries, so the split is even
//! only to within a block.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, RwLock};

use super::{
    canonical, pack, table_growth, Findings, FingerprintSet, Options, Pacer, Progress, Report,
    Stop, Visited, SHARD_SPLIT_WIDTH,
};
use crate::explore::pack::Packer;
use crate::explore::Fingerprint;
use crate::sim::{Checked, Model, Property, Trace};

/// States of a layer handed to the workers at a time (at least; a chunk
/// ends at a block boundary).
const PARALLEL_CHUNK: usize = 512;

/// Most states in a [`Block`].
const BLOCK: usize = 64;

/// Partitions of the visited set, claimed by the workers one partition
/// at a time.
const PARTITIONS: usize = 16;

/// The partition of a fingerprint: bits the tables' own hash (the low 64,
/// see [`super::FingerprintHasher`]) does not use.
fn partition(fp: Fingerprint) -> usize {
    (fp >> 64) as usize % PARTITIONS
}

/// Phase 2's marks of an offer not yet numbered: not new (or not
/// reached), and new.
const UNCLAIMED: u32 = u32::MAX;
const CLAIMED: u32 = u32::MAX - 1;

/// Chunks smaller than this are expanded on the calling thread.
const PARALLEL_MIN: usize = 256;

/// A model's packer, shared by the workers (unpacking) or lent to one
/// (packing).
type BoxedPacker<'m, S> = Box<dyn Packer<S> + 'm>;

/// The workers' packers: read by any worker (unpacking), written by its
/// own worker (packing), never both at once (a [`Meeting`] lies between).
type Packers<'m, S> = [RwLock<BoxedPacker<'m, S>>];

/// Busy-waits of a [`Meeting`] before it yields the core, and yields
/// before it sleeps.
const SPINS: u32 = 1 << 8;
const YIELDS: u32 = 16;

/// A barrier for the tasks of one broadcast: all are running and wait
/// only for the slowest of them, so a task spins first, then yields its
/// core (a loaded machine may have preempted the others), and only then
/// sleeps until the last task arrives and wakes it. A task that panics
/// poisons it ([`Unwinding`]): the others panic at their next look
/// instead of waiting for it forever, so the broadcast ends and passes
/// the panic on (a search fails loudly; it never hangs).
struct Meeting {
    tasks: usize,
    arrived: AtomicUsize,
    round: AtomicUsize,
    sleepers: AtomicUsize,
    poisoned: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Poisons its [`Meeting`] when dropped while its task unwinds.
struct Unwinding<'a>(&'a Meeting);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison();
        }
    }
}

impl Meeting {
    fn new(tasks: usize) -> Meeting {
        Meeting {
            tasks,
            arrived: AtomicUsize::new(0),
            round: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// A task is unwinding: wake every waiter, and let none wait again.
    fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
    }

    /// Panics when another task of the meeting has.
    fn check(&self) {
        if self.poisoned.load(Ordering::SeqCst) {
            panic!("another task of this parallel search panicked");
        }
    }

    /// Returns once every task has called `wait` as often as this one.
    fn wait(&self) {
        if self.tasks <= 1 {
            return;
        }
        self.check();
        let round = self.round.load(Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.tasks {
            self.arrived.store(0, Ordering::SeqCst);
            self.round.fetch_add(1, Ordering::SeqCst);
            // A sleeper counted itself before its last look at `round`.
            if self.sleepers.load(Ordering::SeqCst) > 0 {
                let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.wake.notify_all();
            }
            return;
        }
        let mut tries = 0;
        while self.round.load(Ordering::SeqCst) == round {
            self.check();
            if tries < SPINS {
                std::hint::spin_loop();
            } else if tries < SPINS + YIELDS {
                std::thread::yield_now();
            } else {
                let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                while self.round.load(Ordering::SeqCst) == round
                    && !self.poisoned.load(Ordering::SeqCst)
                {
                    guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
                self.check();
                return;
            }
            tries += 1;
        }
    }
}

/// Up to [`BLOCK`] consecutive states of a layer, with their node indices
/// (increasing).
enum Block<S> {
    /// Packed by packer `packer`: per state, the node index's difference
    /// to the previous one's (the first's to 0) as a varint, then the
    /// packed state.
    Packed {
        packer: usize,
        count: usize,
        bytes: Vec<u8>,
    },
    /// A model without a packer.
    Plain(Vec<(S, u32)>),
}

impl<S> Block<S> {
    fn len(&self) -> usize {
        match self {
            Block::Packed { count, .. } => *count,
            Block::Plain(v) => v.len(),
        }
    }

    /// Heap bytes held (for runs without a counting allocator).
    fn heap_bytes(&self) -> u64 {
        match self {
            Block::Packed { bytes, .. } => bytes.capacity() as u64,
            Block::Plain(v) => (v.capacity() * std::mem::size_of::<(S, u32)>()) as u64,
        }
    }

    /// Calls `f` with each state and its node index, in order.
    fn each(&self, packers: &Packers<'_, S>, f: &mut dyn FnMut(&S, u32)) {
        match self {
            Block::Packed {
                packer,
                count,
                bytes,
            } => {
                let packer = packers[*packer].read().expect("a packer");
                unpack_each(&packer, *count, bytes, &mut |s, at| f(&s, at))
            }
            Block::Plain(v) => v.iter().for_each(|(s, at)| f(s, *at)),
        }
    }

    /// Like [`Block::each`], giving the states away.
    fn into_each(self, packers: &Packers<'_, S>, f: &mut dyn FnMut(S, u32)) {
        match self {
            Block::Packed {
                packer,
                count,
                bytes,
            } => unpack_each(&packers[packer].read().expect("a packer"), count, &bytes, f),
            Block::Plain(v) => v.into_iter().for_each(|(s, at)| f(s, at)),
        }
    }
}

/// Unpacks the `count` states of a packed block's `bytes` with `packer`,
/// calling `f` with each and its node index.
fn unpack_each<S>(
    packer: &BoxedPacker<'_, S>,
    count: usize,
    mut bytes: &[u8],
    f: &mut dyn FnMut(S, u32),
) {
    let mut at = 0u32;
    for _ in 0..count {
        at += pack::get_varint(&mut bytes) as u32;
        f(packer.unpack(&mut bytes), at);
    }
}

/// Writes states into [`Block`]s, with one packer (or none).
struct Blocks<'a, 'm, S> {
    packer: Option<(usize, &'a mut BoxedPacker<'m, S>)>,
    done: Vec<Block<S>>,
    bytes: Vec<u8>,
    plain: Vec<(S, u32)>,
    count: usize,
    last: u32,
    /// The last packed block's length, to size the next one.
    hint: usize,
}

impl<'a, 'm, S> Blocks<'a, 'm, S> {
    fn new(packer: Option<(usize, &'a mut BoxedPacker<'m, S>)>) -> Self {
        Blocks {
            packer,
            done: Vec::new(),
            bytes: Vec::new(),
            plain: Vec::new(),
            count: 0,
            last: 0,
            hint: 4096,
        }
    }

    fn push(&mut self, state: S, at: u32) {
        match &mut self.packer {
            Some((_, packer)) => {
                if self.count == 0 {
                    self.bytes = Vec::with_capacity(self.hint);
                }
                pack::put_varint(&mut self.bytes, u64::from(at - self.last));
                self.last = at;
                packer.pack(&state, &mut self.bytes);
            }
            None => self.plain.push((state, at)),
        }
        self.count += 1;
        if self.count == BLOCK {
            self.close();
        }
    }

    fn close(&mut self) {
        if self.count == 0 {
            return;
        }
        match &self.packer {
            Some((id, _)) => {
                let mut bytes = std::mem::take(&mut self.bytes);
                self.hint = bytes.len() + bytes.len() / 8;
                bytes.shrink_to_fit();
                self.done.push(Block::Packed {
                    packer: *id,
                    count: self.count,
                    bytes,
                });
            }
            None => self
                .done
                .push(Block::Plain(std::mem::take(&mut self.plain))),
        }
        self.count = 0;
        self.last = 0;
    }

    fn finish(mut self) -> Vec<Block<S>> {
        self.close();
        self.done
    }
}

/// Runs `f(i)` for each part `i` of `parts`: one task per worker thread
/// of `pool` (task `i` on thread `i`) when there are several parts, else
/// here.
fn on_workers<R: Send>(
    pool: Option<&rayon::ThreadPool>,
    parts: usize,
    f: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    match pool {
        Some(pool) if parts > 1 => {
            debug_assert_eq!(parts, pool.current_num_threads());
            pool.broadcast(|ctx| f(ctx.index()))
        }
        _ => (0..parts).map(f).collect(),
    }
}

/// What a parent state of a chunk came to in phase 1.
enum Parent {
    /// No action enabled: the `Quiescent` (and `Always`) results.
    Quiescent(Checks),
    /// At the depth bound: not expanded.
    Bound,
    /// Its successors are the part's `succ[..end]` after the previous
    /// parent's.
    Next { end: u32 },
}

/// Phase 1's work on one part of a chunk: per parent state (node index,
/// outcome); the successors to offer, in the sequential search's order,
/// that were neither visited when the chunk began nor repeated earlier in
/// the part: (choice, state), with their fingerprints alongside.
struct Expansion<S> {
    parents: Vec<(u32, Parent)>,
    succ: Vec<(u32, S)>,
    fps: Vec<Fingerprint>,
    /// Per partition of the visited set, the indices of its offers there.
    by_part: Vec<Vec<u32>>,
}

/// A part of a numbered chunk, taken by the worker that finishes it.
type PartSlot<S> = Mutex<Option<(Expansion<S>, Vec<u32>)>>;

/// A chunk whose new states are numbered, waiting for phase 3: per part
/// its expansion and, per offer, its node index (or a mark).
struct Numbered<S> {
    slots: Vec<PartSlot<S>>,
    /// The chunk position of each part's first parent.
    starts: Vec<usize>,
    /// Parents at positions from this on were not reached (a limit).
    processed: usize,
    /// Per parent reached, the node count after its new states.
    ends: Vec<u32>,
    /// The layer position of the chunk's first parent.
    chunk_start: usize,
}

/// What one task of a broadcast hands back: its part's phase 3 of the
/// previous chunk, and the new offers of its partitions (phase 2a).
struct TaskOut<S> {
    output: Option<PartOutput<S>>,
    claimed: Vec<(u32, u32)>,
}

/// Phase 3's work on one part: the next layer's blocks of its new
/// states, and the results to record.
type PartOutput<S> = (Vec<Block<S>>, Vec<Event>);

/// A property result of phase 3 the calling thread must record: of the
/// parent at position `pos` of the chunk, for node `node` (the parent
/// itself when it is quiescent, else a new state).
struct Event {
    pos: u32,
    node: u32,
    checks: Checks,
}

/// Property results of one state, computed by a worker thread: per
/// property, `None` when it was not due.
pub(super) struct Checks(pub(super) Vec<Option<Result<Checked, String>>>);

impl Checks {
    fn run<M: Model>(model: &M, props: &[Property<M>], due: &[bool], state: &M::State) -> Checks {
        let mut c = Checks(Vec::new());
        c.fill(model, props, due, state);
        c
    }

    /// Whether recording these results could change the findings, given
    /// the properties `seen` reported something for by an earlier state
    /// of the same part (updated): a violation, or a first "something".
    fn matters(&self, seen: &mut [bool]) -> bool {
        let mut matters = false;
        for (r, s) in self.0.iter().zip(seen.iter_mut()) {
            match r {
                Some(Err(_)) => matters = true,
                Some(Ok(Checked::Something)) if !*s => {
                    *s = true;
                    matters = true;
                }
                _ => {}
            }
        }
        matters
    }

    /// Checks `state`'s properties that are `due` into `self`.
    fn fill<M: Model>(&mut self, model: &M, props: &[Property<M>], due: &[bool], state: &M::State) {
        self.0.clear();
        self.0.extend(
            props
                .iter()
                .zip(due)
                .map(|(p, &d)| d.then(|| (p.check)(model, state))),
        );
    }
}

/// Splits `blocks` into `parts` runs of about equal state counts, at
/// block boundaries: the returned `parts + 1` block indices.
fn split<S>(blocks: &[Block<S>], parts: usize) -> Vec<usize> {
    let total: usize = blocks.iter().map(Block::len).sum();
    let mut bounds = vec![0];
    let mut cum = 0;
    let mut j = 0;
    for i in 1..parts {
        let target = total * i / parts;
        while j < blocks.len() && cum + blocks[j].len() / 2 < target {
            cum += blocks[j].len();
            j += 1;
        }
        bounds.push(j);
    }
    bounds.push(blocks.len());
    bounds
}

/// Breadth-first search on `options.jobs` threads, with results identical
/// to [`super::bfs`]'s: the same states, counts, verdicts and
/// counterexamples.
///
/// The search goes layer by layer, a chunk of about `PARALLEL_CHUNK`
/// states at a time, in four phases:
/// 1. each worker unpacks its part of the chunk and computes each
///    state's actions, its ample set and cycle proviso, and its
///    successors with their representatives and fingerprints, leaving out
///    those visited before the chunk began and those its part repeats;
/// 2. workers, a share of the partitions of the visited set
///    (`PARTITIONS`) each, take the successors of their partitions in the
///    sequential search's order and claim the first of each new
///    fingerprint (after the first worker has looked at the memory
///    budget, as a table may grow); the calling
///    thread then goes through the successors in that order and does
///    what [`super::bfs`] does with the claimed ones: bounds and limits,
///    node numbers and parent links;
/// 3. each worker checks the properties of its part's new states, packs
///    them into the next layer's blocks with its own packer, and frees
///    the rest; it hands back only the results that can change the
///    findings (violations, and each property's first "something");
/// 4. the calling thread records those results in order and, where
///    [`super::bfs`] would have stopped at a first violation, undoes what
///    came after.
///
/// That is the same computation because the only shared state a worker
/// reads, the visited set, answers the proviso's question the same way
/// for the whole layer: "visited at a depth no greater than this
/// state's" is "visited before this layer began", and the set maps each
/// fingerprint to its state's depth; states added during the layer are
/// all of the next one. Claiming in order within a partition picks the
/// same first occurrence as [`super::bfs`]'s single pass, since equal
/// fingerprints fall in one partition. Packing is exact
/// (`unpack(pack(s)) == s`), so which worker's packer holds a state
/// changes nothing but bytes.
///
/// Phases 3 of a chunk, and 1 and 2a of the next, run in one broadcast
/// (see the module docs). That is still the same computation: phase 1
/// of a chunk neither writes nor reads what phase 4 of the previous one
/// records, except which properties are due, and the due set it uses
/// (computed one chunk earlier) can only hold more than the one
/// [`super::bfs`] would use; `Findings::record` skips the extra ones
/// (properties already violated). When phase 4 ends the search, the next
/// chunk's expansion and claims are dropped: the visited set is not read
/// again.
pub fn bfs_parallel<M: Model>(
    model: &M,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Report {
    let mut pacer = Pacer::new(options);
    let props = model.properties();
    let mut findings = Findings::new(props.len(), options);
    let bounds = options.bounds;
    // Persistent worker threads for the whole search (threads made per
    // chunk would each start a fresh allocator heap).
    let pool = (options.jobs > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(options.jobs)
                .build()
                .ok()
        })
        .flatten();
    let threads = pool.as_ref().map_or(1, |p| p.current_num_threads());
    // A packer per worker, or none when the model has none.
    let mut packers: Vec<RwLock<BoxedPacker<'_, M::State>>> = Vec::new();
    for _ in 0..threads {
        match model.packer() {
            Some(p) => packers.push(RwLock::new(p)),
            None => break,
        }
    }
    if packers.len() < threads {
        packers.clear();
    }
    // The visited set in partitions by fingerprint, each mapping a
    // fingerprint to the depth of its state (not to its node: the
    // workers insert before nodes are numbered).
    let mut visited: Vec<RwLock<Visited>> = (0..PARTITIONS)
        .map(|_| RwLock::new(Visited::default()))
        .collect();
    let mut nodes = pack::Links::new();
    let symmetry = options.symmetry && model.has_symmetry();
    let canon = |s: M::State| canonical(model, symmetry, s);
    let init = canon(model.init_state());
    let init_fp = model.fingerprint(&init);
    visited[partition(init_fp)]
        .get_mut()
        .expect("the visited set")
        .insert(pack::Key::of(init_fp), 0);
    findings.check_state(model, &props, &init, false, &mut Vec::new);
    let mut layer: Vec<Block<M::State>> = {
        let mut b = Blocks::new(first_packer(&mut packers));
        b.push(init, 0);
        b.finish()
    };
    let mut depth = 0u32;
    let mut stop: Option<Stop> = None;
    let mut depth_bound_hit = false;
    let mut max_depth_seen = 0;
    let mut unsplit = options.shard.filter(|s| s.count > 1);
    let mut peak_layers = 0u64;
    'search: while !layer.is_empty() {
        let len: usize = layer.iter().map(Block::len).sum();
        if let Some(shard) = unsplit {
            if depth > 0 && len >= SHARD_SPLIT_WIDTH * shard.count as usize {
                unsplit = None;
                let mut kept = Vec::new();
                let mut j = 0u64;
                for block in std::mem::take(&mut layer) {
                    block.into_each(&packers, &mut |s, at| {
                        if j % shard.count == shard.index {
                            kept.push((s, at));
                        }
                        j += 1;
                    });
                }
                let mut b = Blocks::new(first_packer(&mut packers));
                for (s, at) in kept {
                    b.push(s, at);
                }
                layer = b.finish();
                continue;
            }
        }
        max_depth_seen = max_depth_seen.max(depth);
        let layer_bytes: u64 = layer.iter().map(Block::heap_bytes).sum();
        let mut next: Vec<Block<M::State>> = Vec::new();
        let mut next_bytes = 0u64;
        // The node index the next layer starts at.
        let next_first = nodes.len() as u32;
        let mut done_at: Option<usize> = None;
        let mut cut: Option<Stop> = None;
        let mut chunk_start = 0usize;
        let mut rest = std::mem::take(&mut layer).into_iter().peekable();
        // The previous chunk, numbered, waiting for its phase 3.
        let mut pending: Option<Numbered<M::State>> = None;
        loop {
            let mut chunk: Vec<Block<M::State>> = Vec::new();
            let mut chunk_len = 0;
            if cut.is_none() {
                while chunk_len < PARALLEL_CHUNK {
                    let Some(b) = rest.next() else { break };
                    chunk_len += b.len();
                    chunk.push(b);
                }
            }
            if chunk_len == 0 && pending.is_none() {
                break;
            }
            // This chunk's parts (none when there is no chunk), and the
            // broadcast's tasks: as many as the larger of this chunk's
            // and the pending one's parts.
            let parts = if chunk_len == 0 {
                0
            } else if pool.is_some() && chunk_len >= PARALLEL_MIN {
                threads
            } else {
                1
            };
            let tasks = parts.max(pending.as_ref().map_or(0, |p| p.slots.len()));
            let cuts = split(&chunk, parts.max(1));
            // For the pending chunk's new states: as [`super::bfs`] after
            // the chunk before it.
            let due_always = findings.due(&props, false);
            // For this chunk's quiescent states: a superset of what is
            // due when they are recorded (phase 4 skips the rest).
            let due_quiescent = findings.due(&props, true);
            let meeting = Meeting::new(tasks);
            let expanded: Vec<OnceLock<Expansion<M::State>>> =
                (0..parts).map(|_| OnceLock::new()).collect();
            let decision: OnceLock<Option<Stop>> = OnceLock::new();
            let outs: Vec<TaskOut<M::State>> = {
                let (visited, packers, chunk, cuts) = (&visited, &packers, &chunk, &cuts);
                let (pending, expanded, decision, meeting) =
                    (&pending, &expanded, &decision, &meeting);
                let (due_always, due_quiescent, props, pacer) =
                    (&due_always, &due_quiescent, &props, &pacer);
                on_workers(pool.as_ref(), tasks, move |i| {
                    let _unwinding = Unwinding(meeting);
                    // Phase 3 of the pending chunk, part `i`.
                    let output = pending.as_ref().filter(|p| i < p.slots.len()).map(|p| {
                        let (e, flags) = p.slots[i]
                            .lock()
                            .expect("a part's slot")
                            .take()
                            .expect("each part taken once");
                        let mut guard = packers.get(i).map(|l| l.write().expect("a packer"));
                        let packer = guard.as_mut().map(|g| (i, &mut **g));
                        finish_part(model, props, due_always, p, i, e, flags, packer)
                    });
                    // The pending chunk's packing is done before any
                    // worker unpacks this chunk with the same packers.
                    meeting.wait();
                    if parts == 0 {
                        return TaskOut {
                            output,
                            claimed: Vec::new(),
                        };
                    }
                    // Phase 1 of this chunk, part `i`.
                    if i < parts {
                        let vis: Vec<_> = visited
                            .iter()
                            .map(|v| v.read().expect("the visited set"))
                            .collect();
                        let mut e = Expansion {
                            parents: Vec::new(),
                            succ: Vec::new(),
                            fps: Vec::new(),
                            by_part: vec![Vec::new(); PARTITIONS],
                        };
                        let mut seen = FingerprintSet::default();
                        let mut trace = Trace::off();
                        let mut actions = Vec::new();
                        for block in &chunk[cuts[i]..cuts[i + 1]] {
                            block.each(packers, &mut |state, at| {
                                actions.clear();
                                model.actions(state, &mut actions);
                                if actions.is_empty() {
                                    let c = Checks::run(model, props, due_quiescent, state);
                                    e.parents.push((at, Parent::Quiescent(c)));
                                    return;
                                }
                                if depth >= bounds.max_depth {
                                    e.parents.push((at, Parent::Bound));
                                    return;
                                }
                                let mut ample: Option<usize> = if options.por {
                                    actions.iter().position(|a| model.is_local(state, a))
                                } else {
                                    None
                                };
                                let offer = |e: &mut Expansion<M::State>, index, n, fp| {
                                    e.by_part[partition(fp)].push(e.fps.len() as u32);
                                    e.succ.push((index as u32, n));
                                    e.fps.push(fp);
                                };
                                if let Some(a) = ample {
                                    let n = canon(model.next_state(state, &actions[a], &mut trace));
                                    let fp = model.fingerprint(&n);
                                    match vis[partition(fp)].get(&pack::Key::of(fp)) {
                                        // Visited before this layer began:
                                        // at a depth no greater than this
                                        // state's.
                                        Some(&d) if d <= depth => ample = None,
                                        Some(_) => {}
                                        None => {
                                            if seen.insert(fp) {
                                                offer(&mut e, a, n, fp);
                                            }
                                        }
                                    }
                                }
                                if ample.is_none() {
                                    for (index, action) in actions.iter().enumerate() {
                                        let n = canon(model.next_state(state, action, &mut trace));
                                        let fp = model.fingerprint(&n);
                                        if !vis[partition(fp)].contains_key(&pack::Key::of(fp))
                                            && seen.insert(fp)
                                        {
                                            offer(&mut e, index, n, fp);
                                        }
                                    }
                                }
                                let end = e.succ.len() as u32;
                                e.parents.push((at, Parent::Next { end }));
                            });
                        }
                        drop(vis);
                        if expanded[i].set(e).is_err() {
                            unreachable!("each part expanded once");
                        }
                    }
                    meeting.wait();
                    let expansions: Vec<&Expansion<M::State>> = expanded
                        .iter()
                        .map(|e| e.get().expect("every part expanded"))
                        .collect();
                    // A table about to grow is the one allocation that can
                    // jump past a memory budget between two checks: look
                    // first. (A stop here loses this chunk's quiescent
                    // states' results; only a memory stop, never
                    // complete, can be one.)
                    if i == 0 {
                        let growth: u64 = visited
                            .iter()
                            .enumerate()
                            .map(|(p, v)| {
                                let v = v.read().expect("the visited set");
                                let offers = expansions.iter().map(|e| e.by_part[p].len()).sum();
                                table_growth(v.len(), v.capacity(), offers, 0)
                            })
                            .sum();
                        let cut = if growth > 0 {
                            pacer.limits(growth)
                        } else {
                            None
                        };
                        decision.set(cut).expect("decided once");
                    }
                    meeting.wait();
                    // Phase 2a: in each of this task's partitions, which
                    // offers are new (the first of equal ones, in the
                    // sequential search's order), inserted as they go.
                    let mut claimed = Vec::new();
                    if decision.get().is_some_and(Option::is_none) {
                        for p in (i..PARTITIONS).step_by(tasks) {
                            let mut v = visited[p].write().expect("the visited set");
                            for (pi, e) in expansions.iter().enumerate() {
                                for &x in &e.by_part[p] {
                                    let key = pack::Key::of(e.fps[x as usize]);
                                    if let std::collections::hash_map::Entry::Vacant(slot) =
                                        v.entry(key)
                                    {
                                        slot.insert(depth + 1);
                                        claimed.push((pi as u32, x));
                                    }
                                }
                            }
                        }
                    }
                    TaskOut { output, claimed }
                })
            };
            drop(chunk);
            let mut outputs = Vec::new();
            let mut claimed = Vec::new();
            for o in outs {
                outputs.extend(o.output);
                claimed.push(o.claimed);
            }
            // Phase 4 of the pending chunk, here: findings in order;
            // where the sequential search would have stopped, what came
            // after is undone.
            if let Some(numbered) = pending.take() {
                let processed = numbered.processed;
                let mut last: Option<u32> = None;
                // Done before this chunk (only the initial state's checks
                // can do that): stop after its first state, as
                // [`super::bfs`] does.
                let mut stop_at: Option<u32> = (processed > 0 && findings.done()).then_some(0);
                for ev in outputs
                    .iter()
                    .flat_map(|(_, ev)| ev)
                    .take_while(|_| stop_at.is_none())
                {
                    if last.is_some_and(|l| l != ev.pos) && findings.done() {
                        stop_at = last;
                        break;
                    }
                    findings.record(&ev.checks, &mut || nodes.path_to(ev.node));
                    last = Some(ev.pos);
                }
                if stop_at.is_none() && last.is_some() && findings.done() {
                    stop_at = last;
                }
                for (blocks, _) in outputs {
                    next_bytes += blocks.iter().map(Block::heap_bytes).sum::<u64>();
                    next.extend(blocks);
                }
                peak_layers = peak_layers.max(layer_bytes + next_bytes);
                if let Some(k) = stop_at {
                    // The search ends: what came after this state is
                    // dropped from the count (the visited set is not read
                    // again; this chunk's claims are dropped with it).
                    let end = numbered.ends[k as usize];
                    nodes.truncate(end as usize);
                    if numbered.chunk_start + k as usize + 1 < len || end > next_first {
                        done_at = Some(numbered.chunk_start + k as usize);
                    } else {
                        done_at = Some(usize::MAX);
                    }
                    cut = None;
                    break;
                }
            }
            if parts == 0 {
                continue;
            }
            let expansions: Vec<Expansion<M::State>> = expanded
                .into_iter()
                .map(|e| e.into_inner().expect("every part expanded"))
                .collect();
            if let Some(Some(s)) = decision.into_inner() {
                cut = Some(s);
                break;
            }
            // Per part and offer: its node index once numbered, else a
            // mark.
            let mut new_at: Vec<Vec<u32>> = expansions
                .iter()
                .map(|e| vec![UNCLAIMED; e.fps.len()])
                .collect();
            for (pi, x) in claimed.into_iter().flatten() {
                new_at[pi as usize][x as usize] = CLAIMED;
            }
            // Phase 2b, here: bounds and limits, node numbers and links.
            // Per parent of the chunk: the node count after its new states.
            let mut ends: Vec<u32> = Vec::with_capacity(chunk_len);
            'insert: for (e, flags) in expansions.iter().zip(&mut new_at) {
                let mut from = 0usize;
                for (at, p) in &e.parents {
                    match p {
                        Parent::Quiescent(_) => {}
                        Parent::Bound => depth_bound_hit = true,
                        Parent::Next { end } => {
                            let range = from..*end as usize;
                            for (flag, (choice, _)) in
                                flags[range.clone()].iter_mut().zip(&e.succ[range])
                            {
                                if *flag != CLAIMED {
                                    continue;
                                }
                                let admitted =
                                    pacer.admit(nodes.len() as u64, 0, depth + 1, progress);
                                if let Err(s) = admitted {
                                    // The search ends here; the visited
                                    // set is not read again, so the
                                    // claims past this point can stay.
                                    cut = Some(s);
                                    ends.push(nodes.len() as u32);
                                    break 'insert;
                                }
                                *flag = nodes.len() as u32;
                                nodes.push(*at, *choice);
                            }
                            from = *end as usize;
                        }
                    }
                    ends.push(nodes.len() as u32);
                }
            }
            // Parents at positions from `processed` on were not reached
            // (a limit cut the chunk).
            let processed = ends.len();
            if cut.is_some() {
                for flags in new_at.iter_mut() {
                    for f in flags.iter_mut().filter(|f| **f == CLAIMED) {
                        // Offers after the cut: not numbered.
                        *f = UNCLAIMED;
                    }
                }
            }
            let mut starts = Vec::with_capacity(parts);
            let mut pos = 0usize;
            for e in &expansions {
                starts.push(pos);
                pos += e.parents.len();
            }
            pending = Some(Numbered {
                slots: expansions
                    .into_iter()
                    .zip(new_at)
                    .map(|p| Mutex::new(Some(p)))
                    .collect(),
                starts,
                processed,
                ends,
                chunk_start,
            });
            chunk_start += chunk_len;
        }
        if let Some(s) = cut {
            stop = Some(s);
            break 'search;
        }
        if let Some(k) = done_at {
            if k != usize::MAX {
                stop = Some(Stop::FirstViolation);
            }
            break;
        }
        layer = next;
        depth += 1;
    }
    if stop.is_none() && depth_bound_hit {
        stop = Some(Stop::MaxDepth);
    }
    let bytes = pacer.heap.bytes(
        visited
            .iter_mut()
            .map(|v| v.get_mut().expect("the visited set").capacity() as u64)
            .sum::<u64>()
            * 17
            + nodes.capacity_bytes()
            + peak_layers,
    );
    Report {
        states: nodes.len() as u64,
        complete: stop.is_none(),
        stop,
        max_depth_seen,
        violations: super::concrete_violations(model, symmetry, findings.found),
        checked: findings.checked,
        bytes,
    }
}

/// The first worker's packer, lent (none when the model has none).
fn first_packer<'a, 'm, S>(
    packers: &'a mut [RwLock<BoxedPacker<'m, S>>],
) -> Option<(usize, &'a mut BoxedPacker<'m, S>)> {
    packers
        .first_mut()
        .map(|p| (0, p.get_mut().expect("a packer")))
}

/// Phase 3 on part `i` of a numbered chunk: the properties of the part's
/// new states, packed into the next layer's blocks with `packer`; the
/// rest freed. Hands back only the results that can change the findings.
#[allow(clippy::too_many_arguments)]
fn finish_part<M: Model>(
    model: &M,
    props: &[Property<M>],
    due_always: &[bool],
    numbered: &Numbered<M::State>,
    i: usize,
    e: Expansion<M::State>,
    flags: Vec<u32>,
    packer: Option<(usize, &mut BoxedPacker<'_, M::State>)>,
) -> PartOutput<M::State> {
    let mut out = Blocks::new(packer);
    let mut events = Vec::new();
    let mut seen = vec![false; props.len()];
    let mut checks = Checks(Vec::new());
    let mut succ = e.succ.into_iter().zip(flags);
    let mut from = 0u32;
    for (k, (at, p)) in e.parents.into_iter().enumerate() {
        let pos = numbered.starts[i] + k;
        if pos >= numbered.processed {
            break;
        }
        match p {
            Parent::Quiescent(c) => events.push(Event {
                pos: pos as u32,
                node: at,
                checks: c,
            }),
            Parent::Bound => {}
            Parent::Next { end } => {
                for ((_, n), here) in succ.by_ref().take((end - from) as usize) {
                    if here >= CLAIMED {
                        continue;
                    }
                    checks.fill(model, props, due_always, &n);
                    if checks.matters(&mut seen) {
                        events.push(Event {
                            pos: pos as u32,
                            node: here,
                            checks: Checks(std::mem::take(&mut checks.0)),
                        });
                    }
                    out.push(n, here);
                }
                from = end;
            }
        }
    }
    (out.finish(), events)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that panics does not leave the others waiting at the next
    /// meeting: they panic too, so the search fails instead of hanging.
    #[test]
    fn a_panicking_task_releases_the_meeting() {
        let tasks = 3;
        let meeting = std::sync::Arc::new(Meeting::new(tasks));
        let (done, finished) = std::sync::mpsc::channel();
        // Detached threads: were one to wait forever, the test still ends
        // (failing) when the receive below times out.
        for t in 0..tasks {
            let (meeting, done) = (meeting.clone(), done.clone());
            std::thread::spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _unwinding = Unwinding(&meeting);
                    meeting.wait();
                    if t == 1 {
                        // Let the others reach the next meeting and sleep.
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        panic!("task 1 fails on purpose");
                    }
                    meeting.wait();
                }));
                done.send(r.is_err()).unwrap();
            });
        }
        let failed: Vec<bool> = (0..tasks)
            .map(|_| {
                finished
                    .recv_timeout(std::time::Duration::from_secs(20))
                    .expect("every task ends (none waits forever)")
            })
            .collect();
        assert_eq!(failed, vec![true; tasks]);
    }

    /// No task passes a meeting before the slowest has reached it, whether
    /// the others spin, yield or sleep while they wait (a task late by
    /// 2 ms makes them sleep).
    #[test]
    fn a_meeting_lets_no_task_ahead_of_the_slowest() {
        let tasks = 3;
        let rounds = 300;
        let meeting = Meeting::new(tasks);
        let reached: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
        std::thread::scope(|s| {
            for t in 0..tasks {
                let (meeting, reached) = (&meeting, &reached);
                s.spawn(move || {
                    for r in 1..=rounds {
                        if r % 50 == t {
                            std::thread::sleep(std::time::Duration::from_millis(2));
                        }
                        reached[t].store(r, Ordering::SeqCst);
                        meeting.wait();
                        for other in reached {
                            assert_eq!(other.load(Ordering::SeqCst), r, "a task ran ahead");
                        }
                        meeting.wait();
                    }
                });
            }
        });
    }
}
