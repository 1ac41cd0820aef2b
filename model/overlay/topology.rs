//! The topology of an L2 scenario as a graph (petgraph): hosts' devices,
//! ports and containers as nodes, links as edges, exportable as Graphviz
//! DOT (`netrace topology SCENARIO`).
//!
//! petgraph holds the graph (the design card asks for it; it is the
//! well-kept Rust graph crate). The DOT text is written here rather than
//! with `petgraph::dot`, whose label escaping turns our line breaks into
//! literal backslashes. The graph is built from the scenario alone, in a
//! fixed order, so the DOT text is byte-identical across runs.

use petgraph::graph::{DiGraph, NodeIndex};

use super::system::L2Spec;
use crate::wire::EthernetAddress;

/// A node of the topology.
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
            Node::Vtep { host, ip } => write!(f, "{host} underlay\\n{ip}"),
            Node::Bridge { host } => write!(f, "{host} br0"),
            Node::Vxlan { host, vni } => write!(f, "{host} vxlan1\\nvni {vni}"),
            Node::Container { name, ip, mac } => write!(f, "{name}\\n{ip}\\n{mac}"),
        }
    }
}

/// The topology graph: edges are labelled with the port or link name.
pub fn graph(spec: &L2Spec) -> DiGraph<Node, String> {
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
        g.add_edge(vx, br, "port vxlan1".to_string());
        g.add_edge(vx, vtep, "UDP 4789".to_string());
        for c in spec.containers.iter().filter(|c| c.host == h) {
            let n = g.add_node(Node::Container {
                name: c.name.clone(),
                ip: c.ip.to_string(),
                mac: EthernetAddress::docker(c.ip).to_string(),
            });
            g.add_edge(n, br, format!("eth0 = port veth-{}", c.name));
        }
        vteps.push(vtep);
    }
    for (i, a) in vteps.iter().enumerate() {
        for b in vteps.iter().skip(i + 1) {
            g.add_edge(*a, *b, "underlay".to_string());
        }
    }
    g
}

/// The topology as Graphviz DOT: the graph's nodes and labelled edges, in
/// index order.
pub fn dot(spec: &L2Spec) -> String {
    let g = graph(spec);
    let mut out = String::from(
        "digraph {\n    rankdir = LR;\n    node [shape = box, fontname = \"monospace\"];\n",
    );
    for n in g.node_indices() {
        let shape = match g[n] {
            Node::Container { .. } => "ellipse",
            Node::Vtep { .. } => "cylinder",
            _ => "box",
        };
        out.push_str(&format!(
            "    {} [ label = \"{}\", shape = {shape} ];\n",
            n.index(),
            g[n]
        ));
    }
    for e in g.edge_indices() {
        let (a, b) = g.edge_endpoints(e).expect("edge exists");
        out.push_str(&format!(
            "    {} -> {} [ label = \"{}\", dir = none ];\n",
            a.index(),
            b.index(),
            g[e]
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::system::{ContainerSpec, HostSpec};

    #[test]
    fn dot_lists_every_device_and_link() {
        let spec = L2Spec {
            network: "ov".into(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            vni: 256,
            hosts: vec![
                HostSpec {
                    name: "host1".into(),
                    vtep: "192.168.100.1".parse().unwrap(),
                },
                HostSpec {
                    name: "host2".into(),
                    vtep: "192.168.100.2".parse().unwrap(),
                },
            ],
            containers: vec![ContainerSpec {
                name: "A".into(),
                host: 0,
                ip: "10.0.0.2".parse().unwrap(),
                arp_responder: true,
                script: vec![],
            }],
            max_hops: 16,
            ageing_time_s: crate::l2::bridge::AGEING_TIME_S,
        };
        let d = dot(&spec);
        assert!(d.starts_with("digraph {"));
        for needle in [
            "host1 br0",
            "host2 vxlan1",
            "02:42:0a:00:00:02",
            "underlay",
            "port veth-A",
        ] {
            assert!(d.contains(needle), "{needle} missing in\n{d}");
        }
        assert_eq!(d, dot(&spec), "deterministic");
    }
}
