//! In-process strategies: fed closed candles built from live ticks, they answer a signal's
//! action when they want the position changed. Three ship: RSI mean reversion, momentum
//! breakout, EMA crossover. Each is a plain state machine over the candles it has seen.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::signal::Action;

/// One closed candle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// Epoch ms of the interval's start.
    pub start_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

/// Builds candles of `interval_ms` from ticks (time, last price).
#[derive(Debug, Clone)]
pub struct CandleBuilder {
    interval_ms: i64,
    current: Option<Candle>,
}

impl CandleBuilder {
    pub fn new(interval_ms: i64) -> Self {
        Self {
            interval_ms: interval_ms.max(1),
            current: None,
        }
    }

    /// Takes a tick; answers the candle it closed, if it opened a new interval.
    pub fn on_tick(&mut self, at_ms: i64, price: f64) -> Option<Candle> {
        if !price.is_finite() || price <= 0.0 {
            return None;
        }
        let start = at_ms - at_ms.rem_euclid(self.interval_ms);
        match &mut self.current {
            Some(c) if c.start_ms == start => {
                c.high = c.high.max(price);
                c.low = c.low.min(price);
                c.close = price;
                None
            }
            // A late tick of an interval already closed changes nothing.
            Some(c) if start < c.start_ms => None,
            current => current.replace(Candle {
                start_ms: start,
                open: price,
                high: price,
                low: price,
                close: price,
            }),
        }
    }
}

/// A strategy run in our process.
pub trait Strategy: Send {
    /// Takes one closed candle; answers an action when the position should change.
    fn on_candle(&mut self, candle: &Candle) -> Option<Action>;
}

/// Where a built-in strategy thinks it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Side {
    #[default]
    Flat,
    Long,
    Short,
}

/// Moves to `want` and answers the action that gets there (none when already there).
fn go(side: &mut Side, want: Side) -> Option<Action> {
    if *side == want {
        return None;
    }
    *side = want;
    Some(match want {
        Side::Long => Action::EnterLong,
        Side::Short => Action::EnterShort,
        Side::Flat => Action::Exit,
    })
}

/// RSI mean reversion: long when Wilder's RSI(period) falls below `oversold`, short above
/// `overbought`, flat again when it crosses 50.
#[derive(Debug, Clone)]
pub struct RsiMeanReversion {
    period: usize,
    oversold: f64,
    overbought: f64,
    prev_close: Option<f64>,
    seen: usize,
    avg_gain: f64,
    avg_loss: f64,
    side: Side,
}

impl RsiMeanReversion {
    pub fn new(period: usize, oversold: f64, overbought: f64) -> Self {
        Self {
            period: period.max(2),
            oversold,
            overbought,
            prev_close: None,
            seen: 0,
            avg_gain: 0.0,
            avg_loss: 0.0,
            side: Side::Flat,
        }
    }

    /// RSI once `period` changes have been seen.
    fn rsi(&self) -> Option<f64> {
        if self.seen < self.period {
            return None;
        }
        if self.avg_loss == 0.0 {
            return Some(100.0);
        }
        Some(100.0 - 100.0 / (1.0 + self.avg_gain / self.avg_loss))
    }
}

impl Strategy for RsiMeanReversion {
    fn on_candle(&mut self, c: &Candle) -> Option<Action> {
        let prev = self.prev_close.replace(c.close)?;
        let change = c.close - prev;
        let (gain, loss) = (change.max(0.0), (-change).max(0.0));
        let n = self.period as f64;
        self.seen += 1;
        if self.seen <= self.period {
            // The first averages are plain means.
            self.avg_gain += gain / n;
            self.avg_loss += loss / n;
        } else {
            self.avg_gain = (self.avg_gain * (n - 1.0) + gain) / n;
            self.avg_loss = (self.avg_loss * (n - 1.0) + loss) / n;
        }
        let rsi = self.rsi()?;
        let want = match self.side {
            _ if rsi < self.oversold => Side::Long,
            _ if rsi > self.overbought => Side::Short,
            Side::Long if rsi >= 50.0 => Side::Flat,
            Side::Short if rsi <= 50.0 => Side::Flat,
            s => s,
        };
        go(&mut self.side, want)
    }
}

/// Momentum breakout: long when a close clears the highest high of the last `lookback`
/// candles, short when it falls through the lowest low.
#[derive(Debug, Clone)]
pub struct MomentumBreakout {
    lookback: usize,
    window: VecDeque<Candle>,
    side: Side,
}

impl MomentumBreakout {
    pub fn new(lookback: usize) -> Self {
        Self {
            lookback: lookback.max(1),
            window: VecDeque::new(),
            side: Side::Flat,
        }
    }
}

impl Strategy for MomentumBreakout {
    fn on_candle(&mut self, c: &Candle) -> Option<Action> {
        let action = if self.window.len() == self.lookback {
            let high = self.window.iter().map(|w| w.high).fold(f64::MIN, f64::max);
            let low = self.window.iter().map(|w| w.low).fold(f64::MAX, f64::min);
            if c.close > high {
                go(&mut self.side, Side::Long)
            } else if c.close < low {
                go(&mut self.side, Side::Short)
            } else {
                None
            }
        } else {
            None
        };
        self.window.push_back(*c);
        if self.window.len() > self.lookback {
            self.window.pop_front();
        }
        action
    }
}

/// EMA crossover: long when the fast EMA crosses above the slow one, short when below.
#[derive(Debug, Clone)]
pub struct EmaCrossover {
    fast: Ema,
    slow: Ema,
    above: Option<bool>,
    side: Side,
}

#[derive(Debug, Clone)]
struct Ema {
    alpha: f64,
    value: Option<f64>,
    seen: usize,
    period: usize,
}

impl Ema {
    fn new(period: usize) -> Self {
        let period = period.max(1);
        Self {
            alpha: 2.0 / (period as f64 + 1.0),
            value: None,
            seen: 0,
            period,
        }
    }

    /// The EMA after `x`, once `period` values have been seen.
    fn push(&mut self, x: f64) -> Option<f64> {
        self.seen += 1;
        let v = match self.value {
            None => x,
            Some(v) => v + self.alpha * (x - v),
        };
        self.value = Some(v);
        (self.seen >= self.period).then_some(v)
    }
}

impl EmaCrossover {
    pub fn new(fast: usize, slow: usize) -> Self {
        Self {
            fast: Ema::new(fast),
            slow: Ema::new(slow.max(fast + 1)),
            above: None,
            side: Side::Flat,
        }
    }
}

impl Strategy for EmaCrossover {
    fn on_candle(&mut self, c: &Candle) -> Option<Action> {
        let (f, s) = (self.fast.push(c.close), self.slow.push(c.close));
        let (Some(f), Some(s)) = (f, s) else { return None };
        let above = f > s;
        let crossed = self.above.is_some_and(|was| was != above);
        self.above = Some(above);
        if !crossed {
            return None;
        }
        go(&mut self.side, if above { Side::Long } else { Side::Short })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candles(closes: &[f64]) -> Vec<Candle> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Candle {
                start_ms: i as i64 * 60_000,
                open: c,
                high: c + 0.5,
                low: c - 0.5,
                close: c,
            })
            .collect()
    }

    fn run(s: &mut dyn Strategy, closes: &[f64]) -> Vec<(usize, Action)> {
        candles(closes)
            .iter()
            .enumerate()
            .filter_map(|(i, c)| s.on_candle(c).map(|a| (i, a)))
            .collect()
    }

    #[test]
    fn candles_are_built_from_ticks_per_interval() {
        let mut b = CandleBuilder::new(60_000);
        assert_eq!(b.on_tick(1_000, 100.0), None);
        assert_eq!(b.on_tick(30_000, 103.0), None);
        assert_eq!(b.on_tick(59_999, 99.0), None);
        assert_eq!(b.on_tick(10, f64::NAN), None, "garbage ignored");
        let closed = b.on_tick(60_000, 101.0).expect("closed");
        assert_eq!(
            (closed.start_ms, closed.open, closed.high, closed.low, closed.close),
            (0, 100.0, 103.0, 99.0, 99.0)
        );
        assert_eq!(b.on_tick(5_000, 500.0), None, "a late tick changes nothing");
    }

    #[test]
    fn ema_crossover_follows_the_trend_changes() {
        let mut closes: Vec<f64> = (0..30).map(|i| 100.0 - f64::from(i) * 0.5).collect();
        closes.extend((0..30).map(|i| 85.0 + f64::from(i)));
        closes.extend((0..30).map(|i| 115.0 - f64::from(i)));
        let got = run(&mut EmaCrossover::new(5, 15), &closes);
        let actions: Vec<Action> = got.iter().map(|(_, a)| *a).collect();
        assert_eq!(actions, [Action::EnterLong, Action::EnterShort], "{got:?}");
        assert!(got[0].0 > 30 && got[0].0 < 45, "long soon after the turn up: {got:?}");
        assert!(got[1].0 > 60, "short after the turn down: {got:?}");
    }

    #[test]
    fn breakout_goes_with_new_highs_and_lows() {
        let mut closes = vec![100.0; 10];
        closes.extend([100.2, 103.0, 104.0, 100.0, 96.0]);
        let got = run(&mut MomentumBreakout::new(5), &closes);
        assert_eq!(got, [(11, Action::EnterLong), (14, Action::EnterShort)], "{got:?}");
    }

    #[test]
    fn rsi_buys_oversold_and_goes_flat_at_fifty() {
        let mut closes = vec![100.0, 101.0, 100.0, 101.0, 100.0, 101.0];
        closes.extend((1..=8).map(|i| 101.0 - 2.0 * f64::from(i)));
        closes.extend((1..=8).map(|i| 85.0 + 2.0 * f64::from(i)));
        let got = run(&mut RsiMeanReversion::new(5, 30.0, 70.0), &closes);
        assert_eq!(got.first().map(|g| g.1), Some(Action::EnterLong), "{got:?}");
        assert!(got.iter().any(|g| g.1 == Action::Exit), "{got:?}");
        assert!(got.windows(2).all(|w| w[0].1 != w[1].1), "no repeated action: {got:?}");
    }
}
