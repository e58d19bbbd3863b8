//! The shared budgets against the machine's Redis (127.0.0.1:6379, or
//! `STOXIDE_TEST_REDIS_URL`): two "nodes" spend one user's budget together, every window counts,
//! a refused request counts nowhere, and an unreachable Redis leaves each node its own share.

use std::sync::Arc;
use std::time::Duration;

use stoxide_redis::RedisBudgets;
use upstox_client::{LimitKey, RateLimiter, SharedBudgets};
use upstox_types::{ApiCategory, RateLimits, WindowLimit};

fn url() -> String {
    std::env::var("STOXIDE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A prefix of this test's own, so runs and tests never share keys.
fn prefix() -> String {
    format!("stoxide-test:{:016x}", rand::random::<u64>())
}

fn per_minute(max: u32) -> Vec<WindowLimit> {
    vec![WindowLimit {
        max,
        window: Duration::from_secs(60),
    }]
}

#[tokio::test]
async fn two_nodes_spend_one_budget_per_user_and_category() {
    let prefix = prefix();
    let node_a = RedisBudgets::new(&url(), &prefix).expect("url");
    let node_b = RedisBudgets::new(&url(), &prefix).expect("url");
    let user = LimitKey::User("SIM001".into());
    let w = per_minute(3);
    assert_eq!(node_a.try_admit(&user, ApiCategory::Order, &w).await, Ok(None));
    assert_eq!(node_a.try_admit(&user, ApiCategory::Order, &w).await, Ok(None));
    assert_eq!(node_b.try_admit(&user, ApiCategory::Order, &w).await, Ok(None));
    for node in [&node_a, &node_b] {
        let wait = node
            .try_admit(&user, ApiCategory::Order, &w)
            .await
            .expect("asked")
            .expect("a fourth order in the minute is refused");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60), "{wait:?}");
    }
    // Another user, and another category of the same user, have budgets of their own.
    let other = LimitKey::User("SIM002".into());
    assert_eq!(node_b.try_admit(&other, ApiCategory::Order, &w).await, Ok(None));
    assert_eq!(node_b.try_admit(&user, ApiCategory::Standard, &w).await, Ok(None));
}

#[tokio::test]
async fn every_window_counts_and_a_refused_request_counts_nowhere() {
    let prefix = prefix();
    let node = RedisBudgets::new(&url(), &prefix).expect("url");
    let user = LimitKey::User("SIM003".into());
    let windows = vec![
        WindowLimit {
            max: 2,
            window: Duration::from_secs(60),
        },
        WindowLimit {
            max: 100,
            window: Duration::from_secs(1800),
        },
    ];
    for _ in 0..2 {
        assert_eq!(node.try_admit(&user, ApiCategory::Order, &windows).await, Ok(None));
    }
    for _ in 0..5 {
        let wait = node
            .try_admit(&user, ApiCategory::Order, &windows)
            .await
            .expect("asked")
            .expect("refused");
        assert!(
            wait <= Duration::from_secs(60),
            "the minute decides, not the half hour: {wait:?}"
        );
    }
    let client = redis::Client::open(url()).expect("url");
    let mut con = client.get_multiplexed_async_connection().await.expect("redis");
    for i in 0..2 {
        let n: u64 = redis::cmd("ZCARD")
            .arg(format!("{prefix}:u:SIM003:order:{i}"))
            .query_async(&mut con)
            .await
            .expect("zcard");
        assert_eq!(n, 2, "window {i} counts only the admitted requests");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("{prefix}:u:SIM003:order:{i}"))
            .query_async(&mut con)
            .await
            .expect("pttl");
        assert!(ttl > 0, "window {i} expires by itself");
    }
}

fn tight() -> RateLimits {
    RateLimits {
        order: per_minute(3),
        multi_order: per_minute(1),
        standard: per_minute(3),
    }
}

#[tokio::test]
async fn a_user_at_their_limit_on_one_node_waits_on_the_other() {
    let prefix = prefix();
    let store = |p: &str| -> Arc<dyn SharedBudgets> { Arc::new(RedisBudgets::new(&url(), p).expect("url")) };
    let node_a = RateLimiter::shared(tight(), store(&prefix), 2);
    let node_b = RateLimiter::shared(tight(), store(&prefix), 2);
    let user = LimitKey::User("SIM004".into());
    for _ in 0..3 {
        node_a.acquire(&user, ApiCategory::Standard).await;
    }
    let key = user.clone();
    let waiting = tokio::spawn(async move { node_b.acquire(&key, ApiCategory::Standard).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "node B sent past the user's limit");
    waiting.abort();
}

#[tokio::test]
async fn an_unreachable_redis_is_said_and_each_node_keeps_to_its_share() {
    let down = RedisBudgets::new("redis://127.0.0.1:1/0", &prefix()).expect("url");
    let user = LimitKey::User("SIM005".into());
    let e = down
        .try_admit(&user, ApiCategory::Order, &per_minute(3))
        .await
        .expect_err("nothing listens there");
    assert!(e.to_string().contains("Redis"), "{e}");
    assert!(
        !format!("{down:?}").contains("127.0.0.1:1"),
        "the URL (and any password) stays out of Debug"
    );
    // Three nodes on a limit of 3: one request each while Redis is away.
    let node = RateLimiter::shared(tight(), Arc::new(down), 3);
    node.acquire(&user, ApiCategory::Order).await;
    let key = user.clone();
    let waiting = tokio::spawn(async move { node.acquire(&key, ApiCategory::Order).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a node without Redis sent more than its share");
    waiting.abort();
    assert!(RedisBudgets::new("not a url", "p").is_err());
}
