//! Every recorded result of libnetwork's real `bitseq` (tests/data/*.jsonl),
//! replayed through the model, field by field.

use netrace::ipam::bitseq::{Bitseq, Version};
use netrace::ipam::ops::{apply, to_go_json, Vector};

fn check_file(name: &str, version: Version) -> usize {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut checked = 0;
    let mut failures = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let vector: Vector =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", line_no + 1));
        assert_eq!(
            Version::parse(&vector.version),
            Some(version),
            "{path}:{}",
            line_no + 1
        );
        assert_eq!(vector.ops.len(), vector.results.len());
        let mut handle = Bitseq::new(vector.bits, version);
        for (i, (op, want)) in vector.ops.iter().zip(&vector.results).enumerate() {
            let got = apply(&mut handle, op);
            if &got != want {
                failures.push(format!(
                    "{name} line {} (bits {}, seed {}) op #{i} {}:\n   want {}\n   got  {}",
                    line_no + 1,
                    vector.bits,
                    vector.seed,
                    to_go_json(op),
                    to_go_json(want),
                    to_go_json(&got)
                ));
                break;
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors diverge:\n{}",
        failures.len(),
        failures.join("\n")
    );
    checked
}

#[test]
fn bitseq_17_05_reproduces_every_recorded_result() {
    assert_eq!(
        check_file("libnetwork-bitseq-17.05.jsonl", Version::V17_05),
        3714
    );
}

#[test]
fn bitseq_2023_reproduces_every_recorded_result() {
    assert_eq!(
        check_file("libnetwork-bitseq-2023.jsonl", Version::V2023),
        3714
    );
}
