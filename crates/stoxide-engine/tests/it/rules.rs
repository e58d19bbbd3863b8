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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_entry_while_the_first_order_works_is_not_a_second_order() {
    // Every call to the simulator takes 300 ms: the first entry's orders are still on their way
    // when the second signal is decided.
    let w = world(
        3,
        SimConfig {
            faults: upstox_sim::config::FaultConfig {
                latency_ms: 300,
                ..upstox_sim::config::FaultConfig::default()
            },
            ..SimConfig::default()
        },
        true,
    )
    .await;
    let e = engine(&w, config()).await;
    let first = e
        .submit(signal("w-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    assert!(
        first.intents.iter().all(|i| i.state == IntentState::Pending),
        "{first:?}"
    );
    let second = e
        .submit(signal("w-2", Action::EnterLong), "test")
        .await
        .expect("submit");
    for i in &second.intents {
        assert_eq!(i.state, IntentState::Skipped, "{i:?}");
        assert_eq!(
            i.reason.as_deref(),
            Some("the position is already at the target"),
            "{i:?}"
        );
    }
    e.wait_settled("momo", "w-1", Duration::from_secs(30))
        .await
        .expect("settled");
    for i in &first.intents {
        assert_eq!(crate::orders_tagged(&w.sim, &i.account, &i.tag).await.len(), 1, "{i:?}");
    }
    // Once filled, an exit sells what was bought, once.
    let exit = e.submit(signal("w-3", Action::Exit), "test").await.expect("submit");
    e.wait_settled("momo", "w-3", Duration::from_secs(30))
        .await
        .expect("settled");
    for i in &exit.intents {
        assert_eq!(i.state, IntentState::Pending, "{i:?}");
        assert_eq!(i.quantity, Some(1), "{i:?}");
    }
    let ended = w.desk.intents(Some(("momo", "w-3")), None, 10).await.expect("intents");
    assert!(ended.iter().all(|i| i.state == IntentState::Filled), "{ended:?}");
    e.shutdown().await;
    w.finish().await;
}

#[tokio::test]
async fn a_preview_decides_like_a_signal_and_records_or_sends_nothing() {
    let w = world(2, SimConfig::default(), true).await;
    let e = engine(&w, config()).await;
    let preview = e.preview(&signal("v-1", Action::EnterLong)).await.expect("preview");
    assert_eq!(preview.intents.len(), 2);
    assert!(
        preview
            .intents
            .iter()
            .all(|i| i.state == IntentState::Pending && i.quantity == Some(1))
    );
    assert!(
        w.desk
            .intents(Some(("momo", "v-1")), None, 10)
            .await
            .expect("intents")
            .is_empty()
    );
    for i in &preview.intents {
        assert!(
            crate::orders_tagged(&w.sim, &i.account, &i.tag).await.is_empty(),
            "{i:?}"
        );
    }
    // The same id is still free, and the real signal decides the same.
    let real = e
        .submit(signal("v-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    assert_eq!(real.outcome, stoxide_engine::SignalOutcome::Accepted);
    assert_eq!(
        real.intents
            .iter()
            .map(|i| (&i.tag, i.state, i.quantity))
            .collect::<Vec<_>>(),
        preview
            .intents
            .iter()
            .map(|i| (&i.tag, i.state, i.quantity))
            .collect::<Vec<_>>()
    );
    e.shutdown().await;
    w.finish().await;
}

#[tokio::test]
async fn an_engine_without_its_instruments_says_so_instead_of_not_traded() {
    let w = world(1, SimConfig::default(), true).await;
    let e = crate::engine_of(&w, config(), stoxide_engine::broker::paper::Prices::default(), false).await;
    let report = e
        .submit(signal("n-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    let stoxide_engine::SignalOutcome::Refused { reason } = report.outcome else {
        panic!("accepted without instruments: {report:?}");
    };
    let text = reason.to_string();
    assert!(
        text.contains("not loaded in this engine") && text.contains("stoxide login"),
        "{text}"
    );
    e.shutdown().await;
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_signal_sent_many_times_at_once_trades_once_and_leaves_nothing_behind() {
    let w = world(2, SimConfig::default(), true).await;
    let e = engine(&w, config()).await;
    // Eight submissions of one signal at once (a vendor's retries): those that pass the
    // duplicate check before the first commits lose at the commit.
    let reports = futures::future::join_all((0..8).map(|_| e.submit(signal("d-1", Action::EnterLong), "retry"))).await;
    let accepted = reports
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_ok_and(|r| r.outcome == stoxide_engine::SignalOutcome::Accepted)
        })
        .count();
    assert_eq!(accepted, 1, "{reports:?}");
    e.wait_settled("momo", "d-1", Duration::from_secs(30))
        .await
        .expect("settled");
    e.submit(signal("d-2", Action::Exit), "test").await.expect("exit");
    e.wait_settled("momo", "d-2", Duration::from_secs(30))
        .await
        .expect("settled");
    // Flat again: a new entry is an order, not "already at the target" because of the losers.
    let again = e.submit(signal("d-3", Action::EnterLong), "test").await.expect("again");
    for i in &again.intents {
        assert_eq!(
            (i.state, i.side, i.quantity),
            (IntentState::Pending, Some(upstox_types::TransactionType::Buy), Some(1)),
            "{i:?}"
        );
    }
    e.wait_settled("momo", "d-3", Duration::from_secs(30))
        .await
        .expect("settled");
    for i in &again.intents {
        assert_eq!(crate::orders_tagged(&w.sim, &i.account, &i.tag).await.len(), 1, "{i:?}");
    }
    e.shutdown().await;
    w.finish().await;
}
