//! The HTTP core: hosts, the bearer token, timeouts, the client-side limiter, and retries of
//! idempotent calls with exponential backoff and jitter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use upstox_types::ApiCategory;

use crate::error::{ApiErrorItem, Error, Result};
use crate::limiter::{LimitKey, RateLimiter};

/// Where the client sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// REST for everything but place/modify/cancel (`https://api.upstox.com`).
    pub api: String,
    /// Place/modify/cancel (`https://api-hft.upstox.com`).
    pub order: String,
    /// Instrument files (`https://assets.upstox.com`).
    pub assets: String,
}

impl Hosts {
    /// The real Upstox.
    pub fn production() -> Self {
        Self {
            api: "https://api.upstox.com".into(),
            order: "https://api-hft.upstox.com".into(),
            assets: "https://assets.upstox.com".into(),
        }
    }

    /// Upstox's sandbox (orders only).
    pub fn sandbox() -> Self {
        Self {
            api: "https://api-sandbox.upstox.com".into(),
            order: "https://api-sandbox.upstox.com".into(),
            assets: "https://assets.upstox.com".into(),
        }
    }

    /// One base URL for everything (the simulator, a proxy).
    pub fn single(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        Self {
            api: base.clone(),
            order: base.clone(),
            assets: base,
        }
    }

    /// `production`, `sandbox`, their API URLs, or any http(s) base URL (one host for all).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else.
    ///
    /// [`Error::InvalidInput`]: crate::Error::InvalidInput
    pub fn from_base_url(url: &str) -> crate::Result<Self> {
        match url.trim_end_matches('/') {
            "production" | "https://api.upstox.com" => Ok(Self::production()),
            "sandbox" | "https://api-sandbox.upstox.com" => Ok(Self::sandbox()),
            other if other.starts_with("http://") || other.starts_with("https://") => Ok(Self::single(other)),
            other => Err(crate::Error::InvalidInput(format!(
                "base URL {other:?} must start with http:// or https:// (or be `production` / `sandbox`)"
            ))),
        }
    }
}

/// Retry policy for idempotent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub hosts: Hosts,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// The client-side limiter (`None`: no client-side limiting). A process shares one among
    /// all its clients, so each user's budget is counted once however many clients carry the
    /// user's token; [`ClientConfig::new`] gives the client a limiter of its own.
    pub limiter: Option<RateLimiter>,
    /// Told about every HTTP attempt (for metrics); never sees tokens or bodies.
    pub observer: Option<CallObserver>,
    /// The local address requests leave from: the static IP registered with Upstox for order
    /// APIs (`None`: the system's choice).
    pub local_address: Option<std::net::IpAddr>,
}

impl ClientConfig {
    pub fn new(hosts: Hosts) -> Self {
        Self {
            hosts,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            limiter: Some(RateLimiter::default()),
            observer: None,
            local_address: None,
        }
    }

    /// With `limiter` (usually the process's one).
    #[must_use]
    pub fn with_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }
}

/// One HTTP attempt, as an observer sees it.
#[derive(Debug, Clone, Copy)]
pub struct CallRecord<'a> {
    pub method: &'a str,
    /// The path without the query (it may hold an instrument key or a client id, never a token).
    pub path: &'a str,
    /// `None` when no answer came (connect error, timeout).
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// A callback for every HTTP attempt.
#[derive(Clone)]
pub struct CallObserver(pub Arc<dyn Fn(&CallRecord<'_>) + Send + Sync>);

impl std::fmt::Debug for CallObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallObserver")
    }
}

/// Which host a path goes to (the SDKs' rule: place/modify/cancel go to the order host).
fn is_order_path(path: &str) -> bool {
    path.contains("/order/place") || path.contains("/order/modify") || path.contains("/order/cancel")
}

/// What a request carries.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

/// Whether a request needs the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    Bearer,
    Public,
}

/// The async Upstox REST client. Cheap to clone; clones share the connection pool and limiter.
#[derive(Clone)]
pub struct UpstoxClient {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    token: Option<Arc<SecretString>>,
    /// Whose rate budget this client's calls spend.
    limit_key: Option<LimitKey>,
    /// The exchange-registered algo name sent as `X-Algo-Name` on order calls.
    algo_name: Option<Arc<str>>,
}

impl std::fmt::Debug for UpstoxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstoxClient")
            .field("hosts", &self.config.hosts)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The success envelope `{"status": ..., "data": ...}`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Envelope<T> {
    #[allow(dead_code, reason = "kept for Debug output of unexpected bodies")]
    #[serde(default)]
    pub status: Option<String>,
    pub data: T,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ApiErrorItem>,
}

impl UpstoxClient {
    /// A client for `config`, without a token yet.
    ///
    /// # Errors
    /// When the TLS stack cannot be set up (no rustls crypto provider installed).
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("stoxide/", env!("CARGO_PKG_VERSION")))
            .local_address(config.local_address)
            .build()
            .map_err(|e| Error::InvalidInput(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            config: Arc::new(config),
            token: None,
            limit_key: None,
            algo_name: None,
        })
    }

    /// The same client acting with `token`, whose user is not known: its calls spend a budget
    /// of the token's own. The token stays a secret: never in Debug output, errors or logs.
    pub fn with_token(&self, token: SecretString) -> Self {
        Self {
            limit_key: Some(LimitKey::of_token(&token)),
            token: Some(Arc::new(token)),
            ..self.clone()
        }
    }

    /// The same client acting for the Upstox user `user` with `token`: its calls spend that
    /// user's budget, shared with every client of the process that acts for the same user.
    pub fn for_user(&self, user: &str, token: SecretString) -> Self {
        Self {
            limit_key: Some(LimitKey::User(user.to_owned())),
            token: Some(Arc::new(token)),
            ..self.clone()
        }
    }

    /// The same client sending `name` as `X-Algo-Name` on every order call (place, modify,
    /// cancel, multi, exit, GTT): the exchange-registered name of the strategy placing it.
    pub fn with_algo_name(&self, name: &str) -> Self {
        Self {
            algo_name: Some(Arc::from(name)),
            ..self.clone()
        }
    }

    /// The limiter this client's calls go through.
    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.config.limiter.as_ref()
    }

    /// Whether a token is set.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn hosts(&self) -> &Hosts {
        &self.config.hosts
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Time spent waiting in the client-side limiter.
    pub fn rate_limit_wait(&self) -> Duration {
        self.config
            .limiter
            .as_ref()
            .map_or(Duration::ZERO, RateLimiter::total_wait)
    }

    fn url(&self, path: &str) -> String {
        let base = if is_order_path(path) {
            &self.config.hosts.order
        } else {
            &self.config.hosts.api
        };
        format!("{}{}", base.trim_end_matches('/'), path)
    }

    /// One attempt.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        query: &[(String, String)],
        body: &Body,
        auth: Auth,
    ) -> Result<bytes::Bytes> {
        let endpoint = format!("{method} {path}");
        if let (Some(l), Some(key)) = (&self.config.limiter, &self.limit_key)
            && auth == Auth::Bearer
        {
            l.acquire(key, ApiCategory::of(method.as_str(), path)).await;
        }
        let mut req = self
            .http
            .request(method.clone(), self.url(path))
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if auth == Auth::Bearer {
            let token = self.token.as_ref().ok_or(Error::NoToken)?;
            req = req.bearer_auth(token.expose_secret());
        }
        if let Some(algo) = &self.algo_name
            && ApiCategory::of(method.as_str(), path) != ApiCategory::Standard
        {
            req = req.header("X-Algo-Name", algo.as_ref());
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Form(f) => req.form(f),
        };
        let started = Instant::now();
        let observe = |status: Option<u16>| {
            if let Some(o) = &self.config.observer {
                (o.0)(&CallRecord {
                    method: method.as_str(),
                    path,
                    status,
                    elapsed: started.elapsed(),
                });
            }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                observe(None);
                return Err(transport(&endpoint, e, self.config.timeout));
            }
        };
        let status = resp.status();
        observe(Some(status.as_u16()));
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(&endpoint, e, self.config.timeout))?;
        tracing::debug!(%endpoint, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "upstox call");
        if status.is_success() {
            return Ok(bytes);
        }
        let errors = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.errors)
            .unwrap_or_else(|_| {
                // Not Upstox JSON (a proxy's HTML page, say): keep a short, safe excerpt.
                let text = String::from_utf8_lossy(&bytes);
                let excerpt: String = text.chars().take(120).collect();
                vec![ApiErrorItem {
                    error_code: None,
                    message: Some(excerpt),
                    property_path: None,
                    invalid_value: None,
                }]
            });
        Err(Error::Api {
            endpoint,
            status: status.as_u16(),
            errors,
        })
    }

    /// Sends a request; idempotent ones are retried with backoff and jitter.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Body,
        auth: Auth,
        idempotent: bool,
    ) -> Result<bytes::Bytes> {
        let policy = self.config.retry;
        if !idempotent || policy.max_retries == 0 {
            return self.once(&method, path, query, &body, auth).await;
        }
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries);
        (|| self.once(&method, path, query, &body, auth))
            .retry(backoff)
            .when(Error::is_retryable)
            // A rate-limited answer frees up within a second at the earliest.
            .adjust(|e, d| {
                d.map(|d| {
                    if e.is_rate_limited() {
                        d.max(Duration::from_secs(1))
                    } else {
                        d
                    }
                })
            })
            .notify(|e, d| tracing::info!(error = %e, delay_ms = d.as_millis() as u64, "retrying"))
            .await
    }

    /// Sends and decodes the whole body as `T`.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Body,
        auth: Auth,
        idempotent: bool,
    ) -> Result<T> {
        let bytes = self
            .send_raw(method.clone(), path, query, body, auth, idempotent)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            endpoint: format!("{method} {path}"),
            message: e.to_string(),
        })
    }

    /// GET a token-bearing endpoint and unwrap `data`.
    pub(crate) async fn get_data<T: DeserializeOwned>(&self, path: &str, query: &[(String, String)]) -> Result<T> {
        Ok(self
            .send::<Envelope<T>>(Method::GET, path, query, Body::None, Auth::Bearer, true)
            .await?
            .data)
    }

    /// A non-idempotent JSON call with the token; unwraps `data`.
    pub(crate) async fn call_data<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&B>,
    ) -> Result<Envelope<T>> {
        let body = match body {
            Some(b) => Body::Json(serde_json::to_value(b).map_err(|e| Error::InvalidInput(e.to_string()))?),
            None => Body::None,
        };
        self.send::<Envelope<T>>(method, path, query, body, Auth::Bearer, false)
            .await
    }
}

pub(crate) fn transport(endpoint: &str, e: reqwest::Error, timeout: Duration) -> Error {
    if e.is_timeout() {
        return Error::Timeout {
            endpoint: endpoint.to_owned(),
            timeout_ms: timeout.as_millis() as u64,
        };
    }
    let connect = e.is_connect();
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = s.source();
    }
    if connect {
        message = format!("cannot connect ({message}); is the server running and the base URL right?");
    }
    Error::Transport {
        endpoint: endpoint.to_owned(),
        message,
        connect,
    }
}

/// Percent-free query helper.
pub(crate) fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Encodes a path segment (instrument keys carry `|` and spaces).
pub(crate) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
