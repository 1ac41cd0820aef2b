//! Sequence diagrams of replayed schedules, as self-contained SVG
//! (`netrace replay FILE TOKEN --svg OUT.svg`, and every counterexample of
//! `check --html`).
//!
//! A diagram has one lane per actor or device ([`crate::sim::Lane`], in
//! the model's order, grouped by host or daemon) and one row per step:
//! the frame or call that arrives (an arrow from its sender's lane,
//! labelled as the text trace names it), what the acting lane did, the
//! state changes the step made (marks on the lanes they happened on: an
//! FDB entry learned or moved, a commit) and, on the step that violates a
//! property, the property's message on a red band. The model computes all
//! of it ([`crate::sim::Model::sketch`]); this module only lays it out.
//!
//! Long schedules stay readable: when a schedule has more than
//! [`FOLD_ABOVE`] steps, every run of at least [`FOLD_RUN`] consecutive
//! quiet steps (no state change, no violation, not a container's own
//! script step) is folded into one row that names the steps and lists
//! them in its tooltip. `--full` draws every step.
//!
//! The SVG uses no script, no external font, image or style sheet: it
//! renders the same from disk, in a browser or in an image converter.
//! The output is a function of the replay alone, byte for byte.

use std::fmt::Write as _;

use super::esc;
use crate::explore::ReplayStep;
use crate::scenario::kind::Replayed;
use crate::sim::{ArrowKind, Lane};

/// Schedules longer than this are drawn with quiet runs folded.
pub const FOLD_ABOVE: usize = 40;

/// The shortest run of quiet steps that is folded.
pub const FOLD_RUN: usize = 3;

/// Diagrams with more lanes than this draw only the lanes their schedule
/// touches (and name the others).
pub const MAX_LANES: usize = 16;

/// Distance between lanes, px, at least (lanes widen to fit their
/// titles, up to [`LANE_W_MAX`]).
const LANE_W: f64 = 150.0;
/// Distance between lanes, px, at most.
const LANE_W_MAX: f64 = 230.0;
/// Left margin (step numbers), px.
const LEFT: f64 = 64.0;
/// Width of a character of the 11 px monospace font, px (an estimate used
/// to size boxes; browsers' monospace fonts are 6.0–6.7 px wide).
const CHAR_W: f64 = 6.7;
/// Height of a line of text, px.
const LINE_H: f64 = 15.0;

/// What to draw.
#[derive(Clone, Debug)]
pub struct Diagram<'a> {
    /// The title (`scenario · variant`).
    pub title: String,
    /// Lines under the title (the profile, the replay command).
    pub subtitle: Vec<String>,
    /// The replay.
    pub replayed: &'a Replayed,
    /// Draw every step, folding nothing.
    pub full: bool,
}

/// One row of the picture: a step, or a run of folded steps.
enum Row<'a> {
    Step(usize, &'a ReplayStep),
    Folded(Vec<(usize, &'a ReplayStep)>),
}

/// Whether a step may be folded away: it changed no shared state,
/// violated nothing, is not an actor's own step (those have no arriving
/// message) and moved nothing between groups (hosts, daemons).
fn quiet(step: &ReplayStep, lanes: &[Lane]) -> bool {
    let sk = &step.sketch;
    let group = |i: usize| lanes.get(i).map(|l| l.group.as_str());
    step.violations.is_empty()
        && sk.lane.is_some()
        && !sk.marks.iter().any(|m| m.change)
        && !sk.arrows.is_empty()
        && sk.arrows.iter().all(|a| group(a.from) == group(a.to))
}

fn rows<'a>(steps: &'a [(usize, &'a ReplayStep)], lanes: &[Lane], fold: bool) -> Vec<Row<'a>> {
    let mut out = Vec::new();
    let mut run: Vec<(usize, &ReplayStep)> = Vec::new();
    let flush = |run: &mut Vec<(usize, &'a ReplayStep)>, out: &mut Vec<Row<'a>>| {
        if run.len() >= FOLD_RUN {
            out.push(Row::Folded(std::mem::take(run)));
        } else {
            out.extend(run.drain(..).map(|(n, s)| Row::Step(n, s)));
        }
    };
    for &(n, s) in steps {
        if fold && quiet(s, lanes) {
            run.push((n, s));
        } else {
            flush(&mut run, &mut out);
            out.push(Row::Step(n, s));
        }
    }
    flush(&mut run, &mut out);
    out
}

fn text_w(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_W
}

fn kind_class(kind: ArrowKind) -> &'static str {
    match kind {
        ArrowKind::Arp => "arp",
        ArrowKind::Data => "data",
        ArrowKind::Underlay => "underlay",
        ArrowKind::Call => "call",
    }
}

const STYLE: &str = "
svg.sequence text { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 11px; fill: #1f2328; }
svg.sequence .title { font-size: 15px; font-weight: bold; }
svg.sequence .sub { fill: #57606a; }
svg.sequence .group rect { fill: #f6f8fa; stroke: #d0d7de; }
svg.sequence .group text { font-weight: bold; }
svg.sequence .head rect { fill: #ffffff; stroke: #8c959f; }
svg.sequence .life { stroke: #afb8c1; stroke-dasharray: 4 4; }
svg.sequence .num { fill: #57606a; }
svg.sequence .what { fill: #57606a; font-style: italic; }
svg.sequence .arrow line, svg.sequence .arrow path { stroke-width: 1.6; fill: none; }
svg.sequence .arrow text { paint-order: stroke; stroke: #ffffff; stroke-width: 3px; stroke-linejoin: round; }
svg.sequence .arp line, svg.sequence .arp path { stroke: #0969da; } svg.sequence .arp text { fill: #0550ae; }
svg.sequence .data line, svg.sequence .data path { stroke: #1a7f37; } svg.sequence .data text { fill: #116329; }
svg.sequence .underlay line, svg.sequence .underlay path { stroke: #8250df; } svg.sequence .underlay text { fill: #6639ba; }
svg.sequence .call line, svg.sequence .call path { stroke: #57606a; stroke-dasharray: 5 3; } svg.sequence .call text { fill: #424a53; }
svg.sequence .mark rect { fill: #ffffff; stroke: #d0d7de; }
svg.sequence .mark.change rect { fill: #fff1e5; stroke: #fb8f44; }
svg.sequence .mark.change text { fill: #953800; }
svg.sequence .dot { fill: #1f2328; }
svg.sequence .tick line { stroke: #8c959f; stroke-dasharray: 2 3; }
svg.sequence .fold rect { fill: #f6f8fa; stroke: #d0d7de; stroke-dasharray: 3 3; }
svg.sequence .violation rect.band { fill: #ffebe9; stroke: #ff8182; }
svg.sequence .violation text.message { fill: #a40e26; font-weight: bold; }
";

/// Draws the diagram as an SVG document.
pub fn svg(d: &Diagram) -> String {
    let r = d.replayed;
    let lanes: &[Lane] = &r.lanes;
    let initial_violations = r.initial_violations();
    let numbered: Vec<(usize, &ReplayStep)> = r.numbered_steps().collect();
    let fold = !d.full && numbered.len() > FOLD_ABOVE;
    let rows = rows(&numbered, lanes, fold);
    // With many lanes, only those the schedule touches are drawn.
    let mut used = vec![false; lanes.len()];
    for (_, st) in &numbered {
        let sk = &st.sketch;
        let touched = sk
            .lane
            .into_iter()
            .chain(sk.arrows.iter().flat_map(|a| [a.from, a.to]))
            .chain(sk.marks.iter().map(|m| m.lane));
        for i in touched {
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
        }
    }
    let drawn: Vec<usize> = (0..lanes.len())
        .filter(|&i| lanes.len() <= MAX_LANES || used[i])
        .collect();
    let mut pos = vec![0usize; lanes.len()];
    for (p, &i) in drawn.iter().enumerate() {
        pos[i] = p;
    }
    let lane_w = drawn
        .iter()
        .map(|&i| text_w(&lanes[i].title) + 28.0)
        .fold(LANE_W, f64::max)
        .min(LANE_W_MAX);
    let lane_x = |i: usize| LEFT + lane_w / 2.0 + pos.get(i).copied().unwrap_or(0) as f64 * lane_w;
    let lanes_w = LEFT + drawn.len().max(1) as f64 * lane_w;
    let mid = lanes_w / 2.0;
    // Text on a lane in the right half goes to its left.
    let anchor_left = |x: f64| x > mid;

    let mut body = String::new();
    let mut width = lanes_w + 24.0;
    let mut y = 30.0;
    let _ = writeln!(
        body,
        "<text class=\"title\" x=\"16\" y=\"{y}\">{}</text>",
        esc(&d.title)
    );
    for line in &d.subtitle {
        y += LINE_H + 2.0;
        let _ = writeln!(
            body,
            "<text class=\"sub\" x=\"16\" y=\"{y}\">{}</text>",
            esc(line)
        );
        width = width.max(16.0 + text_w(line) + 16.0);
    }
    if drawn.len() < lanes.len() {
        let idle: Vec<&str> = (0..lanes.len())
            .filter(|i| !used[*i])
            .map(|i| lanes[i].name.as_str())
            .collect();
        let mut line = format!(
            "{} of {} lanes take no part in this schedule and are not drawn: {}",
            idle.len(),
            lanes.len(),
            idle.join(", ")
        );
        if line.chars().count() > 300 {
            line = format!("{}…", line.chars().take(299).collect::<String>());
        }
        y += LINE_H + 2.0;
        let _ = writeln!(
            body,
            "<text class=\"sub idle\" x=\"16\" y=\"{y}\">{}</text>",
            esc(&line)
        );
        width = width.max(16.0 + text_w(&line) + 16.0);
    }
    for (name, message) in initial_violations {
        y += LINE_H + 2.0;
        let line = format!("✗ {name} violated in the initial state: {message}");
        let _ = writeln!(
            body,
            "<g class=\"violation\" data-property=\"{}\"><text class=\"message\" x=\"16\" y=\"{y}\">{}</text></g>",
            esc(name),
            esc(&line)
        );
        width = width.max(16.0 + text_w(&line) + 16.0);
    }

    // Groups and lane heads.
    y += 18.0;
    let group_top = y;
    let head_top = group_top + 22.0;
    let head_h = 24.0;
    let mut k = 0;
    while k < drawn.len() {
        let g = &lanes[drawn[k]].group;
        let mut j = k;
        while j < drawn.len() && lanes[drawn[j]].group == *g {
            j += 1;
        }
        if !g.is_empty() {
            let x0 = lane_x(drawn[k]) - lane_w / 2.0 + 4.0;
            let x1 = lane_x(drawn[j - 1]) + lane_w / 2.0 - 4.0;
            let _ = writeln!(
                body,
                "<g class=\"group\" data-group=\"{}\"><rect x=\"{x0:.1}\" y=\"{group_top:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                esc(g),
                x1 - x0,
                head_top + head_h + 6.0 - group_top,
                x0 + 8.0,
                group_top + 15.0,
                esc(g)
            );
        }
        k = j;
    }
    let rows_top = head_top + head_h + 22.0;

    // Rows.
    let mut rows_svg = String::new();
    let mut y = rows_top;
    for row in &rows {
        match row {
            Row::Folded(run) => {
                let (first, last) = (run[0].0, run[run.len() - 1].0);
                let tip: Vec<String> = run
                    .iter()
                    .map(|(n, s)| format!("step {n}: {}", s.headline))
                    .collect();
                let label = format!(
                    "steps {first}–{last}: {} quiet steps folded (frames passed on, no table changed); replay --full draws them",
                    run.len()
                );
                let _ = writeln!(
                    rows_svg,
                    "<g class=\"fold\" data-steps=\"{first}-{last}\"><title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"18\" rx=\"4\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                    esc(&tip.join("\n")),
                    LEFT,
                    y - 12.0,
                    lanes_w - LEFT,
                    LEFT + 8.0,
                    y + 1.0,
                    esc(&label)
                );
                width = width.max(LEFT + 8.0 + text_w(&label) + 16.0);
                y += 28.0;
            }
            Row::Step(n, step) => {
                let (svg, h, w) = step_svg(*n, step, lanes, &lane_x, &anchor_left, lanes_w, y);
                rows_svg.push_str(&svg);
                width = width.max(w);
                y += h;
            }
        }
    }
    let bottom = y;

    // Lane heads and lifelines, drawn under the rows.
    let mut heads = String::new();
    for &i in &drawn {
        let lane = &lanes[i];
        let x = lane_x(i);
        let w = (text_w(&lane.title) + 14.0).min(lane_w - 10.0);
        let _ = writeln!(
            heads,
            "<g class=\"lane\" data-lane=\"{}\"><line class=\"life\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/><g class=\"head\"><title>{}</title><rect x=\"{:.1}\" y=\"{head_top:.1}\" width=\"{w:.1}\" height=\"{head_h}\" rx=\"3\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g></g>",
            esc(&lane.name),
            head_top + head_h,
            esc(&lane.name),
            x - w / 2.0,
            head_top + 16.0,
            esc(&fit(&lane.title, lane_w - 24.0))
        );
    }

    // Legend and the result.
    let mut y = bottom + 26.0;
    let mut foot = String::new();
    let legend = [
        ("arp", "ARP"),
        ("data", "data"),
        ("underlay", "underlay (VXLAN)"),
        ("call", "call, read or write"),
    ];
    let mut x = LEFT;
    for (class, label) in legend {
        let _ = writeln!(
            foot,
            "<g class=\"arrow {class} legend\"><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" marker-end=\"url(#head-{class})\"/><text x=\"{:.1}\" y=\"{y:.1}\">{label}</text></g>",
            y - 4.0,
            x + 30.0,
            y - 4.0,
            x + 38.0
        );
        x += 56.0 + text_w(label);
    }
    let _ = writeln!(
        foot,
        "<g class=\"mark change legend\"><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"15\" rx=\"3\"/><text x=\"{:.1}\" y=\"{y:.1}\">state change</text></g>",
        y - 11.0,
        text_w("state change") + 8.0,
        x + 4.0
    );
    y += LINE_H + 6.0;
    let result = if r.violated.is_empty() {
        "result: no property violated".to_string()
    } else {
        let names: Vec<&str> = r.violated.iter().map(|(n, _)| *n).collect();
        format!("result: violates {}", names.join(", "))
    };
    let _ = writeln!(
        foot,
        "<text class=\"result\" x=\"16\" y=\"{y:.1}\">{}</text>",
        esc(&result)
    );
    if let Some(b) = &r.blocked {
        y += LINE_H;
        let line = format!("blocked at step {}: {}", b.step, b.reason);
        let _ = writeln!(
            foot,
            "<text class=\"blocked\" x=\"16\" y=\"{y:.1}\">{}</text>",
            esc(&line)
        );
        width = width.max(16.0 + text_w(&line) + 16.0);
    }
    let height = y + 16.0;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sequence\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" data-lanes=\"{}\" data-lanes-drawn=\"{}\" data-steps=\"{}\">",
        lanes.len(),
        drawn.len(),
        numbered.len()
    );
    let _ = writeln!(out, "<title>{}</title>", esc(&d.title));
    let _ = writeln!(out, "<style>{STYLE}</style>");
    out.push_str("<defs>\n");
    for (class, colour) in [
        ("arp", "#0969da"),
        ("data", "#1a7f37"),
        ("underlay", "#8250df"),
        ("call", "#57606a"),
    ] {
        let _ = writeln!(
            out,
            "<marker id=\"head-{class}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerUnits=\"userSpaceOnUse\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{colour}\"/></marker>"
        );
    }
    out.push_str("</defs>\n");
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
    );
    out.push_str(&body);
    out.push_str(&heads);
    out.push_str(&rows_svg);
    out.push_str(&foot);
    out.push_str("</svg>\n");
    out
}

/// Shortens `text` to fit `px`, with an ellipsis.
fn fit(text: &str, px: f64) -> String {
    let max = (px / CHAR_W) as usize;
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

/// One step's row: its SVG, its height and the width it needs.
#[allow(clippy::too_many_arguments)]
fn step_svg(
    n: usize,
    step: &ReplayStep,
    lanes: &[Lane],
    lane_x: &dyn Fn(usize) -> f64,
    anchor_left: &dyn Fn(f64) -> bool,
    lanes_w: f64,
    top: f64,
) -> (String, f64, f64) {
    let sk = &step.sketch;
    let mut out = String::new();
    let mut width: f64 = lanes_w;
    let mut inner = String::new();
    let mut y = top;
    let place = |x: f64, text: &str| -> (f64, &'static str, f64) {
        // (x of the text, anchor, rightmost px)
        if anchor_left(x) {
            (x - 8.0, "end", x)
        } else {
            (x + 8.0, "start", x + 8.0 + text_w(text))
        }
    };
    match sk.lane {
        None => {
            // The whole system: simulated time passing.
            let _ = writeln!(
                inner,
                "<g class=\"tick\"><line x1=\"{LEFT:.1}\" y1=\"{y:.1}\" x2=\"{lanes_w:.1}\" y2=\"{y:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>",
                (LEFT + lanes_w) / 2.0,
                y - 4.0,
                esc(&sk.what)
            );
            y += 8.0;
        }
        Some(lane) => {
            let x = lane_x(lane.min(lanes.len().saturating_sub(1)));
            let lane_name = |i: usize| lanes.get(i).map_or(String::new(), |l| l.name.clone());
            for a in &sk.arrows {
                let (x0, x1) = (lane_x(a.from), lane_x(a.to));
                let ends = esc(&lane_name(a.from));
                let class = kind_class(a.kind);
                if a.from == a.to {
                    let _ = writeln!(
                        inner,
                        "<g class=\"arrow {class}\" data-from=\"{ends}\" data-to=\"{ends}\"><path d=\"M{x0:.1},{:.1} h24 v8 h-24\" marker-end=\"url(#head-{class})\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                        y - 4.0,
                        x0 + 30.0,
                        y + 2.0,
                        esc(&a.label)
                    );
                    width = width.max(x0 + 30.0 + text_w(&a.label) + 8.0);
                } else {
                    let end = if x1 > x0 { x1 - 3.0 } else { x1 + 3.0 };
                    let w = text_w(&a.label);
                    // A label longer than its arrow starts at the arrow's
                    // left end (clear of the dot there) and runs on to the
                    // right; a shorter one is centred on it.
                    let (lo, hi) = (x0.min(x1), x0.max(x1));
                    let (tx, anchor, right) = if w + 16.0 > hi - lo {
                        (lo + 8.0, "start", lo + 8.0 + w)
                    } else {
                        let cx = (lo + hi) / 2.0;
                        (cx, "middle", cx + w / 2.0)
                    };
                    let _ = writeln!(
                        inner,
                        "<g class=\"arrow {class}\" data-from=\"{}\" data-to=\"{}\"><line x1=\"{x0:.1}\" y1=\"{y:.1}\" x2=\"{end:.1}\" y2=\"{y:.1}\" marker-end=\"url(#head-{class})\"/><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
                        esc(&lane_name(a.from)),
                        esc(&lane_name(a.to)),
                        y - 4.0,
                        esc(&a.label)
                    );
                    width = width.max(right + 8.0);
                }
            }
            let _ = writeln!(
                inner,
                "<circle class=\"dot\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\"/>"
            );
            y += LINE_H;
            if !sk.what.is_empty() {
                let (tx, anchor, right) = place(x, &sk.what);
                let _ = writeln!(
                    inner,
                    "<text class=\"what\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                    y - 3.0,
                    esc(&sk.what)
                );
                width = width.max(right + 8.0);
                y += 2.0;
            }
        }
    }
    for m in &sk.marks {
        let x = lane_x(m.lane);
        let w = text_w(&m.text) + 8.0;
        let (bx, tx) = if anchor_left(x) {
            (x - 6.0 - w, x - 10.0)
        } else {
            (x + 6.0, x + 10.0)
        };
        let anchor = if anchor_left(x) { "end" } else { "start" };
        let class = if m.change { "mark change" } else { "mark" };
        let _ = writeln!(
            inner,
            "<g class=\"{class}\" data-lane=\"{}\"><rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"14\" rx=\"3\"/><text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
            esc(&lanes.get(m.lane).map_or(String::new(), |l| l.name.clone())),
            y - 1.0,
            y + 10.0,
            esc(&m.text)
        );
        width = width.max(bx + w + 8.0);
        y += LINE_H + 1.0;
    }
    let mut band = String::new();
    if !step.violations.is_empty() {
        y += 2.0;
        for (name, message) in &step.violations {
            let line = format!("✗ {name} violated: {message}");
            let _ = writeln!(
                band,
                "<text class=\"message\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LEFT + 8.0,
                y + 10.0,
                esc(&line)
            );
            width = width.max(LEFT + 8.0 + text_w(&line) + 16.0);
            y += LINE_H;
        }
    }
    let h = y - top + 20.0;
    let violated: Vec<&str> = step.violations.iter().map(|(n, _)| *n).collect();
    let _ = write!(
        out,
        "<g class=\"step{}\" data-step=\"{n}\"",
        if violated.is_empty() {
            ""
        } else {
            " violation"
        }
    );
    if !violated.is_empty() {
        let _ = write!(out, " data-violates=\"{}\"", esc(&violated.join(" ")));
    }
    // Hovering a step shows its whole block of the text trace.
    let mut tip = format!("step {n}: {}", step.headline);
    for line in &step.lines {
        tip.push('\n');
        tip.push_str(line);
    }
    let _ = writeln!(out, "><title>{}</title>", esc(&tip));
    if !violated.is_empty() {
        let _ = writeln!(
            out,
            "<rect class=\"band\" x=\"4\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\"/>",
            top - 16.0,
            width - 8.0,
            h
        );
    }
    let _ = writeln!(
        out,
        "<text class=\"num\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{n}</text>",
        LEFT - 12.0,
        top + 4.0
    );
    out.push_str(&inner);
    out.push_str(&band);
    out.push_str("</g>\n");
    (out, h, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_short_text_and_cuts_long_text() {
        assert_eq!(fit("veth-A", 100.0), "veth-A");
        let cut = fit(&"x".repeat(40), 67.0);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
    }
}
