use rust_decimal::Decimal;
use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use upstox_client::login::AppCredentials;
use upstox_client::orders::PlaceOrderRequest;
use upstox_client::{ClientConfig, Hosts, UpstoxClient};
use upstox_sim::SimConfig;
use upstox_types::{Product, TransactionType};

use crate::{sim_post, start};

fn app(config: &SimConfig, i: usize) -> AppCredentials {
    let a = &config.apps[i];
    AppCredentials {
        client_id: a.client_id.clone(),
        client_secret: a.client_secret.clone().into(),
        redirect_uri: a.redirect_uri.clone(),
    }
}

/// Drives the dialog form like a browser and returns the redirect's query.
async fn submit_dialog(
    base: &str,
    app: &AppCredentials,
    user: &str,
    pin: &str,
    state: &str,
) -> (u16, HashMap<String, String>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let resp = http
        .post(format!("{base}/v2/login/authorization/dialog"))
        .form(&[
            ("client_id", app.client_id.as_str()),
            ("redirect_uri", &app.redirect_uri),
            ("state", state),
            ("user_id", user),
            ("pin", pin),
        ])
        .send()
        .await
        .expect("submit");
    let status = resp.status().as_u16();
    let query = resp
        .headers()
        .get("location")
        .and_then(|l| url::Url::parse(l.to_str().ok()?).ok())
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, query)
}

#[tokio::test]
async fn oauth_dialog_exchange_and_the_one_live_token_rule() {
    let config = SimConfig::default();
    let (sim, seeded) = start(config.clone()).await;
    let app = app(&config, 0);
    let anon = UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url()))).expect("client");

    // The dialog renders a form for the right app and refuses a wrong redirect_uri.
    let page = reqwest::get(anon.authorize_url(&app.client_id, &app.redirect_uri, "s1"))
        .await
        .expect("dialog");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("id=\"login-form\""));
    let wrong = reqwest::get(anon.authorize_url(&app.client_id, "http://evil.example/cb", "s1"))
        .await
        .expect("dialog");
    assert_eq!(wrong.status(), 400);
    let body: serde_json::Value = wrong.json().await.expect("json");
    assert_eq!(body["errors"][0]["error_code"], "UDAPI100068");
    assert_eq!(body["errors"][0]["errorCode"], "UDAPI100068");

    // Wrong PIN: no redirect.
    let (status, _) = submit_dialog(&sim.base_url(), &app, "SIM001", "000000", "s1").await;
    assert_eq!(status, 401);

    let (status, q) = submit_dialog(&sim.base_url(), &app, "SIM001", "123456", "state-42").await;
    assert_eq!(status, 302);
    assert_eq!(q.get("state").map(String::as_str), Some("state-42"));
    let code = q.get("code").expect("code").clone();

    // Wrong secret burns the code; a fresh code with the right secret works once.
    let bad = AppCredentials {
        client_secret: SecretString::from("nope"),
        ..app.clone()
    };
    let e = anon.exchange_code(&bad, &code).await.expect_err("bad secret");
    assert!(e.has_code("UDAPI100069"), "{e}");
    let e = anon.exchange_code(&app, &code).await.expect_err("burnt code");
    assert!(e.has_code("UDAPI100057"), "{e}");

    let (_, q) = submit_dialog(&sim.base_url(), &app, "SIM001", "123456", "s2").await;
    let tokens = anon.exchange_code(&app, &q["code"]).await.expect("exchange");
    assert_eq!(tokens.profile.user_id, "SIM001");
    assert!(
        !format!("{tokens:?}").contains(tokens.access_token.expose_secret()),
        "Debug must hide the token"
    );
    let e = anon.exchange_code(&app, &q["code"]).await.expect_err("code reuse");
    assert!(e.has_code("UDAPI100057"));

    // The new login revoked the seeded token of the same app and user.
    let fresh = anon.with_token(tokens.access_token.clone());
    assert_eq!(fresh.profile().await.expect("profile").user_id, "SIM001");
    let e = seeded.profile().await.expect_err("revoked");
    assert_eq!(e.status(), Some(401));
    assert!(e.has_code("UDAPI100050"));
    assert!(!e.to_string().contains(tokens.access_token.expose_secret()));

    // Logout kills the token.
    assert!(fresh.logout().await.expect("logout"));
    assert!(fresh.profile().await.expect_err("logged out").is_unauthorized());
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_die_at_0330_ist_by_the_simulator_clock() {
    let (sim, client) = start(SimConfig::default()).await;
    client.profile().await.expect("valid at 10:00 IST");
    // The session clock starts at 10:00 IST; 17.5 hours later it is 03:30 the next day.
    sim_post(
        &sim,
        "/sim/clock",
        serde_json::json!({"advance_secs": 17 * 3600 + 1800 + 1}),
    )
    .await;
    let e = client.profile().await.expect_err("expired");
    assert_eq!(e.status(), Some(401));
    assert!(e.has_code("UDAPI100050"));
    sim.shutdown().await;
}

#[tokio::test]
async fn extended_token_reads_but_cannot_trade() {
    let config = SimConfig::default();
    let (sim, _) = start(config.clone()).await;
    let vendor = app(&config, 1);
    let anon = UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url()))).expect("client");
    let (_, q) = submit_dialog(&sim.base_url(), &vendor, "SIM002", "234567", "v").await;
    let tokens = anon.exchange_code(&vendor, &q["code"]).await.expect("exchange");
    let ext = anon.with_token(
        tokens
            .extended_token
            .clone()
            .expect("vendor app issues an extended token"),
    );
    assert_eq!(ext.profile().await.expect("read with extended token").user_id, "SIM002");
    let e = ext
        .place_order_v3(&PlaceOrderRequest::market(
            "NSE_EQ|INE002A01018",
            TransactionType::Buy,
            1,
            Product::Intraday,
        ))
        .await
        .expect_err("trading with an extended token");
    assert!(e.has_code("UDAPI100067"), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn v3_token_request_is_delivered_to_the_notifier_webhook() {
    // A one-shot webhook receiver on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hook = format!("http://{}/notify", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<serde_json::Value>();
    let tx = std::sync::Arc::new(parking_lot::Mutex::new(Some(tx)));
    let router = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().take() {
                    let _ = tx.send(v);
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut config = SimConfig::default();
    config.apps[0].notifier_url = Some(hook);
    config.token_request_auto_approve_ms = Some(50);
    let (sim, _) = start(config.clone()).await;
    let anon = UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url()))).expect("client");
    let e = anon
        .request_access_token("sim-app-1", &SecretString::from("wrong"))
        .await
        .expect_err("wrong secret");
    assert!(e.has_code("UDAPI100069"));
    let started = anon
        .request_access_token("sim-app-1", &SecretString::from(config.apps[0].client_secret.clone()))
        .await
        .expect("request");
    assert!(started.authorization_expiry.parse::<i64>().is_ok());
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), rx)
        .await
        .expect("delivered in time")
        .expect("payload");
    assert_eq!(delivered["message_type"], "access_token");
    assert_eq!(delivered["user_id"], "SIM001");
    let token = delivered["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        anon.with_token(token.into()).profile().await.expect("profile").user_id,
        "SIM001"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn funds_v2_v3_and_the_maintenance_window() {
    let (sim, client) = start(SimConfig::default()).await;
    let v2 = client.funds_v2(None).await.expect("funds v2");
    let eq = v2.equity.expect("equity");
    assert_eq!(eq.available_margin, Decimal::from(1_000_000), "{eq:?}");
    let v3 = client.funds_v3().await.expect("funds v3");
    assert_eq!(v3.available_to_trade.total, Decimal::from(1_000_000));
    assert_eq!(
        v3.available_to_trade.cash_available_to_trade.cash.opening_balance,
        Decimal::from(1_000_000)
    );
    // 10:00 IST + 16 h = 02:00 IST: the funds service is down (423) while the token still lives.
    sim_post(&sim, "/sim/clock", serde_json::json!({"advance_secs": 16 * 3600})).await;
    let e = client.funds_v3().await.expect_err("maintenance");
    assert_eq!(e.status(), Some(423));
    client.profile().await.expect("profile still works at 02:00");
    sim.shutdown().await;
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let (sim, client) = start(SimConfig::default()).await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    assert!(!format!("{client:?}").contains(&token));
    let bad = client.with_token("not-a-real-token-value".into());
    let e = bad.profile().await.expect_err("bad token");
    assert!(!format!("{e} {e:?}").contains("not-a-real-token-value"));
    sim.shutdown().await;
}
