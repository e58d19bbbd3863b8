//! Shared state of a running simulator and the request extractor that authenticates and
//! rate-limits every token-bearing call.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use parking_lot::{Mutex, RwLock};
use upstox_types::{ApiCategory, SlidingWindow, error_code};

use crate::auth::AuthStore;
use crate::clock::SimClock;
use crate::config::{FaultConfig, SimConfig};
use crate::engine::Engine;
use crate::error::ApiError;
use crate::market::Market;

/// Gzipped instrument files by file name (`complete.json.gz`, `NSE.json.gz`, ...).
pub type InstrumentFiles = HashMap<&'static str, bytes::Bytes>;

/// Everything the handlers share.
#[derive(Debug)]
pub struct SimState {
    pub config: SimConfig,
    pub clock: SimClock,
    pub market: Market,
    pub auth: Mutex<AuthStore>,
    pub engine: Mutex<Engine>,
    pub limiter: Mutex<HashMap<(String, ApiCategory), SlidingWindow>>,
    pub faults: RwLock<FaultConfig>,
    pub instrument_files: OnceLock<InstrumentFiles>,
    pub base_url: RwLock<String>,
    pub feed: crate::feed::FeedHub,
}

pub type AppState = Arc<SimState>;

impl SimState {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Counts one request of `user` in `category`.
    ///
    /// # Errors
    /// 429 `UDAPI10005` when any window is full.
    pub fn admit(&self, user: &str, category: ApiCategory) -> Result<(), ApiError> {
        let mut limiter = self.limiter.lock();
        let window = limiter
            .entry((user.to_owned(), category))
            .or_insert_with(|| SlidingWindow::new(self.config.rate_limits.for_category(category)));
        if window.try_admit(std::time::Instant::now()) {
            Ok(())
        } else {
            Err(ApiError::rate_limited())
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed {
    pub user_id: String,
    pub client_id: String,
    pub token: String,
}

/// The rules of order APIs: the app's static-IP allowlist (against the peer address) and the
/// registered algo names (against `X-Algo-Name`).
fn order_api_rules(parts: &Parts, state: &AppState, client_id: &str) -> Result<(), ApiError> {
    let allowed = state
        .config
        .apps
        .iter()
        .find(|a| a.client_id == client_id)
        .and_then(|a| a.static_ips.clone());
    if let Some(allowed) = allowed {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if !peer.is_some_and(|ip| allowed.contains(&ip)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                error_code::STATIC_IP_NOT_WHITELISTED,
                format!(
                    "Static IP {} is not whitelisted for this app",
                    peer.map(|p| p.to_string()).unwrap_or_else(|| "unknown".into())
                ),
            ));
        }
    }
    if let (Some(names), Some(given)) = (&state.config.algo_names, parts.headers.get("x-algo-name")) {
        let given = given.to_str().unwrap_or("");
        if !names.iter().any(|n| n == given) {
            return Err(ApiError::bad_request(
                error_code::INVALID_ALGO_NAME,
                format!("Invalid algo name {given:?} in X-Algo-Name"),
            ));
        }
    }
    Ok(())
}

/// Takes the bearer token out of the headers.
pub fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::invalid_token)?;
        let now = state.now();
        let record = {
            let auth = state.auth.lock();
            auth.check(&token, now)?.clone()
        };
        if record.extended && parts.method != axum::http::Method::GET {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                error_code::EXTENDED_TOKEN_NOT_PERMITTED,
                "The API you are trying to access is not permitted with an extended_token",
            ));
        }
        let category = ApiCategory::of(parts.method.as_str(), parts.uri.path());
        if category != ApiCategory::Standard {
            order_api_rules(parts, state, &record.client_id)?;
        }
        state.admit(&record.user_id, category)?;
        Ok(Authed {
            user_id: record.user_id,
            client_id: record.client_id,
            token,
        })
    }
}
