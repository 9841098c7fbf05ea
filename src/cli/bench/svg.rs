//! The SVG plot of `zkelect bench`: election time (launch and leader kill) against N, both on log
//! scales, one line per implementation and measurement.

use super::{Impl, Results};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
/// The time axis, in ms.
const Y_MIN: f64 = 1.0;
const Y_MAX: f64 = 10_000.0;

/// Which election time a line shows.
#[derive(Clone, Copy)]
enum Measured {
    Launch,
    LeaderKill,
}

/// The lines: implementation, measurement, colour, dash pattern (empty: solid).
const SERIES: [(Impl, Measured, &str, &str); 4] = [
    (Impl::Zkelect, Measured::Launch, "#1f77b4", ""),
    (Impl::Zkelect, Measured::LeaderKill, "#1f77b4", "6,4"),
    (Impl::ZooKeeper, Measured::Launch, "#d62728", ""),
    (Impl::ZooKeeper, Measured::LeaderKill, "#d62728", "6,4"),
];

/// Maps sizes and times to the drawing's coordinates.
struct Scales {
    n_min: f64,
    n_max: f64,
}

impl Scales {
    fn x(&self, n: f64) -> f64 {
        LEFT + (n.ln() - self.n_min.ln()) / (self.n_max.ln() - self.n_min.ln()).max(1e-9) * (W - LEFT - RIGHT)
    }

    fn y(&self, ms: f64) -> f64 {
        TOP + (1.0 - (ms.max(Y_MIN).ln() - Y_MIN.ln()) / (Y_MAX.ln() - Y_MIN.ln())) * (H - TOP - BOTTOM)
    }
}

pub(super) fn svg(results: &BTreeMap<(usize, Impl), Results>, tls: bool) -> String {
    let sizes: Vec<usize> = results.keys().map(|k| k.0).collect::<BTreeSet<_>>().into_iter().collect();
    let scales = Scales { n_min: *sizes.first().unwrap_or(&3) as f64, n_max: *sizes.last().unwrap_or(&51) as f64 };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\">Election time vs ensemble size (median, log scales){}</text>\n",
        if tls { ", quorum TLS" } else { "" }
    );
    grid(&mut s, &scales, &sizes);
    for (i, (kind, what, color, dash)) in SERIES.iter().enumerate() {
        let pts: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|n| {
                let r = results.get(&(*n, *kind))?;
                let m = match what {
                    Measured::Launch => r.launch.median()?,
                    Measured::LeaderKill => r.kill.median()?,
                };
                Some((scales.x(*n as f64), scales.y(m)))
            })
            .collect();
        if !pts.is_empty() {
            let label = match what {
                Measured::Launch => "launch",
                Measured::LeaderKill => "leader kill",
            };
            line(&mut s, i, &pts, color, dash, &format!("{} {label}", kind.name()));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Horizontal lines at each power of ten (ms), vertical ones at each size.
fn grid(s: &mut String, scales: &Scales, sizes: &[usize]) {
    for ms in [1.0, 10.0, 100.0, 1000.0, 10_000.0] {
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{ms} ms</text>",
            W - RIGHT,
            LEFT - 6.0,
            scales.y(ms) + 4.0,
            y0 = scales.y(ms)
        );
    }
    for n in sizes {
        let _ = writeln!(
            s,
            "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x0:.1}\" y=\"{}\" text-anchor=\"middle\">N={n}</text>",
            H - BOTTOM,
            H - BOTTOM + 18.0,
            x0 = scales.x(*n as f64)
        );
    }
}

/// The `i`-th line through `pts`, with its marks and its legend entry.
fn line(s: &mut String, i: usize, pts: &[(f64, f64)], color: &str, dash: &str, label: &str) {
    let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
    // An empty stroke-dasharray is not valid SVG: solid lines leave the attribute out.
    let dash = if dash.is_empty() { String::new() } else { format!(" stroke-dasharray=\"{dash}\"") };
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
        path.join(" ")
    );
    for (a, b) in pts {
        let _ = writeln!(s, "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3\" fill=\"{color}\"/>");
    }
    let ly = TOP + 20.0 + i as f64 * 20.0;
    let lx = W - RIGHT + 15.0;
    let _ = writeln!(
        s,
        "<line x1=\"{lx}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{label}</text>",
        lx + 25.0,
        lx + 30.0,
        ly + 4.0,
    );
}
