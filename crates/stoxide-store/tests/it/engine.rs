//! The engine's records, on both backends.

use stoxide_store::{
    AuditDraft, AuditHead, AuditRow, EngineWrite, IntentRow, IntentUpdate, PositionRow, SignalRow, StateChange,
    StrategyRow, SubscriptionRow, TradingStateRow,
};

use crate::{Fixture, contract};

fn intent(tag: &str, sub: &str, state: &str) -> IntentRow {
    IntentRow {
        tag: tag.into(),
        strategy: "ema".into(),
        signal_id: "sig-1".into(),
        subscription: sub.into(),
        account: "SIM001".into(),
        plan: Some("{\"quantity\":65}".into()),
        state: state.into(),
        reason: None,
        order_ids: "[]".into(),
        created_at: 1,
        updated_at: 1,
        filled: 0,
        average_price: None,
    }
}

fn update(tag: &str, state: &str, reason: Option<&str>, order_ids: &str, filled: i64, at: i64) -> IntentUpdate {
    IntentUpdate {
        tag: tag.into(),
        state: state.into(),
        reason: reason.map(Into::into),
        order_ids: order_ids.into(),
        filled,
        average_price: (filled > 0).then(|| "101.05".into()),
        updated_at: at,
    }
}

/// A toy chain for the store's tests (the engine's real one hashes).
fn toy_chain(head: Option<&AuditHead>, d: &AuditDraft) -> AuditRow {
    let (seq, prev) = head.map_or((1, "genesis".to_owned()), |h| (h.seq + 1, h.hash.clone()));
    AuditRow {
        seq,
        at_ms: d.at_ms,
        kind: d.kind.clone(),
        user_id: d.user_id.clone(),
        body: d.body.clone(),
        hash: format!("h{seq}"),
        prev,
    }
}

fn draft(kind: &str, user: &str) -> AuditDraft {
    AuditDraft {
        at_ms: 7,
        kind: kind.into(),
        user_id: user.into(),
        body: "{}".into(),
    }
}

contract!(strategies_subscriptions_signals_and_intents);
async fn strategies_subscriptions_signals_and_intents(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    s.put_strategy(&StrategyRow {
        id: "ema".into(),
        version: 1,
        definition: "{}".into(),
        updated_at: 1,
    })
    .await
    .expect("strategy");
    s.put_strategy(&StrategyRow {
        id: "ema".into(),
        version: 2,
        definition: "{\"v\":2}".into(),
        updated_at: 2,
    })
    .await
    .expect("new version");
    assert_eq!(s.strategy("ema").await.expect("get").map(|r| r.version), Some(2));
    assert_eq!(s.strategies().await.expect("all").len(), 1);

    for (id, account) in [("sub-b", "SIM002"), ("sub-a", "SIM001")] {
        s.put_subscription(&SubscriptionRow {
            id: id.into(),
            account: account.into(),
            strategy: "ema".into(),
            inputs: "{}".into(),
            state: "awaiting_consent".into(),
            consent: None,
            updated_at: 1,
        })
        .await
        .expect("subscription");
    }
    let mut a = s.subscription("sub-a").await.expect("get").expect("some");
    a.state = "active".into();
    a.consent = Some("{\"hash\":\"abc\"}".into());
    s.put_subscription(&a).await.expect("activate");
    assert_eq!(s.subscription("sub-a").await.expect("get"), Some(a));
    let ids: Vec<String> = s
        .subscriptions_of_strategy("ema")
        .await
        .expect("of")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["sub-a", "sub-b"]);
    assert_eq!(s.subscriptions_of_account("SIM002").await.expect("of").len(), 1);

    let sig = SignalRow {
        strategy: "ema".into(),
        id: "sig-1".into(),
        body: "{}".into(),
        accepted: 1,
        reason: None,
        received_at: 5,
    };
    assert!(s.insert_signal(&sig).await.expect("first"));
    assert!(
        !s.insert_signal(&sig).await.expect("again"),
        "a signal sent twice is one signal"
    );
    assert_eq!(
        s.signal("ema", "sig-1").await.expect("get").map(|r| r.accepted),
        Some(1)
    );

    assert!(
        s.insert_intent(&intent("stx1", "sub-a", "planned"))
            .await
            .expect("intent")
    );
    assert!(
        !s.insert_intent(&intent("stx1", "sub-a", "planned"))
            .await
            .expect("again"),
        "one intent per tag"
    );
    assert!(
        s.insert_intent(&intent("stx2", "sub-b", "skipped"))
            .await
            .expect("intent")
    );
    assert!(
        s.update_intent(&update("stx1", "sent", None, "[\"o1\"]", 0, 9))
            .await
            .expect("update")
    );
    assert!(
        !s.update_intent(&update("nope", "sent", None, "[]", 0, 9))
            .await
            .expect("update")
    );
    let unfinished: Vec<String> = s
        .unfinished_intents()
        .await
        .expect("unfinished")
        .into_iter()
        .map(|i| i.tag)
        .collect();
    assert_eq!(unfinished, ["stx1"], "the skipped one is over");
    assert!(
        s.update_intent(&update("stx1", "filled", Some("done"), "[\"o1\"]", 65, 10))
            .await
            .expect("update")
    );
    assert!(s.unfinished_intents().await.expect("unfinished").is_empty());
    let of_signal = s.intents_of_signal("ema", "sig-1").await.expect("of signal");
    assert_eq!(of_signal.len(), 2);
    assert_eq!(
        (of_signal[0].state.as_str(), of_signal[0].order_ids.as_str()),
        ("filled", "[\"o1\"]")
    );
    assert_eq!(
        (of_signal[0].filled, of_signal[0].average_price.as_deref()),
        (65, Some("101.05"))
    );
    f.finish(s).await;
}

contract!(positions_and_trading_states_survive_a_reopen);
async fn positions_and_trading_states_survive_a_reopen(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let pos = PositionRow {
        subscription: "sub-a".into(),
        instrument: "NSE_FO|43919".into(),
        quantity: -130,
        avg_price: "101.35".into(),
        realised: "-2500.50".into(),
        updated_at: 1,
    };
    s.put_position(&pos).await.expect("position");
    s.put_position(&PositionRow {
        quantity: -65,
        ..pos.clone()
    })
    .await
    .expect("update");
    s.set_trading_state(&TradingStateRow {
        level: "user".into(),
        target: "SIM001".into(),
        state: "reducing".into(),
        reason: Some("daily loss".into()),
        updated_at: 1,
    })
    .await
    .expect("state");
    s.close().await;
    let s = f.store().await;
    assert_eq!(
        s.position("sub-a", "NSE_FO|43919")
            .await
            .expect("get")
            .map(|p| (p.quantity, p.realised)),
        Some((-65, "-2500.50".to_owned())),
        "exact decimals, kept across a restart"
    );
    assert_eq!(s.positions_of("sub-a").await.expect("of").len(), 1);
    let states = s.trading_states().await.expect("states");
    assert_eq!(states.len(), 1);
    assert_eq!(
        (states[0].state.as_str(), states[0].reason.as_deref()),
        ("reducing", Some("daily loss"))
    );
    f.finish(s).await;
}

contract!(concurrent_audit_appends_make_one_unbroken_chain);
async fn concurrent_audit_appends_make_one_unbroken_chain(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..5 {
        let s = s.clone();
        tasks.spawn(async move {
            for i in 0..10 {
                s.append_audit(|head| {
                    let (seq, prev) = head.map_or((1, "genesis".to_owned()), |h| (h.seq + 1, h.hash));
                    AuditRow {
                        seq,
                        at_ms: i64::from(t * 100 + i),
                        kind: "test".into(),
                        user_id: format!("U{t}"),
                        body: format!("{{\"t\":{t},\"i\":{i}}}"),
                        hash: format!("h{seq}<{prev}>").chars().take(60).collect(),
                        prev,
                    }
                })
                .await
                .expect("append");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    let log = s.audit_log().await.expect("log");
    assert_eq!(log.len(), 50);
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1, "no gap, no fork");
        if i > 0 {
            assert_eq!(r.prev, log[i - 1].hash, "each record follows the one before");
        }
    }
    let head = s.audit_head().await.expect("head").expect("some");
    assert_eq!((head.seq, head.hash.as_str()), (50, log[49].hash.as_str()));
    assert_eq!(s.audit_of_user("U3", 300, 310).await.expect("of user").len(), 10);
    assert_eq!(s.audit_of_user("U3", 300, 305).await.expect("of user").len(), 5);
    f.finish(s).await;
}

contract!(a_signal_its_intents_and_their_audit_are_written_together_or_not_at_all);
async fn a_signal_its_intents_and_their_audit_are_written_together_or_not_at_all(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let signal = SignalRow {
        strategy: "ema".into(),
        id: "sig-9".into(),
        body: "{}".into(),
        accepted: 1,
        reason: None,
        received_at: 5,
    };
    let write = EngineWrite {
        signal: Some(signal.clone()),
        intents: ["stxa", "stxb"]
            .iter()
            .zip(["sub-a", "sub-b"])
            .map(|(tag, sub)| IntentRow {
                signal_id: "sig-9".into(),
                ..intent(tag, sub, "pending")
            })
            .collect(),
        audit: vec![
            draft("signal", "vendor"),
            draft("intent", "SIM001"),
            draft("intent", "SIM002"),
        ],
        ..EngineWrite::default()
    };
    let position = EngineWrite {
        intent_updates: vec![update("stxa", "filled", None, "[\"o1\"]", 65, 9)],
        positions: vec![PositionRow {
            subscription: "sub-a".into(),
            instrument: "NSE_FO|43919".into(),
            quantity: 65,
            avg_price: "101.05".into(),
            realised: "0".into(),
            updated_at: 9,
        }],
        audit: vec![draft("fill", "SIM001")],
        ..EngineWrite::default()
    };
    // Two writes in one transaction; then the same signal again, which applies nothing.
    let out = s
        .write_engine(&[write.clone(), position], &toy_chain)
        .await
        .expect("write");
    assert!(out[0].applied && out[1].applied);
    assert_eq!(out[0].new_intents, ["stxa", "stxb"]);
    assert_eq!(out[1].updated_intents, 1);
    assert_eq!(out[0].audit.len() + out[1].audit.len(), 4);
    let again = s.write_engine(&[write], &toy_chain).await.expect("again");
    assert!(!again[0].applied, "a duplicate signal applies nothing");
    assert!(again[0].new_intents.is_empty() && again[0].audit.is_empty());

    let log = s.audit_log().await.expect("log");
    let kinds: Vec<&str> = log.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["signal", "intent", "intent", "fill"],
        "in order, nothing from the duplicate"
    );
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1);
        if i > 0 {
            assert_eq!(r.prev, log[i - 1].hash, "one chain across writes");
        }
    }
    assert_eq!(s.audit_head().await.expect("head").map(|h| h.seq), Some(4));
    assert_eq!(s.intents_of_signal("ema", "sig-9").await.expect("intents").len(), 2);
    assert_eq!(
        s.position("sub-a", "NSE_FO|43919")
            .await
            .expect("pos")
            .map(|p| p.quantity),
        Some(65)
    );
    f.finish(s).await;
}

contract!(a_state_change_applies_only_to_the_state_it_was_read_in);
async fn a_state_change_applies_only_to_the_state_it_was_read_in(backend: &str) {
    let f = Fixture::new(backend).await;
    let s = f.store().await;
    let row = SubscriptionRow {
        id: "sub-a".into(),
        account: "SIM001".into(),
        strategy: "ema".into(),
        inputs: "{\"lots\":1}".into(),
        state: "active".into(),
        consent: Some("{\"hash\":\"abc\"}".into()),
        updated_at: 1,
    };
    s.put_subscription(&row).await.expect("subscription");
    let change = |from: &str| EngineWrite {
        state_change: Some(StateChange {
            id: "sub-a".into(),
            from: from.into(),
            to: "needs_login".into(),
            updated_at: 5,
        }),
        audit: vec![draft("needs_login", "SIM001")],
        ..EngineWrite::default()
    };
    // Meanwhile the desk changed the inputs: the subscription awaits consent again.
    let changed = SubscriptionRow {
        inputs: "{\"lots\":2}".into(),
        state: "awaiting_consent".into(),
        updated_at: 3,
        ..row.clone()
    };
    s.put_subscription(&changed).await.expect("desk");
    let out = s.write_engine(&[change("active")], &toy_chain).await.expect("write");
    assert!(!out[0].applied && out[0].audit.is_empty(), "{out:?}");
    assert_eq!(s.subscription("sub-a").await.expect("get"), Some(changed.clone()));
    // Read in the state it is in, the change applies (the state alone).
    let out = s
        .write_engine(&[change("awaiting_consent")], &toy_chain)
        .await
        .expect("write");
    assert!(out[0].applied && out[0].audit.len() == 1);
    let now = s.subscription("sub-a").await.expect("get").expect("some");
    assert_eq!(
        (now.state.as_str(), now.inputs.as_str()),
        ("needs_login", "{\"lots\":2}")
    );
    f.finish(s).await;
}
