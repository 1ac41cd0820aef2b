//! Swarm mode's control plane as NetworkDB keeps it: a table of peer
//! entries per host with Lamport times, deletes kept as tombstones for a
//! retention period and then reaped, gossip of each write, and the
//! periodic bulk sync (anti-entropy) between two nodes. The incident is
//! libnetwork #1727: with deletes kept 60 s and a bulk sync every 30 s, a
//! node that misses the delete's gossip and the syncs until the
//! tombstone is reaped keeps the departed peer's entries for good.
//!
//! Upstream, read at docker/libnetwork (moby/libnetwork, Apache-2.0)
//! ac502ef8 (6d514496^, the parent of #1727's commit) and 6d514496
//! ("Avoid nDB stale entries because of intermittent nw issues.", merged
//! as 5dc95a3f on 2017-04-25, PR #1727, in Docker 17.06); rewritten from
//! the source, not copied:
//! - `networkdb/networkdb.go` `CreateEntry` / `DeleteEntry`: the owner
//!   writes its own entry with the next `tableClock` time and gossips a
//!   table event; a delete keeps the entry with `deleting` and
//!   `reapTime = reapInterval` ([`NdbEntry`], `Cluster::ndb_write`);
//! - `networkdb/delegate.go` `handleTableEvent`: a delete for an entry the
//!   node does not have is ignored; an event whose LTime is not newer
//!   than the local entry's is ignored; otherwise the entry is replaced
//!   (a delete becomes a tombstone with the *full* `reapInterval`, the
//!   receiver's own clock) and the watchers are told: the overlay
//!   driver's `EventNotify` calls `peerAdd` / `peerDelete`, ignoring its
//!   own host's peers (`drivers/overlay/joinleave.go`) — the same rules
//!   for gossip and for bulk sync (`Cluster::table_event`);
//! - `networkdb/cluster.go`: `reapInterval = 60 * time.Second` before
//!   #1727, `30 * time.Minute` after (the whole diff of 6d514496);
//!   `reapTableEntries` removes a tombstone once its `reapTime` ran out
//!   ([`ClusterAction::NdbReap`](super::ClusterAction::NdbReap)); `bulkSyncTables` runs every
//!   `PushPullInterval` (memberlist's `DefaultLANConfig`, 30 s), each node
//!   picking one peer (`mRandomNodes(1, ...)`) and sending every entry of
//!   the network, tombstones as delete events with their LTime
//!   (`bulkSyncNode`); the peer applies them (`handleBulkSync`) and, the
//!   sync being unsolicited, answers with its own entries
//!   ([`ClusterAction::NdbSync`](super::ClusterAction::NdbSync)). An entry absent from a bulk sync is not
//!   deleted: only a tombstone can carry a delete, so once every tombstone
//!   of a key is reaped, a node that still has the live entry keeps it.
//!   Worse, its next bulk sync hands the live entry back to nodes that
//!   reaped it: they have no entry, so they take it (the trace says so;
//!   libnetwork #1944 later made events carry the remaining reap time).
//!
//! Time is simulated and advanced in steps ([`ClusterAction::NdbTick`](super::ClusterAction::NdbTick)):
//! to the next bulk-sync round (every 30 s from the scenario's start), the
//! next tombstone's reap time or the end of the script's `wait`. At one
//! instant the reaps and the round's syncs come in any order the explorer
//! chooses (the reaper's and the sync tickers' phases are unrelated
//! upstream). After the script, time goes on while a tombstone is left
//! and the tables are not [`Cluster::settled`] (a sync could still change
//! one), so at quiescence either no bulk sync can change any table again
//! or no delete is left anywhere to repair a stale entry: what is stale
//! then is stale for good. The fault `sync_miss`
//! cuts a node off bulk sync for one round (CPU pegged, memory exhausted:
//! the PR's report): every sync it initiates or is picked for that round
//! is lost; each (node, round) takes one from the budget.
//!
//! Not modelled: the reaper's 5 s granularity (`reapPeriod`: a tombstone
//! goes 60-65 s after its delete; here exactly at the retention), the
//! tickers' own phases per node (every node's round is at the same
//! multiples of 30 s, nodes initiating in host order), gossip's
//! rebroadcast of an applied event to other nodes and its retransmits
//! (the owner's gossip reaches each node directly, or is lost by the
//! `drop` fault), the node and network tables (`reapNetworks`,
//! `deleteNodeTableEntries` on a node's failure: scenarios with NetworkDB
//! profiles may not `fail`, `rejoin` or `restart`), LTime as one
//! Lamport clock per node (the model counts writes per key: every write
//! to a key is its owner's, so the order the rule compares is the same),
//! encryption, and the values' contents (a peer record is its endpoint).

use std::collections::BTreeMap;

use super::{Cluster, ClusterState, Cx, Event, HostState, KernelStep};
use crate::sim::Trace;

/// A variant's NetworkDB constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetDb {
    /// `reapInterval`: how long a delete is kept as a tombstone, seconds.
    pub reap_s: u32,
    /// memberlist's `PushPullInterval`: the bulk-sync period, seconds.
    pub bulk_sync_s: u32,
}

/// One entry of a host's `overlay_peer_table`, keyed by endpoint ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NdbEntry {
    /// The LTime of the write it holds.
    pub ltime: u16,
    /// A delete kept until it is reaped.
    pub deleting: bool,
    /// For a tombstone: the simulated second the reaper removes it.
    pub reap_at: u32,
}

/// A host's NetworkDB table: endpoint → entry.
pub type NdbTable = BTreeMap<u16, NdbEntry>;

/// NetworkDB's timers in the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NdbClock {
    /// The end of the script's current `wait`, simulated seconds.
    pub wait_until: u32,
    /// The bulk-sync round at the current instant: the hosts that have
    /// yet to initiate theirs (one bit per host).
    pub pending: u8,
    /// The hosts cut off from bulk sync this round (`sync_miss`).
    pub cut: u8,
}

impl Cluster {
    /// Every host's table at the settled start: each live endpoint's
    /// create, LTime 1 (empty without NetworkDB).
    pub(super) fn ndb_init(&self) -> Vec<NdbTable> {
        if self.profile.networkdb.is_none() {
            return Vec::new();
        }
        let table: NdbTable = (0..self.spec.endpoints.len())
            .filter(|&e| self.spec.endpoints[e].live)
            .map(|e| {
                (
                    e as u16,
                    NdbEntry {
                        ltime: 1,
                        deleting: false,
                        reap_at: 0,
                    },
                )
            })
            .collect();
        vec![table; self.spec.hosts.len()]
    }

    /// The owner's `CreateEntry` (`join`) or `DeleteEntry` of endpoint
    /// `e`'s peer record: the next LTime, a delete kept as a tombstone.
    pub(super) fn ndb_write(&self, s: &mut ClusterState, e: usize, join: bool, trace: &mut Trace) {
        let Some(ndb) = self.profile.networkdb else {
            return;
        };
        let owner = self.spec.endpoints[e].host;
        let now = s.now_s;
        let table = &mut s.ndb[owner];
        let ltime = table.get(&(e as u16)).map_or(0, |x| x.ltime) + 1;
        table.insert(
            e as u16,
            NdbEntry {
                ltime,
                deleting: !join,
                reap_at: if join { 0 } else { now + ndb.reap_s },
            },
        );
        if !join {
            trace.line(format!(
                "{}'s NetworkDB keeps the delete of {} (LTime {ltime}) until t = {} s and gossips it",
                self.spec.hosts[owner].name,
                self.spec.endpoints[e].name,
                now + ndb.reap_s
            ));
        }
    }

    /// The LTime an event about `e` carries: its owner's entry's.
    pub(super) fn ndb_ltime(&self, s: &ClusterState, e: usize) -> u16 {
        let owner = self.spec.endpoints[e].host;
        s.ndb
            .get(owner)
            .and_then(|t| t.get(&(e as u16)))
            .map_or(0, |x| x.ltime)
    }

    /// `handleTableEvent` on a host, then the driver's `EventNotify`.
    pub(super) fn table_event(
        &self,
        h: &mut HostState,
        table: &mut NdbTable,
        ev: Event,
        now_s: u32,
        cx: &mut Cx<'_>,
    ) {
        let ndb = self.profile.networkdb.expect("a NetworkDB profile");
        let name = self.ep_name(ev.endpoint).to_string();
        match table.get(&ev.endpoint) {
            None if !ev.join => {
                cx.trace.line(format!(
                    "NetworkDB: delete of {name} (LTime {}) for an entry it does not have: nothing to do",
                    ev.ltime
                ));
                return;
            }
            Some(x) if x.ltime >= ev.ltime => {
                cx.trace.line(format!(
                    "NetworkDB: {ev} of {name} is not newer than its entry (LTime {}): ignored",
                    x.ltime
                ));
                return;
            }
            None => cx.trace.line(format!(
                "NetworkDB: no entry for {name}: the create (LTime {}) is taken",
                ev.ltime
            )),
            Some(_) => {}
        }
        table.insert(
            ev.endpoint,
            NdbEntry {
                ltime: ev.ltime,
                deleting: !ev.join,
                reap_at: if ev.join { 0 } else { now_s + ndb.reap_s },
            },
        );
        let e = ev.endpoint as usize;
        if self.spec.endpoints[e].host == cx.host {
            cx.trace.line(format!(
                "EventNotify: {name} is a local peer: ignored by the driver"
            ));
            return;
        }
        if ev.join {
            self.remote_join(h, e, cx);
        } else {
            cx.trace.line(format!(
                "NetworkDB keeps the delete of {name} until t = {} s",
                now_s + ndb.reap_s
            ));
            self.remote_leave(h, e, cx);
        }
    }

    /// No bulk sync can change any table again: per key, every host has
    /// the same live entry, or the same tombstone or nothing. Syncs then
    /// only meet entries that are not newer, or deletes of entries the
    /// receiver does not have; reaps only take tombstones.
    pub fn settled(tables: &[NdbTable]) -> bool {
        let keys: std::collections::BTreeSet<u16> =
            tables.iter().flat_map(|t| t.keys().copied()).collect();
        keys.into_iter().all(|k| {
            let mut seen: Option<(u16, bool)> = None;
            let mut missing = false;
            for t in tables {
                match t.get(&k) {
                    None => missing = true,
                    Some(x) => match seen {
                        None => seen = Some((x.ltime, x.deleting)),
                        Some(v) if v != (x.ltime, x.deleting) => return false,
                        Some(_) => {}
                    },
                }
            }
            !missing || seen.is_some_and(|(_, deleting)| deleting)
        })
    }

    fn due(table: &NdbTable, now: u32) -> bool {
        table.values().any(|x| x.deleting && x.reap_at <= now)
    }

    /// The script may take its next step: the current wait is over and
    /// nothing of this instant is left (reaps, the round's syncs).
    pub(super) fn ndb_script_ready(&self, s: &ClusterState) -> bool {
        self.profile.networkdb.is_none()
            || (s.now_s >= s.clock.wait_until
                && s.clock.pending == 0
                && !s.ndb.iter().any(|t| Self::due(t, s.now_s)))
    }

    /// The next instant a timer fires, if time is to pass: the script
    /// waits, or it is done and a tombstone is left somewhere.
    pub(super) fn next_instant(&self, s: &ClusterState) -> Option<u32> {
        let ndb = self.profile.networkdb?;
        let waiting = s.now_s < s.clock.wait_until;
        let tombstones = s.ndb.iter().flat_map(|t| t.values()).filter(|x| x.deleting);
        let done = s.pc as usize == self.spec.script.len();
        let open = tombstones.clone().next().is_some() && !Self::settled(&s.ndb);
        if !(waiting || done && open) {
            return None;
        }
        let mut t = (s.now_s / ndb.bulk_sync_s + 1) * ndb.bulk_sync_s;
        for x in tombstones {
            if x.reap_at > s.now_s {
                t = t.min(x.reap_at);
            }
        }
        if waiting {
            t = t.min(s.clock.wait_until);
        }
        Some(t)
    }

    /// NetworkDB's enabled steps: due reaps, the round's next sync, and
    /// time passing once everything else of this instant is done.
    pub(super) fn ndb_actions(&self, s: &ClusterState, out: &mut Vec<super::ClusterAction>) {
        use super::ClusterAction;
        let Some(ndb) = self.profile.networkdb else {
            return;
        };
        let mut due = false;
        for (hi, t) in s.ndb.iter().enumerate() {
            if Self::due(t, s.now_s) {
                due = true;
                out.push(ClusterAction::NdbReap { host: hi as u16 });
            }
        }
        if s.clock.pending != 0 {
            let from = s.clock.pending.trailing_zeros() as u16;
            for to in 0..self.spec.hosts.len() as u16 {
                if to != from {
                    out.push(ClusterAction::NdbSync { from, to });
                }
            }
            return;
        }
        if due || !Self::drained(s) {
            return;
        }
        let Some(t) = self.next_instant(s) else {
            return;
        };
        if !t.is_multiple_of(ndb.bulk_sync_s) {
            out.push(ClusterAction::NdbTick { cut: 0 });
            return;
        }
        let n = self.spec.hosts.len() as u32;
        for cut in 0..(1u32 << n) {
            if cut.count_ones() <= u32::from(s.faults.sync_miss) {
                out.push(ClusterAction::NdbTick { cut: cut as u8 });
            }
        }
    }

    /// Time passes to the next instant; a bulk-sync round opens there.
    pub(super) fn ndb_tick(&self, s: &mut ClusterState, cut: u8, trace: &mut Trace) -> KernelStep {
        let ndb = self.profile.networkdb.expect("a NetworkDB profile");
        let t = self.next_instant(s).expect("an enabled tick");
        let secs = t - s.now_s;
        let step = self.pass_time(s, secs, trace);
        if t.is_multiple_of(ndb.bulk_sync_s) {
            s.clock.pending = ((1u16 << self.spec.hosts.len()) - 1) as u8;
            s.clock.cut = cut;
            s.faults.sync_miss -= cut.count_ones() as u8;
            trace.line(format!("bulk-sync round at t = {t} s"));
            for hi in 0..self.spec.hosts.len() {
                if cut & (1 << hi) != 0 {
                    trace.line(format!(
                        "{} is cut off from bulk sync this round (its push/pulls fail)",
                        self.spec.hosts[hi].name
                    ));
                }
            }
        }
        step
    }

    /// `reapTableEntries` on `host`: its tombstones whose time ran out go.
    pub(super) fn ndb_reap(&self, s: &mut ClusterState, host: usize, trace: &mut Trace) {
        let now = s.now_s;
        let gone: Vec<u16> = s.ndb[host]
            .iter()
            .filter(|(_, x)| x.deleting && x.reap_at <= now)
            .map(|(e, _)| *e)
            .collect();
        for e in gone {
            s.ndb[host].remove(&e);
            trace.line(format!(
                "{}'s reaper removes the tombstone of {}: no trace of its delete is left there",
                self.spec.hosts[host].name,
                self.ep_name(e)
            ));
        }
    }

    /// `bulkSyncNode` from `from` to `to`, `handleBulkSync` there and its
    /// answer back, unless one of them is cut off this round.
    pub(super) fn ndb_sync(
        &self,
        s: &mut ClusterState,
        from: usize,
        to: usize,
        trace: &mut Trace,
    ) -> KernelStep {
        s.clock.pending &= !(1 << from);
        let cut = s.clock.cut;
        if s.clock.pending == 0 {
            // The round is over: who was cut off no longer matters.
            s.clock.cut = 0;
        }
        let (a, b) = (&self.spec.hosts[from].name, &self.spec.hosts[to].name);
        for x in [from, to] {
            if cut & (1 << x) != 0 {
                trace.line(format!(
                    "{a}'s bulk sync with {b} fails: {} is cut off",
                    self.spec.hosts[x].name
                ));
                return KernelStep::None;
            }
        }
        let mut steps = Vec::new();
        for (src, dst) in [(from, to), (to, from)] {
            trace.line(format!(
                "{} sends {} its {} entries",
                self.spec.hosts[src].name,
                self.spec.hosts[dst].name,
                s.ndb[src].len()
            ));
            let events: Vec<Event> = s.ndb[src]
                .iter()
                .map(|(e, x)| Event {
                    join: !x.deleting,
                    endpoint: *e,
                    ltime: x.ltime,
                })
                .collect();
            let mut cx = Cx {
                host: dst,
                now_s: s.now_s,
                trace: &mut *trace,
                calls: Vec::new(),
            };
            let now = s.now_s;
            for ev in events {
                self.table_event(&mut s.hosts[dst], &mut s.ndb[dst], ev, now, &mut cx);
            }
            if !cx.calls.is_empty() {
                steps.push((dst, cx.calls));
            }
        }
        KernelStep::Drivers(steps)
    }

    /// What the NetworkDB tables hold, for the summary.
    pub(super) fn ndb_summary(&self, s: &ClusterState, out: &mut Vec<String>) {
        for (hi, t) in s.ndb.iter().enumerate() {
            let entries: Vec<String> = t
                .iter()
                .map(|(e, x)| {
                    if x.deleting {
                        format!(
                            "{} deleted (LTime {}, reaped at t = {} s)",
                            self.ep_name(*e),
                            x.ltime,
                            x.reap_at
                        )
                    } else {
                        format!("{} (LTime {})", self.ep_name(*e), x.ltime)
                    }
                })
                .collect();
            out.push(format!(
                "{} NetworkDB: {}",
                self.spec.hosts[hi].name,
                if entries.is_empty() {
                    "(empty)".into()
                } else {
                    entries.join(", ")
                }
            ));
        }
    }
}
