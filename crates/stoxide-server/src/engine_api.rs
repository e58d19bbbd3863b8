//! The engine's HTTP face (`stoxide engine run`): signed signals in from a vendor's own servers,
//! and the operator's view and controls.
//!
//! - `POST /signals`: a signal's JSON body, signed per strategy — `X-Stoxide-Timestamp` (epoch
//!   seconds, within ±30 s) and `X-Stoxide-Signature` (hex HMAC-SHA256 over
//!   `"{timestamp}.{body}"` under the strategy's secret from the vault). 202 with what became of
//!   each subscription; 400 malformed, 401 unsigned or badly signed (also stale), 404 unknown
//!   strategy or instrument, 409 a signal id already received. Every refusal is recorded.
//! - `GET /signals/{strategy}/{id}`: the fan-out's progress.
//! - `GET /healthz` (200 or 503), `GET /metrics` (Prometheus text), `GET /summary` (JSON).
//! - `POST /kill`: the kill switch; needs `Authorization: Bearer <control token>` (the token
//!   `stoxide engine run` writes, owner-only, beside the vault).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Digest;
use stoxide_engine::desk::Actor;
use stoxide_engine::risk::{Level, TradingState};
use stoxide_engine::signal::{self, Refusal};
use stoxide_engine::{Engine, Kill, SignalOutcome};

/// The most a signal body may be.
const MAX_SIGNAL_BYTES: usize = 16 * 1024;

struct Api {
    engine: Engine,
    vault: stoxide_vault::Vault,
    control: SecretString,
    relay: Option<Arc<dyn Relay>>,
}

/// Where a cluster's node puts the signed signals it receives: on the cluster's stream, for
/// every node to take for the accounts it holds. Answers the stream's sequence and whether the
/// stream had the signal already.
pub trait Relay: Send + Sync {
    fn relay<'a>(&'a self, signal: &'a signal::Signal) -> futures::future::BoxFuture<'a, Result<(u64, bool), String>>;
}

/// The engine's routes. `control` is the bearer token `POST /kill` needs.
pub fn router(engine: Engine, vault: stoxide_vault::Vault, control: SecretString) -> Router {
    routes(Api {
        engine,
        vault,
        control,
        relay: None,
    })
}

/// A cluster node's routes: as [`router`], but a signed signal goes to `relay` (202 `queued`,
/// 409 when the stream had it already) instead of into this node's engine alone.
pub fn router_relaying(
    engine: Engine,
    vault: stoxide_vault::Vault,
    control: SecretString,
    relay: Arc<dyn Relay>,
) -> Router {
    routes(Api {
        engine,
        vault,
        control,
        relay: Some(relay),
    })
}

fn routes(api: Api) -> Router {
    let api = Arc::new(api);
    Router::new()
        .route("/signals", post(signals))
        .route("/signals/{strategy}/{id}", get(progress))
        .route("/healthz", get(healthz))
        .route("/summary", get(summary))
        .route("/metrics", get(metrics))
        .route("/kill", post(kill))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_SIGNAL_BYTES))
        .with_state(api)
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": message.into()}))).into_response()
}

fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
        Refusal::Unsigned | Refusal::BadSignature | Refusal::Stale { .. } => StatusCode::UNAUTHORIZED,
        Refusal::UnknownStrategy(_) | Refusal::NotTraded(_) => StatusCode::NOT_FOUND,
        // The engine's own state, not the sender's mistake: a retry after the fix succeeds.
        Refusal::NotLoaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Duplicate(_) => StatusCode::CONFLICT,
    }
}

/// The strategy a body names, read before the signature is checked (to find its secret).
#[derive(Deserialize)]
struct Named {
    strategy: String,
}

async fn signals(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = Utc::now();
    let Ok(named) = serde_json::from_slice::<Named>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the body is not a signal: JSON with strategy, signal_id, instrument_key, action and reference_price",
        );
    };
    let secret = match api.vault.signing_secret(&named.strategy).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                format!(
                    "strategy {:?} takes no signed signals here (set its secret: `stoxide strategy secret {}`)",
                    named.strategy, named.strategy
                ),
            );
        }
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(r) = signal::verify(
        secret.expose_secret().as_bytes(),
        header("x-stoxide-timestamp"),
        header("x-stoxide-signature"),
        &body,
        now,
    ) {
        tracing::warn!(strategy = %named.strategy, refusal = %r, "signal refused before parsing");
        return problem(refusal_status(&r), r.to_string());
    }
    let parsed = match signal::parse(&body, now) {
        Ok(s) => s,
        Err(r) => return problem(refusal_status(&r), r.to_string()),
    };
    if let Some(relay) = &api.relay {
        return match relay.relay(&parsed).await {
            Ok((_, true)) => problem(StatusCode::CONFLICT, Refusal::Duplicate(parsed.id.clone()).to_string()),
            Ok((sequence, false)) => (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({
                    "strategy": parsed.strategy, "signal_id": parsed.id,
                    "outcome": "queued", "sequence": sequence,
                })),
            )
                .into_response(),
            Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
        };
    }
    match api.engine.submit(parsed, "http").await {
        Ok(report) => {
            let (status, error) = match &report.outcome {
                SignalOutcome::Accepted => (StatusCode::ACCEPTED, None),
                SignalOutcome::Refused { reason } => (refusal_status(reason), Some(reason.to_string())),
            };
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            if let (Some(e), Some(o)) = (error, body.as_object_mut()) {
                o.insert("error".into(), e.into());
            }
            (status, Json(body)).into_response()
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn progress(State(api): State<Arc<Api>>, Path((strategy, id)): Path<(String, String)>) -> Response {
    // Once every order ended, what the lanes recorded of them is committed before the answer
    // says so: a reader of the store after "settled" finds the final states.
    if api
        .engine
        .progress(&strategy, &id)
        .is_some_and(|p| p.settled >= p.orders)
    {
        let _ = api.engine.flush().await;
    }
    match api.engine.progress(&strategy, &id) {
        Some(p) => Json(p).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("no signal {id:?} of {strategy:?} since this engine started"),
        ),
    }
}

async fn healthz(State(api): State<Arc<Api>>) -> Response {
    let s = api.engine.summary();
    let status = if s.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ok": s.healthy(),
            "lanes": s.lanes.len(),
            "accounts_needing_login": s.accounts_needing_login,
            "journal_failures": s.journal_failures,
        })),
    )
        .into_response()
}

async fn summary(State(api): State<Arc<Api>>) -> Response {
    Json(api.engine.summary()).into_response()
}

async fn metrics(State(api): State<Arc<Api>>) -> Response {
    use std::fmt::Write as _;
    let s = api.engine.summary();
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE stoxide_engine_signals_total counter");
    let _ = writeln!(
        out,
        "stoxide_engine_signals_total{{outcome=\"accepted\"}} {}",
        s.signals_accepted
    );
    let _ = writeln!(
        out,
        "stoxide_engine_signals_total{{outcome=\"refused\"}} {}",
        s.signals_refused
    );
    let _ = writeln!(out, "# TYPE stoxide_engine_intents_total counter");
    for (state, n) in &s.intents {
        let _ = writeln!(out, "stoxide_engine_intents_total{{state=\"{state}\"}} {n}");
    }
    let queued: usize = s.lanes.iter().map(|l| l.queued).sum();
    let working: usize = s.lanes.iter().map(|l| l.working).sum();
    let unknown: usize = s.lanes.iter().map(|l| l.unknown).sum();
    let limited: u64 = s.lanes.iter().map(|l| l.rate_limited).sum();
    for (name, v) in [
        ("stoxide_engine_lanes", s.lanes.len() as u64),
        ("stoxide_engine_orders_queued", queued as u64),
        ("stoxide_engine_orders_working", working as u64),
        ("stoxide_engine_orders_unknown", unknown as u64),
        (
            "stoxide_engine_accounts_needing_login",
            s.accounts_needing_login.len() as u64,
        ),
    ] {
        let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
    }
    let _ = writeln!(
        out,
        "# TYPE stoxide_engine_rate_limited_total counter\nstoxide_engine_rate_limited_total {limited}"
    );
    let _ = writeln!(
        out,
        "# TYPE stoxide_engine_journal_failures_total counter\nstoxide_engine_journal_failures_total {}",
        s.journal_failures
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `POST /kill`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KillBody {
    /// global, user or subscription.
    level: String,
    #[serde(default)]
    target: String,
    /// halted (default), reducing, or active (lifts the switch).
    #[serde(default)]
    state: Option<String>,
    #[serde(default = "yes")]
    cancel: bool,
    #[serde(default)]
    exit: bool,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

fn yes() -> bool {
    true
}

fn digest(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

async fn kill(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compared as digests, so the comparison's time says nothing about the token.
    if given.is_empty() || digest(given) != digest(api.control.expose_secret()) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "the kill switch needs the engine's control token (Authorization: Bearer …, from engine.token)",
        );
    }
    let b: KillBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("the kill body is not valid: {e}")),
    };
    let level = match b.level.as_str() {
        "global" => Level::Global,
        "user" => Level::User,
        "subscription" => Level::Subscription,
        other => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("level {other:?} is not one of global, user, subscription"),
            );
        }
    };
    let state = match b.state.as_deref().unwrap_or("halted") {
        "halted" => TradingState::Halted,
        "reducing" => TradingState::Reducing,
        "active" => TradingState::Active,
        other => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("state {other:?} is not one of halted, reducing, active"),
            );
        }
    };
    if level != Level::Global && b.target.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "a user or subscription kill needs a target");
    }
    let actor = Actor {
        by: b.by.unwrap_or_else(|| "operator".into()),
        from: "control api".into(),
    };
    let kill = Kill {
        level,
        target: b.target,
        state,
        cancel: b.cancel && state != TradingState::Active,
        exit: b.exit && state != TradingState::Active,
        note: b.note,
    };
    match api.engine.kill(kill, &actor).await {
        Ok(report) => Json(report).into_response(),
        Err(e @ (stoxide_engine::Error::UnknownAccount(_) | stoxide_engine::Error::UnknownSubscription(_))) => {
            problem(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
