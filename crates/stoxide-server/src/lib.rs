//! `stoxide-server`: the web dashboard (`stoxide serve`, and the heart of `stoxide demo`).
//!
//! - Pages rendered on the server (askama templates in `templates/`) with a little plain
//!   JavaScript (`static/app.js`); live data pushed over Server-Sent Events (`/events`).
//! - Token status of every account in the vault, "Log in to Upstox" and "Refresh token" buttons
//!   that run Upstox's OAuth dialog and come back to `/oauth/callback`.
//! - NIFTY 50, BANK NIFTY and any instrument added by search over the instrument master: last
//!   price, change, a live chart of the session, last-tick age ([`hub::StreamHub`]).
//! - Stream start/stop, its health in plain words, and the doctor checklist (`/doctor`).
//! - Access ([`auth`]): one local admin (argon2id), HttpOnly SameSite session cookies, a CSRF
//!   token on every form, security headers on every answer. Without a session only `/login`,
//!   `/oauth/callback` (which then asks for one), `/metrics`, `/healthz` and `/static` answer.
//! - Prometheus metrics at `/metrics` ([`metrics`]): ticks, reconnects, REST calls, rate-limit
//!   waits — no account data.
//!
//! - The portal's JSON API ([`portal_api`], `/api/v1`): operators and clients sign in, each sees
//!   only their own accounts, subscriptions, orders, positions and audit records (404 for anyone
//!   else's); described at `/api/v1/openapi.json`.
//!
//! - The engine's HTTP face ([`engine_api`]): signed signals, progress, health, metrics, the
//!   kill switch.
//!
//! Tests: `cargo test -p stoxide-server` (router and a real socket against the simulator); the
//! browser test runs when `STOXIDE_BROWSER_TESTS=1` (set by `scripts/test.sh`).

pub mod auth;
mod chart;
pub mod engine_api;
mod error;
pub mod hub;
pub mod metrics;
mod names;
mod pages;
pub mod portal_api;
mod portal_forms;
mod portal_pages;
mod words;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use stoxide_app::clients::Clients;
use stoxide_app::linking::Logins;

pub use error::{Error, Result};
/// The Upstox app that accounts are linked with; its redirect URI must reach this server's
/// `/oauth/callback`.
pub use stoxide_app::linking::LinkApp;

/// The instruments on a fresh dashboard.
pub const DEFAULT_INSTRUMENTS: [&str; 2] = ["NSE_INDEX|Nifty 50", "NSE_INDEX|Nifty Bank"];

/// Where linking comes back to.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The vault's directory (also holds `dashboard-admin.json`).
    pub data_dir: PathBuf,
    /// The app for "Log in to Upstox" (else an app stored in the vault whose redirect URI ends
    /// in `/oauth/callback`).
    pub app: Option<LinkApp>,
    /// Instruments shown from the start.
    pub instruments: Vec<String>,
    /// Portal operators act only with two-factor sign-in (off only for a throwaway demo).
    pub operator_two_factor: bool,
}

/// Shared by every request.
pub struct Shared {
    pub config: ServerConfig,
    /// The process's one vault handle, shared by every handler and the stream.
    pub vault: stoxide_vault::Vault,
    pub admin: Arc<auth::AdminStore>,
    pub sessions: auth::Sessions,
    /// The portal's people (operators and clients) and their scoped views.
    pub people: stoxide_people::People,
    /// The portal's use cases (subscribe, consent, inputs, kill switch), scoped per person.
    pub portal: stoxide_portal::Portal,
    pub hub: Arc<hub::StreamHub>,
    pub metrics: Arc<metrics::Metrics>,
    /// Logins started from this dashboard, each tied to the browser session that started it.
    logins: Logins,
    instruments: tokio::sync::OnceCell<upstox_client::InstrumentMaster>,
    /// One client per base URL, one rate limiter for all, every call counted for `/metrics`.
    pub clients: Clients,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The state handlers get.
pub type AppState = Arc<Shared>;

impl Shared {
    /// The state for `config`.
    ///
    /// # Errors
    /// A broken admin file.
    pub fn new(config: ServerConfig, vault: stoxide_vault::Vault) -> Result<AppState> {
        let admin = Arc::new(auth::AdminStore::open(&config.data_dir)?);
        let metrics = Arc::new(metrics::Metrics::default());
        let hub = hub::StreamHub::new(metrics.clone(), config.instruments.clone());
        let observed = metrics.clone();
        let observer = upstox_client::CallObserver(Arc::new(move |call| {
            let status = call.status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            observed.rest_call(&metrics::endpoint_label(call.method, call.path), &status);
        }));
        let people = stoxide_people::People::new(vault.store().clone(), stoxide_people::Limits::default())
            .with_operator_two_factor(config.operator_two_factor);
        let portal = stoxide_portal::Portal::new(people.clone(), vault.clone());
        Ok(Arc::new(Self {
            config,
            people,
            portal,
            sessions: auth::Sessions::new(vault.store().clone()),
            vault,
            admin,
            hub,
            metrics,
            logins: Logins::new(),
            instruments: tokio::sync::OnceCell::new(),
            clients: Clients::new(upstox_client::RateLimiter::default(), Some(observer)),
        }))
    }

    /// The (token-less) client for `base_url`.
    ///
    /// # Errors
    /// A malformed base URL.
    pub fn client(&self, base_url: &str) -> Result<upstox_client::UpstoxClient> {
        Ok(self.clients.client(base_url)?)
    }

    /// Time the clients waited in the rate limiter.
    pub fn rate_limit_wait(&self) -> std::time::Duration {
        self.clients.limiter().total_wait()
    }
}

async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn static_js() -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/app.js"),
    )
}

async fn static_css() -> impl axum::response::IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/app.css"),
    )
}

/// The dashboard's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/accounts/link", post(pages::link))
        .route("/accounts/{id}/refresh", post(pages::refresh))
        .route(CALLBACK_PATH, get(pages::oauth_callback))
        .route("/stream/start", post(pages::stream_start))
        .route("/stream/stop", post(pages::stream_stop))
        .route("/instruments", post(pages::add_instrument))
        .route("/instruments/search", get(pages::search))
        .route("/events", get(pages::events))
        .route("/chart", get(pages::chart))
        .route("/doctor", get(pages::doctor))
        .route("/metrics", get(pages::metrics))
        .route("/healthz", get(pages::healthz))
        .route("/static/app.js", get(static_js))
        .route("/static/app.css", get(static_css))
        .merge(portal_api::router())
        .merge(portal_pages::router())
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves the dashboard on `listener` until `shutdown` resolves; stops the stream on the way out.
///
/// # Errors
/// The server failing.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer's address reaches the handlers (sign-in is throttled per address).
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    state.hub.stop().await;
    result
}
