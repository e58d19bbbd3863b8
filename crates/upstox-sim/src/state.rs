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
        state.admit(
            &record.user_id,
            ApiCategory::of(parts.method.as_str(), parts.uri.path()),
        )?;
        Ok(Authed {
            user_id: record.user_id,
            client_id: record.client_id,
            token,
        })
    }
}
