//! Rendering of check matrices, JSON lines and replay traces.

use std::fmt::Write as _;

use serde_json::json;

use crate::check::{Judgement, VariantResult};
use crate::explore::token::Token;
use crate::explore::Stop;
use crate::scenario::kind::Replayed;
use crate::scenario::{Scenario, Verdict};

/// How text output is marked up: plain, or with ANSI colours
/// (`--color`). Colour never changes the text: with the escapes removed,
/// a painted matrix is the plain one, column for column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paint {
    /// Whether to emit ANSI colour escapes.
    pub color: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Bold text.
    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }

    /// A matrix cell: violated red, holds green, vacuous and unknown
    /// yellow; bold where the verdict is not the one expected.
    pub fn cell(self, text: &str, verdict: Verdict, matches: bool) -> String {
        let colour = match verdict {
            Verdict::Violated => "31",
            Verdict::Holds => "32",
            Verdict::Vacuous | Verdict::Unknown(_) => "33",
        };
        if matches {
            self.wrap(colour, text)
        } else {
            self.wrap(&format!("1;{colour}"), text)
        }
    }
}

/// The fix matrix of one scenario, with its counterexamples.
pub fn matrix(s: &Scenario, results: &[VariantResult], paint: Paint) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {}", s.name, super::shown(&s.path));
    // The description's first paragraph, as given.
    for line in s
        .description
        .trim()
        .lines()
        .take_while(|l| !l.trim().is_empty())
    {
        let _ = writeln!(out, "  {}", line.trim());
    }
    let _ = writeln!(out);
    let props: Vec<&str> = results
        .first()
        .map(|r| r.properties.iter().map(|p| p.property).collect())
        .unwrap_or_default();
    let extra_names: Vec<String> = results
        .first()
        .map(|r| r.extra.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let vw = results
        .iter()
        .map(|r| r.variant.len())
        .max()
        .unwrap_or(7)
        .max(7);
    // Wide enough for the property names and for `unknown (max_states)`.
    let cw = props
        .iter()
        .map(|p| p.len())
        .chain(
            results
                .iter()
                .flat_map(|r| &r.properties)
                .map(|p| p.verdict.words().len() + 4),
        )
        .max()
        .unwrap_or(12)
        .max(13);
    let mut head = format!("  {:vw$}", "variant");
    for p in &props {
        let _ = write!(head, "  {p:cw$}");
    }
    for e in &extra_names {
        let _ = write!(head, "  {e}");
    }
    let search_of = |r: &VariantResult| match r.stop {
        None => "complete".to_string(),
        Some(stop) => format!("stopped:{}", stop.as_str()),
    };
    let sw = results
        .iter()
        .map(|r| search_of(r).len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = write!(head, "  {:>9}  {:<sw$}  {:>8}", "states", "search", "time");
    let _ = writeln!(out, "{}", head.trim_end());
    let mut mismatches = Vec::new();
    for r in results {
        let mut line = format!("  {:vw$}", r.variant);
        for p in &r.properties {
            let mut cell = p.cell();
            if !p.matches() {
                cell.push_str(" (!)");
                let expected = p.expected.map_or("holds", Verdict::as_str);
                let why = match p.verdict {
                    Verdict::Unknown(stop) => format!(
                        ": the search stopped at {} before covering the space; {}",
                        stop_detail(r, stop),
                        stop.remedy()
                    ),
                    Verdict::Vacuous => {
                        ": the whole space was covered, but the property never had anything to check"
                            .to_string()
                    }
                    _ => String::new(),
                };
                mismatches.push(format!(
                    "  {} {} {}: expected {expected}, found {}{why}",
                    paint.bold("(!)"),
                    r.variant,
                    p.property,
                    p.verdict.words(),
                ));
            }
            let pad = cw.saturating_sub(cell.chars().count());
            let _ = write!(
                line,
                "  {}{:pad$}",
                paint.cell(&cell, p.verdict, p.matches()),
                ""
            );
        }
        for ((name, value), _) in r.extra.iter().zip(&extra_names) {
            let _ = write!(line, "  {value:<w$}", w = name.len());
        }
        let _ = write!(
            line,
            "  {:>9}  {:<sw$}  {:>8}",
            r.states,
            search_of(r),
            format_ms(r.elapsed_ms)
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out);
    if mismatches.is_empty() {
        let _ = writeln!(out, "  every verdict matches the scenario's expectation");
    } else {
        for m in &mismatches {
            let _ = writeln!(out, "{m}");
        }
    }
    let mut first = true;
    for r in results {
        for p in &r.properties {
            if let Some(c) = &p.counterexample {
                if first {
                    let _ = writeln!(
                        out,
                        "\n  counterexamples (shrunk; replay with the command shown):"
                    );
                    first = false;
                }
                let _ = writeln!(
                    out,
                    "    {} · {} · {} steps: {}",
                    r.variant, p.property, c.steps, c.message
                );
                let _ = writeln!(
                    out,
                    "      netrace replay {} {}",
                    super::shown(&s.path),
                    c.token
                );
            }
        }
    }
    let _ = writeln!(out);
    out
}

pub(crate) fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// What a stop means in this run, for the `(!)` lines.
fn stop_detail(r: &VariantResult, stop: Stop) -> String {
    match stop {
        Stop::MaxStates => format!("max_states = {}", r.bounds.max_states),
        Stop::MaxDepth => format!("max_depth = {}", r.bounds.max_depth),
        Stop::Memory => "the memory budget (--max-memory)".to_string(),
        Stop::Time => "the time limit (--time-limit)".to_string(),
        Stop::Interrupted => "an interrupt (Ctrl-C)".to_string(),
        Stop::Sampling => format!("{} random steps", r.states),
        Stop::FirstViolation => "the first violation".to_string(),
    }
}

/// The version of the JSON rows' schema (docs/json-schema.md): bumped
/// when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 2;

/// One JSON object per (scenario, variant, property); the schema is
/// docs/json-schema.md.
pub fn json_lines(results: &[VariantResult]) -> String {
    let mut out = String::new();
    for r in results {
        for p in &r.properties {
            let extra: serde_json::Map<String, serde_json::Value> =
                r.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let obj = json!({
                "schema_version": SCHEMA_VERSION,
                "file": r.file,
                "scenario": r.scenario,
                "variant": r.variant,
                "property": p.property,
                "verdict": p.verdict.as_str(),
                "unknown_reason": match p.verdict {
                    Verdict::Unknown(stop) => Some(stop.as_str()),
                    _ => None,
                },
                "expected": p.expected.map(Verdict::as_str),
                "matches": p.matches(),
                "judgement": match p.judgement {
                    Judgement::Met => "met",
                    Judgement::Inconclusive => "inconclusive",
                    Judgement::Contradicted => "contradicted",
                },
                "complete": r.complete,
                "stop": r.stop.map(Stop::as_str),
                "strategy": r.strategy,
                "sampling": r.sampling.map(|(seed, runs, depth)| json!({
                    "seed": seed,
                    "runs": runs,
                    "depth": depth,
                })),
                "reductions": r.reductions,
                "max_states": r.bounds.max_states,
                "max_depth": r.bounds.max_depth,
                "states": r.states,
                "bytes": r.bytes,
                "bytes_per_state": (r.states > 0 && r.bytes > 0)
                    .then(|| (r.bytes as f64 / r.states as f64 * 10.0).round() / 10.0),
                "elapsed_ms": (r.elapsed_ms * 1000.0).round() / 1000.0,
                "extra": extra,
                "scenario_hash": format!("{:08x}", r.scenario_hash),
                "shard": r.shard.map(|s| format!("{}/{}", s.index + 1, s.count)),
                "merged_shards": r.merged_shards,
                "counterexample": p.counterexample.as_ref().map(|c| json!({
                    "steps": c.steps,
                    "token": c.token,
                    "message": c.message,
                })),
            });
            let _ = writeln!(out, "{obj}");
        }
    }
    out
}

/// The full trace of a replayed schedule, for people.
pub fn replay_text(header: Vec<String>, token: &Token, variant: &str, replay: &Replayed) -> String {
    let blocked = replay.blocked.as_ref();
    let mut out = String::new();
    for h in header {
        let _ = writeln!(out, "{h}");
    }
    if token.variant != variant {
        let _ = writeln!(
            out,
            "schedule found on variant {}, replayed on variant {variant}: the same actors' steps in the same order",
            token.variant
        );
    }
    let _ = writeln!(out, "initial state:");
    for l in &replay.initial {
        let _ = writeln!(out, "  {l}");
    }
    let width = replay.steps.len().to_string().len();
    for (p, m) in replay.initial_violations() {
        let _ = writeln!(out, "  ✗ {p} violated in the initial state: {m}");
    }
    for (n, step) in replay.numbered_steps() {
        let _ = writeln!(out, "step {n:>width$}  {}", step.headline);
        for l in &step.lines {
            let _ = writeln!(out, "  {:width$}    {l}", "");
        }
        for (p, m) in &step.violations {
            let _ = writeln!(out, "  {:width$}    ✗ {p} violated: {m}", "");
        }
    }
    let n = replay.numbered_steps().count();
    if let Some(b) = blocked {
        let _ = writeln!(
            out,
            "step {:>width$}  BLOCKED on variant {variant}: {}",
            b.step, b.reason
        );
        let _ = writeln!(
            out,
            "  {:width$}    the schedule of variant {} cannot go on here: the rest is not replayed",
            "", token.variant
        );
    }
    let _ = writeln!(
        out,
        "final state{}:",
        if replay.quiescent { " (quiescent)" } else { "" }
    );
    for l in &replay.final_summary {
        let _ = writeln!(out, "  {l}");
    }
    if let Some(b) = blocked.filter(|_| replay.violated.is_empty()) {
        let _ = writeln!(
            out,
            "result: blocked at step {}, no property violated in the {n} steps before it",
            b.step
        );
    } else if replay.violated.is_empty() {
        let _ = writeln!(out, "result: no property violated in {n} steps");
    } else {
        let names: Vec<&str> = replay.violated.iter().map(|(p, _)| *p).collect();
        let _ = writeln!(out, "result: violates {} ({n} steps)", names.join(", "));
    }
    out
}

/// The replayed trace as one JSON object.
pub fn replay_json(scenario: &str, variant: &str, replay: &Replayed) -> String {
    let blocked = replay.blocked.as_ref();
    let steps: Vec<serde_json::Value> = replay
        .numbered_steps()
        .map(|(n, s)| {
            json!({
                "step": n,
                "action": s.headline,
                "log": s.lines,
                "violations": s.violations.iter().map(|(p, m)| json!({"property": p, "message": m})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let obj = json!({
        "scenario": scenario,
        "variant": variant,
        "steps": steps,
        "quiescent": replay.quiescent,
        "blocked": blocked.map(|b| json!({"step": b.step, "reason": b.reason})),
        "final": replay.final_summary,
        "violated": replay.violated.iter().map(|(p, m)| json!({"property": p, "message": m})).collect::<Vec<_>>(),
        "tables": replay.final_tables,
    });
    format!("{obj}\n")
}
