//! Two engine nodes on the machine's PostgreSQL, Redis and NATS JetStream share 500 users; a
//! signal every second; one node is SIGKILLed in the middle of a fan-out. Its users move to the
//! other node, every (signal, user) has exactly one order in the simulator's books, and no user
//! was ever answered 429 (the users' limits are shared in Redis).

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use secrecy::SecretString;
use stoxide_engine::desk::{Actor, Desk};
use stoxide_engine::subscription::{Inputs, Sizing};
use stoxide_vault::{Vault, VaultConfig};
use upstox_types::Product;

use super::{Run, spawn_with_banner, stoxide};

const USERS: usize = 500;
const SIGNALS: usize = 14;
/// The node is killed this long after the signal it is killed in was published.
const KILL_AFTER_SIGNAL: usize = 5;

struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    run_id: String,
}

impl Cluster {
    fn cmd(&self) -> std::process::Command {
        let mut c = stoxide();
        c.arg("--data-dir").arg(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("run"))
    }

    /// A node, and its HTTP address.
    fn node(&self, name: &str) -> (Child, String) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log");
        let (child, banner) = spawn_with_banner(
            self.cmd()
                .env("STOXIDE_LOG", "info")
                .args([
                    "engine",
                    "run",
                    "--node",
                    name,
                    "--listen",
                    "127.0.0.1:0",
                    "--no-market-hours",
                ])
                .stderr(log),
        );
        assert_eq!(banner["node"], name);
        (child, banner["engine"].as_str().expect("url").to_owned())
    }

    fn status(&self) -> serde_json::Value {
        let r = self.run(&["--json", "cluster", "status"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).expect("status json")
    }

    /// Waits until the live nodes hold every user, `nodes` of them each at least a quarter;
    /// answers users per live node.
    fn wait_all_held(&self, nodes: usize, timeout: Duration) -> HashMap<String, u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status();
            let live: HashMap<String, u64> = s["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .filter(|n| n["alive"] == true)
                .map(|n| {
                    (
                        n["name"].as_str().expect("name").to_owned(),
                        n["users"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            let spread = live.values().filter(|n| **n >= (USERS / 4) as u64).count() == nodes;
            if spread
                && s["unowned"].as_array().is_some_and(Vec::is_empty)
                && live.values().sum::<u64>() == USERS as u64
            {
                return live;
            }
            assert!(Instant::now() < deadline, "not every user is held: {s}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Signal `n` onto the stream, or through a node's signed `POST /signals` (`via`).
    fn signal(&self, n: usize, via: Option<&str>) -> Run {
        let id = format!("{}-{n}", self.run_id);
        // Alternately one lot and flat: each signal is one order for every user.
        let lots = if n % 2 == 1 { "1" } else { "0" };
        let mut args = vec![
            "signal",
            "send",
            "--strategy",
            "momo",
            "--id",
            &id,
            "--instrument",
            "NSE_EQ|INE002A01018",
            "--action",
            "target",
            "--target-lots",
            lots,
            "--price",
            "2500",
        ];
        if let Some(url) = via {
            args.extend(["--engine", url]);
        }
        self.run(&args)
    }
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn fresh_database(admin: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} must run for this test (scripts/test.sh starts it): {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_users_and_a_sigkilled_node_costs_no_order_and_duplicates_none() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = std::env::var("STOXIDE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis = std::env::var("STOXIDE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let nats = std::env::var("STOXIDE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let stamp = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis()
    );
    let db = fresh_database(&admin, &format!("stoxide_cluster_{stamp}")).await;

    // One simulator for both nodes, outliving either (in this process).
    let sim = upstox_sim::Simulator::start(
        upstox_sim::SimConfig {
            seed_users: USERS,
            ..upstox_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("simulator");
    let mut children = Killed(Vec::new());
    let base = sim.base_url().to_owned();
    let users: Vec<(String, String)> = (1..=USERS)
        .map(|i| {
            let user = format!("SIMU{i:05}");
            let token = sim.token_of(&user).expect("seeded").to_owned();
            (user, token)
        })
        .collect();
    assert_eq!(users.len(), USERS);

    let cluster = Cluster {
        dir: tempfile::tempdir().expect("tmp"),
        env: vec![
            ("STOXIDE_DATABASE_URL".into(), db.clone()),
            ("STOXIDE_REDIS_URL".into(), redis),
            ("STOXIDE_REDIS_PREFIX".into(), format!("stoxide-cluster-test:{stamp}")),
            ("STOXIDE_NATS_URL".into(), nats),
            ("STOXIDE_NATS_STREAM".into(), format!("STOXIDE_TEST_{stamp}")),
        ],
        run_id: format!("c{stamp}"),
    };
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/strategies.toml");
    let r = cluster.run(&["strategy", "add", catalog]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // The users linked and subscribed, as the portal or the desk would.
    let vault = Vault::open(&VaultConfig::sqlite(cluster.dir.path()).with_database(SecretString::from(db.clone())))
        .await
        .expect("vault");
    let desk = Desk::new(vault.clone());
    let actor = Actor::cli();
    for (user, token) in &users {
        vault
            .store_token(&stoxide_vault::NewToken::imported(
                user.clone(),
                base.clone(),
                SecretString::from(token.clone()),
            ))
            .await
            .expect("link");
        let id = format!("momo:{user}");
        let inputs = Inputs {
            sizing: Sizing::FixedLots { lots: 1, multiplier: 1 },
            max_exposure: Decimal::from(1_000_000),
            max_open_positions: 5,
            max_orders_per_day: 100,
            daily_max_loss: Decimal::from(50_000),
            product: Product::Intraday,
            whitelist: None,
            paper: false,
        };
        desk.subscribe(Some(&id), user, "momo", inputs, &actor)
            .await
            .expect("subscribe");
        desk.activate(&id, &actor).await.expect("activate");
    }

    // A node needs the shared services, and says which is missing.
    let lone = Run::from(
        stoxide()
            .args([
                "--data-dir",
                cluster.dir.path().to_str().expect("utf8"),
                "engine",
                "run",
                "--node",
                "x",
            ])
            .env("STOXIDE_DATABASE_URL", &db)
            .output()
            .expect("run"),
    );
    super::assert_one_line_error(&lone, "STOXIDE_REDIS_URL");

    let a = format!("a{}", std::process::id());
    let b = format!("b{}", std::process::id());
    let (node_a, _) = cluster.node(&a);
    children.0.push(node_a);
    let (node_b, b_url) = cluster.node(&b);
    children.0.push(node_b);
    // The first node takes every user; the second gets its share as the first lets it go.
    let spread = cluster.wait_all_held(2, Duration::from_secs(60));
    assert_eq!(spread.len(), 2, "{spread:?}");
    assert!(spread.values().all(|n| *n > 100), "both nodes hold users: {spread:?}");

    let mut killed_at = None;
    // The last signal comes signed to a node's HTTP endpoint, which puts it on the stream.
    let mut secret = cluster
        .cmd()
        .args(["strategy", "secret", "momo"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("secret");
    std::io::Write::write_all(
        &mut secret.stdin.take().expect("stdin"),
        b"a-vendor-signing-secret-0001\n",
    )
    .expect("write");
    assert!(secret.wait().expect("wait").success());
    for n in 1..=SIGNALS {
        let sent = Instant::now();
        let via = (n == SIGNALS).then_some(b_url.as_str());
        let r = cluster.signal(n, via);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("queued for every node"), "{}", r.stdout);
        if n == KILL_AFTER_SIGNAL {
            // In the middle of that signal's fan-out.
            std::thread::sleep(Duration::from_millis(150));
            let node_a = &mut children.0[0];
            node_a.kill().expect("SIGKILL");
            let _ = node_a.wait();
            killed_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(sent.elapsed()));
    }
    let after = cluster.wait_all_held(1, Duration::from_secs(60));
    // The same signal again, to the endpoint: the stream had it, one signal.
    let again = cluster.signal(SIGNALS, Some(&b_url));
    super::assert_one_line_error(&again, "already received");
    let took_over = killed_at.expect("killed").elapsed();
    // One node reads the market for every node; after the kill, the survivor.
    let feed = Instant::now() + Duration::from_secs(30);
    loop {
        let s = cluster.status();
        let readers: Vec<&str> = s["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["alive"] == true && n["feed"] == true)
            .filter_map(|n| n["name"].as_str())
            .collect();
        if readers == [b.as_str()] {
            break;
        }
        assert!(Instant::now() < feed, "the feed did not move to {b}: {s}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(after.get(&b).copied(), Some(USERS as u64), "{after:?}");
    eprintln!("node {b} held every user {} ms after the kill", took_over.as_millis());

    // Every (signal, user): one intent, filled, and one order with its tag at the broker.
    let deadline = Instant::now() + Duration::from_secs(120);
    let store = vault.store().clone();
    let mut intents = Vec::new();
    for n in 1..=SIGNALS {
        let id = format!("{}-{n}", cluster.run_id);
        loop {
            let got = store.intents_of_signal("momo", &id).await.expect("intents");
            if got.len() == USERS && got.iter().all(|i| i.state == "filled") {
                intents.extend(got);
                break;
            }
            if Instant::now() > deadline {
                let mut states: HashMap<String, usize> = HashMap::new();
                for i in &got {
                    *states.entry(format!("{} {:?}", i.state, i.reason)).or_default() += 1;
                }
                panic!("signal {id}: {} intents of {USERS}, states {states:#?}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let http = reqwest::Client::new();
    let mut orders_total = 0;
    for (user, token) in &users {
        let book: serde_json::Value = http
            .get(format!("{base}/v2/order/retrieve-all"))
            .bearer_auth(token)
            .send()
            .await
            .expect("order book")
            .json()
            .await
            .expect("json");
        let mut by_tag: HashMap<String, usize> = HashMap::new();
        for o in book["data"].as_array().expect("orders") {
            *by_tag
                .entry(o["tag"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
            orders_total += 1;
        }
        for i in intents.iter().filter(|i| &i.account == user) {
            assert_eq!(
                by_tag.get(&i.tag).copied(),
                Some(1),
                "{user}: {} orders tagged {}",
                by_tag.get(&i.tag).copied().unwrap_or(0),
                i.tag
            );
        }
    }
    assert_eq!(orders_total, USERS * SIGNALS, "no order beyond one per (signal, user)");

    // No user was ever answered 429: the nodes kept to each user's limits together.
    let limited = store
        .audit_log()
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.kind == "rate_limited")
        .count();
    assert_eq!(limited, 0, "429s were met");

    // What the surviving node did on taking over (shown with --nocapture).
    let log = std::fs::read_to_string(cluster.dir.path().join(format!("{b}.log"))).unwrap_or_default();
    for line in log
        .lines()
        .filter(|l| l.contains("taken over") || l.contains("caught up"))
    {
        eprintln!("{b}: {line}");
    }
    let status = cluster.run(&["cluster", "status"]);
    assert!(status.stdout.contains(&b), "{}", status.stdout);
    drop(children);
    vault.close().await;
    sim.shutdown().await;
    drop_database(&admin, &format!("stoxide_cluster_{stamp}")).await;
}

async fn drop_database(admin: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut c) = sqlx::PgConnection::connect(admin).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
    }
}
