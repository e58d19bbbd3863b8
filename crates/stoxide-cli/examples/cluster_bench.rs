//! The scale-out benchmark: N engine nodes on the machine's PostgreSQL, Redis and NATS, the users
//! spread over several simulator processes, one signal a second for a while, one node SIGKILLed
//! part-way. Reports duplicates, lost (signal, user) pairs, signal → acknowledgement latencies
//! before and after the kill, and how long the killed node's users took to move.
//!
//! ```sh
//! cargo build --release -p stoxide-cli --bin stoxide --example cluster_bench
//! target/release/examples/cluster_bench --nodes 3 --users 10000 --sims 4 --seconds 60 --kill-at 30
//! target/release/examples/cluster_bench --nodes 1 --users 10000 --sims 4 --seconds 60
//! ```
//! Needs `target/release/stoxide` beside it, PostgreSQL (`STOXIDE_TEST_POSTGRES_URL`, default
//! postgres://postgres@127.0.0.1:5432/postgres), Redis (`STOXIDE_TEST_REDIS_URL`) and NATS with
//! JetStream (`STOXIDE_TEST_NATS_URL`) on 127.0.0.1.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rust_decimal::Decimal;
use secrecy::SecretString;
use stoxide_engine::desk::{Actor, Desk};
use stoxide_engine::signal::{Action, Signal};
use stoxide_engine::subscription::{Inputs, Sizing};
use stoxide_vault::{Vault, VaultConfig};
use upstox_types::Product;

struct Args {
    nodes: usize,
    users: usize,
    sims: usize,
    seconds: usize,
    kill_at: Option<usize>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        nodes: 3,
        users: 10_000,
        sims: 4,
        seconds: 60,
        kill_at: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v: usize = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{k} needs a number"))?
            .parse()?;
        match k.as_str() {
            "--nodes" => a.nodes = v,
            "--users" => a.users = v,
            "--sims" => a.sims = v,
            "--seconds" => a.seconds = v,
            "--kill-at" => a.kill_at = Some(v),
            other => anyhow::bail!("unknown flag {other} (--nodes --users --sims --seconds --kill-at)"),
        }
    }
    anyhow::ensure!(
        a.nodes > 0 && a.sims > 0 && a.users >= a.sims,
        "nodes, sims ≥ 1 and users ≥ sims"
    );
    Ok(a)
}

fn stoxide_bin() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("stoxide"))
        .ok_or_else(|| anyhow::anyhow!("cannot find target/<profile>/stoxide"))?;
    anyhow::ensure!(
        bin.exists(),
        "build it first: cargo build --release -p stoxide-cli --bin stoxide ({})",
        bin.display()
    );
    Ok(bin)
}

fn spawn_banner(cmd: &mut Command) -> anyhow::Result<(Child, serde_json::Value)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?).read_line(&mut first)?;
    Ok((child, serde_json::from_str(&first)?))
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args()?;
    let bin = stoxide_bin()?;
    let admin = std::env::var("STOXIDE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis = std::env::var("STOXIDE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let nats = std::env::var("STOXIDE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let db_name = format!("stoxide_bench_{stamp}");
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&mut c)
            .await?;
    }
    let db = format!(
        "{}/{db_name}",
        admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)
    );
    let dir = tempfile::tempdir()?;
    let stream = format!("STOXIDE_BENCH_{stamp}");
    let env: Vec<(&str, String)> = vec![
        ("STOXIDE_DATABASE_URL", db.clone()),
        ("STOXIDE_REDIS_URL", redis),
        ("STOXIDE_REDIS_PREFIX", format!("stoxide-bench:{stamp}")),
        ("STOXIDE_NATS_URL", nats.clone()),
        ("STOXIDE_NATS_STREAM", stream.clone()),
        ("STOXIDE_CLUSTER_NODES", a.nodes.to_string()),
    ];
    let cmd = || {
        let mut c = Command::new(&bin);
        c.arg("--data-dir").arg(dir.path());
        for (k, v) in &env {
            c.env(k, v);
        }
        c
    };
    let mut children = Children(Vec::new());

    // The simulators, each with its own users.
    let per = a.users / a.sims;
    let mut users: Vec<(String, String, String)> = Vec::new();
    for s in 0..a.sims {
        let n = if s == a.sims - 1 { a.users - per * s } else { per };
        let file = dir.path().join(format!("sim{s}.tokens"));
        let (child, banner) = spawn_banner(
            Command::new(&bin)
                .args(["sim", "--addr", "127.0.0.1:0", "--seed-users", &n.to_string()])
                .args(["--seed-first", &(per * s + 1).to_string()])
                .arg("--tokens-file")
                .arg(&file)
                .stderr(Stdio::null()),
        )?;
        children.0.push(child);
        let base = banner["base_url"].as_str().unwrap_or_default().to_owned();
        for line in std::fs::read_to_string(&file)?.lines() {
            if let Some((u, t)) = line.split_once('\t') {
                users.push((u.to_owned(), t.to_owned(), base.clone()));
            }
        }
    }
    anyhow::ensure!(users.len() == a.users, "the simulators seeded {} users", users.len());
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/strategies.toml");
    anyhow::ensure!(
        cmd().args(["strategy", "add", catalog]).output()?.status.success(),
        "strategy add"
    );
    let vault = Vault::open(&VaultConfig::sqlite(dir.path()).with_database(SecretString::from(db.clone()))).await?;
    let desk = Desk::new(vault.clone());
    let setup = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = a.users;
    futures::stream::iter(users.iter())
        .map(|(u, t, base)| {
            let (vault, desk, done) = (vault.clone(), desk.clone(), &done);
            async move {
                vault
                    .store_token(&stoxide_vault::NewToken::imported(
                        u.clone(),
                        base.clone(),
                        SecretString::from(t.clone()),
                    ))
                    .await?;
                let id = format!("momo:{u}");
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
                desk.subscribe(Some(&id), u, "momo", inputs, &Actor::cli()).await?;
                desk.activate(&id, &Actor::cli()).await?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 1000 == 0 {
                    eprintln!("setup: {n}/{total} users linked and subscribed");
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!("setup: {} users in {:.0} s", a.users, setup.elapsed().as_secs_f64());

    // The nodes.
    let mut node_pids = Vec::new();
    // How far back a node catches up a dead node's signals (`--catch-up`, default the CLI's 60 s).
    let catch_up = std::env::var("STOXIDE_BENCH_CATCH_UP_S").unwrap_or_else(|_| "60".into());
    for n in 0..a.nodes {
        let name = format!("n{n}");
        let log = std::fs::File::create(dir.path().join(format!("{name}.log")))?;
        let (child, _) = spawn_banner(
            cmd()
                .env("STOXIDE_LOG", "warn")
                .args([
                    "engine",
                    "run",
                    "--node",
                    &name,
                    "--listen",
                    "127.0.0.1:0",
                    "--no-market-hours",
                    "--catch-up",
                    &catch_up,
                ])
                .stderr(log),
        )?;
        node_pids.push(children.0.len());
        children.0.push(child);
    }
    let store = vault.store().clone();
    let all_held = |min_each: usize, nodes: usize| {
        let store = store.clone();
        async move {
            let now = store.cluster_now_ms().await?;
            let leases = store.leases().await?;
            let mut per: HashMap<String, usize> = HashMap::new();
            for l in leases
                .iter()
                .filter(|l| l.expires_ms > now && !l.account.starts_with('~'))
            {
                *per.entry(l.node.clone()).or_default() += 1;
            }
            let held: usize = per.values().sum();
            anyhow::Ok(held == a.users && per.len() == nodes && per.values().all(|v| *v >= min_each))
        }
    };
    let t = Instant::now();
    while !all_held(a.users / (a.nodes * 2), a.nodes).await? {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(180),
            "the nodes did not share the users within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("nodes share the users after {:.1} s", t.elapsed().as_secs_f64());

    // One signal a second.
    let bus = stoxide_cluster::SignalBus::connect(&nats, Some(&stream)).await?;
    let instrument: upstox_types::InstrumentKey = "NSE_EQ|INE002A01018".parse()?;
    let mut published: Vec<(String, i64)> = Vec::new();
    let mut killed: Option<(i64, Instant)> = None;
    let start = Instant::now();
    for s in 1..=a.seconds {
        let at = start + Duration::from_secs((s - 1) as u64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        if a.kill_at == Some(s - 1) && killed.is_none() {
            let child = &mut children.0[node_pids[0]];
            child.kill()?;
            let _ = child.wait();
            killed = Some((store.cluster_now_ms().await?, Instant::now()));
            eprintln!("node n0 SIGKILLed");
        }
        let id = format!("b{stamp}-{s}");
        let signal = Signal {
            strategy: "momo".into(),
            id: id.clone(),
            instrument: instrument.clone(),
            action: Action::Target {
                lots: if s % 2 == 1 { 1 } else { 0 },
            },
            reference_price: Decimal::from(2500),
            at: chrono::Utc::now(),
        };
        let sent_ms = store.cluster_now_ms().await?;
        bus.publish(&signal).await?;
        published.push((id, sent_ms));
    }
    // Takeover: when the live nodes hold every user again.
    let takeover_ms = if let Some((_, at)) = killed {
        while !all_held(0, a.nodes - 1).await? {
            anyhow::ensure!(
                at.elapsed() < Duration::from_secs(180),
                "the killed node's users did not move within 180 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(at.elapsed().as_millis())
    } else {
        None
    };

    // Drain: every intent of every signal ended, or `STOXIDE_BENCH_DRAIN_S` (default 600 s).
    let drain_limit: u64 = std::env::var("STOXIDE_BENCH_DRAIN_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let drain = Instant::now();
    let mut last_progress = drain;
    let mut not_ended;
    let mut pg = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&db).await?
    };
    let ids: Vec<String> = published.iter().map(|(i, _)| i.clone()).collect();
    loop {
        let (total, open): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE state IN ('pending', 'placed', 'unknown'))
               FROM intents WHERE strategy = 'momo' AND signal_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&mut pg)
        .await?;
        not_ended = ids.len() * a.users - usize::try_from(total).unwrap_or(0) + usize::try_from(open).unwrap_or(0);
        if not_ended == 0 {
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            eprintln!(
                "drain: {:.0} s, {total} of {} intents decided, {open} of them working",
                drain.elapsed().as_secs_f64(),
                ids.len() * a.users
            );
        }
        if drain.elapsed() > Duration::from_secs(drain_limit) {
            eprintln!("drain: gave up after {drain_limit} s with {total} intents, {open} not ended");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_s = drain.elapsed().as_secs_f64();

    // Duplicates and lost, from the simulators' books.
    let http = reqwest::Client::new();
    let mut tags: HashMap<String, usize> = HashMap::new();
    let books = futures::stream::iter(users.iter())
        .map(|(_, t, base)| {
            let http = http.clone();
            async move {
                let v: serde_json::Value = http
                    .get(format!("{base}/v2/order/retrieve-all"))
                    .bearer_auth(t)
                    .send()
                    .await?
                    .json()
                    .await?;
                anyhow::Ok(v)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for b in books {
        for o in b?["data"].as_array().cloned().unwrap_or_default() {
            *tags
                .entry(o["tag"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    let expected: Vec<(String,)> =
        sqlx::query_as("SELECT tag FROM intents WHERE strategy = 'momo' AND signal_id = ANY($1) AND state = 'filled'")
            .bind(&ids)
            .fetch_all(&mut pg)
            .await?;
    let duplicates: usize = tags.values().filter(|n| **n > 1).map(|n| n - 1).sum();
    let pairs = ids.len() * a.users;
    let filled = expected.len();
    let with_order = expected.iter().filter(|(t,)| tags.contains_key(t)).count();
    let lost = pairs - with_order;

    // Signal → acknowledgement: each order's `order_placed` record after its signal's publication.
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT i.signal_id, a.at_ms FROM audit_log a
           JOIN intents i ON i.tag = (a.body::json->>'tag')
          WHERE a.kind = 'order_placed' AND i.signal_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut pg)
    .await?;
    let sent: HashMap<&str, i64> = published.iter().map(|(i, t)| (i.as_str(), *t)).collect();
    let kill_ms = killed.map(|(ms, _)| ms);
    let mut last_ack: HashMap<String, i64> = HashMap::new();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for (sig, at) in &rows {
        let Some(s) = sent.get(sig.as_str()) else { continue };
        let lat = at - s;
        let e = last_ack.entry(sig.clone()).or_insert(lat);
        *e = (*e).max(lat);
        if kill_ms.is_some_and(|k| *s >= k) {
            after.push(lat);
        } else {
            before.push(lat);
        }
    }
    let (mut last_before, mut last_after): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    for (sig, l) in &last_ack {
        let s = sent[sig.as_str()];
        if kill_ms.is_some_and(|k| s >= k) {
            last_after.push(*l);
        } else {
            last_before.push(*l);
        }
    }
    for v in [&mut before, &mut after, &mut last_before, &mut last_after] {
        v.sort_unstable();
    }
    println!(
        "nodes {} · users {} · simulators {} · {} signals · killed {:?}",
        a.nodes,
        a.users,
        a.sims,
        ids.len(),
        a.kill_at
    );
    println!(
        "(signal, user) pairs {pairs}: filled {filled}, with exactly their order {with_order}; lost {lost}; duplicates {duplicates}"
    );
    println!(
        "signal → each order's ack, ms: before the kill p50 {} p99 {} (n={}); after p50 {} p99 {} (n={})",
        pct(&before, 0.5),
        pct(&before, 0.99),
        before.len(),
        pct(&after, 0.5),
        pct(&after, 0.99),
        after.len()
    );
    println!(
        "signal → its last ack, ms: before the kill p50 {} p99 {} ({} signals); after p50 {} p99 {} ({} signals)",
        pct(&last_before, 0.5),
        pct(&last_before, 0.99),
        last_before.len(),
        pct(&last_after, 0.5),
        pct(&last_after, 0.99),
        last_after.len()
    );
    println!(
        "takeover (kill → every user held by a live node): {takeover_ms:?} ms; drain after the last signal {drained_s:.1} s"
    );
    drop(children);
    vault.close().await;
    Ok(())
}
