//! iproute2's JSON output, read into the few fields the L2 audit needs:
//! one parser for a live namespace and for saved dumps.
//!
//! The four inputs, and the commands that produce them inside the overlay
//! namespace (`ip netns exec NS CMD`, or `nsenter --net=FILE CMD`):
//!
//! | file | command | read |
//! |---|---|---|
//! | `link.json` | `ip -j -d link show` | every device: name, index, kind, master, MAC, the veth peer's index and namespace id, the bridge's `ageing_time`, vxlan's `id`, `local`, `proxy`, `learning`, `l2miss`, `l3miss`, `ageing`, and each bridge port's `learning` and `neigh_suppress` |
//! | `addr.json` | `ip -j addr show` | the IPv4 addresses of each device (br0's gives the subnet and gateway) |
//! | `neigh.json` | `ip -j neigh show` | neighbour entries: `dst`, `dev`, `lladdr`, `state` |
//! | `fdb.json` | `bridge -j fdb show` | FDB entries: `mac`, `ifname`, `dst`, `master`, `flags`, `state` |
//!
//! Fields iproute2 prints that are not listed are ignored (every version
//! adds some); a listed field with the wrong type, an input that is not a
//! JSON array of objects, or an object without its key field is bad input,
//! reported with the file, the line and column of the offending object,
//! and what to do. iproute2 prints its JSON on one line; `-p` (pretty)
//! output and a trailing newline are read as well.
//!
//! What it does not read: `ip -d link`'s text output (JSON only), IPv6
//! addresses and neighbours (kept out by family), VLANs, and netlink
//! directly (iproute2 is what an operator can run and save on a host
//! netrace cannot reach).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use serde_json::{Map, Value};

use crate::scenario::InputError;
use crate::wire::EthernetAddress;

/// Where an object starts in its input: 1-based line and column
/// (iproute2 prints a table on one line, so the column tells its entries
/// apart). Shown as `LINE:COLUMN`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One device of `ip -j -d link show` (with `ip -j addr show`'s IPv4
/// addresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// `ifindex`.
    pub ifindex: u32,
    /// `ifname` (without `@peer`).
    pub ifname: String,
    /// `linkinfo.info_kind` (`bridge`, `vxlan`, `veth`), if any.
    pub kind: Option<String>,
    /// `master`, the bridge it is a port of.
    pub master: Option<String>,
    /// `address`, when it is a MAC.
    pub mac: Option<EthernetAddress>,
    /// `link_index`: the peer's index (veth), in the peer's namespace.
    pub link_index: Option<u32>,
    /// `link_netnsid`: the peer's namespace, as an id of this namespace.
    pub link_netnsid: Option<i64>,
    /// `flags` holds `UP`.
    pub up: bool,
    /// The bridge port's flags (`info_slave_kind = bridge`).
    pub port: Option<PortFlags>,
    /// A vxlan device's attributes.
    pub vxlan: Option<VxlanInfo>,
    /// A bridge's `ageing_time`, centiseconds (clock_t, as iproute2 prints it).
    pub ageing_time_cs: Option<u64>,
    /// Its IPv4 addresses (from `addr.json`).
    pub ipv4: Vec<Ipv4Net>,
    /// Where the object is in `link.json`.
    pub line: Pos,
}

/// A bridge port's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortFlags {
    /// `learning`.
    pub learning: bool,
    /// `neigh_suppress`.
    pub neigh_suppress: bool,
}

/// A vxlan device's attributes (`linkinfo.info_data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanInfo {
    /// `id`, the VNI.
    pub vni: u32,
    /// `local`, the source address of its packets, if set.
    pub local: Option<Ipv4Addr>,
    /// `proxy`.
    pub proxy: bool,
    /// `learning`.
    pub learning: bool,
    /// `l2miss`.
    pub l2miss: bool,
    /// `l3miss`.
    pub l3miss: bool,
    /// `ageing`, seconds.
    pub ageing_s: Option<u64>,
}

/// One entry of `ip -j neigh show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neigh {
    /// `dst`.
    pub dst: IpAddr,
    /// `dev`.
    pub dev: String,
    /// `lladdr`, if any.
    pub lladdr: Option<EthernetAddress>,
    /// `state` (`PERMANENT`, `REACHABLE`, `STALE`, ...).
    pub state: Vec<String>,
    /// Where the entry is in `neigh.json`.
    pub line: Pos,
}

impl Neigh {
    /// `nud permanent`.
    pub fn permanent(&self) -> bool {
        self.state.iter().any(|s| s == "PERMANENT")
    }

    /// The state as iproute2 prints it.
    pub fn state_words(&self) -> String {
        if self.state.is_empty() {
            "(no state)".into()
        } else {
            self.state.join(",")
        }
    }
}

/// One entry of `bridge -j fdb show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fdb {
    /// `mac`.
    pub mac: EthernetAddress,
    /// `ifname`: the device (or bridge port) the entry is on.
    pub ifname: String,
    /// `dst`: a vxlan entry's remote.
    pub dst: Option<IpAddr>,
    /// `master`: the bridge whose FDB it is in.
    pub master: Option<String>,
    /// `flags` holds `self`: in the device's own table (vxlan's FDB).
    pub self_: bool,
    /// `state`: `permanent`, `static`, or empty (learned, dynamic).
    pub state: String,
    /// Where the entry is in `fdb.json`.
    pub line: Pos,
}

/// The four inputs, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// Devices.
    pub links: Vec<Link>,
    /// Neighbour entries.
    pub neigh: Vec<Neigh>,
    /// FDB entries.
    pub fdb: Vec<Fdb>,
}

/// The text of one input and how to name it in errors.
pub struct Input<'a> {
    /// The file (`dump/link.json`) or the command (`ip -j -d link show in NS`).
    pub name: String,
    /// Its text.
    pub text: &'a str,
    /// What produces it, for hints.
    pub command: &'static str,
}

/// The command of each input, for hints and docs.
pub const LINK_CMD: &str = "ip -j -d link show";
/// See [`LINK_CMD`].
pub const ADDR_CMD: &str = "ip -j addr show";
/// See [`LINK_CMD`].
pub const NEIGH_CMD: &str = "ip -j neigh show";
/// See [`LINK_CMD`].
pub const FDB_CMD: &str = "bridge -j fdb show";

/// The dump files, in the order [`parse`] takes them, with their commands.
pub const DUMP_FILES: [(&str, &str); 4] = [
    ("link.json", LINK_CMD),
    ("addr.json", ADDR_CMD),
    ("neigh.json", NEIGH_CMD),
    ("fdb.json", FDB_CMD),
];

/// 1-based (line, column) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// Byte offsets of the top-level array's elements (the `{` of each object).
fn element_offsets(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                if depth == 1 && c == '{' {
                    out.push(i);
                }
                depth += 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    out
}

/// An object of an input with its line and column.
type Located<'v> = (&'v Map<String, Value>, usize, usize);

/// The objects of one input with their lines.
fn objects<'v>(input: &Input, value: &'v Value) -> Result<Vec<Located<'v>>, InputError> {
    let Value::Array(items) = value else {
        return Err(InputError {
            file: input.name.clone(),
            line: 1,
            column: 1,
            message: "this is JSON, but not an array of objects".into(),
            hint: format!("give the output of `{}` unchanged", input.command),
        });
    };
    let offsets = element_offsets(input.text);
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (line, column) = offsets.get(i).map_or((1, 1), |&o| position(input.text, o));
        let Value::Object(m) = item else {
            return Err(InputError {
                file: input.name.clone(),
                line,
                column,
                message: format!("element {} of the array is not an object", i + 1),
                hint: format!("give the output of `{}` unchanged", input.command),
            });
        };
        out.push((m, line, column));
    }
    Ok(out)
}

fn read_json(input: &Input) -> Result<Value, InputError> {
    if input.text.trim().is_empty() {
        // iproute2 prints nothing at all for an empty table.
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(input.text).map_err(|e| InputError {
        file: input.name.clone(),
        line: e.line().max(1),
        column: e.column().max(1),
        message: format!("not JSON: {e}"),
        hint: format!(
            "save the output of `{}` (with -j, JSON) unchanged",
            input.command
        ),
    })
}

/// Field access with positioned errors.
struct Obj<'a> {
    m: &'a Map<String, Value>,
    input: &'a Input<'a>,
    line: usize,
    column: usize,
}

impl Obj<'_> {
    fn bad(&self, key: &str, wants: &str) -> InputError {
        InputError {
            file: self.input.name.clone(),
            line: self.line,
            column: self.column,
            message: format!("the field {key:?} of this object is not {wants}"),
            hint: format!(
                "give the output of `{}` unchanged; a field of another type means another program or an edited file",
                self.input.command
            ),
        }
    }

    fn missing(&self, key: &str) -> InputError {
        InputError {
            file: self.input.name.clone(),
            line: self.line,
            column: self.column,
            message: format!("this object has no {key:?}"),
            hint: format!(
                "give the output of `{}` unchanged (every object it prints has {key:?})",
                self.input.command
            ),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&str>, InputError> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(key, "a string")),
        }
    }

    fn str(&self, key: &str) -> Result<&str, InputError> {
        self.str_opt(key)?.ok_or_else(|| self.missing(key))
    }

    fn u64_opt(&self, key: &str) -> Result<Option<u64>, InputError> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "a number")),
        }
    }

    fn i64_opt(&self, key: &str) -> Result<Option<i64>, InputError> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.bad(key, "a number")),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, InputError> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(key, "true or false")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, InputError> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.bad(key, "a list of strings")),
            Some(_) => Err(self.bad(key, "a list of strings")),
        }
    }

    fn obj(&self, key: &str) -> Result<Option<Obj<'_>>, InputError> {
        match self.m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj {
                m,
                input: self.input,
                line: self.line,
                column: self.column,
            })),
            Some(_) => Err(self.bad(key, "an object")),
        }
    }

    fn mac(&self, key: &str) -> Result<Option<EthernetAddress>, InputError> {
        // A device's `address` is a MAC for Ethernet devices only (a
        // loopback's is all zeros, a tunnel's may be an IP): not a MAC
        // is no MAC, not an error.
        Ok(self.str_opt(key)?.and_then(|s| s.parse().ok()))
    }
}

/// Parses the four inputs (see the module docs).
pub fn parse(link: &Input, addr: &Input, neigh: &Input, fdb: &Input) -> Result<Tables, InputError> {
    let mut t = Tables::default();
    let lv = read_json(link)?;
    for (m, line, column) in objects(link, &lv)? {
        let o = Obj {
            m,
            input: link,
            line,
            column,
        };
        let ifindex = o.u64_opt("ifindex")?.ok_or_else(|| o.missing("ifindex"))? as u32;
        let ifname = o.str("ifname")?.to_string();
        let mut l = Link {
            ifindex,
            ifname,
            kind: None,
            master: o.str_opt("master")?.map(str::to_string),
            mac: o.mac("address")?,
            link_index: o.u64_opt("link_index")?.map(|v| v as u32),
            link_netnsid: o.i64_opt("link_netnsid")?,
            up: o.strings("flags")?.iter().any(|f| f == "UP"),
            port: None,
            vxlan: None,
            ageing_time_cs: None,
            ipv4: Vec::new(),
            line: Pos { line, column },
        };
        if let Some(info) = o.obj("linkinfo")? {
            l.kind = info.str_opt("info_kind")?.map(str::to_string);
            if let Some(data) = info.obj("info_data")? {
                match l.kind.as_deref() {
                    Some("bridge") => l.ageing_time_cs = data.u64_opt("ageing_time")?,
                    Some("vxlan") => {
                        let local = match data.str_opt("local")? {
                            None => None,
                            Some(s) => match s.parse::<IpAddr>() {
                                Ok(IpAddr::V4(a)) => Some(a),
                                _ => return Err(data.bad("local", "an IPv4 address")),
                            },
                        };
                        l.vxlan = Some(VxlanInfo {
                            vni: data.u64_opt("id")?.ok_or_else(|| data.missing("id"))? as u32,
                            local,
                            proxy: data.bool_or("proxy", false)?,
                            learning: data.bool_or("learning", false)?,
                            l2miss: data.bool_or("l2miss", false)?,
                            l3miss: data.bool_or("l3miss", false)?,
                            ageing_s: data.u64_opt("ageing")?,
                        });
                    }
                    _ => {}
                }
            }
            if info.str_opt("info_slave_kind")? == Some("bridge") {
                if let Some(sd) = info.obj("info_slave_data")? {
                    l.port = Some(PortFlags {
                        learning: sd.bool_or("learning", true)?,
                        neigh_suppress: sd.bool_or("neigh_suppress", false)?,
                    });
                }
            }
        }
        t.links.push(l);
    }
    let av = read_json(addr)?;
    for (m, line, column) in objects(addr, &av)? {
        let o = Obj {
            m,
            input: addr,
            line,
            column,
        };
        let ifname = o.str("ifname")?;
        let Some(Value::Array(infos)) = m.get("addr_info") else {
            continue;
        };
        let mut nets = Vec::new();
        for info in infos {
            let Value::Object(im) = info else {
                return Err(o.bad("addr_info", "a list of objects"));
            };
            let a = Obj {
                m: im,
                input: addr,
                line,
                column,
            };
            if a.str_opt("family")? != Some("inet") {
                continue;
            }
            let local: Ipv4Addr = a
                .str("local")?
                .parse()
                .map_err(|_| a.bad("local", "an IPv4 address"))?;
            let prefix = a.u64_opt("prefixlen")?.unwrap_or(32);
            let net = Ipv4Net::new(local, prefix.min(32) as u8)
                .map_err(|_| a.bad("prefixlen", "a prefix length"))?;
            nets.push(net);
        }
        if let Some(l) = t.links.iter_mut().find(|l| l.ifname == ifname) {
            l.ipv4.extend(nets);
        }
    }
    let nv = read_json(neigh)?;
    for (m, line, column) in objects(neigh, &nv)? {
        let o = Obj {
            m,
            input: neigh,
            line,
            column,
        };
        let dst: IpAddr = o
            .str("dst")?
            .parse()
            .map_err(|_| o.bad("dst", "an IP address"))?;
        t.neigh.push(Neigh {
            dst,
            dev: o.str("dev")?.to_string(),
            lladdr: match o.str_opt("lladdr")? {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| o.bad("lladdr", "a MAC address"))?),
            },
            state: o.strings("state")?,
            line: Pos { line, column },
        });
    }
    let fv = read_json(fdb)?;
    for (m, line, column) in objects(fdb, &fv)? {
        let o = Obj {
            m,
            input: fdb,
            line,
            column,
        };
        let mac: EthernetAddress = o
            .str("mac")?
            .parse()
            .map_err(|_| o.bad("mac", "a MAC address"))?;
        t.fdb.push(Fdb {
            mac,
            ifname: o.str("ifname")?.to_string(),
            dst: match o.str_opt("dst")? {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| o.bad("dst", "an IP address"))?),
            },
            master: o.str_opt("master")?.map(str::to_string),
            self_: o.strings("flags")?.iter().any(|f| f == "self"),
            state: o.str_opt("state")?.unwrap_or("").to_string(),
            line: Pos { line, column },
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(name: &str, text: &'a str) -> Input<'a> {
        Input {
            name: name.into(),
            text,
            command: LINK_CMD,
        }
    }

    const LINK: &str = r#"[{"ifindex":2,"ifname":"vxlan1","flags":["BROADCAST","UP"],"master":"br0","address":"02:00:00:00:01:fe","linkinfo":{"info_kind":"vxlan","info_data":{"id":256,"local":"192.168.100.1","learning":true,"proxy":true,"l2miss":true,"l3miss":true,"ageing":300},"info_slave_kind":"bridge","info_slave_data":{"learning":false,"neigh_suppress":false}}},{"ifindex":3,"ifname":"br0","flags":["UP"],"address":"02:00:00:00:01:01","linkinfo":{"info_kind":"bridge","info_data":{"ageing_time":30000}}}]"#;

    #[test]
    fn reads_the_fields_and_ignores_the_rest() {
        let addr = r#"[{"ifindex":3,"ifname":"br0","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        let neigh = r#"[{"dst":"10.0.0.3","dev":"vxlan1","lladdr":"02:42:0a:00:00:03","state":["PERMANENT"]}]"#;
        let fdb = r#"[{"mac":"02:42:0a:00:00:03","ifname":"vxlan1","dst":"192.168.100.1","flags":["self"],"state":"permanent"}]"#;
        let t = parse(
            &input("link.json", LINK),
            &input("addr.json", addr),
            &input("neigh.json", neigh),
            &input("fdb.json", fdb),
        )
        .unwrap();
        let vx = t.links[0].vxlan.as_ref().unwrap();
        assert_eq!(vx.vni, 256);
        assert!(vx.proxy && vx.l3miss);
        assert!(!t.links[0].port.unwrap().learning);
        assert_eq!(t.links[1].ageing_time_cs, Some(30000));
        assert_eq!(t.links[1].ipv4, vec!["10.0.0.1/24".parse().unwrap()]);
        assert!(t.neigh[0].permanent());
        assert!(t.fdb[0].self_);
    }

    #[test]
    fn a_bad_field_names_its_line() {
        let link =
            "[\n{\"ifindex\":1,\"ifname\":\"lo\"},\n{\"ifindex\":\"two\",\"ifname\":\"br0\"}\n]";
        let e = parse(
            &input("link.json", link),
            &input("a", ""),
            &input("n", ""),
            &input("f", ""),
        )
        .unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("link.json", 3), "{e}");
        assert!(e.message.contains("ifindex"), "{e}");
        let e = parse(
            &input("link.json", "[{\"ifindex\":1,"),
            &input("a", ""),
            &input("n", ""),
            &input("f", ""),
        )
        .unwrap_err();
        assert!(e.message.starts_with("not JSON"), "{e}");
    }
}
