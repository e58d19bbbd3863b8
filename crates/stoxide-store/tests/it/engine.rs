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

contract!(a_group_of_writes_leaves_what_one_write_at_a_time_leaves);
async fn a_group_of_writes_leaves_what_one_write_at_a_time_leaves(backend: &str) {
    // Over a thousand rows per table (more than one statement's worth), a tag inserted twice,
    // updates of one intent in several writes, an update of no intent, a position, a
    // subscription and a trading state written again and again, a signal in the middle and its
    // duplicate later, and a state change that needs the subscription a write before it stored.
    let sub = |state: &str, at: i64| SubscriptionRow {
        id: "sub-a".into(),
        account: "SIM001".into(),
        strategy: "ema".into(),
        inputs: format!("{{\"lots\":{at}}}"),
        state: state.into(),
        consent: None,
        updated_at: at,
    };
    let signal = |id: &str| SignalRow {
        strategy: "ema".into(),
        id: id.into(),
        body: "{}".into(),
        accepted: 1,
        reason: None,
        received_at: 5,
    };
    let mut writes: Vec<EngineWrite> = Vec::new();
    writes.push(EngineWrite {
        strategies: vec![StrategyRow {
            id: "ema".into(),
            version: 1,
            definition: "{}".into(),
            updated_at: 1,
        }],
        subscriptions: vec![sub("active", 1)],
        ..EngineWrite::default()
    });
    for n in 0..1_200i64 {
        let tag = format!("t{n}");
        let mut w = EngineWrite {
            intents: vec![intent(&tag, "sub-a", "pending")],
            audit: vec![draft("intent", "SIM001")],
            ..EngineWrite::default()
        };
        if n > 0 {
            // The previous intent moves on, twice in this write and again in the next.
            let before = format!("t{}", n - 1);
            w.intent_updates = vec![
                update(&before, "placed", None, "[]", 0, n),
                update(&before, "filled", None, "[\"o1\"]", n, n + 1),
            ];
        }
        if n == 700 {
            w.intents.push(intent("t3", "sub-a", "pending"));
            w.intent_updates.push(update("nope", "filled", None, "[]", 1, n));
        }
        w.positions = vec![PositionRow {
            subscription: "sub-a".into(),
            instrument: "NSE_FO|43919".into(),
            quantity: n,
            avg_price: format!("{n}.5"),
            realised: "0".into(),
            updated_at: n,
        }];
        if n % 100 == 0 {
            w.trading_states = vec![TradingStateRow {
                level: "user".into(),
                target: "SIM001".into(),
                state: if n % 200 == 0 { "paused" } else { "active" }.into(),
                reason: Some(format!("at {n}")),
                updated_at: n,
            }];
            if n <= 900 {
                w.subscriptions = vec![sub("active", n)];
            }
        }
        writes.push(w);
        if n == 500 {
            writes.push(EngineWrite {
                signal: Some(signal("sig-mid")),
                intents: vec![IntentRow {
                    signal_id: "sig-mid".into(),
                    ..intent("mid-1", "sub-a", "pending")
                }],
                audit: vec![draft("signal", "vendor")],
                ..EngineWrite::default()
            });
        }
        if n == 900 {
            writes.push(EngineWrite {
                signal: Some(signal("sig-mid")),
                intents: vec![IntentRow {
                    signal_id: "sig-mid".into(),
                    ..intent("mid-2", "sub-a", "pending")
                }],
                audit: vec![draft("signal", "vendor")],
                ..EngineWrite::default()
            });
            writes.push(EngineWrite {
                subscriptions: vec![sub("active", 901)],
                ..EngineWrite::default()
            });
            writes.push(EngineWrite {
                state_change: Some(StateChange {
                    id: "sub-a".into(),
                    from: "active".into(),
                    to: "needs_login".into(),
                    updated_at: 902,
                }),
                audit: vec![draft("needs_login", "SIM001")],
                ..EngineWrite::default()
            });
        }
    }

    let grouped = Fixture::new(backend).await;
    let one_by_one = Fixture::new(backend).await;
    let (g, o) = (grouped.store().await, one_by_one.store().await);
    let group_out = g.write_engine(&writes, &toy_chain).await.expect("group");
    let mut single_out = Vec::new();
    for w in &writes {
        single_out.extend(o.write_engine(std::slice::from_ref(w), &toy_chain).await.expect("one"));
    }
    assert_eq!(group_out, single_out, "each write reports the same");
    let mid = &group_out[502];
    assert!(mid.applied && mid.new_intents == ["mid-1"], "{mid:?}");
    assert!(
        group_out.iter().all(|w| !w.new_intents.iter().any(|t| t == "mid-2")),
        "a duplicate signal applies nothing"
    );
    assert_eq!(
        group_out
            .iter()
            .filter(|w| w.new_intents.iter().any(|t| t == "t3"))
            .count(),
        1
    );

    assert_eq!(g.audit_log().await.expect("log"), o.audit_log().await.expect("log"));
    assert_eq!(g.audit_head().await.expect("head"), o.audit_head().await.expect("head"));
    assert_eq!(g.audit_head().await.expect("head").map(|h| h.seq), Some(1_202));
    for signal in ["sig-1", "sig-mid"] {
        let (a, b) = (
            g.intents_of_signal("ema", signal).await.expect("intents"),
            o.intents_of_signal("ema", signal).await.expect("intents"),
        );
        assert_eq!(a.len(), b.len(), "{signal}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{signal}");
        }
    }
    assert_eq!(
        g.subscriptions_with_intent("ema", "sig-mid")
            .await
            .expect("subscriptions"),
        ["sub-a"]
    );
    let last = g.intents_of_signal("ema", "sig-1").await.expect("intents");
    assert_eq!(last.len(), 1_200);
    let t1198 = last.iter().find(|i| i.tag == "t1198").expect("t1198");
    assert_eq!(
        (t1198.state.as_str(), t1198.filled),
        ("filled", 1_199),
        "the last update wins"
    );
    assert_eq!(
        g.position("sub-a", "NSE_FO|43919").await.expect("pos"),
        o.position("sub-a", "NSE_FO|43919").await.expect("pos")
    );
    assert_eq!(
        g.position("sub-a", "NSE_FO|43919")
            .await
            .expect("pos")
            .map(|p| p.quantity),
        Some(1_199)
    );
    assert_eq!(
        g.subscription("sub-a").await.expect("sub"),
        o.subscription("sub-a").await.expect("sub")
    );
    assert_eq!(
        g.subscription("sub-a").await.expect("sub").map(|s| s.state),
        Some("needs_login".to_owned()),
        "the state change saw the subscription stored a write before it"
    );
    assert_eq!(
        g.trading_states().await.expect("ts"),
        o.trading_states().await.expect("ts")
    );
    grouped.finish(g).await;
    one_by_one.finish(o).await;
}
