//! Sequence diagrams (`replay --svg`) and the HTML report (`check
//! --html`): one lane per actor, arrows from the lane that sent, the
//! state changes on the lane where they happened, the violating step
//! marked, folding that loses no step, byte-identical output, every link
//! of the report resolving, and the committed diagrams of the two seed
//! incidents in docs/ kept current.
//!
//! The counterexamples are the ones `netrace check` finds, not tokens
//! written here: a model change that changes them shows up as a stale
//! picture, which `NETRACE_BLESS=1 cargo test --test pictures` rewrites.

use std::path::{Path, PathBuf};

mod common;
use common::cli::{run, scratch};

const SCRATCH: &str = "picture-tests";

/// The token of `property`'s counterexample as `check` finds it.
fn token(scenario: &str, variant: &str, property: &str) -> String {
    let o = run(&["check", scenario, "--variant", variant, "--format", "json"]);
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["property"] == property)
        .and_then(|r| r["counterexample"]["token"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("{scenario} {variant}: no counterexample of {property}"))
}

/// `replay --svg` of that counterexample (plus `extra` flags).
fn diagram(scenario: &str, variant: &str, property: &str, extra: &[&str]) -> String {
    let t = token(scenario, variant, property);
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = scratch(SCRATCH, &format!("{variant}-{property}-{n}.svg"));
    let mut args = vec!["replay", scenario, &t, "--svg", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "a violating replay exits 1");
    std::fs::read_to_string(&out).unwrap()
}

const LAST_WORD: &str = "scenarios/classic-overlay-last-word.toml";
const DUPLICATE: &str = "scenarios/docker-17.05-duplicate-ip.toml";

fn by_class<'a>(doc: &'a roxmltree::Document, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|x| x == class))
        })
        .collect()
}

fn lanes(doc: &roxmltree::Document) -> Vec<String> {
    by_class(doc, "lane")
        .iter()
        .map(|n| n.attribute("data-lane").unwrap().to_string())
        .collect()
}

/// The marks' (lane, text), in order.
fn marks(doc: &roxmltree::Document, step: Option<&str>) -> Vec<(String, String)> {
    by_class(doc, "mark")
        .iter()
        .filter(|n| n.attribute("data-lane").is_some())
        .filter(|n| {
            step.is_none()
                || n.ancestors()
                    .any(|a| a.attribute("data-step") == step && by_class_is(a, "step"))
        })
        .map(|n| {
            let text: String = n
                .descendants()
                .filter(|d| d.is_text())
                .map(|d| d.text().unwrap())
                .collect();
            (n.attribute("data-lane").unwrap().to_string(), text)
        })
        .collect()
}

fn by_class_is(n: roxmltree::Node, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|x| x == class))
}

#[test]
fn last_word_diagram_has_a_lane_per_device_and_shows_the_mac_moving() {
    let svg = diagram(LAST_WORD, "classic-17.03", "l2.fdb_correct", &["--full"]);
    let doc = roxmltree::Document::parse(&svg).expect("the SVG is well-formed XML");
    // Host1 left to right, host2 mirrored.
    assert_eq!(lanes(&doc), common::lanes::LAST_WORD);
    let steps = by_class(&doc, "step");
    assert_eq!(steps.len(), 51, "--full draws every step");
    // Each violating step says which property: the double reply on the
    // way, the wrong FDB entry at the last step.
    let bad: Vec<(&str, &str)> = steps
        .iter()
        .filter(|s| by_class_is(**s, "violation"))
        .map(|s| {
            (
                s.attribute("data-step").unwrap(),
                s.attribute("data-violates").unwrap(),
            )
        })
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].1, "l2.single_arp_reply");
    assert_eq!(bad[1].0, "51");
    assert!(bad[1].1.contains("l2.fdb_correct"), "{bad:?}");
    // The proxied reply teaches br0 that B is behind vxlan1: the change is
    // marked on the vxlan1 port's lane; and at the end A's MAC moves too.
    let all = marks(&doc, None);
    assert!(all.contains(&(
        "host1 br0 vxlan1".to_string(),
        "fdb: B's MAC moved here from veth-B".to_string()
    )));
    assert!(marks(&doc, Some("51")).contains(&(
        "host1 br0 vxlan1".to_string(),
        "fdb: A's MAC moved here from veth-A".to_string()
    )));
    // The driver programs B (local!) on vxlan1 after the l3miss.
    assert!(all.iter().any(
        |(lane, text)| lane == "host1 vxlan1" && text == "neigh: 10.0.0.3 -> B's MAC permanent"
    ));
    // Arrows come from the lane that sent: A's requests from A to its
    // port, the encapsulated frame from host1's vxlan1 to host2's.
    let arrows: Vec<(String, String, String)> = by_class(&doc, "arrow")
        .iter()
        .filter(|n| n.attribute("data-from").is_some())
        .map(|n| {
            (
                n.attribute("class").unwrap().to_string(),
                n.attribute("data-from").unwrap().to_string(),
                n.attribute("data-to").unwrap().to_string(),
            )
        })
        .collect();
    assert!(arrows.contains(&(
        "arrow arp".into(),
        "host1 A".into(),
        "host1 br0 veth-A".into()
    )));
    assert!(arrows.contains(&(
        "arrow underlay".into(),
        "host1 vxlan1".into(),
        "host2 vxlan1".into()
    )));
    assert!(arrows.contains(&(
        "arrow call".into(),
        "host1 vxlan1".into(),
        "host1 driver".into()
    )));
    // No arrow starts or ends outside the lanes.
    let names = lanes(&doc);
    for (_, from, to) in &arrows {
        assert!(names.contains(from) && names.contains(to), "{from} -> {to}");
    }
}

#[test]
fn duplicate_ip_diagram_shows_both_commits_of_the_same_address() {
    let svg = diagram(DUPLICATE, "libnetwork-17.05", "ipam.unique", &[]);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(lanes(&doc), common::lanes::DUPLICATE_IP);
    let steps = by_class(&doc, "step");
    let last = steps.last().unwrap();
    assert!(by_class_is(*last, "violation"));
    assert_eq!(
        last.attribute("data-step"),
        Some(steps.len().to_string().as_str())
    );
    let all = marks(&doc, None);
    for run in ["cranky_shockley0", "prickly_spence"] {
        assert!(
            all.contains(&(format!("daemon0 run {run}"), "holds 172.17.0.16".into())),
            "{run} is marked as holding .16: {all:?}"
        );
    }
    let commits = by_class(&doc, "arrow")
        .iter()
        .filter(|n| n.attribute("data-to") == Some("daemon0 handle"))
        .count();
    assert_eq!(commits, 2, "two copies committed to the handle");
}

#[test]
fn folding_keeps_every_step_accounted_for() {
    let folded = diagram(LAST_WORD, "classic-17.03", "l2.fdb_correct", &[]);
    let doc = roxmltree::Document::parse(&folded).unwrap();
    let drawn = by_class(&doc, "step").len();
    let runs: Vec<(usize, usize)> = by_class(&doc, "fold")
        .iter()
        .map(|n| {
            let (a, b) = n.attribute("data-steps").unwrap().split_once('-').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(!runs.is_empty(), "a 51-step schedule has quiet runs folded");
    let hidden: usize = runs.iter().map(|(a, b)| b - a + 1).sum();
    assert_eq!(drawn + hidden, 51);
    // A folded run never hides a change or the violation.
    for (a, b) in &runs {
        assert!(*b - *a + 1 >= 3);
        for s in *a..=*b {
            assert!(marks(&doc, Some(&s.to_string())).is_empty());
        }
    }
    assert!(by_class(&doc, "violation")
        .iter()
        .any(|n| n.attribute("data-step") == Some("51")));
}

#[test]
fn diagrams_are_byte_identical_across_runs() {
    let a = diagram(DUPLICATE, "libnetwork-17.05", "ipam.unique", &[]);
    let b = diagram(DUPLICATE, "libnetwork-17.05", "ipam.unique", &[]);
    assert_eq!(a, b);
    assert!(
        !a.contains("http://") || a.matches("http://").count() == 1,
        "the only URL is the SVG namespace"
    );
    assert!(
        !a.contains("<script") && !a.contains("href="),
        "self-contained"
    );
}

#[test]
fn many_lanes_draw_only_those_the_schedule_touches() {
    let svg = diagram(
        "scenarios/scale/concurrent-runs-16.toml",
        "libnetwork-17.05",
        "ipam.unique",
        &[],
    );
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    let total: usize = root.attribute("data-lanes").unwrap().parse().unwrap();
    let drawn: usize = root.attribute("data-lanes-drawn").unwrap().parse().unwrap();
    assert_eq!(total, 17, "16 runs and the handle");
    assert!(drawn < total);
    assert_eq!(lanes(&doc).len(), drawn);
    let idle = by_class(&doc, "idle");
    assert_eq!(idle.len(), 1, "the idle lanes are named");
    let text = idle[0].text().unwrap();
    assert!(
        text.starts_with(&format!("{} of 17 lanes", total - drawn)),
        "{text}"
    );
    // Every lane an arrow or mark names is drawn.
    let names = lanes(&doc);
    for n in doc.descendants() {
        for attr in ["data-from", "data-to", "data-lane"] {
            if let Some(l) = n.attribute(attr) {
                assert!(names.iter().any(|x| x == l), "{l} is not drawn");
            }
        }
    }
}

#[test]
fn svg_flags_are_checked() {
    let o = run(&["replay", DUPLICATE, "x:0:00000000:00000000", "--full"]);
    assert_eq!(o.status.code(), Some(2), "--full needs --svg");
    let t = token(DUPLICATE, "libnetwork-17.05", "ipam.unique");
    let o = run(&["replay", DUPLICATE, &t, "--svg", "/nonexistent-dir/x.svg"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("/nonexistent-dir/x.svg") && err.contains("cannot write"),
        "{err}"
    );
}

/// Every `href="..."` and `src="..."` in an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    out
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(pages(&p));
        } else if p.extension().is_some_and(|x| x == "html") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn html_report_links_every_violated_cell_to_its_diagram() {
    let dir = scratch(SCRATCH, "report");
    let _ = std::fs::remove_dir_all(&dir);
    let o = run(&["check", "scenarios", "--html", dir.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let scenarios = std::fs::read_dir(env!("CARGO_MANIFEST_DIR").to_string() + "/scenarios")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert_eq!(
        links(&index).len(),
        scenarios,
        "the index links every scenario"
    );
    let all = pages(&dir);
    let mut counterexamples = 0;
    for page in &all {
        let html = std::fs::read_to_string(page).unwrap();
        assert!(!html.contains("<script"), "{}: no script", page.display());
        for link in links(&html) {
            assert!(
                !link.contains("://"),
                "{}: {link} is not relative",
                page.display()
            );
            let target = page.parent().unwrap().join(&link);
            assert!(
                target.is_file(),
                "{}: {link} does not resolve",
                page.display()
            );
        }
        // Every violated cell links to its counterexample's page.
        for cell in html.split("<td class=\"cell violated").skip(1) {
            let cell = &cell[..cell.find("</td>").unwrap()];
            assert!(cell.contains("<a href=\""), "{}: {cell}", page.display());
        }
        if html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sequence\"") {
            counterexamples += 1;
            assert_eq!(html.matches("class=\"sequence\"").count(), 1);
        }
    }
    let cells: usize = all
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .matches("<td class=\"cell violated")
                .count()
        })
        .sum();
    assert!(cells > 0);
    assert_eq!(counterexamples, cells, "one diagram page per violated cell");
}

#[test]
fn html_report_into_an_unwritable_place_is_bad_input() {
    let file = scratch(SCRATCH, "not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let o = run(&[
        "check",
        DUPLICATE,
        "--variant",
        "libnetwork-17.05",
        "--html",
        file.join("sub").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("hint:"), "{err}");
}

/// The diagrams of the two seed incidents shown in docs/user-guide.md.
const SEED_PICTURES: [(&str, &str, &str, &str); 2] = [
    (
        DUPLICATE,
        "libnetwork-17.05",
        "ipam.unique",
        "docs/pictures/seed-000-duplicate-ip.svg",
    ),
    (
        LAST_WORD,
        "classic-17.03",
        "l2.fdb_correct",
        "docs/pictures/seed-001-last-word.svg",
    ),
];

#[test]
fn seed_diagrams_in_the_user_guide_are_current() {
    let bless = std::env::var("NETRACE_BLESS").as_deref() == Ok("1");
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/user-guide.md"))
            .unwrap();
    for (scenario, variant, property, file) in SEED_PICTURES {
        let fresh = diagram(scenario, variant, property, &[]);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{file} is stale: the diagram of {variant} {property} changed; \
             rerun with NETRACE_BLESS=1 cargo test --test pictures and commit it"
        );
        let name = file.trim_start_matches("docs/");
        assert!(guide.contains(name), "docs/user-guide.md shows {name}");
    }
}
