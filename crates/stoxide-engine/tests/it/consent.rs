//! Nothing trades without the user's recorded consent to exactly these inputs; a pause or a
//! change of inputs takes effect before the next signal; a kill switch halts, cancels and exits.

use std::time::Duration;

use stoxide_engine::Kill;
use stoxide_engine::intent::IntentState;
use stoxide_engine::risk::{Level, TradingState};
use stoxide_engine::signal::Action;
use upstox_sim::SimConfig;

use crate::{actor, config, engine, inputs, orders_tagged, signal, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_active_consented_subscriptions_trade_and_a_kill_switch_halts_and_exits() {
    let w = world(4, SimConfig::default(), false).await;
    let e = engine(&w, config()).await;
    let sub = |i: usize| format!("momo:{}", w.users[i]);

    // Subscribed, never activated: nothing is sent for anyone.
    let r = e
        .submit(signal("c-1", Action::EnterLong), "test")
        .await
        .expect("submit");
    assert_eq!(r.intents.len(), 4);
    for i in &r.intents {
        assert_eq!(i.state, IntentState::Skipped, "{i:?}");
        assert!(i.reason.as_deref().is_some_and(|r| r.contains("not active")), "{i:?}");
        assert!(orders_tagged(&w.sim, &i.account, &i.tag).await.is_empty());
    }

    // 0 and 1 consent; 1 then pauses; 2 consents and then changes its inputs; 3 never consents.
    for i in 0..3 {
        w.desk.activate(&sub(i), &actor()).await.expect("activate");
    }
    w.desk.pause(&sub(1), &actor()).await.expect("pause");
    let changed = w
        .desk
        .change_inputs(&sub(2), inputs(2), &actor())
        .await
        .expect("change");
    assert_eq!(changed.state, stoxide_engine::subscription::SubState::AwaitingConsent);
    // Inputs outside the strategy's bounds are refused with the field named.
    let err = w
        .desk
        .change_inputs(&sub(2), inputs(99), &actor())
        .await
        .expect_err("bounds");
    assert!(err.to_string().contains("lots: must be 1 to 10"), "{err}");

    let r = e
        .submit(signal("c-2", Action::EnterLong), "test")
        .await
        .expect("submit");
    e.wait_settled("momo", "c-2", Duration::from_secs(30))
        .await
        .expect("progress");
    let by_sub = |s: String| r.intents.iter().find(|i| i.subscription == s).expect("intent").clone();
    let active = by_sub(sub(0));
    let stored = w.desk.intents(Some(("momo", "c-2")), None, 10).await.expect("intents");
    let stored_active = stored.iter().find(|i| i.tag == active.tag).expect("stored");
    assert_eq!(stored_active.state, IntentState::Filled, "{stored_active:?}");
    assert_eq!(orders_tagged(&w.sim, &w.users[0], &active.tag).await.len(), 1);
    for (i, why) in [(1, "paused"), (2, "consent"), (3, "awaiting consent")] {
        let s = by_sub(sub(i));
        assert_eq!(s.state, IntentState::Skipped, "{s:?}");
        let reason = s.reason.clone().unwrap_or_default().to_lowercase();
        assert!(
            reason.contains(why) || reason.contains(&why.replace('_', "")),
            "{why}: {reason}"
        );
        assert!(orders_tagged(&w.sim, &w.users[i], &s.tag).await.is_empty());
    }

    // The kill switch on user 0: halted, and the position exited by a tagged order.
    let report = e
        .kill(
            Kill {
                level: Level::User,
                target: w.users[0].clone(),
                state: TradingState::Halted,
                cancel: true,
                exit: true,
                note: Some("test".into()),
            },
            &actor(),
        )
        .await
        .expect("kill");
    assert_eq!(report.exits.len(), 1, "{report:?}");
    let exit_tag = report.exits[0].clone();
    let mut exited = false;
    for _ in 0..100 {
        let orders = orders_tagged(&w.sim, &w.users[0], &exit_tag).await;
        if orders.iter().any(|o| o.status == upstox_types::OrderStatus::Complete) {
            assert_eq!(orders.len(), 1);
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exited, "the kill switch's exit was filled at Upstox");
    // …and the engine has seen the fill (its book is flat again).
    let mut seen = false;
    for _ in 0..100 {
        e.flush().await.expect("flush");
        let mine = w.desk.intents(None, Some(&w.users[0]), 10).await.expect("intents");
        if mine.iter().any(|i| i.tag == exit_tag && i.state == IntentState::Filled) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the engine settled the exit");
    let r = e
        .submit(signal("c-3", Action::EnterLong), "test")
        .await
        .expect("submit");
    let halted = by_sub_of(&r, &sub(0));
    assert_eq!(halted.state, IntentState::Refused);
    assert!(
        halted.reason.as_deref().is_some_and(|r| r.contains("halted")),
        "{halted:?}"
    );
    // An unknown target is an error, and changes nothing.
    let err = e
        .kill(
            Kill {
                level: Level::User,
                target: "NOBODY".into(),
                state: TradingState::Halted,
                cancel: true,
                exit: false,
                note: None,
            },
            &actor(),
        )
        .await
        .expect_err("unknown user");
    assert!(err.to_string().contains("NOBODY"), "{err}");
    e.shutdown().await;
    w.sim.shutdown().await;
}

fn by_sub_of(r: &stoxide_engine::SignalReport, s: &str) -> stoxide_engine::IntentSummary {
    r.intents.iter().find(|i| i.subscription == s).expect("intent").clone()
}
