//! dockerd's debug log, as logrus writes it in text format:
//! `time="2017-05-03T17:36:40.406182314Z" level=debug msg="ReleaseAddress(...)"`,
//! `key=value` pairs whose value is bare or double-quoted with `\"` and
//! `\\` escapes. A prefix before `time=` (journald's `May 03 ... dockerd[812]: `,
//! upstart's nothing) is ignored.
//!
//! The messages read are libnetwork's own debug lines about addresses:
//! `ReleaseAddress(POOL, ADDRESS)`, `RequestAddress(POOL, ADDRESS|<nil>, OPTIONS)`,
//! `Assigning addresses for endpoint NAME's interface on network NET`,
//! `Releasing addresses for endpoint NAME's interface on network NET`,
//! `Programming external connectivity on endpoint NAME (ID)`, and the
//! daemon's start line `msg="Docker daemon" ... version=17.05.0-ce`. Other
//! dockerd lines are counted and skipped; lines that are not logrus lines
//! at all are counted as foreign.
//!
//! Timestamps are parsed here (RFC 3339 with nanoseconds and a `Z` or
//! `±hh:mm` offset) into nanoseconds since the Unix epoch: a dozen lines of
//! calendar arithmetic, so no date crate is needed and nothing reads the
//! wall clock or the local time zone.

use std::net::Ipv4Addr;

/// What one recognised line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `ReleaseAddress(POOL, ADDRESS)`: the IPAM driver freed an address.
    Release {
        /// The pool id, e.g. `LocalDefault/172.17.0.0/16`.
        pool: String,
        /// The freed address.
        address: Ipv4Addr,
    },
    /// `RequestAddress(POOL, ADDRESS|<nil>, OPTIONS)`: an address asked of the driver.
    Request {
        /// The pool id.
        pool: String,
        /// The preferred address, when one was asked for.
        preferred: Option<Ipv4Addr>,
    },
    /// `Assigning addresses for endpoint NAME's interface on network NET`:
    /// `ep.assignAddress` starts (createEndpoint calls it twice: the IPv4
    /// pass, then the post-IPv6 pass).
    Assigning {
        /// The endpoint (container) name.
        endpoint: String,
        /// The network name.
        network: String,
    },
    /// `Releasing addresses for endpoint NAME's interface on network NET`.
    Releasing {
        /// The endpoint name.
        endpoint: String,
        /// The network name.
        network: String,
    },
    /// `Programming external connectivity on endpoint NAME (ID)`.
    ExternalConnectivity {
        /// The endpoint name.
        endpoint: String,
    },
    /// `msg="Docker daemon" ... version=V`: the daemon's version.
    DaemonVersion {
        /// As logged, e.g. `17.05.0-ce`.
        version: String,
    },
}

/// One recognised line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file.
    pub line: usize,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The `time=` value as written.
    pub time: String,
    /// What it says.
    pub event: Event,
}

/// A parsed log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    /// The recognised lines, in file order.
    pub lines: Vec<Line>,
    /// Logrus lines from dockerd that say nothing about addresses.
    pub other_dockerd: usize,
    /// Lines that are not logrus lines at all (shell prompts, other programs).
    pub foreign: usize,
    /// Logrus lines whose `time=` could not be read (line numbers).
    pub bad_time: Vec<usize>,
}

/// Reads a log's text.
pub fn parse(text: &str) -> Log {
    let mut log = Log::default();
    for (i, raw) in text.lines().enumerate() {
        let Some(start) = raw.find("time=\"") else {
            log.foreign += 1;
            continue;
        };
        let fields = fields(&raw[start..]);
        let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let (Some(time), Some(msg)) = (get("time"), get("msg")) else {
            log.foreign += 1;
            continue;
        };
        let Some(time_ns) = parse_rfc3339(time) else {
            log.bad_time.push(i + 1);
            continue;
        };
        let event = match message(msg) {
            Some(e) => e,
            None if msg == "Docker daemon" => match get("version") {
                Some(v) => Event::DaemonVersion { version: v.clone() },
                None => {
                    log.other_dockerd += 1;
                    continue;
                }
            },
            None => {
                log.other_dockerd += 1;
                continue;
            }
        };
        log.lines.push(Line {
            line: i + 1,
            time_ns,
            time: time.clone(),
            event,
        });
    }
    log
}

/// The `key=value` pairs of a logrus text line.
fn fields(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        if chars.peek() != Some(&'=') {
            // A bare word: not a pair; go on after it.
            if chars.peek().is_none() {
                return out;
            }
            continue;
        }
        chars.next();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(e) => value.push(e),
                        None => break,
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// The address event a message names, if it names one.
fn message(msg: &str) -> Option<Event> {
    if let Some(args) = call(msg, "ReleaseAddress") {
        let (pool, address) = args.split_once(", ")?;
        return Some(Event::Release {
            pool: pool.trim().to_string(),
            address: address.trim().parse().ok()?,
        });
    }
    if let Some(args) = call(msg, "RequestAddress") {
        let mut parts = args.splitn(3, ", ");
        let pool = parts.next()?.trim().to_string();
        let preferred = parts.next().and_then(|a| a.trim().parse().ok());
        return Some(Event::Request { pool, preferred });
    }
    for (prefix, releasing) in [
        ("Assigning addresses for endpoint ", false),
        ("Releasing addresses for endpoint ", true),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let (endpoint, network) = rest.rsplit_once("'s interface on network ")?;
            let (endpoint, network) = (endpoint.to_string(), network.trim().to_string());
            return Some(if releasing {
                Event::Releasing { endpoint, network }
            } else {
                Event::Assigning { endpoint, network }
            });
        }
    }
    if let Some(rest) = msg.strip_prefix("Programming external connectivity on endpoint ") {
        let endpoint = rest.split(" (").next()?.trim().to_string();
        return Some(Event::ExternalConnectivity { endpoint });
    }
    None
}

/// `NAME(ARGS)` → `ARGS`.
fn call<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.strip_prefix(name)?.strip_prefix('(')?.strip_suffix(')')
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian; H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 (`2017-05-03T17:36:40.406182314Z`, `...+02:00`) to nanoseconds
/// since the Unix epoch; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let sign = if &o[..1] == "-" { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2017-05-03T17:36:40.406182314Z"),
            Some(1_493_833_000_406_182_314)
        );
        assert_eq!(
            parse_rfc3339("2017-05-03T19:36:40.5+02:00"),
            parse_rfc3339("2017-05-03T17:36:40.500Z")
        );
        assert_eq!(parse_rfc3339("2017-05-03 17:36:40"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn lines() {
        let log = parse(concat!(
            "root@host:~# grep x docker.log\n",
            "time=\"2017-05-03T17:36:40.406182314Z\" level=debug msg=\"ReleaseAddress(LocalDefault/172.17.0.0/16, 172.17.0.16)\"\n",
            "time=\"2017-05-03T17:36:41Z\" level=debug msg=\"RequestAddress(LocalDefault/172.17.0.0/16, <nil>, map[])\"\n",
            "May 03 dockerd[1]: time=\"2017-05-03T17:36:53.2Z\" level=debug msg=\"Assigning addresses for endpoint a\\\"b's interface on network bridge\"\n",
            "time=\"2017-05-03T17:36:54Z\" level=info msg=\"Docker daemon\" commit=89658be graphdriver=aufs version=17.05.0-ce\n",
            "time=\"2017-05-03T17:36:55Z\" level=info msg=\"Loading containers: done.\"\n",
        ));
        assert_eq!(log.foreign, 1);
        assert_eq!(log.other_dockerd, 1);
        let events: Vec<&Event> = log.lines.iter().map(|l| &l.event).collect();
        assert_eq!(
            events,
            [
                &Event::Release {
                    pool: "LocalDefault/172.17.0.0/16".into(),
                    address: "172.17.0.16".parse().unwrap()
                },
                &Event::Request {
                    pool: "LocalDefault/172.17.0.0/16".into(),
                    preferred: None
                },
                &Event::Assigning {
                    endpoint: "a\"b".into(),
                    network: "bridge".into()
                },
                &Event::DaemonVersion {
                    version: "17.05.0-ce".into()
                },
            ]
        );
        assert_eq!(log.lines[2].line, 4);
    }
}
