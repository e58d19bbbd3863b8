//! A cluster's node taking over accounts whose previous node stopped before deciding a signal:
//! a signal still inside the catch-up window is decided for them; an older one is written down
//! as not traded, with why — never left without a record, never sent late.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use stoxide_engine::EngineConfig;
use stoxide_engine::intent::IntentState;
use stoxide_engine::ownership::Ownership;
use stoxide_engine::signal::Action;
use upstox_sim::SimConfig;

use crate::{Backend, config, engine, orders_tagged, signal, world_on};

/// The accounts a test says this node holds.
#[derive(Debug, Default)]
struct Held(Mutex<HashSet<String>>);

impl Ownership for Held {
    fn holds(&self, account: &str) -> bool {
        self.0.lock().contains(account)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_too_old_to_catch_up_is_recorded_as_not_traded_for_accounts_taken_over() {
    too_old_to_catch_up(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_too_old_to_catch_up_is_recorded_as_not_traded_on_postgres() {
    too_old_to_catch_up(Backend::Postgres).await;
}

async fn too_old_to_catch_up(backend: Backend) {
    let w = world_on(backend, 3, SimConfig::default(), true).await;
    let held = Arc::new(Held::default());
    held.0.lock().insert(w.users[0].clone());
    let e = engine(
        &w,
        EngineConfig {
            cluster: Some(held.clone()),
            // Every signal already taken is past the window.
            catch_up: Duration::ZERO,
            ..config()
        },
    )
    .await;

    let report = e
        .submit(signal("s-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    assert_eq!(report.intents.len(), 1, "decided only for the account held: {report:?}");
    e.wait_settled("momo", "s-1", Duration::from_secs(60)).await;
    // The second user's node "died" before deciding s-1; this node takes the user over later.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let taken = vec![w.users[1].clone()];
    held.0.lock().insert(w.users[1].clone());

    assert_eq!(e.record_late(&taken).await.expect("record"), 1);
    // Recorded once: a second takeover finds the record.
    assert_eq!(e.record_late(&taken).await.expect("record again"), 0);

    let intents = w.desk.intents(Some(("momo", "s-1")), None, 100).await.expect("intents");
    let of = |u: &str| intents.iter().find(|i| i.account == u);
    let late = of(&w.users[1]).expect("the taken-over user has a record of s-1");
    assert_eq!(late.state, IntentState::Skipped);
    let reason = late.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("past the 0 s catch-up window"), "{reason}");
    assert!(late.plan.order.is_none());
    assert!(
        orders_tagged(&w.sim, &w.users[1], &late.tag).await.is_empty(),
        "nothing sent late"
    );
    // The user held from the start traded; the one nobody took over has no record.
    assert_eq!(of(&w.users[0]).map(|i| i.state), Some(IntentState::Filled));
    assert!(of(&w.users[2]).is_none());
    w.finish().await;
}
