//! The simulator over a real socket on 127.0.0.1: its control endpoints refuse what is out of
//! range with Upstox's error envelope, and never panic.

mod control;

use upstox_sim::{SimConfig, Simulator};

async fn sim() -> Simulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Simulator::start(SimConfig::default(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim")
}

struct Answer {
    status: u16,
    content_type: String,
    body: serde_json::Value,
}

async fn post(sim: &Simulator, path: &str, body: impl Into<reqwest::Body>) -> Answer {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Answer {
        status,
        content_type,
        body,
    }
}

/// An Upstox error envelope with this status whose message contains `needle`.
fn assert_refused(a: &Answer, status: u16, needle: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert!(
        a.content_type.starts_with("application/json"),
        "{} {}",
        a.content_type,
        a.body
    );
    assert_eq!(a.body["status"], "error", "{}", a.body);
    let message = a.body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    assert!(
        a.body["errors"][0]["errorCode"]
            .as_str()
            .is_some_and(|c| c.starts_with("UDAPI"))
    );
}
