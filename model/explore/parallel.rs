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
//! What it does not do: it does not parallelise layers smaller than
//! [`PARALLEL_MIN`] states (they run on the calling thread), and a chunk
//! is split among the workers at block boundaries, so the split is even
//! only to within a block.

use std::sync::Mutex;

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
    fn each(&self, packers: &[BoxedPacker<'_, S>], f: &mut dyn FnMut(&S, u32)) {
        match self {
            Block::Packed {
                packer,
                count,
                bytes,
            } => unpack_each(&packers[*packer], *count, bytes, &mut |s, at| f(&s, at)),
            Block::Plain(v) => v.iter().for_each(|(s, at)| f(s, *at)),
        }
    }

    /// Like [`Block::each`], giving the states away.
    fn into_each(self, packers: &[BoxedPacker<'_, S>], f: &mut dyn FnMut(S, u32)) {
        match self {
            Block::Packed {
                packer,
                count,
                bytes,
            } => unpack_each(&packers[packer], count, &bytes, f),
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
/// 2. workers, one partition of the visited set (`PARTITIONS`) each,
///    take the successors of their partition in the sequential search's
///    order and claim the first of each new fingerprint; the calling
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
    let mut packers: Vec<BoxedPacker<'_, M::State>> = Vec::new();
    for _ in 0..threads {
        match model.packer() {
            Some(p) => packers.push(p),
            None => break,
        }
    }
    if packers.len() < threads {
        packers.clear();
    }
    // The visited set in partitions by fingerprint, each mapping a
    // fingerprint to the depth of its state (not to its node: the
    // workers insert before nodes are numbered).
    let mut visited: Vec<Visited> = (0..PARTITIONS).map(|_| Visited::default()).collect();
    let mut nodes = pack::Links::new();
    let symmetry = options.symmetry && model.has_symmetry();
    let canon = |s: M::State| canonical(model, symmetry, s);
    let init = canon(model.init_state());
    let init_fp = model.fingerprint(&init);
    visited[partition(init_fp)].insert(pack::Key::of(init_fp), 0);
    findings.check_state(model, &props, &init, false, &mut Vec::new);
    let mut layer: Vec<Block<M::State>> = {
        let mut b = Blocks::new(packers.first_mut().map(|p| (0, p)));
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
                let mut b = Blocks::new(packers.first_mut().map(|p| (0, p)));
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
        while rest.peek().is_some() {
            let mut chunk: Vec<Block<M::State>> = Vec::new();
            let mut chunk_len = 0;
            while chunk_len < PARALLEL_CHUNK {
                let Some(b) = rest.next() else { break };
                chunk_len += b.len();
                chunk.push(b);
            }
            let parts = if pool.is_some() && chunk_len >= PARALLEL_MIN {
                threads
            } else {
                1
            };
            let cuts = split(&chunk, parts);
            let due_always = findings.due(&props, false);
            let due_quiescent = findings.due(&props, true);
            // Phase 1, on the workers.
            let expansions: Vec<Expansion<M::State>> = {
                let (visited, packers, chunk) = (&visited, &packers, &chunk);
                on_workers(pool.as_ref(), parts, |i| {
                    let mut e = Expansion {
                        parents: Vec::new(),
                        succ: Vec::new(),
                        fps: Vec::new(),
                    };
                    let mut seen = FingerprintSet::default();
                    let mut trace = Trace::off();
                    let mut actions = Vec::new();
                    for block in &chunk[cuts[i]..cuts[i + 1]] {
                        block.each(packers, &mut |state, at| {
                            actions.clear();
                            model.actions(state, &mut actions);
                            if actions.is_empty() {
                                let c = Checks::run(model, &props, &due_quiescent, state);
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
                            if let Some(a) = ample {
                                let n = canon(model.next_state(state, &actions[a], &mut trace));
                                let fp = model.fingerprint(&n);
                                match visited[partition(fp)].get(&pack::Key::of(fp)) {
                                    // Visited before this layer began: at
                                    // a depth no greater than this state's.
                                    Some(&d) if d <= depth => ample = None,
                                    Some(_) => {}
                                    None => {
                                        if seen.insert(fp) {
                                            e.succ.push((a as u32, n));
                                            e.fps.push(fp);
                                        }
                                    }
                                }
                            }
                            if ample.is_none() {
                                for (index, action) in actions.iter().enumerate() {
                                    let n = canon(model.next_state(state, action, &mut trace));
                                    let fp = model.fingerprint(&n);
                                    if !visited[partition(fp)].contains_key(&pack::Key::of(fp))
                                        && seen.insert(fp)
                                    {
                                        e.succ.push((index as u32, n));
                                        e.fps.push(fp);
                                    }
                                }
                            }
                            let end = e.succ.len() as u32;
                            e.parents.push((at, Parent::Next { end }));
                        });
                    }
                    e
                })
            };
            // The chunk's packed states are read: free them.
            drop(chunk);
            // Phase 2: new states into the visited set, in the sequential
            // search's order. The offered successors by partition:
            let offered: usize = expansions.iter().map(|e| e.fps.len()).sum();
            let mut by_part: Vec<Vec<(u32, u32)>> = vec![Vec::new(); PARTITIONS];
            for (pi, e) in expansions.iter().enumerate() {
                for (x, fp) in e.fps.iter().enumerate() {
                    by_part[partition(*fp)].push((pi as u32, x as u32));
                }
            }
            // A table about to grow is the one allocation that can jump
            // past a memory budget between two checks: look first.
            // (A stop here loses this chunk's quiescent states' results;
            // only a memory stop, never complete, can be one.)
            let growth: u64 = visited
                .iter()
                .zip(&by_part)
                .map(|(v, o)| table_growth(v.len(), v.capacity(), o.len(), 0))
                .sum();
            if growth > 0 {
                if let Some(s) = pacer.limits(growth) {
                    cut = Some(s);
                    break;
                }
            }
            // Phase 2a, on the workers, a partition each: which offers are
            // new (the first of equal ones, in order), inserted as they go.
            let claim = |(v, idx): (&mut Visited, &Vec<(u32, u32)>)| -> Vec<(u32, u32)> {
                let mut new = Vec::new();
                for &(pi, x) in idx {
                    let fp = expansions[pi as usize].fps[x as usize];
                    if let std::collections::hash_map::Entry::Vacant(e) = v.entry(pack::Key::of(fp))
                    {
                        e.insert(depth + 1);
                        new.push((pi, x));
                    }
                }
                new
            };
            let claimed: Vec<Vec<(u32, u32)>> = match &pool {
                Some(pool) if offered >= PARALLEL_MIN => pool.install(|| {
                    use rayon::prelude::*;
                    visited
                        .par_iter_mut()
                        .zip(by_part.par_iter())
                        .map(claim)
                        .collect()
                }),
                _ => visited.iter_mut().zip(by_part.iter()).map(claim).collect(),
            };
            drop(by_part);
            // Per part and offer: its node index once numbered, else
            // `u32::MAX`.
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
            // Phase 3, on the workers: the properties of each part's new
            // states, packed into the next layer; the rest freed.
            let mut starts = Vec::with_capacity(parts);
            let mut pos = 0usize;
            for e in &expansions {
                starts.push(pos);
                pos += e.parents.len();
            }
            let slots: Vec<Mutex<Option<_>>> = expansions
                .into_iter()
                .zip(new_at)
                .zip(
                    packers
                        .iter_mut()
                        .map(Some)
                        .chain(std::iter::repeat_with(|| None)),
                )
                .enumerate()
                .map(|(i, ((e, f), p))| Mutex::new(Some((e, f, p.map(|p| (i, p))))))
                .collect();
            let outputs: Vec<PartOutput<M::State>> = {
                let (starts, slots) = (&starts, &slots);
                let (due_always, props) = (&due_always, &props);
                on_workers(pool.as_ref(), parts, move |i| {
                    let (e, flags, packer) = slots[i]
                        .lock()
                        .expect("a part's slot")
                        .take()
                        .expect("each part taken once");
                    let mut out = Blocks::new(packer);
                    let mut events = Vec::new();
                    let mut seen = vec![false; props.len()];
                    let mut checks = Checks(Vec::new());
                    let mut succ = e.succ.into_iter().zip(flags);
                    let mut from = 0u32;
                    for (k, (at, p)) in e.parents.into_iter().enumerate() {
                        let pos = starts[i] + k;
                        if pos >= processed {
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
                })
            };
            drop(slots);
            // Phase 4, here: findings in order; where the sequential
            // search would have stopped, what came after is undone.
            let mut last: Option<u32> = None;
            // Done before this chunk (only the initial state's checks can
            // do that): stop after its first state, as [`super::bfs`] does.
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
                // The search ends: what came after this state is dropped
                // from the count (the visited set is not read again).
                let end = ends[k as usize];
                nodes.truncate(end as usize);
                if chunk_start + k as usize + 1 < len || end > next_first {
                    done_at = Some(chunk_start + k as usize);
                } else {
                    done_at = Some(usize::MAX);
                }
                cut = None;
                break;
            }
            if cut.is_some() {
                break;
            }
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
        visited.iter().map(|v| v.capacity() as u64).sum::<u64>() * 17
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
