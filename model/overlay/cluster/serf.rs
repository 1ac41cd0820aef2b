//! The classic control plane of the overlay driver (classic Swarm, an
//! external store, 2015-2017): serf user events, serf's replay of old
//! events to a node that joins, and the miss path (`watchMiss` →
//! `resolvePeer` → `peerAdd`) that libnetwork #1639 made the recovery
//! path.
//!
//! Upstream, read at moby/libnetwork (Apache-2.0) e1565882 ("Ignore
//! previous serf user events to avoid wrong fdb programming", merged as
//! 76ca6718, PR #1639) and its parent, and hashicorp/serf (MPL-2.0) as
//! vendored there (`vendor/github.com/hashicorp/serf/serf/delegate.go`,
//! `serf.go`); rewritten, not copied:
//! - `drivers/overlay/ov_serf.go` `notifyEvent`: every endpoint join and
//!   leave is a serf user event named `jl <vtep> <nid> <eid>`;
//!   `processEvent` drops the events whose VTEP is the node's own and
//!   calls `peerAdd`/`peerDelete` with `updateDb` for the others (the
//!   profiles' map driver, [`super::PeerDb::Map`]). The model keeps every
//!   event sent as serf's buffer ([`super::ClusterState::history`]; serf's
//!   `EventBuffer` is 512, more than a scenario can send).
//! - `serfJoin`: `serfInstance.Join([]string{neighIP}, false)` before
//!   #1639, `true` after ([`Classic::ignore_old`]); `overlay.go`
//!   `nodeJoin` then calls `pushLocalDb`, a join event per local endpoint.
//! - serf's `MergeRemoteState` (delegate.go) on the join's push/pull:
//!   with `ignoreOld` it first raises `eventMinTime` to the remote's
//!   `EventLTime`, so `handleUserEvent` drops every event older than the
//!   join; without, it hands every buffered event to `handleUserEvent`,
//!   walking the ring buffer slot by slot (slot = LTime mod 512): in
//!   Lamport order except where the ring wraps, which depends on the
//!   cluster's whole past. The replayed messages carry no coalesce flag,
//!   so serf's user-event coalescer does not fold a join and the leave of
//!   the same name. The model offers every wrap point
//!   ([`super::ClusterAction::Replay`]); the replay is a fault bounded by
//!   the scenario's `replay` budget (a join may also be handed nothing).
//! - a daemon restart without live-restore ([`super::Op::Restart`]): the
//!   driver's peer map and the osl's neighbour cache are memory and are
//!   gone; the overlay sandbox is created anew (`initSandbox(false)` after
//!   `cleanupStaleSandboxes`), so vxlan1 starts empty; the host's
//!   containers come back as local peers; serf joins.
//! - `ov_network.go` `watchMiss`: an `RTM_GETNEIGH` notification with an
//!   IPv4 address (an l3miss: an ARP request for an address vxlan1 has no
//!   neighbour entry for) in the network's subnet calls `resolvePeer`,
//!   which sends the serf query `peerlookup`; every member whose peer map
//!   has the address answers (`processQuery` → `peerDbSearch`, the first
//!   entry with that IP; the querying node too), and the first answer
//!   wins. Then `peerAdd(nid, "dummy", ip, mask, mac, vtep, true)`: the
//!   entry is written to the map under the endpoint ID `dummy`
//!   ([`DUMMY`]) and programmed (neighbour entry, FDB entry, each skipped
//!   when the sandbox's cache has it). An l2miss (no IPv4 address) is
//!   logged and ignored at e1565882; af9957a9, the next day, handles it.
//!   The map then holds an entry under `dummy`: when the container
//!   leaves, its event carries its real endpoint ID, `peerDbDelete`
//!   takes the mismatch for "possibly outdated" and keeps the entry, and
//!   `peerDelete` (same VTEP, other endpoint ID) deletes neither kernel
//!   entry: a host that learned a peer only through the miss path keeps
//!   it for good (`scenarios/overlay-miss-dummy.toml`). 396db359 (Aug
//!   2017) passes `updateDB = false` instead (the entry is programmed,
//!   not recorded), and #1935 (7447e54d, Oct 2017) made `peerDeleteOp`
//!   delete a remote peer's kernel entries whether or not the db had it;
//!   the profile `libnetwork-1935-classic` ([`super::PeerDb::Set`] with
//!   this control plane) stands for that driver.
//!   The explorer picks which answer arrives first
//!   ([`super::ClusterAction::Resolve`]); no answer is the one-second
//!   timeout.
//! - a failed node ([`super::Op::Fail`]) sends nothing: serf's member
//!   events do not reach the classic driver (`startSerfLoop` handles user
//!   events and queries only), so the others keep its peers.
//!
//! Not modelled: serf's Lamport clocks as numbers (the history's order
//! stands for them), the ring dropping events older than 512 sends, the
//! coalescer on live events (`UserCoalescePeriod` 1 s folds a join and a
//! leave of one endpoint sent within it), several push/pulls on a join,
//! live-restore (a restart that keeps the sandbox and its kernel entries),
//! new endpoint IDs for restarted containers, the KV-store watch of the
//! classic driver, and the proxy ARP answer itself (the `l2` kind models
//! the datapath; here an `arp` only decides whether there is a miss).

use std::net::Ipv4Addr;

use super::{
    Cluster, ClusterAction, ClusterState, Cx, Event, HostState, KernelStep, PeerDb, PeerEntry,
};
use crate::sim::Trace;
use crate::wire::EthernetAddress;

/// The endpoint ID `watchMiss` hands `peerAdd`: the string `"dummy"`.
pub const DUMMY: u16 = u16::MAX;

/// The classic driver's serf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Classic {
    /// `serfInstance.Join(..., ignoreOld)`: true from libnetwork #1639.
    pub ignore_old: bool,
}

impl Cluster {
    /// serf's buffer at the start: each live endpoint's join, as every
    /// node's `pushLocalDb` sent it (classic profiles only).
    pub(super) fn initial_history(&self) -> Vec<Event> {
        if self.profile.classic.is_none() {
            return Vec::new();
        }
        (0..self.spec.endpoints.len())
            .filter(|&e| self.spec.endpoints[e].live)
            .map(|e| Event {
                join: true,
                endpoint: e as u16,
                ltime: 0,
            })
            .collect()
    }

    /// The buffered events `processEvent` on `host` does not drop as its
    /// own, oldest first.
    fn replayable(&self, s: &ClusterState, host: usize) -> Vec<Event> {
        s.history
            .iter()
            .copied()
            .filter(|e| self.spec.endpoints[e.endpoint as usize].host != host)
            .collect()
    }

    /// At a restart, with budget left: a replay for every wrap point.
    pub(super) fn replay_actions(
        &self,
        s: &ClusterState,
        host: usize,
        out: &mut Vec<ClusterAction>,
    ) {
        if self.profile.classic.is_none() || s.faults.replay == 0 {
            return;
        }
        for wrap in 0..self.replayable(s, host).len() {
            out.push(ClusterAction::Replay { wrap: wrap as u16 });
        }
    }

    /// Every first answer each host's oldest l3miss can get.
    pub(super) fn resolve_actions(&self, s: &ClusterState, out: &mut Vec<ClusterAction>) {
        for (hi, h) in s.hosts.iter().enumerate() {
            let Some(&ip) = h.misses.front() else {
                continue;
            };
            let mut answers = std::collections::BTreeSet::new();
            for (r, rh) in s.hosts.iter().enumerate() {
                if !s.up[r] {
                    continue;
                }
                for p in rh.peers.get(&ip).into_iter().flatten() {
                    answers.insert((p.mac, p.vtep));
                }
            }
            let host = hi as u16;
            if answers.is_empty() {
                out.push(ClusterAction::Resolve { host, answer: None });
            }
            for a in answers {
                out.push(ClusterAction::Resolve {
                    host,
                    answer: Some(a),
                });
            }
        }
    }

    /// The daemon of `host` restarts; `wrap`: serf's replay, and where its
    /// ring wraps.
    pub(super) fn restart(
        &self,
        s: &mut ClusterState,
        host: usize,
        wrap: Option<usize>,
        trace: &mut Trace,
    ) -> KernelStep {
        let name = &self.spec.hosts[host].name;
        trace.line(format!(
            "{name}'s daemon restarts: its peer table and sandbox cache are gone; the overlay sandbox is created anew and vxlan1's tables are empty"
        ));
        s.up[host] = true;
        s.hosts[host] = HostState::empty();
        let mine = self.host_endpoints(s, host);
        let mut cx = Cx {
            host,
            now_s: s.now_s,
            trace,
            calls: Vec::new(),
        };
        for &e in &mine {
            self.local_join(&mut s.hosts[host], e, &mut cx);
        }
        let trace = cx.trace;
        match self.profile.classic {
            Some(classic) => {
                match wrap {
                    None => trace.line(format!(
                        "{name}'s serf joins the cluster: no old user event is handed over"
                    )),
                    Some(wrap) => {
                        s.faults.replay -= 1;
                        let mut old = self.replayable(s, host);
                        old.rotate_left(wrap);
                        let list: Vec<String> = old
                            .iter()
                            .map(|e| format!("{e} of {}", self.ep_name(e.endpoint)))
                            .collect();
                        if classic.ignore_old {
                            trace.line(format!(
                                "{name}'s serf Join(ignoreOld = true): the push/pull carries {} old user events, all older than eventMinTime: ignored",
                                old.len()
                            ));
                        } else {
                            trace.line(format!(
                                "{name}'s serf Join(ignoreOld = false): the push/pull replays serf's event buffer slot by slot{}: {}",
                                if wrap > 0 { " (its ring wraps)" } else { "" },
                                list.join(", ")
                            ));
                            s.hosts[host].inbox.extend(old);
                        }
                    }
                }
                trace.line(format!(
                    "pushLocalDb: {name} sends a join for each of its endpoints"
                ));
            }
            None => {
                // NetworkDB's bulk sync: the table as it is now.
                trace.line(format!(
                    "{name} rejoins NetworkDB: bulk sync gives it a join for every live remote endpoint"
                ));
                for e in 0..self.spec.endpoints.len() {
                    let owner = self.spec.endpoints[e].host;
                    if owner != host && s.live[e] && s.up[owner] {
                        s.hosts[host].inbox.push_back(Event {
                            join: true,
                            endpoint: e as u16,
                            ltime: 0,
                        });
                    }
                }
            }
        }
        for e in mine {
            self.announce(s, e, true);
        }
        KernelStep::Recreate { host }
    }

    /// A container on `host` asks for endpoint `e`'s address.
    pub(super) fn arp(&self, s: &mut ClusterState, host: usize, e: usize, trace: &mut Trace) {
        let ip = self.spec.endpoints[e].ip;
        let name = &self.spec.hosts[host].name;
        let h = &mut s.hosts[host];
        if let Some(n) = h.vx.neigh.get(&ip) {
            trace.line(format!(
                "{name} vxlan1 has {ip} lladdr {}: the proxy answers, no miss",
                n.mac
            ));
            return;
        }
        trace.line(format!(
            "{name} vxlan1 has no neighbour entry for {ip}: l3miss"
        ));
        if self.profile.classic.is_none() {
            trace.line("swarm mode runs no watchMiss: nothing resolves it");
        } else if !h.misses.contains(&ip) {
            h.misses.push_back(ip);
        }
    }

    /// `watchMiss` on `host`: `resolvePeer`'s first answer, then
    /// `peerAdd(nid, "dummy", ...)` with `updateDb`.
    pub(super) fn resolve(
        &self,
        s: &mut ClusterState,
        host: usize,
        answer: Option<(EthernetAddress, Ipv4Addr)>,
        trace: &mut Trace,
    ) -> KernelStep {
        let ip: Ipv4Addr = s.hosts[host]
            .misses
            .pop_front()
            .expect("a resolve is enabled only with a miss");
        let Some((mac, vtep)) = answer else {
            trace.line(format!(
                "could not resolve peer {ip}: timed out resolving peer by querying the cluster"
            ));
            return KernelStep::None;
        };
        trace.line(format!(
            "Received peer query response, mac {mac}, vtep {vtep}: peerAdd(dummy, {ip})"
        ));
        let mut cx = Cx {
            host,
            now_s: s.now_s,
            trace,
            calls: Vec::new(),
        };
        let h = &mut s.hosts[host];
        let entry = PeerEntry {
            endpoint: DUMMY,
            mac,
            vtep,
        };
        let r = match self.profile.peer_db {
            // e1565882: `peerAdd(..., updateDb = true)` writes the map
            // under the endpoint ID `dummy`, then programs both entries.
            PeerDb::Map => {
                self.map_put(h, ip, entry, &mut cx);
                self.osl_add(h, ip, mac, false, &mut cx)
                    .and_then(|()| self.osl_add(h, vtep, mac, true, &mut cx))
            }
            // From 396db359 `watchMiss` passes `updateDB = false`, and
            // #1935's `peerAddOp` then programs the kernel without a db
            // entry (the l3miss `force`s the neighbour entry over a stale
            // one).
            PeerDb::Set => {
                cx.trace
                    .line("peerAddOp(dummy, updateDB = false): programmed, not in the db");
                self.add_neighbor(h, ip, entry, true, &mut cx)
            }
        };
        if let Err(err) = r {
            cx.trace.line(format!(
                "could not add neighbor entry for missed peer: {err}"
            ));
            h.last_error = Some(format!("peerAdd of missed peer {ip} failed: {err}"));
        }
        KernelStep::Driver {
            host,
            calls: cx.calls,
        }
    }
}
