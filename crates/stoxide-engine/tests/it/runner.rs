//! An in-process strategy on a replayed tick series: candles from ticks, a breakout, a signal
//! submitted like any other, an order in the consenting user's account; the same candles
//! replayed are the same signals and send nothing again.

use std::time::Duration;

use stoxide_engine::PriceTick;
use stoxide_engine::catalog::SignalSource;
use stoxide_engine::intent::IntentState;
use upstox_sim::SimConfig;

use crate::{actor, config, engine, key, strategy, world};

fn series() -> Vec<PriceTick> {
    // Ten quiet one-second candles, then a new high, then a collapse; two ticks per candle.
    let mut prices: Vec<f64> = vec![2500.0; 10];
    prices.extend([2501.0, 2530.0, 2540.0, 2500.0, 2460.0, 2460.0]);
    prices
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let at = 1_700_000_000_000 + i as i64 * 1000;
            [
                PriceTick {
                    key: key(),
                    at_ms: at,
                    price: *p,
                },
                PriceTick {
                    key: key(),
                    at_ms: at + 500,
                    price: *p,
                },
            ]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakout_on_replayed_ticks_trades_once_per_signal() {
    let w = world(2, SimConfig::default(), true).await;
    let mut s = strategy();
    s.version = 2;
    s.source = SignalSource::Breakout {
        lookback: 5,
        interval_secs: 1,
    };
    w.desk.register(&s, &actor()).await.expect("new version");
    // A new version needs a new consent: only the first user gives it.
    w.desk
        .activate(&format!("momo:{}", w.users[0]), &actor())
        .await
        .expect("activate");
    let e = engine(&w, config()).await;

    for round in 0..2 {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let runner = {
            let e = e.clone();
            let catalog = vec![s.clone()];
            tokio::spawn(async move { e.run_strategies(&catalog, rx).await })
        };
        for t in series() {
            tx.send(t).await.expect("send");
        }
        drop(tx);
        let submitted = runner.await.expect("runner");
        assert_eq!(submitted, 2, "round {round}: a long and a short signal were submitted");
    }
    let intents = w.desk.intents(None, None, 100).await.expect("intents");
    let signals: std::collections::BTreeSet<&str> = intents.iter().map(|i| i.signal_id.as_str()).collect();
    assert_eq!(signals.len(), 2, "the replay made no new signal: {signals:?}");
    for id in &signals {
        e.wait_settled("momo", id, Duration::from_secs(30))
            .await
            .expect("settled");
    }
    let intents = w.desk.intents(None, None, 100).await.expect("intents");
    for i in &intents {
        if i.account == w.users[0] {
            assert_eq!(i.state, IntentState::Filled, "{i:?}");
        } else {
            assert_eq!(i.state, IntentState::Skipped, "no consent to version 2: {i:?}");
        }
    }
    e.shutdown().await;
    w.sim.shutdown().await;
}
