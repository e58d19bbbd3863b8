//! Each strategy's P&L over time as an inline SVG line chart (no script, no library): the
//! curves from [`stoxide_portal::pnl_over_time`] laid out in pixels. Money stays in decimals;
//! only the pixel positions are floating point.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The drawing's size in SVG units.
pub(crate) const WIDTH: f64 = 640.0;
pub(crate) const HEIGHT: f64 = 200.0;
const PAD: f64 = 8.0;
const COLOURS: [&str; 6] = ["#1f6feb", "#d4662a", "#2da44e", "#8250df", "#bf3989", "#6e7781"];

/// One strategy's line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) strategy: String,
    pub(crate) colour: &'static str,
    /// SVG polyline points ("x,y x,y …"), steps: P&L holds until the next fill.
    pub(crate) points: String,
    /// The latest P&L, in rupees.
    pub(crate) last: Decimal,
}

/// A chart: its lines and the rupees at the top, at the bottom and where zero is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chart {
    pub(crate) lines: Vec<Line>,
    pub(crate) top: Decimal,
    pub(crate) bottom: Decimal,
    /// The y of ₹0.
    pub(crate) zero_y: String,
}

/// Lays `curves` out up to `now` (epoch ms); `None` when there is nothing to draw.
pub(crate) fn layout(curves: &BTreeMap<String, Vec<(i64, Decimal)>>, now: i64) -> Option<Chart> {
    let all = || curves.values().flatten();
    let start = all().map(|p| p.0).min()?;
    let end = now.max(all().map(|p| p.0).max()?);
    let top = all().map(|p| p.1).fold(Decimal::ZERO, Decimal::max);
    let bottom = all().map(|p| p.1).fold(Decimal::ZERO, Decimal::min);
    let span_t = (end - start).max(1) as f64;
    let span_v = (top - bottom).to_f64().filter(|s| *s > 0.0).unwrap_or(1.0);
    let x = |t: i64| PAD + (t - start) as f64 / span_t * (WIDTH - 2.0 * PAD);
    let y = |v: Decimal| {
        let above_bottom = (v - bottom).to_f64().unwrap_or(0.0);
        HEIGHT - PAD - above_bottom / span_v * (HEIGHT - 2.0 * PAD)
    };
    let lines = curves
        .iter()
        .enumerate()
        .filter(|(_, (_, pts))| !pts.is_empty())
        .map(|(i, (strategy, pts))| {
            let mut xy = vec![(x(start), y(Decimal::ZERO))];
            let mut level = Decimal::ZERO;
            for (t, v) in pts {
                xy.push((x(*t), y(level)));
                xy.push((x(*t), y(*v)));
                level = *v;
            }
            xy.push((x(end), y(level)));
            Line {
                strategy: strategy.clone(),
                colour: COLOURS[i % COLOURS.len()],
                points: xy
                    .iter()
                    .map(|(a, b)| format!("{a:.1},{b:.1}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                last: level,
            }
        })
        .collect();
    Some(Chart {
        lines,
        top: top.round_dp(2),
        bottom: bottom.round_dp(2),
        zero_y: format!("{:.1}", y(Decimal::ZERO)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_from_zero_to_each_fill_and_on_to_now() {
        let d = |s: &str| s.parse::<Decimal>().expect("d");
        let curves: BTreeMap<String, Vec<(i64, Decimal)>> = [
            ("ema".to_owned(), vec![(0, d("-50"))]),
            ("momo".to_owned(), vec![(0, Decimal::ZERO), (50, d("150"))]),
        ]
        .into();
        let c = layout(&curves, 100).expect("chart");
        assert_eq!((c.top, c.bottom), (d("150"), d("-50")));
        // ₹0 is a quarter of the way up the 184-unit plot: 200 − 8 − 46.
        assert_eq!(c.zero_y, "146.0");
        let momo = &c.lines[1];
        assert_eq!(momo.strategy, "momo");
        assert_eq!(momo.last, d("150"));
        assert_eq!(
            momo.points, "8.0,146.0 8.0,146.0 8.0,146.0 320.0,146.0 320.0,8.0 632.0,8.0",
            "flat at zero, up at the second fill, held to now"
        );
        assert_ne!(c.lines[0].colour, momo.colour);
        assert!(layout(&BTreeMap::new(), 100).is_none(), "nothing to draw");
    }
}
