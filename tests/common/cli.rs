//! The `netrace` binary as the command-line tests run it: from the crate's
//! root, with its output read back as text or JSON rows, and scratch files
//! under cargo's per-target temporary directory.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The built `netrace` binary, run from the crate's root (so the bundled
/// `scenarios/` and `tests/data/` paths resolve).
pub fn netrace() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netrace"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs `netrace ARGS...` to completion.
pub fn run(args: &[&str]) -> Output {
    netrace().args(args).output().expect("netrace runs")
}

/// Standard output as text (it must be UTF-8).
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// Standard error as text (it must be UTF-8).
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// Standard output then standard error, lossily decoded.
pub fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Standard output as JSON lines, one value per line (`--format json`).
pub fn json_rows(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A test binary's scratch directory `dir` under `CARGO_TARGET_TMPDIR`,
/// created if missing.
pub fn scratch_dir(dir: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The path of scratch file `name` in scratch directory `dir`.
pub fn scratch(dir: &str, name: &str) -> PathBuf {
    scratch_dir(dir).join(name)
}

/// Scratch file `name` in `dir`, written with `text`.
pub fn scratch_with(dir: &str, name: &str, text: &str) -> PathBuf {
    let p = scratch(dir, name);
    std::fs::write(&p, text).unwrap();
    p
}
