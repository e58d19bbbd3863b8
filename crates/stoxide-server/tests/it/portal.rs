//! The portal's JSON API on a real socket: invitations, sign-in, sessions, and scoping — client A
//! tries every route with client B's identifiers and gets 404 each time, with nothing changed.

use reqwest::StatusCode;
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::{Value, json};
use stoxide_engine::catalog::{InputBounds, SignalSource, Strategy};
use stoxide_engine::desk::{Actor, Desk};
use stoxide_server::{ServerConfig, Shared};
use stoxide_store::{AuditRow, IntentRow, PositionRow};

struct Portal {
    url: String,
    http: reqwest::Client,
    state: stoxide_server::AppState,
    _dir: tempfile::TempDir,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Portal {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

const OPERATOR_PASSWORD: &str = "operator password 1";

/// The current code of a base32 TOTP secret, as an authenticator app shows it.
pub(crate) fn code_of(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().expect("base32");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "test".into())
        .expect("totp")
        .generate_current()
        .expect("clock")
}

async fn portal() -> Portal {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = stoxide_vault::Vault::open(&stoxide_vault::VaultConfig::sqlite(dir.path()))
        .await
        .expect("vault");
    let state = Shared::new(
        ServerConfig {
            operator_two_factor: true,
            data_dir: dir.path().to_owned(),
            app: None,
            instruments: Vec::new(),
        },
        vault,
    )
    .expect("state");
    state
        .people
        .first_operator(
            "ops@vendor.in",
            "Ops",
            &SecretString::from(OPERATOR_PASSWORD.to_owned()),
            0,
        )
        .await
        .expect("operator");
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(stoxide_server::serve(state.clone(), listener, async move {
        s.cancelled().await
    }));
    Portal {
        url,
        http: reqwest::Client::new(),
        state,
        _dir: dir,
        stop,
    }
}

impl Portal {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None).await
    }

    /// The operator of a fresh portal, signed in with two-factor set up (operators act only
    /// with it); answers their token.
    async fn operator(&self) -> String {
        let token = self.sign_in("ops@vendor.in", OPERATOR_PASSWORD).await;
        let secret = self.enroll(&token).await;
        let code = code_of(&secret);
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/sessions",
                None,
                Some(json!({"email": "ops@vendor.in", "password": OPERATOR_PASSWORD, "code": code})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Sets up two-factor sign-in for the token's person; answers the secret.
    async fn enroll(&self, token: &str) -> String {
        let (status, setup) = self
            .call(reqwest::Method::POST, "/api/v1/me/two-factor", Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{setup}");
        let secret = setup["secret"].as_str().expect("secret").to_owned();
        assert!(
            setup["otpauth_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("otpauth://totp/"))
        );
        let (status, person) = self
            .call(
                reqwest::Method::PUT,
                "/api/v1/me/two-factor",
                Some(token),
                Some(json!({"secret": secret, "code": code_of(&secret)})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{person}");
        assert_eq!(person["two_factor"], true);
        secret
    }

    async fn sign_in(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/sessions",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// The operator invites `email`; the client accepts and signs in; answers (person id, token).
    async fn client(&self, operator: &str, email: &str, name: &str) -> (String, String) {
        let (status, invited) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/invitations",
                Some(operator),
                Some(json!({"email": email, "name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invited}");
        let password = format!("{name} password 123");
        let (status, person) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/invitations/accept",
                None,
                Some(json!({"invitation": invited["invitation"], "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{person}");
        assert_eq!(person["role"], "client");
        (
            person["id"].as_str().expect("id").to_owned(),
            self.sign_in(email, &password).await,
        )
    }

    /// An account owned by `person` (token `token`) with a subscription (subscribed through the
    /// API, id `momo:<account>`), an order, a position and an audit record as the engine writes
    /// them.
    async fn seed(&self, person: &str, token: &str, account: &str) {
        let store = self.state.vault.store();
        self.state
            .vault
            .store_token(&stoxide_vault::NewToken::imported(
                account,
                "http://127.0.0.1:9",
                SecretString::from("a-token".to_owned()),
            ))
            .await
            .expect("token");
        let owner = self.state.people.person(person).await.expect("read").expect("person");
        assert!(self.state.people.link_account(&owner, account, 1).await.expect("link"));
        let (status, sub) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/subscriptions",
                Some(token),
                Some(json!({"account": account, "strategy": STRATEGY, "inputs": inputs(1)})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sub}");
        assert_eq!(sub["state"], "awaiting_consent");
        assert_eq!(sub["id"], format!("{STRATEGY}:{account}"));
        let now = chrono::Utc::now().timestamp_millis();
        store
            .insert_intent(&IntentRow {
                tag: format!("tag-{account}"),
                strategy: STRATEGY.into(),
                signal_id: "s1".into(),
                subscription: format!("{STRATEGY}:{account}"),
                account: account.to_owned(),
                plan: None,
                state: "filled".into(),
                reason: None,
                order_ids: r#"["250101000001"]"#.into(),
                created_at: now,
                updated_at: now,
                filled: 75,
                average_price: Some("101.5".into()),
            })
            .await
            .expect("intent");
        store
            .put_position(&PositionRow {
                subscription: format!("{STRATEGY}:{account}"),
                instrument: "NSE_FO|12345".into(),
                quantity: 75,
                avg_price: "101.5".into(),
                realised: "0".into(),
                updated_at: now,
            })
            .await
            .expect("position");
        let account = account.to_owned();
        store
            .append_audit(|head| AuditRow {
                seq: head.as_ref().map_or(1, |h| h.seq + 1),
                at_ms: now,
                kind: "order_placed".into(),
                user_id: account.clone(),
                body: "{}".into(),
                prev: head.as_ref().map_or_else(String::new, |h| h.hash.clone()),
                hash: format!("h{}", head.as_ref().map_or(1, |h| h.seq + 1)),
            })
            .await
            .expect("audit");
    }
}

const STRATEGY: &str = "momo";

/// A portal with the test's strategy, its operator, and two clients — Asha (`ACCT-A`) and Bala
/// (`ACCT-B`) — each seeded: (portal, operator's token, Asha's token, Bala's token).
async fn two_seeded_clients() -> (Portal, String, String, String) {
    let p = portal().await;
    register_strategy(&p).await;
    let op = p.operator().await;
    let (a_id, a) = p.client(&op, "asha@example.in", "Asha").await;
    let (b_id, b) = p.client(&op, "bala@example.in", "Bala").await;
    p.seed(&a_id, &a, "ACCT-A").await;
    p.seed(&b_id, &b, "ACCT-B").await;
    (p, op, a, b)
}

fn inputs(lots: u32) -> Value {
    json!({
        "sizing": {"mode": "fixed_lots", "lots": lots, "multiplier": 1},
        "max_exposure": "500000", "max_open_positions": 3, "max_orders_per_day": 20,
        "daily_max_loss": 10000, "product": "I"
    })
}

async fn register_strategy(p: &Portal) {
    register_strategy_in(&p.state).await;
}

/// The test's strategy in the catalog of `state`'s store.
pub(crate) async fn register_strategy_in(state: &stoxide_server::AppState) {
    let strategy = Strategy {
        id: STRATEGY.into(),
        name: "Momentum".into(),
        description: "Buys strength".into(),
        version: 1,
        algo_name: "STOXIDE-MOMO".into(),
        registered: false,
        instruments: vec!["NSE_EQ|INE002A01018".parse().expect("key")],
        bounds: InputBounds {
            max_lots: 10,
            max_multiplier: 5,
            max_margin_percent: Decimal::from(50),
            max_exposure: Decimal::from(10_000_000),
            max_orders_per_day: 100,
            max_open_positions: 10,
        },
        source: SignalSource::External,
    };
    let actor = Actor {
        by: "ops".into(),
        from: "test".into(),
    };
    Desk::new(state.vault.clone())
        .register(&strategy, &actor)
        .await
        .expect("register");
}

#[tokio::test]
async fn a_client_sees_only_their_own_and_anothers_identifiers_answer_404() {
    let p = portal().await;
    register_strategy(&p).await;
    let op = p.operator().await;
    let (a_id, a) = p.client(&op, "asha@example.in", "Asha").await;
    let (b_id, b) = p.client(&op, "bala@example.in", "Bala").await;
    p.seed(&a_id, &a, "ACCT-A").await;
    p.seed(&b_id, &b, "ACCT-B").await;
    let (_, b_before) = p.get("/api/v1/subscriptions/momo:ACCT-B", &b).await;

    // A's own: everything there, nothing of B's.
    let (s, me) = p.get("/api/v1/me", &a).await;
    assert_eq!((s, me["email"].as_str()), (StatusCode::OK, Some("asha@example.in")));
    let (_, accounts) = p.get("/api/v1/accounts", &a).await;
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
    assert_eq!(accounts[0]["id"], "ACCT-A");
    let (_, subs) = p.get("/api/v1/subscriptions", &a).await;
    assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");
    assert_eq!(subs[0]["id"], "momo:ACCT-A");
    let (_, orders) = p.get("/api/v1/orders", &a).await;
    assert_eq!(orders.as_array().map(Vec::len), Some(1), "{orders}");
    assert_eq!(orders[0]["tag"], "tag-ACCT-A");
    assert_eq!(orders[0]["filled"], 75);
    for own in [
        "/api/v1/accounts/ACCT-A",
        "/api/v1/accounts/ACCT-A/audit",
        "/api/v1/subscriptions/momo:ACCT-A",
        "/api/v1/subscriptions/momo:ACCT-A/positions",
        "/api/v1/orders/tag-ACCT-A",
        "/api/v1/orders?account=ACCT-A",
        "/api/v1/subscriptions/momo:ACCT-A/consent",
    ] {
        let (s, body) = p.get(own, &a).await;
        assert_eq!(s, StatusCode::OK, "{own}: {body}");
    }
    let (_, audit) = p.get("/api/v1/accounts/ACCT-A/audit", &a).await;
    // The subscription's record and the order's.
    assert_eq!(audit.as_array().map(Vec::len), Some(2), "{audit}");

    // B's identifiers, every route: 404, the same answer as for an id that does not exist.
    let (_, b_sessions) = p.get("/api/v1/sessions", &b).await;
    let b_session = b_sessions[0]["id"].as_str().expect("session id").to_owned();
    for theirs in [
        "/api/v1/accounts/ACCT-B".to_owned(),
        "/api/v1/accounts/ACCT-B/audit".to_owned(),
        "/api/v1/subscriptions/momo:ACCT-B".to_owned(),
        "/api/v1/subscriptions/momo:ACCT-B/positions".to_owned(),
        "/api/v1/orders/tag-ACCT-B".to_owned(),
        "/api/v1/orders?account=ACCT-B".to_owned(),
        "/api/v1/subscriptions/momo:ACCT-B/consent".to_owned(),
    ] {
        let (s, body) = p.get(&theirs, &a).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{theirs}: {body}");
        let missing = theirs.replace("ACCT-B", "ACCT-NONE");
        let (s2, body2) = p.get(&missing, &a).await;
        assert_eq!((s2, &body2), (s, &body), "{missing} answers differently from {theirs}");
    }
    let (s, _) = p
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{b_session}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Every act on B's identifiers: 404 as for a missing one.
    let (_, shown) = p.get("/api/v1/subscriptions/momo:ACCT-B/consent", &b).await;
    let acts: [(reqwest::Method, &str, Value); 6] = [
        (
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-B/consent",
            json!({"hash": shown["hash"], "password": "Asha password 123"}),
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/subscriptions/momo:ACCT-B/inputs",
            json!({"inputs": inputs(2)}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-B/pause",
            Value::Null,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-B/resume",
            Value::Null,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/subscriptions",
            json!({"account": "ACCT-B", "strategy": STRATEGY, "inputs": inputs(1)}),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/kill",
            json!({"account": "ACCT-B", "halt": true}),
        ),
    ];
    for (method, path, body) in acts {
        let body = (!body.is_null()).then_some(body);
        let (s, answer) = p.call(method.clone(), path, Some(&a), body.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        let missing = path.replace("ACCT-B", "ACCT-NONE");
        let body = body.map(|b| serde_json::from_str(&b.to_string().replace("ACCT-B", "ACCT-NONE")).expect("json"));
        let (s2, answer2) = p.call(method.clone(), &missing, Some(&a), body).await;
        assert_eq!(
            (s2, &answer2),
            (s, &answer),
            "{method} {missing} answers differently from {path}"
        );
    }
    let (_, b_after) = p.get("/api/v1/subscriptions/momo:ACCT-B", &b).await;
    assert_eq!(b_after, b_before, "A's attempts changed B's subscription");
    let states = Desk::new(p.state.vault.clone()).states().await.expect("states");
    assert!(states.is_empty(), "A's kill switch reached B: {states:?}");

    // Operator-only routes are refused to a client, and change nothing.
    let (s, _) = p
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/people/{b_id}/disabled"),
            Some(&a),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/invitations",
            Some(&a),
            Some(json!({"email": "x@example.in", "name": "X"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(p.get("/api/v1/people", &a).await.0, StatusCode::FORBIDDEN);

    // Nothing of B's changed: B still signs in with the same session and sees all of theirs.
    let (s, me) = p.get("/api/v1/me", &b).await;
    assert_eq!((s, me["disabled"].as_bool()), (StatusCode::OK, Some(false)));
    let (_, b_subs) = p.get("/api/v1/subscriptions/momo:ACCT-B", &b).await;
    assert_eq!(b_subs["state"], "awaiting_consent");
    let (_, b_sessions_after) = p.get("/api/v1/sessions", &b).await;
    assert_eq!(b_sessions_after.as_array().map(Vec::len), Some(1));

    // The operator sees both.
    let (_, all) = p.get("/api/v1/subscriptions", &op).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let (_, people) = p.get("/api/v1/people", &op).await;
    assert_eq!(people.as_array().map(Vec::len), Some(3), "{people}");
}

#[tokio::test]
async fn sessions_are_listed_revoked_and_a_portal_token_never_opens_the_dashboard() {
    let p = portal().await;
    let op = p.operator().await;
    let (_, a) = p.client(&op, "asha@example.in", "Asha").await;
    let a2 = p.sign_in("asha@example.in", "Asha password 123").await;
    let (s, list) = p.get("/api/v1/sessions", &a).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(
        list.iter().all(|s| !s.to_string().contains(&a)),
        "a session token is listed"
    );
    let other = list
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_str())
        .expect("other session");
    let (s, _) = p
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{other}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(p.get("/api/v1/me", &a2).await.0, StatusCode::UNAUTHORIZED);
    let current = list
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["id"].as_str())
        .expect("current session");
    let (s, body) = p
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/sessions/{current}"),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(p.get("/api/v1/me", &a).await.0, StatusCode::OK);

    // The portal token as the dashboard's session cookie: still the sign-in page.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http")
        .get(format!("{}/", p.url))
        .header(reqwest::header::COOKIE, format!("stoxide_session={a}"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "the dashboard let a portal client in"
    );
    assert_eq!(
        resp.headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/login")
    );

    let (s, _) = p
        .call(reqwest::Method::DELETE, "/api/v1/sessions/current", Some(&a), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(p.get("/api/v1/me", &a).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_requests_get_one_clear_line_and_a_4xx() {
    let p = portal().await;
    let post = |path: &'static str, body: &'static str| {
        let http = p.http.clone();
        let url = format!("{}{path}", p.url);
        async move {
            let resp = http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            let status = resp.status();
            let v: Value = resp.json().await.expect("json error");
            (status, v["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    let (s, e) = post("/api/v1/sessions", "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e.contains("not the JSON"), "{e}");
    let (s, e) = post(
        "/api/v1/sessions",
        r#"{"email":"ops@vendor.in","password":"wrong password 1"}"#,
    )
    .await;
    assert_eq!((s, e.as_str()), (StatusCode::UNAUTHORIZED, "wrong email or password"));
    let (s, e) = post(
        "/api/v1/sessions",
        r#"{"email":"nobody@vendor.in","password":"wrong password 1"}"#,
    )
    .await;
    assert_eq!((s, e.as_str()), (StatusCode::UNAUTHORIZED, "wrong email or password"));
    let (s, e) = post(
        "/api/v1/invitations/accept",
        r#"{"invitation":"nope","password":"long enough pass"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, e) = post(
        "/api/v1/invitations/accept",
        r#"{"invitation":"nope","password":"short"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, body) = p
        .call(reqwest::Method::GET, "/api/v1/me", Some("not-a-token"), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let op = p.operator().await;
    let (s, body) = p.get("/api/v1/orders?limit=many", &op).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = p.get("/api/v1/accounts/X/audit?from=10&to=5", &op).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let p = portal().await;
    let resp = p
        .http
        .get(format!("{}/api/v1/openapi.json", p.url))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.0.3");
    let source = include_str!("../../src/portal_api.rs");
    let routes: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert!(routes.len() >= 15, "{routes:?}");
    for r in routes {
        assert!(doc["paths"].get(r).is_some(), "{r} is served but not in openapi.json");
    }
}

#[tokio::test]
async fn a_client_subscribes_consents_with_their_password_edits_and_pulls_the_kill_switch() {
    let p = portal().await;
    register_strategy(&p).await;
    let op = p.operator().await;
    let (a_id, a) = p.client(&op, "asha@example.in", "Asha").await;
    p.seed(&a_id, &a, "ACCT-A").await;
    let (s, catalog) = p.get("/api/v1/strategies", &a).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(catalog[0]["algo_name"], "STOXIDE-MOMO");

    let (s, shown) = p.get("/api/v1/subscriptions/momo:ACCT-A/consent", &a).await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    assert_eq!(shown["sizing"], "1 lot(s) per signal (1 × 1)");
    assert_eq!(shown["instruments"], json!(["NSE_EQ|INE002A01018"]));
    let consent = |hash: Value, password: &str| json!({"hash": hash, "password": password});
    let (s, body) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-A/consent",
            Some(&a),
            Some(consent(shown["hash"].clone(), "not the password")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, active) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-A/consent",
            Some(&a),
            Some(consent(shown["hash"].clone(), "Asha password 123")),
        )
        .await;
    assert_eq!(
        (s, active["state"].as_str()),
        (StatusCode::OK, Some("active")),
        "{active}"
    );
    assert_eq!(active["consented"], true);

    let (s, body) = p
        .call(
            reqwest::Method::PUT,
            "/api/v1/subscriptions/momo:ACCT-A/inputs",
            Some(&a),
            Some(json!({"inputs": inputs(99)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("lots")), "{body}");
    let (s, edited) = p
        .call(
            reqwest::Method::PUT,
            "/api/v1/subscriptions/momo:ACCT-A/inputs",
            Some(&a),
            Some(json!({"inputs": inputs(2)})),
        )
        .await;
    assert_eq!(
        (s, edited["state"].as_str()),
        (StatusCode::OK, Some("awaiting_consent")),
        "{edited}"
    );
    let (s, stale) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-A/consent",
            Some(&a),
            Some(consent(shown["hash"].clone(), "Asha password 123")),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{stale}");

    let (s, report) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/kill",
            Some(&a),
            Some(json!({"halt": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"accounts": ["ACCT-A"], "state": "halted", "exits": 0, "exit_problem": null})
    );
    // Halt and exit with no engine running beside this server: halted all the same, and said.
    let (s, report) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/kill",
            Some(&a),
            Some(json!({"halt": true, "exit": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["state"], "halted", "{report}");
    assert!(
        report["exit_problem"]
            .as_str()
            .is_some_and(|p| p.contains("nothing was cancelled or exited")),
        "{report}"
    );
    let (_, audit) = p.get("/api/v1/accounts/ACCT-A/audit", &a).await;
    let kinds: Vec<&str> = audit
        .as_array()
        .map(|v| v.iter().filter_map(|r| r["kind"].as_str()).collect())
        .unwrap_or_default();
    for kind in ["subscribed", "consent", "inputs_changed", "trading_state"] {
        assert!(kinds.contains(&kind), "no {kind} in the audit trail: {kinds:?}");
    }
}

#[tokio::test]
async fn operators_act_only_with_two_factor_and_a_code_is_then_needed_to_sign_in() {
    let p = portal().await;
    let bare = p.sign_in("ops@vendor.in", OPERATOR_PASSWORD).await;
    let (s, body) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/invitations",
            Some(&bare),
            Some(json!({"email": "asha@example.in", "name": "Asha"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("two-factor")),
        "{body}"
    );
    let (s, body) = p
        .call(
            reqwest::Method::PUT,
            "/api/v1/me/two-factor",
            Some(&bare),
            Some(json!({"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "code": "000000"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let secret = p.enroll(&bare).await;
    // The secret is sealed: the database file does not hold it in clear.
    let db = std::fs::read(p._dir.path().join(stoxide_store::SQLITE_FILE)).expect("db");
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "TOTP secret in clear"
    );

    let sign_in = |code: Option<String>| {
        let mut body = json!({"email": "ops@vendor.in", "password": OPERATOR_PASSWORD});
        if let Some(c) = code {
            body["code"] = Value::String(c);
        }
        p.call(reqwest::Method::POST, "/api/v1/sessions", None, Some(body))
    };
    let (s, body) = sign_in(None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("6-digit code")),
        "{body}"
    );
    let (s, _) = sign_in(Some("123 456".into())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = sign_in(Some(code_of(&secret))).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let op = body["token"].as_str().expect("token").to_owned();
    let (s, _) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/invitations",
            Some(&op),
            Some(json!({"email": "asha@example.in", "name": "Asha"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn a_client_with_two_factor_consents_with_a_code() {
    let p = portal().await;
    register_strategy(&p).await;
    let op = p.operator().await;
    let (a_id, a) = p.client(&op, "asha@example.in", "Asha").await;
    p.seed(&a_id, &a, "ACCT-A").await;
    let secret = p.enroll(&a).await;
    let (_, shown) = p.get("/api/v1/subscriptions/momo:ACCT-A/consent", &a).await;
    let path = "/api/v1/subscriptions/momo:ACCT-A/consent";
    let (s, body) = p
        .call(
            reqwest::Method::POST,
            path,
            Some(&a),
            Some(json!({"hash": shown["hash"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = p
        .call(
            reqwest::Method::POST,
            path,
            Some(&a),
            Some(json!({"hash": shown["hash"], "code": "000000"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = p
        .call(
            reqwest::Method::POST,
            path,
            Some(&a),
            Some(json!({"hash": shown["hash"], "code": code_of(&secret)})),
        )
        .await;
    assert_eq!((s, body["state"].as_str()), (StatusCode::OK, Some("active")), "{body}");
}

#[tokio::test]
async fn the_operators_control_room_signal_monitor_kill_switch_audit_check_and_compliance_export() {
    let (p, op, a, _b) = two_seeded_clients().await;
    let now = chrono::Utc::now().timestamp_millis();
    p.state
        .vault
        .store()
        .insert_signal(&stoxide_store::SignalRow {
            strategy: STRATEGY.into(),
            id: "s1".into(),
            body: "{}".into(),
            accepted: 1,
            reason: None,
            received_at: now,
        })
        .await
        .expect("signal");

    // The signal monitor: the signal and its fan-out to both clients.
    let (s, signals) = p.get("/api/v1/signals", &op).await;
    assert_eq!(s, StatusCode::OK, "{signals}");
    assert_eq!(signals[0]["id"], "s1");
    assert_eq!(signals[0]["states"], json!({"filled": 2}));
    let accounts: Vec<&str> = signals[0]["orders"]
        .as_array()
        .map(|o| o.iter().filter_map(|x| x["account"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(accounts.len(), 2, "{signals}");
    assert!(accounts.contains(&"ACCT-A") && accounts.contains(&"ACCT-B"));
    assert_eq!(p.get("/api/v1/signals", &a).await.0, StatusCode::FORBIDDEN);

    // Clients today: each client's account, its token, today's orders and Upstox's 429s.
    p.state
        .vault
        .store()
        .append_audit(|head| AuditRow {
            seq: head.as_ref().map_or(1, |h| h.seq + 1),
            at_ms: now,
            kind: "rate_limited".into(),
            user_id: "ACCT-B".into(),
            body: "{}".into(),
            prev: head.as_ref().map_or_else(String::new, |h| h.hash.clone()),
            hash: format!("h{}", head.as_ref().map_or(1, |h| h.seq + 1)),
        })
        .await
        .expect("audit");
    let (s, clients) = p.get("/api/v1/clients", &op).await;
    assert_eq!(s, StatusCode::OK, "{clients}");
    let of = |email: &str| {
        clients
            .as_array()
            .and_then(|c| c.iter().find(|x| x["person"]["email"] == email))
            .map(|x| x["accounts"][0].clone())
            .unwrap_or_default()
    };
    let (ca, cb) = (of("asha@example.in"), of("bala@example.in"));
    assert_eq!(
        (
            &ca["account"],
            &ca["token"],
            &ca["orders_today"],
            &ca["rate_limited_today"]
        ),
        (&json!("ACCT-A"), &json!("valid"), &json!({"filled": 1}), &json!(0)),
        "{clients}"
    );
    assert_eq!(
        (&cb["account"], &cb["rate_limited_today"]),
        (&json!("ACCT-B"), &json!(1)),
        "{clients}"
    );
    assert_eq!(p.get("/api/v1/clients", &a).await.0, StatusCode::FORBIDDEN);

    // Compliance export: the operator any client's, a client only their own.
    let day = chrono::Utc::now()
        .with_timezone(&upstox_types::IST)
        .format("%Y-%m-%d")
        .to_string();
    let path = format!("/api/v1/accounts/ACCT-A/compliance?day={day}");
    let (s, csv) = p.get(&path, &op).await;
    assert_eq!(s, StatusCode::OK);
    let csv = csv.as_str().expect("csv text").to_owned();
    assert!(csv.starts_with("seq,at,kind,user,body,prev,hash\n"), "{csv}");
    assert!(csv.lines().any(|l| l.contains(",subscribed,ACCT-A,")), "{csv}");
    assert!(!csv.contains("ACCT-B"), "another client's records in the export: {csv}");
    assert_eq!(p.get(&path, &a).await.0, StatusCode::OK);
    let (s, _) = p
        .get(&format!("/api/v1/accounts/ACCT-B/compliance?day={day}"), &a)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = p.get("/api/v1/accounts/ACCT-A/compliance?day=yesterday", &op).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // The chain check reports a record whose hash does not fit (the test seeds its order
    // records with made-up hashes).
    let (s, check) = p.get("/api/v1/audit/verify", &op).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(check["intact"], false, "{check}");
    assert!(
        check["problem"].as_str().is_some_and(|m| m.contains("record")),
        "{check}"
    );
    assert_eq!(p.get("/api/v1/audit/verify", &a).await.0, StatusCode::FORBIDDEN);

    // The global kill switch: the operator's alone.
    let (s, _) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/kill/global",
            Some(&a),
            Some(json!({"halt": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/kill/global",
            Some(&op),
            Some(json!({"halt": true})),
        )
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({"state": "halted"})));
    let states = Desk::new(p.state.vault.clone()).states().await.expect("states");
    assert!(
        states
            .iter()
            .any(|r| r.level == stoxide_engine::risk::Level::Global
                && r.state == stoxide_engine::risk::TradingState::Halted),
        "{states:?}"
    );
}

#[tokio::test]
async fn a_person_chooses_their_notifications() {
    let p = portal().await;
    let op = p.operator().await;
    let (_, a) = p.client(&op, "asha@example.in", "Asha").await;
    let (s, none) = p.get("/api/v1/me/notifications", &a).await;
    assert_eq!(
        (s, none),
        (
            StatusCode::OK,
            json!({"email": false, "webhook_url": null, "events": []})
        )
    );
    let want = json!({"email": true, "webhook_url": "https://hooks.example.in/asha", "events": ["order_rejected", "login_today"]});
    let (s, saved) = p
        .call(reqwest::Method::PUT, "/api/v1/me/notifications", Some(&a), Some(want))
        .await;
    assert_eq!(s, StatusCode::OK, "{saved}");
    assert_eq!(saved["events"], json!(["login_today", "order_rejected"]));
    let (_, again) = p.get("/api/v1/me/notifications", &a).await;
    assert_eq!(again, saved);
    let (s, body) = p
        .call(
            reqwest::Method::PUT,
            "/api/v1/me/notifications",
            Some(&a),
            Some(json!({"email": false, "webhook_url": "not a url", "events": []})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, body) = p
        .call(
            reqwest::Method::PUT,
            "/api/v1/me/notifications",
            Some(&a),
            Some(json!({"email": false, "webhook_url": null, "events": ["lunch"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    // The operator's are their own.
    let (_, ops) = p.get("/api/v1/me/notifications", &op).await;
    assert_eq!(ops["email"], false);
}

#[tokio::test]
async fn the_operator_puts_strategies_in_the_catalog_rotates_secrets_and_halts_a_strategy() {
    let p = portal().await;
    let op = p.operator().await;
    let (a_id, a) = p.client(&op, "asha@example.in", "Asha").await;
    let mut def = json!({
        "id": STRATEGY, "name": "Momentum", "description": "Buys strength", "version": 1,
        "algo_name": "STOXIDE-MOMO", "instruments": ["NSE_EQ|INE002A01018"],
        "bounds": {"max_lots": 10, "max_multiplier": 5, "max_margin_percent": 50, "max_exposure": 10000000,
                   "max_orders_per_day": 100, "max_open_positions": 10},
        "source": {"source": "external"}
    });
    let post = |token: String, body: Value| {
        let p = &p;
        async move {
            p.call(reqwest::Method::POST, "/api/v1/strategies", Some(&token), Some(body))
                .await
        }
    };
    let (s, r) = post(op.clone(), def.clone()).await;
    assert_eq!((s, r), (StatusCode::CREATED, json!({"outcome": "new"})));
    let (s, r) = post(op.clone(), def.clone()).await;
    assert_eq!((s, r), (StatusCode::OK, json!({"outcome": "unchanged"})));
    assert_eq!(post(a.clone(), def.clone()).await.0, StatusCode::FORBIDDEN);

    // A consented subscription, then a new version: back to awaiting consent.
    p.seed(&a_id, &a, "ACCT-A").await;
    let (_, shown) = p.get("/api/v1/subscriptions/momo:ACCT-A/consent", &a).await;
    let (s, _) = p
        .call(
            reqwest::Method::POST,
            "/api/v1/subscriptions/momo:ACCT-A/consent",
            Some(&a),
            Some(json!({"hash": shown["hash"], "password": "Asha password 123"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    def["description"] = json!("Buys strength, sells weakness");
    let (s, body) = post(op.clone(), def.clone()).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a change without a new version: {body}"
    );
    def["version"] = json!(2);
    let (s, r) = post(op.clone(), def.clone()).await;
    assert_eq!(
        (s, r),
        (StatusCode::OK, json!({"outcome": "new_version", "reconsent": 1}))
    );
    let (_, sub) = p.get("/api/v1/subscriptions/momo:ACCT-A", &a).await;
    assert_eq!(sub["state"], "awaiting_consent");

    // The signing secret: a new one each time, sealed in the vault, shown once.
    let rotate = |token: String, id: &'static str| {
        let p = &p;
        async move {
            let path = format!("/api/v1/strategies/{id}/signing-secret");
            p.call(reqwest::Method::POST, &path, Some(&token), None).await
        }
    };
    let (s, first) = rotate(op.clone(), STRATEGY).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (_, second) = rotate(op.clone(), STRATEGY).await;
    let secret = second["secret"].as_str().expect("secret");
    assert_eq!(secret.len(), 64);
    assert_ne!(first["secret"], second["secret"]);
    let stored = p
        .state
        .vault
        .signing_secret(STRATEGY)
        .await
        .expect("vault")
        .expect("stored");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), secret);
    assert_eq!(rotate(op.clone(), "nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(rotate(a.clone(), STRATEGY).await.0, StatusCode::FORBIDDEN);

    // The strategy's kill switch.
    let (s, r) = p
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/strategies/{STRATEGY}/kill"),
            Some(&op),
            Some(json!({"halt": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["subscriptions"], json!(["momo:ACCT-A"]));
    let (s, _) = p
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/strategies/{STRATEGY}/kill"),
            Some(&a),
            Some(json!({"halt": true})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_clients_pnl_over_time_comes_from_their_own_fills_only() {
    let (p, op, a, b) = two_seeded_clients().await;
    let store = p.state.vault.store();
    let fill = |account: &str, at: i64, side: &str, price: &str| IntentRow {
        tag: format!("fill-{account}-{at}"),
        strategy: STRATEGY.into(),
        signal_id: format!("f{at}"),
        subscription: format!("{STRATEGY}:{account}"),
        account: account.to_owned(),
        plan: Some(
            json!({
                "instrument": "NSE_EQ|INE002A01018", "product": "I", "algo_name": "MOMO", "paper": false,
                "order": {"side": side, "quantity": 10, "slice": false, "reduces": side == "SELL", "target": 0},
            })
            .to_string(),
        ),
        state: "filled".into(),
        reason: None,
        order_ids: "[]".into(),
        created_at: at,
        updated_at: at,
        filled: 10,
        average_price: Some(price.into()),
    };
    for row in [
        fill("ACCT-A", 1_000, "BUY", "100"),
        fill("ACCT-A", 2_000, "SELL", "105.5"),
        fill("ACCT-B", 1_500, "BUY", "100"),
        fill("ACCT-B", 2_500, "SELL", "90"),
    ] {
        store.insert_intent(&row).await.expect("intent");
    }
    let (s, pnl) = p.get("/api/v1/pnl", &a).await;
    assert_eq!(s, StatusCode::OK, "{pnl}");
    assert_eq!(
        pnl,
        json!({STRATEGY: [[1_000, "0"], [2_000, "55.0"]]}),
        "A's own fills only"
    );
    let (_, pnl) = p.get("/api/v1/pnl", &b).await;
    assert_eq!(pnl, json!({STRATEGY: [[1_500, "0"], [2_500, "-100"]]}));
    let (_, pnl) = p.get("/api/v1/pnl", &op).await;
    assert_eq!(
        pnl[STRATEGY].as_array().map(Vec::len),
        Some(4),
        "the operator sees both: {pnl}"
    );
}

#[tokio::test]
async fn signed_out_every_api_route_and_portal_page_refuses() {
    let p = portal().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let with_ids = |path: &str| {
        path.split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    };
    // The API: every documented operation but the public ones answers 401.
    let doc: Value = http
        .get(format!("{}/api/v1/openapi.json", p.url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let public = [
        ("get", "/api/v1/openapi.json"),
        ("post", "/api/v1/sessions"),
        ("post", "/api/v1/invitations/accept"),
    ];
    let mut tried = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            if public.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let resp = http
                .request(m, format!("{}{}", p.url, with_ids(path)))
                .json(&json!({}))
                .send()
                .await
                .expect("send");
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} answered signed out"
            );
            tried += 1;
        }
    }
    assert!(tried >= 30, "only {tried} operations tried");
    // The pages: every page but sign-in and invitations sends a browser to sign in (GET) or
    // refuses the form (POST); none answers with a page.
    let source = include_str!("../../src/portal_pages.rs");
    let pages: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .filter_map(|l| l.split('"').next())
        .filter(|r| {
            !matches!(
                *r,
                "/portal/login" | "/portal/invite" | "/portal/invite/{secret}" | "/static/portal.js"
            )
        })
        .collect();
    assert!(pages.len() >= 20, "{pages:?}");
    for page in pages {
        let url = format!("{}{}", p.url, with_ids(page));
        let get = http.get(&url).send().await.expect("get");
        assert!(
            get.status() == StatusCode::METHOD_NOT_ALLOWED
                || (get.status() == StatusCode::SEE_OTHER && get.headers()["location"] == "/portal/login"),
            "GET {page} answered {} signed out",
            get.status()
        );
        let post = http.post(&url).form(&[("csrf", "x")]).send().await.expect("post");
        assert!(
            matches!(post.status(), StatusCode::UNAUTHORIZED | StatusCode::METHOD_NOT_ALLOWED),
            "POST {page} answered {} signed out",
            post.status()
        );
    }
}
