//! `stoxide demo` is the whole product on the simulator: the printed operator and client sign in
//! to the portal, the client sees only their own account and the orders the engine places for
//! their active subscription; the operator sees every client's.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::stoxide;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut r = http.request(method, format!("{url}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("send");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("json")
}

async fn sign_in(http: &reqwest::Client, url: &str, who: &Value) -> String {
    let body = json!({"email": who["email"], "password": who["password"]});
    let s = call(http, url, reqwest::Method::POST, "/api/v1/sessions", None, Some(body)).await;
    s["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn the_demo_operator_and_client_sign_in_and_see_orders_flow() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().expect("tempdir");
    let (demo, info) = super::spawn_with_banner(
        stoxide()
            .args(["demo", "--addr", "127.0.0.1:0", "--vault-dir"])
            .arg(data.path())
            .stderr(Stdio::null()),
    );
    let _demo = Killed(demo);
    let url = info["url"].as_str().expect("url").to_owned();
    assert_eq!(info["portal"], format!("{url}/portal"));
    let http = reqwest::Client::new();
    let client = sign_in(&http, &url, &info["client"]).await;
    let operator = sign_in(&http, &url, &info["operator"]).await;

    let accounts = call(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/v1/accounts",
        Some(&client),
        None,
    )
    .await;
    assert_eq!(
        accounts,
        json!([{"id": "SIM001", "user_name": accounts[0]["user_name"], "token": "valid", "token_expires_at": accounts[0]["token_expires_at"]}])
    );
    let subs = call(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/v1/subscriptions",
        Some(&client),
        None,
    )
    .await;
    assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");
    assert_eq!(
        (subs[0]["state"].as_str(), subs[0]["consented"].as_bool()),
        (Some("active"), Some(true))
    );
    let catalog = call(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/v1/strategies",
        Some(&client),
        None,
    )
    .await;
    assert_eq!(catalog.as_array().map(Vec::len), Some(3), "{catalog}");
    let people = call(
        &http,
        &url,
        reqwest::Method::GET,
        "/api/v1/people",
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(people.as_array().map(Vec::len), Some(4), "{people}");

    // The engine trades the two active subscriptions on the simulator's prices: wait for the
    // client's first filled order, and for orders in both subscribed accounts (the bound is only
    // there so a broken demo fails instead of hanging: an EMA crossover on the simulated prices
    // can take minutes on a loaded machine).
    let mut seen = (Value::Null, Value::Null);
    for _ in 0..720 {
        let mine = call(&http, &url, reqwest::Method::GET, "/api/v1/orders", Some(&client), None).await;
        let all = call(
            &http,
            &url,
            reqwest::Method::GET,
            "/api/v1/orders",
            Some(&operator),
            None,
        )
        .await;
        let accounts_with_orders = |v: &Value| {
            let mut a: Vec<String> = v
                .as_array()
                .map(|o| {
                    o.iter()
                        .filter_map(|x| x["account"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            a.sort();
            a.dedup();
            a
        };
        let filled = mine.as_array().is_some_and(|o| {
            o.iter()
                .any(|x| x["state"] == "filled" && x["filled"].as_i64() > Some(0))
        });
        if filled && accounts_with_orders(&all) == ["SIM001", "SIM002"] {
            assert_eq!(
                accounts_with_orders(&mine),
                ["SIM001"],
                "the client sees another's orders: {mine}"
            );
            return;
        }
        seen = (mine, all);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no orders flowed in the demo: client {}, operator {}", seen.0, seen.1);
}
