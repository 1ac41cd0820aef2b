//! The etcd model against a real etcd.
//!
//! - Always: every recorded answer of tests/data/etcd-3.4.23.jsonl replayed
//!   through the model (`model/store/etcd.rs`), field by field, and every
//!   deliberately wrong rule ([`Mutant`]) caught by them.
//! - With Debian's etcd installed (`etcd-server`): the recorded sequences
//!   replayed on a fresh real server must give the recorded answers; new
//!   generated sequences (proptest) must get the same answers from the model
//!   and the real server; nothing the tests start is left running or on disk,
//!   on success, on failure, or when the test process is killed by a signal.
//!   Without etcd these tests print `ETCD ORACLE SKIPPED` and pass, unless
//!   `NETRACE_REQUIRE_ETCD=1` (CI sets it), which makes a skip a failure.
//!
//! `NETRACE_RECORD_ETCD=1 cargo test --test etcd record_vectors` rewrites the
//! recorded file from the corpus below on a fresh server.

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netrace::store::etcd::{Etcd, Mutant};
use netrace::store::oracle::{self, Server};
use netrace::store::vector::{diff, instantiate, run_model, Cmp, Reply, Request, Sequence};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

mod common;
use common::etcd::server_or_skip;

const RECORDED: &str = "tests/data/etcd-3.4.23.jsonl";

fn recorded() -> Vec<Sequence> {
    let path = format!("{}/{RECORDED}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}:{}: {e}", i + 1)))
        .collect()
}

/// The model's first divergence from a sequence's recorded answers.
fn divergence(seq: &Sequence, mutant: Option<Mutant>) -> Option<String> {
    let mut store = Etcd::resume(seq.base_revision, seq.compact_revision);
    if let Some(m) = mutant {
        store = store.with_mutant(m);
    }
    let got = run_model(&mut store, &seq.ops).unwrap_or_else(|e| panic!("{}: {e:?}", seq.name));
    for (i, (want, got)) in seq.results.iter().zip(&got).enumerate() {
        if let Some(d) = diff(want, got) {
            return Some(format!(
                "{} op #{i} {}: {d}",
                seq.name,
                serde_json::to_string(&seq.ops[i]).unwrap()
            ));
        }
    }
    None
}

#[test]
fn the_model_gives_every_recorded_answer() {
    let seqs = recorded();
    let failures: Vec<String> = seqs.iter().filter_map(|s| divergence(s, None)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let ops: usize = seqs.iter().map(|s| s.ops.len()).sum();
    assert!(
        seqs.len() >= 30 && ops >= 400,
        "{} sequences, {ops} ops",
        seqs.len()
    );
    assert!(seqs.iter().all(|s| s.etcd == "3.4.23"));
}

#[test]
fn every_wrong_rule_is_caught_by_the_recorded_answers() {
    let seqs = recorded();
    for m in [
        Mutant::TxnPutKeepsModRevision,
        Mutant::DeleteKeepsVersion,
        Mutant::CompactionExclusive,
        Mutant::RevokeKeepsKeys,
    ] {
        let caught = seqs.iter().find_map(|s| divergence(s, Some(m)));
        assert!(caught.is_some(), "{m:?} passes every recorded sequence");
        eprintln!("{m:?} caught: {}", caught.unwrap());
    }
}

// ---- the real server ----

/// Runs one template on `server` in namespace `ns`: the sequence with the
/// real answers. Leases the template leaves behind are revoked afterwards,
/// outside the sequence, so that none expires during a later one.
fn run_real(
    server: &Server,
    name: &str,
    template: &[Request],
    n: usize,
    compact: &Cell<i64>,
) -> Sequence {
    let client = server.client(&format!("/netrace/{n}/"), (n as i64 + 1) * 1000);
    let base = client.revision().expect("server answers");
    let ops = instantiate(template, base);
    let mut results = Vec::new();
    for op in &ops {
        results.push(client.apply(op).unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    let seq = Sequence {
        name: name.to_string(),
        etcd: oracle::version().expect("etcd --version"),
        base_revision: base,
        compact_revision: compact.get(),
        ops,
        results,
    };
    for (op, r) in seq.ops.iter().zip(&seq.results) {
        if let Request::Compact { revision } = op {
            if r.error.is_none() {
                compact.set(*revision);
            }
        }
    }
    let granted: std::collections::BTreeSet<i64> = template
        .iter()
        .filter_map(|op| match op {
            Request::LeaseGrant { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    for id in granted {
        let _ = client.apply(&Request::LeaseRevoke { id });
    }
    seq
}

fn put(key: &str, value: &str) -> Request {
    Request::Put {
        key: key.into(),
        value: value.into(),
        lease: 0,
        prev_kv: false,
    }
}

fn put_lease(key: &str, value: &str, lease: i64) -> Request {
    Request::Put {
        key: key.into(),
        value: value.into(),
        lease,
        prev_kv: true,
    }
}

fn get(key: &str, revision: i64) -> Request {
    Request::Range {
        key: key.into(),
        prefix: false,
        revision,
        limit: 0,
        count_only: false,
    }
}

fn scan(key: &str, limit: i64, count_only: bool) -> Request {
    Request::Range {
        key: key.into(),
        prefix: true,
        revision: 0,
        limit,
        count_only,
    }
}

fn del(key: &str, prefix: bool) -> Request {
    Request::Delete {
        key: key.into(),
        prefix,
        prev_kv: true,
    }
}

fn cmp(key: &str, target: &str, result: &str, number: i64) -> Cmp {
    Cmp {
        key: key.into(),
        target: target.into(),
        result: result.into(),
        number,
        value: None,
    }
}

fn cmp_value(key: &str, result: &str, value: &str) -> Cmp {
    Cmp {
        key: key.into(),
        target: "value".into(),
        result: result.into(),
        number: 0,
        value: Some(value.into()),
    }
}

fn txn(compare: Vec<Cmp>, success: Vec<Request>, failure: Vec<Request>) -> Request {
    Request::Txn {
        compare,
        success,
        failure,
    }
}

fn watch(key: &str, prefix: bool, start: i64) -> Request {
    Request::Watch {
        key: key.into(),
        prefix,
        start_revision: start,
        prev_kv: true,
    }
}

/// The hand-written sequences: one per rule of model/store/etcd.rs's docs.
/// Revisions are offsets from the sequence's base (see `instantiate`).
fn corpus() -> Vec<(&'static str, Vec<Request>)> {
    vec![
        (
            "put-versions-generations",
            vec![
                put("a", "1"),
                put("a", "2"),
                get("a", 0),
                del("a", false),
                del("a", false),
                get("a", 0),
                put("a", "3"),
                get("a", 0),
                Request::Put {
                    key: "a".into(),
                    value: "4".into(),
                    lease: 0,
                    prev_kv: true,
                },
            ],
        ),
        (
            "prefix-limit-count",
            vec![
                put("d/2", "x"),
                put("d/1", "y"),
                put("d/3", "z"),
                put("e", "w"),
                scan("d/", 0, false),
                scan("d/", 2, false),
                scan("d/", 0, true),
                scan("d/", 5, false),
                scan("f/", 0, false),
                scan("d", 0, false),
                del("d/", true),
                scan("d/", 0, false),
            ],
        ),
        (
            "reads-of-the-past",
            vec![
                put("a", "1"),
                put("a", "2"),
                del("a", false),
                put("a", "3"),
                put("b", "1"),
                get("a", 1),
                get("a", 2),
                get("a", 3),
                get("a", 4),
                get("a", 5),
                get("a", 6),
                get("a", 7),
            ],
        ),
        (
            "compaction",
            vec![
                put("a", "1"),
                put("a", "2"),
                put("a", "3"),
                Request::Compact { revision: 2 },
                get("a", 1),
                get("a", 2),
                get("a", 3),
                Request::Compact { revision: 2 },
                Request::Compact { revision: 1 },
                Request::Compact { revision: 100 },
                watch("a", false, 1),
                watch("a", false, 2),
                watch("a", false, 3),
            ],
        ),
        (
            "txn-check-and-set",
            vec![
                // libkv's AtomicPut over etcd v3: create if absent...
                txn(
                    vec![cmp("h", "create", "=", 0)],
                    vec![put("h", "v1")],
                    vec![get("h", 0)],
                ),
                txn(
                    vec![cmp("h", "create", "=", 0)],
                    vec![put("h", "v1")],
                    vec![get("h", 0)],
                ),
                // ... and replace at the index read.
                txn(vec![cmp("h", "mod", "=", 1)], vec![put("h", "v2")], vec![]),
                txn(vec![cmp("h", "mod", "=", 1)], vec![put("h", "v3")], vec![]),
                txn(
                    vec![cmp("missing", "mod", "=", 0)],
                    vec![put("m", "x")],
                    vec![],
                ),
                get("h", 0),
            ],
        ),
        (
            "txn-one-revision-own-writes",
            vec![
                put("x/1", "a"),
                txn(
                    vec![],
                    vec![
                        get("y", 0),
                        put("y", "1"),
                        put("z", "2"),
                        get("y", 0),
                        scan("x/", 0, false),
                        del("x/", true),
                        scan("x/", 0, false),
                    ],
                    vec![],
                ),
                txn(vec![], vec![get("y", 0)], vec![]),
                txn(vec![], vec![], vec![]),
                txn(vec![], vec![del("nothing", false)], vec![]),
                get("y", 0),
            ],
        ),
        (
            "txn-duplicate-keys",
            vec![
                txn(vec![], vec![put("k", "1"), put("k", "2")], vec![]),
                txn(vec![], vec![put("k/1", "1"), del("k/", true)], vec![]),
                txn(vec![], vec![del("k", false), put("k", "1")], vec![]),
                txn(
                    vec![],
                    vec![put("k", "1")],
                    vec![put("k", "1"), put("k", "2")],
                ),
                txn(vec![], vec![del("k", false), del("k", false)], vec![]),
                get("k", 0),
            ],
        ),
        (
            "txn-compare-value",
            vec![
                put("v", "m"),
                txn(vec![cmp_value("v", "=", "m")], vec![get("v", 0)], vec![]),
                txn(vec![cmp_value("v", "!=", "m")], vec![], vec![get("v", 0)]),
                txn(vec![cmp_value("v", "<", "n")], vec![put("r", "lt")], vec![]),
                txn(
                    vec![cmp_value("v", ">", "n")],
                    vec![put("r", "gt")],
                    vec![put("r", "le")],
                ),
                txn(
                    vec![cmp_value("nope", "!=", "m")],
                    vec![put("r", "?")],
                    vec![],
                ),
                txn(
                    vec![cmp_value("nope", "=", "")],
                    vec![put("r", "?")],
                    vec![],
                ),
                txn(
                    vec![cmp_value("v", "=", "m"), cmp_value("r", "=", "le")],
                    vec![put("both", "1")],
                    vec![put("both", "0")],
                ),
            ],
        ),
        (
            "txn-compare-version-create-lease",
            vec![
                put("c", "1"),
                put("c", "2"),
                txn(
                    vec![cmp("c", "version", "=", 2)],
                    vec![put("ok", "v2")],
                    vec![],
                ),
                txn(
                    vec![cmp("c", "version", ">", 1)],
                    vec![put("ok", "gt1")],
                    vec![],
                ),
                txn(
                    vec![cmp("c", "version", "<", 2)],
                    vec![put("ok", "lt2")],
                    vec![],
                ),
                txn(
                    vec![cmp("c", "create", "=", 1)],
                    vec![put("ok", "c1")],
                    vec![],
                ),
                txn(
                    vec![cmp("c", "create", "<", 2)],
                    vec![put("ok", "lt")],
                    vec![],
                ),
                txn(
                    vec![cmp("nope", "version", "=", 0)],
                    vec![put("ok", "v0")],
                    vec![],
                ),
                txn(
                    vec![cmp("c", "lease", "=", 0)],
                    vec![put("ok", "l0")],
                    vec![],
                ),
                txn(vec![cmp("c", "mod", "!=", 2)], vec![put("ok", "m")], vec![]),
            ],
        ),
        (
            "leases",
            vec![
                Request::LeaseGrant { id: 1, ttl: 60 },
                Request::LeaseGrant { id: 1, ttl: 60 },
                Request::LeaseGrant { id: 2, ttl: 1 },
                put_lease("l/a", "1", 1),
                put_lease("l/b", "1", 1),
                put_lease("l/c", "1", 2),
                Request::LeaseTimeToLive { id: 1 },
                Request::LeaseKeepAlive { id: 1 },
                Request::LeaseKeepAlive { id: 9 },
                Request::LeaseTimeToLive { id: 9 },
                put_lease("l/d", "1", 9),
                txn(
                    vec![cmp("l/a", "lease", "=", 1)],
                    vec![put("l/e", "on 1")],
                    vec![],
                ),
                // Put again without the lease: detached.
                put_lease("l/b", "2", 0),
                Request::LeaseTimeToLive { id: 1 },
                Request::LeaseRevoke { id: 1 },
                scan("l/", 0, false),
                Request::LeaseRevoke { id: 1 },
                Request::LeaseKeepAlive { id: 1 },
                Request::LeaseRevoke { id: 2 },
                Request::LeaseGrant { id: 3, ttl: 60 },
                Request::LeaseRevoke { id: 3 },
                scan("l/", 0, false),
            ],
        ),
        (
            "watch",
            vec![
                put("w/a", "1"),
                put("w/b", "1"),
                put("w/a", "2"),
                del("w/a", false),
                txn(vec![], vec![put("w/a", "3"), put("w/c", "1")], vec![]),
                watch("w/a", false, 1),
                watch("w/", true, 1),
                watch("w/", true, 3),
                watch("w/b", false, 5),
                Request::Watch {
                    key: "w/".into(),
                    prefix: true,
                    start_revision: 4,
                    prev_kv: false,
                },
            ],
        ),
        (
            "lease-revoke-is-one-revision",
            vec![
                Request::LeaseGrant { id: 4, ttl: 60 },
                put_lease("r/2", "x", 4),
                put_lease("r/1", "x", 4),
                put_lease("r/3", "x", 4),
                del("r/3", false),
                Request::LeaseRevoke { id: 4 },
                watch("r/", true, 1),
                scan("r/", 0, false),
            ],
        ),
    ]
}

const KEYS: &[&str] = &["a", "b", "c/1", "c/2", "c/3"];
const PREFIXES: &[&str] = &["c/", "c", "b"];
const VALUES: &[&str] = &["", "x", "y", "zz"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(VALUES).prop_map(str::to_string)
}

/// One operation inside a transaction.
fn inner() -> impl Strategy<Value = Request> {
    prop_oneof![
        3 => (key(), value(), any::<bool>()).prop_map(|(key, value, prev_kv)| Request::Put { key, value, lease: 0, prev_kv }),
        2 => (key(), 0i64..6).prop_map(|(k, rev)| get(&k, rev)),
        1 => (prop::sample::select(PREFIXES), 0i64..3).prop_map(|(p, limit)| scan(p, limit, false)),
        1 => (key(), any::<bool>()).prop_map(|(key, prev_kv)| Request::Delete { key, prefix: false, prev_kv }),
    ]
}

fn compare() -> impl Strategy<Value = Cmp> {
    let result = prop::sample::select(&["=", "!=", "<", ">"][..]);
    prop_oneof![
        (
            key(),
            prop::sample::select(&["version", "create", "mod", "lease"][..]),
            result.clone(),
            0i64..5
        )
            .prop_map(|(k, t, r, n)| cmp(&k, t, r, n)),
        (key(), result, value()).prop_map(|(k, r, v)| cmp_value(&k, r, &v)),
    ]
}

/// A request of a generated sequence (revisions as offsets from the base).
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        6 => (key(), value(), 0i64..3, any::<bool>()).prop_map(|(key, value, lease, prev_kv)| Request::Put { key, value, lease, prev_kv }),
        3 => (key(), 0i64..12).prop_map(|(k, rev)| get(&k, rev)),
        2 => (prop::sample::select(PREFIXES), 0i64..3, any::<bool>()).prop_map(|(p, limit, c)| scan(p, limit, c)),
        2 => (key(), any::<bool>()).prop_map(|(k, prefix)| del(&k, prefix)),
        4 => (prop::collection::vec(compare(), 0..3), prop::collection::vec(inner(), 0..4), prop::collection::vec(inner(), 0..3))
            .prop_map(|(c, s, f)| txn(c, s, f)),
        1 => (1i64..10).prop_map(|revision| Request::Compact { revision }),
        1 => (1i64..3, prop::sample::select(&[1i64, 60][..])).prop_map(|(id, ttl)| Request::LeaseGrant { id, ttl }),
        1 => (1i64..3).prop_map(|id| Request::LeaseRevoke { id }),
        1 => (1i64..3).prop_map(|id| Request::LeaseTimeToLive { id }),
    ]
}

fn sequence() -> impl Strategy<Value = Vec<Request>> {
    // A watch at the end sees the whole sequence's history (watches are
    // slow on the real server: it has to go quiet).
    (
        prop::collection::vec(request(), 4..24),
        prop::option::weighted(0.3, (prop::sample::select(PREFIXES), 1i64..4)),
    )
        .prop_map(|(mut ops, w)| {
            if let Some((p, start)) = w {
                ops.push(watch(p, true, start));
            }
            ops
        })
}

#[test]
fn record_vectors() {
    if std::env::var("NETRACE_RECORD_ETCD").as_deref() != Ok("1") {
        return;
    }
    let server = Server::start().expect("NETRACE_RECORD_ETCD=1 needs etcd");
    let compact = Cell::new(0);
    let mut seqs = Vec::new();
    for (n, (name, template)) in corpus().into_iter().enumerate() {
        seqs.push(run_real(&server, name, &template, n, &compact));
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = sequence();
    for g in 0..40 {
        let template = strategy.new_tree(&mut runner).unwrap().current();
        let n = seqs.len();
        seqs.push(run_real(
            &server,
            &format!("generated-{g}"),
            &template,
            n,
            &compact,
        ));
    }
    let path = format!("{}/{RECORDED}", env!("CARGO_MANIFEST_DIR"));
    let text: String = seqs
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(&path, text).unwrap();
    eprintln!("wrote {} sequences to {path}", seqs.len());
}

#[test]
fn the_recorded_sequences_replay_on_a_real_server() {
    let Some(server) = server_or_skip("recorded sequences") else {
        return;
    };
    let seqs = recorded();
    let compact = Cell::new(0);
    let mut failures = Vec::new();
    for (n, seq) in seqs.iter().enumerate() {
        let client = server.client(&format!("/netrace/{n}/"), (n as i64 + 1) * 1000);
        let base = client.revision().unwrap();
        // The same server history as when recorded, so the same revisions.
        assert_eq!(
            (base, compact.get()),
            (seq.base_revision, seq.compact_revision),
            "{}: the server is not where the recording was",
            seq.name
        );
        let real = run_concrete(&client, seq, &compact);
        for (i, (want, got)) in seq.results.iter().zip(&real).enumerate() {
            if let Some(d) = diff(want, got) {
                failures.push(format!("{} op #{i}: {d}", seq.name));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs concrete requests (already instantiated) and revokes the leases
/// left, as `run_real` does.
fn run_concrete(client: &oracle::Client, seq: &Sequence, compact: &Cell<i64>) -> Vec<Reply> {
    let ops = &seq.ops;
    let mut out = Vec::new();
    for op in ops {
        let r = client
            .apply(op)
            .unwrap_or_else(|e| panic!("{}: {e}", seq.name));
        if let (Request::Compact { revision }, None) = (op, &r.error) {
            compact.set(*revision);
        }
        out.push(r);
    }
    let granted: std::collections::BTreeSet<i64> = ops
        .iter()
        .filter_map(|op| match op {
            Request::LeaseGrant { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    for id in granted {
        let _ = client.apply(&Request::LeaseRevoke { id });
    }
    out
}

#[test]
fn generated_sequences_get_the_same_answers_from_the_model_and_a_real_server() {
    let Some(server) = server_or_skip("generated sequences") else {
        return;
    };
    let compact = Cell::new(0);
    let counter = Cell::new(0usize);
    // A fixed seed, so that a run is repeatable; NETRACE_ETCD_SEED and
    // NETRACE_ETCD_CASES search further.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = env("NETRACE_ETCD_SEED", 1);
    let cases = env("NETRACE_ETCD_CASES", 48) as u32;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            max_shrink_iters: 200,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    eprintln!("{cases} generated sequences, NETRACE_ETCD_SEED={seed}");
    let result = runner.run(&sequence(), |template| {
        let n = counter.get();
        counter.set(n + 1);
        let seq = run_real(&server, &format!("case-{n}"), &template, n, &compact);
        let mut store = Etcd::resume(seq.base_revision, seq.compact_revision);
        let model = run_model(&mut store, &seq.ops).expect("generated requests are modelled");
        for (i, (real, model)) in seq.results.iter().zip(&model).enumerate() {
            if let Some(d) = diff(real, model) {
                return Err(TestCaseError::fail(format!(
                    "op #{i} {} — real etcd (want) vs model (got): {d}\n{}",
                    serde_json::to_string(&seq.ops[i]).unwrap(),
                    serde_json::to_string(&seq).unwrap()
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn a_stopped_server_leaves_no_process_and_no_directory() {
    let Some(server) = server_or_skip("cleanup") else {
        return;
    };
    let pid = server.pid().unwrap();
    let dir = server.dir().to_path_buf();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(dir.exists());
    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists(),
        "etcd {pid} survived its drop"
    );
    assert!(!dir.exists(), "{} survived", dir.display());
    // And a failing test: the server drops while unwinding.
    let dir2 = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = Server::start().unwrap();
        *dir2.lock().unwrap() = Some((s.pid().unwrap(), s.dir().to_path_buf()));
        panic!("a test fails with a server running");
    }));
    assert!(r.is_err());
    let (pid2, dir2) = dir2.into_inner().unwrap().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{pid2}/cmdline")).exists());
    assert!(!dir2.exists());
}

/// Not a test of its own: the child process of the signal test.
#[test]
#[ignore = "run by a_killed_test_process_leaves_nothing"]
fn etcd_child_for_the_signal_test() {
    if std::env::var("NETRACE_ETCD_CHILD").as_deref() != Ok("1") {
        return;
    }
    let server = Server::start().unwrap();
    println!(
        "SERVER {} {}",
        server.pid().unwrap(),
        server.dir().display()
    );
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_test_process_leaves_nothing() {
    let Some(probe) = server_or_skip("signals") else {
        return;
    };
    drop(probe);
    for signal in [libc::SIGTERM, libc::SIGKILL, libc::SIGINT] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "etcd_child_for_the_signal_test",
                "--nocapture",
            ])
            .env("NETRACE_ETCD_CHILD", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (pid, dir) = loop {
            let line = lines.next().expect("the child printed its server").unwrap();
            if let Some(rest) = line.strip_prefix("SERVER ") {
                let (pid, dir) = rest.split_once(' ').unwrap();
                break (pid.parse::<u32>().unwrap(), std::path::PathBuf::from(dir));
            }
        };
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, signal);
        }
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists() {
            assert!(
                Instant::now() < deadline,
                "etcd {pid} outlived its killed parent (signal {signal})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The next start (here: the sweep it begins with) removes the
        // directory of the dead process.
        oracle::sweep_stale();
        assert!(
            !dir.exists(),
            "{} left after signal {signal}",
            dir.display()
        );
    }
}

#[test]
fn a_restart_renews_every_lease_for_its_ttl_and_the_election_timeout() {
    // The model's rule (`Etcd::restart`): keys and leases are durable, and
    // each lease gets its full TTL plus the election timeout again. A real
    // member restarted with a lease near its end must keep it past its
    // old deadline and report a TTL the model predicts.
    let Some(mut server) = server_or_skip("leases across a restart") else {
        return;
    };
    let client = server.client("/restart/", 0);
    let ttl = 3;
    let ok = |r: Reply| assert!(r.error.is_none(), "{r:?}");
    ok(client.apply(&Request::LeaseGrant { id: 1, ttl }).unwrap());
    ok(client.apply(&put_lease("k", "v", 1)).unwrap());
    let granted = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let before = client.lease_remaining(1).unwrap();
    server.restart().unwrap();
    let left = client.lease_remaining(1).unwrap();
    let restarted = granted.elapsed();
    // The model, on its own clock: granted, 1.5 s and the restart's own
    // duration pass, it restarts, then less than a second until the
    // question (the member promotes its lessor just before it answers).
    let mut m: Etcd<String> = Etcd::new();
    m.lease_grant(1, ttl).unwrap();
    m.advance(1500);
    assert_eq!(m.lease_time_to_live(1).unwrap().1, before);
    m.restart();
    m.advance(999);
    let predicted = m.lease_time_to_live(1).unwrap().1;
    assert_eq!(
        left, predicted,
        "after a restart {restarted:?} from the grant, the server says {left} s left (before it: {before} s)"
    );
    // Past the old deadline the key is still there.
    std::thread::sleep(Duration::from_secs(ttl as u64).saturating_sub(granted.elapsed()));
    std::thread::sleep(Duration::from_millis(500));
    let r = client.apply(&get("k", 0)).unwrap();
    assert_eq!(
        r.kvs.map(|k| k.len()),
        Some(1),
        "the key outlived its old deadline"
    );
    // And it expires in the end: TTL + 1 s after the restart, plus the
    // lessor's revoke loop.
    std::thread::sleep(
        (Duration::from_secs(ttl as u64 + 2)).saturating_sub(granted.elapsed() - restarted),
    );
    let r = client.apply(&get("k", 0)).unwrap();
    assert_eq!(
        r.kvs.map(|k| k.len()),
        Some(0),
        "the lease expired in the end"
    );
}
