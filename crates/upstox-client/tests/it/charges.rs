use rust_decimal::Decimal;
use upstox_client::Error;
use upstox_client::charges::{MAX_MARGIN_BASKET, MarginLeg};
use upstox_client::orders::PlaceOrderRequest;
use upstox_sim::SimConfig;
use upstox_types::{Product, TransactionType};

use crate::orders::{RELIANCE, dec, price_band, within};
use crate::start;

fn leg(key: &str, quantity: u64, product: Product, side: TransactionType, price: Decimal) -> MarginLeg {
    MarginLeg {
        instrument_key: key.into(),
        quantity,
        product,
        transaction_type: side,
        price,
    }
}

async fn used_margin(c: &upstox_client::UpstoxClient) -> Decimal {
    c.funds_v2(None)
        .await
        .expect("funds")
        .equity
        .expect("equity segment")
        .used_margin
}

#[tokio::test]
async fn the_margin_api_reports_what_placing_the_order_blocks() {
    let (sim, c) = start(SimConfig::default()).await;
    let (ltp, lo, _) = price_band(&c, RELIANCE).await;
    // Resting well below the market, so it blocks margin without filling.
    let price = dec(within(lo, ltp, 0.3));
    let report = c
        .margin(&[leg(RELIANCE, 40, Product::Intraday, TransactionType::Buy, price)])
        .await
        .expect("margin");
    assert_eq!(report.margins.len(), 1);
    let m = &report.margins[0];
    assert!(m.total_margin > Decimal::ZERO, "{report:?}");
    assert_eq!(
        m.equity_margin, m.total_margin,
        "equity margin is all of it for a share"
    );
    assert_eq!(report.required_margin, m.total_margin);
    assert_eq!(report.final_margin, report.required_margin);

    let before = used_margin(&c).await;
    c.place_order_v3(&PlaceOrderRequest::limit(
        RELIANCE,
        TransactionType::Buy,
        40,
        Product::Intraday,
        price,
    ))
    .await
    .expect("place");
    let after = used_margin(&c).await;
    assert_eq!(
        after - before,
        m.total_margin,
        "blocked margin equals the reported margin"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_basket_reports_one_entry_per_leg_in_order_and_sums_them() {
    let (sim, c) = start(SimConfig::default()).await;
    let (ltp, ..) = price_band(&c, RELIANCE).await;
    let basket = [
        leg(RELIANCE, 10, Product::Intraday, TransactionType::Buy, Decimal::ZERO),
        leg(RELIANCE, 10, Product::Delivery, TransactionType::Buy, dec(ltp)),
    ];
    let report = c.margin(&basket).await.expect("margin");
    assert_eq!(report.margins.len(), 2);
    let delivery = report.margins[1].total_margin;
    let intraday = report.margins[0].total_margin;
    assert!(
        delivery > intraday,
        "delivery needs the full value, intraday a fraction: {report:?}"
    );
    assert_eq!(report.required_margin, delivery + intraday);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_margin_requests_are_refused_with_the_leg_named() {
    let (sim, c) = start(SimConfig::default()).await;
    let one = leg(RELIANCE, 1, Product::Intraday, TransactionType::Buy, Decimal::ZERO);
    let err = c.margin(&[]).await.expect_err("empty");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = c
        .margin(&vec![one.clone(); MAX_MARGIN_BASKET + 1])
        .await
        .expect_err("oversized");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = c
        .margin(&[
            one.clone(),
            leg("NSE_EQ|NOPE", 1, Product::Intraday, TransactionType::Buy, Decimal::ZERO),
        ])
        .await
        .expect_err("unknown instrument");
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.has_code("UDAPI1026"), "{err}");
    assert!(err.to_string().contains("instruments[1].instrument_key"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn brokerage_is_the_sum_of_its_parts_on_upstox_schedule() {
    let (sim, c) = start(SimConfig::default()).await;
    let (ltp, ..) = price_band(&c, RELIANCE).await;
    let price = dec(ltp);
    let small = c
        .brokerage(RELIANCE, 1, Product::Intraday, TransactionType::Buy, price)
        .await
        .expect("brokerage");
    let t = &small.taxes;
    let o = &small.other_taxes;
    assert_eq!(
        small.total,
        small.brokerage + t.gst + t.stt + t.stamp_duty + o.transaction + o.clearing + o.sebi_turnover,
        "{small:?}"
    );
    // One share: 0.05% of the turnover is far below the flat ₹20.
    let pct = (price * Decimal::new(5, 4)).round_dp(2);
    assert_eq!(small.brokerage, pct, "{small:?}");
    assert_eq!(t.stt, Decimal::ZERO, "intraday STT is charged on sells only");
    let sell = c
        .brokerage(RELIANCE, 1000, Product::Delivery, TransactionType::Sell, price)
        .await
        .expect("brokerage");
    assert_eq!(sell.brokerage, Decimal::from(20), "capped at ₹20: {sell:?}");
    assert_eq!(sell.taxes.stamp_duty, Decimal::ZERO, "no stamp duty on a sell");
    assert!(sell.taxes.stt > Decimal::ZERO);
    assert!(sell.dp_plan.is_some_and(|p| !p.name.is_empty()));

    let err = c
        .brokerage("NSE_EQ|NOPE", 1, Product::Intraday, TransactionType::Buy, price)
        .await
        .expect_err("unknown instrument");
    assert!(err.has_code("UDAPI1026"), "{err}");
    sim.shutdown().await;
}
