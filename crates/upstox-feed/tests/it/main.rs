//! The streamer against an in-process simulator, with the simulator's faults.

mod alloc;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use upstox_client::{ClientConfig, Hosts, UpstoxClient};
use upstox_feed::tick::RequestMode;
use upstox_feed::{Diagnosis, EventStream, FeedError, FeedEvent, MarketStreamer, StaticToken, StreamerConfig};
use upstox_sim::{SimConfig, Simulator};
use upstox_types::FeedMode;

const RELIANCE: &str = "NSE_EQ|INE002A01018";
const NIFTY: &str = "NSE_INDEX|Nifty 50";

async fn sim() -> Simulator {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = SimConfig::default();
    config.feed.tick_interval_ms = 50;
    Simulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim")
}

fn client(sim: &Simulator) -> UpstoxClient {
    UpstoxClient::new(ClientConfig::new(Hosts::single(&sim.base_url()))).expect("client")
}

fn fast() -> StreamerConfig {
    StreamerConfig {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..StreamerConfig::default()
    }
}

async fn control(sim: &Simulator, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/sim/feed", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("control");
    assert!(r.status().is_success());
}

/// Waits (generously) for an event matching `f`, collecting everything seen.
async fn until(events: &EventStream, seen: &mut Vec<FeedEvent>, f: impl Fn(&FeedEvent) -> bool) -> FeedEvent {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                Some(e) => {
                    seen.push(e.clone());
                    if f(&e) {
                        return e;
                    }
                }
                None => panic!("stream ended; saw {seen:#?}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out; saw {seen:#?}"))
}

fn ticks_of<'a>(e: &'a FeedEvent, key: &str) -> Option<&'a upstox_feed::Tick> {
    match e {
        FeedEvent::Ticks(t) => t.iter().find(|t| t.instrument_key == key),
        _ => None,
    }
}

#[tokio::test]
async fn streams_ticks_and_restores_every_subscription_after_a_drop() {
    let sim = sim().await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let (streamer, events) = MarketStreamer::start(client(&sim), StaticToken(token.into()), fast());
    streamer.subscribe(&[RELIANCE], FeedMode::Full).expect("sub full");
    streamer.subscribe(&[NIFTY], FeedMode::Ltpc).expect("sub ltpc");
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, FeedEvent::Connected { attempt: 1 })).await;
    until(&events, &mut seen, |e| matches!(e, FeedEvent::MarketInfo(_))).await;
    let e = until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    let t = ticks_of(&e, RELIANCE).expect("tick");
    assert_eq!(t.mode, RequestMode::FullD5);
    assert!(t.best().is_some_and(|q| q.bid < q.ask));
    until(&events, &mut seen, |e| {
        ticks_of(e, NIFTY).is_some_and(|t| t.mode == RequestMode::Ltpc)
    })
    .await;

    // The simulator drops every connection without a close frame.
    control(&sim, serde_json::json!({"drop": true})).await;
    until(&events, &mut seen, |e| matches!(e, FeedEvent::Reconnecting { .. })).await;
    until(&events, &mut seen, |e| matches!(e, FeedEvent::Connected { attempt: 2 })).await;
    seen.clear();
    until(&events, &mut seen, |e| {
        ticks_of(e, RELIANCE).is_some_and(|t| t.mode == RequestMode::FullD5)
    })
    .await;
    until(&events, &mut seen, |e| {
        ticks_of(e, NIFTY).is_some_and(|t| t.mode == RequestMode::Ltpc)
    })
    .await;

    // change_mode and unsubscribe apply on the live connection.
    streamer.change_mode(&[NIFTY], FeedMode::Full).expect("change mode");
    until(&events, &mut seen, |e| {
        ticks_of(e, NIFTY).is_some_and(|t| t.mode == RequestMode::FullD5)
    })
    .await;
    streamer.unsubscribe(&[RELIANCE]);
    assert_eq!(streamer.subscriptions().len(), 1);
    streamer.shutdown().await;
    assert!(
        events.next().await.is_none() || events.next().await.is_none(),
        "stream ends after shutdown"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stalled_connection_is_detected_and_replaced() {
    let sim = sim().await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let config = StreamerConfig {
        stall_timeout: Duration::from_millis(800),
        ..fast()
    };
    let (streamer, events) = MarketStreamer::start(client(&sim), StaticToken(token.into()), config);
    streamer.subscribe(&[RELIANCE], FeedMode::Ltpc).expect("sub");
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    control(&sim, serde_json::json!({"stall": true})).await;
    let e = until(&events, &mut seen, |e| matches!(e, FeedEvent::Reconnecting { .. })).await;
    let FeedEvent::Reconnecting { reason, .. } = e else {
        unreachable!()
    };
    assert!(reason.contains("stalled"), "{reason}");
    control(&sim, serde_json::json!({"stall": false})).await;
    seen.clear();
    until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    streamer.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn unauthorized_and_forbidden_stop_with_a_diagnosis_instead_of_retrying() {
    let sim = sim().await;
    let (_s, events) = MarketStreamer::start(client(&sim), StaticToken("not-a-token".into()), fast());
    let mut seen = Vec::new();
    let e = until(&events, &mut seen, |e| matches!(e, FeedEvent::Stopped(_))).await;
    assert!(matches!(e, FeedEvent::Stopped(Diagnosis::Unauthorized { .. })), "{e:?}");
    assert!(
        !seen.iter().any(|e| matches!(e, FeedEvent::Reconnecting { .. })),
        "no reconnect storm: {seen:?}"
    );
    assert!(events.next().await.is_none());

    control(&sim, serde_json::json!({"refuse": 403})).await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let (_s, events) = MarketStreamer::start(client(&sim), StaticToken(token.into()), fast());
    let e = until(&events, &mut Vec::new(), |e| matches!(e, FeedEvent::Stopped(_))).await;
    let FeedEvent::Stopped(d) = e else { unreachable!() };
    assert!(matches!(d, Diagnosis::Forbidden { .. }), "{d:?}");
    assert!(d.to_string().contains("connection limit") || d.to_string().contains("maximum number of feed connections"));
    control(&sim, serde_json::json!({"refuse": null})).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_third_connection_of_a_user_is_refused_403() {
    let sim = sim().await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let mut keep = Vec::new();
    for _ in 0..2 {
        let (s, events) = MarketStreamer::start(client(&sim), StaticToken(token.clone().into()), fast());
        until(&events, &mut Vec::new(), |e| matches!(e, FeedEvent::MarketInfo(_))).await;
        keep.push((s, events));
    }
    let (_third, events) = MarketStreamer::start(client(&sim), StaticToken(token.into()), fast());
    let e = until(&events, &mut Vec::new(), |e| matches!(e, FeedEvent::Stopped(_))).await;
    assert!(
        matches!(e, FeedEvent::Stopped(Diagnosis::Forbidden { ref detail }) if detail.contains("403")),
        "{e:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_replaced_token_is_used_on_the_next_connect() {
    let sim = sim().await;
    let first = sim.token_of("SIM001").expect("token").to_owned();
    let current = Arc::new(Mutex::new(first));
    let source = {
        let current = current.clone();
        move || Some(secrecy::SecretString::from(current.lock().clone()))
    };
    let (streamer, events) = MarketStreamer::start(client(&sim), source, fast());
    streamer.subscribe(&[RELIANCE], FeedMode::Ltpc).expect("sub");
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    // A new login revokes the first token; the source now answers the new one.
    let issued = {
        let now = sim.state().now();
        sim.state().auth.lock().issue("SIM001", "sim-app-1", now)
    };
    *current.lock() = issued.access_token;
    control(&sim, serde_json::json!({"drop": true})).await;
    until(&events, &mut seen, |e| matches!(e, FeedEvent::Connected { attempt: 2 })).await;
    seen.clear();
    until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    streamer.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_waits_for_a_new_one_instead_of_stopping_when_asked() {
    let sim = sim().await;
    let current = Arc::new(Mutex::new("revoked-or-expired".to_owned()));
    let source = {
        let current = current.clone();
        move || Some(secrecy::SecretString::from(current.lock().clone()))
    };
    let config = StreamerConfig {
        await_new_token: Some(Duration::from_millis(50)),
        ..fast()
    };
    let (streamer, events) = MarketStreamer::start(client(&sim), source, config);
    streamer.subscribe(&[RELIANCE], FeedMode::Ltpc).expect("sub");
    let mut seen = Vec::new();
    let e = until(&events, &mut seen, |e| matches!(e, FeedEvent::WaitingForToken { .. })).await;
    assert!(
        matches!(e, FeedEvent::WaitingForToken { ref reason } if reason.contains("401")),
        "{e:?}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, FeedEvent::Reconnecting { .. })),
        "no retries with the refused token: {seen:?}"
    );
    // A login elsewhere puts a new token where the source reads it.
    *current.lock() = sim.token_of("SIM001").expect("token").to_owned();
    seen.clear();
    until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    streamer.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn caps_are_checked_before_the_server_would_drop_keys_silently() {
    let sim = sim().await;
    let (streamer, _events) = MarketStreamer::start(client(&sim), StaticToken("t".into()), fast());
    let many: Vec<String> = (0..5001).map(|i| format!("NSE_FO|{}", 100_000 + i)).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = streamer
        .subscribe(&refs, FeedMode::Ltpc)
        .expect_err("over the ltpc cap");
    assert!(
        matches!(
            e,
            FeedError::CapExceeded {
                cap: 5000,
                mixed: false,
                ..
            }
        ),
        "{e}"
    );
    streamer
        .subscribe(&refs[..2001], FeedMode::Ltpc)
        .expect("2001 ltpc alone is fine");
    let e = streamer
        .subscribe(&[RELIANCE], FeedMode::Full)
        .expect_err("mixing drops the ltpc cap to 2000");
    assert!(
        matches!(
            e,
            FeedError::CapExceeded {
                cap: 2000,
                mixed: true,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("dropped") || e.to_string().contains("drop"),
        "{e}"
    );
    assert!(matches!(
        streamer.subscribe(&["RELIANCE"], FeedMode::Ltpc),
        Err(FeedError::InvalidKey(_))
    ));
    assert_eq!(streamer.subscriptions().len(), 2001, "a refused call changes nothing");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_portfolio_streamer_delivers_typed_order_and_position_updates_in_order() {
    use upstox_client::orders::PlaceOrderRequest;
    use upstox_feed::{PortfolioStreamer, PortfolioUpdate, UpdateTypes};
    use upstox_types::{OrderStatus, Product, TransactionType};

    let sim = sim().await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let types = UpdateTypes {
        position: true,
        ..UpdateTypes::default()
    };
    let (streamer, events) = PortfolioStreamer::start(client(&sim), StaticToken(token.clone().into()), types, fast());
    until(&events, &mut Vec::new(), |e| matches!(e, FeedEvent::Connected { .. })).await;
    let placed = client(&sim)
        .with_token(token.into())
        .place_order_v3(&PlaceOrderRequest::market(
            RELIANCE,
            TransactionType::Buy,
            2,
            Product::Intraday,
        ))
        .await
        .expect("place");
    let mut seen = Vec::new();
    until(
        &events,
        &mut seen,
        |e| matches!(e, FeedEvent::Portfolio(PortfolioUpdate::Order(o)) if o.status == OrderStatus::Complete),
    )
    .await;
    until(
        &events,
        &mut seen,
        |e| matches!(e, FeedEvent::Portfolio(PortfolioUpdate::Position(p)) if p.quantity == 2),
    )
    .await;
    let statuses: Vec<OrderStatus> = seen
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Portfolio(PortfolioUpdate::Order(o)) if o.order_id == placed.order_ids[0] => {
                Some(o.status.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(statuses.last(), Some(&OrderStatus::Complete), "{statuses:?}");
    streamer.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_portfolio_streamer_delivers_typed_gtt_updates() {
    use rust_decimal::Decimal;
    use upstox_client::gtt::{GttRule, PlaceGttRequest};
    use upstox_feed::{PortfolioStreamer, PortfolioUpdate, UpdateTypes};
    use upstox_types::{GttRuleStatus, GttStrategy, GttTriggerType, Product, TransactionType};

    let sim = sim().await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let types = UpdateTypes {
        order: false,
        gtt_order: true,
        ..UpdateTypes::default()
    };
    let (streamer, events) = PortfolioStreamer::start(client(&sim), StaticToken(token.clone().into()), types, fast());
    until(&events, &mut Vec::new(), |e| matches!(e, FeedEvent::Connected { .. })).await;
    let ids = client(&sim)
        .with_token(token.into())
        .place_gtt(&PlaceGttRequest::new(
            RELIANCE,
            TransactionType::Buy,
            1,
            Product::Intraday,
            vec![GttRule::new(
                GttStrategy::Entry,
                GttTriggerType::Immediate,
                Decimal::ZERO,
            )],
        ))
        .await
        .expect("place a GTT");
    let mut seen = Vec::new();
    let done = until(
        &events,
        &mut seen,
        |e| matches!(e, FeedEvent::Portfolio(PortfolioUpdate::Gtt(g)) if g.rules[0].status == GttRuleStatus::Completed),
    )
    .await;
    let FeedEvent::Portfolio(PortfolioUpdate::Gtt(g)) = done else {
        panic!("a GTT update: {done:?}");
    };
    assert_eq!(g.gtt_order_id, ids[0]);
    assert!(g.rules[0].order_id.is_some(), "the order it placed: {g:?}");
    assert!(
        seen.iter()
            .all(|e| !matches!(e, FeedEvent::Portfolio(PortfolioUpdate::Order(_)))),
        "only the asked-for updates"
    );
    streamer.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn two_consumers_of_one_stream_each_get_every_tick() {
    let sim = sim().await;
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let (streamer, dashboard) = MarketStreamer::start(client(&sim), StaticToken(token.into()), fast());
    let strategy = streamer.events(upstox_feed::Policy::Lossless { capacity: 10_000 });
    streamer.subscribe(&[RELIANCE, NIFTY], FeedMode::Ltpc).expect("sub");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // Neither consumer takes the other's ticks: both see both instruments.
    for (events, seen) in [(&dashboard, &mut a), (&strategy, &mut b)] {
        until(events, seen, |e| ticks_of(e, RELIANCE).is_some()).await;
        until(events, seen, |e| ticks_of(e, NIFTY).is_some()).await;
    }
    assert_eq!(strategy.dropped_ticks(), 0, "a consumer that keeps up loses nothing");
    streamer.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_feeds_candles_are_the_rest_apis_candles() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = SimConfig::default();
    // Mid-session, and a clock that stands still: the feed and REST read one instant.
    config.clock.session_start = "13:07".into();
    config.clock.speed = 1e-9;
    let sim = Simulator::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim");
    let token = sim.token_of("SIM001").expect("token").to_owned();
    let rest = client(&sim).for_user("SIM001", token.clone().into());
    let (streamer, events) = MarketStreamer::start(client(&sim), StaticToken(token.into()), fast());
    streamer.subscribe(&[RELIANCE], FeedMode::Full).expect("sub full");
    let mut seen = Vec::new();
    let e = until(&events, &mut seen, |e| ticks_of(e, RELIANCE).is_some()).await;
    let Some(upstox_feed::TickData::Full(full)) = ticks_of(&e, RELIANCE).map(|t| t.data.clone()) else {
        panic!("a full-mode tick: {e:?}");
    };
    let candle = |interval: upstox_feed::tick::Interval| {
        full.candles
            .iter()
            .rev()
            .find(|c| c.interval == interval)
            .cloned()
            .unwrap_or_else(|| panic!("a {interval:?} candle in {:?}", full.candles))
    };
    let quote = rest.full_quote(&[RELIANCE]).await.expect("quote");
    let day = quote["NSE_EQ:RELIANCE"].ohlc.expect("day");
    let d = candle(upstox_feed::tick::Interval::Day);
    assert_eq!(
        (d.open, d.high, d.low, d.close),
        (day.open, day.high, day.low, day.close)
    );
    for (interval, unit) in [
        (upstox_feed::tick::Interval::OneMinute, 1),
        (upstox_feed::tick::Interval::ThirtyMinutes, 30),
    ] {
        let history = rest
            .intraday_candles(RELIANCE, upstox_client::market::CandleUnit::Minutes(unit))
            .await
            .expect("intraday");
        let h = &history[0];
        let start = chrono::DateTime::parse_from_rfc3339(&h.0)
            .expect("time")
            .timestamp_millis();
        let f = candle(interval.clone());
        assert_eq!(
            (f.ts, f.open, f.high, f.low, f.close, f.volume),
            (start, h.1, h.2, h.3, h.4, h.5 as i64),
            "{interval:?}: the feed's live candle is the newest history candle"
        );
    }
    streamer.shutdown().await;
    sim.shutdown().await;
}
