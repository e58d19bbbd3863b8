//! The dashboard on a real socket against the in-process simulator: access rules, CSRF, security
//! headers, linking an account through the simulator's dialog, and live quotes over SSE.

mod portal;
mod portal_pages;
mod router;

use std::time::Duration;

use reqwest::redirect::Policy;
use stoxide_server::{DEFAULT_INSTRUMENTS, LinkApp, ServerConfig, Shared};
use stoxide_vault::AppMode;
use upstox_client::login::AppCredentials;
use upstox_sim::{SimConfig, Simulator};

const PASSWORD: &str = "a long test password";

struct Fixture {
    url: String,
    state: stoxide_server::AppState,
    sim: Simulator,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: tokio_util::sync::CancellationToken,
}

/// The simulator's second app: a client's own (individual mode).
const OWN_APP: &str = "OWN-APP-1";
const OWN_SECRET: &str = "own-app-secret-1";

async fn fixture() -> Fixture {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = SimConfig::default();
    config.apps[0].redirect_uri = format!("{url}/oauth/callback");
    let app = config.apps[0].clone();
    // A client's own app (individual mode), registered with Upstox to come back here too.
    let mut own = app.clone();
    own.client_id = OWN_APP.into();
    own.client_secret = OWN_SECRET.into();
    config.apps.push(own);
    let sim = Simulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(dir.path()))
        .await
        .expect("vault");
    let state = Shared::new(
        ServerConfig {
            operator_two_factor: true,
            data_dir: dir.path().to_owned(),
            app: Some(LinkApp {
                creds: AppCredentials {
                    client_id: app.client_id.clone(),
                    client_secret: app.client_secret.clone().into(),
                    redirect_uri: app.redirect_uri.clone(),
                },
                mode: AppMode::Individual,
                base_url: sim.base_url(),
            }),
            instruments: DEFAULT_INSTRUMENTS.iter().map(|s| (*s).to_owned()).collect(),
        },
        vault,
    )
    .expect("state");
    state.admin.set("admin", PASSWORD).expect("admin");
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(stoxide_server::serve(state.clone(), listener, async move {
        s.cancelled().await
    }));
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("http");
    Fixture {
        url,
        state,
        sim,
        http,
        _dir: dir,
        stop,
    }
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..at + 64].to_owned()
}

/// Submits the simulator's login dialog (at `dialog`, as the server redirected there) as a
/// browser would; answers where it sends the browser back (the callback with code and state).
async fn through_dialog(f: &Fixture, dialog: &str, user: &str, pin: &str) -> String {
    let q: std::collections::HashMap<String, String> = url::Url::parse(dialog)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    let r = f
        .http
        .post(format!("{}/v2/login/authorization/dialog", f.sim.base_url()))
        .form(&[
            ("client_id", q["client_id"].as_str()),
            ("redirect_uri", &q["redirect_uri"]),
            ("state", &q["state"]),
            ("response_type", "code"),
            ("user_id", user),
            ("pin", pin),
        ])
        .send()
        .await
        .expect("dialog");
    assert_eq!(r.status(), 302);
    r.headers()["location"].to_str().expect("location").to_owned()
}

impl Fixture {
    /// Signs in; answers the session cookie header value and the page's CSRF token.
    async fn sign_in(&self) -> (String, String) {
        let page = self
            .http
            .get(format!("{}/login", self.url))
            .send()
            .await
            .expect("login page");
        let pre = cookie_value(&set_cookies(&page), "stoxide_login_csrf").expect("pre cookie");
        let csrf = csrf_in(&page.text().await.expect("html"));
        let resp = self
            .http
            .post(format!("{}/login", self.url))
            .header("cookie", format!("stoxide_login_csrf={pre}"))
            .form(&[("username", "admin"), ("password", PASSWORD), ("csrf", &csrf)])
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 303);
        let set = set_cookies(&resp);
        let session_line = set
            .iter()
            .find(|c| c.starts_with("stoxide_session="))
            .expect("session cookie");
        assert!(
            session_line.contains("HttpOnly") && session_line.contains("SameSite=Lax"),
            "{session_line}"
        );
        let cookie = format!(
            "stoxide_session={}",
            cookie_value(&set, "stoxide_session").expect("session")
        );
        let dash = self.get(&cookie, "/").await;
        let csrf = csrf_in(&dash);
        (cookie, csrf)
    }

    async fn get(&self, cookie: &str, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        resp.text().await.expect("text")
    }

    async fn get_json(&self, cookie: &str, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .header("accept", "application/json")
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        resp.text().await.expect("text")
    }

    async fn post(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .expect("post")
    }
}

#[tokio::test]
async fn nothing_but_login_metrics_and_health_without_a_session() {
    let f = fixture().await;
    let resp = f.http.get(format!("{}/", f.url)).send().await.expect("get");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login");
    for h in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(resp.headers().contains_key(h), "missing {h}");
    }
    let resp = f
        .http
        .get(format!("{}/events", f.url))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 401);
    for path in ["/stream/start", "/accounts/link", "/instruments"] {
        let resp = f
            .http
            .post(format!("{}{path}", f.url))
            .form(&[("csrf", "x")])
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 401, "{path}");
    }
    let resp = f.http.get(format!("{}/metrics", f.url)).send().await.expect("metrics");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("text");
    assert!(
        text.contains("stoxide_ticks_total") && !text.contains("SIM00"),
        "{text}"
    );
    assert_eq!(
        f.http
            .get(format!("{}/healthz", f.url))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );

    // A wrong password and a forged form are refused.
    let page = f.http.get(format!("{}/login", f.url)).send().await.expect("login");
    let pre = cookie_value(&set_cookies(&page), "stoxide_login_csrf").expect("pre");
    let csrf = csrf_in(&page.text().await.expect("html"));
    let wrong = f
        .http
        .post(format!("{}/login", f.url))
        .header("cookie", format!("stoxide_login_csrf={pre}"))
        .form(&[("username", "admin"), ("password", "not it at all"), ("csrf", &csrf)])
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .expect("html")
            .contains("Wrong user name or password.")
    );
    let forged = f
        .http
        .post(format!("{}/login", f.url))
        .form(&[("username", "admin"), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403, "no double-submit cookie, no session");
    f.stop.cancel();
    f.sim.shutdown().await;
}

#[tokio::test]
async fn link_an_account_through_the_dialog_and_stream_live_quotes() {
    let f = fixture().await;
    let (cookie, csrf) = f.sign_in().await;

    // Forms without the session's CSRF token do nothing.
    let r = f.post(&cookie, "/stream/stop", &[("csrf", "0000")]).await;
    assert_eq!(r.status(), 403);

    // Log in to Upstox: the dashboard sends the browser to the dialog with a single-use state.
    let r = f.post(&cookie, "/accounts/link", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let dialog = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(dialog.starts_with(&f.sim.base_url()), "{dialog}");
    let callback = through_dialog(&f, &dialog, "SIM002", "234567").await;
    let path = callback.strip_prefix(&f.url).expect("back to the dashboard");
    let r = f
        .http
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), 303, "{path}");
    assert_eq!(r.headers()["location"], "/");
    let page = f.get(&cookie, "/").await;
    assert!(page.contains("Linked SIM002"), "{page}");
    assert!(page.contains("data-account=\"SIM002\""), "{page}");
    assert!(page.contains("valid, expires in"), "{page}");

    // The same callback again is refused.
    let r = f
        .http
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("replay");
    assert_eq!(r.status(), 400);

    // Start the stream and read quotes from the event stream.
    let r = f.post(&cookie, "/stream/start", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let mut events = f
        .http
        .get(format!("{}/events", f.url))
        .header("cookie", &cookie)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), 200);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(seen.contains("event: quotes") && seen.contains("NSE_INDEX|Nifty 50") && seen.contains("\"connected\"")) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("quotes within 20 s")
            .expect("chunk")
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let metrics = f
        .http
        .get(format!("{}/metrics", f.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("stoxide_sse_clients 1"), "{metrics}");
    assert!(
        metrics.contains("stoxide_rest_calls_total{endpoint=\"POST /v2/login/authorization/token\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("endpoint=\"GET /v3/feed/market-data-feed/authorize\",status=\"200\""),
        "{metrics}"
    );
    assert!(!metrics.contains("SIM002"), "no account data: {metrics}");
    let doctor = f.get(&cookie, "/doctor").await;
    assert!(doctor.contains("✓ <strong>feed authorize</strong>"), "{doctor}");
    // Keys asked about: a good one is named, a wrong one gets the key meant.
    let doctor = f
        .get(&cookie, "/doctor?keys=NSE_EQ%7CINE002A01018%0ANSE_EQ%7CNIFTY50")
        .await;
    let line = |key: &str| {
        doctor
            .lines()
            .find(|l| l.contains(&format!("<strong>key {key}</strong>")))
            .unwrap_or_else(|| panic!("no line for {key}: {doctor}"))
            .to_owned()
    };
    assert!(
        line("NSE_EQ|INE002A01018").starts_with("<li class=\"ok\">✓"),
        "{doctor}"
    );
    assert!(line("NSE_EQ|INE002A01018").contains("RELIANCE"), "{doctor}");
    let wrong = line("NSE_EQ|NIFTY50");
    assert!(
        wrong.starts_with("<li class=\"bad\">✗") && wrong.contains("NSE_INDEX|Nifty 50"),
        "{wrong}"
    );
    assert!(
        doctor.contains("NSE_EQ|NIFTY50</textarea>"),
        "the keys stay in the box: {doctor}"
    );
    let too_many = vec!["NSE_EQ%7CX"; 51].join("%0A");
    let r = f
        .http
        .get(format!("{}/doctor?keys={too_many}", f.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400);

    // The chart's session so far.
    let closes: Vec<f64> =
        serde_json::from_str(&f.get_json(&cookie, "/chart?key=NSE_INDEX%7CNifty%2050").await).expect("closes");
    assert!(closes.len() > 5 && closes.iter().all(|c| *c > 1000.0), "{closes:?}");

    // Instruments: a bad key is a clear 400; a good one joins the table.
    let r = f
        .post(&cookie, "/instruments", &[("csrf", &csrf), ("key", "RELIANCE")])
        .await;
    assert_eq!(r.status(), 400);
    let r = f
        .post(
            &cookie,
            "/instruments",
            &[("csrf", &csrf), ("key", "NSE_EQ|INE002A01018")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let home = f.get(&cookie, "/").await;
    assert!(home.contains("data-key=\"NSE_EQ|INE002A01018\""), "{home}");
    assert!(
        home.contains("<b class=\"symbol\">RELIANCE</b> <span class=\"hint\">NSE_EQ|INE002A01018</span>"),
        "the symbol beside the key: {home}"
    );
    let hits = f.get_json(&cookie, "/instruments/search?q=RELIANCE").await;
    assert!(hits.contains("NSE_EQ|INE002A01018"), "{hits}");
    f.stop.cancel();
    f.sim.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_shows_only_messages_the_server_chose() {
    let f = fixture().await;
    let (cookie, csrf) = f.sign_in().await;
    // A link crafted by someone else cannot put words on the dashboard.
    let page = f
        .get(&cookie, "/?msg=Your+account+is+blocked.+Call+%2B91-555-0100")
        .await;
    assert!(
        !page.contains("Call +91-555-0100") && !page.contains("blocked"),
        "{page}"
    );
    assert!(!page.contains("id=\"message\""), "no notice at all");
    // The outcome of a form is shown once, on the next page.
    let resp = f.post(&cookie, "/stream/stop", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/", "no message in the URL");
    let page = f.get(&cookie, "/").await;
    assert!(page.contains("Stream stopped."), "{page}");
    let page = f.get(&cookie, "/").await;
    assert!(!page.contains("Stream stopped."), "shown once");
    f.stop.cancel();
    f.sim.shutdown().await;
}
