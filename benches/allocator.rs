//! Allocator throughput (issue 6): libnetwork's faithful `bitseq` against
//! the fast pool, in the same run, plus the concurrent allocators.
//!
//! Ids (criterion groups / ids; `Throughput::Elements`, so criterion
//! prints time and rate per address or per pair):
//! - `fill/bitseq/16`, `fill/bitmap/16`, `fill/bitmap/8`: first-fit
//!   `SetAny` until the pool is full, per address (bitseq is not run on a
//!   /8: about 6 s per fill upstream);
//! - `churn/{bitseq,bitmap}/{50,90,99}`: on a /16 filled at random to that
//!   percentage (fixed seed), one random allocated ordinal released then
//!   one first-fit `SetAny`, per pair; the pool stays at its fill level;
//! - `churn_serial/...`: the same with serial `SetAny(true)`;
//! - `concurrent/{mutex,fast}/{1,2}`: that many threads each doing
//!   allocate-then-release pairs on a shared /16 filled at 50%; time per
//!   pair over all threads. `mutex` = `MutexPool`, `fast` = `MailboxPool`.
//!
//! The faithful side runs what libnetwork runs per call with no store
//! (`Handle.set`): the search on the handle, `getCopy`, `pushReservation`
//! on the copy, the copy replacing the handle. Before the groups run, the
//! bench prints the fast pool's memory for a /8.
//!
//! Run: `cargo bench --bench allocator` (about 2 minutes); smoke test:
//! `cargo bench --bench allocator -- --test`. Figures and the machine they
//! were measured on: docs/performance.md.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use netrace::ipam::bitmap::FastPool;
use netrace::ipam::bitseq::{Bitseq, BitseqError, Request, Version};
use netrace::ipam::concurrent::{Allocator, MailboxPool, MutexPool};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One seed for every random fill and every choice of release.
const SEED: u64 = 6;
const SLASH16: u64 = 1 << 16;
const SLASH8: u64 = 1 << 24;

/// libnetwork's `Handle.set` with no store, as `IpamSystem` cuts it into
/// phases: the `SetAny` precheck, `find` on the handle (which moves
/// `curr`), `nh := h.getCopy()`, `pushReservation` on the copy, and the
/// copy replacing the handle.
fn handle_set(h: &mut Bitseq, request: Request) -> Result<u64, BitseqError> {
    if let Request::Any { .. } = request {
        if h.unselected() == 0 {
            return Err(BitseqError::NoBitAvailable);
        }
    }
    let (ordinal, pos) = h.find(request)?;
    let mut nh = h.clone();
    nh.push_reservation(pos, request.is_release());
    *h = nh;
    Ok(ordinal)
}

fn any(bits: u64, serial: bool) -> Request {
    Request::Any {
        start: 0,
        end: bits - 1,
        serial,
    }
}

/// A pool with `percent`% of its ordinals set, chosen at random, and the
/// list of those ordinals.
fn random_fill(bits: u64, percent: u64, rng: &mut ChaCha8Rng) -> (FastPool, Vec<u64>) {
    let mut ordinals: Vec<u64> = (0..bits).collect();
    ordinals.shuffle(rng);
    ordinals.truncate((bits * percent / 100) as usize);
    let mut pool = FastPool::new(bits);
    for &o in &ordinals {
        pool.set(o).expect("distinct ordinals");
    }
    (pool, ordinals)
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, measure_s: u64) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(measure_s));
}

fn fill(c: &mut Criterion) {
    let mut group = c.benchmark_group("fill");
    configure(&mut group, 3);
    group.sample_size(10).sampling_mode(SamplingMode::Flat);

    group.throughput(Throughput::Elements(SLASH16));
    group.bench_function("bitseq/16", |b| {
        b.iter_batched(
            || Bitseq::new(SLASH16, Version::V2023),
            |mut h| {
                for _ in 0..SLASH16 {
                    handle_set(&mut h, any(SLASH16, false)).expect("room left");
                }
                h
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("bitmap/16", |b| {
        b.iter_batched(
            || FastPool::new(SLASH16),
            |mut p| {
                for _ in 0..SLASH16 {
                    p.set_any(false).expect("room left");
                }
                p
            },
            BatchSize::PerIteration,
        )
    });

    group.throughput(Throughput::Elements(SLASH8));
    group.bench_function("bitmap/8", |b| {
        b.iter_batched(
            || FastPool::new(SLASH8),
            |mut p| {
                for _ in 0..SLASH8 {
                    p.set_any(false).expect("room left");
                }
                p
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// One churn group: release a random allocated ordinal, allocate one
/// (first-fit or serial), on a /16 at 50, 90 and 99%.
fn churn_group(c: &mut Criterion, name: &str, serial: bool) {
    let mut group = c.benchmark_group(name);
    configure(&mut group, 2);
    group.throughput(Throughput::Elements(1));
    for percent in [50, 90, 99] {
        let mut rng = ChaCha8Rng::seed_from_u64(SEED + percent);
        let (pool, held) = random_fill(SLASH16, percent, &mut rng);

        // The faithful side is slow (microseconds per pair): fewer samples.
        group.sample_size(20);
        group.bench_function(format!("bitseq/{percent}"), |b| {
            let mut h = pool.to_bitseq();
            let mut held = held.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(SEED);
            b.iter(|| {
                let i = rng.gen_range(0..held.len());
                handle_set(&mut h, Request::Unset(held[i])).expect("valid ordinal");
                held[i] = handle_set(&mut h, any(SLASH16, serial)).expect("one is free");
            })
        });

        group.sample_size(50);
        group.bench_function(format!("bitmap/{percent}"), |b| {
            let mut p = pool.clone();
            let mut held = held.clone();
            let mut rng = ChaCha8Rng::seed_from_u64(SEED);
            b.iter(|| {
                let i = rng.gen_range(0..held.len());
                p.unset(held[i]).expect("valid ordinal");
                held[i] = p.set_any(serial).expect("one is free");
            })
        });
    }
    group.finish();
}

fn churn(c: &mut Criterion) {
    churn_group(c, "churn", false);
}

fn churn_serial(c: &mut Criterion) {
    churn_group(c, "churn_serial", true);
}

/// `threads` threads sharing `alloc`, `iters` allocate+release pairs in
/// all; returns the wall time from the common start to the last finish.
fn run_pairs(alloc: &dyn Allocator, threads: u64, iters: u64) -> Duration {
    let start = Barrier::new(threads as usize + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                // Spread the remainder so that exactly `iters` pairs run.
                let n = iters / threads + u64::from(t < iters % threads);
                s.spawn(move || {
                    start.wait();
                    for _ in 0..n {
                        let o = alloc.allocate().expect("the pool is half free");
                        alloc.release(o).expect("valid ordinal");
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        for w in workers {
            w.join().expect("worker panicked");
        }
        t0.elapsed()
    })
}

fn concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("concurrent");
    configure(&mut group, 3);
    group.sample_size(20).throughput(Throughput::Elements(1));
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let (pool, _) = random_fill(SLASH16, 50, &mut rng);
    for threads in [1, 2] {
        group.bench_function(format!("mutex/{threads}"), |b| {
            let alloc = MutexPool::new(pool.clone());
            b.iter_custom(|iters| run_pairs(&alloc, threads, iters))
        });
        group.bench_function(format!("fast/{threads}"), |b| {
            let alloc = MailboxPool::new(pool.clone());
            b.iter_custom(|iters| run_pairs(&alloc, threads, iters))
        });
    }
    group.finish();
}

/// Prints the fast pool's footprint for a /8 (the memory goal is
/// at most 1.1 bits per address).
fn report_memory() {
    let pool = FastPool::new(SLASH8);
    let bytes = pool.bytes();
    println!(
        "memory: FastPool /8 = {bytes} bytes for {SLASH8} addresses = {:.4} bytes = {:.4} bits per address",
        bytes as f64 / SLASH8 as f64,
        bytes as f64 * 8.0 / SLASH8 as f64
    );
}

criterion_group!(benches, fill, churn, churn_serial, concurrent);

fn main() {
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
