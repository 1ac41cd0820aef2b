//! The HTML report of a check (`netrace check [PATH...] --html DIR`).
//!
//! `DIR/index.html` lists the scenarios with their verdict counts;
//! `DIR/<scenario>.html` is one page per scenario: its description, its
//! topology picture (L2 scenarios, [`crate::scenario::kind::System::topology_svg`]),
//! the fix matrix as a table whose every violated cell links to its
//! counterexample's page, and the figures of each search (states, time,
//! the bound it ran under, bytes per state, reductions). Each
//! counterexample has a page `DIR/<scenario>/<variant>--<property>.html`
//! with the message, the replay command and the sequence diagram inline,
//! and the diagram alone next to it as `.svg`.
//!
//! Static files only: no script, no framework, no network fetch; every
//! page works opened from disk. Every link is relative. The pages are a
//! function of the check's results, except for the times, which are what
//! the searches took.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::esc;
use super::sequence;
use crate::check::{Judgement, VariantResult};
use crate::explore::token;
use crate::scenario::{InputError, Scenario, Verdict};

const CSS: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #1f2328; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
code, pre, td.cell, td.num { font-family: 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; }
td.num, .figures td, .figures th, .matrix th { white-space: nowrap; }
pre.replay { white-space: pre; }
body.wide { max-width: none; }
.violated { background: #ffebe9; } .violated a { color: #a40e26; font-weight: bold; }
.holds { background: #dafbe1; } .vacuous, .unknown { background: #fff8c5; }
.mismatch { outline: 3px solid #cf222e; outline-offset: -3px; }
.picture { overflow-x: auto; border: 1px solid #d0d7de; padding: 0.5em; }
.note { color: #57606a; }
nav a { margin-right: 1em; }
";

/// One scenario's results, as the report shows them.
pub struct Section<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Its variants' results, in file order.
    pub results: &'a [VariantResult],
}

/// A file-name-safe form of a name: letters, digits, `.`, `_` and `-`
/// kept, anything else as `_`.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn page(title: &str, up: &str, body: &str) -> String {
    page_of("", title, up, body)
}

/// A page whose `<body>` has `class` (`wide`: no maximum width, for the
/// diagrams).
fn page_of(class: &str, title: &str, up: &str, body: &str) -> String {
    let class = if class.is_empty() {
        String::new()
    } else {
        format!(" class=\"{class}\"")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body{class}>\n<nav>{up}</nav>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

/// The class of a matrix cell.
fn cell_class(p: &crate::check::PropertyResult) -> &'static str {
    match p.verdict {
        Verdict::Violated => "violated",
        Verdict::Holds => "holds",
        Verdict::Vacuous => "vacuous",
        Verdict::Unknown(_) => "unknown",
    }
}

fn write(path: &Path, text: &str) -> Result<(), InputError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            InputError::whole(
                dir.display().to_string(),
                format!("cannot create the directory: {e}"),
                "give --html a directory you can write",
            )
        })?;
    }
    std::fs::write(path, text).map_err(|e| {
        InputError::whole(
            path.display().to_string(),
            format!("cannot write: {e}"),
            "give --html a directory you can write",
        )
    })
}

/// The path of a counterexample's page, relative to the report's root.
pub fn counterexample_page(scenario: &str, variant: &str, property: &str) -> PathBuf {
    PathBuf::from(slug(scenario)).join(format!("{}--{}.html", slug(variant), slug(property)))
}

/// Writes the report into `dir` (created if missing) and returns the
/// path of its index page.
pub fn write_report(dir: &Path, sections: &[Section]) -> Result<PathBuf, InputError> {
    let mut index = String::new();
    let _ = writeln!(index, "<h1>netrace check</h1>");
    let _ = writeln!(
        index,
        "<p class=\"note\">One page per scenario: its fix matrix, with each counterexample one click away. Regenerate with <code>netrace check --html DIR</code>.</p>"
    );
    let _ = writeln!(
        index,
        "<table class=\"scenarios\">\n<tr><th>scenario</th><th>what it reproduces</th><th>file</th><th>variants</th><th>verdicts</th><th>violated</th><th>against expectation</th></tr>"
    );
    for sec in sections {
        let s = sec.scenario;
        let name = slug(&s.name);
        let cells: Vec<&crate::check::PropertyResult> =
            sec.results.iter().flat_map(|r| &r.properties).collect();
        let violated = cells
            .iter()
            .filter(|p| p.verdict == Verdict::Violated)
            .count();
        let worst = sec
            .results
            .iter()
            .map(|r| r.judgement())
            .max()
            .unwrap_or(Judgement::Met);
        let standing = match worst {
            Judgement::Met => "every verdict as expected",
            Judgement::Inconclusive => "some expected verdicts unknown",
            Judgement::Contradicted => "some verdicts contradict expectations",
        };
        let _ = writeln!(
            index,
            "<tr><td><a href=\"{name}.html\">{}</a></td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{violated}</td><td>{standing}</td></tr>",
            esc(&s.name),
            esc(&first_sentence(&s.description)),
            esc(&s.path.display().to_string()),
            sec.results.len(),
            cells.len()
        );
        write_scenario(dir, sec)?;
    }
    index.push_str("</table>\n");
    let path = dir.join("index.html");
    write(&path, &page("netrace check", "", &index))?;
    Ok(path)
}

/// The description's first sentence (or its first 160 characters).
fn first_sentence(description: &str) -> String {
    let flat: Vec<&str> = description.split_whitespace().collect();
    let flat = flat.join(" ");
    let end = flat
        .find(". ")
        .map(|i| i + 1)
        .unwrap_or(flat.len())
        .min(flat.char_indices().nth(160).map_or(flat.len(), |(i, _)| i));
    flat[..end].to_string()
}

fn write_scenario(dir: &Path, sec: &Section) -> Result<(), InputError> {
    let s = sec.scenario;
    let name = slug(&s.name);
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", esc(&s.name));
    let _ = writeln!(
        b,
        "<p class=\"note\"><code>{}</code> · kind {}</p>",
        esc(&s.path.display().to_string()),
        s.system.kind()
    );
    for para in s.description.trim().split("\n\n") {
        let text: Vec<&str> = para.lines().map(str::trim).collect();
        let _ = writeln!(b, "<p>{}</p>", esc(&text.join(" ")));
    }
    if let Some(svg) = s.system.topology_svg(None) {
        let _ = writeln!(
            b,
            "<h2>Topology</h2>\n<div class=\"picture topology\">\n{svg}</div>"
        );
    }

    // The matrix.
    let props: Vec<&str> = sec
        .results
        .first()
        .map(|r| r.properties.iter().map(|p| p.property).collect())
        .unwrap_or_default();
    let extra: Vec<String> = sec
        .results
        .first()
        .map(|r| r.extra.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let _ = writeln!(
        b,
        "<h2>Fix matrix</h2>\n<table class=\"matrix\">\n<tr><th>variant</th>"
    );
    for p in &props {
        let _ = write!(b, "<th>{}</th>", esc(p));
    }
    for e in &extra {
        let _ = write!(b, "<th>{}</th>", esc(e));
    }
    b.push_str("</tr>\n");
    let mut counterexamples = Vec::new();
    for r in sec.results {
        let note = s
            .system
            .variant(&r.variant)
            .map(|v| v.note().to_string())
            .unwrap_or_default();
        let _ = write!(
            b,
            "<tr data-variant=\"{}\"><th title=\"{}\">{}</th>",
            esc(&r.variant),
            esc(&note),
            esc(&r.variant)
        );
        for p in &r.properties {
            let (class, text) = (cell_class(p), p.cell());
            let mismatch = if p.matches() { "" } else { " mismatch" };
            let expected = p.expected.map_or("(no expectation)".to_string(), |e| {
                format!("expected {}", e.as_str())
            });
            match &p.counterexample {
                Some(c) => {
                    let link = counterexample_page(&s.name, &r.variant, p.property);
                    let href = link.to_string_lossy().replace('\\', "/");
                    let _ = write!(
                        b,
                        "<td class=\"cell {class}{mismatch}\" data-property=\"{}\" title=\"{}; {}\"><a href=\"{}\">{}</a></td>",
                        esc(p.property),
                        esc(&expected),
                        esc(&c.message),
                        esc(&href),
                        esc(&text)
                    );
                    counterexamples.push((r, p, c, link));
                }
                None => {
                    let _ = write!(
                        b,
                        "<td class=\"cell {class}{mismatch}\" data-property=\"{}\" title=\"{}\">{}</td>",
                        esc(p.property),
                        esc(&expected),
                        esc(&text)
                    );
                }
            }
        }
        for (_, value) in &r.extra {
            let _ = write!(b, "<td class=\"num\">{value}</td>");
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</table>\n");
    b.push_str("<p class=\"note\">A red outline marks a verdict that is not what the scenario expects. Click a violated cell for its counterexample.</p>\n");
    b.push_str("<h2>Variants</h2>\n<dl class=\"variants\">\n");
    for v in s.system.variants() {
        let _ = writeln!(
            b,
            "<dt><b>{}</b> <span class=\"note\">{}</span></dt><dd>{}</dd>",
            esc(v.name()),
            esc(&v.profile_line()),
            esc(v.note().trim())
        );
    }
    b.push_str("</dl>\n");

    // The figures.
    let _ = writeln!(
        b,
        "<h2>Figures</h2>\n<table class=\"figures\">\n<tr><th>variant</th><th>strategy</th><th>reductions</th><th>states</th><th>search</th><th>bounds</th><th>bytes per state</th><th>time</th></tr>"
    );
    for r in sec.results {
        let search = match r.stop {
            None => "complete".to_string(),
            Some(stop) => format!("stopped: {}", stop.as_str()),
        };
        let per_state = if r.states > 0 {
            format!("{:.1}", r.bytes as f64 / r.states as f64)
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            b,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>max_states {}, max_depth {}</td><td class=\"num\">{per_state}</td><td class=\"num\">{}</td></tr>",
            esc(&r.variant),
            r.strategy,
            if r.reductions.is_empty() {
                "none".to_string()
            } else {
                r.reductions.join(", ")
            },
            r.states,
            esc(&search),
            r.bounds.max_states,
            r.bounds.max_depth,
            crate::cli::format_ms(r.elapsed_ms)
        );
    }
    b.push_str("</table>\n");

    // The counterexamples, listed and each on its page.
    if !counterexamples.is_empty() {
        b.push_str("<h2>Counterexamples</h2>\n<ul class=\"counterexamples\">\n");
    }
    for (r, p, c, link) in &counterexamples {
        let href = link.to_string_lossy().replace('\\', "/");
        let _ = writeln!(
            b,
            "<li><a href=\"{}\">{} · {} · {} steps</a>: {}<br><code>netrace replay {} {}</code></li>",
            esc(&href),
            esc(&r.variant),
            esc(p.property),
            c.steps,
            esc(&c.message),
            esc(&s.path.display().to_string()),
            esc(&c.token)
        );
        write_counterexample(dir, s, &r.variant, p.property, c, link)?;
    }
    if !counterexamples.is_empty() {
        b.push_str("</ul>\n");
    }
    write(
        &dir.join(format!("{name}.html")),
        &page(&s.name, "<a href=\"index.html\">all scenarios</a>", &b),
    )
}

fn write_counterexample(
    dir: &Path,
    s: &Scenario,
    variant: &str,
    property: &str,
    c: &crate::check::Counterexample,
    link: &Path,
) -> Result<(), InputError> {
    let replay = format!("netrace replay {} {}", s.path.display(), c.token);
    let replayed = token::decode(s.into(), &c.token)
        .ok()
        .and_then(|t| s.system.variant(&t.variant)?.replay(&t.schedule).ok());
    let Some(replayed) = replayed else {
        // A token the check just printed always replays; say so if not.
        return Err(InputError::whole(
            "--html",
            format!("the counterexample of {variant} {property} does not replay"),
            format!("report this as a bug; its token is {}", c.token),
        ));
    };
    let profile = s
        .system
        .variant(variant)
        .map(|v| v.profile_line())
        .unwrap_or_default();
    let diagram = sequence::Diagram {
        title: format!("scenario {} · variant {variant}", s.name),
        subtitle: vec![profile.clone(), replay.clone()],
        replayed: &replayed,
        full: false,
    };
    let svg = sequence::svg(&diagram);
    let svg_path = link.with_extension("svg");
    let svg_name = svg_path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    write(&dir.join(&svg_path), &svg)?;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>{} · {} · {}</h1>",
        esc(&s.name),
        esc(variant),
        esc(property)
    );
    let _ = writeln!(b, "<p class=\"note\">{}</p>", esc(&profile));
    let _ = writeln!(
        b,
        "<p><b>{} violated</b> after {} steps: {}</p>",
        esc(property),
        c.steps,
        esc(&c.message)
    );
    let _ = writeln!(
        b,
        "<p>Replay it (the full text trace; <code>--svg F</code> draws this diagram, <code>--pcap F</code> writes the frames of an L2 trace):</p>\n<pre class=\"replay\">{}</pre>",
        esc(&replay)
    );
    let _ = writeln!(
        b,
        "<p><a href=\"{}\">the diagram alone (SVG)</a></p>\n<div class=\"picture diagram\">\n{svg}</div>",
        esc(&svg_name)
    );
    let up = format!(
        "<a href=\"../index.html\">all scenarios</a><a href=\"../{}.html\">{}</a>",
        slug(&s.name),
        esc(&s.name)
    );
    write(
        &dir.join(link),
        &page_of(
            "wide",
            &format!("{} · {variant} · {property}", s.name),
            &up,
            &b,
        ),
    )
}
