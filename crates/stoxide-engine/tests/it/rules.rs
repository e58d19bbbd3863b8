//! The exchange's rules as Upstox enforces them surface as clear reasons, and the day's loss
//! limit holds across a restart.

use std::time::Duration;

use rust_decimal::Decimal;
use stoxide_engine::intent::IntentState;
use stoxide_engine::signal::Action;
use stoxide_engine::subscription::Inputs;
use upstox_sim::SimConfig;

use crate::{actor, config, engine, engine_with, inputs, key, signal, world};

async fn one_signal_reason(config_sim: SimConfig) -> (IntentState, String) {
    let w = world(1, config_sim, true).await;
    let e = engine(&w, config()).await;
    e.submit(signal("r-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    e.wait_settled("momo", "r-1", Duration::from_secs(30))
        .await
        .expect("settled");
    let i = w.desk.intents(Some(("momo", "r-1")), None, 10).await.expect("intents");
    e.shutdown().await;
    w.sim.shutdown().await;
    (i[0].state, i[0].reason.clone().unwrap_or_default())
}

#[tokio::test]
async fn a_wrong_algo_name_and_a_wrong_static_ip_are_refused_with_upstox_codes() {
    let (state, reason) = one_signal_reason(SimConfig {
        algo_names: Some(vec!["SOMEONE-ELSE".into()]),
        ..SimConfig::default()
    })
    .await;
    assert_eq!(state, IntentState::Rejected);
    assert!(
        reason.contains("UDAPI1156") && reason.contains("STOXIDE-MOMO"),
        "{reason}"
    );

    let mut config = SimConfig::default();
    for app in &mut config.apps {
        app.static_ips = Some(vec!["127.0.0.2".parse().expect("ip")]);
    }
    let (state, reason) = one_signal_reason(config).await;
    assert_eq!(state, IntentState::Rejected);
    assert!(reason.contains("UDAPI1154") && reason.contains("127.0.0.1"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_loss_breach_allows_only_exits_and_survives_a_restart() {
    let w = world(1, SimConfig::default(), false).await;
    let sub = format!("momo:{}", w.users[0]);
    let tight = Inputs {
        daily_max_loss: Decimal::from(50),
        ..inputs(1)
    };
    w.desk.change_inputs(&sub, tight, &actor()).await.expect("inputs");
    w.desk.activate(&sub, &actor()).await.expect("activate");
    let prices = stoxide_engine::broker::paper::Prices::default();
    prices.update(&key(), 2500.0, None, None);
    let e = engine_with(&w, config(), prices.clone()).await;
    e.submit(signal("d-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    e.wait_settled("momo", "d-1", Duration::from_secs(30))
        .await
        .expect("settled");
    let bought = w.desk.intents(Some(("momo", "d-1")), None, 1).await.expect("intents");
    assert_eq!(bought[0].state, IntentState::Filled, "{bought:?}");
    // The price falls far below the fill: the day's loss passes the ₹50 limit.
    let fill = bought[0].average_price.expect("fill price");
    let fallen: f64 = (fill - Decimal::from(500)).try_into().expect("f64");
    prices.update(&key(), fallen, None, None);
    let r = e
        .submit(signal("d-2", Action::Target { lots: 2 }), "test")
        .await
        .expect("submit");
    assert_eq!(r.intents[0].state, IntentState::Refused);
    // Found at the fill's mark-to-market or at this signal, it says why.
    let why = r.intents[0].reason.clone().unwrap_or_default();
    assert!(why.contains("reducing") || why.contains("day's loss"), "{why}");
    e.shutdown().await;

    // A new engine on the same store: more is still refused, an exit still goes.
    let e = engine_with(&w, config(), prices).await;
    let r = e
        .submit(signal("d-3", Action::Target { lots: 2 }), "test")
        .await
        .expect("submit");
    assert_eq!(r.intents[0].state, IntentState::Refused);
    let why = r.intents[0].reason.clone().unwrap_or_default();
    assert!(why.contains("reducing") || why.contains("day's loss"), "{why}");
    let r = e.submit(signal("d-4", Action::Exit), "test").await.expect("submit");
    assert_eq!(r.intents[0].state, IntentState::Pending, "{r:?}");
    e.wait_settled("momo", "d-4", Duration::from_secs(30))
        .await
        .expect("settled");
    let exited = w.desk.intents(Some(("momo", "d-4")), None, 1).await.expect("intents");
    assert_eq!(exited[0].state, IntentState::Filled, "{exited:?}");
    let states = w.desk.states().await.expect("states");
    assert!(
        states
            .iter()
            .any(|s| s.target == sub && s.state == stoxide_engine::risk::TradingState::Reducing),
        "{states:?}"
    );
    e.shutdown().await;
    w.sim.shutdown().await;
}
