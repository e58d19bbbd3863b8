//! GTT orders v3 (api-facts §4.11, §15): place, modify, cancel and get. The rules live in the
//! paper engine ([`crate::gtt`]), which fires them from the price path.

use axum::extract::State;
use bytes::Bytes;
use serde_json::{Value, json};
use upstox_types::{GttStrategy, GttTriggerType, GttType, error_code};

use super::QueryMap;
use super::orders::{
    MAX_PRICE, enum_field, instrument_and_quantity, integer, invalid, number, parse_body, product_and_side, required,
    with_latency,
};
use crate::engine::{GttChange, GttError};
use crate::error::{ApiError, ApiResult, success};
use crate::gtt::{GttSpec, RuleSpec};
use crate::state::{AppState, Authed};

fn gtt_error(e: GttError) -> ApiError {
    match e {
        GttError::NotFound => ApiError::bad_request(error_code::ORDER_NOT_FOUND, "GTT order not found")
            .with_property("gtt_order_id", None),
        GttError::Invalid(message) => ApiError::bad_request(error_code::INVALID_INPUT, message),
    }
}

fn kind(v: &Value) -> Result<GttType, ApiError> {
    required(
        enum_field(v, "type", error_code::INVALID_INPUT, error_code::INVALID_INPUT)?,
        error_code::INVALID_INPUT,
        "type is required (SINGLE or MULTIPLE)",
        "type",
    )
}

fn rules(v: &Value) -> Result<Vec<RuleSpec>, ApiError> {
    let Some(list) = v.get("rules").and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return Err(invalid(
            error_code::INVALID_INPUT,
            "rules must be a non-empty list",
            "rules",
            v.get("rules"),
        ));
    };
    list.iter()
        .map(|r| {
            let strategy: GttStrategy = required(
                enum_field(r, "strategy", error_code::INVALID_INPUT, error_code::INVALID_INPUT)?,
                error_code::INVALID_INPUT,
                "each rule needs a strategy (ENTRY, TARGET or STOPLOSS)",
                "rules.strategy",
            )?;
            let trigger_type: GttTriggerType = required(
                enum_field(r, "trigger_type", error_code::INVALID_INPUT, error_code::INVALID_INPUT)?,
                error_code::INVALID_INPUT,
                "each rule needs a trigger_type (ABOVE, BELOW or IMMEDIATE)",
                "rules.trigger_type",
            )?;
            let trigger_price = number(r, "trigger_price", false)?.unwrap_or(0.0);
            if !(trigger_price.is_finite() && (0.0..=MAX_PRICE).contains(&trigger_price)) {
                return Err(invalid(
                    error_code::INVALID_INPUT,
                    &format!("trigger_price {trigger_price} is out of range"),
                    "rules.trigger_price",
                    r.get("trigger_price"),
                ));
            }
            Ok(RuleSpec {
                strategy,
                trigger_type,
                trigger_price,
                trailing_gap: number(r, "trailing_gap", false)?,
                market_protection: number(r, "market_protection", false)?,
            })
        })
        .collect()
}

fn gtt_id(v: Option<&str>) -> Result<String, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => Ok(id.to_owned()),
        None => Err(
            ApiError::bad_request(error_code::INVALID_INPUT, "gtt_order_id is required")
                .with_property("gtt_order_id", None),
        ),
    }
}

fn ids(id: String, started: std::time::Instant) -> ApiResult {
    Ok(with_latency(success(json!({"gtt_order_ids": [id]})), started))
}

/// `POST /v3/order/gtt/place`.
pub(super) async fn place(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    let started = std::time::Instant::now();
    let v = parse_body(&body)?;
    let kind = kind(&v)?;
    let (instrument, quantity) = instrument_and_quantity(&state, &v)?;
    let (product, side) = product_and_side(&v)?;
    let spec = GttSpec {
        kind,
        instrument,
        quantity,
        product,
        side,
        rules: rules(&v)?,
    };
    let now = state.now();
    let id = state
        .engine
        .lock()
        .place_gtt(&state.market, &who.user_id, spec, now)
        .map_err(gtt_error)?;
    ids(id, started)
}

/// `PUT /v3/order/gtt/modify`.
pub(super) async fn modify(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    let started = std::time::Instant::now();
    let v = parse_body(&body)?;
    let id = gtt_id(v.get("gtt_order_id").and_then(Value::as_str))?;
    let change = GttChange {
        kind: kind(&v)?,
        quantity: required(
            integer(&v, "quantity", true)?,
            error_code::QUANTITY_ZERO,
            "Quantity cannot be zero",
            "quantity",
        )?,
        rules: rules(&v)?,
    };
    let now = state.now();
    state
        .engine
        .lock()
        .modify_gtt(&state.market, &who.user_id, &id, change, now)
        .map_err(gtt_error)?;
    ids(id, started)
}

/// `DELETE /v3/order/gtt/cancel` (body `{"gtt_order_id"}`).
pub(super) async fn cancel(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    let started = std::time::Instant::now();
    let v = parse_body(&body)?;
    let id = gtt_id(v.get("gtt_order_id").and_then(Value::as_str))?;
    state
        .engine
        .lock()
        .cancel_gtt(&state.market, &who.user_id, &id)
        .map_err(gtt_error)?;
    ids(id, started)
}

/// `GET /v3/order/gtt[?gtt_order_id=]`: one GTT, or every GTT of the user.
pub(super) async fn get(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let started = std::time::Instant::now();
    let id = q.get("gtt_order_id").map(|s| s.trim()).filter(|s| !s.is_empty());
    let list = state
        .engine
        .lock()
        .gtt_orders(&state.market, &who.user_id, id)
        .map_err(gtt_error)?;
    Ok(with_latency(success(list), started))
}
