//! libnetwork's overlay driver: how it programs vxlan1's neighbour and FDB
//! entries for peers, in the profiles and fixes a scenario can compare,
//! and the system that puts driver, bridges, vxlan devices and containers
//! together for the explorer ([`system`]); and, one level up, many hosts
//! with their peer tables fed by a control plane ([`cluster`]: join and
//! leave events, node failures and rejoins, the netlink answers they get).
//!
//! Upstream: `drivers/overlay/ov_serf.go`, `ov_network.go` (`watchMiss`,
//! `resolvePeer`), `peerdb.go` (`peerAdd`, `peerAddOp`), Apache-2.0,
//! rewritten from their documented behaviour (../shared/fidelity.md §2):
//!
//! - **remote peers** are programmed at join (serf or gossip events):
//!   `peerAdd` = a permanent neighbour entry on vxlan1 (`ip neigh replace
//!   IP lladdr MAC dev vxlan1 nud permanent`) then a permanent vxlan FDB
//!   entry to the peer's VTEP (`bridge fdb replace MAC dev vxlan1 dst VTEP
//!   self permanent`) — two netlink calls, neighbour first;
//! - **local peers** are filtered out on the event paths (#1220);
//! - **the gap** of classic Swarm (`classic-17.03`): `watchMiss` turns
//!   every l3miss into `resolvePeer` + `peerAdd` *with no locality
//!   check*, so an ARP request for a local container that reaches vxlan1
//!   programs that local container as a peer at this host's own VTEP;
//!   the miss path's `peerAdd` programs exactly what the join path's
//!   does: the neighbour entry, then the FDB entry
//!   ([`system::miss_path`]). l2misses carry no IPv4 destination and the
//!   era's `watchMiss` skipped them (`neigh.IP.To4() == nil`);
//! - swarm mode (`swarm-mode`) runs no `watchMiss` for its networks (#2047).
//!
//! Fixes ([`Fix`]) are variants a scenario combines with a profile.

pub mod cluster;
pub mod oracle;
pub mod system;
pub mod timed;
pub mod topology;

/// Where the driver stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OverlayProfile {
    /// The profile's name as written in scenario files.
    pub name: String,
    /// `watchMiss` programs peers from l3miss notifications.
    pub miss_handling: bool,
    /// `watchMiss` also handles l2miss notifications (later libnetwork:
    /// the peer's IP taken from its MAC). The 17.03 `watchMiss` skipped
    /// every notification without an IPv4 destination
    /// (`if neigh.IP.To4() == nil { continue }`), so it ignored l2misses.
    pub l2_miss_handling: bool,
    /// The fixes applied.
    pub fixes: Vec<Fix>,
}

/// The built-in profiles.
pub const PROFILE_NAMES: [&str; 2] = ["classic-17.03", "swarm-mode"];

/// A candidate fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fix {
    /// The miss path skips peers whose VTEP is this host.
    LocalityCheck,
    /// `bridge link set dev vxlan1 learning off` on every host.
    LearningOff,
    /// Local peers get a vxlan FDB entry with remote 0.0.0.0
    /// ("bridge-local"), which `arp_reduce` refuses to answer for.
    VxlanFdbZero,
    /// `bridge link set dev vxlan1 neigh_suppress on`, alone.
    NeighSuppress,
    /// The seed's workaround: delete vxlan1's static ARP entries for local
    /// containers (an operator job that runs whenever there are some).
    DeleteLocalArp,
}

impl Fix {
    /// All fixes with their scenario names.
    pub const ALL: [(&'static str, Fix); 5] = [
        ("locality-check", Fix::LocalityCheck),
        ("learning-off", Fix::LearningOff),
        ("vxlan-fdb-zero", Fix::VxlanFdbZero),
        ("neigh-suppress", Fix::NeighSuppress),
        ("delete-local-arp", Fix::DeleteLocalArp),
    ];

    /// Parses a fix name.
    pub fn parse(name: &str) -> Option<Fix> {
        Fix::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The scenario name of the fix.
    pub fn name(self) -> &'static str {
        Fix::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .expect("listed")
    }
}

impl OverlayProfile {
    /// A built-in profile by name, without fixes.
    pub fn builtin(name: &str) -> Option<OverlayProfile> {
        let miss_handling = match name {
            "classic-17.03" => true,
            "swarm-mode" => false,
            _ => return None,
        };
        Some(OverlayProfile {
            name: name.to_string(),
            miss_handling,
            // Neither built-in profile programs peers from l2misses: the
            // 17.03 watchMiss ignored them, swarm mode runs no watchMiss.
            l2_miss_handling: false,
            fixes: Vec::new(),
        })
    }

    /// Whether a fix is applied.
    pub fn has(&self, fix: Fix) -> bool {
        self.fixes.contains(&fix)
    }

    /// One line for trace headers.
    pub fn summary(&self) -> String {
        let mut s = if self.miss_handling {
            if self.l2_miss_handling {
                "watchMiss programs peers from l2/l3 misses".to_string()
            } else {
                "watchMiss programs peers from l3 misses (l2 misses ignored)".to_string()
            }
        } else {
            "no miss handling (swarm mode)".to_string()
        };
        if !self.fixes.is_empty() {
            let names: Vec<&str> = self.fixes.iter().map(|f| f.name()).collect();
            s.push_str(&format!("; fixes: {}", names.join(", ")));
        }
        s
    }
}
