//! Profile and funds (v2 and v3).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Timelike;
use serde_json::json;
use upstox_types::{IST, error_code};

use crate::error::{ApiError, ApiResult, success};
use crate::state::{AppState, Authed};

/// A user's profile as Upstox writes it: the profile endpoint's `data`, and the fields the
/// token exchange repeats beside the tokens (one definition for both).
pub(crate) fn profile_json(user: &crate::config::UserConfig) -> serde_json::Map<String, serde_json::Value> {
    let v = json!({
        "email": user.email.clone().unwrap_or_else(|| format!("{}@sim.stoxide.local", user.user_id.to_lowercase())),
        "exchanges": user.exchanges.clone().unwrap_or_else(|| {
            ["NSE", "NFO", "BSE", "CDS", "BFO", "BCD", "MCX"].map(String::from).to_vec()
        }),
        "products": ["D", "CO", "I"],
        "broker": "UPSTOX",
        "user_id": user.user_id,
        "user_name": user.user_name,
        "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        "user_type": "individual",
        "poa": false,
        "ddpi": false,
        "is_active": true,
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// `GET /v2/user/profile`.
pub(super) async fn profile(State(state): State<AppState>, who: Authed) -> ApiResult {
    let user = state
        .auth
        .lock()
        .user(&who.user_id)
        .cloned()
        .ok_or_else(ApiError::invalid_token)?;
    Ok(success(serde_json::Value::Object(profile_json(&user))))
}

/// The funds service sleeps from midnight to 05:30 IST.
fn funds_window_open(state: &AppState) -> Result<(), ApiError> {
    let t = state.now().with_timezone(&IST).time();
    if t.hour() < 5 || (t.hour() == 5 && t.minute() < 30) {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            error_code::SERVICE_HOURS,
            "Funds service is unavailable from 00:00 to 05:30 IST",
        ));
    }
    Ok(())
}

fn funds(state: &AppState, who: &Authed) -> Result<(f64, f64, f64), ApiError> {
    funds_window_open(state)?;
    let now = state.now();
    state
        .engine
        .lock()
        .funds(&state.market, &who.user_id, now)
        .ok_or_else(ApiError::invalid_token)
}

/// `GET /v2/user/get-funds-and-margin[?segment=SEC|COM]`.
pub(super) async fn funds_v2(State(state): State<AppState>, who: Authed) -> ApiResult {
    let (available, used, opening) = funds(&state, &who)?;
    let zero = json!({"used_margin": 0.0, "payin_amount": 0.0, "span_margin": 0.0, "adhoc_margin": 0.0, "notional_cash": 0.0, "available_margin": 0.0, "exposure_margin": 0.0});
    Ok(success(json!({
        "equity": {
            "used_margin": used,
            "payin_amount": 0.0,
            "span_margin": 0.0,
            "adhoc_margin": 0.0,
            "notional_cash": opening,
            "available_margin": available,
            "exposure_margin": 0.0,
        },
        "commodity": zero,
    })))
}

/// `GET /v3/user/get-funds-and-margin`.
pub(super) async fn funds_v3(State(state): State<AppState>, who: Authed) -> ApiResult {
    let (available, used, opening) = funds(&state, &who)?;
    let realised_and_unrealised = available + used - opening;
    Ok(success(json!({
        "available_to_trade": {
            "total": available,
            "cash_available_to_trade": {
                "total": available,
                "cash": {"opening_balance": opening, "added_today": 0.0, "withdrawn_today": 0.0, "amount_from_stock_sale": 0.0, "unpaid_charges": 0.0},
                "margin_used": {
                    "total": used,
                    "mtf": 0.0,
                    "loss": {"total": realised_and_unrealised.min(0.0).abs(), "realised": 0.0, "unrealised": 0.0},
                    "span_exposure": used,
                    "cash_margin_var_elm": 0.0,
                    "premium_present": 0.0,
                    "delivery_margin": {"total": 0.0, "equity": 0.0, "fo_settlement": 0.0},
                },
            },
            "pledge_available_to_trade": {
                "total": 0.0,
                "margin_from_pledge": {"total": 0.0, "equity": 0.0, "mutual_funds": 0.0},
                "margin_used": {"total": 0.0, "mtf": 0.0, "span_exposure": 0.0, "cash_margin_var_elm": 0.0, "premium_present": 0.0, "delivery_margin": {"total": 0.0, "equity": 0.0, "fo_settlement": 0.0}},
            },
        },
        "unavailable_to_trade": {
            "cash_unavailable_to_trade": {"unsettled_profit": {"todays_profit": realised_and_unrealised.max(0.0), "previous_days": 0.0}},
            "pledge_unavailable_to_trade": {"equity": 0.0, "mutual_funds": 0.0},
        },
    })))
}
