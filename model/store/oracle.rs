//! The etcd oracle: a real etcd server on 127.0.0.1, and a client that puts
//! [`vector::Request`](super::vector::Request)s to it.
//!
//! [`Server::start`] runs Debian's `etcd` (package `etcd-server`, 3.4) as a
//! single member listening on two free loopback ports, with a fresh data
//! directory under the system's temporary directory named
//! `netrace-etcd-<test pid>-<n>`. It is always stopped and its directory
//! removed:
//! - on drop (a test that passes, or fails by panicking): SIGTERM, then
//!   SIGKILL after 5 s, then the directory;
//! - when the process that started it dies of a signal: the server runs
//!   with `PR_SET_PDEATHSIG = SIGKILL` (Linux), so it dies with the thread
//!   that started it, and [`Server::start`] first removes the directories
//!   of owners that are no longer alive ([`sweep_stale`]). Because the death
//!   signal follows the *thread*, a [`Server`] is not `Send`: it stays on
//!   the thread that started it (clients may go anywhere).
//!
//! [`Client`] speaks etcd's gRPC gateway (JSON over HTTP/1.1, the
//! `/v3/kv/*`, `/v3/lease/*` and `/v3/watch` routes every etcd 3.4 serves
//! on its client URL) with `ureq`, a small blocking HTTP client: no async
//! runtime, no protobuf compiler, and every field of the answer is in the
//! JSON. Each client works in a key namespace of its own and offsets lease
//! IDs, so that several sequences share one server without seeing each
//! other (see [`super::vector::Sequence`]).

use std::io::{BufRead, BufReader};
use std::marker::PhantomData;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::vector::{Cmp, Ev, Kv, Reply, Request};

/// The etcd binary: `$NETRACE_ETCD`, else `etcd` on the `PATH`.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NETRACE_ETCD") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no etcd on the PATH: install Debian's etcd-server (apt-get install etcd-server) \
             or set NETRACE_ETCD to an etcd 3.4 binary"
                .to_string()
        })
}

/// The version `etcd --version` prints (`3.4.23`).
pub fn version() -> Result<String, String> {
    let out = Command::new(binary()?)
        .arg("--version")
        .output()
        .map_err(|e| format!("etcd --version: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("etcd --version printed no version: {text}"))
}

const DIR_PREFIX: &str = "netrace-etcd-";

static STARTED: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> Result<(TcpListener, u16), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let port = l.local_addr().map_err(|e| e.to_string())?.port();
    Ok((l, port))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the data directories of servers whose starting process is gone
/// (it died of a signal before it could clean up).
pub fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let owner = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if owner.is_some_and(|pid| !alive(pid)) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A running single-member etcd.
pub struct Server {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    url: String,
    // Not Send: the server dies with the thread that started it.
    _thread_bound: PhantomData<*const ()>,
}

impl Server {
    /// Starts a server on two free loopback ports with a fresh data
    /// directory, and waits until it answers (at most 20 s).
    pub fn start() -> Result<Server, String> {
        sweep_stale();
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut last = String::new();
        // A port found free may be taken before etcd binds it: try again.
        for _ in 0..3 {
            let ((l1, client_port), (l2, peer_port)) = (free_port()?, free_port()?);
            drop((l1, l2));
            let mut server = Server {
                child: None,
                dir: dir.clone(),
                client_port,
                peer_port,
                url: format!("http://127.0.0.1:{client_port}"),
                _thread_bound: PhantomData,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last = e;
                    server.kill();
                    let _ = std::fs::remove_dir_all(dir.join("data"));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let (c, p) = (self.client_port, self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(binary()?);
        cmd.arg("--name")
            .arg("netrace")
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .arg("--listen-client-urls")
            .arg(format!("http://127.0.0.1:{c}"))
            .arg("--advertise-client-urls")
            .arg(format!("http://127.0.0.1:{c}"))
            .arg("--listen-peer-urls")
            .arg(format!("http://127.0.0.1:{p}"))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://127.0.0.1:{p}"))
            .arg("--initial-cluster")
            .arg(format!("netrace=http://127.0.0.1:{p}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; it only sets a flag of
            // the child before exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary().unwrap_or_default().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = Client::new(&self.url, "", 0);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "etcd exited ({status}) at start; its log:\n{}",
                    self.log_tail()
                ));
            }
            if client.revision().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd did not answer on {} within 20 s; its log:\n{}",
                    self.url,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process ID (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Its directory (data and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client in namespace `ns` with lease IDs offset by `lease_offset`.
    pub fn client(&self, ns: &str, lease_offset: i64) -> Client {
        Client::new(&self.url, ns, lease_offset)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Restarts the member: killed hard (SIGKILL, as a power failure
    /// would), then started again on the same ports and data directory.
    pub fn restart(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn unb64(v: &Value) -> Result<String, String> {
    let s = v.as_str().unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("bad base64 {s:?}: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

/// An int64 of the gateway's JSON: a string, absent when zero.
fn num(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// `key` + 1: the `range_end` of a prefix.
fn prefix_end(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return base64::engine::general_purpose::STANDARD.encode(&bytes);
        }
    }
    // Every byte 0xff: all keys after it ("\0" in etcd's convention).
    b64("\0")
}

/// A client of one server, in one key namespace.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    ns: String,
    lease_offset: i64,
}

impl Client {
    /// A client of the server at `url` (`http://host:port`), whose keys
    /// live under `ns` and whose lease `n` is the server's `n +
    /// lease_offset`; requests time out after 10 s.
    pub fn new(url: &str, ns: &str, lease_offset: i64) -> Client {
        Client::with_timeout(url, ns, lease_offset, Duration::from_secs(10))
    }

    /// The same with a request deadline of its own.
    pub fn with_timeout(url: &str, ns: &str, lease_offset: i64, timeout: Duration) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(timeout)
                .timeout_read(timeout)
                .timeout_write(timeout)
                .build(),
            url: url.trim_end_matches('/').to_string(),
            ns: ns.to_string(),
            lease_offset,
        }
    }

    fn post(&self, route: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}{route}", self.url);
        let resp = match self.agent.post(&url).send_json(body.clone()) {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(format!("POST {url}: {e}")),
        };
        // The gateway ends an error's chunked body with an HTTP trailer
        // (`Grpc-Trailer-Content-Type`), which ureq's chunk decoder rejects
        // after the body has arrived: keep what was read, and parse the
        // first JSON value in it.
        let mut body = Vec::new();
        let read = std::io::Read::read_to_end(&mut resp.into_reader(), &mut body);
        let first = serde_json::Deserializer::from_slice(&body)
            .into_iter::<Value>()
            .next();
        match (first, read) {
            (Some(Ok(v)), _) => Ok(v),
            (_, Err(e)) => Err(format!("POST {url}: {e}")),
            (Some(Err(e)), Ok(_)) => Err(format!("POST {url}: bad JSON answer: {e}")),
            (None, Ok(_)) => Err(format!("POST {url}: an empty answer")),
        }
    }

    /// The server's current revision.
    pub fn revision(&self) -> Result<i64, String> {
        let v = self.post(
            "/v3/kv/range",
            &json!({"key": b64("\0"), "count_only": true}),
        )?;
        if let Some(e) = v.get("error") {
            return Err(e.to_string());
        }
        Ok(num(v.pointer("/header/revision")))
    }

    /// The seconds lease `id` has left on the server's clock
    /// (`LeaseTimeToLive`'s `TTL`; -1 for an unknown lease). Wall clock,
    /// so not part of the compared answers.
    pub fn lease_remaining(&self, id: i64) -> Result<i64, String> {
        let v = self.post(
            "/v3/lease/timetolive",
            &json!({"ID": self.lease(id).to_string()}),
        )?;
        if let Some(e) = v.get("error") {
            return Err(e.to_string());
        }
        Ok(num(v.get("TTL")))
    }

    fn key(&self, k: &str) -> String {
        b64(&format!("{}{k}", self.ns))
    }

    fn range_end(&self, k: &str, prefix: bool) -> Option<String> {
        prefix.then(|| prefix_end(&format!("{}{k}", self.ns)))
    }

    fn lease(&self, id: i64) -> i64 {
        if id == 0 {
            0
        } else {
            id + self.lease_offset
        }
    }

    fn strip(&self, key: &Value) -> Result<String, String> {
        let k = unb64(key)?;
        k.strip_prefix(&self.ns)
            .map(str::to_string)
            .ok_or_else(|| format!("key {k:?} is outside namespace {:?}", self.ns))
    }

    fn kv(&self, v: &Value) -> Result<Kv, String> {
        let lease = num(v.get("lease"));
        Ok(Kv {
            key: self.strip(&v["key"])?,
            create_revision: num(v.get("create_revision")),
            mod_revision: num(v.get("mod_revision")),
            version: num(v.get("version")),
            value: unb64(v.get("value").unwrap_or(&Value::Null))?,
            lease: if lease == 0 {
                0
            } else {
                lease - self.lease_offset
            },
        })
    }

    fn kvs(&self, v: Option<&Value>) -> Result<Vec<Kv>, String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().map(|x| self.kv(x)).collect())
            .unwrap_or(Ok(Vec::new()))
    }

    fn body(&self, req: &Request) -> Result<Value, String> {
        Ok(match req {
            Request::Put {
                key,
                value,
                lease,
                prev_kv,
            } => {
                json!({"key": self.key(key), "value": b64(value), "lease": self.lease(*lease).to_string(), "prev_kv": prev_kv})
            }
            Request::Range {
                key,
                prefix,
                revision,
                limit,
                count_only,
            } => {
                let mut b = json!({"key": self.key(key), "revision": revision.to_string(), "limit": limit.to_string(), "count_only": count_only});
                if let Some(end) = self.range_end(key, *prefix) {
                    b["range_end"] = json!(end);
                }
                b
            }
            Request::Delete {
                key,
                prefix,
                prev_kv,
            } => {
                let mut b = json!({"key": self.key(key), "prev_kv": prev_kv});
                if let Some(end) = self.range_end(key, *prefix) {
                    b["range_end"] = json!(end);
                }
                b
            }
            other => return Err(format!("{other:?} has no single-request body")),
        })
    }

    fn compare(&self, c: &Cmp) -> Result<Value, String> {
        let result = match c.result.as_str() {
            "=" => "EQUAL",
            "!=" => "NOT_EQUAL",
            "<" => "LESS",
            ">" => "GREATER",
            r => return Err(format!("compare result {r:?}")),
        };
        let mut v = json!({"key": self.key(&c.key), "result": result});
        let n = c.number.to_string();
        match c.target.as_str() {
            "version" => {
                v["target"] = json!("VERSION");
                v["version"] = json!(n);
            }
            "create" => {
                v["target"] = json!("CREATE");
                v["create_revision"] = json!(n);
            }
            "mod" => {
                v["target"] = json!("MOD");
                v["mod_revision"] = json!(n);
            }
            "lease" => {
                v["target"] = json!("LEASE");
                v["lease"] = json!(self.lease(c.number).to_string());
            }
            "value" => {
                v["target"] = json!("VALUE");
                v["value"] = json!(b64(c.value.as_deref().unwrap_or("")));
            }
            t => return Err(format!("compare target {t:?}")),
        }
        Ok(v)
    }

    fn op(&self, req: &Request) -> Result<Value, String> {
        let kind = match req {
            Request::Put { .. } => "request_put",
            Request::Range { .. } => "request_range",
            Request::Delete { .. } => "request_delete_range",
            other => return Err(format!("{other:?} inside a txn")),
        };
        Ok(json!({ kind: self.body(req)? }))
    }

    /// The reply to a put, range or delete, from its answer `v`.
    fn single(&self, req: &Request, v: &Value) -> Result<Reply, String> {
        let revision = Some(num(v.pointer("/header/revision")));
        Ok(match req {
            Request::Put { .. } => Reply {
                revision,
                prev_kv: v.get("prev_kv").map(|p| self.kv(p)).transpose()?,
                ..Reply::default()
            },
            Request::Range { .. } => Reply {
                revision,
                kvs: Some(self.kvs(v.get("kvs"))?),
                count: Some(num(v.get("count"))),
                more: Some(v.get("more").and_then(Value::as_bool).unwrap_or(false)),
                ..Reply::default()
            },
            Request::Delete { .. } => Reply {
                revision,
                deleted: Some(num(v.get("deleted"))),
                prev_kvs: Some(self.kvs(v.get("prev_kvs"))?),
                ..Reply::default()
            },
            other => return Err(format!("{other:?} is not a single request")),
        })
    }

    /// Puts one request to the server and reads its answer the way
    /// [`super::vector::apply`] gives the model's. `Err` only when the
    /// server could not be asked (transport, timeout, an answer that is not
    /// etcd's); a request etcd refuses is an `Ok` reply with its error.
    pub fn apply(&self, req: &Request) -> Result<Reply, String> {
        let (route, body) = match req {
            Request::LeaseKeepAlive { id } => return self.keep_alive(*id),
            Request::Watch {
                key,
                prefix,
                start_revision,
                prev_kv,
            } => return self.watch(key, *prefix, *start_revision, *prev_kv),
            _ => self.route_body(req)?,
        };
        let v = self.post(route, &body)?;
        self.reply(req, route, &v)
    }

    /// The faults of a real network, for the protocol runs: the request is
    /// sent whole and the connection closed `wait` later without reading
    /// the answer (`answer_lost`: the server applies it, the client never
    /// learns), or only its first half is sent (`!answer_lost`: the request
    /// is lost on the way, the server drops the connection unapplied).
    pub fn send_faulty(
        &self,
        req: &Request,
        answer_lost: bool,
        wait: Duration,
    ) -> Result<(), String> {
        use std::io::Write;
        let (route, body) = self.route_body(req)?;
        let addr = self
            .url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{}: not an http:// URL", self.url))?;
        let body = body.to_string();
        let head = format!(
            "POST {route} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut conn = std::net::TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        let sent = if answer_lost {
            &body[..]
        } else {
            &body[..body.len() / 2]
        };
        conn.write_all(head.as_bytes())
            .and_then(|_| conn.write_all(sent.as_bytes()))
            .and_then(|_| conn.flush())
            .map_err(|e| format!("{addr}: {e}"))?;
        std::thread::sleep(wait);
        drop(conn);
        Ok(())
    }

    fn route_body(&self, req: &Request) -> Result<(&'static str, Value), String> {
        Ok(match req {
            Request::Put { .. } => ("/v3/kv/put", self.body(req)?),
            Request::Range { .. } => ("/v3/kv/range", self.body(req)?),
            Request::Delete { .. } => ("/v3/kv/deleterange", self.body(req)?),
            Request::Txn {
                compare,
                success,
                failure,
            } => (
                "/v3/kv/txn",
                json!({
                    "compare": compare.iter().map(|c| self.compare(c)).collect::<Result<Vec<_>, _>>()?,
                    "success": success.iter().map(|o| self.op(o)).collect::<Result<Vec<_>, _>>()?,
                    "failure": failure.iter().map(|o| self.op(o)).collect::<Result<Vec<_>, _>>()?,
                }),
            ),
            Request::Compact { revision } => (
                "/v3/kv/compaction",
                json!({"revision": revision.to_string()}),
            ),
            Request::LeaseGrant { id, ttl } => (
                "/v3/lease/grant",
                json!({"ID": self.lease(*id).to_string(), "TTL": ttl.to_string()}),
            ),
            Request::LeaseRevoke { id } => (
                "/v3/lease/revoke",
                json!({"ID": self.lease(*id).to_string()}),
            ),
            Request::LeaseTimeToLive { id } => (
                "/v3/lease/timetolive",
                json!({"ID": self.lease(*id).to_string(), "keys": true}),
            ),
            Request::LeaseKeepAlive { .. } | Request::Watch { .. } => {
                return Err(format!("{req:?} is a stream"))
            }
        })
    }

    fn reply(&self, req: &Request, route: &str, v: &Value) -> Result<Reply, String> {
        let v = v.clone();
        if let Some(e) = v.get("error") {
            return Ok(Reply::error(e.as_str().unwrap_or("")));
        }
        if v.get("header").is_none() {
            return Err(format!("{route}: an answer without a header: {v}"));
        }
        let revision = Some(num(v.pointer("/header/revision")));
        Ok(match req {
            Request::Put { .. } | Request::Range { .. } | Request::Delete { .. } => {
                self.single(req, &v)?
            }
            Request::Txn {
                success, failure, ..
            } => {
                let succeeded = v.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
                let ops = if succeeded { success } else { failure };
                let answers = v.get("responses").and_then(Value::as_array);
                let mut responses = Vec::new();
                for (i, op) in ops.iter().enumerate() {
                    let a = answers
                        .and_then(|a| a.get(i))
                        .ok_or_else(|| format!("txn: no answer for op {i} in {v}"))?;
                    let inner = a
                        .get("response_put")
                        .or_else(|| a.get("response_range"))
                        .or_else(|| a.get("response_delete_range"))
                        .ok_or_else(|| format!("txn: answer {i} of no known kind: {a}"))?;
                    responses.push(self.single(op, inner)?);
                }
                Reply {
                    revision,
                    succeeded: Some(succeeded),
                    responses: Some(responses),
                    ..Reply::default()
                }
            }
            Request::Compact { .. } | Request::LeaseRevoke { .. } => Reply {
                revision,
                ..Reply::default()
            },
            Request::LeaseGrant { .. } => Reply {
                revision,
                ttl: Some(num(v.get("TTL"))),
                ..Reply::default()
            },
            Request::LeaseTimeToLive { .. } => {
                let ttl = num(v.get("TTL"));
                let mut keys = Vec::new();
                for k in v
                    .get("keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    keys.push(self.strip(k)?);
                }
                // The lessor keeps a lease's keys in a map: no order.
                keys.sort();
                Reply {
                    revision,
                    granted_ttl: Some(if ttl == -1 {
                        -1
                    } else {
                        num(v.get("grantedTTL"))
                    }),
                    keys: Some(keys),
                    ..Reply::default()
                }
            }
            Request::LeaseKeepAlive { .. } | Request::Watch { .. } => unreachable!(),
        })
    }

    /// Reads the stream of a streaming route line by line: one JSON object
    /// per message, `{"result": ...}` or `{"error": ...}`.
    fn stream(
        &self,
        route: &str,
        body: &Value,
        quiet: Duration,
        mut on: impl FnMut(&Value) -> bool,
    ) -> Result<(), String> {
        let url = format!("{}{route}", self.url);
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(quiet)
            .build();
        let resp = agent
            .post(&url)
            .send_json(body.clone())
            .map_err(|e| format!("POST {url}: {e}"))?;
        let mut reader = BufReader::new(resp.into_reader());
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                // Quiet for `quiet`: the server has sent what it had.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(format!("reading {url}: {e}")),
            }
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line.trim())
                .map_err(|e| format!("{url}: bad JSON message {line:?}: {e}"))?;
            if !on(&v) {
                return Ok(());
            }
        }
    }

    fn keep_alive(&self, id: i64) -> Result<Reply, String> {
        let mut reply = None;
        self.stream(
            "/v3/lease/keepalive",
            &json!({"ID": self.lease(id).to_string()}),
            Duration::from_secs(10),
            |v| {
                let r = &v["result"];
                reply = Some(Reply {
                    revision: Some(num(r.pointer("/header/revision"))),
                    ttl: Some(num(r.get("TTL"))),
                    ..Reply::default()
                });
                false
            },
        )?;
        reply.ok_or_else(|| "keepalive: the stream ended without an answer".to_string())
    }

    fn watch(&self, key: &str, prefix: bool, start: i64, prev_kv: bool) -> Result<Reply, String> {
        let mut create =
            json!({"key": self.key(key), "start_revision": start.to_string(), "prev_kv": prev_kv});
        if let Some(end) = self.range_end(key, prefix) {
            create["range_end"] = json!(end);
        }
        let mut events = Vec::new();
        let mut compacted = None;
        let mut failure = None;
        let mut current = None;
        // Events up to the revision of the watch's creation arrive at once;
        // stop at that revision, or after 300 ms of quiet when no event is
        // at it.
        self.stream(
            "/v3/watch",
            &json!({ "create_request": create }),
            Duration::from_millis(300),
            |v| {
                let r = &v["result"];
                if r.get("created").and_then(Value::as_bool) == Some(true) {
                    current = Some(num(r.pointer("/header/revision")));
                }
                if r.get("canceled").and_then(Value::as_bool) == Some(true) {
                    compacted = Some(num(r.get("compact_revision")));
                    return false;
                }
                for e in r
                    .get("events")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match self.event(e) {
                        Ok(ev) => events.push(ev),
                        Err(err) => {
                            failure = Some(err);
                            return false;
                        }
                    }
                }
                !(current.is_some() && events.last().map(|e: &Ev| e.mod_revision) == current)
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(match compacted {
            Some(c) => Reply {
                compact_revision: Some(c),
                ..Reply::default()
            },
            None => Reply {
                events: Some(events),
                ..Reply::default()
            },
        })
    }

    fn event(&self, e: &Value) -> Result<Ev, String> {
        let kv = &e["kv"];
        let delete = e.get("type").and_then(Value::as_str) == Some("DELETE");
        Ok(Ev {
            kind: if delete { "delete" } else { "put" }.to_string(),
            key: self.strip(&kv["key"])?,
            mod_revision: num(kv.get("mod_revision")),
            kv: if delete { None } else { Some(self.kv(kv)?) },
            prev_kv: e.get("prev_kv").map(|p| self.kv(p)).transpose()?,
        })
    }
}
