//! Network namespaces and the devices in them, built with iproute2.
//!
//! Every kernel object the oracle creates lives in a network namespace it
//! created itself, named with a per-run prefix (`nr{pid}x{n}-`), so runs
//! can go in parallel and nothing touches the root namespace or anyone
//! else's. [`Namespaces`] is the guard: it deletes what it created when
//! dropped — on success, on error and on panic — and a SIGINT/SIGTERM/
//! SIGHUP handler ([`install_signal_cleanup`]) deletes every live namespace
//! of the process before it dies. Deleting a namespace deletes its
//! interfaces (and veth peers in other namespaces with them).
//!
//! [`Topology::build`] lays out a scenario the way libnetwork's overlay
//! driver does on each host (fidelity.md §2): a *host* namespace holding
//! the underlay interface `ul0` with the VTEP address, an *overlay*
//! namespace holding `br0` (with the subnet's gateway address) and
//! `vxlan1` (created in the host namespace and moved in, so that its UDP
//! socket and route lookups stay in the host namespace — that is where the
//! local bypass is decided), and one namespace per container holding
//! `eth0`, whose peer `veth-NAME` is a port of `br0`. The hosts' `ul0`
//! are joined by a bridge in an *underlay* namespace. IPv6 is disabled in
//! every namespace before any interface exists in it, so no DAD, MLD or
//! router solicitation puts a container MAC in a bridge before the
//! schedule starts.
//!
//! What it does not do: add default routes or any address the scenario
//! did not choose (VTEPs are /32 with host routes to the other VTEPs and
//! permanent underlay neighbours, the gateway sits on `br0`, container
//! `eth0`s have no IPv4 address at all), or clean up namespaces left by a
//! process that was killed with SIGKILL (their names start with `nr`,
//! the dead process's pid and `x`; `ip netns del` removes them).

use std::ffi::CString;
use std::fs::File;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, Once};

use serde_json::Value;

use super::KernelError;
use crate::overlay::system::OverlaySystem;
use crate::overlay::Fix;
use crate::sim::Model;
use crate::wire::EthernetAddress;

/// Namespaces this process created and has not deleted yet (what the
/// signal handler cleans up).
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `program args`, returning its stdout; a failure names the command
/// and quotes its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, KernelError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        KernelError::Unavailable(format!(
            "cannot run `{program}`: {e} (the kernel oracle needs iproute2's `ip` and `bridge`)"
        ))
    })?;
    if !out.status.success() {
        return Err(KernelError::Failed(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args` whose stdout is JSON (`-j`) and parses it; empty
/// output is an empty array.
pub fn run_json(program: &str, args: &[&str]) -> Result<Vec<Value>, KernelError> {
    let text = run(program, args)?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(a)) => Ok(a),
        Ok(other) => Err(KernelError::Failed(format!(
            "`{program} {}` printed JSON that is not an array: {other}",
            args.join(" ")
        ))),
        Err(e) => Err(KernelError::Failed(format!(
            "`{program} {}` printed something that is not JSON ({e}): {}",
            args.join(" "),
            text.trim()
        ))),
    }
}

/// A name prefix no other run of this or any live process uses:
/// `nr{pid}x{n}`.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "nr{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` on a fresh thread whose network namespace is `ns` (by
/// `setns(2)` on `/run/netns/NAME`). The thread ends with `f`, so the
/// switch never leaks to other code; file descriptors `f` opens (sockets)
/// keep their namespace after it returns.
pub fn in_netns<T: Send>(
    ns: &str,
    f: impl FnOnce() -> Result<T, KernelError> + Send,
) -> Result<T, KernelError> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| {
        KernelError::Failed(format!(
            "cannot open {path}: {e} (was the namespace created?)"
        ))
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on an open namespace fd; it only changes this
            // thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(KernelError::Unavailable(format!(
                    "setns({path}) failed: {}",
                    std::io::Error::last_os_error()
                )));
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Writes a sysctl of the namespace `ns` (`/proc/sys/net/...` is resolved
/// in the writing thread's namespace). A missing file is skipped: a kernel
/// without IPv6 has nothing to disable.
pub fn sysctl_in(ns: &str, key: &str, value: &str) -> Result<(), KernelError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    in_netns(ns, || {
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(mut f) => f.write_all(value.as_bytes()).map_err(|e| {
                KernelError::Failed(format!("cannot write {value} to {path} in {ns}: {e}"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(KernelError::Failed(format!(
                "cannot open {path} in {ns}: {e}"
            ))),
        }
    })
}

/// The namespaces of one run; dropping it deletes them.
#[derive(Debug, Default)]
pub struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// No namespaces yet.
    pub fn new() -> Namespaces {
        Namespaces::default()
    }

    /// Creates namespace `name` and disables IPv6 in it, before anything
    /// else exists in it. A name that exists already is an error, never
    /// adopted: the guard only deletes what it created.
    pub fn add(&mut self, name: &str) -> Result<(), KernelError> {
        install_signal_cleanup();
        {
            // Under the lock the signal handler takes: a namespace exists
            // only once it is registered, and none is created after the
            // handler started deleting.
            let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
            run("ip", &["netns", "add", name])?;
            live.push(name.to_string());
            self.names.push(name.to_string());
        }
        for key in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            sysctl_in(name, key, "1")?;
        }
        Ok(())
    }

    /// The namespaces, in creation order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        for name in self.names.iter().rev() {
            delete_namespace(name);
            live.retain(|n| n != name);
        }
        self.names.clear();
    }
}

/// `ip netns del NAME`, quietly: a name that is already gone is fine.
fn delete_namespace(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe work here: hand the signal to the cleanup
    // thread through the pipe.
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) of one byte from a valid local.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Installs, once per process, handlers for SIGINT, SIGTERM and SIGHUP
/// that delete every namespace this process still has and then let the
/// signal kill the process as it would have. The handler only writes to a
/// pipe; a dedicated thread does the deleting.
pub fn install_signal_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        let read_fd = fds[0];
        let spawned = std::thread::Builder::new()
            .name("netrace-netns-cleanup".into())
            .spawn(move || {
                let mut b = 0u8;
                loop {
                    // SAFETY: read(2) of one byte into a valid local.
                    let n = unsafe { libc::read(read_fd, (&mut b as *mut u8).cast(), 1) };
                    if n == 1 {
                        break;
                    }
                    let interrupted = n < 0
                        && std::io::Error::last_os_error().kind()
                            == std::io::ErrorKind::Interrupted;
                    if !interrupted {
                        return;
                    }
                }
                // Hold the lock to the end: no namespace can be created
                // after this point, the process dies holding it.
                let live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
                for name in live.iter().rev() {
                    delete_namespace(name);
                }
                let sig = libc::c_int::from(b);
                eprintln!(
                    "netrace: signal {sig}: removed {} network namespace(s)",
                    live.len()
                );
                // SAFETY: restoring the default action and re-raising.
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                    libc::raise(sig);
                }
                std::process::exit(128 + sig);
            });
        if spawned.is_err() {
            return;
        }
        SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction with a plain handler.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

/// A MAC of the form `02:00:00:00:NN:LL` for host number `n` (from 1),
/// the model's convention for `br0` (`01`) and `vxlan1` (`fe`); the
/// underlay interface gets `fd`.
pub(crate) fn host_mac(h: usize, last: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0x00, 0x00, 0x00, h as u8 + 1, last])
}

/// The underlay every multi-host topology of the oracle shares (the
/// schedule oracle's [`Topology`] and the soak's): namespace `u` with a
/// bridge `ul` (no multicast snooping), and per host `h` — its namespace
/// `hosts[h].0` (created here, `lo` up) and VTEP `hosts[h].1` — a veth
/// `ul0` (MAC [`host_mac`]`(h, 0xfd)`) holding the VTEP as a /32, its peer
/// `u{h}` on `ul`, and a host route and a permanent neighbour entry for
/// every other host's VTEP, so VXLAN between the hosts is really
/// encapsulated and never needs ARP on the underlay. Every namespace is
/// added to `namespaces` (deleted with it).
pub(crate) fn lay_underlay(
    namespaces: &mut Namespaces,
    u: &str,
    hosts: &[(String, Ipv4Addr)],
) -> Result<(), KernelError> {
    let ip = |args: &[&str]| run("ip", args).map(drop);
    namespaces.add(u)?;
    ip(&[
        "-n",
        u,
        "link",
        "add",
        "ul",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    ip(&["-n", u, "link", "set", "ul", "up"])?;
    for (h, (hn, vtep)) in hosts.iter().enumerate() {
        namespaces.add(hn)?;
        ip(&["-n", hn, "link", "set", "lo", "up"])?;
        let ul_mac = host_mac(h, 0xfd).to_string();
        let uport = format!("u{h}");
        ip(&[
            "-n", hn, "link", "add", "ul0", "address", &ul_mac, "type", "veth", "peer", "name",
            &uport, "netns", u,
        ])?;
        ip(&["-n", u, "link", "set", &uport, "master", "ul"])?;
        ip(&["-n", u, "link", "set", &uport, "up"])?;
        ip(&["-n", hn, "addr", "add", &format!("{vtep}/32"), "dev", "ul0"])?;
        ip(&["-n", hn, "link", "set", "ul0", "up"])?;
        for (other, (_, ov)) in hosts.iter().enumerate() {
            if other == h {
                continue;
            }
            let ov = ov.to_string();
            ip(&["-n", hn, "route", "add", &format!("{ov}/32"), "dev", "ul0"])?;
            ip(&[
                "-n",
                hn,
                "neigh",
                "replace",
                &ov,
                "lladdr",
                &host_mac(other, 0xfd).to_string(),
                "dev",
                "ul0",
                "nud",
                "permanent",
            ])?;
        }
    }
    Ok(())
}

/// One scenario's devices in the kernel.
#[derive(Debug)]
pub struct Topology {
    /// The run's prefix (`nr{pid}x{n}`).
    pub prefix: String,
    /// Per host: the namespace holding `ul0` and vxlan1's socket.
    pub host_ns: Vec<String>,
    /// Per host: the namespace holding `br0` and `vxlan1`.
    pub overlay_ns: Vec<String>,
    /// Per container: the namespace holding its `eth0`.
    pub container_ns: Vec<String>,
    /// The namespace holding the underlay bridge `ul`.
    pub underlay_ns: String,
    /// The guard: the last field, dropped last.
    namespaces: Namespaces,
}

impl Topology {
    /// Builds `model`'s scenario: namespaces, underlay, `br0`, `vxlan1`
    /// with the profile's port flags, containers, and vxlan1's starting
    /// tables exactly as the model's initial state holds them (the remote
    /// peers the overlay driver programs at join, and the scenario's
    /// pre-programmed entries). Everything is up when it returns; no frame
    /// has been sent.
    pub fn build(model: &OverlaySystem) -> Result<Topology, KernelError> {
        let spec = model.spec();
        for c in &spec.containers {
            let port = format!("veth-{}", c.name);
            if port.len() > 15
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(KernelError::Unavailable(format!(
                    "container name {:?} cannot name a kernel interface ({port:?} must be at most 15 ASCII letters, digits, '-' or '_')",
                    c.name
                )));
            }
        }
        let prefix = unique_prefix();
        let mut t = Topology {
            host_ns: (0..spec.hosts.len())
                .map(|h| format!("{prefix}-h{h}"))
                .collect(),
            overlay_ns: (0..spec.hosts.len())
                .map(|h| format!("{prefix}-o{h}"))
                .collect(),
            container_ns: (0..spec.containers.len())
                .map(|e| format!("{prefix}-c{e}"))
                .collect(),
            underlay_ns: format!("{prefix}-u"),
            prefix,
            namespaces: Namespaces::new(),
        };
        t.lay_out(model)?;
        Ok(t)
    }

    /// Every namespace of the run.
    pub fn namespaces(&self) -> &[String] {
        self.namespaces.names()
    }

    fn lay_out(&mut self, model: &OverlaySystem) -> Result<(), KernelError> {
        let spec = model.spec();
        let profile = model.profile();
        let init = model.init_state();
        let ip = |args: &[&str]| run("ip", args).map(drop);

        // The underlay: a bridge joining every host's ul0.
        let u = self.underlay_ns.clone();
        let legs: Vec<(String, Ipv4Addr)> = spec
            .hosts
            .iter()
            .enumerate()
            .map(|(h, host)| (self.host_ns[h].clone(), host.vtep))
            .collect();
        lay_underlay(&mut self.namespaces, &u, &legs)?;

        let gateway = Ipv4Addr::from(u32::from(spec.subnet.network()) + 1);
        let gateway_cidr = format!("{gateway}/{}", spec.subnet.prefix_len());
        let vni = spec.vni.to_string();
        let ageing_s = spec.ageing_time_s.to_string();
        let ageing_cs = (u64::from(spec.ageing_time_s) * 100).to_string();
        for (h, host) in spec.hosts.iter().enumerate() {
            let hn = self.host_ns[h].clone();
            let on = self.overlay_ns[h].clone();
            self.namespaces.add(&on)?;
            let vtep = host.vtep.to_string();
            // vxlan1: created in the host namespace, moved to the overlay.
            ip(&[
                "-n",
                &hn,
                "link",
                "add",
                "vxlan1",
                "address",
                &host_mac(h, 0xfe).to_string(),
                "type",
                "vxlan",
                "id",
                &vni,
                "local",
                &vtep,
                "dstport",
                "4789",
                "proxy",
                "learning",
                "l2miss",
                "l3miss",
                // Seconds (IFLA_VXLAN_AGEING).
                "ageing",
                &ageing_s,
            ])?;
            ip(&["-n", &hn, "link", "set", "vxlan1", "netns", &on])?;
            ip(&[
                "-n",
                &on,
                "link",
                "add",
                "br0",
                "address",
                &host_mac(h, 0x01).to_string(),
                "type",
                "bridge",
                // With snooping, br0 joins the multicast-router-discovery
                // group 224.0.0.106 and its stack sends IGMPv3 reports to
                // every port: frames the model (no multicast) has no
                // place for.
                "mcast_snooping",
                "0",
                // Centiseconds: IFLA_BR_AGEING_TIME is a clock_t, which
                // iproute2 passes through (`ip -d link` shows 30000 for
                // the default 300 s).
                "ageing_time",
                &ageing_cs,
            ])?;
            ip(&["-n", &on, "addr", "add", &gateway_cidr, "dev", "br0"])?;
            ip(&["-n", &on, "link", "set", "vxlan1", "master", "br0"])?;
            set_vxlan_fixes(
                &on,
                !profile.has(Fix::LearningOff),
                profile.has(Fix::NeighSuppress),
            )?;
            // Containers, in order: port numbers follow the model's.
            for (e, c) in spec.containers.iter().enumerate() {
                if c.host != h {
                    continue;
                }
                let cn = self.container_ns[e].clone();
                self.namespaces.add(&cn)?;
                let port = format!("veth-{}", c.name);
                let mac = model.endpoints()[e].mac.to_string();
                ip(&[
                    "-n", &cn, "link", "add", "eth0", "address", &mac, "type", "veth", "peer",
                    "name", &port, "netns", &on,
                ])?;
                // No address and no ARP: every frame it sends is injected.
                ip(&["-n", &cn, "link", "set", "eth0", "arp", "off"])?;
                ip(&["-n", &on, "link", "set", &port, "master", "br0"])?;
                ip(&["-n", &on, "link", "set", &port, "up"])?;
                ip(&["-n", &cn, "link", "set", "eth0", "up"])?;
            }
            ip(&["-n", &on, "link", "set", "vxlan1", "up"])?;
            ip(&["-n", &on, "link", "set", "br0", "up"])?;
            // vxlan1's starting tables, exactly the model's: peerAdd for
            // every container on another host (join events), then the
            // scenario's pre-programmed entries (`vxlan_neigh`,
            // `vxlan_fdb`), each neighbour entry in its state (permanent,
            // or a pre-programmed noarp/stale one).
            let vx = &init.hosts[h].vx;
            for (ip, n) in &vx.neigh {
                neigh_replace_nud(
                    &on,
                    &ip.to_string(),
                    &n.mac.to_string(),
                    &n.nud.name().to_ascii_lowercase(),
                )?;
            }
            for (mac, f) in &vx.fdb {
                fdb_replace(&on, &mac.to_string(), &f.remote.to_string())?;
            }
        }
        Ok(())
    }
}

/// The bridge-port settings of vxlan1 on `br0` in overlay namespace `ns`
/// that the fixes change: `bridge link set dev vxlan1 learning off` when
/// the port must not learn (learning-off) and `neigh_suppress on` when it
/// suppresses neighbour requests (neigh-suppress); the kernel's defaults
/// (learning on, suppression off) are left alone otherwise. Used by the
/// schedule oracle's topology and by the soak's.
pub fn set_vxlan_fixes(ns: &str, learning: bool, neigh_suppress: bool) -> Result<(), KernelError> {
    if !learning {
        run(
            "bridge",
            &["-n", ns, "link", "set", "dev", "vxlan1", "learning", "off"],
        )?;
    }
    if neigh_suppress {
        run(
            "bridge",
            &[
                "-n",
                ns,
                "link",
                "set",
                "dev",
                "vxlan1",
                "neigh_suppress",
                "on",
            ],
        )?;
    }
    Ok(())
}

/// The driver's first netlink call of `peerAdd`.
pub fn neigh_replace(ns: &str, ip: &str, mac: &str) -> Result<(), KernelError> {
    neigh_replace_nud(ns, ip, mac, "permanent")
}

/// `ip neigh replace IP lladdr MAC dev vxlan1 nud NUD` in `ns`.
pub fn neigh_replace_nud(ns: &str, ip: &str, mac: &str, nud: &str) -> Result<(), KernelError> {
    run(
        "ip",
        &[
            "-n", ns, "neigh", "replace", ip, "lladdr", mac, "dev", "vxlan1", "nud", nud,
        ],
    )
    .map(drop)
}

/// The driver's second netlink call of `peerAdd`.
pub fn fdb_replace(ns: &str, mac: &str, remote: &str) -> Result<(), KernelError> {
    run(
        "bridge",
        &[
            "-n",
            ns,
            "fdb",
            "replace",
            mac,
            "dev",
            "vxlan1",
            "dst",
            remote,
            "self",
            "permanent",
        ],
    )
    .map(drop)
}

/// The interface index of `ifname` in the calling thread's namespace.
pub fn ifindex(ifname: &str) -> Result<u32, KernelError> {
    let c = CString::new(ifname)
        .map_err(|_| KernelError::Failed(format!("bad interface name {ifname:?}")))?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(KernelError::Failed(format!(
            "no interface {ifname}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(i)
}
