//! Replays every committed fuzz corpus file through the target bodies on
//! stable Rust, so a case the fuzzer once found stays found (and fixed).
//! The targets themselves live in `fuzz/` (cargo-fuzz, nightly).

use std::path::Path;

use netrace::fuzzing::{self, Expect};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the {target} corpus is empty");
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn ipam_schedule_corpus_replays_clean() {
    for (name, data) in corpus("ipam_schedule") {
        eprintln!("replaying {name}");
        fuzzing::ipam_schedule(&data, Expect::Fixed);
    }
}

#[test]
fn l2_orderings_corpus_replays_clean() {
    for (name, data) in corpus("l2_orderings") {
        eprintln!("replaying {name}");
        fuzzing::l2_orderings(&data, Expect::Fixed);
    }
}

#[test]
fn scenario_parse_corpus_replays_clean() {
    for (_, data) in corpus("scenario_parse") {
        fuzzing::scenario_parse(&data);
    }
}

#[test]
fn frame_parse_corpus_replays_clean() {
    for (_, data) in corpus("frame_parse") {
        fuzzing::frame_parse(&data);
    }
}
