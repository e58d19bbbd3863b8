//! Exit codes and output that tell the truth: a rejected order, an unknown instrument, a file
//! of the wrong kind and a reused tag all fail with one line; a reader that goes away ends a
//! command quietly; logs carry no colour codes unless a person is at a terminal.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::{Run, assert_one_line_error, run, sim_child, stoxide};

#[test]
fn a_rejected_order_fails_the_command() {
    let sim = sim_child();
    // Above RELIANCE's freeze quantity: Upstox takes the order and rejects it.
    let args = [
        "order",
        "place",
        "--key",
        "NSE_EQ|INE002A01018",
        "--side",
        "BUY",
        "--qty",
        "200000",
    ];
    let r = sim.run(&args);
    assert_one_line_error(&r, "rejected");
    assert!(r.stderr.contains("freeze quantity"), "{}", r.stderr);
    assert!(
        r.stdout.contains("rejected"),
        "the table still shows the order: {}",
        r.stdout
    );
    let mut json = vec!["--json"];
    json.extend(args);
    let r = sim.run(&json);
    assert_ne!(r.code, 0, "rejected in JSON mode too");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("the JSON is still printed");
    assert_eq!(v["orders"][0]["status"], "rejected");
    // A good order still exits 0.
    let r = sim.run(&[
        "order",
        "place",
        "--key",
        "NSE_EQ|INE002A01018",
        "--side",
        "BUY",
        "--qty",
        "1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_reused_tag_is_refused_and_a_lost_answer_is_never_reported_as_another_order() {
    let sim = sim_child();
    let place = |side: &str, qty: &str, tag: Option<&str>| -> Run {
        let mut args = vec![
            "--json",
            "order",
            "place",
            "--key",
            "NSE_EQ|INE002A01018",
            "--side",
            side,
            "--qty",
            qty,
        ];
        if let Some(t) = tag {
            args.extend(["--tag", t]);
        }
        sim.run(&args)
    };
    let r = place("BUY", "1", Some("R"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let first_id = first["order_ids"][0].as_str().expect("id").to_owned();

    // The issue's case: the next write's answer is lost, and the SELL reuses the tag.
    sim.control("/sim/faults", r#"{"lost_response_rate": 1.0}"#);
    let r = place("SELL", "5", Some("R"));
    assert_one_line_error(&r, "already on order");
    assert!(r.stderr.contains(&first_id), "{}", r.stderr);
    assert!(!r.stdout.contains("\"reconciled\": true"), "{}", r.stdout);

    // A fresh tag with a lost answer is found in the book: the order that was sent.
    let r = place("SELL", "1", None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["reconciled"], true, "{}", r.stdout);
    assert_eq!(v["orders"][0]["transaction_type"], "SELL");
    assert_eq!(v["orders"][0]["quantity"], 1);
    sim.control("/sim/faults", r#"{"lost_response_rate": 0.0}"#);

    let r = sim.run(&["--json", "order", "list"]);
    let book: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let book = book.as_array().expect("array");
    let with_r: Vec<_> = book.iter().filter(|o| o["tag"] == "R").collect();
    assert_eq!(with_r.len(), 1, "no second order carries tag R: {book:?}");
    assert!(
        !book
            .iter()
            .any(|o| o["transaction_type"] == "SELL" && o["quantity"] == 5),
        "the refused SELL 5 was never sent"
    );
}

#[test]
fn an_unknown_instrument_streams_nothing_and_says_so() {
    let r = run(&["stream", "NSE_EQ|NOPE", "--json", "--duration", "5"]);
    assert_one_line_error(&r, "unknown instrument key(s): NSE_EQ|NOPE");
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let r = run(&[
        "record",
        "NSE_EQ|NOPE",
        "--out",
        "/nonexistent-dir/never.stx",
        "--duration",
        "5",
    ]);
    assert_ne!(r.code, 0);
}

#[test]
fn replay_refuses_a_file_that_is_not_a_recording() {
    let dir = tempfile::tempdir().expect("tmp");
    let garbage = dir.path().join("garbage.stx");
    std::fs::write(&garbage, b"STXFEED1\x01\x02\x03").expect("write");
    let not_a_frame = dir.path().join("text.stx");
    let mut bytes = b"STXFEED1".to_vec();
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&5u32.to_le_bytes());
    bytes.extend_from_slice(b"\xff\xff\xff\xff\xff");
    std::fs::write(&not_a_frame, bytes).expect("write");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").expect("write");
    for (file, needle) in [
        ("/etc/passwd", "not a feed recording"),
        (empty.to_str().expect("utf8"), "not a feed recording"),
        (garbage.to_str().expect("utf8"), "truncated"),
        (not_a_frame.to_str().expect("utf8"), "does not decode"),
    ] {
        let r = run(&["replay", file]);
        assert_one_line_error(&r, needle);
        assert!(!r.stdout.contains("replayed"), "{}", r.stdout);
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let mut child = stoxide()
        .args(["instruments", "search", "NIFTY", "--limit", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    // The reader is dropped here, as `| head -1` would.
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!first.is_empty());
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// `GET path` over plain HTTP/1.0; answers the status line.
fn http_status(base: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let addr = addr.split('/').next().unwrap_or(addr);
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A free port on 127.0.0.1.
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// A stdout whose reader is already gone, as after `| head -1` has exited.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

#[test]
fn long_running_commands_keep_serving_after_their_reader_goes_away() {
    let data = tempfile::tempdir().expect("tempdir");
    let (dashboard, simulator) = (free_addr(), free_addr());
    let demo = stoxide()
        .args(["demo", "--addr", &dashboard, "--vault-dir"])
        .arg(data.path())
        .stdout(closed_pipe())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo");
    let sim = stoxide()
        .args(["sim", "--addr", &simulator])
        .stdout(closed_pipe())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim");
    let mut running = [demo, sim];
    let answers = |addr: &str, path: &str| {
        // Up to 30 s to come up; an exited process never does.
        for _ in 0..150 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return http_status(addr, path);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        String::new()
    };
    assert!(
        answers(&dashboard, "/healthz").contains(" 200"),
        "the dashboard answers"
    );
    assert!(
        answers(&simulator, "/sim/state").contains(" 200"),
        "the simulator answers"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    for child in &mut running {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "exited when its stdout was gone"
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn logs_have_no_colour_codes_off_a_terminal_or_with_no_color() {
    for no_color in [None, Some("1")] {
        let mut c = stoxide();
        c.env("STOXIDE_LOG", "debug").args(["quote", "NSE_INDEX|Nifty 50"]);
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let r = Run::from(c.output().expect("run"));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.contains("DEBUG"), "debug logs were written: {}", r.stderr);
        assert!(
            !r.stderr.contains('\u{1b}'),
            "no escape codes on a pipe: {:?}",
            r.stderr
        );
    }
}

#[test]
fn a_token_file_that_is_not_a_token_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let big = dir.path().join("big.token");
    std::fs::write(&big, "A".repeat(10 << 20)).expect("write");
    let r = Run::from(
        stoxide()
            .env("STOXIDE_DATA_DIR", &data)
            .args(["token", "import", "--offline", "--account", "BIG01"])
            .arg(&big)
            .output()
            .expect("import"),
    );
    assert_one_line_error(&r, "larger than 64 KB");
    let r = Run::from(
        stoxide()
            .env("STOXIDE_DATA_DIR", &data)
            .args(["token", "status", "--all"])
            .output()
            .expect("status"),
    );
    assert!(
        !r.stdout.contains("BIG01") && !r.stderr.contains("BIG01"),
        "nothing was stored"
    );
}
