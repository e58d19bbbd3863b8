//! The trade P&L report (`/v2/trade/profit-loss/metadata|data|charges`), from the user's own
//! fills in the simulator: buys and sells of one instrument and product matched first in, first
//! out; lots still open are not in it (the report is of realised trades).
//!
//! Upstox does not document the `trade_type` values; the simulator writes `INTRADAY` and
//! `DELIVERY` for equity, `FUT` and `OPT` for derivatives (an assumption).

use std::collections::{BTreeMap, VecDeque};

use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use upstox_types::{IST, Product, Segment, TransactionType, error_code};

use super::QueryMap;
use crate::charges::TradeKind;
use crate::engine::Trade;
use crate::error::{ApiError, ApiResult, success};
use crate::state::{AppState, Authed};

/// The most rows one page may ask for.
const PAGE_SIZE_LIMIT: u64 = 5000;

/// The report's segments.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReportSegment {
    Equity,
    Derivatives,
    Commodity,
    Currency,
}

fn bad(name: &str, raw: Option<&String>, why: &str) -> ApiError {
    ApiError::bad_request(error_code::INVALID_INPUT, why).with_property(name, raw.map(|r| Value::from(r.as_str())))
}

/// The segment and the financial year's first and last day asked for.
fn scope(q: &QueryMap) -> Result<(ReportSegment, NaiveDate, NaiveDate), ApiError> {
    let raw = q.get("segment");
    let segment = match raw.map(String::as_str) {
        Some("EQ") => ReportSegment::Equity,
        Some("FO") => ReportSegment::Derivatives,
        Some("COM") => ReportSegment::Commodity,
        Some("CD") => ReportSegment::Currency,
        _ => return Err(bad("segment", raw, "segment must be EQ, FO, COM or CD")),
    };
    let raw = q.get("financial_year");
    let why = "financial_year must be four digits, the two years' last digits (2526 for April 2025 to March 2026)";
    let fy = raw
        .filter(|f| f.len() == 4 && f.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("financial_year", raw, why))?;
    let (a, b): (i32, i32) = (
        fy[..2].parse().map_err(|_| bad("financial_year", raw, why))?,
        fy[2..].parse().map_err(|_| bad("financial_year", raw, why))?,
    );
    if b != (a + 1) % 100 {
        return Err(bad("financial_year", raw, why));
    }
    let start = NaiveDate::from_ymd_opt(2000 + a, 4, 1).ok_or_else(|| bad("financial_year", raw, why))?;
    let end = NaiveDate::from_ymd_opt(2000 + a + 1, 3, 31).ok_or_else(|| bad("financial_year", raw, why))?;
    Ok((segment, start, end))
}

/// The report segment of `t`'s instrument, and its kind of trade for the schedule.
fn kind_of(state: &AppState, t: &Trade) -> (ReportSegment, TradeKind) {
    let inst = state.market.get(t.instrument);
    let kind = TradeKind::of(inst);
    let segment = match kind {
        _ if inst.segment == Segment::McxFo => ReportSegment::Commodity,
        TradeKind::Equity => ReportSegment::Equity,
        TradeKind::Future | TradeKind::Option | TradeKind::Commodity => ReportSegment::Derivatives,
    };
    (segment, kind)
}

/// The user's fills in the segment and year, oldest first.
fn trades_in(state: &AppState, user: &str, segment: ReportSegment, start: NaiveDate, end: NaiveDate) -> Vec<Trade> {
    let engine = state.engine.lock();
    let mut out: Vec<Trade> = engine
        .trades(user)
        .iter()
        .filter(|t| {
            let day = t.time.with_timezone(&IST).date_naive();
            day >= start && day <= end && kind_of(state, t).0 == segment
        })
        .cloned()
        .collect();
    out.sort_by_key(|t| t.time);
    out
}

fn day(t: DateTime<Utc>) -> String {
    t.with_timezone(&IST).format("%d-%m-%Y").to_string()
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A lot still open: side, quantity, price and time of its fill.
type OpenLot = (TransactionType, u64, f64, DateTime<Utc>);

/// Realised rows: each sell matched against the earliest open buys (and each buy against
/// earlier open sells, for a short), per instrument and product.
fn rows(state: &AppState, trades: &[Trade]) -> Vec<Value> {
    // Open lots per (instrument, product): (side, quantity, price, time).
    let mut open: BTreeMap<(u32, &'static str), VecDeque<OpenLot>> = BTreeMap::new();
    let mut out = Vec::new();
    for t in trades {
        let lots = open.entry((t.instrument, t.product.as_str())).or_default();
        let mut left = t.quantity;
        while left > 0 {
            let Some(front) = lots.front_mut() else { break };
            if front.0 == t.transaction_type {
                break;
            }
            let q = left.min(front.1);
            let (buy, sell) = if t.transaction_type == TransactionType::Sell {
                ((front.2, front.3), (t.price, t.time))
            } else {
                ((t.price, t.time), (front.2, front.3))
            };
            let inst = state.market.get(t.instrument);
            let trade_type = match (kind_of(state, t).1, t.product) {
                (TradeKind::Equity, Product::Delivery) => "DELIVERY",
                (TradeKind::Equity, _) => "INTRADAY",
                (TradeKind::Option, _) => "OPT",
                (TradeKind::Future | TradeKind::Commodity, _) => "FUT",
            };
            out.push(json!({
                "quantity": q as f64,
                "isin": inst.isin.clone().unwrap_or_default(),
                "scrip_name": inst.trading_symbol,
                "trade_type": trade_type,
                "buy_date": day(buy.1),
                "buy_average": buy.0,
                "sell_date": day(sell.1),
                "sell_average": sell.0,
                "buy_amount": r2(buy.0 * q as f64),
                "sell_amount": r2(sell.0 * q as f64),
            }));
            front.1 -= q;
            left -= q;
            if front.1 == 0 {
                lots.pop_front();
            }
        }
        if left > 0 {
            lots.push_back((t.transaction_type, left, t.price, t.time));
        }
    }
    out
}

/// `GET /v2/trade/profit-loss/metadata?segment&financial_year`.
pub(super) async fn metadata(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let (segment, start, end) = scope(&q)?;
    let trades = trades_in(&state, &who.user_id, segment, start, end);
    Ok(success(json!({
        "trades_count": rows(&state, &trades).len(),
        "page_size_limit": PAGE_SIZE_LIMIT,
    })))
}

/// `GET /v2/trade/profit-loss/data?segment&financial_year&page_number&page_size`.
pub(super) async fn data(
    State(state): State<AppState>,
    who: Authed,
    q: QueryMap,
) -> Result<axum::Json<Value>, ApiError> {
    let (segment, start, end) = scope(&q)?;
    let number = |name: &str, max: u64| -> Result<u64, ApiError> {
        let raw = q.get(name);
        raw.and_then(|v| v.parse::<u64>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| bad(name, raw, &format!("{name} must be a number from 1 to {max}")))
    };
    let page = number("page_number", u64::MAX)?;
    let size = number("page_size", PAGE_SIZE_LIMIT)?;
    let trades = trades_in(&state, &who.user_id, segment, start, end);
    let all = rows(&state, &trades);
    let skip = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
    let take = usize::try_from(size).unwrap_or(usize::MAX);
    let rows: Vec<Value> = all.into_iter().skip(skip).take(take).collect();
    Ok(axum::Json(json!({
        "status": "success",
        "data": rows,
        "metadata": {"page": {"page_number": page, "page_size": size}},
    })))
}

/// `GET /v2/trade/profit-loss/charges?segment&financial_year`: the schedule's charges of every
/// fill in the year, summed.
pub(super) async fn charges(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let (segment, start, end) = scope(&q)?;
    let schedule = &state.config.market.charges;
    let mut sum = crate::charges::Charges::default();
    for t in trades_in(&state, &who.user_id, segment, start, end) {
        sum += &schedule.charges_of(
            state.market.get(t.instrument),
            t.product,
            t.transaction_type,
            t.quantity,
            t.price,
        );
    }
    let n = |x: Decimal| x.to_f64().map_or(Value::Null, Value::from);
    Ok(success(json!({
        "charges_breakdown": {
            "total": n(sum.total),
            "brokerage": n(sum.brokerage),
            "taxes": {"gst": n(sum.gst), "stt": n(sum.stt), "stamp_duty": n(sum.stamp_duty)},
            "charges": {
                "transaction": n(sum.transaction),
                "clearing": n(sum.clearing),
                "others": 0.0,
                "sebi_turnover": n(sum.sebi_turnover),
                "demat_transaction": 0.0,
            },
        }
    })))
}
