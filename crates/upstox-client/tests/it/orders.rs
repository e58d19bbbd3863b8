use rust_decimal::Decimal;
use upstox_client::orders::{ModifyOrderRequest, MultiOrderLine, PlaceOrderRequest};
use upstox_sim::SimConfig;
use upstox_types::{OrderStatus, OrderType, Product, TransactionType, Validity};

use crate::{client_for, start};

pub(crate) const RELIANCE: &str = "NSE_EQ|INE002A01018";

/// The last price and the day's circuit limits of `key`: prices outside the band are refused.
pub(crate) async fn price_band(c: &upstox_client::UpstoxClient, key: &str) -> (f64, f64, f64) {
    let quotes = c.full_quote(&[key]).await.expect("quote");
    let q = quotes.values().next().expect("one quote");
    (q.last_price, q.lower_circuit_limit, q.upper_circuit_limit)
}

/// A price `f` of the way from `lo` to `hi` (0 = the lower circuit, 1 = the upper one).
pub(crate) fn within(lo: f64, hi: f64, f: f64) -> f64 {
    lo + (hi - lo) * f
}

pub(crate) fn dec(x: f64) -> Decimal {
    Decimal::try_from(((x / 0.05).round() * 0.05 * 100.0).round() / 100.0)
        .expect("decimal")
        .round_dp(2)
}

#[tokio::test]
async fn market_order_fills_and_positions_follow() {
    let (sim, c) = start(SimConfig::default()).await;
    let placed = c
        .place_order_v3(&PlaceOrderRequest::market(
            RELIANCE,
            TransactionType::Buy,
            10,
            Product::Intraday,
        ))
        .await
        .expect("place");
    assert_eq!(placed.order_ids.len(), 1);
    assert!(!placed.reconciled && placed.tag.starts_with("stx"));
    let order = c.order_details(&placed.order_ids[0]).await.expect("details");
    assert_eq!(order.status, OrderStatus::Complete);
    assert_eq!(order.filled_quantity, 10);
    assert_eq!(order.tag.as_deref(), Some(placed.tag.as_str()));
    let history = c.order_history(&placed.order_ids[0]).await.expect("history");
    let states: Vec<String> = history.iter().map(|o| o.status.to_string()).collect();
    assert_eq!(states.first().map(String::as_str), Some("put order req received"));
    assert_eq!(states.last().map(String::as_str), Some("complete"));
    assert_eq!(
        c.order_history_by_tag(&placed.tag).await.expect("by tag").len(),
        history.len()
    );

    let trades = c.order_trades(&placed.order_ids[0]).await.expect("trades");
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].quantity, 10);
    assert_eq!(c.trades_for_day().await.expect("day trades").len(), 1);

    let positions = c.positions().await.expect("positions");
    let p = positions
        .iter()
        .find(|p| p.instrument_token == RELIANCE)
        .expect("position");
    assert_eq!(p.quantity, 10);
    assert_eq!(p.average_price, Some(order.average_price));
    let funds = c.funds_v2(None).await.expect("funds").equity.expect("equity");
    let expected_margin = Decimal::new(2, 1) * Decimal::from(10) * order.average_price;
    assert!(
        (funds.used_margin - expected_margin).abs() < Decimal::ONE,
        "used {} vs {expected_margin}",
        funds.used_margin
    );

    // Exit all closes it with a market sell.
    let exit = c.exit_all_positions(None, None).await.expect("exit all");
    assert_eq!(exit.summary.success, 1);
    let positions = c.positions().await.expect("positions");
    assert_eq!(
        positions
            .iter()
            .find(|p| p.instrument_token == RELIANCE)
            .expect("position")
            .quantity,
        0
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn limit_order_waits_then_fills_when_modified_across_the_touch() {
    let (sim, c) = start(SimConfig::default()).await;
    let (ltp, lo, hi) = price_band(&c, RELIANCE).await;
    let (below, above) = (within(lo, ltp, 0.2), within(ltp, hi, 0.8));
    let placed = c
        .place_order_v2(&PlaceOrderRequest::limit(
            RELIANCE,
            TransactionType::Buy,
            5,
            Product::Intraday,
            dec(below),
        ))
        .await
        .expect("place v2");
    let id = placed.order_ids[0].clone();
    assert_eq!(c.order_details(&id).await.expect("details").status, OrderStatus::Open);
    let modify = ModifyOrderRequest {
        order_id: id.clone(),
        validity: Validity::Day,
        price: dec(above),
        order_type: OrderType::Limit,
        trigger_price: Decimal::ZERO,
        quantity: None,
        disclosed_quantity: None,
    };
    c.modify_order(&modify).await.expect("modify");
    let order = c.order_details(&id).await.expect("details");
    assert_eq!(order.status, OrderStatus::Complete);
    assert!(order.average_price < dec(above), "fills at the touch, not the limit");
    let e = c.cancel_order(&id).await.expect_err("cancel of a complete order");
    assert!(e.has_code("UDAPI100040"), "{e}");
    let e = c.cancel_order("999999999").await.expect_err("unknown order");
    assert!(e.has_code("UDAPI100010"), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_stop_loss_and_cancel_all() {
    let (sim, c) = start(SimConfig::default()).await;
    let (ltp, lo, hi) = price_band(&c, RELIANCE).await;
    let mut sl = PlaceOrderRequest::limit(
        RELIANCE,
        TransactionType::Buy,
        1,
        Product::Intraday,
        dec(within(ltp, hi, 0.9)),
    );
    sl.order_type = OrderType::StopLoss;
    sl.trigger_price = dec(within(ltp, hi, 0.8));
    let sl_id = c.place_order_v3(&sl).await.expect("sl").order_ids[0].clone();
    assert_eq!(
        c.order_details(&sl_id).await.expect("sl").status,
        OrderStatus::TriggerPending
    );
    let low = c
        .place_order_v3(&PlaceOrderRequest::limit(
            RELIANCE,
            TransactionType::Buy,
            1,
            Product::Intraday,
            dec(within(lo, ltp, 0.2)),
        ))
        .await
        .expect("limit");
    c.cancel_order_v2(&low.order_ids[0]).await.expect("cancel");
    assert_eq!(
        c.order_details(&low.order_ids[0]).await.expect("d").status,
        OrderStatus::Cancelled
    );
    let all = c.cancel_all_orders(None, None).await.expect("cancel all");
    assert_eq!(all.data.expect("ids").order_ids, vec![sl_id.clone()]);
    assert_eq!(c.order_details(&sl_id).await.expect("d").status, OrderStatus::Cancelled);
    sim.shutdown().await;
}

#[tokio::test]
async fn insufficient_margin_and_holdings_reject_like_upstox() {
    let (sim, _) = start(SimConfig::default()).await;
    let poor = client_for(&sim, "SIM003"); // 50,000 rupees
    let big = poor
        .place_order_v3(&PlaceOrderRequest::market(
            RELIANCE,
            TransactionType::Buy,
            1000,
            Product::Delivery,
        ))
        .await
        .expect("accepted");
    let order = poor.order_details(&big.order_ids[0]).await.expect("details");
    assert_eq!(order.status, OrderStatus::Rejected);
    let msg = order.status_message.expect("message");
    assert!(
        msg.starts_with("You need to add Rs. ") && msg.ends_with(" in your account to place this trade."),
        "{msg}"
    );
    let sell = poor
        .place_order_v3(&PlaceOrderRequest::market(
            "NSE_EQ|INE848E01016",
            TransactionType::Sell,
            100_000,
            Product::Delivery,
        ))
        .await
        .expect("accepted");
    let order = poor.order_details(&sell.order_ids[0]).await.expect("details");
    assert_eq!(order.status, OrderStatus::Rejected);
    assert!(
        order
            .status_message
            .unwrap_or_default()
            .contains("Insufficient holdings")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_orders_get_upstox_error_codes() {
    let (sim, c) = start(SimConfig::default()).await;
    let mut req = PlaceOrderRequest::market(RELIANCE, TransactionType::Buy, 0, Product::Intraday);
    assert!(c.place_order_v3(&req).await.expect_err("qty 0").has_code("UDAPI1052"));
    req.quantity = 1;
    req.instrument_token = "NSE_EQ|INE000X99999".into();
    assert!(
        c.place_order_v3(&req)
            .await
            .expect_err("unknown key")
            .has_code("UDAPI1026")
    );
    req.instrument_token = "NSE_INDEX|Nifty 50".into();
    assert!(c.place_order_v3(&req).await.expect_err("index").has_code("UDAPI1026"));
    req.instrument_token = RELIANCE.into();
    req.market_protection = Some(30);
    assert!(
        c.place_order_v3(&req)
            .await
            .expect_err("protection")
            .has_code("UDAPI1159")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn v3_slices_by_freeze_quantity_and_multi_place_reports_partial_success() {
    let (sim, c) = start(SimConfig::default()).await;
    let contracts = c.option_contracts("NSE_INDEX|Nifty 50", None).await.expect("contracts");
    let opt = contracts
        .iter()
        .filter(|k| k.instrument_type == "CE")
        .min_by(|a, b| a.expiry.cmp(&b.expiry).then(b.strike_price.total_cmp(&a.strike_price)))
        .expect("far OTM call");
    let lot = opt.lot_size;
    let freeze = opt.freeze_quantity as u64;
    let mut req = PlaceOrderRequest::market(
        &opt.instrument_key,
        TransactionType::Buy,
        lot * (freeze / lot + 3),
        Product::Intraday,
    );
    req.slice = Some(true);
    let placed = c.place_order_v3(&req).await.expect("sliced");
    assert_eq!(
        placed.order_ids.len(),
        2,
        "{} units with freeze {freeze} → 2 slices",
        req.quantity
    );
    // Exit-all sends a position above the freeze quantity in slices below it, as Upstox does.
    let held = req.quantity;
    let exit = c.exit_all_positions(Some("NSE_FO"), None).await.expect("exit all");
    assert_eq!(
        exit.summary.success, 2,
        "{held} units with freeze {freeze} → 2 exit slices"
    );
    let sells: Vec<u64> = c
        .order_book()
        .await
        .expect("book")
        .iter()
        .filter(|o| {
            o.instrument_token.as_deref() == Some(opt.instrument_key.as_str())
                && o.transaction_type == Some(TransactionType::Sell)
        })
        .map(|o| o.quantity)
        .collect();
    assert_eq!(sells.len(), 2, "{sells:?}");
    assert!(sells.iter().all(|&q| (q as f64) < opt.freeze_quantity), "{sells:?}");
    assert_eq!(sells.iter().sum::<u64>(), held);
    req.quantity = lot * (freeze / lot) * 30;
    assert!(
        c.place_order_v3(&req)
            .await
            .expect_err("too many slices")
            .has_code("UDAPI1118")
    );

    let good = PlaceOrderRequest::market(RELIANCE, TransactionType::Buy, 1, Product::Intraday);
    let bad = PlaceOrderRequest {
        quantity: 0,
        ..good.clone()
    };
    let lines = vec![
        MultiOrderLine {
            correlation_id: "a".into(),
            order: good.clone(),
        },
        MultiOrderLine {
            correlation_id: "b".into(),
            order: bad,
        },
    ];
    let resp = c.place_multi_order(&lines).await.expect("207 is not an error");
    assert_eq!(resp.status, "partial_success");
    assert_eq!(resp.data.len(), 1);
    assert_eq!(resp.data[0].correlation_id, "a");
    assert_eq!(
        (resp.summary.total, resp.summary.success, resp.summary.error),
        (2, 1, 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn holdings_follow_delivery_fills() {
    let (sim, c) = start(SimConfig::default()).await;
    let before = c.holdings().await.expect("holdings");
    assert!(!before.is_empty(), "seeded holdings");
    c.place_order_v3(&PlaceOrderRequest::market(
        "NSE_EQ|INE848E01016",
        TransactionType::Buy,
        7,
        Product::Delivery,
    ))
    .await
    .expect("buy");
    const NHPC: &str = "NSE_EQ|INE848E01016";
    // On the trade day it is a position (product D), not yet a holding (NHPC's seeded 20
    // shares are).
    let held = |list: &[upstox_client::portfolio::Holding]| {
        list.iter()
            .find(|h| h.instrument_token == NHPC)
            .map(|h| (h.quantity, h.t1_quantity))
    };
    let seeded = held(&before).expect("a seeded NHPC holding").0;
    let after = c.holdings().await.expect("holdings");
    assert_eq!(held(&after), Some((seeded, 0)));
    let positions = c.positions().await.expect("positions");
    let p = positions
        .iter()
        .find(|p| p.instrument_token == NHPC)
        .expect("NHPC position");
    assert_eq!((p.quantity, p.product), (7, Some(Product::Delivery)));

    // The next trading day it is in holdings as T1, the day after settled (T+1). Read from the
    // simulator's engine at those instants (its tokens die at 03:30 IST in between).
    let state = sim.state();
    let now = state.now();
    let calendar = &state.market.calendar;
    let trade_day = calendar.session_day(upstox_types::Segment::NseEq, now);
    let next_day = |d: chrono::NaiveDate| {
        let mut n = d.succ_opt().expect("date");
        while !calendar.is_trading_day(n) {
            n = n.succ_opt().expect("date");
        }
        n
    };
    let at_ten = |d: chrono::NaiveDate| {
        let ist = chrono::FixedOffset::east_opt(19_800).expect("IST");
        chrono::TimeZone::from_local_datetime(&ist, &d.and_hms_opt(10, 0, 0).expect("time"))
            .single()
            .expect("instant")
            .with_timezone(&chrono::Utc)
    };
    let nhpc_on = |d: chrono::NaiveDate| {
        state
            .engine
            .lock()
            .holdings(&state.market, "SIM001", at_ten(d))
            .into_iter()
            .find(|h| h["instrument_token"] == NHPC)
            .map(|h| (h["quantity"].as_i64(), h["t1_quantity"].as_i64()))
    };
    let t1 = next_day(trade_day);
    assert_eq!(nhpc_on(t1), Some((Some(seeded), Some(7))));
    assert_eq!(nhpc_on(next_day(t1)), Some((Some(seeded + 7), Some(0))));
    sim.shutdown().await;
}

#[tokio::test]
async fn prices_outside_the_band_and_absurd_numbers_are_refused() {
    let (sim, c) = start(SimConfig::default()).await;
    let (_, _, hi) = price_band(&c, RELIANCE).await;
    let placed = c
        .place_order_v3(&PlaceOrderRequest::limit(
            RELIANCE,
            TransactionType::Buy,
            1,
            Product::Intraday,
            dec(hi * 1.5),
        ))
        .await
        .expect("accepted, then rejected by the exchange");
    let order = c.order_details(&placed.order_ids[0]).await.expect("details");
    assert_eq!(order.status, OrderStatus::Rejected);
    assert!(
        order
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("circuit limits")),
        "{:?}",
        order.status_message
    );
    // Numbers no order can carry are refused before anything is placed.
    let http = reqwest::Client::new();
    let token = sim.token_of("SIM001").expect("token").to_owned();
    for body in [
        serde_json::json!({"quantity": 99_999_999_999_999_u64, "product": "I", "validity": "DAY", "price": 0, "instrument_token": RELIANCE, "order_type": "MARKET", "transaction_type": "BUY", "disclosed_quantity": 0, "trigger_price": 0, "is_amo": false}),
        serde_json::json!({"quantity": 1, "product": "I", "validity": "DAY", "price": 1e308, "instrument_token": RELIANCE, "order_type": "LIMIT", "transaction_type": "BUY", "disclosed_quantity": 0, "trigger_price": 0, "is_amo": false}),
    ] {
        let resp = http
            .post(format!("{}/v3/order/place", sim.base_url()))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400, "{body}");
        let v: serde_json::Value = resp.json().await.expect("envelope");
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("out of range")),
            "{v}"
        );
    }
    assert_eq!(
        c.order_book().await.expect("book").len(),
        1,
        "only the rejected order exists"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_pnl_report_lists_realised_trades_and_their_charges() {
    use upstox_client::pnl::{FinancialYear, PnlSegment};
    let (sim, c) = start(SimConfig::default()).await;
    let mut fills = Vec::new();
    for (side, qty) in [
        (TransactionType::Buy, 10),
        (TransactionType::Sell, 6),
        (TransactionType::Sell, 4),
    ] {
        let placed = c
            .place_order_v3(&PlaceOrderRequest::market(RELIANCE, side, qty, Product::Intraday))
            .await
            .expect("place");
        fills.push(
            c.order_details(&placed.order_ids[0])
                .await
                .expect("details")
                .average_price,
        );
    }
    // A buy still open is not realised.
    c.place_order_v3(&PlaceOrderRequest::market(
        RELIANCE,
        TransactionType::Buy,
        3,
        Product::Intraday,
    ))
    .await
    .expect("open buy");
    let year = FinancialYear::of(sim.state().now().with_timezone(&upstox_types::IST).date_naive());
    let meta = c.pnl_metadata(PnlSegment::Equity, year).await.expect("metadata");
    assert_eq!(meta.trades_count, 2);
    let rows = c.pnl_trades(PnlSegment::Equity, year, 1, 100).await.expect("data");
    let got: Vec<(Decimal, Decimal, Decimal)> = rows
        .iter()
        .map(|r| (r.quantity, r.buy_average, r.sell_average))
        .collect();
    assert_eq!(
        got,
        vec![
            (Decimal::from(6), fills[0], fills[1]),
            (Decimal::from(4), fills[0], fills[2])
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.scrip_name == "RELIANCE" && r.trade_type == "INTRADAY")
    );
    assert_eq!(rows[0].pnl(), rows[0].sell_amount - rows[0].buy_amount);
    assert!(
        c.pnl_trades(PnlSegment::Equity, year, 2, 100)
            .await
            .expect("page 2")
            .is_empty()
    );
    assert!(
        c.pnl_metadata(PnlSegment::Derivatives, year)
            .await
            .expect("FO")
            .trades_count
            == 0
    );
    let charges = c.pnl_charges(PnlSegment::Equity, year).await.expect("charges");
    assert!(
        charges.total > Decimal::ZERO && charges.brokerage > Decimal::ZERO,
        "{charges:?}"
    );
    let other = c
        .pnl_metadata(PnlSegment::Equity, FinancialYear::starting(2020))
        .await
        .map(|m| m.trades_count);
    assert_eq!(other.ok(), Some(0), "another year holds none of these");
    // A year that is not one is refused with a 400 naming the field.
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/v2/trade/profit-loss/metadata?segment=EQ&financial_year=2527",
            sim.base_url()
        ))
        .bearer_auth(sim.token_of("SIM001").expect("token"))
        .send()
        .await
        .expect("call");
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["errors"][0]["property_path"], "financial_year", "{body}");
    // The report is the caller's own: another user sees none of these trades, and no token
    // gets a 401.
    let other = crate::client_for(&sim, "SIM002");
    assert_eq!(
        other
            .pnl_metadata(PnlSegment::Equity, year)
            .await
            .expect("SIM002")
            .trades_count,
        0
    );
    assert!(
        other
            .pnl_trades(PnlSegment::Equity, year, 1, 100)
            .await
            .expect("SIM002 rows")
            .is_empty()
    );
    let resp = reqwest::get(format!(
        "{}/v2/trade/profit-loss/data?segment=EQ&financial_year={year}&page_number=1&page_size=10",
        sim.base_url()
    ))
    .await
    .expect("call");
    assert_eq!(resp.status(), 401);
    sim.shutdown().await;
}
