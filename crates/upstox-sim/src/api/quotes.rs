//! Market quotes: LTP v2/v3, OHLC v2/v3, full quote, option greeks, exchange status.
//! Response maps are keyed `SEGMENT:SYMBOL` with `instrument_token` inside (api-facts §5.4).

use axum::extract::{Path, State};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use upstox_types::{IST, Segment, error_code};

use super::{QueryMap, quote_keys};
use crate::error::{ApiError, ApiResult, success};
use crate::market::Snapshot;
use crate::market::candles::Ohlcv;
use crate::state::{AppState, Authed};

/// Resolves the request's keys; unknown keys are left out, as the real API does.
fn resolve(state: &AppState, q: &QueryMap, max: usize) -> Result<Vec<u32>, ApiError> {
    Ok(quote_keys(q, max)?
        .iter()
        .filter_map(|k| state.market.lookup(k))
        .collect())
}

fn map_of(state: &AppState, idxs: &[u32], f: impl Fn(u32, &str) -> Value) -> Value {
    let mut m = Map::new();
    for &i in idxs {
        let inst = state.market.get(i);
        m.insert(inst.quote_key(), f(i, &inst.instrument_key));
    }
    Value::Object(m)
}

/// `GET /v2/market-quote/ltp`.
pub(super) async fn ltp_v2(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let idxs = resolve(&state, &q, 500)?;
    let now = state.now();
    Ok(success(map_of(
        &state,
        &idxs,
        |i, key| json!({"last_price": state.market.ltp(i, now), "instrument_token": key}),
    )))
}

/// `GET /v3/market-quote/ltp`.
pub(super) async fn ltp_v3(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let idxs = resolve(&state, &q, 500)?;
    let now = state.now();
    Ok(success(map_of(&state, &idxs, |i, key| {
        let inst = state.market.get(i);
        let t = state.market.calendar.market_time(inst.segment, now);
        let s = state.market.snapshot_light(i, t);
        json!({"last_price": s.0, "instrument_token": key, "ltq": s.1, "volume": s.2, "cp": s.3})
    })))
}

fn interval(q: &QueryMap) -> Result<&'static str, ApiError> {
    match q.get("interval").map(String::as_str) {
        Some("1d") => Ok("1d"),
        Some("I1") => Ok("I1"),
        Some("I30") => Ok("I30"),
        other => Err(
            ApiError::bad_request(error_code::INVALID_INPUT, "interval must be one of 1d, I1, I30")
                .with_property("interval", other.map(|s| s.to_owned().into())),
        ),
    }
}

/// The current and previous candle of an OHLC interval.
fn ohlc_pair(state: &AppState, i: u32, iv: &str, now: DateTime<Utc>) -> (Value, Value) {
    let inst = state.market.get(i);
    let seg = inst.segment;
    let t = state.market.calendar.market_time(seg, now);
    let cal = &state.market.calendar;
    let (cur_start, len, prev_start, prev_end) = match iv {
        "1d" => {
            let day = cal.session_day(seg, t);
            let (open, close) = cal.session(seg, day);
            let (popen, pclose) = cal.session(seg, cal.previous_trading_day(day));
            (open, close - open, popen, pclose)
        }
        _ => {
            let len = if iv == "I1" {
                Duration::minutes(1)
            } else {
                Duration::minutes(30)
            };
            // Aligned to the session's open, as the history candles are (09:15, 09:45, …).
            let (open, _) = cal.session(seg, cal.session_day(seg, t));
            let since = (t - Duration::milliseconds(1) - open).num_milliseconds().max(0);
            let start = open + Duration::milliseconds(since - since % len.num_milliseconds());
            (start, len, start - len, start)
        }
    };
    let to_json = |c: Option<Ohlcv>, ts: DateTime<Utc>| match c {
        Some(c) => json!({
            "open": c.open, "high": c.high, "low": c.low, "close": c.close, "volume": c.volume,
            "ts": ts.timestamp_millis(),
        }),
        None => Value::Null,
    };
    let m = &state.market;
    let live = to_json(m.candle(i, cur_start, len, t), cur_start);
    let prev = to_json(m.candle(i, prev_start, prev_end - prev_start, prev_end), prev_start);
    (live, prev)
}

/// `GET /v2/market-quote/ohlc?instrument_key=&interval=`.
pub(super) async fn ohlc_v2(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let iv = interval(&q)?;
    let idxs = resolve(&state, &q, 500)?;
    let now = state.now();
    Ok(success(map_of(&state, &idxs, |i, key| {
        let (live, _) = ohlc_pair(&state, i, iv, now);
        let mut ohlc = live;
        if let Some(o) = ohlc.as_object_mut() {
            o.remove("volume");
            o.remove("ts");
        }
        json!({"ohlc": ohlc, "last_price": state.market.ltp(i, now), "instrument_token": key})
    })))
}

/// `GET /v3/market-quote/ohlc?instrument_key=&interval=`.
pub(super) async fn ohlc_v3(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let iv = interval(&q)?;
    let idxs = resolve(&state, &q, 500)?;
    let now = state.now();
    Ok(success(map_of(&state, &idxs, |i, key| {
        let (live, prev) = ohlc_pair(&state, i, iv, now);
        json!({"last_price": state.market.ltp(i, now), "instrument_token": key, "prev_ohlc": prev, "live_ohlc": live})
    })))
}

fn depth(levels: &[crate::market::DepthLevel; 5]) -> Value {
    levels
        .iter()
        .map(|l| json!({"quantity": l.quantity, "price": l.price, "orders": l.orders}))
        .collect()
}

/// The full-quote JSON of one snapshot.
fn full_quote_json(state: &AppState, i: u32, s: &Snapshot) -> Value {
    let inst = state.market.get(i);
    json!({
        "ohlc": {"open": s.open, "high": s.high, "low": s.low, "close": s.ltp},
        "depth": {"buy": depth(&s.buy), "sell": depth(&s.sell)},
        "timestamp": s.market_time.with_timezone(&IST).to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
        "instrument_token": inst.instrument_key,
        "symbol": inst.quote_symbol,
        "last_price": s.ltp,
        "volume": s.volume,
        "average_price": s.atp,
        "oi": s.oi,
        "net_change": ((s.ltp - s.cp) * 100.0).round() / 100.0,
        "total_buy_quantity": s.total_buy_quantity(),
        "total_sell_quantity": s.total_sell_quantity(),
        "lower_circuit_limit": s.lower_circuit,
        "upper_circuit_limit": s.upper_circuit,
        "last_trade_time": s.ltt_ms.to_string(),
        "oi_day_high": s.oi,
        "oi_day_low": s.oi,
    })
}

/// `GET /v2/market-quote/quotes`.
pub(super) async fn full_quote(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let idxs = resolve(&state, &q, 500)?;
    let now = state.now();
    Ok(success(map_of(&state, &idxs, |i, _| {
        full_quote_json(&state, i, &state.market.snapshot(i, now))
    })))
}

/// `GET /v3/market-quote/option-greek` (at most 50 keys).
pub(super) async fn option_greeks(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let idxs = resolve(&state, &q, 50)?;
    let now = state.now();
    Ok(success(map_of(&state, &idxs, |i, key| {
        let s = state.market.snapshot(i, now);
        let g = s.greeks.unwrap_or(crate::market::black_scholes::Greeks {
            price: 0.0,
            delta: 0.0,
            gamma: 0.0,
            theta: 0.0,
            vega: 0.0,
            rho: 0.0,
        });
        let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
        json!({
            "last_price": s.ltp, "instrument_token": key, "ltq": s.ltq, "volume": s.volume, "cp": s.cp,
            "iv": r4(s.iv * 100.0), "vega": r4(g.vega), "gamma": r4(g.gamma), "theta": r4(g.theta), "delta": r4(g.delta), "oi": s.oi,
        })
    })))
}

/// `GET /v2/market/status/{exchange}`.
pub(super) async fn market_status(
    State(state): State<AppState>,
    _who: Authed,
    Path(exchange): Path<String>,
) -> ApiResult {
    let segment = match exchange.as_str() {
        "NSE" => Segment::NseEq,
        "NFO" => Segment::NseFo,
        "BSE" => Segment::BseEq,
        "BFO" => Segment::BseFo,
        "MCX" => Segment::McxFo,
        _ => {
            return Err(
                ApiError::bad_request(error_code::INVALID_INPUT, "exchange must be NSE, NFO, BSE, BFO or MCX")
                    .with_property("exchange", Some(exchange.into())),
            );
        }
    };
    let now = state.now();
    Ok(success(json!({
        "exchange": exchange,
        "status": state.market.calendar.status(segment, now).as_str(),
        "last_updated": now.timestamp_millis(),
    })))
}
