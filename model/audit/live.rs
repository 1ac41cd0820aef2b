//! The I/O edge of the L2 audit: the four iproute2 outputs of a live
//! namespace (`ip -n NS ...`, which is `ip netns exec NS ip ...`; `bridge
//! -n NS ...` likewise), or of a dump directory, and the veth peers of
//! the bridge's ports found in the other named namespaces.
//!
//! A port's peer is found by its indices: a veth port's `link_index` is
//! its peer's `ifindex` in the peer's namespace, and the peer's
//! `link_index` is the port's `ifindex`. Every namespace `ip netns list`
//! names is looked at (one that vanishes meanwhile is skipped); a peer
//! must match both ways. Docker keeps its containers' namespaces in
//! `/var/run/docker/netns`, which `ip netns` does not list: there the
//! peers are not found, and the MAC and address come from the tables
//! ([`super::overlay`] says which for each container).

use std::collections::BTreeMap;
use std::path::Path;

use super::iproute::{self, Input, Tables, DUMP_FILES};
use super::overlay::Peer;
use crate::kernel::netns::run;
use crate::kernel::KernelError;
use crate::scenario::InputError;

/// The four outputs, in [`DUMP_FILES`] order, with their names.
pub struct Texts {
    /// (name for errors and comments, text, command).
    pub parts: Vec<(String, String, &'static str)>,
}

impl Texts {
    /// Parses them.
    pub fn parse(&self) -> Result<Tables, InputError> {
        let inputs: Vec<Input> = self
            .parts
            .iter()
            .map(|(name, text, command)| Input {
                name: name.clone(),
                text,
                command,
            })
            .collect();
        iproute::parse(&inputs[0], &inputs[1], &inputs[2], &inputs[3])
    }

    /// The names, in order.
    pub fn names(&self) -> [String; 4] {
        std::array::from_fn(|i| self.parts[i].0.clone())
    }
}

fn split(cmd: &str) -> (&str, Vec<&str>) {
    let mut words = cmd.split_whitespace();
    let program = words.next().expect("a command");
    (program, words.collect())
}

/// Runs the four commands in namespace `ns`.
pub fn read_netns(ns: &str) -> Result<Texts, KernelError> {
    let mut parts = Vec::new();
    for (_, cmd) in DUMP_FILES {
        let (program, args) = split(cmd);
        let mut full = vec!["-n", ns];
        full.extend(args);
        let text = run(program, &full)?;
        parts.push((
            format!("{program} -n {ns} {}", &cmd[program.len() + 1..]),
            text,
            cmd,
        ));
    }
    Ok(Texts { parts })
}

/// Reads the four files of a dump directory.
pub fn read_dump(dir: &Path) -> Result<Texts, InputError> {
    let mut parts = Vec::new();
    if !dir.is_dir() {
        return Err(InputError::whole(
            dir.display().to_string(),
            "not a directory",
            "give the directory holding link.json, addr.json, neigh.json and fdb.json (docs/audit.md says how to save them)",
        ));
    }
    for (file, cmd) in DUMP_FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            InputError::whole(
                path.display().to_string(),
                format!("cannot read it: {e}"),
                format!("save it in the overlay namespace: ip netns exec NS {cmd} > {file}"),
            )
        })?;
        parts.push((path.display().to_string(), text, cmd));
    }
    Ok(Texts { parts })
}

/// The veth peers of `tables`' bridge ports, found in the other named
/// namespaces (port name → peer). Namespaces that cannot be read are
/// skipped.
pub fn find_peers(ns: &str, tables: &Tables) -> BTreeMap<String, Peer> {
    let mut out = BTreeMap::new();
    let wanted: Vec<&iproute::Link> = tables
        .links
        .iter()
        .filter(|l| l.master.is_some() && l.kind.as_deref() == Some("veth"))
        .filter(|l| l.link_index.is_some() && l.link_netnsid.is_some())
        .collect();
    if wanted.is_empty() {
        return out;
    }
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return out;
    };
    let mut names: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .filter(|n| n != ns)
        .collect();
    names.sort();
    for other in names {
        if out.len() == wanted.len() {
            break;
        }
        let Ok(link) = run("ip", &["-n", &other, "-j", "-d", "link", "show"]) else {
            continue;
        };
        let Ok(addr) = run("ip", &["-n", &other, "-j", "addr", "show"]) else {
            continue;
        };
        let inputs = [
            Input {
                name: format!("ip -n {other} -j -d link show"),
                text: &link,
                command: iproute::LINK_CMD,
            },
            Input {
                name: format!("ip -n {other} -j addr show"),
                text: &addr,
                command: iproute::ADDR_CMD,
            },
            Input {
                name: String::new(),
                text: "",
                command: iproute::NEIGH_CMD,
            },
            Input {
                name: String::new(),
                text: "",
                command: iproute::FDB_CMD,
            },
        ];
        let Ok(t) = iproute::parse(&inputs[0], &inputs[1], &inputs[2], &inputs[3]) else {
            continue;
        };
        for port in &wanted {
            if out.contains_key(&port.ifname) {
                continue;
            }
            if let Some(p) = t.links.iter().find(|l| {
                Some(l.ifindex) == port.link_index
                    && l.link_index == Some(port.ifindex)
                    && l.link_netnsid.is_some()
            }) {
                out.insert(
                    port.ifname.clone(),
                    Peer {
                        ns: other.clone(),
                        ifname: p.ifname.clone(),
                        mac: p.mac,
                        ipv4: p.ipv4.clone(),
                    },
                );
            }
        }
    }
    out
}
