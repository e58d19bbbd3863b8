//! A price's change against the previous close: computed here once for every table, page and
//! stream that shows it.

/// The change of a last price against the previous close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceChange {
    /// `last - previous_close`.
    pub change: f64,
    /// The change in percent of the previous close (0 without a previous close).
    pub percent: f64,
}

impl PriceChange {
    /// The change of `last` against `previous_close`.
    pub fn of(last: f64, previous_close: f64) -> Self {
        let change = last - previous_close;
        let percent = if previous_close != 0.0 && previous_close.is_finite() {
            change / previous_close * 100.0
        } else {
            0.0
        };
        Self { change, percent }
    }

    /// From a reported net change and the last price (the previous close is `last - change`).
    pub fn from_net_change(last: f64, net_change: f64) -> Self {
        Self::of(last, last - net_change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_and_percent() {
        let c = PriceChange::of(110.0, 100.0);
        assert!((c.change - 10.0).abs() < 1e-9 && (c.percent - 10.0).abs() < 1e-9);
        assert_eq!(PriceChange::of(5.0, 0.0).percent, 0.0);
        let n = PriceChange::from_net_change(110.0, 10.0);
        assert!((n.percent - 10.0).abs() < 1e-9);
    }
}
