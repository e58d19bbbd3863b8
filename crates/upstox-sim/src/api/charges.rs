//! Charges: the margin a basket needs (`POST /v2/charges/margin`) and the brokerage, taxes and
//! fees of one order (`GET /v2/charges/brokerage`), consistent with the order checks.

use axum::extract::State;
use bytes::Bytes;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};
use upstox_types::error_code;

use super::QueryMap;
use super::orders::parse_order;
use crate::engine::OrderRequest;
use crate::error::{ApiError, ApiResult, success};
use crate::state::{AppState, Authed};

/// At most this many instruments in one margin request.
const MAX_BASKET: usize = 20;

/// One leg as an order request, through the order checks (lots, ranges, ticks), with the error's
/// field named as the caller wrote it.
fn leg(state: &AppState, fields: &Map<String, Value>, key_field: &str, path: &str) -> Result<OrderRequest, ApiError> {
    let price = fields.get("price").and_then(Value::as_f64).unwrap_or(0.0);
    let mut order = fields.clone();
    if let Some(key) = order.remove(key_field) {
        order.insert("instrument_token".into(), key);
    }
    order.entry("validity").or_insert_with(|| json!("DAY"));
    order
        .entry("order_type")
        .or_insert_with(|| json!(if price > 0.0 { "LIMIT" } else { "MARKET" }));
    parse_order(state, &Value::Object(order))
        .map(|(req, _)| req)
        .map_err(|mut e| {
            let field = match e.property_path.as_deref() {
                Some("instrument_token") | None => key_field.to_owned(),
                Some(other) => other.to_owned(),
            };
            e.property_path = Some(format!("{path}{field}"));
            e
        })
}

/// `POST /v2/charges/margin`.
pub(super) async fn margin(State(state): State<AppState>, _who: Authed, body: Bytes) -> ApiResult {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(error_code::INVALID_INPUT, format!("Invalid JSON body: {e}")))?;
    let legs = v.get("instruments").and_then(Value::as_array).ok_or_else(|| {
        ApiError::bad_request(error_code::INVALID_INPUT, "instruments must be a list")
            .with_property("instruments", None)
    })?;
    if legs.is_empty() || legs.len() > MAX_BASKET {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            format!("instruments must hold 1 to {MAX_BASKET} entries, not {}", legs.len()),
        )
        .with_property("instruments", None));
    }
    let mut basket = Vec::with_capacity(legs.len());
    for (i, l) in legs.iter().enumerate() {
        let fields = l.as_object().ok_or_else(|| {
            ApiError::bad_request(error_code::INVALID_INPUT, "each instrument must be an object")
                .with_property(format!("instruments[{i}]"), Some(l.clone()))
        })?;
        basket.push(leg(&state, fields, "instrument_key", &format!("instruments[{i}]."))?);
    }
    let now = state.now();
    let parts = state.engine.lock().basket_margin(&state.market, &basket, now);
    let required: f64 = parts.iter().map(|p| p.total).sum();
    let required = (required * 100.0).round() / 100.0;
    let margins: Vec<Value> = parts
        .iter()
        .map(|p| {
            json!({
                "span_margin": p.span,
                "exposure_margin": p.exposure,
                "equity_margin": p.equity,
                "net_buy_premium": p.net_buy_premium,
                "additional_margin": 0.0,
                "total_margin": p.total,
                "tender_margin": 0.0,
            })
        })
        .collect();
    // No hedge or spread benefit is simulated: the final margin is the required one.
    Ok(success(json!({
        "margins": margins,
        "required_margin": required,
        "final_margin": required,
    })))
}

/// `GET /v2/charges/brokerage`.
pub(super) async fn brokerage(State(state): State<AppState>, _who: Authed, q: QueryMap) -> ApiResult {
    let mut fields = Map::new();
    for name in ["instrument_token", "quantity", "product", "transaction_type", "price"] {
        let Some(raw) = q.get(name) else {
            return Err(
                ApiError::bad_request(error_code::INVALID_INPUT, format!("{name} is required"))
                    .with_property(name, None),
            );
        };
        let value = match name {
            "quantity" => raw.parse::<u64>().ok().map(Value::from),
            "price" => raw.parse::<f64>().ok().filter(|p| p.is_finite()).map(Value::from),
            _ => Some(Value::from(raw.as_str())),
        }
        .ok_or_else(|| {
            ApiError::bad_request(error_code::INVALID_INPUT, format!("{name} must be a number"))
                .with_property(name, Some(Value::from(raw.as_str())))
        })?;
        fields.insert(name.into(), value);
    }
    let req = leg(&state, &fields, "instrument_token", "")?;
    let price = if req.price > 0.0 {
        req.price
    } else {
        state.market.ltp(req.instrument, state.now())
    };
    let schedule = &state.config.market.charges;
    let c = schedule.charges_of(
        state.market.get(req.instrument),
        req.product,
        req.transaction_type,
        req.quantity,
        price,
    );
    // Upstox writes amounts as JSON numbers; they are exact paise, so f64 carries them.
    let n = |x: Decimal| x.to_f64().map_or(Value::Null, Value::from);
    Ok(success(json!({
        "charges": {
            "total": n(c.total),
            "brokerage": n(c.brokerage),
            "taxes": {"gst": n(c.gst), "stt": n(c.stt), "stamp_duty": n(c.stamp_duty)},
            "other_taxes": {"transaction": n(c.transaction), "clearing": n(c.clearing), "sebi_turnover": n(c.sebi_turnover)},
            "dp_plan": {"name": schedule.dp_plan_name, "min_expense": n(schedule.dp_min_expense)},
        }
    })))
}
