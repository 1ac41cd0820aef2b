//! The allocator's sequence diagrams ([`Model::lanes`], [`Model::sketch`]):
//! one lane per `docker run` and `docker rm`, one per daemon's handle
//! (with its locks), and one for the store when the profile has one.
//!
//! Each phase is drawn where it acts: `precheck` and `compute` read the
//! handle (an arrow from the handle to the actor, labelled with what was
//! read: the free counter, the ordinal found), `read` refreshes the
//! handle from the store, `write` is the `AtomicPut` to the store (and
//! its answer), `commit` overwrites the handle with the actor's copy. The
//! marks are read off the states before and after the step: the address
//! an endpoint now holds or no longer holds, the handle's new contents,
//! the store's new index, a retry. Only replay calls this.

use super::*;
use crate::sim::{Arrow, ArrowKind, Lane, Mark, Sketch};

impl IpamSystem {
    /// The lanes in drawing order: per daemon its actors then its handle,
    /// then the store.
    pub(super) fn diagram_lanes(&self) -> Vec<Lane> {
        let mut out = Vec::new();
        for d in 0..self.init.daemons.len() {
            let group = format!("daemon{d}");
            for def in self.actors.iter().filter(|a| a.daemon == d) {
                let kind = if def.run { "run" } else { "rm" };
                out.push(Lane::new(
                    &group,
                    &format!("{kind} {}", self.containers[def.container]),
                ));
            }
            out.push(Lane::new(&group, "handle"));
        }
        if self.init.store.is_some() {
            out.push(Lane::new("", "store"));
        }
        out
    }

    fn actor_lane(&self, i: usize) -> usize {
        let d = self.actors[i].daemon;
        // Every daemon before d: its actors and its handle.
        let before: usize = (0..d)
            .map(|x| self.actors.iter().filter(|a| a.daemon == x).count() + 1)
            .sum();
        before + self.actors[..i].iter().filter(|a| a.daemon == d).count()
    }

    fn handle_lane(&self, d: usize) -> usize {
        (0..=d)
            .map(|x| self.actors.iter().filter(|a| a.daemon == x).count() + 1)
            .sum::<usize>()
            - 1
    }

    fn store_lane(&self) -> usize {
        self.handle_lane(self.init.daemons.len() - 1) + 1
    }

    /// A step as the diagram draws it ([`Model::sketch`]).
    pub(super) fn diagram_step(&self, a: &IpamState, step: &Step, b: &IpamState) -> Sketch {
        let i = step.actor as usize;
        let def = &self.actors[i];
        let phase = def.program[a.actors[i].pc as usize];
        let me = self.actor_lane(i);
        let handle = self.handle_lane(def.daemon);
        let name = &self.containers[def.container];
        let call = |from: usize, to: usize, label: String| Arrow {
            from,
            to,
            label,
            kind: ArrowKind::Call,
        };
        let mark = |lane: usize, text: String, change: bool| Mark { lane, text, change };
        let mut arrows = Vec::new();
        let mut marks = Vec::new();
        match step.fault {
            Fault::None => {}
            Fault::Crash => {
                for (j, d) in self.actors.iter().enumerate() {
                    if d.daemon == def.daemon
                        && b.actors[j].outcome == Outcome::Crashed
                        && a.actors[j].outcome != Outcome::Crashed
                    {
                        marks.push(mark(self.actor_lane(j), "dies".to_string(), true));
                    }
                }
                if b.store.is_some() {
                    arrows.push(call(
                        self.store_lane(),
                        handle,
                        format!(
                            "restart: GetObject: index 0x{:x}",
                            b.daemons[def.daemon].handle.db_index
                        ),
                    ));
                }
                marks.push(mark(handle, "daemon fails, restarts".to_string(), true));
                return Sketch {
                    lane: Some(me),
                    what: format!("daemon{} fails hard", def.daemon),
                    arrows,
                    marks,
                };
            }
            Fault::AnswerLost | Fault::RequestLost => {
                let store = self.store_lane();
                let index = a.actors[i].copy.as_ref().map_or(0, |c| c.db_index);
                arrows.push(call(me, store, format!("AtomicPut at index 0x{index:x}")));
                let applied = a.store != b.store;
                if applied {
                    let now = b
                        .store
                        .as_ref()
                        .and_then(|s| s.get(&self.store_key))
                        .map_or(0, |e| e.index());
                    marks.push(mark(
                        store,
                        format!("index 0x{now:x}: {name}'s copy (answer lost)"),
                        true,
                    ));
                }
                marks.push(mark(me, "timeout: set() fails".to_string(), false));
                return Sketch {
                    lane: Some(me),
                    what: if step.fault == Fault::AnswerLost {
                        "write: the answer is lost"
                    } else {
                        "write: the request is lost"
                    }
                    .to_string(),
                    arrows,
                    marks,
                };
            }
        }
        let what = match phase {
            Phase::NetLock => {
                marks.push(mark(handle, format!("network lock: {name}"), true));
                "networkLocker.Lock".to_string()
            }
            Phase::NetUnlock => {
                marks.push(mark(handle, "network lock: free".to_string(), true));
                "networkLocker.Unlock".to_string()
            }
            Phase::Delete => {
                if let Some(o) = a.holders[def.container] {
                    marks.push(mark(
                        me,
                        format!("no longer holds {}", self.pool.address(o)),
                        true,
                    ));
                }
                if self.endpoints {
                    arrows.push(call(
                        me,
                        self.store_lane(),
                        "deleteFromStore(ep)".to_string(),
                    ));
                    "endpoint and its record deleted".to_string()
                } else {
                    "endpoint deleted".to_string()
                }
            }
            Phase::EpStore => {
                let store = self.store_lane();
                arrows.push(call(me, store, "updateToStore(ep)".to_string()));
                if let Some(o) = b.records[def.container] {
                    marks.push(mark(
                        store,
                        format!("record {name}: {}", self.pool.address(o)),
                        true,
                    ));
                }
                "epstore: the endpoint's record".to_string()
            }
            Phase::Join => {
                marks.push(mark(me, "joined: up".to_string(), true));
                "join: the sandbox lists the endpoint".to_string()
            }
            Phase::Lookup => {
                arrows.push(call(
                    self.store_lane(),
                    me,
                    format!("EndpointByName({name})"),
                ));
                if b.actors[i].outcome == Outcome::NameTaken {
                    marks.push(mark(me, "already exists: fails".to_string(), false));
                }
                "lookup (CreateEndpoint)".to_string()
            }
            Phase::Disconnect => {
                let store = self.store_lane();
                arrows.push(call(
                    me,
                    store,
                    "disconnect -f: deleteFromStore(ep)".to_string(),
                ));
                if let Some(o) = a.records[def.container] {
                    marks.push(mark(
                        store,
                        format!("record {name} ({}) deleted", self.pool.address(o)),
                        true,
                    ));
                }
                "disconnect -f".to_string()
            }
            Phase::Precheck => {
                let unselected = a.daemons[def.daemon].handle.bm.unselected();
                arrows.push(call(handle, me, format!("Unselected() = {unselected}")));
                if b.actors[i].outcome == Outcome::NoAddress {
                    marks.push(mark(me, "no address: fails".to_string(), false));
                }
                "precheck (SetAny)".to_string()
            }
            Phase::Read => {
                if self.profile.holds_lock_through_commit() {
                    marks.push(mark(handle, format!("handle lock: {name}"), true));
                }
                match (
                    &a.store,
                    b.store.as_ref().and_then(|s| s.get(&self.store_key)),
                ) {
                    (Some(_), Some(entry)) => {
                        arrows.push(call(
                            self.store_lane(),
                            handle,
                            format!("GetObject: index 0x{:x}", entry.index()),
                        ));
                        let (x, y) = (&a.daemons[def.daemon].handle, &b.daemons[def.daemon].handle);
                        if x != y {
                            marks.push(mark(
                                handle,
                                format!(
                                    "refreshed: index 0x{:x}, unselected {}",
                                    y.db_index,
                                    y.bm.unselected()
                                ),
                                true,
                            ));
                        }
                        "read: refresh from the store".to_string()
                    }
                    _ => "read: no store (local scope)".to_string(),
                }
            }
            Phase::Compute => match (b.actors[i].ordinal, &b.actors[i].copy) {
                (Some(o), Some(_)) => {
                    let how = if def.run { "found" } else { "to release" };
                    arrows.push(call(
                        handle,
                        me,
                        format!(
                            "ordinal {o} ({}) {how}; nh := getCopy()",
                            self.pool.address(o)
                        ),
                    ));
                    "compute".to_string()
                }
                _ => {
                    marks.push(mark(me, "search fails: no address".to_string(), false));
                    "compute".to_string()
                }
            },
            Phase::Modify => {
                let o = a.actors[i].ordinal.unwrap_or_default();
                marks.push(mark(
                    me,
                    format!(
                        "nh: {} {}",
                        if def.run { "reserve" } else { "free" },
                        self.pool.address(o)
                    ),
                    false,
                ));
                "pushReservation on nh".to_string()
            }
            Phase::Write => match (&a.store, &a.actors[i].copy) {
                (Some(_), Some(copy)) => {
                    let store = self.store_lane();
                    arrows.push(call(
                        me,
                        store,
                        format!("AtomicPut at index 0x{:x}", copy.db_index),
                    ));
                    if b.actors[i].copy.is_some() {
                        let index = b
                            .store
                            .as_ref()
                            .and_then(|s| s.get(&self.store_key))
                            .map_or(0, |e| e.index());
                        marks.push(mark(
                            store,
                            format!("index 0x{index:x}: {name}'s copy"),
                            true,
                        ));
                        "write: AtomicPut succeeds".to_string()
                    } else {
                        marks.push(mark(
                            me,
                            "ErrKeyModified: retry from read".to_string(),
                            false,
                        ));
                        "write: AtomicPut fails".to_string()
                    }
                }
                _ => "write: no store, nothing checked".to_string(),
            },
            Phase::Commit => {
                let y = &b.daemons[def.daemon].handle;
                arrows.push(call(me, handle, "commit nh".to_string()));
                marks.push(mark(
                    handle,
                    format!("= {name}'s copy: unselected {}", y.bm.unselected()),
                    true,
                ));
                if self.profile.holds_lock_through_commit() {
                    marks.push(mark(handle, "handle lock: free".to_string(), true));
                }
                match b.actors[i].outcome {
                    Outcome::Allocated(o) => {
                        marks.push(mark(me, format!("holds {}", self.pool.address(o)), true))
                    }
                    Outcome::Released(o) => {
                        marks.push(mark(me, format!("released {}", self.pool.address(o)), true))
                    }
                    _ => {}
                }
                "commit".to_string()
            }
        };
        Sketch {
            lane: Some(me),
            what,
            arrows,
            marks,
        }
    }
}
