//! The `stoxide` binary as a user runs it: output, exit codes and one-line errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

fn stoxide() -> Command {
    let mut c = Command::cargo_bin("stoxide").expect("binary");
    // Never pick up the developer's real configuration.
    c.env_remove("UPSTOX_BASE_URL")
        .env_remove("UPSTOX_ACCESS_TOKEN")
        .env("XDG_CONFIG_HOME", "/nonexistent-stoxide-test");
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = stoxide().args(args).output().expect("run");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
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
    let mut child = stoxide()
        .args(["sim", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("banner");
    let banner: serde_json::Value = serde_json::from_str(&first).expect("first line is JSON");
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
