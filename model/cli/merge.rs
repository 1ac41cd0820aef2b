//! `netrace merge`: the JSON outputs of `netrace check --shard I/N`, for
//! I = 1..N, combined into the verdicts and counterexamples of one
//! unsharded run (docs/scaling.md).
//!
//! What is combined, per (scenario file, variant, property):
//! - the verdict: `violated` when some shard found a violation (every
//!   shard's violation is a real one); otherwise `holds` (or `vacuous`)
//!   only when every shard covered its part, since the parts together
//!   cover the bounded space ([`crate::explore::Shard`]); otherwise
//!   `unknown`, with the reason of the first incomplete shard;
//! - `complete`: every shard complete;
//! - the counterexample: not any shard's, but the one the unsharded run
//!   reports. The merge runs the variant's search again for that property
//!   alone, ending at its first violation (`Options::target`): the search
//!   visits the same states in the same order as the unsharded one up to
//!   that point, so the schedule, its shrinking and its token are the
//!   unsharded run's. This repeats the search up to the first violation
//!   (usually a small part of the space); the part the shards split is
//!   the rest, which proving the other properties needs. Should that
//!   search reach a bound first, the shortest shard counterexample is
//!   kept.
//! - `states`, `bytes`, `elapsed_ms`: the shards' sum, maximum and sum
//!   (work done, shared prefix and repeated states included; it is not
//!   the unsharded count).
//!
//! A missing, repeated or mismatched shard (another scenario content,
//! bound, strategy or reduction) is an error naming the file and line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use serde_json::Value;

use super::{emit, limits, output, Format, MergeArgs};
use crate::check::{judge, Counterexample, Judgement, PropertyResult, Run, VariantResult};
use crate::explore::{Bounds, Limits, Options, Shard, Stop, Strategy};
use crate::scenario::{self, InputError, Scenario, Verdict};

/// One row of a shard's output, as far as the merge needs it.
#[derive(Clone, Debug)]
struct Row {
    at: String,
    file: String,
    variant: String,
    property: String,
    verdict: String,
    unknown_reason: Option<String>,
    expected: Option<String>,
    complete: bool,
    stop: Option<String>,
    strategy: String,
    sampling: Option<(u64, u64, u32)>,
    reductions: Vec<String>,
    bounds: Bounds,
    states: u64,
    bytes: u64,
    elapsed_ms: f64,
    extra: Vec<(String, u64)>,
    scenario_hash: String,
    shard: Shard,
    counterexample: Option<Counterexample>,
}

fn field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a Value, InputError> {
    v.get(key).ok_or_else(|| {
        InputError::whole(
            at,
            format!("the row has no field {key:?}"),
            "give the JSON lines of `netrace check --shard I/N --format json`, unchanged",
        )
    })
}

fn bad(at: &str, key: &str, what: &str) -> InputError {
    InputError::whole(
        at,
        format!("field {key:?} is not {what}"),
        "give the JSON lines of `netrace check --shard I/N --format json`, unchanged",
    )
}

fn string(v: &Value, key: &str, at: &str) -> Result<String, InputError> {
    field(v, key, at)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| bad(at, key, "a string"))
}

fn opt_string(v: &Value, key: &str, at: &str) -> Result<Option<String>, InputError> {
    match field(v, key, at)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad(at, key, "a string or null")),
    }
}

fn uint(v: &Value, key: &str, at: &str) -> Result<u64, InputError> {
    field(v, key, at)?
        .as_u64()
        .ok_or_else(|| bad(at, key, "an unsigned integer"))
}

fn parse_row(v: &Value, at: &str) -> Result<Row, InputError> {
    let shard_text = opt_string(v, "shard", at)?.ok_or_else(|| {
        InputError::whole(
            at,
            "this row is not from a shard (its \"shard\" is null)",
            "merge the outputs of `netrace check --shard I/N --format json`",
        )
    })?;
    let shard = super::parse_shard(&shard_text).map_err(|_| bad(at, "shard", "I/N"))?;
    let sampling = match field(v, "sampling", at)? {
        Value::Null => None,
        s => Some((
            uint(s, "seed", at)?,
            uint(s, "runs", at)?,
            u32::try_from(uint(s, "depth", at)?).map_err(|_| bad(at, "depth", "a PCT depth"))?,
        )),
    };
    let reductions = field(v, "reductions", at)?
        .as_array()
        .ok_or_else(|| bad(at, "reductions", "an array"))?
        .iter()
        .map(|r| r.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad(at, "reductions", "an array of strings"))?;
    let extra = field(v, "extra", at)?
        .as_object()
        .ok_or_else(|| bad(at, "extra", "an object"))?
        .iter()
        .map(|(k, n)| n.as_u64().map(|n| (k.clone(), n)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad(at, "extra", "an object of integers"))?;
    let counterexample = match field(v, "counterexample", at)? {
        Value::Null => None,
        c => Some(Counterexample {
            steps: uint(c, "steps", at)? as usize,
            token: string(c, "token", at)?,
            message: string(c, "message", at)?,
        }),
    };
    let bounds = Bounds::default()
        .with(
            Some(uint(v, "max_states", at)? as i64),
            Some(uint(v, "max_depth", at)? as i64),
        )
        .map_err(|e| bad(at, e.bound, "a possible bound"))?;
    Ok(Row {
        at: at.to_string(),
        file: string(v, "file", at)?,
        variant: string(v, "variant", at)?,
        property: string(v, "property", at)?,
        verdict: string(v, "verdict", at)?,
        unknown_reason: opt_string(v, "unknown_reason", at)?,
        expected: opt_string(v, "expected", at)?,
        complete: field(v, "complete", at)?
            .as_bool()
            .ok_or_else(|| bad(at, "complete", "a boolean"))?,
        stop: opt_string(v, "stop", at)?,
        strategy: string(v, "strategy", at)?,
        sampling,
        reductions,
        bounds,
        states: uint(v, "states", at)?,
        bytes: uint(v, "bytes", at)?,
        elapsed_ms: field(v, "elapsed_ms", at)?
            .as_f64()
            .ok_or_else(|| bad(at, "elapsed_ms", "a number"))?,
        extra,
        scenario_hash: string(v, "scenario_hash", at)?,
        shard,
        counterexample,
    })
}

/// Every row of every file, with where it came from.
fn read_rows(files: &[PathBuf]) -> Result<Vec<Row>, InputError> {
    let mut rows = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let file = std::fs::File::open(f)
            .map_err(|e| InputError::whole(&name, format!("cannot open: {e}"), "check the path"))?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| {
                InputError::whole(&name, format!("cannot read: {e}"), "check the file")
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{name}:{}", n + 1);
            let v: Value = serde_json::from_str(&line).map_err(|e| {
                InputError::whole(
                    &at,
                    format!("not a JSON object: {e}"),
                    "give the JSON lines of `netrace check --shard I/N --format json`, unchanged",
                )
            })?;
            rows.push(parse_row(&v, &at)?);
        }
    }
    if rows.is_empty() {
        return Err(InputError::whole(
            "FILES",
            "no rows to merge",
            "give the JSON lines of `netrace check --shard I/N --format json`",
        ));
    }
    Ok(rows)
}

fn mismatch(row: &Row, what: &str) -> InputError {
    InputError::whole(
        &row.at,
        format!(
            "this shard of {} / {} has another {what} than shard 1",
            row.file, row.variant
        ),
        "run every shard with the same scenario file and the same options, differing only in --shard",
    )
}

fn strategy_of(row: &Row) -> Result<Strategy, InputError> {
    Ok(match (row.strategy.as_str(), row.sampling) {
        ("bfs", None) => Strategy::Bfs,
        ("dfs", None) => Strategy::Dfs,
        ("random", Some((seed, walks, _))) => Strategy::Random { seed, walks },
        ("pct", Some((seed, runs, depth))) => Strategy::Pct { seed, runs, depth },
        _ => {
            return Err(bad(
                &row.at,
                "strategy",
                "a known strategy with its sampling",
            ))
        }
    })
}

fn verdict_of(row: &Row) -> Result<Verdict, InputError> {
    parse_verdict(
        &row.verdict,
        row.unknown_reason.as_deref(),
        &row.at,
        "verdict",
    )
}

/// A row's verdict (`key` names its field) with the reason of an
/// `unknown`.
fn parse_verdict(
    verdict: &str,
    reason: Option<&str>,
    at: &str,
    key: &str,
) -> Result<Verdict, InputError> {
    Ok(match verdict {
        "holds" => Verdict::Holds,
        "violated" => Verdict::Violated,
        "vacuous" => Verdict::Vacuous,
        "unknown" => Verdict::Unknown(
            reason
                .and_then(Stop::parse)
                .ok_or_else(|| bad(at, "unknown_reason", "a known reason"))?,
        ),
        _ => return Err(bad(at, key, "a verdict")),
    })
}

/// Combines the shards of one variant. `shards[k]` holds the rows of
/// shard `k + 1`, in property order.
fn merge_variant(
    s: &Scenario,
    shards: &[Vec<Row>],
    limits: Limits,
) -> Result<VariantResult, InputError> {
    let first = &shards[0][0];
    let variant = s.find_variant(&first.variant, &first.at)?;
    let options = Options {
        bounds: first.bounds,
        limits,
        strategy: strategy_of(first)?,
        por: first.reductions.iter().any(|r| r == "por") || first.sampling.is_some(),
        symmetry: first.reductions.iter().any(|r| r == "symmetry") || first.sampling.is_some(),
        ..Options::default()
    };
    let names: Vec<&'static str> = variant.properties();
    for rows in shards {
        if rows
            .iter()
            .map(|r| r.property.as_str())
            .ne(names.iter().copied())
        {
            return Err(InputError::whole(
                &rows[0].at,
                format!(
                    "{} / {}: the rows' properties are not the model's ({})",
                    first.file,
                    first.variant,
                    names.join(", ")
                ),
                "give each shard's output once, complete, from this scenario file",
            ));
        }
        for r in rows {
            if r.strategy != first.strategy || r.sampling != first.sampling {
                return Err(mismatch(r, "strategy"));
            }
            if r.reductions != first.reductions {
                return Err(mismatch(r, "set of reductions"));
            }
            if r.bounds != first.bounds {
                return Err(mismatch(r, "bound"));
            }
        }
    }
    let complete = shards.iter().all(|rows| rows[0].complete);
    let stop = shards
        .iter()
        .find(|rows| !rows[0].complete)
        .and_then(|rows| rows[0].stop.as_deref().and_then(Stop::parse));
    let run = Run {
        scenario: s,
        options: &options,
        expect_holds: false,
        scenario_strategy: false,
    };
    let mut properties = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let column: Vec<&Row> = shards.iter().map(|rows| &rows[i]).collect();
        let verdicts = column
            .iter()
            .map(|r| verdict_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        let verdict = if verdicts.contains(&Verdict::Violated) {
            Verdict::Violated
        } else if !complete {
            Verdict::Unknown(stop.unwrap_or(Stop::Sampling))
        } else if verdicts.contains(&Verdict::Holds) {
            Verdict::Holds
        } else {
            Verdict::Vacuous
        };
        let counterexample = if verdict == Verdict::Violated {
            let target = Options {
                target: Some(i),
                ..options
            };
            let again = variant.check(
                Run {
                    options: &target,
                    ..run
                },
                &mut |_| {},
            );
            again.properties[i].counterexample.clone().or_else(|| {
                column
                    .iter()
                    .filter_map(|r| r.counterexample.clone())
                    .min_by_key(|c| c.steps)
            })
        } else {
            None
        };
        let expected = column
            .iter()
            .find_map(|r| r.expected.as_deref().map(|e| (e, &r.at)))
            .map(|(e, at)| parse_verdict(e, None, at, "expected"))
            .transpose()?;
        properties.push(PropertyResult {
            property: name,
            verdict,
            expected,
            judgement: judge(verdict, expected),
            counterexample,
        });
    }
    let hash = u32::from_str_radix(&first.scenario_hash, 16)
        .map_err(|_| bad(&first.at, "scenario_hash", "8 hex digits"))?;
    Ok(VariantResult {
        scenario: s.name.clone(),
        file: first.file.clone(),
        variant: first.variant.clone(),
        properties,
        states: shards.iter().map(|rows| rows[0].states).sum(),
        complete,
        stop: if complete { None } else { stop },
        bounds: first.bounds,
        strategy: options.strategy.name(),
        reductions: ["por", "symmetry"]
            .into_iter()
            .filter(|r| first.reductions.iter().any(|x| x == r))
            .collect(),
        bytes: shards.iter().map(|rows| rows[0].bytes).max().unwrap_or(0),
        elapsed_ms: shards.iter().map(|rows| rows[0].elapsed_ms).sum(),
        extra: first.extra.clone(),
        sampling: first.sampling,
        shard: None,
        merged_shards: Some(shards.len() as u64),
        scenario_hash: hash,
    })
}

pub(crate) fn cmd_merge(a: MergeArgs, paint: output::Paint) -> Result<u8, InputError> {
    let rows = read_rows(&a.files)?;
    // (file, variant) -> shard index -> rows, in the order first seen.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String), BTreeMap<u64, Vec<Row>>> = BTreeMap::new();
    let mut counts: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    for r in rows {
        let key = (r.file.clone(), r.variant.clone());
        match counts.get(&key) {
            None => {
                counts.insert(key.clone(), (r.shard.count, r.at.clone()));
                order.push(key.clone());
            }
            Some((n, _)) if *n != r.shard.count => {
                return Err(InputError::whole(
                    &r.at,
                    format!(
                        "shard {}/{} of {} / {}, but other rows of it say {n} shards",
                        r.shard.index + 1,
                        r.shard.count,
                        r.file,
                        r.variant
                    ),
                    "merge the shards of one run (the same N in every --shard I/N)",
                ))
            }
            Some(_) => {}
        }
        groups
            .entry(key)
            .or_default()
            .entry(r.shard.index)
            .or_default()
            .push(r);
    }
    let mut scenarios: Vec<(Scenario, Vec<VariantResult>)> = Vec::new();
    let max_memory = limits::default_max_memory();
    limits::catch_sigint();
    let lim = limits::run_limits(max_memory, None);
    for key in &order {
        let (n, at) = &counts[key];
        let shards = &groups[key];
        let missing: Vec<String> = (0..*n)
            .filter(|i| !shards.contains_key(i))
            .map(|i| format!("{}/{n}", i + 1))
            .collect();
        if !missing.is_empty() {
            return Err(InputError::whole(
                at,
                format!(
                    "{} / {}: shard(s) {} missing",
                    key.0,
                    key.1,
                    missing.join(", ")
                ),
                "give the output of every shard, 1/N to N/N",
            ));
        }
        let shard_rows: Vec<Vec<Row>> = shards.values().cloned().collect();
        let hash = &shard_rows[0][0].scenario_hash;
        if let Some(r) = shard_rows
            .iter()
            .flatten()
            .find(|r| &r.scenario_hash != hash)
        {
            return Err(mismatch(r, "scenario content"));
        }
        let pos = match scenarios
            .iter()
            .position(|(s, _)| s.path.display().to_string() == key.0)
        {
            Some(p) => p,
            None => {
                let s = scenario::load(std::path::Path::new(&key.0))?;
                if format!("{:08x}", s.content_hash) != *hash {
                    return Err(InputError::whole(
                        &key.0,
                        format!(
                            "the scenario's content hash is {:08x}, the shards ran on {hash}",
                            s.content_hash
                        ),
                        "the file changed after the shards ran: run them again, or merge against the file they ran on",
                    ));
                }
                scenarios.push((s, Vec::new()));
                scenarios.len() - 1
            }
        };
        let r = merge_variant(&scenarios[pos].0, &shard_rows, lim)?;
        scenarios[pos].1.push(r);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut worst = Judgement::Met;
    let (mut variants, mut cells) = (0, 0);
    for (s, results) in &mut scenarios {
        // Variants in the scenario's order, as `check` prints them.
        let names = s.variant_names();
        results.sort_by_key(|r| names.iter().position(|n| *n == r.variant));
        for r in results.iter() {
            worst = worst.max(r.judgement());
            variants += 1;
            cells += r.properties.len();
        }
        match a.format {
            Format::Json => emit(&mut out, &output::json_lines(results))?,
            Format::Text => emit(&mut out, &output::matrix(s, results, paint))?,
        }
    }
    if a.format == Format::Text {
        let summary = match worst {
            Judgement::Met => "every verdict matches its expectation",
            Judgement::Contradicted => "some verdicts do NOT match their expectation",
            Judgement::Inconclusive => "some expected verdicts are unknown",
        };
        emit(
            &mut out,
            &format!(
                "merged: {} scenario(s), {variants} variant(s), {cells} verdict(s): {summary}\n",
                scenarios.len()
            ),
        )?;
    }
    Ok(super::exit_code(worst))
}
