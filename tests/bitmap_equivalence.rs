//! The fast pool answers exactly like the faithful 2023 `bitseq`: every
//! recorded result of libnetwork's real code (tests/data), and random
//! operation sequences on random pool sizes, compared op by op on every
//! field (ordinal or error, `unselected`, `curr`, the run-length list).

use netrace::ipam::bitmap::FastPool;
use netrace::ipam::bitseq::{Bitseq, Sequence, Version};
use netrace::ipam::ops::{apply, to_go_json, Op, OpKind, Vector};
use proptest::prelude::*;

#[test]
fn fast_pool_reproduces_every_recorded_2023_result() {
    let path = format!(
        "{}/tests/data/libnetwork-bitseq-2023.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut checked = 0;
    for (line_no, line) in text.lines().enumerate() {
        let vector: Vector =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", line_no + 1));
        let mut pool = FastPool::new(vector.bits);
        for (i, (op, want)) in vector.ops.iter().zip(&vector.results).enumerate() {
            let got = pool.apply(op);
            assert_eq!(
                &got,
                want,
                "line {} (bits {}, seed {}) op #{i} {}:\n   want {}\n   got  {}",
                line_no + 1,
                vector.bits,
                vector.seed,
                to_go_json(op),
                to_go_json(want),
                to_go_json(&got)
            );
            checked += 1;
        }
        pool.assert_consistent();
    }
    // The same count as tests/vectors.rs: every op of the file.
    assert_eq!(checked, 3714);
}

/// Fails unless the faithful list is canonical (no two neighbours with the
/// same block, no empty run), which is what makes comparing the printed
/// lists meaningful: the fast pool can only print the canonical form.
fn assert_canonical(handle: &Bitseq) {
    let seqs: &[Sequence] = handle.sequences();
    for pair in seqs.windows(2) {
        assert_ne!(pair[0].block, pair[1].block, "{}", handle.sequence_string());
    }
    if handle.bits() > 0 {
        assert!(
            seqs.iter().all(|s| s.count > 0),
            "{}",
            handle.sequence_string()
        );
    }
}

/// Runs one op on the faithful handle and on the fast pool; compares the
/// ordinal or error, `unselected` and `curr`.
fn step(handle: &mut Bitseq, pool: &mut FastPool, op: &Op) -> Result<(), TestCaseError> {
    let (want, got) = match op.op {
        OpKind::SetAny => (
            handle.set_any(op.serial).map(Some),
            pool.set_any(op.serial).map(Some),
        ),
        OpKind::SetAnyInRange => (
            handle
                .set_any_in_range(op.start, op.end, op.serial)
                .map(Some),
            pool.set_any_in_range(op.start, op.end, op.serial).map(Some),
        ),
        OpKind::Set => (
            handle.set(op.ordinal).map(|_| None),
            pool.set(op.ordinal).map(|_| None),
        ),
        OpKind::Unset => (
            handle.unset(op.ordinal).map(|_| None),
            pool.unset(op.ordinal).map(|_| None),
        ),
    };
    prop_assert_eq!(got, want, "{}", to_go_json(op));
    prop_assert_eq!(pool.unselected(), handle.unselected(), "{}", to_go_json(op));
    prop_assert_eq!(pool.curr(), handle.curr(), "{}", to_go_json(op));
    Ok(())
}

/// Applies `prefix` (results compared, lists only at its end), then `ops`
/// comparing every field after every op: result, counter, cursor and the
/// run-length list (as `Sequence`s: the printed string is a function of
/// them, and `tests/vectors.rs` pins the printing).
fn compare(bits: u64, prefix: &[Op], ops: &[Op]) -> Result<(), TestCaseError> {
    let mut handle = Bitseq::new(bits, Version::V2023);
    let mut pool = FastPool::new(bits);
    for op in prefix {
        step(&mut handle, &mut pool, op)?;
    }
    assert_canonical(&handle);
    prop_assert_eq!(pool.sequences(), handle.sequences().to_vec());
    for (i, op) in ops.iter().enumerate() {
        step(&mut handle, &mut pool, op).map_err(|e| {
            TestCaseError::fail(format!("bits {bits}, op #{i} after the prefix: {e}"))
        })?;
        assert_canonical(&handle);
        prop_assert_eq!(pool.sequences(), handle.sequences().to_vec(), "op #{}", i);
    }
    prop_assert_eq!(pool.sequence_string(), handle.sequence_string());
    prop_assert_eq!(pool.free_bits(), handle.free_bits());
    pool.assert_consistent();
    Ok(())
}

#[test]
fn apply_reports_like_the_recorder() {
    let mut handle = Bitseq::new(100, Version::V2023);
    let mut pool = FastPool::new(100);
    for ordinal in [0, 99, 5, 5, 100] {
        let op = Op {
            op: OpKind::Set,
            start: 0,
            end: 0,
            ordinal,
            serial: false,
        };
        assert_eq!(pool.apply(&op), apply(&mut handle, &op));
    }
}

fn pool_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 1u64..=2048,
        1 => prop::sample::select(vec![4095u64, 4096, 4097, 65535, 65536]),
    ]
}

/// An ordinal: mostly inside the pool, sometimes just past its end; near
/// the ends and at word and block boundaries often.
fn ordinal(bits: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0..bits,
        1 => bits.saturating_sub(3)..bits + 3,
        1 => prop::sample::select(vec![0u64, 31, 32, 63, 64, 65, 127, 128])
            .prop_map(move |o| o % (bits + 1)),
    ]
}

fn op(bits: u64) -> impl Strategy<Value = Op> {
    let make = |op, start, end, ordinal, serial| Op {
        op,
        start,
        end,
        ordinal,
        serial,
    };
    prop_oneof![
        6 => any::<bool>().prop_map(move |serial| make(OpKind::SetAny, 0, 0, 0, serial)),
        3 => (ordinal(bits), ordinal(bits), any::<bool>()).prop_map(move |(a, b, serial)| {
            // Mostly valid ranges, sometimes reversed (InvalidRange).
            make(OpKind::SetAnyInRange, a, b, 0, serial)
        }),
        2 => ordinal(bits).prop_map(move |o| make(OpKind::Set, 0, 0, o, false)),
        4 => ordinal(bits).prop_map(move |o| make(OpKind::Unset, 0, 0, o, false)),
    ]
}

fn case() -> impl Strategy<Value = (u64, Vec<Op>)> {
    pool_bits().prop_flat_map(|bits| {
        // Enough ops to fill small pools and wrap the serial cursor.
        let len = 1..=(bits.min(400) as usize * 3).max(8);
        (Just(bits), prop::collection::vec(op(bits), len))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fast_pool_equals_bitseq_2023_op_by_op((bits, ops) in case()) {
        compare(bits, &[], &ops)?;
    }

    /// Pre-fill a pool to a random level first (so large pools get
    /// fragmented and full), then run the random ops.
    #[test]
    fn fast_pool_equals_bitseq_2023_when_fragmented(
        (bits, ops) in case(),
        fill in 0u64..=100,
        seed in any::<u64>(),
    ) {
        let mut prefix = Vec::new();
        let mut x = seed | 1;
        for _ in 0..bits * fill / 100 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            prefix.push(Op { op: OpKind::Set, start: 0, end: 0, ordinal: x % bits, serial: false });
        }
        compare(bits, &prefix, &ops)?;
    }
}

#[test]
fn whole_slash16_fill_and_drain_match() {
    let bits = 65536;
    let mut handle = Bitseq::new(bits, Version::V2023);
    let mut pool = FastPool::new(bits);
    for i in 0..=bits {
        let serial = i % 3 == 0;
        assert_eq!(pool.set_any(serial), handle.set_any(serial), "set_any #{i}");
        if i % 4096 == 0 {
            assert_eq!(pool.sequence_string(), handle.sequence_string());
        }
    }
    for o in (0..bits).step_by(7) {
        assert_eq!(pool.unset(o), handle.unset(o));
    }
    for i in 0..bits / 7 + 2 {
        assert_eq!(pool.set_any(i % 2 == 0), handle.set_any(i % 2 == 0));
    }
    assert_eq!(pool.sequence_string(), handle.sequence_string());
    assert_eq!(pool.unselected(), handle.unselected());
    assert_eq!(pool.to_bitseq(), handle);
}
