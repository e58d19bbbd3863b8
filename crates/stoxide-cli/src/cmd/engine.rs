//! `stoxide engine run`, `stoxide signal send`, `stoxide kill`: the execution engine on the
//! vault's accounts, its signed-signal endpoint, and the kill switch.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use stoxide_app::clients::Clients;
use stoxide_engine::broker::paper::{PaperBrokers, Prices};
use stoxide_engine::broker::upstox::UpstoxBrokers;
use stoxide_engine::desk::{Actor, Desk};
use stoxide_engine::risk::{Level, TradingState};
use stoxide_engine::{Engine, EngineConfig, EngineParts};
use tokio_util::sync::CancellationToken;
use upstox_client::RateLimiter;

use crate::output::{Output, say};
use crate::settings::Globals;

use stoxide_engine::control_files::{ENGINE_FILE, TOKEN_FILE};
/// Held while an engine runs on this data directory: one engine per store.
const LOCK_FILE: &str = "engine.lock";

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EngineCommand {
    /// Run the engine on the vault's accounts and subscriptions: signed signals on
    /// POST /signals, health on /healthz, /metrics and /summary, the kill switch on POST /kill.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Where the engine's HTTP API listens.
    #[arg(long, default_value = "127.0.0.1:8790")]
    listen: SocketAddr,
    /// Every order goes to the paper broker (fills at the live price), none to Upstox.
    #[arg(long)]
    paper: bool,
    /// Do not ask Upstox whether the market is open before sending (for the simulator).
    #[arg(long)]
    no_market_hours: bool,
    /// Orders leave from this (whitelisted, static) address.
    #[arg(long, value_name = "IP")]
    egress_ip: Option<IpAddr>,
    /// Run an embedded simulator with this many seeded users (SIMU00001…), each linked into
    /// the vault: the engine against many accounts, offline.
    #[arg(long, value_name = "N")]
    sim_users: Option<usize>,
    /// Starting paper capital per account (₹).
    #[arg(long, default_value = "1000000")]
    paper_capital: Decimal,
    /// Join a cluster as this node: the accounts are shared with the other nodes through leases
    /// in PostgreSQL (`STOXIDE_DATABASE_URL`), signals come over NATS JetStream
    /// (`STOXIDE_NATS_URL`) and rate limits are shared in Redis (`STOXIDE_REDIS_URL`).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Seconds the order book must keep showing nothing for a place whose answer was lost
    /// before it is sent again: a place can reach the exchange after the client gave up on it.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = clap::value_parser!(u64).range(1..=600))]
    resend_quiet: u64,
    /// A cluster's node: how far back (seconds) it looks, on taking users over, for signals
    /// their previous holder died before deciding; older ones are not traded for them.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = clap::value_parser!(u64).range(1..=3600))]
    catch_up: u64,
    /// A cluster's node: how far back (seconds) it records, on taking users over, the signals
    /// their previous holder never decided that are older than `--catch-up` (each is written
    /// down as not traded, with why).
    #[arg(long, value_name = "SECS", default_value = "3600", value_parser = clap::value_parser!(u64).range(1..=86400))]
    late_horizon: u64,
}

/// What a cluster node needs from the environment.
struct ClusterEnv {
    nats: String,
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

fn cluster_env(node: &str) -> anyhow::Result<ClusterEnv> {
    anyhow::ensure!(
        !node.is_empty()
            && node.len() <= 64
            && node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "--node {node:?}: a node's name is 1 to 64 letters, digits, '-' or '_'"
    );
    let db = env_var(stoxide_store::DATABASE_URL_ENV).unwrap_or_default();
    anyhow::ensure!(
        db.starts_with("postgres://") || db.starts_with("postgresql://"),
        "--node needs the shared PostgreSQL: set {}=postgres://… (every node the same)",
        stoxide_store::DATABASE_URL_ENV
    );
    anyhow::ensure!(
        env_var("STOXIDE_REDIS_URL").is_some(),
        "--node needs Redis for the users' shared rate limits: set STOXIDE_REDIS_URL=redis://…"
    );
    let nats = env_var("STOXIDE_NATS_URL")
        .context("--node needs NATS JetStream for signals: set STOXIDE_NATS_URL=nats://…")?;
    Ok(ClusterEnv { nats })
}

pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub(crate) async fn run(globals: &Globals, _out: &Output, cmd: EngineCommand) -> anyhow::Result<()> {
    let EngineCommand::Run(args) = cmd;
    if let Some(node) = args.node.clone() {
        return run_node(globals, args, &node).await;
    }
    let dir = crate::vault::data_dir(globals)?;
    stoxide_store::create_private_dir(&dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .context("cannot open the engine's lock file")?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another engine runs on {} (one engine per store: stop it first, or give another --data-dir)",
            dir.display()
        );
    }
    let vault = crate::vault::open(globals).await?;
    let stop = CancellationToken::new();
    let sim = match args.sim_users {
        Some(n) => Some(start_sim(&vault, n).await?),
        None => None,
    };
    let started = start_engine(
        &vault,
        StartOptions {
            paper: args.paper,
            check_market_hours: !args.no_market_hours,
            resend_quiet: Duration::from_secs(args.resend_quiet),
            catch_up: Duration::from_secs(args.catch_up),
            late_horizon: Duration::from_secs(args.late_horizon),
            egress_ip: args.egress_ip,
            paper_capital: args.paper_capital,
            cluster: None,
            bus: None,
        },
        &stop,
    )
    .await?;
    let engine = started.engine;
    let control: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    write_private(&dir.join(TOKEN_FILE), &control)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    write_private(
        &dir.join(ENGINE_FILE),
        &serde_json::json!({"url": url, "pid": std::process::id()}).to_string(),
    )?;
    let router = stoxide_server::engine_api::router(engine.clone(), vault.clone(), SecretString::from(control));
    crate::output::announce(
        &serde_json::json!({
            "engine": url,
            "strategies": started.strategies,
            "accounts": started.accounts,
            "paper": args.paper,
            "simulator": sim.as_ref().map(upstox_sim::Simulator::base_url),
        })
        .to_string(),
    );
    let summary_engine = engine.clone();
    let summary_stop = stop.clone();
    tokio::spawn(async move {
        // The live summary, on stderr, every 30 s.
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tokio::select! {
                () = summary_stop.cancelled() => return,
                _ = tick.tick() => {
                    let s = summary_engine.summary();
                    tracing::info!(
                        accepted = s.signals_accepted,
                        refused = s.signals_refused,
                        lanes = s.lanes.len(),
                        needing_login = s.accounts_needing_login.len(),
                        "engine summary"
                    );
                }
            }
        }
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    stop.cancel();
    engine.shutdown().await;
    let _ = std::fs::remove_file(dir.join(ENGINE_FILE));
    if let Some(s) = sim {
        s.shutdown().await;
    }
    served.context("the engine's HTTP server failed")
}

/// `stoxide engine run --node NAME`: one node of a cluster. It beats in PostgreSQL, holds the
/// accounts assigned to it (leases), takes every signal from its own durable JetStream consumer
/// and decides only for the accounts it holds; health on /healthz, /metrics, /summary.
async fn run_node(globals: &Globals, args: RunArgs, name: &str) -> anyhow::Result<()> {
    let env = cluster_env(name)?;
    anyhow::ensure!(
        args.sim_users.is_none(),
        "--sim-users starts a simulator inside this process; a cluster's nodes share one (`stoxide sim`)"
    );
    let dir = crate::vault::data_dir(globals)?;
    stoxide_store::create_private_dir(&dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("engine-{name}.lock")))
        .context("cannot open the node's lock file")?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "node {name} already runs on {} (give each node its own name)",
            dir.display()
        );
    }
    let vault = crate::vault::open(globals).await?;
    let bus = stoxide_cluster::SignalBus::connect(&env.nats, env_var("STOXIDE_NATS_STREAM").as_deref()).await?;
    let egress = args.egress_ip.map(|ip| ip.to_string()).unwrap_or_default();
    // Leases are renewed through a pool of their own: the engine's writes cannot starve them.
    let db = env_var(stoxide_store::DATABASE_URL_ENV).unwrap_or_default();
    let membership = stoxide_store::Store::open(&stoxide_store::Location::postgres(&db)?, false)
        .await?
        .context("the shared database has no stoxide schema yet")?;
    let node = stoxide_cluster::Node::new(
        stoxide_cluster::NodeConfig::new(name, egress.clone()),
        membership,
        Some(bus.clone()),
    );
    node.join().await?;
    let stop = CancellationToken::new();
    let started = start_engine(
        &vault,
        StartOptions {
            paper: args.paper,
            check_market_hours: !args.no_market_hours,
            resend_quiet: Duration::from_secs(args.resend_quiet),
            catch_up: Duration::from_secs(args.catch_up),
            late_horizon: Duration::from_secs(args.late_horizon),
            egress_ip: args.egress_ip,
            paper_capital: args.paper_capital,
            cluster: Some(node.leases()),
            bus: Some(bus.clone()),
        },
        &stop,
    )
    .await?;
    let engine = started.engine;
    let node = Arc::new(node);
    let membership = {
        let node = node.clone();
        let engine = engine.clone();
        let stop = stop.clone();
        tokio::spawn(async move { node.run(engine, stop).await })
    };
    let relay_bus = bus.clone();
    let consumer = {
        let engine = engine.clone();
        let stop = stop.clone();
        let name = name.to_owned();
        tokio::spawn(async move { bus.consume(&name, engine, stop).await })
    };
    let control: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = stoxide_server::engine_api::router_relaying(
        engine.clone(),
        vault.clone(),
        SecretString::from(control),
        Arc::new(BusRelay(relay_bus)),
    );
    crate::output::announce(
        &serde_json::json!({
            "engine": url,
            "node": name,
            "egress": egress,
            "strategies": started.strategies,
            "accounts": started.accounts,
            "paper": args.paper,
        })
        .to_string(),
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        })
        .await;
    stop.cancel();
    let _ = membership.await;
    if let Ok(Err(e)) = consumer.await {
        tracing::warn!(error = %e, "the signal consumer");
    }
    engine.shutdown().await;
    // The engine has stopped sending: this node's leases end now.
    node.leave().await?;
    served.context("the node's HTTP server failed")
}

/// A node's `POST /signals` puts signals on the cluster's stream.
struct BusRelay(stoxide_cluster::SignalBus);

impl stoxide_server::engine_api::Relay for BusRelay {
    fn relay<'a>(
        &'a self,
        signal: &'a stoxide_engine::signal::Signal,
    ) -> futures::future::BoxFuture<'a, Result<(u64, bool), String>> {
        Box::pin(async move { self.0.publish(signal).await.map_err(|e| e.to_string()) })
    }
}

/// How [`start_engine`] starts the engine.
#[derive(Debug, Clone)]
pub(crate) struct StartOptions {
    pub(crate) paper: bool,
    pub(crate) check_market_hours: bool,
    /// [`EngineConfig::resend_quiet`].
    pub(crate) resend_quiet: Duration,
    /// [`EngineConfig::catch_up`].
    pub(crate) catch_up: Duration,
    /// [`EngineConfig::late_horizon`].
    pub(crate) late_horizon: Duration,
    pub(crate) egress_ip: Option<IpAddr>,
    pub(crate) paper_capital: Decimal,
    /// Set for a cluster's node: what it holds.
    pub(crate) cluster: Option<Arc<dyn stoxide_engine::ownership::Ownership>>,
    /// A cluster's node: the bus its market prices are shared on.
    pub(crate) bus: Option<stoxide_cluster::SignalBus>,
}

/// The engine, started on the vault's strategies and accounts.
pub(crate) struct Started {
    pub(crate) engine: Engine,
    pub(crate) strategies: usize,
    pub(crate) accounts: usize,
}

/// Each user's rate budgets: this process's own, or — with `STOXIDE_REDIS_URL` — shared in Redis
/// by every engine node (keys under `STOXIDE_REDIS_PREFIX`, default `stoxide:rl`), each node
/// keeping to 1/`STOXIDE_CLUSTER_NODES` (default 2) of every window on its own while Redis
/// cannot be asked.
fn limiter() -> anyhow::Result<RateLimiter> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let Some(url) = var("STOXIDE_REDIS_URL") else {
        return Ok(RateLimiter::default());
    };
    let nodes: u32 = match var("STOXIDE_CLUSTER_NODES") {
        Some(n) => n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("STOXIDE_CLUSTER_NODES={n:?} is not a number of nodes (1 or more)"))?,
        None => 2,
    };
    let prefix = var("STOXIDE_REDIS_PREFIX").unwrap_or_else(|| "stoxide:rl".into());
    let store = stoxide_redis::RedisBudgets::new(&url, &prefix)?;
    eprintln!(
        "rate limits: shared in Redis by every node (without Redis, this node keeps to 1/{nodes} of each window)"
    );
    Ok(RateLimiter::shared(
        upstox_types::RateLimits::published(),
        std::sync::Arc::new(store),
        nodes,
    ))
}

/// Starts the engine on the vault: the instrument master read with the first linked account's
/// token, the in-process strategies fed live ticks from one market stream, marks polled every
/// 2 s; everything it spawns stops with `stop`.
pub(crate) async fn start_engine(
    vault: &stoxide_vault::Vault,
    opts: StartOptions,
    stop: &CancellationToken,
) -> anyhow::Result<Started> {
    let desk = Desk::new(vault.clone());
    let strategies = desk.strategies().await?;
    let accounts = vault.accounts().await?;
    let first = accounts.iter().find(|a| a.has_token);
    // A node's requests end well within the margin its leases keep (6 s).
    let timeout = if opts.cluster.is_some() { 4 } else { 10 };
    let clients = Clients::new(limiter()?, None)
        .with_local_address(opts.egress_ip)
        .with_timeout(Duration::from_secs(timeout));
    let prices = Prices::default();
    let mut instruments = std::collections::HashMap::new();
    // The in-process strategies' live ticks: one market stream on the first account's token.
    let mut feed = None;
    if first.is_none() && !strategies.is_empty() {
        eprintln!(
            "warning: no linked account has a token, so the instrument master cannot be read: every signal will be refused until you link one (`stoxide login --account ID`) and restart the engine"
        );
    }
    if let Some(a) = first
        && !strategies.is_empty()
    {
        let token = vault
            .access_token(&a.id)
            .await?
            .context("the vault lost a token while starting")?;
        let client = clients.for_user(&a.base_url, &a.id, token.clone())?;
        let master = crate::cmd::instruments::load_master(&client).await?;
        instruments = stoxide_engine::market::instruments(&master, &strategies)?;
        let keys: Vec<_> = instruments.keys().cloned().collect();
        let in_process: Vec<_> = strategies
            .iter()
            .filter(|s| stoxide_engine::built_in(&s.source).is_some())
            .cloned()
            .collect();
        if !in_process.is_empty() {
            let mut tick_keys: Vec<String> = in_process
                .iter()
                .flat_map(|s| s.instruments.iter().map(ToString::to_string))
                .collect();
            tick_keys.sort();
            tick_keys.dedup();
            let stream = stoxide_app::stream::start(
                clients.client(&a.base_url)?,
                stoxide_app::stream::TokenFrom::Vault {
                    vault: vault.clone(),
                    account: a.id.clone(),
                    token,
                },
                upstox_feed::StreamerConfig::default(),
            );
            let refs: Vec<&str> = tick_keys.iter().map(String::as_str).collect();
            stream.streamer.subscribe(&refs, upstox_types::FeedMode::Ltpc)?;
            feed = Some((stream, in_process));
        }
        match (&opts.cluster, &opts.bus) {
            (Some(owner), Some(bus)) => {
                // One node reads the market for all (the feed's lease); every node follows it.
                let owner = owner.clone();
                let publisher = bus.clone();
                tokio::spawn(stoxide_engine::market::poll_prices_when(
                    client,
                    keys,
                    prices.clone(),
                    Duration::from_secs(2),
                    stop.clone(),
                    move || owner.holds(stoxide_cluster::FEED_LEASE),
                    move |batch| {
                        let publisher = publisher.clone();
                        tokio::spawn(async move { publisher.publish_prices(&batch).await });
                    },
                ));
                let follower = bus.clone();
                let (marks, follow_stop) = (prices.clone(), stop.clone());
                tokio::spawn(async move {
                    if let Err(e) = follower.follow_prices(marks, follow_stop).await {
                        tracing::warn!(error = %e, "this node cannot follow the cluster's prices");
                    }
                });
            }
            _ => {
                tokio::spawn(stoxide_engine::market::poll_prices(
                    client,
                    keys,
                    prices.clone(),
                    Duration::from_secs(2),
                    stop.clone(),
                ));
            }
        }
    }
    let engine = Engine::start(
        EngineParts {
            vault: vault.clone(),
            live: Arc::new(UpstoxBrokers::new(clients)),
            paper: Arc::new(PaperBrokers::new(prices.clone(), opts.paper_capital)),
            prices: prices.clone(),
            instruments,
        },
        EngineConfig {
            paper: opts.paper,
            check_market_hours: opts.check_market_hours,
            resend_quiet: opts.resend_quiet,
            catch_up: opts.catch_up,
            late_horizon: opts.late_horizon,
            cluster: opts.cluster.clone(),
            ..EngineConfig::default()
        },
    )
    .await?;
    if let Some((stream, in_process)) = feed {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let runner = engine.clone();
        tokio::spawn(async move { runner.run_strategies(&in_process, rx).await });
        let marks = prices.clone();
        let feed_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = feed_stop.cancelled() => break,
                    e = stream.events.next() => e,
                };
                match event {
                    Some(upstox_feed::FeedEvent::Ticks(ticks)) => {
                        for t in ticks {
                            let Some(l) = t.ltpc() else { continue };
                            marks.update(&t.instrument_key, l.ltp, None, None);
                            let tick = stoxide_engine::PriceTick {
                                key: t.instrument_key.clone(),
                                at_ms: if l.ltt > 0 { l.ltt } else { t.current_ts },
                                price: l.ltp,
                            };
                            if tx.send(tick).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(upstox_feed::FeedEvent::Stopped(_)) | None => break,
                    Some(other) => tracing::debug!(event = ?other, "strategy feed"),
                }
            }
            stream.shutdown().await;
        });
    }
    Ok(Started {
        engine,
        strategies: strategies.len(),
        accounts: accounts.len(),
    })
}

/// Starts the embedded simulator with `n` seeded users and links each into the vault.
async fn start_sim(vault: &stoxide_vault::Vault, n: usize) -> anyhow::Result<upstox_sim::Simulator> {
    anyhow::ensure!(n > 0, "--sim-users must be at least 1");
    let config = upstox_sim::SimConfig {
        seed_users: n,
        ..upstox_sim::SimConfig::default()
    };
    config.validate()?;
    let sim = upstox_sim::Simulator::start(config, "127.0.0.1:0".parse()?).await?;
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} linking simulated users {pos}/{len}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for i in 1..=n {
        let user = format!("SIMU{i:05}");
        let token = sim
            .token_of(&user)
            .with_context(|| format!("the simulator did not seed {user}"))?
            .to_owned();
        vault
            .store_token(&stoxide_vault::NewToken::imported(
                user,
                sim.base_url(),
                SecretString::from(token),
            ))
            .await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(sim)
}

/// The running engine's address and control token, from beside the vault.
fn running_engine(dir: &Path, url: Option<String>) -> anyhow::Result<(String, Option<SecretString>)> {
    let token = std::fs::read_to_string(dir.join(TOKEN_FILE))
        .ok()
        .map(|t| SecretString::from(t.trim().to_owned()));
    if let Some(u) = url {
        return Ok((u, token));
    }
    let text = std::fs::read_to_string(dir.join(ENGINE_FILE)).with_context(|| {
        format!(
            "no engine runs on {} (start one: `stoxide engine run`, or give --engine URL)",
            dir.display()
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not what `stoxide engine run` writes",
            dir.join(ENGINE_FILE).display()
        )
    })?;
    let url = v["url"]
        .as_str()
        .with_context(|| format!("{} names no url", dir.join(ENGINE_FILE).display()))?;
    Ok((url.to_owned(), token))
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SignalCommand {
    /// Sign a signal with the strategy's secret from the vault and send it to the engine.
    Send(SendArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct SendArgs {
    #[arg(long)]
    strategy: String,
    /// Unique per strategy: the same id twice is one signal.
    #[arg(long)]
    id: String,
    /// The instrument key, e.g. "NSE_EQ|INE002A01018".
    #[arg(long)]
    instrument: String,
    /// enter_long, enter_short, exit or target.
    #[arg(long)]
    action: String,
    /// With --action target: the lots to hold (signed).
    #[arg(long, allow_hyphen_values = true)]
    target_lots: Option<i64>,
    /// The price the strategy saw (₹).
    #[arg(long)]
    price: Decimal,
    /// The engine's URL (default: the one running on this data directory).
    #[arg(long)]
    engine: Option<String>,
    /// Wait until every order ended and show the outcome.
    #[arg(long)]
    wait: bool,
}

impl SendArgs {
    /// The signal's JSON body, as `POST /signals` takes it.
    fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "strategy": self.strategy,
            "signal_id": self.id,
            "instrument_key": self.instrument,
            "action": self.action,
            "reference_price": self.price,
        });
        if let Some(l) = self.target_lots {
            body["target_lots"] = l.into();
        }
        body
    }
}

pub(crate) async fn signal(globals: &Globals, out: &Output, cmd: SignalCommand) -> anyhow::Result<()> {
    let SignalCommand::Send(a) = cmd;
    if a.engine.is_none()
        && let Some(nats) = env_var("STOXIDE_NATS_URL")
    {
        return publish_signal(out, &a, &nats).await;
    }
    let dir = crate::vault::data_dir(globals)?;
    let (url, _) = running_engine(&dir, a.engine.clone())?;
    let vault = crate::vault::open(globals).await?;
    let secret = vault.signing_secret(&a.strategy).await?.with_context(|| {
        format!(
            "strategy {:?} has no signing secret (set one: `stoxide strategy secret {}` < secret.txt)",
            a.strategy, a.strategy
        )
    })?;
    let body = serde_json::to_vec(&a.body())?;
    let ts = chrono::Utc::now().timestamp();
    let sig = stoxide_engine::signal::sign(secret.expose_secret().as_bytes(), ts, &body);
    let resp = reqwest::Client::new()
        .post(format!("{url}/signals"))
        .header("content-type", "application/json")
        .header("x-stoxide-timestamp", ts.to_string())
        .header("x-stoxide-signature", sig)
        .body(body)
        .send()
        .await
        .with_context(|| format!("the engine at {url} did not answer (is `stoxide engine run` running?)"))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.context("the engine's answer is not JSON")?;
    if !status.is_success() {
        let why = v["error"].as_str().map_or_else(|| v.to_string(), ToOwned::to_owned);
        anyhow::bail!("the engine refused the signal ({status}): {why}");
    }
    let mut report = v;
    if a.wait {
        let progress_url = format!("{url}/signals/{}/{}", a.strategy, a.id);
        for _ in 0..600 {
            let p: serde_json::Value = reqwest::get(&progress_url).await?.json().await?;
            if p["settled"].as_u64() >= p["orders"].as_u64() {
                report["progress"] = p;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if out.json {
        return out.print_json(&report);
    }
    if report["outcome"] == "queued" {
        say!(
            "signal {}/{} queued for every node (stream sequence {})",
            a.strategy,
            a.id,
            report["sequence"]
        );
        say!("see each one: stoxide intents --signal {}/{}", a.strategy, a.id);
        return Ok(());
    }
    let intents = report["intents"].as_array().cloned().unwrap_or_default();
    let orders = intents.iter().filter(|i| i["state"] == "pending").count();
    say!(
        "signal {}/{} accepted: {} subscription(s), {orders} order(s) to send",
        a.strategy,
        a.id,
        intents.len()
    );
    if let Some(p) = report.get("progress") {
        say!(
            "settled {}/{}; first ack {} ms, last ack {} ms",
            p["settled"],
            p["orders"],
            p["first_ack_ms"],
            p["last_ack_ms"]
        );
    }
    say!("see each one: stoxide intents --signal {}/{}", a.strategy, a.id);
    Ok(())
}

/// `stoxide signal send` with `STOXIDE_NATS_URL`: the signal goes on the cluster's JetStream
/// stream, where every node takes it for the accounts it holds.
async fn publish_signal(out: &Output, a: &SendArgs, nats: &str) -> anyhow::Result<()> {
    let signal = stoxide_engine::signal::parse(&serde_json::to_vec(&a.body())?, chrono::Utc::now())
        .map_err(|e| anyhow::anyhow!("the signal is refused: {e}"))?;
    let bus = stoxide_cluster::SignalBus::connect(nats, env_var("STOXIDE_NATS_STREAM").as_deref()).await?;
    let (sequence, duplicate) = bus.publish(&signal).await?;
    if out.json {
        return out.print_json(&serde_json::json!({
            "strategy": signal.strategy, "signal_id": signal.id, "queued": true,
            "sequence": sequence, "duplicate": duplicate,
        }));
    }
    if duplicate {
        say!(
            "signal {}/{} was already on the cluster's stream (sequence {sequence}): one signal",
            a.strategy,
            a.id
        );
    } else {
        say!(
            "signal {}/{} queued for every node (stream sequence {sequence})",
            a.strategy,
            a.id
        );
    }
    say!("see each one: stoxide intents --signal {}/{}", a.strategy, a.id);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct KillArgs {
    /// Only this account (Upstox user id); with --strategy, only that subscription.
    #[arg(long)]
    user: Option<String>,
    /// Only this strategy's subscriptions (of --user, when given).
    #[arg(long)]
    strategy: Option<String>,
    /// halted, reducing (exits only) or active (lifts the switch).
    #[arg(long, default_value = "halted")]
    state: String,
    /// Also exit every open position in scope with a market order.
    #[arg(long)]
    exit: bool,
    /// Leave open orders alone.
    #[arg(long)]
    no_cancel: bool,
    #[arg(long)]
    note: Option<String>,
    /// The engine's URL (default: the one running on this data directory).
    #[arg(long)]
    engine: Option<String>,
}

/// The (level, target) pairs a kill covers.
async fn kill_scope(globals: &Globals, a: &KillArgs) -> anyhow::Result<Vec<(Level, String)>> {
    Ok(match (&a.user, &a.strategy) {
        (None, None) => vec![(Level::Global, String::new())],
        (Some(u), None) => vec![(Level::User, u.clone())],
        (user, Some(s)) => {
            let desk = Desk::new(crate::vault::open(globals).await?);
            desk.strategy(s).await?;
            let subs: Vec<(Level, String)> = desk
                .subscriptions(user.as_deref())
                .await?
                .into_iter()
                .filter(|x| &x.strategy == s)
                .map(|x| (Level::Subscription, x.id))
                .collect();
            anyhow::ensure!(
                !subs.is_empty(),
                "no subscription of {s}{} to kill",
                user.as_ref().map(|u| format!(" for {u}")).unwrap_or_default()
            );
            subs
        }
    })
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Global => "global",
        Level::User => "user",
        Level::Subscription => "subscription",
    }
}

/// "halted at the user level for SIM001".
fn scope_words(state: &str, level: Level, target: &str) -> String {
    let whom = if target.is_empty() {
        String::new()
    } else {
        format!(" for {target}")
    };
    format!("{state} at the {} level{whom}", level_name(level))
}

pub(crate) async fn kill(globals: &Globals, out: &Output, a: KillArgs) -> anyhow::Result<()> {
    let state = match a.state.as_str() {
        "halted" => TradingState::Halted,
        "reducing" => TradingState::Reducing,
        "active" => TradingState::Active,
        other => anyhow::bail!("--state {other:?} is not halted, reducing or active"),
    };
    let scope = kill_scope(globals, &a).await?;
    let dir: PathBuf = crate::vault::data_dir(globals)?;
    let engine = running_engine(&dir, a.engine.clone()).ok();
    let mut reports = Vec::new();
    for (level, target) in &scope {
        let answered = match &engine {
            Some((url, Some(token))) => reqwest::Client::new()
                .post(format!("{url}/kill"))
                .bearer_auth(token.expose_secret())
                .json(&serde_json::json!({
                    "level": level_name(*level), "target": target, "state": a.state,
                    "cancel": !a.no_cancel, "exit": a.exit, "note": a.note,
                    "by": Actor::cli().by,
                }))
                .send()
                .await
                .ok(),
            _ => None,
        };
        let Some(resp) = answered else {
            // No engine answered: the state is recorded, and holds when one starts.
            anyhow::ensure!(
                !a.exit,
                "no engine is running to cancel or exit (start `stoxide engine run`); without --exit the state alone is recorded"
            );
            let desk = Desk::new(crate::vault::open(globals).await?);
            let record = desk
                .set_state(*level, target, state, a.note.clone(), &Actor::cli())
                .await?;
            if !out.json {
                say!(
                    "{} recorded (no engine running: nothing to cancel; it holds when one starts)",
                    scope_words(&a.state, *level, target)
                );
            }
            reports.push(serde_json::to_value(record)?);
            continue;
        };
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "the engine refused the kill switch ({status}): {}",
            v["error"].as_str().unwrap_or_default()
        );
        if !out.json {
            say!(
                "{}: {} lane(s) cancelling open orders, {} exit order(s) queued",
                scope_words(&a.state, *level, target),
                v["lanes_cancelling"],
                v["exits"].as_array().map_or(0, Vec::len)
            );
        }
        reports.push(v);
    }
    if out.json {
        out.print_json(&reports)?;
    }
    Ok(())
}
