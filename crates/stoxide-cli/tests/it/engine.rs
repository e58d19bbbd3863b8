//! The engine as an operator runs it: a catalog, subscriptions with consent, signed signals
//! over HTTP, the kill switch, the audit trail, one engine per store — and a SIGKILL in the
//! middle of a fan-out whose answers were lost, after which the next engine sends nothing twice.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Run, SimChild, assert_one_line_error, sim_child, spawn_with_banner, stoxide};

struct Desk {
    dir: tempfile::TempDir,
}

impl Desk {
    fn run(&self, args: &[&str]) -> Run {
        let d = self.dir.path().to_str().expect("utf8");
        let mut all = vec!["--data-dir", d];
        all.extend_from_slice(args);
        Run::from(stoxide().args(&all).output().expect("run"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r.stdout
    }

    fn engine(&self) -> (std::process::Child, String) {
        self.engine_with(&[])
    }

    fn engine_with(&self, env: &[(&str, &str)]) -> (std::process::Child, String) {
        let d = self.dir.path().to_str().expect("utf8");
        // Everything the engine logs, at debug, kept to look for secrets in.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("engine.log"))
            .expect("log");
        let (child, banner) = spawn_with_banner(
            stoxide()
                .env("STOXIDE_LOG", "debug")
                .envs(env.iter().copied())
                .args([
                    "--data-dir",
                    d,
                    "engine",
                    "run",
                    "--listen",
                    "127.0.0.1:0",
                    "--no-market-hours",
                ])
                .stderr(log),
        );
        let url = banner["engine"].as_str().expect("engine url").to_owned();
        (child, url)
    }

    fn intents(&self, signal: &str) -> Vec<serde_json::Value> {
        let out = self.ok(&["--json", "intents", "--signal", signal]);
        serde_json::from_str(&out).expect("json")
    }

    /// Waits until every intent of `signal` is in `state`.
    fn wait_all(&self, signal: &str, state: &str, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.intents(signal);
            if got.len() == n && got.iter().all(|i| i["state"] == state) {
                return got;
            }
            assert!(Instant::now() < deadline, "not all {state}: {got:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn setup(sim: &SimChild, users: &[&str]) -> Desk {
    let desk = Desk {
        dir: tempfile::tempdir().expect("tmp"),
    };
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/strategies.toml");
    assert!(desk.ok(&["strategy", "add", catalog]).contains("momo: added"));
    for (i, user) in users.iter().enumerate() {
        let token = sim.tokens[i].clone();
        let file = desk.dir.path().join(format!("{user}.token"));
        std::fs::write(&file, token).expect("token file");
        desk.ok(&["--base-url", &sim.base, "token", "import", file.to_str().expect("utf8")]);
        std::fs::remove_file(&file).expect("rm");
        desk.ok(&[
            "--account",
            user,
            "subscription",
            "add",
            "--strategy",
            "momo",
            "--lots",
            "1",
            "--max-exposure",
            "100000",
            "--daily-max-loss",
            "5000",
        ]);
    }
    let mut secret = stoxide()
        .args([
            "--data-dir",
            desk.dir.path().to_str().expect("utf8"),
            "strategy",
            "secret",
            "momo",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("secret");
    secret
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a-vendor-signing-secret-0001\n")
        .expect("write");
    assert!(secret.wait().expect("wait").success());
    desk
}

const RELIANCE: &str = "NSE_EQ|INE002A01018";

fn send(desk: &Desk, id: &str, action: &str, wait: bool) -> Run {
    let mut args = vec![
        "signal",
        "send",
        "--strategy",
        "momo",
        "--id",
        id,
        "--instrument",
        RELIANCE,
        "--action",
        action,
        "--price",
        "2500",
    ];
    if wait {
        args.push("--wait");
    }
    desk.run(&args)
}

/// A raw HTTP/1.1 POST; answers the status line.
fn post(url: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::Read;
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn signals_trade_only_for_consenting_users_once_and_the_kill_switch_halts() {
    let sim = sim_child();
    let users = ["SIM001", "SIM002", "SIM003"];
    let desk = setup(&sim, &users);
    desk.ok(&["activate", "momo:SIM001"]);
    desk.ok(&["subscription", "activate", "momo:SIM002"]);
    // SIM003 never consents.
    // The users' rate budgets in the machine's Redis, as a cluster node keeps them.
    let redis = std::env::var("STOXIDE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let prefix = format!("stoxide-cli-test:{}", std::process::id());
    let (mut engine, url) = desk.engine_with(&[("STOXIDE_REDIS_URL", &redis), ("STOXIDE_REDIS_PREFIX", &prefix)]);

    // One engine per store.
    let second = desk.run(&["engine", "run", "--listen", "127.0.0.1:0"]);
    assert_one_line_error(&second, "another engine runs");

    let r = send(&desk, "s-1", "enter_long", true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("3 subscription(s), 2 order(s)"), "{}", r.stdout);
    let intents = desk.intents("momo/s-1");
    let state_of = |u: &str| intents.iter().find(|i| i["account"] == u).expect("intent")["state"].clone();
    assert_eq!(state_of("SIM001"), "filled");
    assert_eq!(state_of("SIM002"), "filled");
    assert_eq!(state_of("SIM003"), "skipped");

    // The same signal again is refused, and nothing more is sent.
    let again = send(&desk, "s-1", "enter_long", false);
    assert_one_line_error(&again, "already received");
    // Unsigned, badly signed and malformed signals are refused at the door.
    let body = format!(
        r#"{{"strategy":"momo","signal_id":"x-1","instrument_key":"{RELIANCE}","action":"enter_long","reference_price":2500}}"#
    );
    let now = chrono::Utc::now().timestamp().to_string();
    assert!(post(&url, "/signals", &[], &body).contains(" 401"), "unsigned");
    assert!(
        post(
            &url,
            "/signals",
            &[("X-Stoxide-Timestamp", &now), ("X-Stoxide-Signature", "00ff")],
            &body
        )
        .contains(" 401"),
        "badly signed"
    );
    assert!(post(&url, "/signals", &[], "not json").contains(" 400"));
    let unknown = desk.run(&[
        "signal",
        "send",
        "--strategy",
        "nope",
        "--id",
        "z",
        "--instrument",
        RELIANCE,
        "--action",
        "exit",
        "--price",
        "1",
    ]);
    assert_one_line_error(&unknown, "nope");
    // The kill switch needs the control token.
    assert!(post(&url, "/kill", &[], r#"{"level":"global"}"#).contains(" 401"));

    // Pause SIM002: the next signal trades only for SIM001.
    desk.ok(&["pause", "momo:SIM002"]);
    let r = send(&desk, "s-2", "exit", true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s2 = desk.intents("momo/s-2");
    assert_eq!(s2.iter().filter(|i| i["state"] == "filled").count(), 1, "{s2:#?}");

    // Halt SIM001 with an exit of nothing (flat now): the next signal is refused for it.
    let k = desk.run(&["kill", "--user", "SIM001"]);
    assert_eq!(k.code, 0, "{}", k.stderr);
    assert!(k.stdout.contains("halted at the user level"), "{}", k.stdout);
    let r = send(&desk, "s-3", "enter_long", true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s3 = desk.intents("momo/s-3");
    let sim1 = s3.iter().find(|i| i["account"] == "SIM001").expect("intent");
    assert_eq!(sim1["state"], "refused", "{sim1:#}");
    assert!(
        sim1["reason"].as_str().is_some_and(|r| r.contains("halted")),
        "{sim1:#}"
    );
    let bad = desk.run(&["kill", "--user", "NOBODY"]);
    assert_one_line_error(&bad, "NOBODY");

    let v = desk.run(&["audit", "verify"]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(v.stdout.contains("audit trail intact"), "{}", v.stdout);
    let today = chrono::Utc::now()
        .with_timezone(&upstox_types::IST)
        .format("%F")
        .to_string();
    let csv = desk.ok(&[
        "audit", "export", "--user", "SIM002", "--date", &today, "--format", "csv",
    ]);
    assert!(csv.lines().skip(1).all(|l| l.contains(",SIM002,")), "{csv}");
    assert!(csv.contains(",consent,") && csv.contains(",paused,"), "{csv}");

    // The portal beside this engine (`stoxide serve` on the same data directory) reaches it
    // through the address and control token it wrote there: SIM002 (long one share from s-1,
    // paused) is halted, and its position exited by the engine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let link = stoxide_portal::engine_link::EngineByFiles::new(desk.dir.path());
    let kill = stoxide_engine::Kill {
        level: stoxide_engine::risk::Level::User,
        target: "SIM002".into(),
        state: stoxide_engine::risk::TradingState::Halted,
        cancel: true,
        exit: true,
        note: Some("halt and exit from the portal".into()),
    };
    let actor = stoxide_engine::desk::Actor {
        by: "client SIM002 in the portal".into(),
        from: "127.0.0.1".into(),
    };
    let exits = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(stoxide_portal::engine_link::EngineControl::kill(&link, kill, &actor))
        .expect("the running engine answered");
    assert_eq!(exits, 1, "one exit for SIM002's one position");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all: Vec<serde_json::Value> = serde_json::from_str(&desk.ok(&["--json", "intents"])).expect("json");
        let exit = all
            .iter()
            .find(|i| i["account"] == "SIM002" && i["signal_id"].as_str().is_some_and(|s| s.starts_with("kill-")));
        if exit.is_some_and(|i| i["state"] == "filled") {
            break;
        }
        assert!(Instant::now() < deadline, "the exit was not filled: {all:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    engine.kill().expect("stop");
    let _ = engine.wait();
    // The orders' budgets were counted in Redis, under the users' ids.
    let keys = redis_keys(&redis, &format!("{prefix}:u:SIM00*:order:*"));
    assert!(
        keys.iter().any(|k| k.contains(":u:SIM001:order:")) && keys.iter().any(|k| k.contains(":u:SIM002:order:")),
        "no order budget in Redis: {keys:?}"
    );
    let d = desk.dir.path().to_str().expect("utf8");
    let bad = Run::from(
        stoxide()
            .env("STOXIDE_REDIS_URL", "not a url")
            .args(["--data-dir", d, "engine", "run", "--listen", "127.0.0.1:0"])
            .output()
            .expect("run"),
    );
    assert_one_line_error(&bad, "STOXIDE_REDIS_URL is not a Redis URL");
}

/// `KEYS pattern` on the Redis at `url` (redis://host:port/…), spoken in RESP by hand.
fn redis_keys(url: &str, pattern: &str) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write as _};
    let addr = url.trim_start_matches("redis://").split('/').next().expect("host:port");
    let mut s = std::net::TcpStream::connect(addr).expect("Redis");
    write!(s, "*2\r\n$4\r\nKEYS\r\n${}\r\n{pattern}\r\n", pattern.len()).expect("send");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("answer");
    let n: usize = line.trim().trim_start_matches('*').parse().expect("an array");
    (0..n)
        .map(|_| {
            line.clear();
            r.read_line(&mut line).expect("length");
            line.clear();
            r.read_line(&mut line).expect("key");
            line.trim().to_owned()
        })
        .collect()
}

#[test]
fn a_sigkilled_engine_is_replaced_and_nothing_is_sent_twice() {
    let sim = sim_child();
    let users = ["SIM001", "SIM002", "SIM003"];
    let desk = setup(&sim, &users);
    for u in users {
        desk.ok(&["subscription", "activate", &format!("momo:{u}")]);
    }
    let (mut first, _) = desk.engine();
    let r = send(&desk, "k-1", "enter_long", true);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Upstox takes every order but no answer comes back; the engine dies before it finds out.
    sim.control("/sim/faults", r#"{"lost_response_rate": 1.0}"#);
    let r = send(&desk, "k-2", "exit", false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    desk.wait_all("momo/k-2", "unknown", 3);
    first.kill().expect("SIGKILL");
    let _ = first.wait();

    sim.control("/sim/faults", r#"{"lost_response_rate": 0.0}"#);
    let (mut second, _) = desk.engine();
    let done = desk.wait_all("momo/k-2", "filled", 3);
    for i in &done {
        let account = i["account"].as_str().expect("account");
        let book = desk.ok(&["--json", "--account", account, "order", "list"]);
        let book: Vec<serde_json::Value> = serde_json::from_str(&book).expect("json");
        let tagged = book.iter().filter(|o| o["tag"] == i["tag"]).count();
        assert_eq!(tagged, 1, "exactly one order at Upstox for {account}: {book:#?}");
    }
    second.kill().expect("stop");
    let _ = second.wait();
    let listing: Vec<_> = std::fs::read_dir(desk.dir.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .collect();
    let log =
        std::fs::read_to_string(desk.dir.path().join("engine.log")).unwrap_or_else(|e| panic!("{e}: {listing:?}"));
    assert!(
        log.contains("reconciling unfinished intents"),
        "the restart says what it does"
    );
    for t in &sim.tokens {
        assert!(!log.contains(t.as_str()), "a token in the engine's log");
    }
    assert!(
        !log.contains("a-vendor-signing-secret"),
        "the signing secret in the engine's log"
    );
}
