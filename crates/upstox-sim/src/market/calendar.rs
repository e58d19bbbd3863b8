//! Trading sessions, holidays and expiry calendars, all from `MarketConfig` data.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use upstox_types::{IST, Segment};

use crate::config::MarketConfig;
use crate::error::SimError;

/// Market status of a segment, as the feed's `MarketStatus` enum and `/v2/market/status` spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketStatus {
    PreOpenStart,
    PreOpenEnd,
    NormalOpen,
    NormalClose,
    ClosingStart,
    ClosingEnd,
}

impl MarketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MarketStatus::PreOpenStart => "PRE_OPEN_START",
            MarketStatus::PreOpenEnd => "PRE_OPEN_END",
            MarketStatus::NormalOpen => "NORMAL_OPEN",
            MarketStatus::NormalClose => "NORMAL_CLOSE",
            MarketStatus::ClosingStart => "CLOSING_START",
            MarketStatus::ClosingEnd => "CLOSING_END",
        }
    }
}

/// Sessions and holidays.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Every holiday with its name (the configured one, or a plain "Exchange holiday").
    named: BTreeMap<NaiveDate, String>,
    pre_open: NaiveTime,
    pre_open_end: NaiveTime,
    equity_open: NaiveTime,
    equity_close: NaiveTime,
    closing_start: NaiveTime,
    closing_end: NaiveTime,
    mcx_open: NaiveTime,
    mcx_close: NaiveTime,
}

fn hm(s: &str, what: &str) -> Result<NaiveTime, SimError> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| SimError::Config(format!("market.sessions.{what} must be HH:MM, not {s:?}")))
}

pub(crate) fn ist_instant(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    // A fixed offset has exactly one instant for every local time.
    IST.from_local_datetime(&date.and_time(time))
        .single()
        .map_or_else(|| date.and_time(time).and_utc(), |t| t.with_timezone(&Utc))
}

impl Calendar {
    /// # Errors
    /// When a session time or holiday is malformed.
    pub fn new(config: &MarketConfig) -> Result<Self, SimError> {
        let s = &config.sessions;
        let named: BTreeMap<NaiveDate, String> = config
            .holidays
            .iter()
            .map(|h| {
                let d = h.date();
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map(|date| (date, h.description().unwrap_or("Exchange holiday").to_owned()))
                    .map_err(|_| SimError::Config(format!("market.holidays: {d:?} is not YYYY-MM-DD")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            named,
            pre_open: hm(&s.equity_pre_open, "equity_pre_open")?,
            pre_open_end: hm(&s.equity_pre_open_end, "equity_pre_open_end")?,
            equity_open: hm(&s.equity_open, "equity_open")?,
            equity_close: hm(&s.equity_close, "equity_close")?,
            closing_start: hm(&s.closing_start, "closing_start")?,
            closing_end: hm(&s.closing_end, "closing_end")?,
            mcx_open: hm(&s.mcx_open, "mcx_open")?,
            mcx_close: hm(&s.mcx_close, "mcx_close")?,
        })
    }

    /// The exchange holidays, in date order, with their names (weekends are not listed).
    pub fn holidays(&self) -> impl Iterator<Item = (NaiveDate, &str)> {
        self.named.iter().map(|(d, n)| (*d, n.as_str()))
    }

    /// The name of `date`'s holiday, when it is one.
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        self.named.get(&date).map(String::as_str)
    }

    pub fn is_trading_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.named.contains_key(&date)
    }

    /// The trading day strictly before `date`.
    pub fn previous_trading_day(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date - Days::new(1);
        while !self.is_trading_day(d) {
            d = d - Days::new(1);
        }
        d
    }

    /// The trading day at or before `date`.
    pub fn trading_day_at_or_before(&self, date: NaiveDate) -> NaiveDate {
        if self.is_trading_day(date) {
            date
        } else {
            self.previous_trading_day(date)
        }
    }

    fn hours(&self, segment: Segment) -> (NaiveTime, NaiveTime) {
        if segment == Segment::McxFo || segment == Segment::NseCom {
            (self.mcx_open, self.mcx_close)
        } else {
            (self.equity_open, self.equity_close)
        }
    }

    /// Open and close instants of the normal session of `segment` on `date`.
    pub fn session(&self, segment: Segment, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let (open, close) = self.hours(segment);
        (ist_instant(date, open), ist_instant(date, close))
    }

    /// The instant whose price is current at `t`: `t` itself during the session, else the last close.
    pub fn market_time(&self, segment: Segment, t: DateTime<Utc>) -> DateTime<Utc> {
        let date = t.with_timezone(&IST).date_naive();
        if self.is_trading_day(date) {
            let (open, close) = self.session(segment, date);
            if t >= open {
                return t.min(close);
            }
        }
        self.session(segment, self.previous_trading_day(date)).1
    }

    /// The trading day whose session `market_time(t)` belongs to.
    pub fn session_day(&self, segment: Segment, t: DateTime<Utc>) -> NaiveDate {
        self.market_time(segment, t).with_timezone(&IST).date_naive()
    }

    /// Close of the session before the current one (the `cp` of quotes).
    pub fn previous_close(&self, segment: Segment, t: DateTime<Utc>) -> DateTime<Utc> {
        let day = self.session_day(segment, t);
        self.session(segment, self.previous_trading_day(day)).1
    }

    /// Whether the normal market is open for `segment` at `t`.
    pub fn is_open(&self, segment: Segment, t: DateTime<Utc>) -> bool {
        let date = t.with_timezone(&IST).date_naive();
        if !self.is_trading_day(date) {
            return false;
        }
        let (open, close) = self.session(segment, date);
        t >= open && t < close
    }

    /// The segment's status at `t`.
    pub fn status(&self, segment: Segment, t: DateTime<Utc>) -> MarketStatus {
        let local = t.with_timezone(&IST);
        let date = local.date_naive();
        if !self.is_trading_day(date) {
            return MarketStatus::ClosingEnd;
        }
        let time = local.time();
        let (open, close) = self.hours(segment);
        if segment == Segment::McxFo || segment == Segment::NseCom {
            return if time >= open && time < close {
                MarketStatus::NormalOpen
            } else {
                MarketStatus::NormalClose
            };
        }
        if time < self.pre_open {
            MarketStatus::ClosingEnd
        } else if time < self.pre_open_end {
            MarketStatus::PreOpenStart
        } else if time < open {
            MarketStatus::PreOpenEnd
        } else if time < close {
            MarketStatus::NormalOpen
        } else if time < self.closing_start {
            MarketStatus::NormalClose
        } else if time < self.closing_end {
            MarketStatus::ClosingStart
        } else {
            MarketStatus::ClosingEnd
        }
    }

    /// Moves an expiry falling on a holiday to the previous trading day.
    fn adjust(&self, date: NaiveDate) -> NaiveDate {
        self.trading_day_at_or_before(date)
    }

    /// The next `n` weekly expiries on `weekday`, on or after `from`.
    pub fn weekly_expiries(&self, weekday: Weekday, from: NaiveDate, n: usize) -> Vec<NaiveDate> {
        let mut d = from;
        while d.weekday() != weekday {
            d = d + Days::new(1);
        }
        (0..n)
            .map(|i| self.adjust(d + Days::new(7 * i as u64)))
            .filter(|e| *e >= from)
            .collect()
    }

    /// The next `n` monthly expiries (last `weekday` of the month), on or after `from`.
    pub fn monthly_expiries(&self, weekday: Weekday, from: NaiveDate, n: usize) -> Vec<NaiveDate> {
        let mut out = Vec::with_capacity(n);
        let mut month_start = from.with_day(1).unwrap_or(from);
        while out.len() < n {
            let next_month = month_start + Months::new(1);
            let mut d = next_month - Days::new(1);
            while d.weekday() != weekday {
                d = d - Days::new(1);
            }
            let d = self.adjust(d);
            if d >= from {
                out.push(d);
            }
            month_start = next_month;
        }
        out
    }
}

/// Parses `Mon`..`Sun`.
pub(crate) fn weekday(s: &str) -> Result<Weekday, SimError> {
    s.parse::<Weekday>()
        .map_err(|_| SimError::Config(format!("{s:?} is not a weekday (Mon..Sun)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new(&MarketConfig::default()).expect("calendar")
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn monthly_expiry_is_last_tuesday() {
        let e = cal().monthly_expiries(Weekday::Tue, date("2026-11-23"), 2);
        assert_eq!(e, vec![date("2026-11-24"), date("2026-12-29")]);
    }

    #[test]
    fn weekend_prices_are_fridays_close() {
        let c = cal();
        let sat = ist_instant(date("2026-11-21"), NaiveTime::from_hms_opt(11, 0, 0).expect("t"));
        let fri_close = ist_instant(date("2026-11-20"), NaiveTime::from_hms_opt(15, 30, 0).expect("t"));
        assert_eq!(c.market_time(Segment::NseEq, sat), fri_close);
        assert!(!c.is_open(Segment::NseEq, sat));
        assert_eq!(c.status(Segment::NseEq, sat), MarketStatus::ClosingEnd);
    }
}
