//! The engine against the in-process simulator over real HTTP, with a vault and store in a
//! temporary directory: signals to many users with faults, consent, kill switches, lost
//! answers and restarts, and the audit trail.

mod audit;
mod consent;
mod fanout;
mod restart;
mod rules;
mod runner;
mod takeover;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::SecretString;
use stoxide_app::clients::Clients;
use stoxide_engine::allocation::InstrumentInfo;
use stoxide_engine::broker::paper::{PaperBrokers, Prices};
use stoxide_engine::broker::upstox::UpstoxBrokers;
use stoxide_engine::catalog::{InputBounds, SignalSource, Strategy};
use stoxide_engine::desk::{Actor, Desk};
use stoxide_engine::signal::{Action, Signal};
use stoxide_engine::subscription::{Inputs, Sizing};
use stoxide_engine::{Engine, EngineConfig, EngineParts, Instrument};
use stoxide_vault::{Vault, VaultConfig};
use upstox_client::RateLimiter;
use upstox_client::orders::Order;
use upstox_sim::{SimConfig, Simulator};
use upstox_types::{InstrumentKey, Product};

pub(crate) const RELIANCE: &str = "NSE_EQ|INE002A01018";
pub(crate) const STRATEGY: &str = "momo";

pub(crate) struct World {
    pub sim: Simulator,
    pub vault: Vault,
    pub desk: Desk,
    pub users: Vec<String>,
    /// The PostgreSQL database of a world on PostgreSQL (drop it with [`World::finish`]).
    pub pg: Option<PgDb>,
    pub _dir: tempfile::TempDir,
}

impl World {
    /// Stops the simulator and drops a PostgreSQL database.
    pub(crate) async fn finish(self) {
        self.vault.close().await;
        self.sim.shutdown().await;
        if let Some(db) = self.pg {
            db.drop_db().await;
        }
    }
}

pub(crate) fn actor() -> Actor {
    Actor {
        by: "tester".into(),
        from: "127.0.0.1".into(),
    }
}

pub(crate) fn strategy() -> Strategy {
    Strategy {
        id: STRATEGY.into(),
        name: "Momentum".into(),
        description: "test".into(),
        version: 1,
        algo_name: "STOXIDE-MOMO".into(),
        registered: false,
        instruments: vec![key()],
        bounds: InputBounds {
            max_lots: 10,
            max_multiplier: 5,
            max_margin_percent: Decimal::from(50),
            max_exposure: Decimal::from(10_000_000),
            max_orders_per_day: 100,
            max_open_positions: 10,
        },
        source: SignalSource::External,
    }
}

pub(crate) fn inputs(lots: u32) -> Inputs {
    Inputs {
        sizing: Sizing::FixedLots { lots, multiplier: 1 },
        max_exposure: Decimal::from(1_000_000),
        max_open_positions: 5,
        max_orders_per_day: 50,
        daily_max_loss: Decimal::from(50_000),
        product: Product::Intraday,
        whitelist: None,
        paper: false,
    }
}

pub(crate) fn key() -> InstrumentKey {
    InstrumentKey::from_str(RELIANCE).expect("key")
}

pub(crate) fn signal(id: &str, action: Action) -> Signal {
    Signal {
        strategy: STRATEGY.into(),
        id: id.into(),
        instrument: key(),
        action,
        reference_price: Decimal::from(2500),
        at: chrono::Utc::now(),
    }
}

/// A fresh PostgreSQL database on 127.0.0.1 (`STOXIDE_TEST_POSTGRES_URL`, as the test script
/// sets it), dropped with the world.
pub(crate) struct PgDb {
    admin: String,
    name: String,
}

impl PgDb {
    async fn exec(admin: &str, sql: String) {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} must run for these tests (scripts/test.sh starts it): {e}")
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .expect("admin statement");
    }

    async fn new() -> (Self, SecretString) {
        let admin = std::env::var("STOXIDE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("stoxide_e_{:016x}", rand_u64());
        Self::exec(&admin, format!("CREATE DATABASE {name}")).await;
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("STOXIDE_TEST_POSTGRES_URL has no database path: {admin}"),
        };
        (Self { admin, name }, SecretString::from(url))
    }

    pub(crate) async fn drop_db(self) {
        Self::exec(
            &self.admin,
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Where a world's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A simulator with `n` seeded users, each linked in a fresh vault, subscribed to the test
/// strategy and (when `activate`) consenting.
pub(crate) async fn world(n: usize, config: SimConfig, activate: bool) -> World {
    world_on(Backend::Sqlite, n, config, activate).await
}

/// [`world`] with its store on `backend`.
pub(crate) async fn world_on(backend: Backend, n: usize, config: SimConfig, activate: bool) -> World {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(
        SimConfig {
            seed_users: n,
            ..config
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let (pg, vault_config) = match backend {
        Backend::Sqlite => (None, VaultConfig::sqlite(dir.path())),
        Backend::Postgres => {
            let (db, url) = PgDb::new().await;
            (Some(db), VaultConfig::sqlite(dir.path()).with_database(url))
        }
    };
    let vault = Vault::open(&vault_config).await.expect("vault");
    let desk = Desk::new(vault.clone());
    desk.register(&strategy(), &actor()).await.expect("register");
    let users: Vec<String> = (1..=n).map(|i| format!("SIMU{i:05}")).collect();
    for u in &users {
        let token = SecretString::from(sim.token_of(u).expect("seeded").to_owned());
        link(&vault, &sim, u, token).await;
        let id = format!("{STRATEGY}:{u}");
        desk.subscribe(Some(&id), u, STRATEGY, inputs(1), &actor())
            .await
            .expect("subscribe");
        if activate {
            desk.activate(&id, &actor()).await.expect("activate");
        }
    }
    World {
        sim,
        vault,
        desk,
        users,
        pg,
        _dir: dir,
    }
}

pub(crate) async fn link(vault: &Vault, sim: &Simulator, user: &str, token: SecretString) {
    vault
        .store_token(&stoxide_vault::NewToken::imported(user, sim.base_url(), token))
        .await
        .expect("store token");
}

pub(crate) fn config() -> EngineConfig {
    EngineConfig {
        check_market_hours: false,
        poll_interval: Duration::from_millis(200),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        // The simulator carries out every write it received at once (unless a test says
        // otherwise): a short quiet period keeps the tests quick.
        resend_quiet: Duration::from_secs(4),
        ..EngineConfig::default()
    }
}

pub(crate) async fn engine(w: &World, config: EngineConfig) -> Engine {
    let prices = Prices::default();
    prices.update(&key(), 2500.0, None, None);
    engine_with(w, config, prices).await
}

/// An engine whose marks come from `prices`.
pub(crate) async fn engine_with(w: &World, config: EngineConfig, prices: Prices) -> Engine {
    engine_of(w, config, prices, true).await
}

/// An engine that knows the test's instrument (`loaded`) or none, as one whose instrument
/// master could not be read.
pub(crate) async fn engine_of(w: &World, config: EngineConfig, prices: Prices, loaded: bool) -> Engine {
    let clients = Clients::new(RateLimiter::default(), None).with_timeout(Duration::from_secs(2));
    let mut instruments = HashMap::new();
    instruments.insert(
        key(),
        Instrument {
            info: InstrumentInfo {
                key: key(),
                lot_size: 1,
                freeze_quantity: None,
            },
            multiplier: 1,
        },
    );
    if !loaded {
        instruments.clear();
    }
    Engine::start(
        EngineParts {
            vault: w.vault.clone(),
            live: std::sync::Arc::new(UpstoxBrokers::new(clients)),
            paper: std::sync::Arc::new(PaperBrokers::new(prices.clone(), Decimal::from(1_000_000))),
            prices,
            instruments,
        },
        config,
    )
    .await
    .expect("engine")
}

/// The user's orders at the simulator carrying `tag`.
pub(crate) async fn orders_tagged(sim: &Simulator, user: &str, tag: &str) -> Vec<Order> {
    let token = SecretString::from(sim.token_of(user).expect("user").to_owned());
    let client = Clients::new(RateLimiter::default(), None)
        .for_user(&sim.base_url(), user, token)
        .expect("client");
    let mut tries = 0;
    loop {
        match client.order_book().await {
            Ok(book) => return book.into_iter().filter(|o| o.tag.as_deref() == Some(tag)).collect(),
            // Reads under injected faults fail now and then; the book is read again.
            Err(_) if tries < 30 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("order book of {user}: {e}"),
        }
    }
}

/// Sets the simulator's faults.
pub(crate) async fn faults(sim: &Simulator, body: serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/sim/faults", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("faults");
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}
