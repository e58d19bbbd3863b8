//! The dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by
//! fantoccini): sign in, link an account through the simulator's dialog, see the token valid,
//! start the stream, see NIFTY change without a reload, drop the feed and see the reconnect.
//! Runs when `STOXIDE_BROWSER_TESTS=1` (`scripts/test.sh` installs Chromium and sets it);
//! screenshots go to `$CARGO_TARGET_DIR/browser-artifacts/`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use super::stoxide;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

async fn shot(c: &Client, name: &str) {
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(artifacts().join(format!("{name}.png")), png);
    }
}

/// POSTs a JSON body to the simulator's control endpoint.
fn sim_control(base: &str, path: &str, body: &str) {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the simulator");
    write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

async fn type_into(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
}

async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `css`'s text until `ok` holds (up to `secs`).
async fn wait_text(c: &Client, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let t = text(c, css).await;
        if ok(&t) {
            return t;
        }
        if tokio::time::Instant::now() > deadline {
            shot(c, "timeout").await;
            panic!("{css}: still {t:?} after {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser() {
    if std::env::var("STOXIDE_BROWSER_TESTS").as_deref() != Ok("1") {
        eprintln!(
            "browser test skipped: set STOXIDE_BROWSER_TESTS=1 (scripts/test.sh does, after installing Chromium)"
        );
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let profile = tempfile::tempdir().expect("tempdir");
    let (demo, info) = super::spawn_with_banner(
        stoxide()
            .args(["demo", "--addr", "127.0.0.1:0", "--vault-dir"])
            .arg(data.path())
            .stderr(Stdio::inherit()),
    );
    let demo = Killed(demo);
    let url = info["url"].as_str().expect("url").to_owned();
    let password = info["password"].as_str().expect("password").to_owned();
    let sim = info["simulator"].as_str().expect("simulator").to_owned();

    let port = free_port();
    let driver = Killed(
        Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver)"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = client.expect("a WebDriver session");

    // Sign in.
    c.goto(&format!("{url}/")).await.expect("open");
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .expect("the sign-in page");
    shot(&c, "01-sign-in").await;
    type_into(&c, "username", "admin").await;
    type_into(&c, "password", &password).await;
    click(&c, "login-submit").await;
    c.wait()
        .for_element(Locator::Id("accounts"))
        .await
        .expect("the dashboard");

    // Link an account through the simulator's dialog.
    click(&c, "link-account").await;
    c.wait()
        .for_element(Locator::Id("user_id"))
        .await
        .expect("the simulator's dialog");
    shot(&c, "02-upstox-dialog").await;
    type_into(&c, "user_id", "SIM002").await;
    type_into(&c, "pin", "234567").await;
    click(&c, "login-submit").await;
    c.wait()
        .for_element(Locator::Id("message"))
        .await
        .expect("back on the dashboard");
    let message = text(&c, "#message").await;
    assert!(message.contains("Linked SIM002"), "{message}");
    let status = text(&c, "tr[data-account='SIM002'] .token-status").await;
    assert!(status.starts_with("valid"), "token status: {status}");
    shot(&c, "03-linked").await;

    // Start the stream (a form post and one page load), then only pushed updates.
    click(&c, "stream-start").await;
    c.wait().for_element(Locator::Id("message")).await.expect("reloaded");
    c.execute("window.__noReload = 'still here';", vec![])
        .await
        .expect("marker");
    let nifty = "tr[data-key='NSE_INDEX|Nifty 50'] .ltp";
    let first = wait_text(&c, nifty, 20, |t| t.parse::<f64>().is_ok()).await;
    let changed = wait_text(&c, nifty, 30, |t| t.parse::<f64>().is_ok() && t != first).await;
    let marker = c
        .execute("return window.__noReload || null;", vec![])
        .await
        .expect("marker");
    assert_eq!(
        marker,
        serde_json::json!("still here"),
        "the price changed without a reload"
    );
    assert_ne!(first, changed);
    wait_text(&c, "#stream-state", 10, |t| t == "connected").await;
    shot(&c, "04-streaming").await;

    // The simulator drops the feed; the page reports the reconnect by itself.
    sim_control(&sim, "/sim/feed", r#"{"drop": true}"#);
    wait_text(&c, "#stream-reconnects", 20, |t| t.parse::<u64>().is_ok_and(|n| n >= 1)).await;
    let error = text(&c, "#stream-error").await;
    assert!(error != "none" && !error.is_empty(), "last error shown: {error:?}");
    wait_text(&c, "#stream-state", 20, |t| t == "connected").await;
    let marker = c
        .execute("return window.__noReload || null;", vec![])
        .await
        .expect("marker");
    assert_eq!(marker, serde_json::json!("still here"));
    shot(&c, "05-reconnected").await;

    c.close().await.expect("close");
    drop(driver);
    drop(demo);
}
