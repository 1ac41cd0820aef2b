//! The etcd oracle's start-or-skip rule, for tests/etcd.rs and
//! tests/etcd_protocol.rs.

use netrace::store::oracle::{self, Server};

/// A fresh server, or `None` after saying loudly why not: `ETCD ORACLE
/// SKIPPED`, or a failure under `NETRACE_REQUIRE_ETCD=1` (CI sets it).
pub fn server_or_skip(test: &str) -> Option<Server> {
    match oracle::binary().and_then(|_| Server::start()) {
        Ok(s) => Some(s),
        Err(e) => {
            if std::env::var("NETRACE_REQUIRE_ETCD").as_deref() == Ok("1") {
                panic!("NETRACE_REQUIRE_ETCD=1 but the etcd oracle cannot run: {e}");
            }
            eprintln!("ETCD ORACLE SKIPPED ({test}): {e}");
            None
        }
    }
}
