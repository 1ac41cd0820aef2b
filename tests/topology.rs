//! `netrace topology`: the DOT picture (a cluster per host, every
//! container, vxlan1's flags, the permanent entries), the SVG drawn by
//! netrace itself (well-formed XML, one group per host and per device),
//! differences between variants, determinism and the errors.
//!
//! What is expected is derived from the scenario files themselves (hosts,
//! containers, the remote peers whose entries the driver programs at
//! join), not from the picture code.

use std::path::PathBuf;

mod common;
use common::cli::{run, stderr, stdout};

const L2_SCENARIOS: [&str; 2] = [
    "scenarios/classic-overlay-last-word.toml",
    "scenarios/classic-overlay-first-word.toml",
];
const LAST_WORD: &str = "scenarios/classic-overlay-last-word.toml";

fn dot(args: &[&str]) -> String {
    let mut all = vec!["topology"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

fn out_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("topology-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn svg(file: &str, extra: &[&str], name: &str) -> String {
    let out = out_path(name);
    let _ = std::fs::remove_file(&out);
    let mut args = vec!["topology", file, "--svg", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "--svg prints no DOT");
    std::fs::read_to_string(&out).unwrap()
}

/// What the scenario file says, read with the toml crate.
struct Expected {
    /// (name, vtep)
    hosts: Vec<(String, String)>,
    /// (name, host, ip)
    containers: Vec<(String, String, String)>,
    vni: i64,
}

fn expected(file: &str) -> Expected {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let s = |x: &toml::Value, k: &str| x[k].as_str().unwrap().to_string();
    Expected {
        hosts: v["host"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (s(h, "name"), s(h, "vtep")))
            .collect(),
        containers: v["container"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (s(c, "name"), s(c, "host"), s(c, "ip")))
            .collect(),
        vni: v["network"]
            .get("vni")
            .and_then(|x| x.as_integer())
            .unwrap_or(256),
    }
}

/// Docker's MAC for an overlay address: 02:42 and the address's bytes.
fn docker_mac(ip: &str) -> String {
    let b: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// The text of `subgraph cluster_hostN { ... }` (N from 1).
fn cluster(dot: &str, n: usize) -> &str {
    let start = dot
        .find(&format!("subgraph cluster_host{n} {{"))
        .unwrap_or_else(|| panic!("no cluster_host{n} in\n{dot}"));
    let rest = &dot[start..];
    let end = rest
        .find(&format!("subgraph cluster_host{} {{", n + 1))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn dot_has_a_cluster_per_host_with_containers_flags_and_permanent_entries() {
    for file in L2_SCENARIOS {
        let e = expected(file);
        let d = dot(&[file]);
        assert!(d.starts_with("digraph "), "{file}");
        let clusters = d
            .lines()
            .filter(|l| {
                let t = l.trim();
                t.strip_prefix("subgraph cluster_host")
                    .and_then(|r| r.strip_suffix(" {"))
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            })
            .count();
        assert_eq!(clusters, e.hosts.len(), "{file}: one cluster per host");
        for (n, (host, vtep)) in e.hosts.iter().enumerate() {
            let c = cluster(&d, n + 1);
            assert!(
                c.contains(&format!("<b>{host}</b> (VTEP {vtep})")),
                "{file}: {host}'s label"
            );
            assert!(c.contains(&format!("subgraph cluster_host{}_overlay {{", n + 1)));
            for flag in ["proxy on", "learning on", "l2miss on", "l3miss on"] {
                assert!(c.contains(flag), "{file}: {host}: vxlan1 {flag}");
            }
            assert!(c.contains(&format!("vni {}", e.vni)), "{file}: {host}: vni");
            for (name, on, ip) in &e.containers {
                let mac = docker_mac(ip);
                if on == host {
                    assert!(
                        c.contains(&format!("namespace of container <b>{name}</b>")),
                        "{file}: {host}: {name}'s namespace"
                    );
                    assert!(c.contains(&format!("{ip}/24")) && c.contains(&mac));
                    assert!(c.contains(&format!("veth-{name}")));
                    // A local container has no permanent entry here.
                    assert!(
                        !c.contains(&format!("{mac} -&gt; ")),
                        "{file}: {host}: {name}"
                    );
                } else {
                    let (_, remote) = e.hosts.iter().find(|(h, _)| h == on).unwrap();
                    for entry in [format!("{mac} -&gt; {remote}"), format!("{ip} -&gt; {mac}")] {
                        assert!(
                            c.contains(&entry),
                            "{file}: {host}: permanent entry {entry} missing in\n{c}"
                        );
                    }
                }
            }
        }
        // The links: a veth per container, vxlan1 on br0 and the underlay.
        assert_eq!(
            d.matches("[xlabel = \"veth\"]").count(),
            e.containers.len(),
            "{file}"
        );
        assert_eq!(d.matches("[xlabel = \"enslaved\"]").count(), e.hosts.len());
        assert!(d.contains("h1_vtep -> h2_vtep [xlabel = \"underlay\""));
    }
}

#[test]
fn svg_is_xml_with_a_group_per_host_and_per_device() {
    for file in L2_SCENARIOS {
        let e = expected(file);
        let text = svg(file, &[], "devices.svg");
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|err| panic!("{file}: {err}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        assert!(root.attribute("viewBox").is_some(), "{file}: viewBox");
        let title = root
            .children()
            .find(|n| n.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or("");
        assert!(title.contains("netrace topology"), "{file}: <title>");
        // Self-contained: no scripts, links, external fonts or images.
        for n in doc.descendants() {
            assert!(
                !["script", "a", "image", "use", "foreignObject", "style"]
                    .contains(&n.tag_name().name()),
                "{file}: <{}>",
                n.tag_name().name()
            );
            for a in n.attributes() {
                assert!(!a.name().contains("href"), "{file}: {}", a.name());
                assert!(!a.value().contains("url("), "{file}: {}", a.value());
            }
        }
        let class =
            |n: &roxmltree::Node, c: &str| n.has_tag_name("g") && n.attribute("class") == Some(c);
        let hosts: Vec<roxmltree::Node> = doc.descendants().filter(|n| class(n, "host")).collect();
        let names: Vec<&str> = hosts
            .iter()
            .map(|h| h.attribute("data-host").unwrap())
            .collect();
        let want: Vec<&str> = e.hosts.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(names, want, "{file}: one host group per host, in order");
        for (g, (host, _)) in hosts.iter().zip(&e.hosts) {
            let devices = |kind: &str| -> Vec<roxmltree::Node> {
                g.descendants()
                    .filter(|n| class(n, "device") && n.attribute("data-kind") == Some(kind))
                    .collect()
            };
            let mut containers: Vec<&str> = devices("container")
                .iter()
                .map(|n| n.attribute("data-container").unwrap())
                .collect();
            containers.sort();
            let mut mine: Vec<&str> = e
                .containers
                .iter()
                .filter(|(_, h, _)| h == host)
                .map(|(n, _, _)| n.as_str())
                .collect();
            mine.sort();
            assert_eq!(containers, mine, "{file}: {host}'s containers");
            assert_eq!(devices("bridge").len(), 1, "{file}: {host}: br0");
            assert_eq!(devices("vxlan").len(), 1, "{file}: {host}: vxlan1");
            assert_eq!(devices("underlay").len(), 1, "{file}: {host}: VTEP");
            let vx = &devices("vxlan")[0];
            let vx_text: String = vx.descendants().filter_map(|n| n.text()).collect();
            assert!(vx_text.contains("proxy on") && vx_text.contains("l3miss on"));
            // Every port of br0, as a port group inside it.
            let ports: Vec<&str> = devices("bridge")[0]
                .descendants()
                .filter(|n| class(n, "port"))
                .map(|n| n.attribute("data-port").unwrap())
                .collect();
            assert_eq!(ports.len(), mine.len() + 1, "{file}: {host}: ports");
            assert_eq!(ports[0], "vxlan1");
        }
    }
}

#[test]
fn a_setting_that_differs_between_variants_is_marked_and_variant_draws_one() {
    let note = "br0 port vxlan1 learning: on (classic-17.03, swarm-mode, locality-check, \
                vxlan-fdb-zero, neigh-suppress, delete-local-arp), off (learning-off) [all hosts]";
    let suppress = "br0 port vxlan1 neigh_suppress: off (classic-17.03, swarm-mode, \
                    locality-check, learning-off, vxlan-fdb-zero, delete-local-arp), on \
                    (neigh-suppress) [all hosts]";
    let watch = "driver watchMiss: l3miss -&gt; peerAdd (classic-17.03, locality-check, \
                 learning-off, vxlan-fdb-zero, neigh-suppress, delete-local-arp), off (swarm-mode)";
    let d = dot(&[LAST_WORD]);
    for needle in [note, suppress, watch] {
        assert!(d.contains(needle), "{needle} missing in\n{d}");
    }
    // Marked in the device itself, the base's value shown.
    assert!(d.contains("<font color=\"#b00020\">learning on *</font>"));
    // Flags every variant agrees on are not marked.
    assert!(d.contains(">proxy on<") && !d.contains("proxy on *"));
    let s = svg(LAST_WORD, &[], "differs.svg");
    let doc = roxmltree::Document::parse(&s).unwrap();
    let notes: Vec<String> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("differences"))
        .flat_map(|g| g.descendants().filter_map(|n| n.text()).map(str::to_string))
        .collect();
    let joined = notes.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    assert!(joined.contains(&note.replace("-&gt;", "->")), "{joined}");
    assert!(s.contains("learning on *"));

    // One variant: its own values, nothing marked.
    let one = dot(&[LAST_WORD, "--variant", "learning-off"]);
    assert!(one.contains("variant learning-off"));
    assert!(
        !one.contains(" *") && !one.contains("differs between"),
        "{one}"
    );
    let c1 = cluster(&one, 1);
    let port = &c1[c1.find("port=\"p0\"").unwrap()..];
    assert!(port.contains("learning off"), "{port}");
    let s = svg(LAST_WORD, &["--variant", "swarm-mode"], "one.svg");
    assert!(s.contains("watchMiss off") && !s.contains(" *"));
}

#[test]
fn pictures_are_byte_identical_across_runs() {
    for file in L2_SCENARIOS {
        assert_eq!(dot(&[file]), dot(&[file]), "{file}: DOT");
        assert_eq!(
            svg(file, &[], "a.svg"),
            svg(file, &[], "b.svg"),
            "{file}: SVG"
        );
    }
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let o = run(&[
        "topology",
        LAST_WORD,
        "--svg",
        "/nonexistent-netrace-dir/out.svg",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("/nonexistent-netrace-dir/out.svg")
            && err.contains("cannot write the SVG picture")
            && err.contains("hint: check the directory exists"),
        "{err}"
    );
    let o = run(&["topology", LAST_WORD, "--variant", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has no variant nope") && stderr(&o).contains("learning-off"),
        "{}",
        stderr(&o)
    );
    for extra in [
        &[][..],
        &["--svg", out_path("ipam.svg").to_str().unwrap()][..],
    ] {
        let mut args = vec!["topology", "scenarios/docker-17.05-duplicate-ip.toml"];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains("has no network topology"),
            "{}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty());
    }
    assert!(!out_path("ipam.svg").exists());
}
