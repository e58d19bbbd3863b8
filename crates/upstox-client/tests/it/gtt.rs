//! GTT orders v3 against the simulator: rules fire from its price path and place real paper
//! orders; modify, cancel and reads; another user sees none of them.

use std::time::Duration;

use rust_decimal::Decimal;
use upstox_client::Error;
use upstox_client::gtt::{GttOrder, GttRule, ModifyGttRequest, PlaceGttRequest};
use upstox_sim::SimConfig;
use upstox_types::{GttRuleStatus, GttStrategy, GttTriggerType, GttType, Product, TransactionType};

use crate::orders::{RELIANCE, dec, price_band};
use crate::{client_for, start};

/// Reads the GTT until `done` holds (the simulator's matcher runs every 200 ms).
async fn wait_for(c: &upstox_client::UpstoxClient, id: &str, done: impl Fn(&GttOrder) -> bool) -> GttOrder {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = c.gtt_orders(Some(id)).await.expect("read the GTT");
        assert_eq!(list.len(), 1, "one GTT for one id: {list:?}");
        let g = list.into_iter().next().expect("one");
        if done(&g) {
            return g;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the GTT never got there: {g:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rule(g: &GttOrder, s: GttStrategy) -> &upstox_client::gtt::GttRuleState {
    g.rules.iter().find(|r| r.strategy == s).expect("the rule")
}

#[tokio::test]
async fn an_entry_fills_then_its_stop_loss_exits_and_cancels_the_target() {
    let (sim, c) = start(SimConfig::default()).await;
    let (ltp, _, _) = price_band(&c, RELIANCE).await;
    // Entry at once; a target far above; a stop loss above the market, so it fires as soon as
    // the entry's order completes and the exits go live.
    let req = PlaceGttRequest::new(
        RELIANCE,
        TransactionType::Buy,
        3,
        Product::Intraday,
        vec![
            GttRule::new(GttStrategy::Entry, GttTriggerType::Immediate, Decimal::ZERO),
            GttRule::new(GttStrategy::Target, GttTriggerType::Immediate, dec(ltp * 1.5)),
            GttRule::new(GttStrategy::StopLoss, GttTriggerType::Immediate, dec(ltp * 1.2)),
        ],
    );
    let ids = c.place_gtt(&req).await.expect("place the GTT");
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    assert!(id.starts_with("GTT-"), "{id}");

    let g = wait_for(&c, id, GttOrder::is_finished).await;
    assert_eq!(g.kind, GttType::Multiple);
    assert_eq!(g.instrument_token, RELIANCE);
    assert_eq!(g.exchange, "NSE_EQ");
    assert!(g.expires() > g.created(), "{g:?}");
    let entry = rule(&g, GttStrategy::Entry);
    let stop = rule(&g, GttStrategy::StopLoss);
    let target = rule(&g, GttStrategy::Target);
    assert_eq!(entry.status, GttRuleStatus::Completed, "{g:#?}");
    assert_eq!(stop.status, GttRuleStatus::Completed, "{g:#?}");
    assert_eq!(target.status, GttRuleStatus::Cancelled, "{g:#?}");
    assert_eq!(stop.transaction_type, TransactionType::Sell);

    // The two orders are in the book, marked with the GTT, and the position is flat again.
    let book = c.order_book().await.expect("order book");
    for (r, side) in [(entry, TransactionType::Buy), (stop, TransactionType::Sell)] {
        let oid = r.order_id.as_deref().expect("the rule's order");
        let o = book
            .iter()
            .find(|o| o.order_id == oid)
            .expect("the order is in the book");
        assert_eq!(o.transaction_type, Some(side));
        assert_eq!(o.quantity, 3);
        assert_eq!(o.status, upstox_types::OrderStatus::Complete);
        assert_eq!(o.order_ref_id.as_deref(), Some(id.as_str()));
    }
    let positions = c.positions().await.expect("positions");
    let p = positions
        .iter()
        .find(|p| p.instrument_token == RELIANCE)
        .expect("a RELIANCE position");
    assert_eq!(p.quantity, 0, "bought 3 and sold 3: {p:?}");

    // Another user sees none of it.
    let other = client_for(&sim, "SIM002");
    assert!(other.gtt_orders(None).await.expect("list").is_empty());
    let err = other.gtt_orders(Some(id)).await.expect_err("not theirs");
    assert!(matches!(&err, Error::Api { .. }), "{err}");
    assert!(other.cancel_gtt(id).await.is_err());
}

#[tokio::test]
async fn a_waiting_gtt_is_modified_then_cancelled_and_bad_rules_say_why() {
    let (_sim, c) = start(SimConfig::default()).await;
    let (ltp, _, _) = price_band(&c, RELIANCE).await;
    let entry = dec(ltp * 0.5);
    let req = PlaceGttRequest::new(
        RELIANCE,
        TransactionType::Buy,
        1,
        Product::Delivery,
        vec![GttRule::new(GttStrategy::Entry, GttTriggerType::Below, entry)],
    );
    let id = c.place_gtt(&req).await.expect("place").remove(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let g = wait_for(&c, &id, |_| true).await;
    assert_eq!(g.kind, GttType::Single);
    assert_eq!(
        rule(&g, GttStrategy::Entry).status,
        GttRuleStatus::Pending,
        "far below: {g:?}"
    );

    // Add a target and a trailing stop loss; the list shows the new rules.
    let mut stop = GttRule::new(GttStrategy::StopLoss, GttTriggerType::Immediate, dec(ltp * 0.4));
    stop.trailing_gap = Some(Decimal::new(5, 0));
    let modify = ModifyGttRequest {
        kind: GttType::Multiple,
        quantity: 2,
        rules: vec![
            GttRule::new(GttStrategy::Entry, GttTriggerType::Below, entry),
            GttRule::new(GttStrategy::Target, GttTriggerType::Immediate, dec(ltp * 0.6)),
            stop,
        ],
        gtt_order_id: id.clone(),
    };
    assert_eq!(c.modify_gtt(&modify).await.expect("modify"), vec![id.clone()]);
    let all = c.gtt_orders(None).await.expect("list");
    let g = all.iter().find(|g| g.gtt_order_id == id).expect("listed");
    assert_eq!(g.quantity, 2);
    assert_eq!(g.rules.len(), 3);
    assert_eq!(rule(g, GttStrategy::StopLoss).status, GttRuleStatus::Scheduled);
    assert_eq!(rule(g, GttStrategy::StopLoss).trailing_gap, Some(Decimal::new(5, 0)));

    // A target below the entry of a buy: refused, saying which rule and why.
    let mut bad = modify.clone();
    bad.rules[1].trigger_price = dec(ltp * 0.45);
    let err = c.modify_gtt(&bad).await.expect_err("a target below the entry");
    assert!(err.to_string().contains("TARGET"), "{err}");
    let err = c
        .place_gtt(&PlaceGttRequest::new(
            RELIANCE,
            TransactionType::Buy,
            1,
            Product::Delivery,
            vec![GttRule::new(GttStrategy::Target, GttTriggerType::Above, dec(ltp))],
        ))
        .await
        .expect_err("no entry");
    assert!(err.to_string().contains("ENTRY"), "{err}");

    assert_eq!(c.cancel_gtt(&id).await.expect("cancel"), vec![id.clone()]);
    let g = wait_for(&c, &id, |_| true).await;
    assert!(g.rules.iter().all(|r| r.status == GttRuleStatus::Cancelled), "{g:?}");
    assert!(g.rules.iter().all(|r| r.order_id.is_none()), "nothing was placed");
    let err = c.cancel_gtt(&id).await.expect_err("already cancelled");
    assert!(err.to_string().contains("finished"), "{err}");
}
