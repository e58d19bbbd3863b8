//! Starting and stopping a simulator: build the market, seed tokens, run the paper engine's
//! matcher, serve HTTP, and describe itself in one JSON line for scripts.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{app, build_instrument_files};
use crate::auth::AuthStore;
use crate::clock::SimClock;
use crate::config::SimConfig;
use crate::engine::Engine;
use crate::error::SimError;
use crate::market::Market;
use crate::state::{AppState, SimState};

/// Installs rustls' ring provider once per process (needed by the webhook client).
pub fn install_crypto_provider() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    state: AppState,
    addr: SocketAddr,
    seeded_tokens: Vec<(String, String)>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Builds the market and starts serving on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Invalid configuration, or the address cannot be bound.
    pub async fn start(mut config: SimConfig, addr: SocketAddr) -> Result<Self, SimError> {
        config.validate()?;
        let first_app = config.apps.first().map(|a| a.client_id.clone());
        for i in config.seed_first..config.seed_first + config.seed_users {
            let id = format!("SIMU{i:05}");
            let name = format!("Seeded User {i}");
            config.users.push(crate::config::UserConfig::new(
                &id,
                &name,
                "000000",
                1_000_000.0,
                first_app.as_deref(),
            ));
        }
        let clock = SimClock::new(&config.clock)?;
        let now = clock.now();
        let market_config = config.market.clone();
        let seed = config.seed;
        let market = tokio::task::spawn_blocking(move || Market::new(market_config, seed, now))
            .await
            .map_err(|e| SimError::Config(format!("market build failed: {e}")))??;
        let mut auth = AuthStore::new(&config);
        let mut seeded_tokens = Vec::new();
        for user in &config.users {
            let app = user
                .app
                .clone()
                .or_else(|| config.apps.first().map(|a| a.client_id.clone()));
            if let Some(app) = app {
                let issued = auth.issue(&user.user_id, &app, now);
                seeded_tokens.push((user.user_id.clone(), issued.access_token));
            }
        }
        let engine = Engine::new(&config, &market);
        let listener = TcpListener::bind(addr).await.map_err(|source| SimError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let state: AppState = Arc::new(SimState {
            faults: RwLock::new(config.faults.clone()),
            config,
            clock,
            market,
            auth: Mutex::new(auth),
            engine: Mutex::new(engine),
            limiter: Mutex::new(Default::default()),
            instrument_files: OnceLock::new(),
            base_url: RwLock::new(format!("http://{addr}")),
            feed: crate::feed::FeedHub::default(),
        });
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();

        // The HTTP server.
        let router = app(state.clone());
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            // Nagle off, as a market-data server has it: a small frame written while the last is
            // unacknowledged would otherwise wait for the client's delayed ACK (~40 ms).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
                }
            });
            // The peer address is kept for the order APIs' static-IP check.
            let serve = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "simulator server stopped");
            }
        }));

        // The matcher: open orders against moving prices.
        let st = state.clone();
        let stop = shutdown.clone();
        let every = Duration::from_millis(st.config.matcher_interval_ms.max(10));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {
                        let now = st.now();
                        st.engine.lock().match_all(&st.market, now);
                    }
                }
            }
        }));

        // Instrument files, built once in the background.
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let s2 = st.clone();
            if let Ok(files) = tokio::task::spawn_blocking(move || build_instrument_files(&s2.market)).await {
                let _ = st.instrument_files.set(files);
            }
        }));

        Ok(Self {
            state,
            addr,
            seeded_tokens,
            shutdown,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base for REST, order and instrument-file paths alike.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The access token pre-issued for a seeded user.
    /// Every user with a pre-issued token (the configured ones, then the seeded `SIMU…`), in
    /// order.
    pub fn seeded_tokens(&self) -> &[(String, String)] {
        &self.seeded_tokens
    }

    pub fn token_of(&self, user_id: &str) -> Option<&str> {
        self.seeded_tokens
            .iter()
            .find(|(u, _)| u == user_id)
            .map(|(_, t)| t.as_str())
    }

    /// The one-line JSON description printed first on stdout by `stoxide sim`.
    pub fn banner(&self) -> Value {
        let c = &self.state.config;
        json!({
            "base_url": self.base_url(),
            "apps": c.apps.iter().map(|a| json!({"client_id": a.client_id, "client_secret": a.client_secret, "redirect_uri": a.redirect_uri})).collect::<Vec<_>>(),
            // Seeded users (`seed_users`) are counted, not listed: there may be thousands.
            "users": c.users.iter().take(c.users.len().saturating_sub(c.seed_users)).map(|u| json!({"user_id": u.user_id, "pin": u.pin, "access_token": self.token_of(&u.user_id)})).collect::<Vec<_>>(),
            "seeded_users": c.seed_users,
            "sample_equity": "NSE_EQ|INE002A01018",
            "instruments_url": format!("{}/market-quote/instruments/exchange/complete.json.gz", self.base_url()),
        })
    }

    /// Stops serving and waits for the background tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}
