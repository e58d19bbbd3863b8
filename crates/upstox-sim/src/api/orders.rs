//! Orders: place v2/v3 (v3 slicing by freeze quantity), modify, cancel, multi place, cancel
//! all, exit all, order book, details, history and trades.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use upstox_types::ist::order_timestamp;
use upstox_types::{OrderType, Product, Segment, TransactionType, Validity, error_code};

use super::QueryMap;
use crate::engine::{OrderChange, OrderError, OrderRequest};
use crate::error::{ApiError, ApiResult, success};
use crate::state::{AppState, Authed};

const MAX_SLICES: u64 = 25;

pub(super) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(error_code::INVALID_INPUT, format!("Invalid JSON body: {e}")))
}

pub(super) fn invalid(code: &'static str, message: &str, field: &str, value: Option<&Value>) -> ApiError {
    ApiError::bad_request(code, message).with_property(field, value.cloned())
}

pub(super) fn number(v: &Value, field: &str, required: bool) -> Result<Option<f64>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(x) if x.is_number() => Ok(x.as_f64()),
        other => Err(invalid(
            error_code::INVALID_INPUT,
            &format!("{field} must be a number"),
            field,
            other,
        )),
    }
}

pub(super) fn integer(v: &Value, field: &str, required: bool) -> Result<Option<u64>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(x) if x.as_u64().is_some() => Ok(x.as_u64()),
        other => Err(invalid(
            error_code::INVALID_INPUT,
            &format!("{field} must be a non-negative integer"),
            field,
            other,
        )),
    }
}

pub(super) fn enum_field<T: std::str::FromStr>(
    v: &Value,
    field: &str,
    missing: &'static str,
    bad: &'static str,
) -> Result<Option<T>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| invalid(bad, &format!("Invalid {field}"), field, v.get(field))),
        other => Err(invalid(missing, &format!("Invalid {field}"), field, other)),
    }
}

pub(super) fn required<T>(x: Option<T>, code: &'static str, message: &str, field: &str) -> Result<T, ApiError> {
    x.ok_or_else(|| ApiError::bad_request(code, message).with_property(field, None))
}

fn check_price_tick(price: f64, tick: f64, field: &str) -> Result<(), ApiError> {
    let steps = price / tick;
    if price > 0.0 && (steps - steps.round()).abs() > 1e-6 {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            format!("{field} must be a multiple of the tick size {tick}"),
        )
        .with_property(field, Some(price.into())));
    }
    Ok(())
}

/// The tradable instrument (`instrument_token`) and quantity (`quantity`, whole lots) of an order or GTT body.
pub(super) fn instrument_and_quantity(state: &AppState, v: &Value) -> Result<(u32, u64), ApiError> {
    let key = v.get("instrument_token").and_then(Value::as_str).unwrap_or("");
    let instrument = state.market.lookup(key).ok_or_else(|| {
        invalid(
            error_code::INVALID_INSTRUMENT_KEY,
            "Invalid Instrument key",
            "instrument_token",
            v.get("instrument_token"),
        )
    })?;
    let inst = state.market.get(instrument);
    if inst.segment.is_index() {
        return Err(invalid(
            error_code::INVALID_INSTRUMENT_KEY,
            "Indices cannot be traded",
            "instrument_token",
            v.get("instrument_token"),
        ));
    }
    let quantity = required(
        integer(v, "quantity", true)?,
        error_code::QUANTITY_ZERO,
        "Quantity cannot be zero",
        "quantity",
    )?;
    if quantity == 0 {
        return Err(invalid(
            error_code::QUANTITY_ZERO,
            "Quantity cannot be zero",
            "quantity",
            v.get("quantity"),
        ));
    }
    // MCX quantities are lots; everything else units in multiples of the lot.
    if !quantity.is_multiple_of(inst.quantity_step()) {
        return Err(invalid(
            error_code::INVALID_INPUT,
            &format!("Quantity should be a multiple of the lot size {}", inst.lot()),
            "quantity",
            v.get("quantity"),
        ));
    }
    if quantity > MAX_QUANTITY {
        return Err(invalid(
            error_code::INVALID_INPUT,
            &format!("Quantity {quantity} is out of range"),
            "quantity",
            v.get("quantity"),
        ));
    }
    Ok((instrument, quantity))
}

/// The `product` and `transaction_type` of an order or GTT body, both required.
pub(super) fn product_and_side(v: &Value) -> Result<(Product, TransactionType), ApiError> {
    let product: Product = required(
        enum_field(v, "product", error_code::INVALID_INPUT, error_code::INVALID_INPUT)?,
        error_code::INVALID_INPUT,
        "Product is required (I, D or MTF)",
        "product",
    )?;
    let side: TransactionType = required(
        enum_field(
            v,
            "transaction_type",
            error_code::INVALID_INPUT,
            error_code::INVALID_INPUT,
        )?,
        error_code::INVALID_INPUT,
        "transaction_type is required",
        "transaction_type",
    )?;
    Ok((product, side))
}

/// Validates a place-order body into an engine request (and answers the slice flag).
pub(super) fn parse_order(state: &AppState, v: &Value) -> Result<(OrderRequest, bool), ApiError> {
    let (instrument, quantity) = instrument_and_quantity(state, v)?;
    let inst = state.market.get(instrument);
    let (product, transaction_type) = product_and_side(v)?;
    let validity: Validity = required(
        enum_field(
            v,
            "validity",
            error_code::VALIDITY_REQUIRED,
            error_code::INVALID_VALIDITY,
        )?,
        error_code::VALIDITY_REQUIRED,
        "Validity is required",
        "validity",
    )?;
    let order_type: OrderType = required(
        enum_field(
            v,
            "order_type",
            error_code::ORDER_TYPE_REQUIRED,
            error_code::INVALID_ORDER_TYPE,
        )?,
        error_code::ORDER_TYPE_REQUIRED,
        "Please provide valid order type",
        "order_type",
    )?;
    let price = number(v, "price", false)?.unwrap_or(0.0);
    let trigger_price = number(v, "trigger_price", false)?.unwrap_or(0.0);
    for (field, p) in [("price", price), ("trigger_price", trigger_price)] {
        if !(p.is_finite() && (0.0..=MAX_PRICE).contains(&p)) {
            return Err(invalid(
                error_code::INVALID_INPUT,
                &format!("{field} {p} is out of range"),
                field,
                v.get(field),
            ));
        }
    }
    let disclosed_quantity = integer(v, "disclosed_quantity", false)?.unwrap_or(0);
    if let Some(mp) = number(v, "market_protection", false)?
        && (mp > 25.0 || (mp < 0.0 && mp != -1.0))
    {
        return Err(invalid(
            error_code::MARKET_PROTECTION,
            "Market protection must be -1 or between 0 and 25",
            "market_protection",
            v.get("market_protection"),
        ));
    }
    if matches!(order_type, OrderType::Limit | OrderType::StopLoss) && price <= 0.0 {
        return Err(invalid(
            error_code::INVALID_INPUT,
            "Price is required for LIMIT and SL orders",
            "price",
            v.get("price"),
        ));
    }
    if matches!(order_type, OrderType::StopLoss | OrderType::StopLossMarket) && trigger_price <= 0.0 {
        return Err(invalid(
            error_code::INVALID_INPUT,
            "Trigger price is required for SL and SL-M orders",
            "trigger_price",
            v.get("trigger_price"),
        ));
    }
    check_price_tick(price, inst.tick(), "price")?;
    check_price_tick(trigger_price, inst.tick(), "trigger_price")?;
    let tag = match v.get("tag") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 40 => Some(s.clone()),
        other => {
            return Err(invalid(
                error_code::INVALID_INPUT,
                "tag must be a string of at most 40 characters",
                "tag",
                other,
            ));
        }
    };
    let slice = v.get("slice").and_then(Value::as_bool).unwrap_or(false);
    let is_amo = v.get("is_amo").and_then(Value::as_bool).unwrap_or(false);
    Ok((
        OrderRequest {
            instrument,
            quantity,
            product,
            validity,
            price,
            trigger_price,
            order_type,
            transaction_type,
            disclosed_quantity,
            tag,
            is_amo,
        },
        slice,
    ))
}

/// No single order asks for more units than this (the exchange's freeze and the margin checks
/// refuse far less; this bound keeps arithmetic in range).
const MAX_QUANTITY: u64 = 1_000_000_000;
/// No price in rupees is above this (the dearest Indian shares trade near ₹1.5 lakh).
pub(super) const MAX_PRICE: f64 = 10_000_000.0;

/// A quantity split by the freeze quantity, each part a whole number of lots below it.
fn freeze_parts(state: &AppState, req: &OrderRequest) -> Vec<u64> {
    let inst = state.market.get(req.instrument);
    let lot = inst.quantity_step();
    let freeze = inst.freeze_quantity.unwrap_or(f64::MAX);
    let per_slice = (((freeze as u64).saturating_sub(1).max(lot)) / lot) * lot;
    if req.quantity as f64 <= freeze || per_slice == 0 {
        return vec![req.quantity];
    }
    let n = req.quantity.div_ceil(per_slice);
    let mut out = vec![per_slice; (n - 1) as usize];
    out.push(req.quantity - per_slice * (n - 1));
    out
}

/// Splits a quantity by the freeze quantity (`slice=true`), at most [`MAX_SLICES`] parts.
fn slices(state: &AppState, req: &OrderRequest) -> Result<Vec<u64>, ApiError> {
    let out = freeze_parts(state, req);
    let n = out.len();
    if n as u64 > MAX_SLICES {
        return Err(ApiError::bad_request(
            error_code::SLICE_LIMIT,
            format!("Order would need {n} slices; at most {MAX_SLICES} are allowed"),
        )
        .with_property("quantity", Some(req.quantity.into())));
    }
    Ok(out)
}

fn place_one(state: &AppState, user: &str, req: OrderRequest, freeze_checked: bool) -> Result<String, ApiError> {
    let now = state.now();
    state
        .engine
        .lock()
        .place(&state.market, user, req, now, freeze_checked)
        .ok_or_else(ApiError::invalid_token)
}

/// `POST /v2/order/place`.
pub(super) async fn place_v2(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    let (req, _) = parse_order(&state, &parse_body(&body)?)?;
    let id = place_one(&state, &who.user_id, req, false)?;
    Ok(success(json!({"order_id": id})))
}

pub(super) fn with_latency(mut body: Json<Value>, started: std::time::Instant) -> Json<Value> {
    if let Some(o) = body.0.as_object_mut() {
        o.insert(
            "metadata".into(),
            json!({"latency": started.elapsed().as_millis() as u64}),
        );
    }
    body
}

/// `POST /v3/order/place` (with `slice`).
pub(super) async fn place_v3(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    let started = std::time::Instant::now();
    let (req, slice) = parse_order(&state, &parse_body(&body)?)?;
    let ids = if slice {
        let parts = slices(&state, &req)?;
        parts
            .into_iter()
            .map(|q| {
                place_one(
                    &state,
                    &who.user_id,
                    OrderRequest {
                        quantity: q,
                        ..req.clone()
                    },
                    true,
                )
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![place_one(&state, &who.user_id, req, false)?]
    };
    Ok(with_latency(success(json!({"order_ids": ids})), started))
}

fn order_error(e: OrderError, what: &str) -> ApiError {
    match e {
        OrderError::NotFound => {
            ApiError::bad_request(error_code::ORDER_NOT_FOUND, "Order not found").with_property("order_id", None)
        }
        OrderError::Terminal => ApiError::bad_request(
            error_code::ORDER_TERMINAL,
            format!("{what} of already cancelled/rejected/completed order is not allowed"),
        ),
    }
}

fn order_id_param(raw: Option<&str>) -> Result<String, ApiError> {
    let id = raw.unwrap_or("").trim();
    if id.is_empty() {
        return Err(
            ApiError::bad_request(error_code::ORDER_ID_REQUIRED, "Order id is required")
                .with_property("order_id", None),
        );
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiError::bad_request(
            error_code::ORDER_ID_CHARS,
            "Order id accepts only alphanumeric characters and '-'",
        )
        .with_property("order_id", Some(id.into())));
    }
    Ok(id.to_owned())
}

async fn modify(state: AppState, who: Authed, body: Bytes) -> ApiResult {
    let v = parse_body(&body)?;
    let order_id = order_id_param(v.get("order_id").and_then(Value::as_str))?;
    if v.get("validity").is_none_or(Value::is_null) {
        return Err(
            ApiError::bad_request(error_code::VALIDITY_REQUIRED, "Validity is required")
                .with_property("validity", None),
        );
    }
    if v.get("order_type").is_none_or(Value::is_null) {
        return Err(
            ApiError::bad_request(error_code::ORDER_TYPE_REQUIRED, "Please provide valid order type")
                .with_property("order_type", None),
        );
    }
    let change = OrderChange {
        quantity: integer(&v, "quantity", false)?,
        validity: enum_field(
            &v,
            "validity",
            error_code::VALIDITY_REQUIRED,
            error_code::INVALID_VALIDITY,
        )?,
        price: number(&v, "price", false)?,
        order_type: enum_field(
            &v,
            "order_type",
            error_code::ORDER_TYPE_REQUIRED,
            error_code::INVALID_ORDER_TYPE,
        )?,
        trigger_price: number(&v, "trigger_price", false)?,
        disclosed_quantity: integer(&v, "disclosed_quantity", false)?,
    };
    let now = state.now();
    state
        .engine
        .lock()
        .modify(&state.market, &who.user_id, &order_id, change, now)
        .map_err(|e| order_error(e, "Modify"))?;
    Ok(success(json!({"order_id": order_id})))
}

/// `PUT /v2/order/modify`.
pub(super) async fn modify_v2(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    modify(state, who, body).await
}

/// `PUT /v3/order/modify`.
pub(super) async fn modify_v3(State(state): State<AppState>, who: Authed, body: Bytes) -> ApiResult {
    let started = std::time::Instant::now();
    Ok(with_latency(modify(state, who, body).await?, started))
}

fn cancel(state: &AppState, who: &Authed, q: &QueryMap) -> ApiResult {
    let order_id = order_id_param(q.get("order_id").map(String::as_str))?;
    state
        .engine
        .lock()
        .cancel(&state.market, &who.user_id, &order_id)
        .map_err(|e| order_error(e, "Cancel"))?;
    Ok(success(json!({"order_id": order_id})))
}

/// `DELETE /v2/order/cancel?order_id=`.
pub(super) async fn cancel_v2(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    cancel(&state, &who, &q)
}

/// `DELETE /v3/order/cancel?order_id=`.
pub(super) async fn cancel_v3(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let started = std::time::Instant::now();
    Ok(with_latency(cancel(&state, &who, &q)?, started))
}

fn multi_status(ok: usize, failed: usize) -> (StatusCode, &'static str) {
    match (ok, failed) {
        (_, 0) => (StatusCode::OK, "success"),
        (0, _) => (StatusCode::BAD_REQUEST, "error"),
        _ => (StatusCode::MULTI_STATUS, "partial_success"),
    }
}

/// `POST /v2/order/multi/place`: up to 25 lines, 207 on partial success.
pub(super) async fn multi_place(State(state): State<AppState>, who: Authed, body: Bytes) -> Result<Response, ApiError> {
    let v = parse_body(&body)?;
    let lines = v
        .as_array()
        .ok_or_else(|| ApiError::bad_request(error_code::INVALID_INPUT, "Body must be a JSON array of orders"))?;
    if lines.is_empty() || lines.len() > 25 {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "Between 1 and 25 orders per request",
        ));
    }
    let mut data = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut payload_errors = 0;
    for line in lines {
        let cid = line
            .get("correlation_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let result = if cid.is_empty() || cid.len() > 20 || !seen.insert(cid.clone()) {
            payload_errors += 1;
            Err(ApiError::bad_request(
                error_code::INVALID_INPUT,
                "correlation_id is required, unique and at most 20 characters",
            )
            .with_property("correlation_id", Some(cid.clone().into())))
        } else {
            parse_order(&state, line).and_then(|(req, slice)| {
                if slice {
                    slices(&state, &req)?
                        .into_iter()
                        .map(|q| {
                            place_one(
                                &state,
                                &who.user_id,
                                OrderRequest {
                                    quantity: q,
                                    ..req.clone()
                                },
                                true,
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()
                } else {
                    place_one(&state, &who.user_id, req, false).map(|id| vec![id])
                }
            })
        };
        match result {
            Ok(ids) => data.extend(ids.into_iter().map(|id| json!({"correlation_id": cid, "order_id": id}))),
            Err(e) => {
                let mut item = e.item();
                if let Some(o) = item.as_object_mut() {
                    o.insert("correlation_id".into(), cid.into());
                }
                errors.push(item);
            }
        }
    }
    let (status, word) = multi_status(data.len(), errors.len());
    let summary = json!({"total": lines.len(), "success": lines.len() - errors.len(), "error": errors.len() - payload_errors.min(errors.len()), "payload_error": payload_errors});
    let body = json!({"status": word, "data": data, "errors": if errors.is_empty() { Value::Null } else { errors.into() }, "summary": summary});
    Ok((status, Json(body)).into_response())
}

fn bulk_response(ids: Vec<String>, errors: Vec<Value>) -> Response {
    let (status, word) = multi_status(ids.len(), errors.len());
    let total = ids.len() + errors.len();
    let body = json!({
        "status": word,
        "data": {"order_ids": ids},
        "errors": if errors.is_empty() { Value::Null } else { errors.clone().into() },
        "summary": {"total": total, "success": total - errors.len(), "error": errors.len()},
    });
    (status, Json(body)).into_response()
}

fn segment_filter(q: &QueryMap) -> Result<Option<Segment>, ApiError> {
    q.get("segment")
        .map(|s| {
            s.parse::<Segment>().map_err(|e| {
                ApiError::bad_request(error_code::INVALID_INPUT, e.to_string())
                    .with_property("segment", Some(s.clone().into()))
            })
        })
        .transpose()
}

/// `DELETE /v2/order/multi/cancel[?segment=&tag=]`: cancels up to 50 open orders.
pub(super) async fn cancel_all(State(state): State<AppState>, who: Authed, q: QueryMap) -> Result<Response, ApiError> {
    let segment = segment_filter(&q)?;
    let mut engine = state.engine.lock();
    let open = engine.open_orders(&state.market, &who.user_id, segment, q.get("tag").map(String::as_str));
    if open.is_empty() {
        return Err(ApiError::bad_request(
            error_code::ORDER_NOT_FOUND,
            "No open orders to cancel",
        ));
    }
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for id in open.into_iter().take(50) {
        match engine.cancel(&state.market, &who.user_id, &id) {
            Ok(()) => ids.push(id),
            Err(e) => {
                let mut item = order_error(e, "Cancel").item();
                if let Some(o) = item.as_object_mut() {
                    o.insert("order_id".into(), id.into());
                }
                errors.push(item);
            }
        }
    }
    Ok(bulk_response(ids, errors))
}

/// `POST /v2/order/positions/exit[?segment=&tag=]`: market orders closing open positions
/// (not delivery equity), buys first, then sells.
pub(super) async fn exit_all(State(state): State<AppState>, who: Authed, q: QueryMap) -> Result<Response, ApiError> {
    let segment = segment_filter(&q)?;
    let now = state.now();
    let mut engine = state.engine.lock();
    let mut legs: Vec<OrderRequest> = engine
        .open_positions(&who.user_id)
        .into_iter()
        .filter(|(idx, product, _)| {
            let inst = state.market.get(*idx);
            segment.is_none_or(|s| inst.segment == s)
                && !(inst.segment.exchange() != "MCX" && !inst.segment.is_derivative() && *product == Product::Delivery)
        })
        .take(200)
        .map(|(instrument, product, net)| OrderRequest {
            instrument,
            quantity: net.unsigned_abs(),
            product,
            validity: Validity::Day,
            price: 0.0,
            trigger_price: 0.0,
            order_type: OrderType::Market,
            transaction_type: if net > 0 {
                TransactionType::Sell
            } else {
                TransactionType::Buy
            },
            disclosed_quantity: 0,
            tag: q.get("tag").cloned(),
            is_amo: false,
        })
        .collect();
    if legs.is_empty() {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "No open positions to exit",
        ));
    }
    legs.sort_by_key(|l| l.transaction_type == TransactionType::Sell);
    // A position above the freeze quantity leaves in slices below it, as Upstox sends it.
    let ids: Vec<String> = legs
        .into_iter()
        .flat_map(|l| {
            freeze_parts(&state, &l)
                .into_iter()
                .map(move |quantity| OrderRequest { quantity, ..l.clone() })
        })
        .filter_map(|l| engine.place(&state.market, &who.user_id, l, now, true))
        .collect();
    Ok(bulk_response(ids, Vec::new()))
}

/// `GET /v2/order/retrieve-all`.
pub(super) async fn order_book(State(state): State<AppState>, who: Authed) -> ApiResult {
    Ok(success(state.engine.lock().order_book(&state.market, &who.user_id)))
}

/// `GET /v2/order/details?order_id=`.
pub(super) async fn details(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let id = order_id_param(q.get("order_id").map(String::as_str))?;
    let engine = state.engine.lock();
    let order = engine
        .order(&who.user_id, &id)
        .ok_or_else(|| order_error(OrderError::NotFound, ""))?;
    Ok(success(crate::engine::order_json(&state.market, order)))
}

/// `GET /v2/order/history?order_id=&tag=`: every state an order went through.
pub(super) async fn history(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let engine = state.engine.lock();
    let mut out = Vec::new();
    match (q.get("order_id"), q.get("tag")) {
        (Some(id), _) => {
            let id = order_id_param(Some(id))?;
            let order = engine
                .order(&who.user_id, &id)
                .ok_or_else(|| order_error(OrderError::NotFound, ""))?;
            if q.get("tag").is_none_or(|t| order.req.tag.as_deref() == Some(t)) {
                out.extend(order.history_json());
            }
        }
        (None, Some(tag)) => {
            for o in engine.orders_by_tag(&who.user_id, tag) {
                out.extend(o.history_json());
            }
        }
        (None, None) => {
            return Err(
                ApiError::bad_request(error_code::ORDER_ID_REQUIRED, "order_id or tag is required")
                    .with_property("order_id", None),
            );
        }
    }
    Ok(success(out))
}

fn trade_json(state: &AppState, t: &crate::engine::Trade) -> Value {
    let inst = state.market.get(t.instrument);
    json!({
        "exchange": inst.segment.order_exchange(),
        "product": t.product,
        "trading_symbol": inst.quote_symbol,
        "tradingsymbol": inst.quote_symbol,
        "instrument_token": inst.instrument_key,
        "order_type": t.order_type,
        "transaction_type": t.transaction_type,
        "quantity": t.quantity,
        "exchange_order_id": t.exchange_order_id,
        "order_id": t.order_id,
        "exchange_timestamp": order_timestamp(t.time),
        "average_price": t.price,
        "trade_id": t.trade_id,
        "order_ref_id": t.order_ref_id(),
        "order_timestamp": order_timestamp(t.placed_at),
    })
}

/// `GET /v2/order/trades/get-trades-for-day`.
pub(super) async fn trades_for_day(State(state): State<AppState>, who: Authed) -> ApiResult {
    let engine = state.engine.lock();
    Ok(success(
        engine
            .trades(&who.user_id)
            .iter()
            .map(|t| trade_json(&state, t))
            .collect::<Vec<_>>(),
    ))
}

/// `GET /v2/order/trades?order_id=`.
pub(super) async fn trades_by_order(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let id = order_id_param(q.get("order_id").map(String::as_str))?;
    let engine = state.engine.lock();
    if engine.order(&who.user_id, &id).is_none() {
        return Err(order_error(OrderError::NotFound, ""));
    }
    Ok(success(
        engine
            .trades(&who.user_id)
            .iter()
            .filter(|t| t.order_id == id)
            .map(|t| trade_json(&state, t))
            .collect::<Vec<_>>(),
    ))
}
