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

/// Chromium (headless, 1280×900) under chromedriver: the driver process and a WebDriver session.
async fn chromium(profile: &std::path::Path) -> (Killed, Client) {
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
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return (driver, c),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("no WebDriver session from chromedriver on port {port}");
}

/// `stoxide demo` with its vault in `data`: the process and its first line.
fn demo(data: &std::path::Path) -> (Killed, serde_json::Value) {
    let (child, info) = super::spawn_with_banner(
        stoxide()
            .args(["demo", "--addr", "127.0.0.1:0", "--vault-dir"])
            .arg(data)
            .stderr(Stdio::inherit()),
    );
    (Killed(child), info)
}

fn browser_tests_on() -> bool {
    if std::env::var("STOXIDE_BROWSER_TESTS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("browser test skipped: set STOXIDE_BROWSER_TESTS=1 (scripts/test.sh does, after installing Chromium)");
    false
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser() {
    if !browser_tests_on() {
        return;
    }
    let (data, profile) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (demo, info) = demo(data.path());
    let url = info["url"].as_str().expect("url").to_owned();
    let password = info["password"].as_str().expect("password").to_owned();
    let sim = info["simulator"].as_str().expect("simulator").to_owned();

    let (driver, c) = chromium(profile.path()).await;

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
    // The old page has a #message too ("Linked …"): wait for the new page's own.
    wait_text(&c, "#message", 20, |t| t.starts_with("Streaming for")).await;
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

/// Screenshots of the page at a desktop and a phone width (`NAME-desktop.png`, `NAME-phone.png`).
async fn shots(c: &Client, name: &str) {
    shot(c, &format!("{name}-desktop")).await;
    if c.set_window_size(390, 844).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(150)).await;
        shot(c, &format!("{name}-phone")).await;
        let _ = c.set_window_size(1280, 900).await;
    }
}

async fn portal_sign_in(c: &Client, url: &str, email: &str, password: &str) {
    c.goto(&format!("{url}/portal/login")).await.expect("open");
    c.wait()
        .for_element(Locator::Id("portal-login"))
        .await
        .expect("the portal's sign-in page");
    type_into(c, "email", email).await;
    type_into(c, "password", password).await;
    click(c, "portal-login-submit").await;
    c.wait()
        .for_element(Locator::Id("accounts"))
        .await
        .expect("the portal's home");
}

async fn click_css(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// Rows of the live orders table in the account `account` for orders that went out (not the
/// signals the engine skipped, which it lists with why).
async fn order_rows(c: &Client, account: &str) -> usize {
    // Read in one script: the live page replaces the rows as events arrive.
    let rows = c
        .execute(
            "return Array.from(document.querySelectorAll('#orders-body tr')).map(r => Array.from(r.cells).map(td => td.textContent));",
            vec![],
        )
        .await
        .expect("the orders table");
    rows.as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r[2] == account && r[3] != "skipped" && r[3] != "refused")
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn the_portal_journey_in_a_real_browser() {
    if !browser_tests_on() {
        return;
    }
    let (data, profile) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (demo, info) = demo(data.path());
    let url = info["url"].as_str().expect("url").to_owned();
    let op_email = info["operator"]["email"].as_str().expect("operator").to_owned();
    let op_password = info["operator"]["password"].as_str().expect("password").to_owned();
    let (driver, c) = chromium(profile.path()).await;

    // The operator invites a new client.
    portal_sign_in(&c, &url, &op_email, &op_password).await;
    shots(&c, "portal-01-operator").await;
    type_into(&c, "invite-email", "neha@demo.stoxide").await;
    type_into(&c, "invite-name", "Neha Kapoor").await;
    click(&c, "invite-send").await;
    let notice = wait_text(&c, "#portal-notice", 10, |t| t.contains("/portal/invite/")).await;
    let link = notice
        .split_whitespace()
        .find(|w| w.starts_with("/portal/invite/"))
        .expect("the invitation link")
        .to_owned();
    click(&c, "portal-logout").await;
    c.wait()
        .for_element(Locator::Id("portal-login"))
        .await
        .expect("signed out");

    // The client signs up through the link and signs in.
    c.goto(&format!("{url}{link}")).await.expect("invitation");
    c.wait()
        .for_element(Locator::Id("invite-form"))
        .await
        .expect("the invitation page");
    shots(&c, "portal-02-invitation").await;
    type_into(&c, "new-password", "Neha's long password").await;
    click(&c, "invite-submit").await;
    let notice = wait_text(&c, "#portal-notice", 10, |t| t.contains("password is set")).await;
    assert!(notice.contains("password is set"), "{notice}");
    type_into(&c, "password", "Neha's long password").await;
    click(&c, "portal-login-submit").await;
    c.wait().for_element(Locator::Id("accounts")).await.expect("home");
    assert!(text(&c, "#accounts").await.contains("No Upstox account is linked yet"));

    // Link Upstox through the simulator's dialog.
    click(&c, "link-upstox").await;
    c.wait()
        .for_element(Locator::Id("user_id"))
        .await
        .expect("the simulator's dialog");
    type_into(&c, "user_id", "SIM004").await;
    type_into(&c, "pin", "456789").await;
    click(&c, "login-submit").await;
    let notice = wait_text(&c, "#portal-notice", 10, |t| {
        t.contains("Linked your Upstox account SIM004")
    })
    .await;
    assert!(notice.contains("Linked your Upstox account SIM004"), "{notice}");
    shots(&c, "portal-03-linked").await;

    // Subscribe to the breakout strategy; the consent page says what will happen.
    click_css(&c, "#strategy-breakout button[type=submit]").await;
    c.wait()
        .for_element(Locator::Id("consent-form"))
        .await
        .expect("the consent page");
    let terms = text(&c, "#consent-terms").await;
    for words in ["1 lot(s) per signal", "Intraday", "₹100000", "NSE_EQ|INE002A01018"] {
        assert!(
            terms.contains(words),
            "the consent page does not say {words:?}: {terms}"
        );
    }
    shots(&c, "portal-04-consent").await;
    type_into(&c, "consent-password", "Neha's long password").await;
    click(&c, "consent-submit").await;
    let notice = wait_text(&c, "#portal-notice", 10, |t| t.contains("active in SIM004")).await;
    assert!(notice.contains("active in SIM004"), "{notice}");

    // An order appears without a reload when the strategy signals.
    c.execute("window.__noReload = 'still here';", vec![])
        .await
        .expect("marker");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while order_rows(&c, "SIM004").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no order for SIM004 reached the page"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let marker = c
        .execute("return window.__noReload || null;", vec![])
        .await
        .expect("marker");
    assert_eq!(
        marker,
        serde_json::json!("still here"),
        "the order arrived without a reload"
    );
    shots(&c, "portal-05-orders").await;

    // New lots: awaiting consent again, said on the page, and no new order for it.
    let lots = c
        .find(Locator::Css("tr[data-subscription='breakout:SIM004'] input.lots"))
        .await
        .expect("lots");
    lots.send_keys("2").await.expect("type");
    click_css(&c, "tr[data-subscription='breakout:SIM004'] .lots-form button").await;
    let notice = wait_text(&c, "#portal-notice", 10, |t| t.contains("awaits your consent again")).await;
    assert!(notice.contains("awaits your consent again"), "{notice}");
    let state = text(&c, "tr[data-subscription='breakout:SIM004'] .sub-state").await;
    assert!(state.contains("awaiting your consent"), "{state}");
    let before = order_rows(&c, "SIM004").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after = order_rows(&c, "SIM004").await;
    let table = text(&c, "#orders").await;
    assert_eq!(after, before, "an order went out without a consent: {table}");
    assert!(
        !table.contains("AwaitingConsent"),
        "the orders table speaks in type names: {table}"
    );
    shots(&c, "portal-06-awaiting-consent").await;

    // The kill switch, with exit: the demo's engine cancels the open orders and exits the
    // open positions, and each exit order shows up in the table.
    click(&c, "kill-exit").await;
    let notice = wait_text(&c, "#portal-notice", 20, |t| {
        t.contains("Halted: no order goes out for SIM004")
    })
    .await;
    assert!(notice.contains("Halted: no order goes out for SIM004"), "{notice}");
    assert!(
        !notice.contains("NOT exited"),
        "the running engine did not exit: {notice}"
    );
    let exits: usize = notice
        .split(" exit order(s)")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(exits > 0 || notice.contains("no open position to exit"), "{notice}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while order_rows(&c, "SIM004").await < after + exits {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the {exits} exit order(s) did not reach the page: {}",
            text(&c, "#orders").await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shots(&c, "portal-07-halted").await;
    // The entry filled long before: the P&L chart has the strategy's line.
    let pnl = text(&c, "#pnl").await;
    assert!(
        pnl.contains("breakout: ₹"),
        "no P&L line for the filled strategy: {pnl}"
    );
    if let Ok(section) = c.find(Locator::Id("pnl")).await
        && let Ok(png) = section.screenshot().await
    {
        let _ = std::fs::write(artifacts().join("portal-07-pnl-chart.png"), png);
    }
    click(&c, "portal-logout").await;

    // The operator sees the fan-out: orders of every client.
    portal_sign_in(&c, &url, &op_email, &op_password).await;
    for account in ["SIM001", "SIM004"] {
        assert!(
            order_rows(&c, account).await > 0,
            "the operator does not see {account}'s orders"
        );
    }
    shots(&c, "portal-08-operator-orders").await;

    c.close().await.expect("close");
    drop(driver);
    drop(demo);
}
