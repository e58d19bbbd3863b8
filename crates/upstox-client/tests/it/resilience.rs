use std::time::Duration;

use upstox_client::orders::PlaceOrderRequest;
use upstox_client::{ClientConfig, Error, Hosts, RateLimiter, RetryPolicy, UpstoxClient};
use upstox_sim::SimConfig;
use upstox_types::{Product, RateLimits, TransactionType, WindowLimit};

use crate::{sim_post, start};

fn tight_limits() -> RateLimits {
    let w = |max, secs| WindowLimit {
        max,
        window: Duration::from_secs(secs),
    };
    RateLimits {
        order: vec![w(2, 1)],
        multi_order: vec![w(1, 1)],
        standard: vec![w(5, 1), w(100, 60)],
    }
}

fn client(sim: &upstox_sim::Simulator, limits: Option<RateLimits>, retries: usize) -> UpstoxClient {
    let mut config = ClientConfig::new(Hosts::single(&sim.base_url()));
    config.limiter = limits.map(RateLimiter::new);
    config.retry = RetryPolicy {
        max_retries: retries,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
    };
    config.timeout = Duration::from_millis(1500);
    UpstoxClient::new(config)
        .expect("client")
        .for_user("SIM001", sim.token_of("SIM001").expect("token").into())
}

#[tokio::test]
async fn the_server_answers_429_udapi10005_past_the_window() {
    let config = SimConfig {
        rate_limits: tight_limits(),
        ..SimConfig::default()
    };
    let (sim, _) = start(config).await;
    let naive = client(&sim, None, 0);
    let mut limited = None;
    for _ in 0..8 {
        if let Err(e) = naive.profile().await {
            limited = Some(e);
            break;
        }
    }
    let e = limited.expect("a naive loop hits the limit");
    assert_eq!(e.status(), Some(429));
    assert!(e.is_rate_limited() && e.has_code("UDAPI10005"), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_client_limiter_keeps_a_loop_under_the_limit() {
    let config = SimConfig {
        rate_limits: tight_limits(),
        ..SimConfig::default()
    };
    let (sim, _) = start(config).await;
    let polite = client(&sim, Some(tight_limits()), 0);
    for i in 0..12 {
        polite
            .profile()
            .await
            .unwrap_or_else(|e| panic!("call {i} refused: {e}"));
    }
    assert!(
        polite.rate_limit_wait() > Duration::ZERO,
        "the limiter made the loop wait"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn idempotent_calls_are_retried_through_transient_errors() {
    let (sim, _) = start(SimConfig::default()).await;
    let c = client(&sim, None, 6);
    sim_post(&sim, "/sim/faults", serde_json::json!({"error_rate": 1.0})).await;
    let base = sim.base_url();
    let heal = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        reqwest::Client::new()
            .post(format!("{base}/sim/faults"))
            .json(&serde_json::json!({"error_rate": 0.0}))
            .send()
            .await
            .expect("heal");
    });
    let p = c.profile().await.expect("retried until the server recovered");
    assert_eq!(p.user_id, "SIM001");
    heal.await.expect("heal task");
    // Without retries the same fault is reported with Upstox's 500 code.
    sim_post(&sim, "/sim/faults", serde_json::json!({"error_rate": 1.0})).await;
    let e = client(&sim, None, 0).profile().await.expect_err("no retries");
    assert_eq!(e.status(), Some(500));
    assert!(e.has_code("UDAPI100500"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_place_answer_is_reconciled_not_resent() {
    let (sim, _) = start(SimConfig::default()).await;
    let c = client(&sim, None, 3);
    sim_post(&sim, "/sim/faults", serde_json::json!({"lost_response_rate": 1.0})).await;
    let placed = c
        .place_order_v3(&PlaceOrderRequest::market(
            "NSE_EQ|INE002A01018",
            TransactionType::Buy,
            3,
            Product::Intraday,
        ))
        .await;
    sim_post(&sim, "/sim/faults", serde_json::json!({"lost_response_rate": 0.0})).await;
    let placed = placed.expect("found in the order book");
    assert!(placed.reconciled);
    let book = c.order_book().await.expect("book");
    let tagged: Vec<_> = book
        .iter()
        .filter(|o| o.tag.as_deref() == Some(placed.tag.as_str()))
        .collect();
    assert_eq!(tagged.len(), 1, "exactly one order went through");
    assert_eq!(placed.order_ids, vec![tagged[0].order_id.clone()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn without_a_readable_order_book_nothing_is_resent() {
    let (sim, _) = start(SimConfig::default()).await;
    let c = client(&sim, None, 1);
    sim_post(&sim, "/sim/faults", serde_json::json!({"error_rate": 1.0})).await;
    let result = c
        .place_order_v3(&PlaceOrderRequest::market(
            "NSE_EQ|INE002A01018",
            TransactionType::Buy,
            3,
            Product::Intraday,
        ))
        .await;
    sim_post(&sim, "/sim/faults", serde_json::json!({"error_rate": 0.0})).await;
    match result {
        Err(Error::OrderOutcomeUnknown { attempts, last, .. }) => {
            assert_eq!(attempts, 1, "not re-sent while the book cannot be read");
            assert!(last.contains("order book unavailable"), "{last}");
        }
        other => panic!("expected OrderOutcomeUnknown, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn an_order_that_never_arrived_is_resent_once_then_reported_unknown() {
    let (sim, _) = start(SimConfig::default()).await;
    let c = client(&sim, None, 3);
    sim_post(&sim, "/sim/faults", serde_json::json!({"write_error_rate": 1.0})).await;
    let result = c
        .place_order_v3(&PlaceOrderRequest::market(
            "NSE_EQ|INE002A01018",
            TransactionType::Buy,
            3,
            Product::Intraday,
        ))
        .await;
    sim_post(&sim, "/sim/faults", serde_json::json!({"write_error_rate": 0.0})).await;
    match result {
        Err(Error::OrderOutcomeUnknown { attempts, tag, .. }) => {
            assert_eq!(attempts, 2);
            let book = c.order_book().await.expect("book");
            assert!(
                book.iter().all(|o| o.tag.as_deref() != Some(tag.as_str())),
                "nothing was placed"
            );
        }
        other => panic!("expected OrderOutcomeUnknown, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_hanging_server_is_a_timeout_error() {
    let (sim, _) = start(SimConfig::default()).await;
    let c = client(&sim, None, 0);
    sim_post(
        &sim,
        "/sim/faults",
        serde_json::json!({"timeout_rate": 1.0, "timeout_hang_ms": 5000}),
    )
    .await;
    let e = c.profile().await.expect_err("hang");
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.is_retryable());
    sim_post(&sim, "/sim/faults", serde_json::json!({"timeout_rate": 0.0})).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_that_names_the_fix() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let c = UpstoxClient::new(ClientConfig {
        retry: RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        },
        ..ClientConfig::new(Hosts::single(&format!("http://{addr}")))
    })
    .expect("client")
    .with_token("t".into());
    let e = c.profile().await.expect_err("nothing listens");
    assert!(matches!(e, Error::Transport { connect: true, .. }), "{e:?}");
    assert!(e.to_string().contains("is the server running"), "{e}");
    assert!(
        !e.outcome_unknown(),
        "a request that never connected did not place anything"
    );
}

#[tokio::test]
async fn a_tag_already_in_the_book_is_refused_before_anything_is_sent() {
    let (sim, _) = start(SimConfig::default()).await;
    let c = client(&sim, None, 3);
    let mut buy = PlaceOrderRequest::market("NSE_EQ|INE002A01018", TransactionType::Buy, 1, Product::Intraday);
    buy.tag = Some("R".into());
    let first = c.place_order_v3(&buy).await.expect("first");
    let mut sell = PlaceOrderRequest::market("NSE_EQ|INE002A01018", TransactionType::Sell, 5, Product::Intraday);
    sell.tag = Some("R".into());
    sim_post(&sim, "/sim/faults", serde_json::json!({"lost_response_rate": 1.0})).await;
    let second = c.place_order_v3(&sell).await;
    sim_post(&sim, "/sim/faults", serde_json::json!({"lost_response_rate": 0.0})).await;
    match second {
        Err(Error::TagInUse { tag, order_id }) => {
            assert_eq!((tag.as_str(), order_id.as_str()), ("R", first.order_ids[0].as_str()));
        }
        other => panic!("expected TagInUse, got {other:?}"),
    }
    let book = c.order_book().await.expect("book");
    assert_eq!(book.len(), 1, "nothing was sent: {book:?}");
    sim.shutdown().await;
}

/// Five calls of the profile endpoint, all at once.
async fn burst(c: &UpstoxClient) -> Vec<Result<String, Error>> {
    let calls = (0..5).map(|_| async { c.profile().await.map(|p| p.user_id) });
    futures::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_gets_a_full_budget_and_one_user_through_two_clients_shares_one() {
    let config = SimConfig {
        rate_limits: tight_limits(),
        ..SimConfig::default()
    };
    let (sim, _) = start(config).await;
    let limiter = RateLimiter::new(tight_limits());
    let shared = || {
        let mut c = ClientConfig::new(Hosts::single(&sim.base_url())).with_limiter(limiter.clone());
        c.retry.max_retries = 0;
        UpstoxClient::new(c).expect("client")
    };
    let (one, two) = (shared(), shared());
    let token = |user: &str| secrecy::SecretString::from(sim.token_of(user).expect("seeded"));

    // Two users on one host, at once: each spends a budget of its own, in full (five a second).
    let (a, b) = (
        one.for_user("SIM001", token("SIM001")),
        two.for_user("SIM002", token("SIM002")),
    );
    let (ra, rb) = tokio::join!(burst(&a), burst(&b));
    for r in ra.iter().chain(&rb) {
        assert!(r.is_ok(), "refused: {r:?}");
    }
    for user in ["SIM001", "SIM002"] {
        assert_eq!(
            limiter.waited(&upstox_client::LimitKey::User(user.into())),
            Duration::ZERO,
            "{user} had its whole budget"
        );
    }

    // One user through two clients, at once: one budget; the limiter holds the second five back
    // and Upstox refuses none.
    let (c1, c2) = (
        one.for_user("SIM003", token("SIM003")),
        two.for_user("SIM003", token("SIM003")),
    );
    let (r1, r2) = tokio::join!(burst(&c1), burst(&c2));
    for r in r1.iter().chain(&r2) {
        assert!(r.is_ok(), "refused: {r:?}");
    }
    assert!(limiter.waited(&upstox_client::LimitKey::User("SIM003".into())) > Duration::ZERO);

    // The same with a limiter per client: together they go over the user's limit.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let own = || {
        let mut c = ClientConfig::new(Hosts::single(&sim.base_url()));
        c.limiter = Some(RateLimiter::new(tight_limits()));
        c.retry.max_retries = 0;
        UpstoxClient::new(c)
            .expect("client")
            .for_user("SIM003", token("SIM003"))
    };
    let (d1, d2) = (own(), own());
    let (r1, r2) = tokio::join!(burst(&d1), burst(&d2));
    assert!(
        r1.iter().chain(&r2).any(|r| matches!(r, Err(e) if e.is_rate_limited())),
        "two limiters for one user let it exceed the limit"
    );
    sim.shutdown().await;
}
