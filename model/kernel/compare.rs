//! The model's prediction and the kernel's observation, table by table.
//!
//! Both sides are [`Observables`] computed the same way
//! ([`crate::overlay::oracle::observe`] for the model, [`super::run()`] for
//! the kernel: the same frame parser over the frames each container
//! received, the same key spelling), plus the frames themselves. A
//! [`Comparison`] is a list of [`Table`]s of [`Row`]s, one row per key
//! present on either side; a row agrees when both sides hold the same
//! value. Nothing is rendered here (see `cli/output.rs`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::overlay::oracle::Observables;
use crate::overlay::system::OverlaySystem;
use crate::wire::build;

/// One key of a table, as the model and the kernel see it (`None`:
/// absent on that side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The key (a MAC, an IP, a container).
    pub key: String,
    /// The model's value.
    pub model: Option<String>,
    /// The kernel's value.
    pub kernel: Option<String>,
    /// Whether they agree.
    pub agree: bool,
    /// For frame rows that disagree: the frames on each side, described.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<(Vec<String>, Vec<String>)>,
}

/// One table of the comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Table {
    /// What the table is (`host1 br0 fdb: MAC -> port`).
    pub name: String,
    /// Its rows, by key.
    pub rows: Vec<Row>,
}

impl Table {
    /// True when every row agrees.
    pub fn agree(&self) -> bool {
        self.rows.iter().all(|r| r.agree)
    }
}

/// Every table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The tables, in a fixed order: per host br0 FDB, vxlan1 FDB, vxlan1
    /// neighbours; then ARP replies, data frames, frames received.
    pub tables: Vec<Table>,
}

impl Comparison {
    /// True when every table agrees.
    pub fn agree(&self) -> bool {
        self.tables.iter().all(Table::agree)
    }

    /// The names of the tables that disagree.
    pub fn disagreeing(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| !t.agree())
            .map(|t| t.name.as_str())
            .collect()
    }
}

fn map_table(
    name: String,
    model: &BTreeMap<String, String>,
    kernel: &BTreeMap<String, String>,
) -> Table {
    let mut keys: Vec<&String> = model.keys().chain(kernel.keys()).collect();
    keys.sort();
    keys.dedup();
    Table {
        name,
        rows: keys
            .into_iter()
            .map(|k| {
                let (m, o) = (model.get(k).cloned(), kernel.get(k).cloned());
                Row {
                    key: k.clone(),
                    agree: m == o,
                    model: m,
                    kernel: o,
                    detail: None,
                }
            })
            .collect(),
    }
}

fn host(v: &[BTreeMap<String, String>], h: usize) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    v.get(h).unwrap_or(&EMPTY)
}

/// The events whose predicted effect never showed on the kernel, as a
/// table: a divergence at any step is a disagreement, even when the
/// final tables agree.
pub fn events_table(events: &[crate::kernel::EventLog]) -> Table {
    Table {
        name: "events (predicted effect showed after each)".into(),
        rows: events
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.reached)
            .map(|(i, e)| Row {
                key: format!("event {}", i + 1),
                model: Some("effect shows".into()),
                kernel: Some(e.missing.clone().unwrap_or_else(|| "not reached".into())),
                agree: false,
                detail: None,
            })
            .collect(),
    }
}

/// Compares the model's `expected` observables and `expected_frames` (per
/// container) with the kernel's.
pub fn compare(
    model: &OverlaySystem,
    expected: &Observables,
    expected_frames: &[Vec<Vec<u8>>],
    observed: &Observables,
    observed_frames: &[Vec<Vec<u8>>],
) -> Comparison {
    let mut tables = Vec::new();
    for (h, name) in model.host_names().iter().enumerate() {
        tables.push(map_table(
            format!("{name} br0 fdb (container MAC -> port)"),
            host(&expected.br0_fdb, h),
            host(&observed.br0_fdb, h),
        ));
        tables.push(map_table(
            format!("{name} vxlan1 fdb (MAC -> dst)"),
            host(&expected.vxlan_fdb, h),
            host(&observed.vxlan_fdb, h),
        ));
        tables.push(map_table(
            format!("{name} vxlan1 neighbours (IP -> MAC)"),
            host(&expected.vxlan_neigh, h),
            host(&observed.vxlan_neigh, h),
        ));
        tables.push(map_table(
            format!("{name} entry flags (entry -> flags)"),
            host(&expected.flags, h),
            host(&observed.flags, h),
        ));
    }
    let replies = |o: &Observables| -> BTreeMap<String, String> {
        o.arp_replies
            .iter()
            .flat_map(|(c, by)| {
                by.iter()
                    .map(move |(sender, n)| (format!("{c} <- {sender}"), n.to_string()))
            })
            .collect()
    };
    tables.push(map_table(
        "ARP replies received (container <- sender IP: count)".into(),
        &replies(expected),
        &replies(observed),
    ));
    let data = |o: &Observables| -> BTreeMap<String, String> {
        o.data
            .iter()
            .map(|(c, ids)| {
                let v = if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.iter()
                        .map(|i| format!("#{i}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                (c.clone(), v)
            })
            .collect()
    };
    tables.push(map_table(
        "data frames received (container: ids)".into(),
        &data(expected),
        &data(observed),
    ));
    let mut rows = Vec::new();
    for (e, ep) in model.endpoints().iter().enumerate() {
        let describe = |frames: &[Vec<Vec<u8>>]| -> Vec<String> {
            frames
                .get(e)
                .map(|f| f.iter().map(|b| build::describe(b)).collect())
                .unwrap_or_default()
        };
        let bytes = |frames: &[Vec<Vec<u8>>]| -> Vec<Vec<u8>> {
            frames.get(e).cloned().unwrap_or_default()
        };
        // Frames agree when their bytes do: a description drops fields
        // (ARP sender and target addresses among them).
        let agree = bytes(expected_frames) == bytes(observed_frames);
        let (mut m, mut k) = (describe(expected_frames), describe(observed_frames));
        if !agree && m == k {
            let hex = |frames: Vec<Vec<u8>>| -> Vec<String> {
                frames
                    .iter()
                    .map(|f| f.iter().map(|b| format!("{b:02x}")).collect::<String>())
                    .collect()
            };
            m = hex(bytes(expected_frames));
            k = hex(bytes(observed_frames));
        }
        rows.push(Row {
            key: ep.name.clone(),
            model: Some(format!("{} frame(s)", m.len())),
            kernel: Some(format!("{} frame(s)", k.len())),
            agree,
            detail: (!agree).then_some((m, k)),
        });
    }
    tables.push(Table {
        name: "frames received on eth0 (count; equal = same frames in the same order)".into(),
        rows,
    });
    Comparison { tables }
}

/// The comparison the CLI's verdict is made on: [`compare()`] of the
/// plan's prediction and the run's observation, plus [`events_table`] of
/// the run (a step whose predicted effect never showed disagrees).
pub fn compare_run(
    model: &OverlaySystem,
    plan: &crate::overlay::oracle::Plan,
    run: &crate::kernel::KernelRun,
) -> Comparison {
    let mut c = compare(
        model,
        &plan.expected,
        &plan.received,
        &run.observed,
        &run.frames,
    );
    c.tables.push(events_table(&run.events));
    c
}
