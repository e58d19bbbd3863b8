//! Historical and intraday candles (v2 and v3), read from the same price path as the quotes.
//! Candles are `[timestamp, open, high, low, close, volume, oi]`, newest first.

use axum::extract::{Path, State};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use upstox_types::{IST, error_code};

use crate::error::{ApiError, ApiResult, success};
use crate::market::candles::Ohlcv;
use crate::market::universe::Kind;
use crate::state::AppState;

/// The candle size asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Minutes(i64),
    Days,
    Weeks,
    Months,
}

/// Parses v3 `{unit}/{interval}` and answers the span and the longest allowed date range (days).
fn v3_span(unit: &str, interval: &str) -> Result<(Span, i64), ApiError> {
    let n: i64 = interval.parse().map_err(|_| {
        ApiError::bad_request(error_code::INVALID_INPUT, "interval must be a number")
            .with_property("interval", Some(interval.into()))
    })?;
    let bad = |msg: &str| {
        ApiError::bad_request(error_code::INVALID_INPUT, msg.to_owned())
            .with_property("interval", Some(interval.into()))
    };
    match unit {
        "minutes" if (1..=300).contains(&n) => Ok((Span::Minutes(n), if n <= 15 { 31 } else { 92 })),
        "minutes" => Err(bad("minutes interval must be 1 to 300")),
        "hours" if (1..=5).contains(&n) => Ok((Span::Minutes(60 * n), 92)),
        "hours" => Err(bad("hours interval must be 1 to 5")),
        "days" if n == 1 => Ok((Span::Days, 3_660)),
        "weeks" if n == 1 => Ok((Span::Weeks, i64::MAX)),
        "months" if n == 1 => Ok((Span::Months, i64::MAX)),
        "days" | "weeks" | "months" => Err(bad("days, weeks and months take interval 1")),
        _ => Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "unit must be minutes, hours, days, weeks or months",
        )
        .with_property("unit", Some(unit.into()))),
    }
}

fn v2_span(interval: &str) -> Result<(Span, i64), ApiError> {
    match interval {
        "1minute" => Ok((Span::Minutes(1), 31)),
        "30minute" => Ok((Span::Minutes(30), 92)),
        "day" => Ok((Span::Days, 3_660)),
        "week" => Ok((Span::Weeks, i64::MAX)),
        "month" => Ok((Span::Months, i64::MAX)),
        _ => Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "interval must be 1minute, 30minute, day, week or month",
        )
        .with_property("interval", Some(interval.into()))),
    }
}

fn date(s: &str, field: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(error_code::INVALID_INPUT, format!("{field} must be YYYY-MM-DD"))
            .with_property(field, Some(s.into()))
    })
}

fn instrument(state: &AppState, key: &str) -> Result<u32, ApiError> {
    state.market.lookup(key).ok_or_else(|| {
        ApiError::bad_request(error_code::INVALID_INSTRUMENT_KEY, "Invalid Instrument key")
            .with_property("instrument_key", Some(key.into()))
    })
}

fn ts(t: DateTime<Utc>) -> String {
    t.with_timezone(&IST).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A daily, weekly or monthly candle being built from sessions.
struct Bucket {
    key: u32,
    first_day: NaiveDate,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: u64,
    last_close: DateTime<Utc>,
}

/// Candles of `i` from `from` to `to` (inclusive dates), newest first.
fn candles(state: &AppState, i: u32, span: Span, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    let m = &state.market;
    let inst = m.get(i);
    let seg = inst.segment;
    let now = state.now();
    let today = m.calendar.session_day(seg, m.calendar.market_time(seg, now));
    let until = m.calendar.market_time(seg, now);
    let to = to.min(today);
    let oi = |t: DateTime<Utc>| match inst.kind {
        Kind::Spot { .. } => 0.0,
        _ => m.snapshot_light(i, t).4,
    };
    let mut days = Vec::new();
    let mut d = from;
    while d <= to {
        if m.calendar.is_trading_day(d) {
            days.push(d);
        }
        d += Duration::days(1);
    }
    let mut out = Vec::new();
    match span {
        Span::Minutes(n) => {
            let len = Duration::minutes(n);
            for day in days {
                let (open, close) = m.calendar.session(seg, day);
                let mut start = open;
                while start < close && start < until {
                    let bar = len.min(close - start);
                    if let Some(c) = m.candle(i, start, bar, until) {
                        out.push(json!([ts(start), c.open, c.high, c.low, c.close, c.volume, oi(start)]));
                    }
                    start += len;
                }
            }
        }
        Span::Days | Span::Weeks | Span::Months => {
            let key = |d: NaiveDate| match span {
                Span::Weeks => d.iso_week().year() as u32 * 100 + d.iso_week().week(),
                Span::Months => d.year() as u32 * 100 + d.month(),
                _ => d.num_days_from_ce() as u32,
            };
            let flush = |b: &Bucket, out: &mut Vec<Value>| {
                out.push(json!([
                    format!("{}T00:00:00+05:30", b.first_day),
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    oi(b.last_close)
                ]));
            };
            let mut bucket: Option<Bucket> = None;
            for day in days {
                let (open, close) = m.calendar.session(seg, day);
                let Some(Ohlcv {
                    open: o,
                    high: h,
                    low: l,
                    close: c,
                    volume: v,
                }) = m.candle(i, open, close - open, until)
                else {
                    continue;
                };
                let k = key(day);
                match &mut bucket {
                    Some(b) if b.key == k => {
                        b.high = b.high.max(h);
                        b.low = b.low.min(l);
                        b.close = c;
                        b.volume += v;
                        b.last_close = close;
                    }
                    _ => {
                        if let Some(b) = bucket.take() {
                            flush(&b, &mut out);
                        }
                        bucket = Some(Bucket {
                            key: k,
                            first_day: day,
                            open: o,
                            high: h,
                            low: l,
                            close: c,
                            volume: v,
                            last_close: close,
                        });
                    }
                }
            }
            if let Some(b) = bucket.take() {
                flush(&b, &mut out);
            }
        }
    }
    out.reverse();
    out
}

fn historical(state: &AppState, key: &str, (span, max_days): (Span, i64), to: &str, from: Option<&str>) -> ApiResult {
    let i = instrument(state, key)?;
    let to = date(to, "to_date")?;
    let from = match from {
        Some(f) => date(f, "from_date")?,
        None => to - Duration::days(max_days.min(365) - 1),
    };
    if from > to {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "from_date must not be after to_date",
        ));
    }
    if (to - from).num_days() >= max_days {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            format!("Invalid date range: at most {max_days} days for this interval"),
        ));
    }
    let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(from);
    Ok(success(
        json!({"candles": candles(state, i, span, from.max(earliest), to)}),
    ))
}

fn intraday(state: &AppState, key: &str, span: Span) -> ApiResult {
    let i = instrument(state, key)?;
    let seg = state.market.get(i).segment;
    let now = state.now();
    let today = state
        .market
        .calendar
        .session_day(seg, state.market.calendar.market_time(seg, now));
    // Intraday candles cover the current session only; before it opens there are none.
    if !state
        .market
        .calendar
        .is_trading_day(now.with_timezone(&IST).date_naive())
        || today != now.with_timezone(&IST).date_naive()
    {
        return Ok(success(json!({"candles": []})));
    }
    Ok(success(json!({"candles": candles(state, i, span, today, today)})))
}

pub(super) async fn historical_v2(
    State(state): State<AppState>,
    Path((key, interval, to, from)): Path<(String, String, String, String)>,
) -> ApiResult {
    historical(&state, &key, v2_span(&interval)?, &to, Some(&from))
}

pub(super) async fn historical_v2_to(
    State(state): State<AppState>,
    Path((key, interval, to)): Path<(String, String, String)>,
) -> ApiResult {
    historical(&state, &key, v2_span(&interval)?, &to, None)
}

pub(super) async fn intraday_v2(
    State(state): State<AppState>,
    Path((key, interval)): Path<(String, String)>,
) -> ApiResult {
    let (span, _) = v2_span(&interval)?;
    if !matches!(span, Span::Minutes(_)) {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "intraday interval must be 1minute or 30minute",
        ));
    }
    intraday(&state, &key, span)
}

pub(super) async fn historical_v3(
    State(state): State<AppState>,
    Path((key, unit, interval, to, from)): Path<(String, String, String, String, String)>,
) -> ApiResult {
    historical(&state, &key, v3_span(&unit, &interval)?, &to, Some(&from))
}

pub(super) async fn historical_v3_to(
    State(state): State<AppState>,
    Path((key, unit, interval, to)): Path<(String, String, String, String)>,
) -> ApiResult {
    historical(&state, &key, v3_span(&unit, &interval)?, &to, None)
}

pub(super) async fn intraday_v3(
    State(state): State<AppState>,
    Path((key, unit, interval)): Path<(String, String, String)>,
) -> ApiResult {
    let (span, _) = v3_span(&unit, &interval)?;
    if matches!(span, Span::Weeks | Span::Months) {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "intraday unit must be minutes, hours or days",
        ));
    }
    intraday(&state, &key, span)
}
