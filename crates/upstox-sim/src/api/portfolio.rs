//! Positions and holdings, derived from the paper engine's fills.

use axum::extract::State;

use crate::error::{ApiResult, success};
use crate::state::{AppState, Authed};

/// `GET /v2/portfolio/short-term-positions`.
pub(super) async fn positions(State(state): State<AppState>, who: Authed) -> ApiResult {
    let now = state.now();
    let mut rows = state.engine.lock().positions(&state.market, &who.user_id, now);
    for r in &mut rows {
        if let Some(o) = r.as_object_mut() {
            o.remove("update_type");
            o.remove("instrument_key");
        }
    }
    Ok(success(rows))
}

/// `GET /v2/portfolio/long-term-holdings`.
pub(super) async fn holdings(State(state): State<AppState>, who: Authed) -> ApiResult {
    let now = state.now();
    Ok(success(state.engine.lock().holdings(&state.market, &who.user_id, now)))
}
