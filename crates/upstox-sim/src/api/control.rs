//! Control endpoints for tests and demos (`/sim/...`; no token needed, loopback only).

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use upstox_types::error_code;

use crate::config::FaultConfig;
use crate::error::{ApiError, ApiResult, success};
use crate::state::AppState;

/// `GET /sim/state`: the clock, seed and fault settings.
pub(super) async fn state(State(state): State<AppState>) -> ApiResult {
    let now = state.now();
    Ok(success(json!({
        "now": now.to_rfc3339(),
        "now_ist": now.with_timezone(&upstox_types::IST).to_rfc3339(),
        "seed": state.config.seed,
        "faults": *state.faults.read(),
        "instruments": state.market.instruments().len(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClockChange {
    advance_secs: Option<i64>,
    set: Option<chrono::DateTime<chrono::Utc>>,
}

/// `POST /sim/clock` `{"advance_secs": N}` or `{"set": "RFC 3339"}`.
pub(super) async fn clock(State(state): State<AppState>, body: axum::body::Bytes) -> ApiResult {
    let change: ClockChange = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            error_code::INVALID_INPUT,
            format!("expected {{\"advance_secs\": N}} or {{\"set\": \"RFC 3339\"}}: {e}"),
        )
    })?;
    let bad = |e: crate::clock::ClockError| ApiError::bad_request(error_code::INVALID_INPUT, e.to_string());
    if let Some(s) = change.advance_secs {
        state.clock.advance_secs(s).map_err(bad)?;
    }
    if let Some(t) = change.set {
        state.clock.set(t).map_err(bad)?;
    }
    Ok(success(json!({"now": state.now().to_rfc3339()})))
}

/// `POST /sim/faults` with a full or partial `FaultConfig`.
pub(super) async fn faults(State(state): State<AppState>, Json(patch): Json<Value>) -> ApiResult {
    let mut current = serde_json::to_value(state.faults.read().clone()).map_err(|_| ApiError::internal())?;
    if let (Some(cur), Some(p)) = (current.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            cur.insert(k.clone(), v.clone());
        }
    }
    let new: FaultConfig = serde_json::from_value(current)
        .map_err(|e| ApiError::bad_request(error_code::INVALID_INPUT, format!("invalid faults: {e}")))?;
    new.validate()
        .map_err(|e| ApiError::bad_request(error_code::INVALID_INPUT, e.to_string()))?;
    *state.faults.write() = new.clone();
    Ok(success(new))
}

/// `GET /sim/token-requests`: pending v3 access-token requests.
pub(super) async fn token_requests(State(state): State<AppState>) -> ApiResult {
    Ok(success(state.auth.lock().pending_requests()))
}

/// `POST /sim/token-requests/{id}/approve|reject`.
pub(super) async fn token_request_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult {
    let done = match action.as_str() {
        "approve" => super::login::approve(&state, &id).await,
        "reject" => state.auth.lock().take_request(&id).is_some(),
        _ => return Err(ApiError::not_found_path()),
    };
    if done {
        Ok(success(true))
    } else {
        Err(ApiError::bad_request(
            error_code::INVALID_INPUT,
            "no such pending request",
        ))
    }
}
