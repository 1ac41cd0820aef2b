//! `netrace ipam ops`: operations through the faithful libnetwork bitseq,
//! one JSON line in, one JSON line out (the recorded vectors' format).

use std::io::{BufRead, Write};

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
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = line.map_err(|e| InputError::whole("stdin", format!("cannot read: {e}"), ""))?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line).map_err(|e| InputError {
            file: "stdin".into(),
            line: n + 1,
            column: e.column(),
            message: format!("not an op: {e}"),
            hint: "one JSON object per line, e.g. {\"op\":\"set_any\"} or {\"op\":\"unset\",\"ordinal\":5}".into(),
        })?;
        let result = apply(&mut handle, &op);
        let _ = writeln!(out, "{}", to_go_json(&result));
    }
    let _ = out.flush();
    Ok(0)
}
