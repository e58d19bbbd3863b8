//! The WebSocket feeds: Market Data Feed v3 (binary protobuf frames) and the portfolio stream
//! (JSON text frames), with Upstox's handshake rules and fault injection.
//!
//! Handshake rules (api-facts §9–§10): `.../authorize` answers a single-use authorized URI; a
//! direct connection with the Bearer header is answered 302 to such a URI; a reused or stale URI
//! or a bad token is refused 401; an app without feed permission, or a user over the connection
//! limit, is refused 403. Control: `POST /sim/feed {"drop": true, "stall": bool, "refuse": 403}`.

mod market;
mod portfolio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use crate::api::QueryMap;
use crate::error::{ApiError, ApiResult, success};
use crate::state::{AppState, Authed, SimState};

/// Which feed an authorized URI opens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FeedKind {
    Market,
    Portfolio { update_types: Vec<String> },
}

#[derive(Debug, Clone)]
struct PendingConnect {
    user_id: String,
    client_id: String,
    token: String,
    issued: Instant,
    kind: FeedKind,
}

/// Feed state shared by the handlers.
#[derive(Debug)]
pub struct FeedHub {
    codes: Mutex<HashMap<String, PendingConnect>>,
    connections: Mutex<HashMap<String, usize>>,
    /// Refuse every handshake with this status (fault injection).
    refuse: Mutex<Option<u16>>,
    stall: watch::Sender<bool>,
    drop_all: broadcast::Sender<()>,
    stalled_flag: AtomicBool,
    /// Where market-data frames' send times go (`[feed] send_log`), opened on first use.
    send_log: std::sync::OnceLock<Option<SendLog>>,
}

/// The send-time recording: lines handed to a writer thread, so a send never waits on a disk.
#[derive(Debug)]
pub(crate) struct SendLog {
    tx: std::sync::mpsc::Sender<String>,
}

impl SendLog {
    fn open(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::Builder::new().name("sim-send-log".into()).spawn(move || {
            while let Ok(line) = rx.recv() {
                let mut ok = out.write_all(line.as_bytes()).is_ok();
                // Whatever else is waiting goes in the same write; flushed when drained.
                while let Ok(more) = rx.try_recv() {
                    ok &= out.write_all(more.as_bytes()).is_ok();
                }
                if !ok || out.flush().is_err() {
                    tracing::warn!("the feed's send log cannot be written; no more send times are kept");
                    return;
                }
            }
        })?;
        Ok(Self { tx })
    }

    /// Records a frame of `keys` with `current_ts`, leaving now.
    pub(crate) fn stamp<'a>(&self, current_ts: i64, keys: impl Iterator<Item = &'a str>) {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut line = format!("{ns}\t{current_ts}");
        for k in keys {
            line.push('\t');
            line.push_str(k);
        }
        line.push('\n');
        let _ = self.tx.send(line);
    }
}

impl Default for FeedHub {
    fn default() -> Self {
        Self {
            codes: Mutex::default(),
            connections: Mutex::default(),
            refuse: Mutex::new(None),
            stall: watch::channel(false).0,
            drop_all: broadcast::channel(16).0,
            stalled_flag: AtomicBool::new(false),
            send_log: std::sync::OnceLock::new(),
        }
    }
}

/// Counts a user's open market connection for as long as it lives.
struct ConnectionGuard {
    state: AppState,
    user: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut c = self.state.feed.connections.lock();
        if let Some(n) = c.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
    }
}

fn ws_base(state: &SimState) -> String {
    state.base_url.read().replacen("http://", "ws://", 1)
}

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..16).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

impl FeedHub {
    /// The send-time recording, when `[feed] send_log` names one (opened on first use; a file
    /// that cannot be created is said once and nothing is recorded).
    pub(crate) fn send_log(&self, path: Option<&std::path::Path>) -> Option<&SendLog> {
        self.send_log
            .get_or_init(|| {
                let path = path?;
                SendLog::open(path)
                    .map_err(
                        |e| tracing::warn!(path = %path.display(), error = %e, "the feed's send log cannot be created"),
                    )
                    .ok()
            })
            .as_ref()
    }

    fn authorize(&self, state: &SimState, who: &Authed, kind: FeedKind) -> String {
        let code = new_code();
        let request_id = new_code();
        let path = match &kind {
            FeedKind::Market => "/v3/feed/market-data-feeder/upstox-developer-api/feeds".to_owned(),
            FeedKind::Portfolio { .. } => "/v2/feed/portfolio-stream-feeder/upstox-developer-api/feeds".to_owned(),
        };
        let update_types = match &kind {
            FeedKind::Portfolio { update_types } => format!("&update_types={}", update_types.join("%2C")),
            FeedKind::Market => String::new(),
        };
        self.codes.lock().insert(
            code.clone(),
            PendingConnect {
                user_id: who.user_id.clone(),
                client_id: who.client_id.clone(),
                token: who.token.clone(),
                issued: Instant::now(),
                kind,
            },
        );
        format!(
            "{}{path}?requestId={request_id}&code={code}{update_types}",
            ws_base(state)
        )
    }

    /// Number of open market connections per user.
    pub fn connection_counts(&self) -> HashMap<String, usize> {
        self.connections.lock().clone()
    }

    pub(crate) fn stalled(&self) -> watch::Receiver<bool> {
        self.stall.subscribe()
    }

    pub(crate) fn drops(&self) -> broadcast::Receiver<()> {
        self.drop_all.subscribe()
    }
}

/// Holds a session while the feed is stalled — it neither reads nor writes, so the client's
/// pings go unanswered — until it is resumed. Answers false when the session must end instead
/// (dropped, or the simulator going away). One wait for both feeds.
pub(crate) async fn hold_while_stalled(
    stalled: &mut watch::Receiver<bool>,
    drops: &mut broadcast::Receiver<()>,
) -> bool {
    while *stalled.borrow() {
        tokio::select! {
            r = stalled.changed() => if r.is_err() { return false },
            _ = drops.recv() => return false,
        }
    }
    true
}

/// How long one frame may take to leave; a client that does not read is dropped after it.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one message on a feed socket; false when the client is gone or does not take it
/// within [`SEND_TIMEOUT`].
pub(crate) async fn send_within<S>(tx: &mut S, msg: axum::extract::ws::Message) -> bool
where
    S: futures::Sink<axum::extract::ws::Message> + Unpin,
{
    use futures::SinkExt;
    matches!(tokio::time::timeout(SEND_TIMEOUT, tx.send(msg)).await, Ok(Ok(())))
}

fn refused(status: u16, reason: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{status}: {reason}\n"),
    )
        .into_response()
}

fn update_types(q: &QueryMap) -> Result<Vec<String>, ApiError> {
    const KNOWN: [&str; 4] = ["order", "holding", "position", "gtt_order"];
    let raw = q.get("update_types").map(String::as_str).unwrap_or("order");
    let types: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = types.iter().find(|t| !KNOWN.contains(&t.as_str())) {
        return Err(ApiError::bad_request(
            upstox_types::error_code::INVALID_INPUT,
            "update_types takes order, holding, position, gtt_order",
        )
        .with_property("update_types", Some(bad.clone().into())));
    }
    Ok(if types.is_empty() { vec!["order".into()] } else { types })
}

fn authorized(uri: &str) -> ApiResult {
    Ok(success(
        json!({"authorized_redirect_uri": uri, "authorizedRedirectUri": uri}),
    ))
}

/// `GET /v3/feed/market-data-feed/authorize`.
pub(crate) async fn market_authorize(State(state): State<AppState>, who: Authed) -> ApiResult {
    authorized(&state.feed.authorize(&state, &who, FeedKind::Market))
}

/// `GET /v3/feed/market-data-feed`: redirects to a fresh authorized URI.
pub(crate) async fn market_direct(State(state): State<AppState>, who: Authed) -> Response {
    let uri = state.feed.authorize(&state, &who, FeedKind::Market);
    (StatusCode::FOUND, [(header::LOCATION, uri)]).into_response()
}

/// `GET /v2/feed/portfolio-stream-feed/authorize[?update_types=]`.
pub(crate) async fn portfolio_authorize(State(state): State<AppState>, who: Authed, q: QueryMap) -> ApiResult {
    let kind = FeedKind::Portfolio {
        update_types: update_types(&q)?,
    };
    authorized(&state.feed.authorize(&state, &who, kind))
}

/// `GET /v2/feed/portfolio-stream-feed[?update_types=]`: redirects to a fresh authorized URI.
pub(crate) async fn portfolio_direct(State(state): State<AppState>, who: Authed, q: QueryMap) -> Response {
    match update_types(&q) {
        Ok(update_types) => {
            let uri = state.feed.authorize(&state, &who, FeedKind::Portfolio { update_types });
            (StatusCode::FOUND, [(header::LOCATION, uri)]).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Checks an authorized URI's code; answers who connects, or the refusal.
fn admit(state: &AppState, q: &QueryMap, want_market: bool) -> Result<PendingConnect, (u16, &'static str)> {
    if let Some(status) = *state.feed.refuse.lock() {
        return Err((status, "handshake refused (simulator fault injection)"));
    }
    let code = q.get("code").map(String::as_str).unwrap_or("");
    let pending = state.feed.codes.lock().remove(code);
    let ttl = Duration::from_secs(state.config.feed.authorized_uri_ttl_secs);
    let Some(p) = pending.filter(|p| p.issued.elapsed() <= ttl && matches!(p.kind, FeedKind::Market) == want_market)
    else {
        return Err((
            401,
            "authorized URI is unknown, already used or expired; authorize again",
        ));
    };
    if state.auth.lock().check(&p.token, state.now()).is_err() {
        return Err((401, "the access token behind this URI is invalid or expired"));
    }
    if !state.auth.lock().app(&p.client_id).is_some_and(|a| a.feed_enabled) {
        return Err((403, "market data feed is not enabled for this app"));
    }
    Ok(p)
}

/// The authorized market-data endpoint.
pub(crate) async fn market_connect(
    State(state): State<AppState>,
    q: QueryMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let p = match admit(&state, &q, true) {
        Ok(p) => p,
        Err((status, reason)) => return refused(status, reason),
    };
    let Ok(ws) = ws else {
        return refused(400, "expected a WebSocket upgrade");
    };
    {
        let mut conns = state.feed.connections.lock();
        let n = conns.entry(p.user_id.clone()).or_default();
        if *n >= state.config.feed.max_connections_per_user {
            return refused(403, "connection limit reached for this user");
        }
        *n += 1;
    }
    let guard = ConnectionGuard {
        state: state.clone(),
        user: p.user_id.clone(),
    };
    ws.on_upgrade(move |socket| async move {
        market::session(state, socket).await;
        drop(guard);
    })
}

/// The authorized portfolio-stream endpoint.
pub(crate) async fn portfolio_connect(
    State(state): State<AppState>,
    q: QueryMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let p = match admit(&state, &q, false) {
        Ok(p) => p,
        Err((status, reason)) => return refused(status, reason),
    };
    let Ok(ws) = ws else {
        return refused(400, "expected a WebSocket upgrade");
    };
    let FeedKind::Portfolio { update_types } = p.kind else {
        return refused(401, "not a portfolio URI");
    };
    // Subscribe before answering the handshake, so no update between the 101 and the session's
    // start is lost.
    let updates = state.engine.lock().subscribe(&p.user_id);
    ws.on_upgrade(move |socket| portfolio::session(state, socket, updates, update_types))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedFaults {
    /// Drop every open feed connection now (no close frame).
    #[serde(default)]
    drop: bool,
    /// Stop (true) or resume (false) sending and reading on every connection.
    #[serde(default)]
    stall: Option<bool>,
    /// Refuse handshakes with this HTTP status; `null` to accept again.
    #[serde(default, with = "double_option")]
    refuse: Option<Option<u16>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u16>>, D::Error> {
        Option::<u16>::deserialize(d).map(Some)
    }
}

/// `POST /sim/feed`.
pub(crate) async fn control(State(state): State<AppState>, body: axum::body::Bytes) -> ApiResult {
    let f: FeedFaults = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            upstox_types::error_code::INVALID_INPUT,
            format!("expected {{\"drop\", \"stall\", \"refuse\"}}: {e}"),
        )
    })?;
    if let Some(Some(r)) = f.refuse
        && !(400..=599).contains(&r)
    {
        return Err(ApiError::bad_request(
            upstox_types::error_code::INVALID_INPUT,
            format!("refuse must be an HTTP error status (400 to 599) or null, not {r}"),
        ));
    }
    if f.drop {
        let _ = state.feed.drop_all.send(());
    }
    if let Some(s) = f.stall {
        state.feed.stalled_flag.store(s, Ordering::SeqCst);
        state.feed.stall.send_replace(s);
    }
    if let Some(r) = f.refuse {
        *state.feed.refuse.lock() = r;
    }
    status(State(state)).await
}

/// `GET /sim/feed`.
pub(crate) async fn status(State(state): State<AppState>) -> ApiResult {
    Ok(success(json!({
        "connections": state.feed.connection_counts(),
        "stalled": state.feed.stalled_flag.load(Ordering::SeqCst),
        "refuse": *state.feed.refuse.lock(),
    })))
}

/// A client control frame as the server reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct ControlRequest {
    pub method: String,
    #[serde(default)]
    pub data: ControlData,
}

/// The `data` of a control frame.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ControlData {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, rename = "instrumentKeys")]
    pub instrument_keys: Vec<String>,
}

/// Parses a binary control frame (`{"guid", "method", "data": {"mode", "instrumentKeys"}}`);
/// anything else is `None` and ignored, as the real server does.
pub fn parse_control(bytes: &[u8]) -> Option<ControlRequest> {
    serde_json::from_slice(bytes).ok()
}

/// Whether to drop a connection this tick, for `random_drop_per_sec`.
pub(crate) fn random_drop(state: &SimState, elapsed: Duration) -> bool {
    let p = state.config.feed.random_drop_per_sec * elapsed.as_secs_f64();
    p > 0.0 && rand::rng().random::<f64>() < p
}
