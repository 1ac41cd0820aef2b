//! The timeline of one `netrace simulate` run as SVG: one lane per local
//! container MAC showing which br0 port holds it over time (its own veth,
//! vxlan1, another port, or no entry), one lane per flow with its loss per
//! second, and the ARP frames per second crossing the bridges. Written
//! deterministically from a [`RunResult`]; self-contained, no script.

use std::fmt::Write as _;

use super::esc;
use crate::overlay::system::OverlaySystem;
use crate::overlay::system::VXLAN_PORT;
use crate::overlay::timed::{RunResult, TimedSpec};

const W: f64 = 1000.0;
const LEFT: f64 = 190.0;
const LANE: f64 = 26.0;

/// The SVG of one run.
pub fn svg(
    m: &OverlaySystem,
    spec: &TimedSpec,
    scenario: &str,
    variant: &str,
    r: &RunResult,
) -> String {
    let secs = (r.duration_us as f64 / 1e6).max(1.0);
    let x = |us: u64| LEFT + (W - LEFT - 10.0) * (us as f64 / 1e6) / secs;
    let names: Vec<&str> = m.endpoints().iter().map(|e| e.name.as_str()).collect();
    let lanes = r.ports.len() + spec.flows.len() + 3;
    let h = 60.0 + LANE * lanes as f64 + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="18" font-size="13">{} · {} · seed {} · {:.0} s · {} br0 FDB moves · {} episodes</text>"#,
        esc(scenario),
        esc(variant),
        r.seed,
        secs,
        r.fdb_moves,
        r.episodes.len()
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="34" fill="#555">port lanes: green = its own veth, red = vxlan1, orange = another port, grey = no entry; loss lanes: red height = lost share of that second</text>"##
    );
    let mut y = 50.0;
    for ((host, mac), line) in &r.ports {
        let e = m.endpoints().iter().position(|e| e.mac == *mac);
        let own = e.map(|e| m.container_port(e).1);
        let label = format!(
            "{} br0 {}",
            m.host_names()[*host],
            e.map_or(mac.to_string(), |e| names[e].to_string())
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}">{}</text>"#,
            y + 15.0,
            esc(&label)
        );
        // One column per pixel: red when the MAC sat on vxlan1 at any time
        // in it (a flap of microseconds stays visible), else the colour
        // of the port it sat on longest; runs of equal columns are merged.
        let cols = (W - LEFT - 10.0) as usize;
        let col_us = (r.duration_us / cols as u64).max(1);
        let mut colours: Vec<&str> = Vec::with_capacity(cols);
        let mut seg = 0usize;
        for c in 0..cols {
            let (c0, c1) = (c as u64 * col_us, (c as u64 + 1) * col_us);
            let mut best: (u64, Option<u8>) = (0, None);
            let mut on_vx = false;
            while seg + 1 < line.len() && line[seg + 1].0 <= c0 {
                seg += 1;
            }
            let mut k = seg;
            while k < line.len() && line[k].0 < c1 {
                let from = line[k].0.max(c0);
                let to = line.get(k + 1).map_or(c1, |n| n.0.min(c1));
                if line[k].1 == Some(VXLAN_PORT) && to >= from {
                    on_vx = true;
                }
                if to.saturating_sub(from) >= best.0 {
                    best = (to.saturating_sub(from), line[k].1);
                }
                k += 1;
            }
            colours.push(match best.1 {
                _ if on_vx => "#d22",
                None => "#ddd",
                Some(p) if Some(p) == own => "#3a3",
                Some(_) => "#e90",
            });
        }
        let mut c = 0;
        while c < cols {
            let mut e = c;
            while e + 1 < cols && colours[e + 1] == colours[c] {
                e += 1;
            }
            let (x0, x1) = (x(c as u64 * col_us), x((e as u64 + 1) * col_us));
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.2}" y="{:.1}" width="{:.2}" height="18" fill="{}"/>"#,
                y + 2.0,
                x1 - x0,
                colours[c]
            );
            c = e + 1;
        }
        let _ = host;
        y += LANE;
    }
    for (f, flow) in spec.flows.iter().enumerate() {
        let label = format!(
            "loss {} {}→{}",
            flow.kind.name(),
            names[flow.from],
            names[flow.to]
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}">{}</text>"#,
            y + 15.0,
            esc(&label)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{:.1}" width="{:.1}" height="18" fill="#f4f4f4"/>"##,
            y + 2.0,
            W - LEFT - 10.0
        );
        // Runs of seconds with the same lost share are one rectangle.
        let shares: Vec<f64> = r.loss_per_s[f]
            .iter()
            .map(|(n, lost)| {
                if *n == 0 {
                    0.0
                } else {
                    f64::from(*lost) / f64::from(*n)
                }
            })
            .collect();
        let mut sec = 0;
        while sec < shares.len() {
            let mut end = sec;
            while end + 1 < shares.len() && shares[end + 1] == shares[sec] {
                end += 1;
            }
            let share = shares[sec];
            if share > 0.0 {
                let (x0, x1) = (x(sec as u64 * 1_000_000), x((end as u64 + 1) * 1_000_000));
                let _ = writeln!(
                    s,
                    r##"<rect x="{x0:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="#d22"><title>{sec}–{} s: {:.0}% lost</title></rect>"##,
                    y + 20.0 - 18.0 * share,
                    (x1 - x0).max(0.5),
                    18.0 * share,
                    end + 1,
                    100.0 * share
                );
            }
            sec = end + 1;
        }
        y += LANE;
    }
    let peak = r.arp_per_s.iter().copied().max().unwrap_or(0).max(1);
    let _ = writeln!(
        s,
        r#"<text x="10" y="{:.1}">ARP frames/s (peak {peak})</text>"#,
        y + 15.0
    );
    let base = y + 2.0 + 2.0 * LANE;
    let mut pts = String::new();
    for (sec, c) in r.arp_per_s.iter().enumerate() {
        let _ = write!(
            pts,
            "{:.2},{:.2} ",
            x(sec as u64 * 1_000_000),
            base - 2.0 * LANE * f64::from(*c) / f64::from(peak)
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#36c"/>"##,
        pts.trim_end()
    );
    y = base + 18.0;
    let ticks = 10;
    for i in 0..=ticks {
        let us = (r.duration_us as f64 * i as f64 / ticks as f64) as u64;
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{y:.1}" text-anchor="middle" fill="#555">{:.0} s</text>"##,
            x(us),
            us as f64 / 1e6
        );
    }
    s.push_str("</svg>\n");
    s
}
