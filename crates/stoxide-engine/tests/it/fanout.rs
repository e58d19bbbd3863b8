//! One signal to many users: every consenting user gets exactly one order in their own account,
//! through lost answers, 429 bursts, 5xx and hangs; one user's bad token stays that user's.

use std::time::Duration;

use secrecy::SecretString;
use stoxide_engine::intent::IntentState;
use stoxide_engine::signal::{Action, Refusal};
use stoxide_engine::subscription::SubState;
use stoxide_engine::{EngineConfig, SignalOutcome};
use upstox_sim::SimConfig;
use upstox_sim::config::FaultConfig;

use crate::{Backend, config, engine, link, orders_tagged, signal, world_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_consenting_user_gets_exactly_one_order_through_faults() {
    fan_out_through_faults(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_consenting_user_gets_exactly_one_order_through_faults_on_postgres() {
    fan_out_through_faults(Backend::Postgres).await;
}

async fn fan_out_through_faults(backend: Backend) {
    let sim_config = SimConfig {
        faults: FaultConfig {
            lost_response_rate: 0.2,
            write_error_rate: 0.05,
            rate_limited_rate: 0.05,
            error_rate: 0.02,
            timeout_rate: 0.01,
            timeout_hang_ms: 3_000,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    };
    let w = world_on(backend, 150, sim_config, true).await;
    // One user's token is not one Upstox accepts: that user alone is refused. It is the first
    // user, whose account the engine would read the margin of one unit with first.
    let revoked = &w.users[0];
    link(
        &w.vault,
        &w.sim,
        revoked,
        SecretString::from("sim_at_revoked_token_0000000000"),
    )
    .await;
    // A place is sent again only after the user's order book showed no order with its tag; with
    // about an 8% chance per send that nothing arrives (5xx before it arrived), ten such re-sends make "no order" for one of
    // 149 users a one-in-10^9 run, so the test can ask for exactly one order each.
    let e = engine(
        &w,
        EngineConfig {
            unknown_resends: 10,
            ..config()
        },
    )
    .await;

    submit_and_settle(&e, "s-1", 150).await;

    // Sent again, the same signal is one signal.
    let again = e
        .submit(signal("s-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    assert_eq!(
        again.outcome,
        SignalOutcome::Refused {
            reason: Refusal::Duplicate("s-1".into())
        }
    );

    faults(&w).await;
    let intents = w
        .desk
        .intents(Some(("momo", "s-1")), None, 1000)
        .await
        .expect("intents");
    assert_eq!(intents.len(), 150);
    for i in &intents {
        let at_upstox = orders_tagged(&w.sim, &i.account, &i.tag).await;
        if &i.account == revoked {
            assert!(matches!(i.state, IntentState::Refused | IntentState::Skipped), "{i:?}");
            assert!(i.reason.as_deref().is_some_and(|r| r.contains("401")), "{:?}", i.reason);
            assert!(at_upstox.is_empty());
            continue;
        }
        one_filled_order(i, &at_upstox);
    }
    let sub = w.desk.subscription(&format!("momo:{revoked}")).await.expect("sub");
    assert_eq!(
        sub.state,
        SubState::NeedsLogin,
        "the 401 put that subscription alone on hold"
    );
    let others = w.desk.subscriptions(None).await.expect("subs");
    assert_eq!(others.iter().filter(|s| s.state == SubState::Active).count(), 149);
    e.shutdown().await;
    w.finish().await;
}

/// Sends signal `id` (enter long), accepted with one intent per subscription (`subscriptions`),
/// and waits until every order has ended.
async fn submit_and_settle(e: &stoxide_engine::Engine, id: &str, subscriptions: usize) {
    let report = e.submit(signal(id, Action::EnterLong), "test").await.expect("submit");
    assert_eq!(report.outcome, SignalOutcome::Accepted);
    assert_eq!(report.intents.len(), subscriptions, "one intent per subscription");
    let progress = e
        .wait_settled("momo", id, Duration::from_secs(90))
        .await
        .expect("progress");
    assert_eq!(progress.settled, progress.orders, "every order ended: {progress:?}");
}

/// The intent is filled and its user has exactly one order with its tag.
fn one_filled_order(i: &stoxide_engine::records::Intent, at_upstox: &[upstox_client::orders::Order]) {
    assert_eq!(
        at_upstox.len(),
        1,
        "{} has {} orders for {}: {i:?}",
        i.account,
        at_upstox.len(),
        i.tag
    );
    assert_eq!(i.state, IntentState::Filled, "{i:?}");
    assert_eq!(i.filled, 1);
}

async fn faults(w: &crate::World) {
    crate::faults(
        &w.sim,
        serde_json::json!({"lost_response_rate": 0.0, "write_error_rate": 0.0, "rate_limited_rate": 0.0,
            "error_rate": 0.0, "timeout_rate": 0.0}),
    )
    .await;
}

/// A place the client gave up on (its 2 s timeout) reaches the exchange 6 s later: the engine
/// keeps looking in the order book for its quiet period instead of sending it again, so each
/// user still has exactly one order. (With no quiet period, the look-ups at 0.25, 1 and 2 s
/// find nothing and a second order goes out before the first one lands.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_place_that_reaches_the_exchange_late_is_not_sent_again() {
    let sim_config = SimConfig {
        faults: FaultConfig {
            late_write_rate: 0.5,
            late_write_ms: 6_000,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    };
    let w = world_on(Backend::Sqlite, 30, sim_config, true).await;
    let e = engine(
        &w,
        EngineConfig {
            resend_quiet: Duration::from_secs(10),
            ..config()
        },
    )
    .await;
    submit_and_settle(&e, "s-late", 30).await;
    crate::faults(&w.sim, serde_json::json!({"late_write_rate": 0.0})).await;
    let intents = w
        .desk
        .intents(Some(("momo", "s-late")), None, 1000)
        .await
        .expect("intents");
    assert_eq!(intents.len(), 30);
    for i in &intents {
        let at_upstox = orders_tagged(&w.sim, &i.account, &i.tag).await;
        one_filled_order(i, &at_upstox);
        assert_eq!(
            i.order_ids,
            vec![at_upstox[0].order_id.clone()],
            "the intent carries the user's one order"
        );
    }
    e.shutdown().await;
    w.finish().await;
}
