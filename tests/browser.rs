//! The HTML report of `netrace check --html` in a real browser: every page
//! and every standalone SVG of the report of the bundled scenarios is
//! loaded in headless Chromium (Debian's `chromium`), driven over the
//! Chrome DevTools Protocol with one browser for all pages, and
//!
//! - no page logs anything to the console (the pages have no script, so
//!   any console message is suspicious), throws, or fails to load a
//!   resource (`Log.entryAdded` at level error, `Network.loadingFailed`);
//!   no standalone SVG has a `parsererror`;
//! - every `<a href>` resolves to a file of the report; every violated
//!   cell of a fix matrix links to its counterexample page; every
//!   counterexample page has exactly one `svg.sequence` whose `g.lane`s
//!   number its `data-lanes-drawn`, with distinct names, all of the
//!   model's lanes when none is left out (and a line naming the idle ones
//!   when some are), and a violating step numbered as the page says; two
//!   known diagrams have exactly the lanes of their actors and devices;
//! - a full-page PNG screenshot of every page (and of every standalone
//!   SVG, scaled down when large) is written to
//!   `target/browser-screenshots/` (emptied first; CI can keep it), named
//!   after the page's path in the report with `/` as `__`.
//!
//! Without Chromium the test prints `BROWSER TEST SKIPPED: <why>` on
//! stderr and passes — unless `NETRACE_REQUIRE_BROWSER=1` is set (CI sets
//! it), in which case a skip is a failure. `NETRACE_CHROMIUM=PATH` names
//! another browser binary.
//!
//! The browser runs in a process group of its own; it is killed, and its
//! temporary profile and the report removed, on success and on failure
//! (a drop guard), and the test checks that no process of that group is
//! left. Every wait has a timeout, so a stuck browser fails the test
//! instead of hanging it.
//!
//! The websocket client is `tungstenite` (dev-dependency, without TLS):
//! synchronous, so the test needs no async runtime, small, and the
//! websocket crate most of the ecosystem builds on.

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

mod common;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The longest any one wait may take (browser start, a command, a load).
const WAIT: Duration = Duration::from_secs(30);

/// The viewport: the report's body is at most 1200 px wide.
const VIEWPORT: (u32, u32) = (1280, 900);

/// Standalone SVGs larger than this (either side, CSS px) are captured
/// scaled down to it; pages are captured at full size.
const SVG_SHOT_MAX: f64 = 4000.0;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The browser binary, or why there is none.
fn find_chromium() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NETRACE_CHROMIUM") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("NETRACE_CHROMIUM={} is not a file", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err("no chromium on PATH or in /usr/bin (Debian: apt-get install chromium)".into())
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("browser-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The pids under /proc for which `keep(pid directory)` says yes.
fn processes(keep: impl Fn(&Path) -> bool) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            keep(&e.path()).then_some(pid)
        })
        .collect()
}

/// The processes of process group `pgid` that are alive (not zombies).
fn group_members(pgid: i32) -> Vec<i32> {
    processes(|dir| {
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parens.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// The live processes whose command line mentions `needle` (the
/// profile's path: chromium's crash handlers leave the process group for
/// sessions of their own, but their `--database` is under `HOME`, which
/// is in the profile).
fn processes_mentioning(needle: &str) -> Vec<i32> {
    processes(|dir| {
        std::fs::read(dir.join("cmdline"))
            .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(needle))
    })
}

/// The processes the browser started that are still alive.
fn leftovers(pgid: i32, profile: &Path) -> Vec<i32> {
    let mut out = group_members(pgid);
    out.extend(processes_mentioning(&profile.to_string_lossy()));
    out.sort();
    out.dedup();
    out
}

/// Headless Chromium in a process group of its own, with a temporary
/// profile; killed (the whole group) and the profile removed on drop.
struct Browser {
    child: Option<Child>,
    pid: i32,
    stderr: mpsc::Receiver<String>,
    // Removed after the browser is dead (fields drop after `drop` runs).
    profile: TempDir,
}

impl Browser {
    /// Starts the browser and returns it with its DevTools websocket URL.
    fn start(bin: &Path) -> Result<(Browser, String), String> {
        let profile = TempDir::new("profile");
        let mut child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-sync",
                "--disable-domain-reliability",
                "--no-pings",
                "--hide-scrollbars",
                "--mute-audio",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            // Its crash handler's database and any config under the
            // profile, not in the real home.
            .env("HOME", profile.0.join("home"))
            .env("XDG_CONFIG_HOME", profile.0.join("home/.config"))
            .env("XDG_CACHE_HOME", profile.0.join("home/.cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id() as i32;
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let browser = Browser {
            child: Some(child),
            pid,
            stderr: rx,
            profile,
        };
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match browser.stderr.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        return Ok((browser, url.trim().to_string()));
                    }
                    seen.push(line);
                }
                Err(e) => {
                    return Err(format!(
                        "no `DevTools listening on` line from chromium ({e:?}); its stderr:\n{}",
                        seen.join("\n")
                    ))
                }
            }
        }
    }

    /// What the browser printed on stderr since it started listening.
    fn stderr_tail(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SIGKILL to the group: the browser and its renderer, zygote and
        // utility processes, all started by this test.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        // The crash handlers, each in a session of its own, by pid.
        for pid in processes_mentioning(&self.profile.0.to_string_lossy()) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !leftovers(self.pid, &self.profile.0).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A DevTools connection to one page, attached with a flat session.
struct Cdp {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    /// Events of the page read while waiting for something else.
    events: VecDeque<Value>,
}

impl Cdp {
    fn connect(url: &str) -> Result<Cdp, String> {
        let hostport = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
        let stream =
            TcpStream::connect(hostport).map_err(|e| format!("connect {hostport}: {e}"))?;
        // The handshake blocks (up to WAIT); then reads poll, so that every
        // wait can check its own deadline.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        // Screenshots come as one base64 text message of several MiB.
        let config = WebSocketConfig::default()
            .max_message_size(Some(512 << 20))
            .max_frame_size(Some(512 << 20));
        let (ws, _) = tungstenite::client::client_with_config(url, stream, Some(config))
            .map_err(|e| format!("websocket handshake with {url}: {e}"))?;
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Ok(Cdp {
            ws,
            next_id: 0,
            session: None,
            events: VecDeque::new(),
        })
    }

    /// The next message of the browser, by `deadline`.
    fn recv(&mut self, deadline: Instant, waiting_for: &str) -> Result<Value, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(&t).map_err(|e| format!("bad CDP JSON: {e}"))
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("websocket read ({waiting_for}): {e}")),
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {WAIT:?} waiting for {waiting_for}"
                ));
            }
        }
    }

    /// Sends `method` (to the page's session once attached) and returns
    /// its result; events read meanwhile are queued.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("websocket send {method}: {e}"))?;
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.recv(deadline, method)?;
            if m["id"].as_u64() == Some(id) {
                if let Some(e) = m.get("error") {
                    return Err(format!("{method} failed: {e}"));
                }
                return Ok(m["result"].clone());
            }
            self.queue(m);
        }
    }

    fn queue(&mut self, m: Value) {
        if m.get("method").is_some()
            && (self.session.is_none() || m["sessionId"].as_str() == self.session.as_deref())
        {
            self.events.push_back(m);
        }
    }

    /// Waits for event `method` of the page (taking it off the queue).
    fn wait_event(&mut self, method: &str) -> Result<Value, String> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return Ok(self.events.remove(i).unwrap());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.recv(deadline, method)?;
            if m["method"] == method
                && (self.session.is_none() || m["sessionId"].as_str() == self.session.as_deref())
            {
                return Ok(m);
            }
            self.queue(m);
        }
    }

    /// Evaluates `expr` in the page and returns its value as JSON.
    fn evaluate(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("the DOM query threw: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }
}

/// What the page's DOM says: links, matrix cells, sequence diagrams.
const DOM_QUERY: &str = r#"(() => {
  const hrefs = (root) => Array.from(root.querySelectorAll('a[href]'), a => a.getAttribute('href'));
  let stated = null;
  for (const b of document.querySelectorAll('p > b')) {
    if (/ violated$/.test(b.textContent)) {
      const m = /after (\d+) steps?/.exec(b.parentElement.textContent);
      stated = m ? Number(m[1]) : -1;
    }
  }
  return {
    root: document.documentElement.localName,
    parsererrors: document.getElementsByTagNameNS('*', 'parsererror').length,
    links: hrefs(document),
    images: Array.from(document.images, i => ({ src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0 })),
    violated: Array.from(document.querySelectorAll('td.cell.violated'), td => ({
      variant: td.closest('tr') ? td.closest('tr').getAttribute('data-variant') : null,
      property: td.getAttribute('data-property'),
      links: hrefs(td),
    })),
    sequences: Array.from(document.querySelectorAll('svg.sequence'), s => ({
      lanes: Number(s.getAttribute('data-lanes')),
      drawn: Number(s.getAttribute('data-lanes-drawn')),
      steps: Number(s.getAttribute('data-steps')),
      names: Array.from(s.querySelectorAll('g.lane'), g => g.getAttribute('data-lane')),
      violations: Array.from(s.querySelectorAll('g.step.violation'), g => ({
        step: Number(g.getAttribute('data-step')),
        violates: (g.getAttribute('data-violates') || '').split(' ').filter(x => x),
      })),
      idle: Array.from(s.querySelectorAll('text.sub.idle'), t => t.textContent),
    })),
    stated,
  };
})()"#;

/// The report's pages and standalone SVGs, by path in the report.
fn report_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("html") | Some("svg")
            ) {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Where `href` on page `page` (both relative to the report) points in
/// the report, or why it does not.
fn resolve(page: &Path, href: &str) -> Result<PathBuf, String> {
    if href.contains(':') || href.starts_with('/') || href.starts_with("//") {
        return Err(format!("`{href}` is not a relative link into the report"));
    }
    let path = href.split(['#', '?']).next().unwrap();
    if path.is_empty() {
        return Ok(page.to_path_buf());
    }
    let mut out = page.parent().unwrap_or(Path::new("")).to_path_buf();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!("`{href}` leaves the report"));
                }
            }
            _ => return Err(format!("`{href}` is not a relative link")),
        }
    }
    Ok(out)
}

fn shot_name(rel: &Path) -> String {
    format!("{}.png", rel.to_string_lossy().replace('/', "__"))
}

/// The problems the page's events show.
fn event_problems(events: &mut VecDeque<Value>) -> Vec<String> {
    let mut out = Vec::new();
    for e in events.drain(..) {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.consoleAPICalled" => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| a["description"].to_string())
                    })
                    .collect();
                out.push(format!("console.{}: {}", p["type"], args.join(" ")));
            }
            "Runtime.exceptionThrown" => {
                out.push(format!("exception: {}", p["exceptionDetails"]));
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                let en = &p["entry"];
                out.push(format!(
                    "log error ({}): {} {}",
                    en["source"],
                    en["text"].as_str().unwrap_or(""),
                    en["url"].as_str().unwrap_or("")
                ));
            }
            "Network.loadingFailed" if p["canceled"] != true => {
                out.push(format!(
                    "resource failed to load ({}): {}",
                    p["type"], p["errorText"]
                ));
            }
            _ => {}
        }
    }
    out
}

/// Loads every file of the report in the browser and returns the
/// problems found.
fn check_report(cdp: &mut Cdp, report: &Path, shots: &Path) -> Result<Vec<String>, String> {
    let target = cdp.call("Target.createTarget", json!({ "url": "about:blank" }))?;
    let target_id = target["targetId"].clone();
    let attached = cdp.call(
        "Target.attachToTarget",
        json!({ "targetId": target_id, "flatten": true }),
    )?;
    cdp.session = Some(
        attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_string(),
    );
    for domain in ["Page", "Runtime", "Log", "Network"] {
        cdp.call(&format!("{domain}.enable"), json!({}))?;
    }
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": VIEWPORT.0, "height": VIEWPORT.1, "deviceScaleFactor": 1, "mobile": false }),
    )?;
    cdp.events.clear();

    let files = report_files(report);
    let mut problems = Vec::new();
    let mut visited = BTreeSet::new();
    let mut counterexample_pages = 0;
    let mut known_seen = 0;
    for rel in &files {
        let mut bad = |what: String| problems.push(format!("{}: {what}", rel.display()));
        let is_svg = rel.extension().is_some_and(|x| x == "svg");
        let url = format!("file://{}", report.join(rel).display());
        let nav = cdp.call("Page.navigate", json!({ "url": url }))?;
        if let Some(e) = nav.get("errorText") {
            bad(format!("navigation failed: {e}"));
            continue;
        }
        cdp.wait_event("Page.loadEventFired")
            .map_err(|e| format!("{}: {e}", rel.display()))?;
        let dom = cdp.evaluate(DOM_QUERY)?;
        visited.insert(rel.clone());

        // Screenshot: the whole page (or the whole SVG, scaled down).
        let metrics = cdp.call("Page.getLayoutMetrics", json!({}))?;
        let size = &metrics["cssContentSize"];
        let (w, h) = (
            size["width"].as_f64().unwrap_or(VIEWPORT.0 as f64).ceil(),
            size["height"].as_f64().unwrap_or(VIEWPORT.1 as f64).ceil(),
        );
        let scale = if is_svg {
            (SVG_SHOT_MAX / w.max(h)).min(1.0)
        } else {
            1.0
        };
        let shot = cdp.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": scale },
            }),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().ok_or("no screenshot data")?)
            .map_err(|e| format!("screenshot of {}: {e}", rel.display()))?;
        if !png.starts_with(b"\x89PNG") {
            bad("the screenshot is not a PNG".into());
        }
        std::fs::write(shots.join(shot_name(rel)), &png).unwrap();

        for p in event_problems(&mut cdp.events) {
            bad(p);
        }

        // Links and images.
        for href in dom["links"].as_array().unwrap() {
            let href = href.as_str().unwrap_or("");
            match resolve(rel, href) {
                Ok(to) if report.join(&to).is_file() => {}
                Ok(to) => bad(format!(
                    "link `{href}` points to {}, which is not in the report",
                    to.display()
                )),
                Err(e) => bad(e),
            }
        }
        for img in dom["images"].as_array().unwrap() {
            if img["ok"] != true {
                bad(format!("image {} did not load", img["src"]));
            }
        }

        // The fix matrix: a violated cell links to its counterexample.
        for cell in dom["violated"].as_array().unwrap() {
            let (v, p) = (&cell["variant"], cell["property"].as_str().unwrap_or(""));
            let links = cell["links"].as_array().unwrap();
            let ok = links.iter().any(|l| {
                let l = l.as_str().unwrap_or("");
                l.ends_with(&format!("--{p}.html"))
                    && resolve(rel, l).is_ok_and(|to| {
                        to.parent().is_some_and(|d| !d.as_os_str().is_empty())
                            && report.join(to).is_file()
                    })
            });
            if !ok {
                bad(format!(
                    "violated cell {v} {p} has no link to a counterexample page: {links:?}"
                ));
            }
        }

        // Sequence diagrams.
        let seqs = dom["sequences"].as_array().unwrap();
        let in_subdir = rel.components().count() > 1;
        if is_svg {
            if dom["parsererrors"] != 0 {
                bad(format!("{} parsererror element(s)", dom["parsererrors"]));
            }
            if dom["root"] != "svg" {
                bad(format!("the document's root is {}, not svg", dom["root"]));
            }
        } else if in_subdir {
            counterexample_pages += 1;
            if seqs.len() != 1 {
                bad(format!("{} svg.sequence, not exactly one", seqs.len()));
            }
            let svg = rel.with_extension("svg");
            let name = svg.file_name().unwrap().to_string_lossy().into_owned();
            if !dom["links"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == &json!(name))
            {
                bad(format!("no link to the standalone diagram {name}"));
            }
        } else if !seqs.is_empty() {
            bad(format!(
                "{} svg.sequence on a page that is no counterexample",
                seqs.len()
            ));
        }
        for s in seqs {
            let names: Vec<&str> = s["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap_or(""))
                .collect();
            let (lanes, drawn) = (s["lanes"].as_u64().unwrap(), s["drawn"].as_u64().unwrap());
            if names.len() as u64 != drawn {
                bad(format!(
                    "{} g.lane but data-lanes-drawn={drawn}",
                    names.len()
                ));
            }
            let distinct: BTreeSet<&str> = names.iter().copied().collect();
            if distinct.len() != names.len() {
                bad(format!("two lanes with the same data-lane: {names:?}"));
            }
            if names.iter().any(|n| n.is_empty()) {
                bad("a lane without a name".into());
            }
            let idle = s["idle"].as_array().unwrap();
            if drawn == lanes {
                if !idle.is_empty() {
                    bad("every lane is drawn, yet an idle-lanes line".into());
                }
            } else if drawn > lanes || lanes <= 16 {
                bad(format!("data-lanes={lanes} data-lanes-drawn={drawn}: only models of more than 16 lanes leave lanes out"));
            } else {
                let want = format!("{} of {lanes} lanes", lanes - drawn);
                if idle.len() != 1 || !idle[0].as_str().unwrap_or("").starts_with(&want) {
                    bad(format!(
                        "lanes left out, but no idle line saying `{want} ...`: {idle:?}"
                    ));
                }
            }
            // The step that violates this file's property (a diagram marks
            // every step where some property is violated).
            let property = rel
                .file_stem()
                .and_then(|f| f.to_str())
                .and_then(|f| f.split_once("--"))
                .map(|(_, p)| p)
                .unwrap_or("");
            let viol: Vec<&Value> = s["violations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| {
                    v["violates"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p == property)
                })
                .collect();
            if viol.len() != 1 {
                bad(format!(
                    "{} g.step.violation violating {property}, not one: {}",
                    viol.len(),
                    s["violations"]
                ));
            } else if !is_svg && viol[0]["step"] != dom["stated"] {
                bad(format!(
                    "the step violating {property} is {} but the page says {} steps",
                    viol[0]["step"], dom["stated"]
                ));
            } else if viol[0]["step"] != s["steps"] {
                bad(format!(
                    "the step violating {property} is {} but data-steps={}",
                    viol[0]["step"], s["steps"]
                ));
            }
            if let Some(want) = known_lanes(rel) {
                known_seen += 1;
                if names != want || lanes != want.len() as u64 {
                    bad(format!(
                        "lanes {names:?} (data-lanes={lanes}), expected exactly {want:?}"
                    ));
                }
            }
        }
    }
    if counterexample_pages == 0 {
        problems.push("the report has no counterexample page".into());
    }
    // Each known diagram: its page and its standalone SVG.
    if known_seen != 4 {
        problems.push(format!(
            "the known diagrams were found {known_seen} times, not 4 (2 pages, 2 SVGs)"
        ));
    }
    let index = PathBuf::from("index.html");
    if !visited.contains(&index) {
        problems.push("no index.html".into());
    }
    Ok(problems)
}

/// The lanes of the two seed diagrams ([`common::lanes`]).
fn known_lanes(rel: &Path) -> Option<Vec<&'static str>> {
    let stem = rel.with_extension("");
    match stem.to_str()? {
        "docker-17.05-duplicate-ip/libnetwork-17.05--ipam.unique" => {
            Some(common::lanes::DUPLICATE_IP.to_vec())
        }
        "classic-overlay-last-word/classic-17.03--l2.fdb_correct" => {
            Some(common::lanes::LAST_WORD.to_vec())
        }
        _ => None,
    }
}

#[test]
fn every_page_of_the_report_renders_cleanly_in_chromium() {
    let started = Instant::now();
    let bin = match find_chromium() {
        Ok(b) => b,
        Err(why) => {
            if std::env::var("NETRACE_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("NETRACE_REQUIRE_BROWSER=1 but the browser test cannot run: {why}");
            }
            // Straight to the process's stderr: the harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "BROWSER TEST SKIPPED: every_page_of_the_report_renders_cleanly_in_chromium: {why}"
            );
            return;
        }
    };

    let report = TempDir::new("report");
    let out = Command::new(env!("CARGO_BIN_EXE_netrace"))
        .current_dir(manifest())
        .args(["check", "--html"])
        .arg(&report.0)
        .output()
        .expect("netrace runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "netrace check --html failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let (browser, url) = Browser::start(&bin).unwrap_or_else(|e| panic!("{e}"));
    let pid = browser.pid;
    let profile = browser.profile.0.clone();
    let result = Cdp::connect(&url).and_then(|mut cdp| {
        let r = check_report(&mut cdp, &report.0, &shots);
        let _ = cdp.ws.close(None);
        r
    });
    let tail = browser.stderr_tail();
    drop(browser);
    let left = leftovers(pid, &profile);
    assert!(
        left.is_empty(),
        "chromium processes of group {pid} or with profile {} are left: {left:?}",
        profile.display()
    );
    assert!(
        !profile.exists(),
        "the browser profile {} is left",
        profile.display()
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))),
        "chromium (pid {pid}) is still running"
    );

    let problems = result.unwrap_or_else(|e| panic!("{e}\nchromium's stderr:\n{tail}"));
    let pages = report_files(&report.0).len();
    let report_dir = report.0.clone();
    drop(report);
    assert!(
        !report_dir.exists(),
        "the report {} is left",
        report_dir.display()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) in the report in chromium:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let _ = writeln!(
        std::io::stderr(),
        "browser: {pages} files of the report rendered in chromium without a problem in {:.1?}; screenshots in {}",
        started.elapsed(),
        shots.display()
    );
}
