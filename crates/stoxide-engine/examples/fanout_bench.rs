//! The engine's fan-out measured against the simulator, side by side with what people write
//! today. Figures go to BENCHMARKS.md; nothing here passes or fails.
//!
//! `cargo run --release -p stoxide-engine --example fanout_bench -- [users] [latency_ms]`
//! (defaults 150 and 30), and `… -- scale [users] [dry_runs]` (default 10000 users, three
//! subscriptions each, the paper broker, no latency; each kind of decision measured over
//! `dry_runs` previews, default 15) for allocation + risk at scale and memory per user.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
use upstox_client::orders::PlaceOrderRequest;
use upstox_sim::SimConfig;
use upstox_types::{InstrumentKey, Product, TransactionType};

const RELIANCE: &str = "NSE_EQ|INE002A01018";

fn key() -> InstrumentKey {
    InstrumentKey::from_str(RELIANCE).expect("key")
}

fn strategy(id: &str) -> Strategy {
    Strategy {
        id: id.into(),
        name: id.into(),
        description: "bench".into(),
        version: 1,
        algo_name: format!("BENCH-{id}").to_uppercase(),
        registered: true,
        instruments: vec![key()],
        bounds: InputBounds {
            max_lots: 10,
            max_multiplier: 5,
            max_margin_percent: Decimal::from(50),
            max_exposure: Decimal::from(10_000_000),
            max_orders_per_day: 1000,
            max_open_positions: 10,
        },
        source: SignalSource::External,
    }
}

fn inputs(paper: bool) -> Inputs {
    Inputs {
        sizing: Sizing::FixedLots { lots: 1, multiplier: 1 },
        max_exposure: Decimal::from(1_000_000),
        max_open_positions: 5,
        max_orders_per_day: 500,
        daily_max_loss: Decimal::from(100_000),
        product: Product::Intraday,
        whitelist: None,
        paper,
    }
}

fn signal(strategy: &str, id: &str, action: Action) -> Signal {
    Signal {
        strategy: strategy.into(),
        id: id.into(),
        instrument: key(),
        action,
        reference_price: Decimal::from(2500),
        at: chrono::Utc::now(),
    }
}

fn instruments() -> HashMap<InstrumentKey, Instrument> {
    let mut m = HashMap::new();
    m.insert(
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
    m
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn link(vault: &Vault, base_url: &str, user: &str, token: SecretString) {
    vault
        .store_token(&stoxide_vault::NewToken::imported(user, base_url, token))
        .await
        .expect("store token");
}

fn place(side: TransactionType, tag: String) -> PlaceOrderRequest {
    PlaceOrderRequest {
        tag: Some(tag),
        market_protection: Some(5),
        ..PlaceOrderRequest::market(RELIANCE, side, 1, Product::Intraday)
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("scale") {
        let users = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let previews = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(15);
        scale(users, previews).await;
    } else {
        let users = args.first().and_then(|v| v.parse().ok()).unwrap_or(150);
        let latency = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(30);
        fanout(users, latency).await;
    }
}

/// One signal to `users` users, against the simulator with `latency` ms per call.
async fn fanout(users: usize, latency: u64) {
    let mut config = SimConfig {
        seed_users: users,
        ..SimConfig::default()
    };
    config.faults.latency_ms = latency;
    let sim = upstox_sim::Simulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let names: Vec<String> = (1..=users).map(|i| format!("SIMU{i:05}")).collect();
    let clients = Clients::new(RateLimiter::default(), None);
    let user_clients: Vec<_> = names
        .iter()
        .map(|u| {
            clients
                .for_user(
                    &sim.base_url(),
                    u,
                    SecretString::from(sim.token_of(u).expect("seeded").to_owned()),
                )
                .expect("client")
        })
        .collect();

    // One round trip: one place, one user.
    let t = Instant::now();
    user_clients[0]
        .place_order_v3(&place(TransactionType::Buy, "rt".into()))
        .await
        .expect("place");
    let round_trip = t.elapsed();

    // What people write today: a loop over users, one place after another.
    let t = Instant::now();
    for (i, c) in user_clients.iter().enumerate() {
        c.place_order_v3(&place(TransactionType::Buy, format!("seq{i}")))
            .await
            .expect("place");
    }
    let sequential = t.elapsed();

    // A well-known multi-account tool's design: batches of 5, 0.3 s apart.
    let t = Instant::now();
    for (b, batch) in user_clients.chunks(5).enumerate() {
        let started = futures::future::join_all(batch.iter().enumerate().map(|(i, c)| async move {
            c.place_order_v3(&place(TransactionType::Sell, format!("b{b}-{i}")))
                .await
        }));
        let results = started.await;
        assert!(results.iter().all(Result::is_ok), "batch {b}");
        if b + 1 < user_clients.len().div_ceil(5) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let batched = t.elapsed();

    // The engine.
    let dir = tempfile::tempdir().expect("tmp");
    let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("vault");
    let desk = Desk::new(vault.clone());
    let actor = Actor {
        by: "bench".into(),
        from: "bench".into(),
    };
    desk.register(&strategy("momo"), &actor).await.expect("register");
    for u in &names {
        link(
            &vault,
            &sim.base_url(),
            u,
            SecretString::from(sim.token_of(u).expect("seeded").to_owned()),
        )
        .await;
        let id = format!("momo:{u}");
        desk.subscribe(Some(&id), u, "momo", inputs(false), &actor)
            .await
            .expect("subscribe");
        desk.activate(&id, &actor).await.expect("activate");
    }
    let prices = Prices::default();
    prices.update(&key(), 2500.0, None, None);
    let engine = Engine::start(
        EngineParts {
            vault: vault.clone(),
            live: Arc::new(UpstoxBrokers::new(clients.clone())),
            paper: Arc::new(PaperBrokers::new(prices.clone(), Decimal::from(1_000_000))),
            prices,
            instruments: instruments(),
        },
        EngineConfig {
            check_market_hours: false,
            ..EngineConfig::default()
        },
    )
    .await
    .expect("engine");
    let mut rows = Vec::new();
    for (n, (id, action)) in [("cold", Action::EnterLong), ("warm", Action::Exit)].iter().enumerate() {
        let t = Instant::now();
        let report = engine
            .submit(signal("momo", id, *action), "bench")
            .await
            .expect("submit");
        let accepted = t.elapsed();
        let p = engine
            .wait_acked("momo", id, Duration::from_secs(120))
            .await
            .expect("progress");
        let total = t.elapsed();
        let settled = engine
            .wait_settled("momo", id, Duration::from_secs(120))
            .await
            .expect("settled");
        let timings = report.timings.expect("timings");
        rows.push((n, *id, accepted, p.last_ack_ms, total, settled, timings));
    }
    println!("users {users}, injected latency {latency} ms per call");
    println!("one round trip (one place):             {:8.1} ms", ms(round_trip));
    println!("sequential loop over users:             {:8.1} ms", ms(sequential));
    println!("batches of 5, 0.3 s apart:              {:8.1} ms", ms(batched));
    for (_, id, accepted, last_ack, total, settled, t) in &rows {
        println!(
            "engine ({id} caches): accepted → last ack {:6} ms; signal in → last ack {:8.1} ms \
             (warm {:.1} ms, decide {:.2} ms, commit {:.1} ms; accepted after {:.1} ms); settled {}/{}",
            last_ack.unwrap_or(0),
            ms(*total),
            t.warm_us as f64 / 1000.0,
            t.decide_us as f64 / 1000.0,
            t.commit_us as f64 / 1000.0,
            ms(*accepted),
            settled.settled,
            settled.orders
        );
    }
    engine.shutdown().await;
    sim.shutdown().await;
}

/// `users` users × 3 subscriptions on the paper broker: allocation + risk for one signal, the
/// whole fan-out, and memory per user.
async fn scale(users: usize, previews: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("vault");
    let desk = Desk::new(vault.clone());
    let actor = Actor {
        by: "bench".into(),
        from: "bench".into(),
    };
    // One strategy, three subscriptions per user (three accounts' worth of inputs each).
    desk.register(&strategy("s0"), &actor).await.expect("register");
    let t = Instant::now();
    for i in 0..users {
        let u = format!("U{i:06}");
        link(
            &vault,
            "http://127.0.0.1:9",
            &u,
            SecretString::from(format!("paper_token_{i:012}")),
        )
        .await;
        for k in 0..3 {
            let id = format!("s0:{u}:{k}");
            desk.subscribe(Some(&id), &u, "s0", inputs(true), &actor)
                .await
                .expect("subscribe");
            desk.activate(&id, &actor).await.expect("activate");
        }
    }
    let setup = t.elapsed();
    let prices = Prices::default();
    prices.update(&key(), 2500.0, None, None);
    let before = rss_kib();
    let engine = Engine::start(
        EngineParts {
            vault: vault.clone(),
            live: Arc::new(UpstoxBrokers::new(Clients::new(RateLimiter::default(), None))),
            paper: Arc::new(PaperBrokers::new(prices.clone(), Decimal::from(100_000_000))),
            prices,
            instruments: instruments(),
        },
        EngineConfig {
            check_market_hours: false,
            paper: true,
            ..EngineConfig::default()
        },
    )
    .await
    .expect("engine");
    println!(
        "users {users} × 3 subscriptions (paper broker); setup (links, subscriptions, consents) {:.1} s",
        setup.as_secs_f64()
    );
    // Each phase: `previews` dry runs (allocation + risk with nothing sent, so the same state is
    // measured again and again), then, where the phase moves the books, one real signal through
    // to its last fill.
    type Phase<'a> = (&'a str, Action, Option<(&'a str, Action)>);
    let phases: [Phase<'_>; 4] = [
        (
            "entry, no position yet",
            Action::EnterLong,
            Some(("x-1", Action::EnterLong)),
        ),
        ("exit of the position every subscription holds", Action::Exit, None),
        (
            "reversal (long to short: the whole gate, a position held)",
            Action::EnterShort,
            Some(("x-2", Action::Exit)),
        ),
        (
            "entry again, flat books with the day's realised P&L",
            Action::EnterLong,
            None,
        ),
    ];
    let mut n = 0;
    for (what, action, real) in phases {
        let mut cpu = Vec::with_capacity(previews);
        let mut wall = Vec::with_capacity(previews);
        let mut decided = 0;
        for _ in 0..previews {
            n += 1;
            let report = engine
                .preview(&signal("s0", &format!("p-{n}"), action))
                .await
                .expect("preview");
            let t = report.timings.expect("timings");
            decided = report.intents.len();
            wall.push(t.decide_us);
            if let Some(c) = t.decide_cpu_us {
                cpu.push(c);
            }
        }
        cpu.sort_unstable();
        wall.sort_unstable();
        let stat = |v: &[u64]| match (v.first(), v.last()) {
            (Some(lo), Some(hi)) => format!(
                "median {:.2} ms (min {:.2}, max {:.2})",
                v[v.len() / 2] as f64 / 1000.0,
                *lo as f64 / 1000.0,
                *hi as f64 / 1000.0
            ),
            _ => "-".to_owned(),
        };
        println!(
            "decide, {what}: {decided} subscriptions, {previews} dry runs: CPU {}; wall {}",
            stat(&cpu),
            stat(&wall)
        );
        let Some((id, action)) = real else { continue };
        let t = Instant::now();
        let report = engine.submit(signal("s0", id, action), "bench").await.expect("submit");
        let settled = engine
            .wait_settled("s0", id, Duration::from_secs(600))
            .await
            .expect("settled");
        let total = t.elapsed();
        let timings = report.timings.expect("timings");
        println!(
            "signal {id} ({action:?}): decide {:.2} ms ({} ms CPU); warm {:.1} ms; commit {:.1} ms; \
             whole fan-out to the last fill {:.1} ms; settled {}/{}",
            timings.decide_us as f64 / 1000.0,
            timings
                .decide_cpu_us
                .map_or("?".to_owned(), |c| format!("{:.2}", c as f64 / 1000.0)),
            timings.warm_us as f64 / 1000.0,
            timings.commit_us as f64 / 1000.0,
            ms(total),
            settled.settled,
            settled.orders
        );
    }
    let after = rss_kib();
    println!(
        "memory: RSS {} MiB → {} MiB with the engine running: {:.1} KiB per user",
        before / 1024,
        after / 1024,
        after.saturating_sub(before) as f64 / users as f64
    );
    engine.shutdown().await;
}
