//! One definition of a candle for every view of the market: history and intraday candles of
//! any interval, the OHLC APIs, the full quote's day OHLC and the feed's `marketOHLC`.
//!
//! The traded price is read on a fixed grid — every [`GRID_SECS`] seconds, epoch-aligned (every
//! session opens on it) — and at the instant a candle closes. A candle `[start, end)` opens at
//! the price at `start`, closes at the price at `end` (or now, while it is live), and its high
//! and low span every grid point in `[start, end)` and its close. So the candles of a longer
//! interval span exactly the candles they are made of (a 5-minute high is the highest of its
//! five 1-minute highs), and the day's high and low are the same in every view.
//!
//! Whole minutes are folded from a shared cache of each minute's extremes; candles that move
//! with the clock ([`RunningCandle`]) fold only the grid points added since they were last read.

use chrono::{DateTime, Duration, Utc};

use super::Market;

/// Seconds between two reads of the traded price.
pub const GRID_SECS: i64 = 5;

/// The minute cache is dropped when it holds this many minutes (~64 MB).
const MINUTE_CACHE_CAP: usize = 2_000_000;

/// A finished (or live) candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ohlcv {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: u64,
}

/// A candle folded over the grid points before `upto`; [`Market::advance`] moves it on,
/// [`Market::candle_at`] reads it closed at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningCandle {
    pub idx: u32,
    pub start: DateTime<Utc>,
    pub open: f64,
    high: f64,
    low: f64,
    upto: DateTime<Utc>,
}

fn next_grid(t: DateTime<Utc>) -> DateTime<Utc> {
    let s = t.timestamp();
    let up = s + (GRID_SECS - s.rem_euclid(GRID_SECS)) % GRID_SECS;
    let on = DateTime::from_timestamp(up, 0).unwrap_or(t);
    if on < t { on + Duration::seconds(GRID_SECS) } else { on }
}

impl Market {
    /// The (high, low) over the grid points of the minute starting at `m` (cached).
    fn minute_extremes(&self, idx: u32, m: DateTime<Utc>) -> (f64, f64) {
        let key = (idx, m.timestamp());
        if let Some(v) = self.minutes.lock().get(&key) {
            return *v;
        }
        let (mut high, mut low) = (f64::MIN, f64::MAX);
        let mut g = m;
        while g < m + Duration::minutes(1) {
            let p = self.price_at(idx, g);
            high = high.max(p);
            low = low.min(p);
            g += Duration::seconds(GRID_SECS);
        }
        let mut cache = self.minutes.lock();
        if cache.len() >= MINUTE_CACHE_CAP {
            cache.clear();
        }
        cache.insert(key, (high, low));
        (high, low)
    }

    /// A candle of `idx` opening at `start`, with nothing folded yet.
    pub fn running_candle(&self, idx: u32, start: DateTime<Utc>) -> RunningCandle {
        let open = self.price_at(idx, start);
        RunningCandle {
            idx,
            start,
            open,
            high: open,
            low: open,
            upto: next_grid(start),
        }
    }

    /// Folds the grid points of `c` before `t` into it (whole minutes from the cache).
    pub fn advance(&self, c: &mut RunningCandle, t: DateTime<Utc>) {
        let mut g = c.upto;
        while g < t {
            let minute = Duration::minutes(1);
            if g.timestamp().rem_euclid(60) == 0 && g + minute <= t {
                let (h, l) = self.minute_extremes(c.idx, g);
                c.high = c.high.max(h);
                c.low = c.low.min(l);
                g += minute;
            } else {
                let p = self.price_at(c.idx, g);
                c.high = c.high.max(p);
                c.low = c.low.min(p);
                g += Duration::seconds(GRID_SECS);
            }
        }
        c.upto = c.upto.max(g);
    }

    /// `c` closed at `t` (its grid points before `t` must be folded: see [`Market::advance`]).
    pub fn candle_at(&self, c: &RunningCandle, t: DateTime<Utc>) -> Ohlcv {
        let close = self.price_at(c.idx, t);
        Ohlcv {
            open: c.open,
            high: c.high.max(close),
            low: c.low.min(close),
            close,
            volume: self.volume_at(c.idx, t).saturating_sub(self.volume_at(c.idx, c.start)),
        }
    }

    /// The candle `[start, start + len)` of `idx`, cut at `until` while it is live; `None`
    /// when it has not begun by `until`.
    pub fn candle(&self, idx: u32, start: DateTime<Utc>, len: Duration, until: DateTime<Utc>) -> Option<Ohlcv> {
        let end = (start + len).min(until);
        if end <= start {
            return None;
        }
        let mut c = self.running_candle(idx, start);
        self.advance(&mut c, end);
        Some(self.candle_at(&c, end))
    }

    /// The day's candle of `idx` up to market instant `t` (from the session's open), kept per
    /// instrument so each read folds only what is new.
    pub fn day_candle(&self, idx: u32, t: DateTime<Utc>) -> Ohlcv {
        let seg = self.get(idx).segment;
        let (open, _) = self.calendar.session(seg, self.calendar.session_day(seg, t));
        let mut c = match self.days.lock().get(&idx) {
            // Reused unless another day began or the clock was set back.
            Some(c) if c.start == open && c.upto <= next_grid(t) => *c,
            _ => self.running_candle(idx, open),
        };
        if t <= open {
            return self.candle_at(&c, open);
        }
        self.advance(&mut c, t);
        self.days.lock().insert(idx, c);
        self.candle_at(&c, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MarketConfig;
    use upstox_types::Segment;

    fn market() -> (Market, DateTime<Utc>, u32) {
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:07:43+05:30")
            .expect("time")
            .with_timezone(&Utc);
        let m = Market::new(MarketConfig::default(), 42, now).expect("market");
        let idx = m
            .instruments()
            .iter()
            .position(|i| i.segment == Segment::NseEq)
            .expect("an equity") as u32;
        (m, now, idx)
    }

    #[test]
    fn longer_candles_span_exactly_the_minutes_they_are_made_of() {
        let (m, now, idx) = market();
        let (open, _) = m
            .calendar
            .session(Segment::NseEq, m.calendar.session_day(Segment::NseEq, now));
        for len in [5, 30] {
            let mut start = open;
            while start < now {
                let big = m.candle(idx, start, Duration::minutes(len), now).expect("a candle");
                let mut minutes = Vec::new();
                let mut s = start;
                while s < (start + Duration::minutes(len)).min(now) {
                    minutes.extend(m.candle(idx, s, Duration::minutes(1), now));
                    s += Duration::minutes(1);
                }
                let high = minutes.iter().map(|c| c.high).fold(f64::MIN, f64::max);
                let low = minutes.iter().map(|c| c.low).fold(f64::MAX, f64::min);
                assert_eq!((big.high, big.low), (high, low), "{len}-minute candle at {start}");
                assert_eq!(big.open, minutes[0].open);
                assert_eq!(big.close, minutes[minutes.len() - 1].close);
                assert_eq!(big.volume, minutes.iter().map(|c| c.volume).sum::<u64>());
                start += Duration::minutes(len);
            }
        }
    }

    #[test]
    fn the_day_candle_read_bit_by_bit_equals_one_read_and_the_clock_may_go_back() {
        let (m, now, idx) = market();
        let (open, _) = m
            .calendar
            .session(Segment::NseEq, m.calendar.session_day(Segment::NseEq, now));
        let mut t = open + Duration::seconds(7);
        while t < now {
            let whole = m.candle(idx, open, now - open, t).expect("live");
            assert_eq!(m.day_candle(idx, t), whole, "at {t}");
            t += Duration::seconds(373);
        }
        let back = open + Duration::minutes(3);
        assert_eq!(
            m.day_candle(idx, back),
            m.candle(idx, open, Duration::days(1), back).expect("live")
        );
    }
}
