//! A restart in the middle of a fan-out: orders Upstox took but whose answers were lost are
//! found by their tags, and nothing is sent twice.

use std::time::Duration;

use stoxide_engine::intent::IntentState;
use stoxide_engine::signal::Action;
use upstox_sim::SimConfig;

use crate::{Backend, config, engine, faults, orders_tagged, signal, world_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finds_lost_answers_by_tag_and_sends_nothing_twice() {
    restart_after_lost_answers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finds_lost_answers_by_tag_and_sends_nothing_twice_on_postgres() {
    restart_after_lost_answers(Backend::Postgres).await;
}

async fn restart_after_lost_answers(backend: Backend) {
    let w = world_on(backend, 20, SimConfig::default(), true).await;
    let first = engine(&w, config()).await;
    first
        .submit(signal("r-0", Action::EnterLong), "test")
        .await
        .expect("submit");
    let p = first
        .wait_settled("momo", "r-0", Duration::from_secs(30))
        .await
        .expect("progress");
    assert_eq!(p.settled, 20);
    // Every place is carried out, but its answer never comes back.
    faults(&w.sim, serde_json::json!({"lost_response_rate": 1.0})).await;
    let r = first.submit(signal("r-1", Action::Exit), "test").await.expect("submit");
    assert_eq!(r.intents.len(), 20);
    // Wait until every place has been tried, then stop the engine before it finds out.
    let mut unknown = 0;
    for _ in 0..100 {
        first.flush().await.expect("flush");
        let stored = w.desk.intents(Some(("momo", "r-1")), None, 100).await.expect("intents");
        unknown = stored.iter().filter(|i| i.state == IntentState::Unknown).count();
        if unknown == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(unknown, 20, "every place's outcome is unknown");
    first.shutdown().await;

    // Upstox answers again; a new engine on the same store takes over.
    faults(&w.sim, serde_json::json!({"lost_response_rate": 0.0})).await;
    let second = engine(&w, config()).await;
    let mut done = Vec::new();
    for _ in 0..150 {
        second.flush().await.expect("flush");
        done = w.desk.intents(Some(("momo", "r-1")), None, 100).await.expect("intents");
        if done.iter().all(|i| i.state == IntentState::Filled) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in &done {
        assert_eq!(i.state, IntentState::Filled, "{i:?}");
        assert_eq!(
            orders_tagged(&w.sim, &i.account, &i.tag).await.len(),
            1,
            "exactly one order at Upstox for {}",
            i.tag
        );
    }
    second.shutdown().await;
    w.finish().await;
}
