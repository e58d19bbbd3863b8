use serde_json::json;

use crate::{assert_refused, post, sim};

#[tokio::test]
async fn the_clock_refuses_moves_out_of_range_and_stays_where_it_was() {
    let sim = sim().await;
    let before = post(&sim, "/sim/clock", json!({}).to_string()).await;
    assert_eq!(before.status, 200, "{}", before.body);
    for body in [
        json!({"advance_secs": i64::MAX}),
        json!({"advance_secs": i64::MIN}),
        json!({"advance_secs": 400_i64 * 365 * 86_400}),
        json!({"set": "9999-12-31T23:59:59Z"}),
        json!({"set": "1900-01-01T00:00:00Z"}),
    ] {
        let a = post(&sim, "/sim/clock", body.to_string()).await;
        assert_refused(&a, 400, "clock");
    }
    let after = post(&sim, "/sim/clock", json!({"advance_secs": 60}).to_string()).await;
    assert_eq!(after.status, 200, "the simulator still answers: {}", after.body);
    let year = |a: &crate::Answer| a.body["data"]["now"].as_str().unwrap_or_default()[..4].to_owned();
    assert_eq!(year(&after), year(&before), "the refused moves changed nothing");
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_are_checked_with_the_same_rules_as_the_config_and_flags() {
    let sim = sim().await;
    for (body, needle) in [
        (json!({"error_rate": 1.5}), "error_rate"),
        (json!({"timeout_rate": -0.1}), "timeout_rate"),
        (json!({"lost_response_rate": 2}), "lost_response_rate"),
        (json!({"latency_ms": 86_400_000_u64}), "latency_ms"),
        (json!({"timeout_hang_ms": u64::MAX}), "timeout_hang_ms"),
        (json!({"no_such_fault": 1}), "no_such_fault"),
    ] {
        assert_refused(&post(&sim, "/sim/faults", body.to_string()).await, 400, needle);
    }
    let ok = post(
        &sim,
        "/sim/faults",
        json!({"error_rate": 0.25, "latency_ms": 5}).to_string(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["data"]["error_rate"], 0.25);
    // The same rules refuse a config file.
    let e = upstox_sim::SimConfig::from_toml("[faults]\nerror_rate = 3.0\n").expect_err("config");
    assert!(e.to_string().contains("error_rate"), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_feed_refuses_only_with_http_error_statuses() {
    let sim = sim().await;
    for bad in [999, 200, 101, 0] {
        assert_refused(
            &post(&sim, "/sim/feed", json!({"refuse": bad}).to_string()).await,
            400,
            "400 to 599",
        );
    }
    let ok = post(&sim, "/sim/feed", json!({"refuse": 403}).to_string()).await;
    assert_eq!((ok.status, ok.body["data"]["refuse"].as_u64()), (200, Some(403)));
    let ok = post(&sim, "/sim/feed", json!({"refuse": null}).to_string()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_the_upstox_envelope() {
    let sim = sim().await;
    let huge = format!("{{\"quantity\": 1, \"pad\": \"{}\"}}", "x".repeat(3 << 20));
    let a = post(&sim, "/v3/order/place", huge.clone()).await;
    assert!(a.status == 413 || a.status == 401, "{}", a.status);
    let a = post(&sim, "/sim/faults", huge).await;
    assert_refused(&a, 413, "too large");
    let a = post(&sim, "/sim/faults", "{not json").await;
    assert!(a.status >= 400 && a.status < 500, "{}", a.status);
    assert!(a.content_type.starts_with("application/json"), "{}", a.content_type);
    sim.shutdown().await;
}
