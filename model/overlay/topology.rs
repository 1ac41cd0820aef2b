//! Pictures of an L2 scenario's topology: Graphviz DOT
//! (`netrace topology SCENARIO`) and a self-drawn SVG
//! (`netrace topology SCENARIO --svg OUT.svg`, no Graphviz needed).
//!
//! **What is drawn**, per host, grouped as libnetwork builds it:
//!
//! - the host (name, VTEP address) as a box (a DOT `cluster_hostN`, an SVG
//!   `<g class="host" data-host="NAME">`), holding
//! - one network namespace per container with its `eth0` (address/prefix,
//!   MAC),
//! - the overlay network's namespace with `br0` (the gateway address, the
//!   ageing time, one cell per port with the port's `learning` and
//!   `neigh_suppress`) and `vxlan1` (VNI, the flags `proxy`, `learning`,
//!   `l2miss`, `l3miss` as the model builds the device, its ageing),
//! - the permanent entries of the initial state attached to `vxlan1`: the
//!   vxlan FDB (`MAC -> remote VTEP`) and neighbour (`IP -> MAC`) entries
//!   the driver programs at join for remote peers — read from the model's
//!   initial state, so they are exactly what `netrace replay` prints as
//!   `host1 vxlan1 fdb: ...`,
//! - the overlay driver as the profile configures it (profile, whether
//!   `watchMiss` programs peers from misses, the driver-side fixes that
//!   are on: `locality-check`, `vxlan-fdb-zero`, `delete-local-arp`; the
//!   fixes `learning-off` and `neigh-suppress` show as the flags of the
//!   vxlan1 port of `br0`),
//! - the host's underlay interface (its VTEP);
//!
//! and the links: each veth pair (container `eth0` to the `br0` port
//! `veth-X`), vxlan1 as `br0`'s port, vxlan1 on the underlay (UDP 4789)
//! and the underlay between the VTEPs.
//!
//! **Variants.** The first variant drawn is the base: every attribute is
//! shown with the base's value. Every attribute whose value differs
//! between the variants (a flag, a port setting, a driver setting, an
//! initial entry present in some variants only) is marked with `*` in its
//! device, and the picture lists, per attribute, which variants have which
//! value: `br0 port vxlan1 learning: on (classic-17.03, swarm-mode), off
//! (learning-off) [all hosts]`. `--variant V` draws one variant, which
//! then has no differences.
//!
//! **What is not drawn**: anything dynamic (frames, learned entries, the
//! containers' ARP caches, the driver's queue: see `netrace replay`), the
//! containers' scripts, the local FDB entries of `br0` and the kernel's
//! own devices (loopbacks, the veths' names inside the containers other
//! than `eth0`). The namespaces' real names (`1-<network id>`, sandbox
//! ids) do not exist in the model; the picture names them after the
//! network and the container.
//!
//! Everything is built from the scenario and the variants' models in a
//! fixed order (vectors and `BTreeMap`s), so both texts are byte-identical
//! across runs. petgraph holds the links ([`graph`]); the DOT text is
//! written here rather than with `petgraph::dot`, whose label escaping
//! turns our line breaks into literal backslashes.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};

use super::system::{L2Spec, OverlaySystem};
use super::Fix;
use crate::picture::esc;
use crate::sim::Model;
use crate::wire::EthernetAddress;

/// A node of the topology graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A host's underlay interface (its VTEP address).
    Vtep {
        /// Host name.
        host: String,
        /// Underlay address.
        ip: String,
    },
    /// A host's bridge `br0`.
    Bridge {
        /// Host name.
        host: String,
    },
    /// A host's vxlan device.
    Vxlan {
        /// Host name.
        host: String,
        /// VNI.
        vni: u32,
    },
    /// A container.
    Container {
        /// Name.
        name: String,
        /// Overlay address.
        ip: String,
        /// MAC.
        mac: String,
    },
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Vtep { host, ip } => write!(f, "{host} underlay {ip}"),
            Node::Bridge { host } => write!(f, "{host} br0"),
            Node::Vxlan { host, vni } => write!(f, "{host} vxlan1 vni {vni}"),
            Node::Container { name, ip, mac } => write!(f, "{name} {ip} {mac}"),
        }
    }
}

/// A link of the topology graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// vxlan1 enslaved to br0.
    VxlanPort,
    /// vxlan1 sends and receives on the host's underlay (UDP 4789).
    Encap,
    /// A veth pair: the container's `eth0` and the br0 port `veth-NAME`.
    Veth {
        /// The br0 port's name.
        port: String,
    },
    /// The underlay network between two VTEPs.
    Underlay,
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::VxlanPort => write!(f, "port vxlan1"),
            Link::Encap => write!(f, "UDP 4789"),
            Link::Veth { port } => write!(f, "veth pair: eth0 = port {port}"),
            Link::Underlay => write!(f, "underlay"),
        }
    }
}

/// The topology graph: devices and containers as nodes, links as edges,
/// in a fixed order (host by host).
pub fn graph(spec: &L2Spec) -> DiGraph<Node, Link> {
    let mut g = DiGraph::new();
    let mut vteps: Vec<NodeIndex> = Vec::new();
    for (h, host) in spec.hosts.iter().enumerate() {
        let br = g.add_node(Node::Bridge {
            host: host.name.clone(),
        });
        let vx = g.add_node(Node::Vxlan {
            host: host.name.clone(),
            vni: spec.vni,
        });
        let vtep = g.add_node(Node::Vtep {
            host: host.name.clone(),
            ip: host.vtep.to_string(),
        });
        g.add_edge(vx, br, Link::VxlanPort);
        g.add_edge(vx, vtep, Link::Encap);
        for c in spec.containers.iter().filter(|c| c.host == h) {
            let n = g.add_node(Node::Container {
                name: c.name.clone(),
                ip: c.ip.to_string(),
                mac: EthernetAddress::docker(c.ip).to_string(),
            });
            g.add_edge(
                n,
                br,
                Link::Veth {
                    port: format!("veth-{}", c.name),
                },
            );
        }
        vteps.push(vtep);
    }
    for (i, a) in vteps.iter().enumerate() {
        for b in vteps.iter().skip(i + 1) {
            g.add_edge(*a, *b, Link::Underlay);
        }
    }
    g
}

// ---------------------------------------------------------------------------
// Facts: what a variant configures, as (host, subject, key) -> value.

/// One configured attribute of one variant.
#[derive(Clone, Debug)]
struct Fact {
    host: usize,
    /// `driver`, `br0`, `br0 port vxlan1`, `vxlan1`, `vxlan1 fdb`, ...
    subject: String,
    key: String,
    value: String,
    /// Shown only when it is on in the base or differs (the driver's
    /// fixes, which are off in most variants).
    quiet: bool,
}

fn on(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

fn facts(model: &OverlaySystem) -> Vec<Fact> {
    let spec = model.spec();
    let profile = model.profile();
    let init = model.init_state();
    let mut out = Vec::new();
    for h in 0..spec.hosts.len() {
        let mut push = |subject: &str, key: &str, value: String, quiet: bool| {
            out.push(Fact {
                host: h,
                subject: subject.to_string(),
                key: key.to_string(),
                value,
                quiet,
            })
        };
        push("driver", "profile", profile.name.clone(), false);
        let miss = match (profile.miss_handling, profile.l2_miss_handling) {
            (false, _) => "off".to_string(),
            (true, false) => "l3miss -> peerAdd".to_string(),
            (true, true) => "l2miss, l3miss -> peerAdd".to_string(),
        };
        push("driver", "watchMiss", miss, false);
        for (name, fix) in Fix::ALL {
            match fix {
                Fix::LocalityCheck | Fix::VxlanFdbZero | Fix::DeleteLocalArp => {
                    push("driver", name, on(profile.has(fix)), true)
                }
                // Drawn as what they do: the vxlan1 port's flags on br0.
                Fix::LearningOff | Fix::NeighSuppress => {}
            }
        }
        let br = model.bridge_config(h);
        push(
            "br0",
            "address",
            format!("{}/{}", br.ip, spec.subnet.prefix_len()),
            false,
        );
        push(
            "br0",
            "ageing_time",
            format!("{} s", br.ageing_time_s),
            false,
        );
        for p in &br.ports {
            let subject = format!("br0 port {}", p.name);
            push(&subject, "learning", on(p.learning), false);
            push(&subject, "neigh_suppress", on(p.neigh_suppress), false);
        }
        let vx = model.vxlan_config(h);
        push("vxlan1", "vni", vx.vni.to_string(), false);
        push("vxlan1", "proxy", on(vx.proxy), false);
        push("vxlan1", "learning", on(vx.learning), false);
        push("vxlan1", "l2miss", on(vx.l2miss), false);
        push("vxlan1", "l3miss", on(vx.l3miss), false);
        push("vxlan1", "ageing", format!("{} s", vx.ageing_s), false);
        let dev = &init.hosts[h].vx;
        for (mac, f) in &dev.fdb {
            let value = if f.permanent {
                f.remote.to_string()
            } else {
                format!("{} (learned)", f.remote)
            };
            push("vxlan1 fdb", &mac.to_string(), value, false);
        }
        for (ip, n) in &dev.neigh {
            push("vxlan1 neigh", &ip.to_string(), n.mac.to_string(), false);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The picture: what both renderers draw.

/// How a line of a device's text is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// The device's name.
    Head,
    /// An attribute every variant drawn agrees on.
    Plain,
    /// An attribute that differs between the variants (marked `*`).
    Differs,
}

/// One line of a device's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The text.
    pub text: String,
    /// How it is shown.
    pub tone: Tone,
}

fn head(text: impl Into<String>) -> Line {
    Line {
        text: text.into(),
        tone: Tone::Head,
    }
}

fn plain(text: impl Into<String>) -> Line {
    Line {
        text: text.into(),
        tone: Tone::Plain,
    }
}

/// A container and its namespace.
#[derive(Clone, Debug)]
pub struct ContainerPic {
    /// The container's name.
    pub name: String,
    /// Its `eth0`.
    pub eth0: Vec<Line>,
    /// The br0 port its veth pair ends on.
    pub port: String,
}

/// A port of br0.
#[derive(Clone, Debug)]
pub struct PortPic {
    /// Its name (`vxlan1`, `veth-A`).
    pub name: String,
    /// Its name and flags.
    pub lines: Vec<Line>,
}

/// One host's part of the picture.
#[derive(Clone, Debug)]
pub struct HostPic {
    /// The host's name.
    pub name: String,
    /// Its VTEP address.
    pub vtep: String,
    /// The overlay driver.
    pub driver: Vec<Line>,
    /// Its containers, in scenario order.
    pub containers: Vec<ContainerPic>,
    /// br0's own lines.
    pub bridge: Vec<Line>,
    /// br0's ports (vxlan1 first).
    pub ports: Vec<PortPic>,
    /// vxlan1.
    pub vxlan: Vec<Line>,
    /// vxlan1's permanent entries in the initial state.
    pub entries: Vec<Line>,
    /// The underlay interface.
    pub underlay: Vec<Line>,
}

/// A picture of an L2 scenario under one or more variants.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The scenario's name.
    pub scenario: String,
    /// One line on the network (name, subnet, VNI).
    pub network: String,
    /// The variants drawn; the first is the base.
    pub variants: Vec<String>,
    /// Per host.
    pub hosts: Vec<HostPic>,
    /// Per attribute that differs: which variants have which value.
    pub differences: Vec<String>,
}

/// The name of the overlay network's namespace, as the picture says it.
pub fn overlay_ns_label(network: &str) -> String {
    format!("overlay namespace of network {network}")
}

/// Builds the picture of `spec` under `variants` (name, model), the first
/// being the base. `variants` must not be empty.
pub fn picture(scenario: &str, spec: &L2Spec, variants: &[(&str, &OverlaySystem)]) -> Picture {
    assert!(!variants.is_empty(), "a picture needs a variant");
    let all: Vec<Vec<Fact>> = variants.iter().map(|(_, m)| facts(m)).collect();
    // (host, subject, key) -> value per variant, keys in order of first
    // appearance (the base's order, then what later variants add).
    type Key = (usize, String, String);
    let mut order: Vec<(Key, bool)> = Vec::new();
    let mut values: BTreeMap<Key, Vec<Option<String>>> = BTreeMap::new();
    for (v, fs) in all.iter().enumerate() {
        for f in fs {
            let k = (f.host, f.subject.clone(), f.key.clone());
            let slot = values.entry(k.clone()).or_insert_with(|| {
                order.push((k, f.quiet));
                vec![None; variants.len()]
            });
            slot[v] = Some(f.value.clone());
        }
    }
    let differs: BTreeSet<&Key> = values
        .iter()
        .filter(|(_, vs)| vs.iter().any(|x| *x != vs[0]))
        .map(|(k, _)| k)
        .collect();
    // The lines of one subject on one host, in order.
    let lines_of = |host: usize, subject: &str, fmt: &dyn Fn(&str, &str) -> String| -> Vec<Line> {
        let mut out = Vec::new();
        for ((h, s, key), quiet) in &order {
            if *h != host || s != subject {
                continue;
            }
            let k = (*h, s.clone(), key.clone());
            let base = values[&k][0].as_deref();
            let d = differs.contains(&k);
            if *quiet && !d && base == Some("off") {
                continue;
            }
            let text = match base {
                Some(v) => fmt(key, v),
                None => format!("{key}: absent"),
            };
            out.push(if d {
                Line {
                    text: format!("{text} *"),
                    tone: Tone::Differs,
                }
            } else {
                plain(text)
            });
        }
        out
    };
    let kv = |k: &str, v: &str| format!("{k} {v}");
    let arrow = |k: &str, v: &str| format!("{k} -> {v}");
    let mut hosts = Vec::new();
    for (h, hs) in spec.hosts.iter().enumerate() {
        let mut driver = vec![head("overlay driver")];
        driver.extend(lines_of(h, "driver", &|k, v| match k {
            "profile" | "watchMiss" => format!("{k} {v}"),
            _ => format!("fix {k} {v}"),
        }));
        let containers = spec
            .containers
            .iter()
            .filter(|c| c.host == h)
            .map(|c| {
                let mut eth0 = vec![
                    head("eth0"),
                    plain(format!("{}/{}", c.ip, spec.subnet.prefix_len())),
                    plain(EthernetAddress::docker(c.ip).to_string()),
                ];
                if !c.arp_responder {
                    eth0.push(plain("answers no ARP"));
                }
                ContainerPic {
                    name: c.name.clone(),
                    eth0,
                    port: format!("veth-{}", c.name),
                }
            })
            .collect();
        let mut bridge = vec![head("br0")];
        bridge.extend(lines_of(h, "br0", &kv));
        let ports = variants[0]
            .1
            .bridge_config(h)
            .ports
            .iter()
            .map(|p| {
                let mut lines = vec![head(p.name.clone())];
                lines.extend(lines_of(h, &format!("br0 port {}", p.name), &kv));
                PortPic {
                    name: p.name.clone(),
                    lines,
                }
            })
            .collect();
        let mut vxlan = vec![head("vxlan1")];
        vxlan.extend(lines_of(h, "vxlan1", &kv));
        let mut entries = vec![head("vxlan1 permanent entries at start")];
        let fdb = lines_of(h, "vxlan1 fdb", &arrow);
        let neigh = lines_of(h, "vxlan1 neigh", &arrow);
        entries.push(plain("fdb (mac -> remote VTEP):"));
        if fdb.is_empty() {
            entries.push(plain("  (none)"));
        }
        entries.extend(fdb.into_iter().map(indent));
        entries.push(plain("neigh (ip -> mac):"));
        if neigh.is_empty() {
            entries.push(plain("  (none)"));
        }
        entries.extend(neigh.into_iter().map(indent));
        hosts.push(HostPic {
            name: hs.name.clone(),
            vtep: hs.vtep.to_string(),
            driver,
            containers,
            bridge,
            ports,
            vxlan,
            entries,
            underlay: vec![head("underlay"), plain(format!("VTEP {}", hs.vtep))],
        });
    }
    Picture {
        scenario: scenario.to_string(),
        network: format!("network {} {} vni {}", spec.network, spec.subnet, spec.vni),
        variants: variants.iter().map(|(n, _)| n.to_string()).collect(),
        hosts,
        differences: differences(spec, variants, &order, &values),
    }
}

fn indent(l: Line) -> Line {
    Line {
        text: format!("  {}", l.text),
        tone: l.tone,
    }
}

type Key = (usize, String, String);

/// One line per differing attribute: `subject key: value (variants), ...
/// [hosts]`, an attribute that differs alike on several hosts said once.
fn differences(
    spec: &L2Spec,
    variants: &[(&str, &OverlaySystem)],
    order: &[(Key, bool)],
    values: &BTreeMap<Key, Vec<Option<String>>>,
) -> Vec<String> {
    // (subject, key, distribution) -> hosts, in order of first appearance.
    let mut seen: Vec<(String, Vec<usize>)> = Vec::new();
    for ((h, subject, key), _) in order {
        let vs = &values[&(*h, subject.clone(), key.clone())];
        if vs.iter().all(|x| *x == vs[0]) {
            continue;
        }
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (i, v) in vs.iter().enumerate() {
            let v = v.as_deref().unwrap_or("absent");
            match groups.iter_mut().find(|(x, _)| *x == v) {
                Some((_, names)) => names.push(variants[i].0),
                None => groups.push((v, vec![variants[i].0])),
            }
        }
        let dist: Vec<String> = groups
            .iter()
            .map(|(v, names)| format!("{v} ({})", names.join(", ")))
            .collect();
        let text = format!("{subject} {key}: {}", dist.join(", "));
        match seen.iter_mut().find(|(t, _)| *t == text) {
            Some((_, hosts)) => hosts.push(*h),
            None => seen.push((text, vec![*h])),
        }
    }
    seen.into_iter()
        .map(|(text, hosts)| {
            let where_ = if hosts.len() == spec.hosts.len() && hosts.len() > 1 {
                "all hosts".to_string()
            } else {
                let names: Vec<&str> = hosts.iter().map(|h| spec.hosts[*h].name.as_str()).collect();
                names.join(", ")
            };
            format!("{text} [{where_}]")
        })
        .collect()
}

/// Escapes text for a double-quoted DOT string.
fn dot_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// DOT.

const DIFF_COLOUR: &str = "#b00020";

fn dot_line(l: &Line) -> String {
    let t = esc(&l.text);
    match l.tone {
        Tone::Head => format!("<b>{t}</b>"),
        Tone::Plain => t,
        Tone::Differs => format!("<font color=\"{DIFF_COLOUR}\">{t}</font>"),
    }
}

/// An HTML-like table of lines, one row each.
fn dot_table(lines: &[Line], bg: &str) -> String {
    let mut s = format!(
        "<<table border=\"1\" cellborder=\"0\" cellspacing=\"0\" cellpadding=\"2\" bgcolor=\"{bg}\">"
    );
    for l in lines {
        let align = if l.tone == Tone::Head {
            "center"
        } else {
            "left"
        };
        s.push_str(&format!(
            "<tr><td align=\"{align}\">{}</td></tr>",
            dot_line(l)
        ));
    }
    s.push_str("</table>>");
    s
}

/// The picture as Graphviz DOT: one `cluster_hostN` per host (N from 1 in
/// scenario order), in it one cluster per namespace; labels are
/// HTML-like tables and edge labels `xlabel`s.
pub fn dot(p: &Picture, spec: &L2Spec) -> String {
    let mut out = String::new();
    out.push_str(&format!("digraph {} {{\n", dot_quote(&p.scenario)));
    let mut title = vec![
        head(format!("netrace topology: {}", p.scenario)),
        plain(p.network.clone()),
    ];
    title.extend(variant_lines(p));
    out.push_str("    graph [fontname = \"monospace\", fontsize = 10, newrank = true, ordering = out, forcelabels = true, nodesep = 0.3, ranksep = 0.45, labelloc = t, labeljust = l];\n");
    out.push_str("    node [fontname = \"monospace\", fontsize = 10, shape = plain];\n");
    out.push_str("    edge [fontname = \"monospace\", fontsize = 9, dir = none];\n");
    out.push_str(&format!(
        "    title [label = {}];\n",
        dot_table(&title, "white")
    ));
    for (h, host) in p.hosts.iter().enumerate() {
        let n = h + 1;
        out.push_str(&format!("    subgraph cluster_host{n} {{\n"));
        out.push_str(&format!(
            "        label = <<b>{}</b> (VTEP {})>;\n        style = \"rounded,bold\";\n        color = \"#404040\";\n",
            esc(&host.name),
            esc(&host.vtep)
        ));
        out.push_str(&format!(
            "        h{n}_driver [label = {}];\n",
            dot_table(&host.driver, "#f4f4f4")
        ));
        // In reverse: dot then lays the namespaces out left to right in
        // scenario order, above their ports, without crossing veths.
        for (i, c) in host.containers.iter().enumerate().rev() {
            out.push_str(&format!(
                "        subgraph cluster_host{n}_ns_{i} {{\n            label = <namespace of container <b>{}</b>>;\n            style = dashed;\n            h{n}_c{i} [label = {}];\n        }}\n",
                esc(&c.name),
                dot_table(&c.eth0, "#e8f0ff")
            ));
        }
        out.push_str(&format!(
            "        subgraph cluster_host{n}_overlay {{\n            label = <{}>;\n            style = dashed;\n",
            esc(&overlay_ns_label(&spec.network))
        ));
        // br0: its own lines over one cell per port.
        let mut br = String::from(
            "<<table border=\"1\" cellborder=\"1\" cellspacing=\"0\" cellpadding=\"3\" bgcolor=\"#eaf6ea\">",
        );
        let head_lines: Vec<String> = host.bridge.iter().map(dot_line).collect();
        br.push_str(&format!(
            "<tr><td colspan=\"{}\">{}</td></tr><tr>",
            host.ports.len().max(1),
            head_lines.join("<br/>")
        ));
        for (i, port) in host.ports.iter().enumerate() {
            let lines: Vec<String> = port.lines.iter().map(dot_line).collect();
            br.push_str(&format!(
                "<td port=\"p{i}\" balign=\"left\">{}</td>",
                lines.join("<br/>")
            ));
        }
        br.push_str("</tr></table>>");
        out.push_str(&format!("            h{n}_br0 [label = {br}];\n"));
        out.push_str(&format!(
            "            h{n}_vxlan1 [label = {}];\n",
            dot_table(&host.vxlan, "#fff4e0")
        ));
        out.push_str(&format!(
            "            h{n}_entries [label = {}];\n",
            dot_table(&host.entries, "#fffbe8")
        ));
        out.push_str(&format!(
            "            {{ rank = same; h{n}_vxlan1; h{n}_entries; }}\n"
        ));
        out.push_str("        }\n");
        out.push_str(&format!(
            "        h{n}_vtep [label = {}];\n",
            dot_table(&host.underlay, "#eeeeee")
        ));
        out.push_str(&format!(
            "        h{n}_vxlan1 -> h{n}_entries [style = dotted];\n"
        ));

        out.push_str("    }\n");
    }
    // Containers and the driver on one rank at the top, the VTEPs at the
    // bottom.
    let mut top: Vec<String> = Vec::new();
    let mut bottom: Vec<String> = Vec::new();
    for (h, host) in p.hosts.iter().enumerate() {
        let n = h + 1;
        top.push(format!("h{n}_driver"));
        for i in 0..host.containers.len() {
            top.push(format!("h{n}_c{i}"));
        }
        bottom.push(format!("h{n}_vtep"));
    }
    out.push_str(&format!("    {{ rank = same; {}; }}\n", top.join("; ")));
    out.push_str(&format!("    {{ rank = same; {}; }}\n", bottom.join("; ")));
    out.push_str("    title -> h1_driver [style = invis];\n");
    for (h, _) in p.hosts.iter().enumerate() {
        let n = h + 1;
        out.push_str(&format!("    h{n}_driver -> h{n}_br0 [style = invis];\n"));
    }
    // The links, from the graph.
    let g = graph(spec);
    let host_no = |name: &str| {
        spec.hosts
            .iter()
            .position(|h| h.name == name)
            .expect("a host of the spec")
            + 1
    };
    let container_id = |name: &str| {
        let c = spec
            .containers
            .iter()
            .find(|c| c.name == name)
            .expect("a container of the spec");
        let i = spec
            .containers
            .iter()
            .filter(|x| x.host == c.host)
            .position(|x| x.name == name)
            .expect("on its host");
        (c.host + 1, i)
    };
    for e in g.edge_indices() {
        let (a, b) = g.edge_endpoints(e).expect("edge exists");
        let line = match (&g[a], &g[b], &g[e]) {
            (Node::Vxlan { host, .. }, Node::Bridge { .. }, Link::VxlanPort) => {
                let n = host_no(host);
                format!("h{n}_br0:p0:s -> h{n}_vxlan1:n [xlabel = \"enslaved\"]")
            }
            (Node::Vxlan { host, .. }, Node::Vtep { .. }, Link::Encap) => {
                let n = host_no(host);
                format!("h{n}_vxlan1:s -> h{n}_vtep:n [xlabel = \"UDP 4789\"]")
            }
            (Node::Container { name, .. }, Node::Bridge { host, .. }, Link::Veth { port }) => {
                let (n, i) = container_id(name);
                debug_assert_eq!(n, host_no(host));
                let pi = p.hosts[n - 1]
                    .ports
                    .iter()
                    .position(|x| x.name == *port)
                    .expect("the veth is a port");
                format!("h{n}_c{i}:s -> h{n}_br0:p{pi}:n [xlabel = \"veth\"]")
            }
            (Node::Vtep { .. }, Node::Vtep { .. }, Link::Underlay) if spec.hosts.len() > 2 => {
                // Drawn once below, as a network all VTEPs are on.
                continue;
            }
            (Node::Vtep { host: x, .. }, Node::Vtep { host: y, .. }, Link::Underlay) => {
                format!(
                    "h{}_vtep -> h{}_vtep [xlabel = \"underlay\", constraint = false, penwidth = 2]",
                    host_no(x),
                    host_no(y)
                )
            }
            (a, b, l) => unreachable!("no such link {a} -{l}- {b}"),
        };
        out.push_str(&format!("    {line};\n"));
    }
    if spec.hosts.len() > 2 {
        out.push_str(&format!(
            "    underlay [label = {}];\n",
            dot_table(&[head("underlay network")], "#eeeeee")
        ));
        for h in 1..=spec.hosts.len() {
            out.push_str(&format!(
                "    h{h}_vtep -> underlay [xlabel = \"underlay\", penwidth = 2];\n"
            ));
        }
    }
    if !p.differences.is_empty() {
        let mut lines = vec![head(format!(
            "* differs between the variants (drawn: {})",
            p.variants[0]
        ))];
        lines.extend(p.differences.iter().map(|d| Line {
            text: d.clone(),
            tone: Tone::Differs,
        }));
        out.push_str(&format!(
            "    differences [label = {}];\n",
            dot_table(&lines, "white")
        ));
        for (h, _) in p.hosts.iter().enumerate() {
            out.push_str(&format!(
                "    h{}_vtep -> differences [style = invis];\n",
                h + 1
            ));
        }
    }
    out.push_str("}\n");
    out
}

fn variant_lines(p: &Picture) -> Vec<Line> {
    if p.variants.len() == 1 {
        vec![plain(format!("variant {}", p.variants[0]))]
    } else {
        vec![
            plain(format!("variant {} drawn (the first)", p.variants[0])),
            plain(format!("variants compared: {}", p.variants.join(", "))),
        ]
    }
}

// ---------------------------------------------------------------------------
// SVG: a layout of our own.

/// Width of a monospace character at the font size used, px (generous).
const CHAR_W: usize = 7;
/// Line height, px.
const LINE_H: usize = 15;
/// Font size, px.
const FONT: usize = 11;
/// Padding inside a box, px.
const PAD: usize = 6;
/// Gap between columns, px.
const GAP: usize = 16;
/// Margin inside a host box and inside a namespace box, px.
const MARGIN: usize = 10;

fn text_w(lines: &[Line]) -> usize {
    lines
        .iter()
        .map(|l| l.text.chars().count())
        .max()
        .unwrap_or(0)
        * CHAR_W
        + 2 * PAD
}

fn text_h(n: usize) -> usize {
    n * LINE_H + 2 * PAD - 2
}

/// Wraps text at `, ` and spaces to lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let extra = if cur.is_empty() { 0 } else { 1 };
        if !cur.is_empty() && cur.chars().count() + extra + word.chars().count() > width {
            out.push(std::mem::take(&mut cur));
            cur.push_str("    ");
        } else if extra == 1 {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

struct Svg {
    out: String,
}

impl Svg {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, fill: &str, dashed: bool) {
        let dash = if dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        self.raw(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"4\" fill=\"{fill}\" stroke=\"#404040\"{dash}/>"
        ));
    }

    fn text(&mut self, x: usize, y: usize, l: &Line) {
        let (weight, fill) = match l.tone {
            Tone::Head => (" font-weight=\"bold\"", "#000000"),
            Tone::Plain => ("", "#202020"),
            Tone::Differs => ("", DIFF_COLOUR),
        };
        self.raw(&format!(
            "<text x=\"{x}\" y=\"{y}\"{weight} fill=\"{fill}\" xml:space=\"preserve\">{}</text>",
            esc(&l.text)
        ));
    }

    /// Lines in a box whose top-left is (x, y).
    fn lines(&mut self, x: usize, y: usize, lines: &[Line]) {
        for (i, l) in lines.iter().enumerate() {
            self.text(x + PAD, y + PAD + FONT + i * LINE_H, l);
        }
    }

    fn line(&mut self, x1: usize, y1: usize, x2: usize, y2: usize, dashed: bool, width: usize) {
        let dash = if dashed {
            " stroke-dasharray=\"3 3\""
        } else {
            ""
        };
        self.raw(&format!(
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#404040\" stroke-width=\"{width}\"{dash}/>"
        ));
    }

    fn small(&mut self, x: usize, y: usize, text: &str) {
        self.raw(&format!(
            "<text x=\"{x}\" y=\"{y}\" font-size=\"9\" fill=\"#505050\">{}</text>",
            esc(text)
        ));
    }
}

/// One host's geometry, relative to the host box's top-left corner.
struct HostLayout {
    /// Column widths: column 0 holds the driver, vxlan1's port, vxlan1 and
    /// the underlay; column i + 1 container i and its port.
    cols: Vec<usize>,
    /// Width of the permanent-entry table.
    entries_w: usize,
    width: usize,
    top_h: usize,
    bridge_head_h: usize,
    port_h: usize,
    vx_h: usize,
    entries_h: usize,
}

const HEADER_H: usize = 2 * LINE_H + 10;
/// Room for a link between two rows.
const LINK_H: usize = 34;

impl HostLayout {
    fn of(h: &HostPic) -> HostLayout {
        let mut cols = vec![text_w(&h.driver)
            .max(text_w(&h.vxlan))
            .max(text_w(&h.underlay))
            .max(text_w(&h.ports[0].lines))];
        for (i, c) in h.containers.iter().enumerate() {
            let port = h
                .ports
                .iter()
                .find(|p| p.name == c.port)
                .map_or(0, |p| text_w(&p.lines));
            // The namespace box holds the device box with a margin.
            let ns_label = (format!("netns {}", c.name).chars().count()) * CHAR_W + 2 * PAD;
            cols.push(
                (text_w(&c.eth0) + 2 * MARGIN)
                    .max(port)
                    .max(ns_label)
                    .max(text_w(&h.ports[i + 1].lines)),
            );
        }
        let entries_w = text_w(&h.entries);
        let cols_w: usize = cols.iter().sum::<usize>() + GAP * (cols.len() - 1);
        let lower_w = cols[0] + GAP + entries_w;
        let header_w = (h.name.chars().count() + 6 + h.vtep.chars().count()) * CHAR_W;
        let inner = cols_w.max(lower_w).max(text_w(&h.bridge));
        let width = (inner + 4 * MARGIN).max(header_w + 2 * MARGIN);
        let top_h = text_h(h.driver.len()).max(
            h.containers
                .iter()
                .map(|c| text_h(c.eth0.len()) + LINE_H + 2 * MARGIN - 4)
                .max()
                .unwrap_or(0),
        );
        HostLayout {
            cols,
            entries_w,
            width,
            top_h,
            bridge_head_h: host_line_h(h.bridge.len()),
            port_h: h
                .ports
                .iter()
                .map(|p| text_h(p.lines.len()))
                .max()
                .unwrap_or(0),
            vx_h: text_h(h.vxlan.len()),
            entries_h: text_h(h.entries.len()),
        }
    }

    fn col_x(&self, i: usize) -> usize {
        2 * MARGIN + self.cols[..i].iter().sum::<usize>() + GAP * i
    }

    /// Top of the overlay namespace box.
    fn ns_y(&self) -> usize {
        HEADER_H + self.top_h + LINK_H
    }

    fn br_y(&self) -> usize {
        self.ns_y() + LINE_H + 8
    }

    fn vx_y(&self) -> usize {
        self.br_y() + self.bridge_head_h + self.port_h + PAD + LINK_H
    }

    /// Bottom of the overlay namespace box.
    fn ns_bottom(&self) -> usize {
        self.vx_y() + self.vx_h.max(self.entries_h) + MARGIN
    }
}

fn host_line_h(n: usize) -> usize {
    n * LINE_H + PAD
}

/// The picture as a self-contained SVG document: hosts side by side, in
/// each the container namespaces at the top, `br0` with its ports as a
/// row, `vxlan1` and its permanent entries below, the VTEP at the bottom
/// and the underlay joining the VTEPs under the hosts.
pub fn svg(p: &Picture, spec: &L2Spec) -> String {
    let mut layouts: Vec<HostLayout> = p.hosts.iter().map(HostLayout::of).collect();
    // One row of namespaces across the hosts.
    let top_h = layouts.iter().map(|l| l.top_h).max().unwrap_or(0);
    for l in &mut layouts {
        l.top_h = top_h;
    }
    let ns_bottom = layouts.iter().map(|l| l.ns_bottom()).max().unwrap_or(0);
    let under_h = p
        .hosts
        .iter()
        .map(|h| text_h(h.underlay.len()))
        .max()
        .unwrap_or(0);
    let under_y = ns_bottom + LINK_H;
    let host_h = under_y + under_h + MARGIN;
    let host_gap = 40;
    let total_hosts_w: usize =
        layouts.iter().map(|l| l.width).sum::<usize>() + host_gap * (layouts.len() - 1);
    let left = 16;
    let width_chars = (total_hosts_w / CHAR_W).max(60);
    let mut title = vec![head(format!("netrace topology: {}", p.scenario))];
    for l in std::iter::once(plain(p.network.clone())).chain(variant_lines(p)) {
        title.extend(wrap(&l.text, width_chars).into_iter().map(plain));
    }
    let hosts_y = 12 + title.len() * LINE_H + 10;
    let bus_y = hosts_y + host_h + 24;
    let mut notes: Vec<Line> = Vec::new();
    if !p.differences.is_empty() {
        notes.push(head(format!(
            "* differs between the variants (drawn: {})",
            p.variants[0]
        )));
        for d in &p.differences {
            notes.extend(wrap(d, width_chars).into_iter().map(|t| Line {
                text: t,
                tone: Tone::Differs,
            }));
        }
    }
    let notes_y = bus_y + 30;
    let height = notes_y + notes.len() * LINE_H + 16;
    let title_w = text_w(&title).max(text_w(&notes));
    let width = (left + total_hosts_w).max(title_w) + 16;

    let mut s = Svg { out: String::new() };
    s.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    s.raw(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"{FONT}\">"
    ));
    let mut t = format!(
        "netrace topology: {}, variant {}",
        p.scenario, p.variants[0]
    );
    if p.variants.len() > 1 {
        t.push_str(&format!(" (compared with {})", p.variants[1..].join(", ")));
    }
    s.raw(&format!("<title>{}</title>", esc(&t)));
    s.raw(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    ));
    s.raw("<g class=\"title\">");
    s.lines(left - PAD, 12 - PAD, &title);
    s.raw("</g>");
    let mut x0 = left;
    let mut vtep_xs = Vec::new();
    for (h, (host, lay)) in p.hosts.iter().zip(&layouts).enumerate() {
        let y0 = hosts_y;
        s.raw(&format!(
            "<g class=\"host\" data-host=\"{}\" data-vtep=\"{}\">",
            esc(&host.name),
            esc(&host.vtep)
        ));
        s.rect(x0, y0, lay.width, host_h, "#fafafa", false);
        s.text(
            x0 + MARGIN - PAD,
            y0 + MARGIN + FONT,
            &head(host.name.clone()),
        );
        s.text(
            x0 + MARGIN - PAD,
            y0 + MARGIN + FONT + LINE_H,
            &plain(format!("VTEP {}", host.vtep)),
        );
        // Row 1: the driver, the container namespaces.
        let ty = y0 + HEADER_H;
        let dx = x0 + lay.col_x(0);
        s.raw("<g class=\"driver\">");
        s.rect(
            dx,
            ty,
            lay.cols[0],
            text_h(host.driver.len()),
            "#f0f0f0",
            false,
        );
        s.lines(dx, ty, &host.driver);
        s.raw("</g>");
        let ns_x = x0 + MARGIN;
        let ns_w = lay.width - 2 * MARGIN;
        let br_y = y0 + lay.br_y();
        let port_y = br_y + lay.bridge_head_h;
        let mut port_x: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        port_x.insert(
            host.ports[0].name.as_str(),
            (x0 + lay.col_x(0), lay.cols[0]),
        );
        for (i, c) in host.containers.iter().enumerate() {
            port_x.insert(c.port.as_str(), (x0 + lay.col_x(i + 1), lay.cols[i + 1]));
        }
        for (i, c) in host.containers.iter().enumerate() {
            let cx = x0 + lay.col_x(i + 1);
            let cw = lay.cols[i + 1];
            s.raw(&format!(
                "<g class=\"netns\" data-netns=\"{}\">",
                esc(&c.name)
            ));
            s.rect(cx, ty, cw, lay.top_h, "#ffffff", true);
            s.text(cx, ty + FONT + 2, &plain(format!(" netns {}", c.name)));
            let dev_y = ty + LINE_H + MARGIN - 4;
            s.raw(&format!(
                "<g class=\"device\" data-kind=\"container\" data-name=\"eth0\" data-container=\"{}\">",
                esc(&c.name)
            ));
            s.rect(
                cx + MARGIN,
                dev_y,
                cw - 2 * MARGIN,
                text_h(c.eth0.len()),
                "#e8f0ff",
                false,
            );
            s.lines(cx + MARGIN, dev_y, &c.eth0);
            s.raw("</g>");
            s.raw("</g>");
            // The veth pair down to br0's port.
            let (px, pw) = port_x[c.port.as_str()];
            let mid = px + pw / 2;
            s.raw(&format!(
                "<g class=\"link\" data-kind=\"veth\" data-from=\"{}\" data-to=\"{}\">",
                esc(&c.name),
                esc(&c.port)
            ));
            s.line(
                cx + cw / 2,
                dev_y + text_h(c.eth0.len()),
                mid,
                port_y,
                false,
                2,
            );
            s.small(mid + 4, ty + lay.top_h + LINK_H / 2 + 4, "veth pair");
            s.raw("</g>");
        }
        // The overlay namespace.
        let ns_y = y0 + lay.ns_y();
        s.raw(&format!(
            "<g class=\"netns\" data-netns=\"overlay\" data-network=\"{}\">",
            esc(&spec.network)
        ));
        s.rect(ns_x, ns_y, ns_w, y0 + ns_bottom - ns_y, "#ffffff", true);
        s.text(
            ns_x,
            ns_y + FONT + 2,
            &plain(format!(" {}", overlay_ns_label(&spec.network))),
        );
        // br0 and its ports.
        let bx = x0 + lay.col_x(0);
        let bw = ns_x + ns_w - MARGIN - bx;
        s.raw("<g class=\"device\" data-kind=\"bridge\" data-name=\"br0\">");
        s.rect(
            bx,
            br_y,
            bw,
            lay.bridge_head_h + lay.port_h + PAD,
            "#eaf6ea",
            false,
        );
        s.lines(bx, br_y - PAD / 2, &host.bridge);
        for port in &host.ports {
            let (px, pw) = port_x[port.name.as_str()];
            s.raw(&format!(
                "<g class=\"port\" data-port=\"{}\">",
                esc(&port.name)
            ));
            s.rect(px, port_y, pw, lay.port_h, "#ffffff", false);
            s.lines(px, port_y, &port.lines);
            s.raw("</g>");
        }
        s.raw("</g>");
        // vxlan1 under its port, the entries beside it.
        let vx_y = y0 + lay.vx_y();
        let (vx_x, vx_w) = port_x[host.ports[0].name.as_str()];
        s.raw("<g class=\"link\" data-kind=\"port\" data-from=\"vxlan1\" data-to=\"br0\">");
        s.line(
            vx_x + vx_w / 2,
            port_y + lay.port_h,
            vx_x + vx_w / 2,
            vx_y,
            false,
            2,
        );
        s.small(vx_x + vx_w / 2 + 4, vx_y - LINK_H / 2 + 4, "enslaved");
        s.raw("</g>");
        s.raw(&format!(
            "<g class=\"device\" data-kind=\"vxlan\" data-name=\"vxlan1\" data-vni=\"{}\">",
            spec.vni
        ));
        s.rect(vx_x, vx_y, vx_w, lay.vx_h, "#fff4e0", false);
        s.lines(vx_x, vx_y, &host.vxlan);
        s.raw("</g>");
        let ex = vx_x + vx_w + GAP;
        s.raw("<g class=\"entries\" data-device=\"vxlan1\">");
        s.line(vx_x + vx_w, vx_y + 12, ex, vx_y + 12, true, 1);
        s.rect(ex, vx_y, lay.entries_w, lay.entries_h, "#fffbe8", false);
        s.lines(ex, vx_y, &host.entries);
        s.raw("</g>");
        s.raw("</g>");
        // The VTEP.
        let uy = y0 + under_y;
        s.raw("<g class=\"link\" data-kind=\"encap\" data-from=\"vxlan1\" data-to=\"underlay\">");
        s.line(
            vx_x + vx_w / 2,
            vx_y + lay.vx_h,
            vx_x + vx_w / 2,
            uy,
            false,
            2,
        );
        s.small(vx_x + vx_w / 2 + 4, uy - 8, "UDP 4789");
        s.raw("</g>");
        s.raw(&format!(
            "<g class=\"device\" data-kind=\"underlay\" data-name=\"underlay\" data-ip=\"{}\">",
            esc(&host.vtep)
        ));
        s.rect(vx_x, uy, vx_w, under_h, "#eeeeee", false);
        s.lines(vx_x, uy, &host.underlay);
        s.raw("</g>");
        s.raw("</g>");
        vtep_xs.push((vx_x + vx_w / 2, uy + under_h, h));
        x0 += lay.width + host_gap;
    }
    // The underlay between the VTEPs.
    s.raw("<g class=\"link\" data-kind=\"underlay\">");
    for (x, y, _) in &vtep_xs {
        s.line(*x, *y, *x, bus_y, false, 2);
    }
    let first = vtep_xs.first().map_or(left, |v| v.0);
    let last = vtep_xs.last().map_or(left, |v| v.0);
    s.line(first, bus_y, last.max(first + 40), bus_y, false, 3);
    s.small(
        first + 6,
        bus_y + 14,
        "underlay network: VXLAN in UDP 4789 between the VTEPs",
    );
    s.raw("</g>");
    if !notes.is_empty() {
        s.raw("<g class=\"differences\">");
        s.lines(left - PAD, notes_y - PAD, &notes);
        s.raw("</g>");
    }
    s.raw("</svg>");
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::system::{ContainerSpec, HostSpec};
    use crate::overlay::OverlayProfile;

    fn spec() -> L2Spec {
        L2Spec {
            network: "ov".into(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            vni: 256,
            hosts: vec![
                HostSpec {
                    name: "host1".into(),
                    vtep: "192.168.100.1".parse().unwrap(),
                    preset: Default::default(),
                },
                HostSpec {
                    name: "host<2>".into(),
                    vtep: "192.168.100.2".parse().unwrap(),
                    preset: Default::default(),
                },
            ],
            containers: vec![
                ContainerSpec {
                    name: "A".into(),
                    host: 0,
                    ip: "10.0.0.2".parse().unwrap(),
                    arp_responder: true,
                    script: vec![],
                    start: Default::default(),
                },
                ContainerSpec {
                    name: "C".into(),
                    host: 1,
                    ip: "10.0.0.4".parse().unwrap(),
                    arp_responder: true,
                    script: vec![],
                    start: Default::default(),
                },
            ],
            max_hops: 16,
            ageing_time_s: crate::l2::bridge::AGEING_TIME_S,
        }
    }

    fn models(spec: &L2Spec) -> (OverlaySystem, OverlaySystem) {
        let classic = OverlayProfile::builtin("classic-17.03").unwrap();
        let mut off = classic.clone();
        off.fixes.push(Fix::LearningOff);
        (
            OverlaySystem::new(spec, &classic).unwrap(),
            OverlaySystem::new(spec, &off).unwrap(),
        )
    }

    #[test]
    fn dot_lists_every_device_link_and_permanent_entry() {
        let spec = spec();
        let (a, _) = models(&spec);
        let p = picture("t", &spec, &[("classic", &a)]);
        let d = dot(&p, &spec);
        assert!(d.starts_with("digraph \"t\" {"));
        for needle in [
            "subgraph cluster_host1 {",
            "subgraph cluster_host2 {",
            "host&lt;2&gt;",
            "02:42:0a:00:00:02",
            "02:42:0a:00:00:04 -&gt; 192.168.100.2",
            "10.0.0.2 -&gt; 02:42:0a:00:00:02",
            "proxy on",
            "h1_c0:s -> h1_br0:p1:n",
            "h1_vtep -> h2_vtep",
        ] {
            assert!(d.contains(needle), "{needle} missing in\n{d}");
        }
        assert!(p.differences.is_empty());
        assert_eq!(d, dot(&p, &spec), "deterministic");
    }

    #[test]
    fn a_difference_is_marked_with_the_variants() {
        let spec = spec();
        let (a, b) = models(&spec);
        let p = picture("t", &spec, &[("classic", &a), ("learning-off", &b)]);
        assert_eq!(
            p.differences,
            vec!["br0 port vxlan1 learning: on (classic), off (learning-off) [all hosts]"]
        );
        let port = &p.hosts[0].ports[0].lines;
        assert!(port.contains(&Line {
            text: "learning on *".into(),
            tone: Tone::Differs
        }));
        let svg = svg(&p, &spec);
        assert!(svg.contains("learning on *") && svg.contains("[all hosts]"));
        assert!(svg.contains("data-host=\"host&lt;2&gt;\""));
    }

    #[test]
    fn wrap_keeps_words_and_width() {
        let w = wrap("aaa bbb ccc ddd", 8);
        assert_eq!(w, vec!["aaa bbb", "    ccc", "    ddd"]);
    }
}
