//! Option contracts and the option chain.

use axum::extract::State;
use chrono::NaiveDate;
use serde_json::{Value, json};
use upstox_types::error_code;

use super::QueryMap;
use crate::error::{ApiError, ApiResult, success};
use crate::market::universe::Kind;
use crate::state::{AppState, Authed};

fn underlying(q: &QueryMap) -> Result<&str, ApiError> {
    match q.get("instrument_key").map(String::as_str) {
        Some(k) if k.parse::<upstox_types::InstrumentKey>().is_ok() => Ok(k),
        other => Err(
            ApiError::bad_request(error_code::INVALID_INSTRUMENT_KEY, "Invalid Instrument key")
                .with_property("instrument_key", other.map(|s| s.to_owned().into())),
        ),
    }
}

fn expiry(q: &QueryMap, required: bool) -> Result<Option<NaiveDate>, ApiError> {
    match q.get("expiry_date") {
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| {
            ApiError::bad_request(error_code::INVALID_INPUT, "expiry_date must be YYYY-MM-DD")
                .with_property("expiry_date", Some(s.clone().into()))
        }),
        None if required => Err(
            ApiError::bad_request(error_code::INVALID_INPUT, "expiry_date is required")
                .with_property("expiry_date", None),
        ),
        None => Ok(None),
    }
}

/// `GET /v2/option/contract?instrument_key=&expiry_date=`.
pub(super) async fn contracts(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let key = underlying(&q)?;
    let want = expiry(&q, false)?;
    let mut out = Vec::new();
    if let Some(chain) = state.market.chain(key) {
        for (exp, idxs) in chain {
            if want.is_some_and(|w| w != *exp) {
                continue;
            }
            for &i in idxs {
                let inst = state.market.get(i);
                out.push(json!({
                    "name": inst.name,
                    "segment": inst.segment,
                    "exchange": inst.segment.exchange(),
                    "expiry": exp.format("%Y-%m-%d").to_string(),
                    "instrument_key": inst.instrument_key,
                    "exchange_token": inst.exchange_token,
                    "trading_symbol": inst.trading_symbol,
                    "tick_size": inst.tick_size,
                    "lot_size": inst.lot_size,
                    "instrument_type": inst.instrument_type,
                    "freeze_quantity": inst.freeze_quantity,
                    "underlying_key": inst.underlying_key,
                    "underlying_type": inst.underlying_type,
                    "underlying_symbol": inst.underlying_symbol,
                    "strike_price": inst.strike_price,
                    "minimum_lot": inst.minimum_lot,
                    "weekly": inst.weekly,
                }));
            }
        }
    }
    Ok(success(out))
}

/// `GET /v2/option/chain?instrument_key=&expiry_date=` (both required).
pub(super) async fn chain(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let key = underlying(&q)?;
    let Some(want) = expiry(&q, true)? else {
        return Ok(success(Vec::<Value>::new()));
    };
    let now = state.now();
    let Some(idxs) = state.market.chain(key).and_then(|c| c.get(&want)) else {
        return Ok(success(Vec::<Value>::new()));
    };
    let spot = state.market.lookup(key).map_or(0.0, |u| state.market.ltp(u, now));
    let mut strikes: std::collections::BTreeMap<i64, (Option<u32>, Option<u32>)> = std::collections::BTreeMap::new();
    for &i in idxs {
        if let Kind::Option { strike, call, .. } = state.market.get(i).kind {
            let e = strikes.entry((strike * 100.0).round() as i64).or_default();
            if call { e.0 = Some(i) } else { e.1 = Some(i) }
        }
    }
    let side = |i: Option<u32>| -> (Value, f64) {
        let Some(i) = i else {
            return (Value::Null, 0.0);
        };
        let s = state.market.snapshot(i, now);
        let g = s.greeks;
        let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
        let v = json!({
            "instrument_key": state.market.get(i).instrument_key,
            "market_data": {
                "ltp": s.ltp, "volume": s.volume, "oi": s.oi, "close_price": s.cp,
                "bid_price": s.buy[0].price, "bid_qty": s.buy[0].quantity, "ask_price": s.sell[0].price, "ask_qty": s.sell[0].quantity,
                "prev_oi": (s.oi * 0.9).round(),
            },
            "option_greeks": {
                "vega": r4(g.map_or(0.0, |g| g.vega)), "theta": r4(g.map_or(0.0, |g| g.theta)), "gamma": r4(g.map_or(0.0, |g| g.gamma)),
                "delta": r4(g.map_or(0.0, |g| g.delta)), "iv": r4(s.iv * 100.0), "pop": r4(g.map_or(0.0, |g| g.delta.abs() * 100.0)),
            },
        });
        (v, s.oi)
    };
    let rows: Vec<Value> = strikes
        .into_iter()
        .map(|(strike, (ce, pe))| {
            let (call, call_oi) = side(ce);
            let (put, put_oi) = side(pe);
            json!({
                "expiry": want.format("%Y-%m-%d").to_string(),
                "pcr": if call_oi > 0.0 { (put_oi / call_oi * 100.0).round() / 100.0 } else { 0.0 },
                "strike_price": strike as f64 / 100.0,
                "underlying_key": key,
                "underlying_spot_price": spot,
                "call_options": call,
                "put_options": put,
            })
        })
        .collect();
    Ok(success(rows))
}
