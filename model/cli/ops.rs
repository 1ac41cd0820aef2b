//! `netrace ipam ops`: operations through the faithful libnetwork bitseq,
//! one JSON line in, one JSON line out (the recorded vectors' format).

use std::io::{BufRead, Read, Write};

use super::OpsArgs;
use crate::ipam::bitseq::{Bitseq, Version};
use crate::ipam::ops::{apply, to_go_json, Op};
use crate::scenario::InputError;

pub(crate) fn cmd_ipam_ops(a: OpsArgs) -> Result<u8, InputError> {
    let version = Version::parse(&a.version).ok_or_else(|| {
        InputError::whole(
            "--version",
            format!("unknown bitseq version {:?}", a.version),
            "use --version 17.05 or --version 2023",
        )
    })?;
    if a.bits == 0 || a.bits > 1 << 32 {
        return Err(InputError::whole(
            "--bits",
            format!("--bits {} is impossible", a.bits),
            "give a handle size from 1 to 4294967296 bits",
        ));
    }
    let mut handle = Bitseq::new(a.bits, version);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut buf = Vec::new();
    let mut ops = 0usize;
    for n in 1.. {
        buf.clear();
        // Read at most one byte past the limit, so a huge line is refused
        // without being held in memory.
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| InputError::whole("stdin", format!("cannot read: {e}"), ""))?;
        if read == 0 {
            break;
        }
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            return Err(InputError {
                file: "stdin".into(),
                line: n,
                column: MAX_LINE_BYTES + 1,
                message: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                hint: "one op per line, e.g. {\"op\":\"set_any\"}".into(),
            });
        }
        let line = std::str::from_utf8(&buf).map_err(|_| InputError {
            file: "stdin".into(),
            line: n,
            column: 1,
            message: "the line is not UTF-8".into(),
            hint: "ops are JSON text".into(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        ops += 1;
        if ops > MAX_OPS {
            return Err(InputError {
                file: "stdin".into(),
                line: n,
                column: 1,
                message: format!("more than {MAX_OPS} ops"),
                hint: "split the input into runs of at most that many ops".into(),
            });
        }
        let op: Op = serde_json::from_str(line).map_err(|e| InputError {
            file: "stdin".into(),
            line: n,
            column: e.column(),
            message: format!("not an op: {e}"),
            hint: "one JSON object per line, e.g. {\"op\":\"set_any\"} or {\"op\":\"unset\",\"ordinal\":5}".into(),
        })?;
        let result = apply(&mut handle, &op);
        writeln!(out, "{}", to_go_json(&result)).map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(0)
}

/// The longest op line `ipam ops` reads.
pub const MAX_LINE_BYTES: usize = 4096;
/// The most ops one `ipam ops` run applies (the run-length bitseq costs
/// up to its run count per op, so unbounded input could run for hours).
pub const MAX_OPS: usize = 100_000;

fn write_error(e: std::io::Error) -> InputError {
    InputError::whole(
        "stdout",
        format!("cannot write the output: {e}"),
        "check the disk or the pipe that stdout goes to",
    )
}
