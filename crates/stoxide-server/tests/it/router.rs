//! Every route through the router itself (`tower::ServiceExt::oneshot`, no socket): signed out,
//! signed in, and with a wrong CSRF token. Nothing answers 5xx; without a session only the
//! public routes answer; no form is taken without the session's CSRF token.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use stoxide_server::{DEFAULT_INSTRUMENTS, ServerConfig, Shared};
use tower::ServiceExt;

/// Every route the dashboard serves, with the method it takes.
const ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/"),
    (Method::GET, "/login"),
    (Method::POST, "/login"),
    (Method::POST, "/logout"),
    (Method::POST, "/accounts/link"),
    (Method::POST, "/accounts/SIM001/refresh"),
    (Method::GET, "/oauth/callback?state=x&code=y"),
    (Method::POST, "/stream/start"),
    (Method::POST, "/stream/stop"),
    (Method::POST, "/instruments"),
    (Method::GET, "/instruments/search?q=nifty"),
    (Method::GET, "/events"),
    (Method::GET, "/chart?key=NSE_INDEX%7CNifty%2050"),
    (Method::GET, "/doctor"),
    (Method::GET, "/metrics"),
    (Method::GET, "/healthz"),
    (Method::GET, "/static/app.js"),
    (Method::GET, "/static/app.css"),
];

/// Routes that answer without a session.
const PUBLIC: &[&str] = &["/login", "/metrics", "/healthz", "/static/app.js", "/static/app.css"];

async fn state() -> (stoxide_server::AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(dir.path()))
        .await
        .expect("vault");
    let state = Shared::new(
        ServerConfig {
            operator_two_factor: true,
            data_dir: dir.path().to_owned(),
            app: None,
            instruments: DEFAULT_INSTRUMENTS.iter().map(|s| (*s).to_owned()).collect(),
        },
        vault,
    )
    .expect("state");
    state.admin.set("admin", "a long test password").expect("admin");
    (state, dir)
}

fn request(method: &Method, path: &str, cookie: Option<&str>, csrf: Option<&str>) -> Request<Body> {
    let mut b = Request::builder().method(method.clone()).uri(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    let body = if *method == Method::POST {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let mut form = String::from("key=NSE_EQ%7CINE002A01018&username=admin&password=wrong");
        if let Some(t) = csrf {
            form.push_str(&format!("&csrf={t}"));
        }
        Body::from(form)
    } else {
        Body::empty()
    };
    b.body(body).expect("request")
}

fn path_of(p: &str) -> &str {
    p.split('?').next().unwrap_or(p)
}

#[tokio::test]
async fn signed_out_only_the_public_routes_answer() {
    let (state, _dir) = state().await;
    let app = stoxide_server::router(state);
    for (method, path) in ROUTES {
        let resp = app
            .clone()
            .oneshot(request(method, path, None, None))
            .await
            .expect("answer");
        let status = resp.status();
        assert!(!status.is_server_error(), "{method} {path}: {status}");
        let public = PUBLIC.contains(&path_of(path));
        match (method.as_str(), public) {
            // The sign-in form without its double-submit cookie is refused.
            ("POST", true) => assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}"),
            (_, true) => assert_eq!(status, StatusCode::OK, "{method} {path}"),
            ("GET", false) => {
                assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
                assert_eq!(resp.headers()["location"], "/login", "{method} {path}");
            }
            _ => assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}"),
        }
        for h in ["content-security-policy", "x-frame-options", "x-content-type-options"] {
            assert!(resp.headers().contains_key(h), "{method} {path} lacks {h}");
        }
    }
}

#[tokio::test]
async fn signed_in_every_route_answers_and_a_wrong_csrf_token_changes_nothing() {
    let (state, _dir) = state().await;
    let id = state.sessions.create("admin").await.expect("session");
    let session = state.sessions.get(&id).await.expect("get").expect("live");
    let cookie = format!("stoxide_session={id}");
    let app = stoxide_server::router(state.clone());
    for (method, path) in ROUTES {
        if *path == "/events" {
            continue; // an endless stream; its access rule is checked signed out
        }
        let resp = app
            .clone()
            .oneshot(request(method, path, Some(&cookie), Some("0".repeat(64).as_str())))
            .await
            .expect("answer");
        let status = resp.status();
        assert!(!status.is_server_error(), "{method} {path}: {status}");
        if *method == Method::POST && *path != "/login" {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with a wrong CSRF token");
        }
    }
    // Nothing changed: the stream was not started, no instrument was added, the session lives.
    let (instruments, _, _) = state.hub.snapshot();
    assert_eq!(instruments.len(), DEFAULT_INSTRUMENTS.len());
    assert!(!state.hub.is_running());
    assert!(
        state.sessions.get(&id).await.expect("get").is_some(),
        "logout without CSRF did nothing"
    );

    // With the right token, a form goes through.
    let resp = app
        .clone()
        .oneshot(request(
            &Method::POST,
            "/instruments",
            Some(&cookie),
            Some(&session.csrf),
        ))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(state.hub.snapshot().0.len(), DEFAULT_INSTRUMENTS.len() + 1);
    let resp = app
        .oneshot(request(&Method::POST, "/logout", Some(&cookie), Some(&session.csrf)))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(state.sessions.get(&id).await.expect("get").is_none(), "signed out");
}

#[tokio::test]
async fn a_session_survives_a_restart_of_the_dashboard() {
    let (state, dir) = state().await;
    let id = state.sessions.create("admin").await.expect("session");
    state.vault.close().await;
    drop(state);
    // A new process on the same data directory.
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(dir.path()))
        .await
        .expect("vault");
    let again = Shared::new(
        ServerConfig {
            operator_two_factor: true,
            data_dir: dir.path().to_owned(),
            app: None,
            instruments: Vec::new(),
        },
        vault,
    )
    .expect("state");
    let resp = stoxide_server::router(again)
        .oneshot(request(&Method::GET, "/", Some(&format!("stoxide_session={id}")), None))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::OK, "still signed in after a restart");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("name=\"csrf\""),
        "the dashboard itself, with the session's forms"
    );
}
