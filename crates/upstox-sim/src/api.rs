//! The HTTP surface: every REST path of api.upstox.com and api-hft.upstox.com the simulator
//! serves, the instrument files, and the `/sim/...` control endpoints.

mod calendar;
mod charges;
mod control;
mod gtt;
mod history;
mod instruments;
mod login;
mod options;
mod orders;
mod pnl;
mod portfolio;
mod quotes;
mod user;

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use rand::Rng;
use upstox_types::error_code;

use crate::error::ApiError;
use crate::state::AppState;

pub use instruments::build_instrument_files;

/// The router of the whole simulator.
pub fn app(state: AppState) -> Router {
    Router::new()
        // Login
        .route(
            "/v2/login/authorization/dialog",
            get(login::dialog).post(login::dialog_submit),
        )
        .route("/v2/login/authorization/token", post(login::token))
        .route("/v3/login/auth/token/request/{client_id}", post(login::token_request))
        .route("/v2/logout", delete(login::logout))
        // User
        .route("/v2/user/profile", get(user::profile))
        .route("/v2/user/get-funds-and-margin", get(user::funds_v2))
        .route("/v3/user/get-funds-and-margin", get(user::funds_v3))
        // Orders
        .route("/v2/order/place", post(orders::place_v2))
        .route("/v3/order/place", post(orders::place_v3))
        .route("/v2/order/modify", put(orders::modify_v2))
        .route("/v3/order/modify", put(orders::modify_v3))
        .route("/v2/order/cancel", delete(orders::cancel_v2))
        .route("/v3/order/cancel", delete(orders::cancel_v3))
        .route("/v3/order/gtt/place", post(gtt::place))
        .route("/v3/order/gtt/modify", put(gtt::modify))
        .route("/v3/order/gtt/cancel", delete(gtt::cancel))
        .route("/v3/order/gtt", get(gtt::get))
        .route("/v2/order/multi/place", post(orders::multi_place))
        .route("/v2/order/multi/cancel", delete(orders::cancel_all))
        .route("/v2/order/positions/exit", post(orders::exit_all))
        .route("/v2/order/retrieve-all", get(orders::order_book))
        .route("/v2/order/details", get(orders::details))
        .route("/v2/order/history", get(orders::history))
        .route("/v2/order/trades/get-trades-for-day", get(orders::trades_for_day))
        .route("/v2/order/trades", get(orders::trades_by_order))
        // Portfolio
        .route("/v2/charges/margin", post(charges::margin))
        .route("/v2/charges/brokerage", get(charges::brokerage))
        .route("/v2/portfolio/short-term-positions", get(portfolio::positions))
        .route("/v2/portfolio/long-term-holdings", get(portfolio::holdings))
        // Quotes
        .route("/v2/market-quote/ltp", get(quotes::ltp_v2))
        .route("/v3/market-quote/ltp", get(quotes::ltp_v3))
        .route("/v2/market-quote/ohlc", get(quotes::ohlc_v2))
        .route("/v3/market-quote/ohlc", get(quotes::ohlc_v3))
        .route("/v2/market-quote/quotes", get(quotes::full_quote))
        .route("/v3/market-quote/option-greek", get(quotes::option_greeks))
        .route("/v2/market/status/{exchange}", get(quotes::market_status))
        .route("/v2/trade/profit-loss/metadata", get(pnl::metadata))
        .route("/v2/trade/profit-loss/data", get(pnl::data))
        .route("/v2/trade/profit-loss/charges", get(pnl::charges))
        .route("/v2/market/holidays", get(calendar::holidays))
        .route("/v2/market/holidays/{date}", get(calendar::holiday))
        .route("/v2/market/timings/{date}", get(calendar::timings))
        // History
        .route(
            "/v2/historical-candle/intraday/{key}/{interval}",
            get(history::intraday_v2),
        )
        .route(
            "/v2/historical-candle/{key}/{interval}/{to}",
            get(history::historical_v2_to),
        )
        .route(
            "/v2/historical-candle/{key}/{interval}/{to}/{from}",
            get(history::historical_v2),
        )
        .route(
            "/v3/historical-candle/intraday/{key}/{unit}/{interval}",
            get(history::intraday_v3),
        )
        .route(
            "/v3/historical-candle/{key}/{unit}/{interval}/{to}",
            get(history::historical_v3_to),
        )
        .route(
            "/v3/historical-candle/{key}/{unit}/{interval}/{to}/{from}",
            get(history::historical_v3),
        )
        // Options
        .route("/v2/option/contract", get(options::contracts))
        .route("/v2/option/chain", get(options::chain))
        // WebSocket feeds
        .route(
            "/v3/feed/market-data-feed/authorize",
            get(crate::feed::market_authorize),
        )
        .route("/v3/feed/market-data-feed", get(crate::feed::market_direct))
        .route(
            "/v3/feed/market-data-feeder/upstox-developer-api/feeds",
            get(crate::feed::market_connect),
        )
        .route(
            "/v2/feed/portfolio-stream-feed/authorize",
            get(crate::feed::portfolio_authorize),
        )
        .route("/v2/feed/portfolio-stream-feed", get(crate::feed::portfolio_direct))
        .route(
            "/v2/feed/portfolio-stream-feeder/upstox-developer-api/feeds",
            get(crate::feed::portfolio_connect),
        )
        .route("/sim/feed", get(crate::feed::status).post(crate::feed::control))
        // Instrument master (same layout as the BOD files on the assets host)
        .route("/market-quote/instruments/exchange/{file}", get(instruments::file))
        // Control
        .route("/sim/state", get(control::state))
        .route("/sim/clock", post(control::clock))
        .route("/sim/faults", post(control::faults))
        .route("/sim/token-requests", get(control::token_requests))
        .route("/sim/token-requests/{id}/{action}", post(control::token_request_action))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .layer(middleware::from_fn(envelope_rejections))
        .with_state(state)
}

/// axum answers what it refuses before a handler runs (a body over the size limit, JSON that
/// does not parse, a wrong content type) in plain text; Upstox answers every error in its JSON
/// envelope. This rewrites those answers, keeping their status. Feed handshake refusals stay
/// plain text, as the feed answers them.
async fn envelope_rejections(req: Request, next: Next) -> Response {
    let feed = req.uri().path().contains("/feed/");
    let response = next.run(req).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if feed || !plain || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "Request body is too large".to_owned()
    } else if detail.is_empty() {
        status.canonical_reason().unwrap_or("Invalid input").to_owned()
    } else {
        detail
    };
    ApiError::new(status, error_code::INVALID_INPUT, message).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found_path()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        error_code::NOT_SUPPORTED,
        "Request method not supported",
    )
}

/// Latency and failure injection for API paths (never for control paths or instrument files).
async fn inject_faults(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !(path.starts_with("/v2/") || path.starts_with("/v3/")) {
        return next.run(req).await;
    }
    let faults = state.faults.read().clone();
    let is_write = req.method() != axum::http::Method::GET;
    let (delay, roll_error, roll_hang, roll_lost, roll_write, roll_limit, roll_late) = {
        let mut rng = rand::rng();
        let jitter = if faults.latency_jitter_ms > 0 {
            rng.random_range(0..faults.latency_jitter_ms)
        } else {
            0
        };
        (
            faults.latency_ms + jitter,
            rng.random::<f64>(),
            rng.random::<f64>(),
            rng.random::<f64>(),
            rng.random::<f64>(),
            rng.random::<f64>(),
            rng.random::<f64>(),
        )
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if roll_limit < faults.rate_limited_rate {
        return ApiError::rate_limited().into_response();
    }
    if roll_error < faults.error_rate || (is_write && roll_write < faults.write_error_rate) {
        return ApiError::internal().into_response();
    }
    if roll_hang < faults.timeout_rate {
        tokio::time::sleep(Duration::from_millis(faults.timeout_hang_ms.max(1))).await;
        return ApiError::new(StatusCode::GATEWAY_TIMEOUT, error_code::INTERNAL, "Gateway timeout").into_response();
    }
    let response = if is_write && roll_late < faults.late_write_rate {
        // Carried out later on a task of its own: a caller that stopped waiting does not stop it.
        let late = Duration::from_millis(faults.late_write_ms);
        let work = tokio::spawn(async move {
            tokio::time::sleep(late).await;
            next.run(req).await
        });
        match work.await {
            Ok(response) => response,
            Err(_) => ApiError::internal().into_response(),
        }
    } else {
        next.run(req).await
    };
    // Lost answers are injected on writes only: they model a place/modify/cancel whose outcome
    // the caller cannot know, which the caller then checks with (working) reads.
    if is_write && roll_lost < faults.lost_response_rate {
        // The work is done; the caller only learns that something failed.
        return ApiError::internal().into_response();
    }
    response
}

/// Query parameters as a map (so handlers choose their own error codes).
pub(crate) type QueryMap = axum::extract::Query<HashMap<String, String>>;

/// The comma-separated instrument keys of a quote request (`instrument_key` or `symbol`).
pub(crate) fn quote_keys(q: &HashMap<String, String>, max: usize) -> Result<Vec<String>, ApiError> {
    let raw = q
        .get("instrument_key")
        .or_else(|| q.get("symbol"))
        .map(String::as_str)
        .unwrap_or("");
    let keys: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Err(ApiError::bad_request(
            error_code::INVALID_QUOTE_KEY,
            "One of either symbol or instrument_key is required",
        )
        .with_property("instrument_key", None));
    }
    if keys.len() > max {
        return Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            format!("At most {max} instrument keys per request"),
        )
        .with_property("instrument_key", None));
    }
    for k in &keys {
        if k.parse::<upstox_types::InstrumentKey>().is_err() {
            return Err(
                ApiError::bad_request(error_code::INVALID_INSTRUMENT_KEY, "Invalid Instrument key")
                    .with_property("instrument_key", Some(k.clone().into())),
            );
        }
    }
    Ok(keys)
}
