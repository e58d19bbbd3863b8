//! The `stoxide` binary as a user runs it: output, exit codes and one-line errors.

mod browser;
mod cluster;
mod demo;
mod engine;
mod login;
mod truth;
mod vault_race;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

fn stoxide() -> Command {
    let mut c = Command::cargo_bin("stoxide").expect("binary");
    // Never pick up the developer's real configuration.
    c.env_remove("UPSTOX_BASE_URL")
        .env_remove("UPSTOX_ACCESS_TOKEN")
        .env_remove("UPSTOX_API_KEY")
        .env_remove("UPSTOX_API_SECRET")
        .env_remove("UPSTOX_REDIRECT_URI")
        .env_remove("STOXIDE_ACCOUNT")
        .env_remove("STOXIDE_VAULT_KEY")
        .env_remove("STOXIDE_VAULT_NEW_KEY")
        // Nor the developer's vault: tests that need one pass their own --data-dir.
        .env("STOXIDE_DATA_DIR", "/nonexistent-stoxide-test/data")
        .env("XDG_CONFIG_HOME", "/nonexistent-stoxide-test");
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }
}

/// Spawns `cmd` with stdout piped; answers the child and its first stdout line, parsed as the
/// JSON banner that `stoxide sim` and `stoxide demo` print for scripts.
fn spawn_with_banner(cmd: &mut Command) -> (std::process::Child, serde_json::Value) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("banner");
    let banner = serde_json::from_str(&first).unwrap_or_else(|e| panic!("first line is JSON ({e}): {first}"));
    (child, banner)
}

fn run(args: &[&str]) -> Run {
    let out = stoxide().args(args).output().expect("run");
    Run::from(out)
}

fn assert_one_line_error(r: &Run, needle: &str) {
    assert_ne!(r.code, 0, "must fail: {}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.starts_with("note:")).collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {}", r.stderr);
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked") && !r.stderr.contains("backtrace"));
}

#[test]
fn the_exchange_calendar_shows_sessions_in_ist_and_says_when_nothing_trades() {
    // 2026-12-07 is a Monday, 2026-12-06 a Sunday.
    let r = run(&["market", "timings", "2026-12-07"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nse = r.stdout.lines().find(|l| l.contains("NSE ")).unwrap_or_default();
    assert!(nse.contains("09:15") && nse.contains("15:30"), "{}", r.stdout);
    let mcx = r.stdout.lines().find(|l| l.contains("MCX")).unwrap_or_default();
    assert!(mcx.contains("09:00") && mcx.contains("23:30"), "{}", r.stdout);
    let r = run(&["market", "timings", "2026-12-06"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("no exchange trades on 2026-12-06 (Sunday)"),
        "{}",
        r.stdout
    );
    let r = run(&["--json", "market", "timings", "2026-12-07"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(5), "{v}");
    let r = run(&["market", "holidays", "--date", "2026-12-07"]);
    assert!(
        r.stdout.contains("2026-12-07 is not an exchange holiday"),
        "{}",
        r.stdout
    );
    let r = run(&["market", "timings", "07-12-2026"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not a date: write YYYY-MM-DD"), "{}", r.stderr);
}

#[test]
fn charges_show_brokerage_and_the_margin_of_a_basket() {
    // One order's flags, after the subcommand.
    let with = |head: &[&str], tail: &[&str]| {
        let order = ["--key", "NSE_EQ|INE002A01018", "--side", "BUY", "--qty", "10"];
        run(&[head, &order[..], tail].concat())
    };
    let r = with(
        &["--json", "charges", "brokerage"],
        &["--price", "2500", "--product", "D"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let total: f64 = v["total"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .or(v["total"].as_f64())
        .expect("total");
    assert!(total > 0.0, "{v}");
    let r = with(&["charges", "margin"], &["--leg", "NSE_EQ|INE848E01016,100,SELL,I,20"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("NHPC (NSE_EQ|INE848E01016)") && r.stdout.contains("basket"),
        "{}",
        r.stdout
    );
    assert_one_line_error(&with(&["charges", "brokerage"], &[]), "--price is needed");
    let r = with(&["charges", "margin"], &["--leg", "x,1"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("is not a leg: write KEY,QTY,BUY|SELL"),
        "{}",
        r.stderr
    );
}

#[test]
fn quote_against_the_embedded_simulator_prints_a_table() {
    let r = run(&["quote", "NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("NSE_INDEX:Nifty 50") && r.stdout.contains("NSE_EQ:RELIANCE"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("embedded simulator"));
}

#[test]
fn quote_json_is_machine_readable() {
    let r = run(&["--json", "quote", "NSE_EQ|INE002A01018"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["NSE_EQ:RELIANCE"]["instrument_token"], "NSE_EQ|INE002A01018");
}

#[test]
fn bad_input_gets_one_clear_line() {
    assert_one_line_error(&run(&["quote", "RELIANCE"]), "no '|'");
    assert_one_line_error(&run(&["quote", "NSE_EQ|INE000X99999"]), "unknown instrument key");
    assert_one_line_error(
        &run(&[
            "order",
            "place",
            "--key",
            "NSE_EQ|INE002A01018",
            "--side",
            "BUY",
            "--qty",
            "1",
            "--type",
            "LIMIT",
        ]),
        "--price is required",
    );
    assert_one_line_error(
        &run(&["--config", "/nonexistent/stoxide.toml", "profile"]),
        "does not exist",
    );
    let wrong_flag = run(&["order", "place", "--side", "HOLD"]);
    assert_eq!(wrong_flag.code, 2);
    assert!(wrong_flag.stderr.contains("error:") && !wrong_flag.stderr.contains("panicked"));
}

#[test]
fn broken_config_file_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "base_url = [1, 2\n").expect("write");
    let r = run(&["--config", path.to_str().expect("utf8"), "profile"]);
    assert_one_line_error(&r, "invalid configuration");
}

#[test]
fn unreachable_server_says_what_to_check() {
    let r = stoxide()
        .args(["profile"])
        .env("UPSTOX_BASE_URL", "http://127.0.0.1:9")
        .env("UPSTOX_ACCESS_TOKEN", "x")
        .output()
        .expect("run");
    let r = Run {
        code: r.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&r.stderr).into(),
    };
    assert_one_line_error(&r, "is the server running");
}

#[test]
fn sim_prints_its_json_banner_first_and_serves_the_cli() {
    let (mut child, banner) = spawn_with_banner(stoxide().args(["sim", "--addr", "127.0.0.1:0"]).stderr(Stdio::null()));
    let base = banner["base_url"].as_str().expect("base_url").to_owned();
    let token = banner["users"][0]["access_token"].as_str().expect("token").to_owned();
    assert!(banner["apps"][0]["client_secret"].is_string());
    assert!(
        banner["sample_equity"]
            .as_str()
            .is_some_and(|k| k.starts_with("NSE_EQ|"))
    );

    let env = [
        ("UPSTOX_BASE_URL", base.as_str()),
        ("UPSTOX_ACCESS_TOKEN", token.as_str()),
    ];
    let out = stoxide()
        .envs(env)
        .args([
            "--json",
            "order",
            "place",
            "--key",
            "NSE_EQ|INE002A01018",
            "--side",
            "buy",
            "--qty",
            "3",
        ])
        .output()
        .expect("place");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let placed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(placed["orders"][0]["status"], "complete");
    let out = stoxide()
        .envs(env)
        .args(["--json", "positions"])
        .output()
        .expect("positions");
    let positions: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        positions[0]["quantity"], 3,
        "state persists across commands against a running sim"
    );
    let out = stoxide().envs(env).args(["order", "list"]).output().expect("list");
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete"));
    let out = stoxide()
        .envs(env)
        .args(["--json", "instruments", "search", "NIFTY", "--limit", "3"])
        .output()
        .expect("search");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hits: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hits.as_array().map(Vec::len), Some(3));
    let _ = child.kill();
    let _ = child.wait();
}

/// A `stoxide sim` child process; killed on drop.
struct SimChild {
    child: std::process::Child,
    base: String,
    token: String,
    /// The pre-issued token of every listed user, in order (SIM001, SIM002, …).
    tokens: Vec<String>,
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim_child() -> SimChild {
    let (child, banner) = spawn_with_banner(stoxide().args(["sim", "--addr", "127.0.0.1:0"]).stderr(Stdio::null()));
    let base = banner["base_url"].as_str().expect("base").to_owned();
    let token = banner["users"][0]["access_token"].as_str().expect("token").to_owned();
    let tokens = banner["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["access_token"].as_str().map(ToOwned::to_owned))
        .collect();
    SimChild {
        child,
        base,
        token,
        tokens,
    }
}

impl SimChild {
    fn run(&self, args: &[&str]) -> Run {
        let out = stoxide()
            .env("UPSTOX_BASE_URL", &self.base)
            .env("UPSTOX_ACCESS_TOKEN", &self.token)
            .args(args)
            .output()
            .expect("run");
        Run::from(out)
    }

    /// `POST /sim/feed`.
    fn feed_fault(&self, body: &str) {
        self.control("/sim/feed", body);
    }

    /// `POST` to a control path with a plain HTTP/1.1 request (no client library needed).
    fn control(&self, path: &str, body: &str) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the simulator");
        write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

#[test]
fn record_replay_and_decode_round_trip() {
    let sim = sim_child();
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("feed.stx");
    let rec_s = rec.to_str().expect("utf8");
    let r = sim.run(&[
        "record",
        "NSE_EQ|INE002A01018",
        "NSE_INDEX|Nifty 50",
        "--mode",
        "full",
        "--out",
        rec_s,
        "--duration",
        "1.5",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("recorded"), "{}", r.stderr);

    let d = run(&["feed", "decode", rec_s]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let frames: Vec<serde_json::Value> = d
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(frames[0]["type"], "market_info");
    assert!(
        frames.iter().any(|f| f.get("type").is_none()
            && f["feeds"]["NSE_EQ|INE002A01018"]["fullFeed"]["marketFF"]["ltpc"]["ltt"].is_string()),
        "initial_feed without a type key, int64 as strings"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["feeds"]["NSE_INDEX|Nifty 50"]["fullFeed"]["indexFF"].is_object())
    );

    let rp = run(&["--json", "replay", rec_s]);
    assert_eq!(rp.code, 0, "{}", rp.stderr);
    let ticks: Vec<serde_json::Value> = rp
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("tick"))
        .collect();
    let in_frames: usize = frames
        .iter()
        .map(|f| f["feeds"].as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(ticks.len(), in_frames, "a replay delivers every recorded tick");

    let b = run(&["feed", "bench", rec_s, "--iterations", "2"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.stdout.contains("frames/s") && b.stdout.contains("MB/s"));
}

#[test]
fn malformed_frames_and_recordings_get_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, [0x0f, 0xff, 0xff, 0xff, 0x01]).expect("write");
    assert_one_line_error(
        &run(&["feed", "decode", bad.to_str().expect("utf8")]),
        "not a Market Data Feed v3 frame",
    );
    let truncated = dir.path().join("cut.stx");
    let mut bytes = b"STXFEED1".to_vec();
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&truncated, bytes).expect("write");
    assert_one_line_error(
        &run(&["feed", "decode", truncated.to_str().expect("utf8")]),
        "truncated",
    );
    assert_one_line_error(
        &run(&["replay", "/nonexistent/x.stx"]),
        "cannot replay /nonexistent/x.stx: No such file",
    );
    assert_one_line_error(&run(&["stream", "NIFTY"]), "no '|'");
}

#[test]
fn the_stream_table_names_each_instrument_beside_its_key() {
    let r = run(&[
        "stream",
        "NSE_EQ|INE002A01018",
        "NSE_INDEX|Nifty 50",
        "--duration",
        "1.5",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let row = |key: &str| {
        r.stdout
            .lines()
            .rev()
            .find(|l| l.contains(key))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("NSE_EQ|INE002A01018").contains("RELIANCE"), "{}", r.stdout);
    assert!(
        row("NSE_INDEX|Nifty 50").matches("Nifty 50").count() == 2,
        "{}",
        r.stdout
    );
}

#[test]
fn stream_json_prints_one_line_per_tick() {
    let r = run(&[
        "--json",
        "stream",
        "NSE_INDEX|Nifty 50",
        "--mode",
        "ltpc",
        "--duration",
        "1.5",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first: serde_json::Value = serde_json::from_str(r.stdout.lines().next().expect("a tick")).expect("json");
    assert_eq!(first["instrument_key"], "NSE_INDEX|Nifty 50");
    assert!(first["data"]["ltpc"]["ltp"].as_f64().is_some_and(|p| p > 0.0));
}

#[test]
fn doctor_names_each_injected_failure() {
    let sim = sim_child();
    let ok = sim.run(&["doctor", "NSE_EQ|INE002A01018"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(
        ok.stdout.contains("✓ feed handshake") && ok.stdout.contains("✓ market_info and first tick"),
        "{}",
        ok.stdout
    );

    let unknown = sim.run(&["doctor", "NSE_EQ|INE000X99999", "RELIANCE"]);
    assert_ne!(unknown.code, 0);
    assert!(
        unknown
            .stdout
            .contains("✗ key NSE_EQ|INE000X99999: not in the instrument master"),
        "{}",
        unknown.stdout
    );
    assert!(unknown.stdout.contains("✗ key RELIANCE"), "{}", unknown.stdout);

    // Wrong keys people write: each answered with a key that works, said why.
    let wrong = sim.run(&[
        "doctor",
        "NSE_EQ|RELIANCE",
        "NSE_EQ|NIFTY50",
        "NSE_FO|BANKNIFTY20FEB51000CE",
        "NSE_EQ|RELIANC",
    ]);
    assert_ne!(wrong.code, 0);
    for (key, says) in [
        (
            "NSE_EQ|RELIANCE",
            "a trading symbol was written where Upstox wants the instrument's token or ISIN; use \"NSE_EQ|INE002A01018\" (RELIANCE)",
        ),
        (
            "NSE_EQ|NIFTY50",
            "an index was written under an equity segment; use \"NSE_INDEX|Nifty 50\"",
        ),
        (
            "NSE_FO|BANKNIFTY20FEB51000CE",
            "that contract is not live; the same strike at the nearest live expiry; use \"NSE_FO|",
        ),
        (
            "NSE_EQ|RELIANC",
            "a close spelling; use \"NSE_EQ|INE002A01018\" (RELIANCE)",
        ),
    ] {
        let line = wrong
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("✗ key {key}:")))
            .unwrap_or_default();
        assert!(line.contains(says), "{key}: {}", wrong.stdout);
    }
    // The suggested contract is a BANKNIFTY 51000 call, and the doctor passes it.
    let line = wrong
        .stdout
        .lines()
        .find(|l| l.starts_with("✗ key NSE_FO|BANKNIFTY20FEB"))
        .unwrap_or_default();
    assert!(line.contains("(BANKNIFTY 51000 CE "), "{line}");
    let suggested = line
        .split("use \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a suggested key");
    let again = sim.run(&["doctor", suggested]);
    assert_eq!(again.code, 0, "{suggested}: {}", again.stdout);

    sim.feed_fault(r#"{"refuse": 403}"#);
    let forbidden = sim.run(&["doctor"]);
    assert_ne!(forbidden.code, 0);
    assert!(
        forbidden.stdout.contains("✗ feed handshake: HTTP 403"),
        "{}",
        forbidden.stdout
    );
    assert!(
        forbidden.stdout.contains("feed connections open"),
        "{}",
        forbidden.stdout
    );

    sim.feed_fault(r#"{"refuse": 401}"#);
    let unauthorized = sim.run(&["doctor"]);
    assert!(
        unauthorized.stdout.contains("✗ feed handshake: HTTP 401") && unauthorized.stdout.contains("already used"),
        "{}",
        unauthorized.stdout
    );
    sim.feed_fault(r#"{"refuse": null}"#);

    let bad_token = stoxide()
        .env("UPSTOX_BASE_URL", &sim.base)
        .env("UPSTOX_ACCESS_TOKEN", "expired-token")
        .args(["doctor"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&bad_token.stdout);
    assert!(!bad_token.status.success());
    assert!(
        text.contains("✗ REST profile accepts the token") && text.contains("03:30 IST"),
        "{text}"
    );
    let no_token = stoxide()
        .env("UPSTOX_BASE_URL", &sim.base)
        .args(["doctor"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&no_token.stdout).contains("✗ access token present"));
}

#[test]
fn gtt_place_list_and_cancel_against_a_running_sim() {
    let sim = sim_child();
    let quote = sim.run(&["--json", "quote", "NSE_EQ|INE002A01018"]);
    assert_eq!(quote.code, 0, "{}", quote.stderr);
    let q: serde_json::Value = serde_json::from_str(&quote.stdout).expect("json");
    let ltp = q["NSE_EQ:RELIANCE"]["last_price"].as_f64().expect("ltp");
    // Far below the market: the entry waits.
    let entry = format!("below:{:.2}", (ltp * 0.5 / 0.05).round() * 0.05);
    let target = format!("{:.2}", (ltp * 0.6 / 0.05).round() * 0.05);
    let stop = format!("{:.2}", (ltp * 0.4 / 0.05).round() * 0.05);
    let order = ["--key", "NSE_EQ|INE002A01018", "--side", "BUY", "--qty", "2"];
    let r = sim.run(
        &[
            &["--json", "gtt", "place"][..],
            &order[..],
            &[
                "--entry",
                &entry,
                "--target",
                &target,
                "--stoploss",
                &stop,
                "--trailing-gap",
                "5",
            ],
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let placed: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let id = placed[0]["gtt_order_id"].as_str().expect("an id").to_owned();
    assert_eq!(placed[0]["rules"][0]["status"], "PENDING");
    assert_eq!(placed[0]["rules"][2]["trailing_gap"], 5.0);

    let r = sim.run(&["gtt", "list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for words in [
        id.as_str(),
        "RELIANCE",
        "ENTRY BUY 2 at or below",
        "STOPLOSS SELL 2",
        "PENDING",
        "SCHEDULED",
    ] {
        assert!(r.stdout.contains(words), "the list lacks {words:?}:\n{}", r.stdout);
    }

    let r = sim.run(&["gtt", "cancel", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("Cancelled GTT {id}")), "{}", r.stdout);
    assert!(r.stdout.contains("CANCELLED"), "{}", r.stdout);
    assert_one_line_error(&sim.run(&["gtt", "cancel", &id]), "finished");
    assert_one_line_error(&sim.run(&["gtt", "list", "GTT-NOSUCH"]), "not found");
    // Rules that contradict each other are refused by Upstox's check, said in one line.
    assert_one_line_error(
        &sim.run(
            &[
                &["gtt", "place"][..],
                &order[..],
                &["--entry", &entry, "--target", &stop],
            ]
            .concat(),
        ),
        "TARGET trigger",
    );
    let r = sim.run(&[&["gtt", "place"][..], &order[..], &["--entry", "sideways:10"]].concat());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("write above:PRICE, below:PRICE or now"),
        "{}",
        r.stderr
    );
}
