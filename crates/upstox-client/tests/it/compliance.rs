//! The regulatory rules of order APIs: the exchange-registered algo name in `X-Algo-Name`, the
//! app's static-IP allowlist against the address requests leave from, and many seeded users.

use upstox_client::orders::PlaceOrderRequest;
use upstox_client::{ClientConfig, Hosts, UpstoxClient};
use upstox_sim::SimConfig;
use upstox_types::{Product, TransactionType};

use crate::orders::RELIANCE;
use crate::{client_for, start};

fn one_share() -> PlaceOrderRequest {
    PlaceOrderRequest::market(RELIANCE, TransactionType::Buy, 1, Product::Intraday)
}

#[tokio::test]
async fn order_calls_carry_the_algo_name_and_a_wrong_one_is_refused() {
    let (sim, c) = start(SimConfig {
        algo_names: Some(vec!["STOXIDE-RSI".into()]),
        ..SimConfig::default()
    })
    .await;
    let err = c
        .with_algo_name("NOT-REGISTERED")
        .place_order_v3(&one_share())
        .await
        .expect_err("wrong algo name");
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(err.has_code("UDAPI1156"), "{err}");
    assert!(err.to_string().contains("NOT-REGISTERED"), "{err}");
    let book = c.order_book().await.expect("book");
    assert!(book.is_empty(), "a refused order is not in the book: {book:?}");

    let registered = c.with_algo_name("STOXIDE-RSI");
    registered.place_order_v3(&one_share()).await.expect("registered algo");
    // Reads carry no algo name and are never refused for it.
    assert_eq!(registered.order_book().await.expect("book").len(), 1);
    c.place_order_v3(&one_share())
        .await
        .expect("no header: an unregistered algo");
    sim.shutdown().await;
}

#[tokio::test]
async fn order_calls_from_an_address_off_the_allowlist_are_refused() {
    let mut config = SimConfig::default();
    let whitelisted: std::net::IpAddr = "127.0.0.2".parse().expect("ip");
    for app in &mut config.apps {
        app.static_ips = Some(vec![whitelisted]);
    }
    let (sim, from_default) = start(config).await;
    let err = from_default
        .place_order_v3(&one_share())
        .await
        .expect_err("127.0.0.1 is not whitelisted");
    assert_eq!(err.status(), Some(403), "{err}");
    assert!(err.has_code("UDAPI1154"), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    // Reads are not order APIs.
    assert!(from_default.order_book().await.expect("book").is_empty());

    let token = sim.token_of("SIM001").expect("user").to_owned();
    let from_static = UpstoxClient::new(ClientConfig {
        local_address: Some(whitelisted),
        ..ClientConfig::new(Hosts::single(&sim.base_url()))
    })
    .expect("client")
    .for_user("SIM001", token.into());
    from_static
        .place_order_v3(&one_share())
        .await
        .expect("from the static IP");
    assert_eq!(from_static.order_book().await.expect("book").len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn seeded_users_each_have_a_token_and_their_own_book() {
    let (sim, first) = start(SimConfig {
        seed_users: 300,
        ..SimConfig::default()
    })
    .await;
    let banner = sim.banner();
    assert_eq!(banner["seeded_users"], 300);
    let listed = banner["users"].as_array().map_or(0, Vec::len);
    assert!(listed < 10, "seeded users are counted, not listed: {listed}");
    let last = client_for(&sim, "SIMU00300");
    assert_eq!(last.profile().await.expect("profile").user_id, "SIMU00300");
    last.place_order_v3(&one_share()).await.expect("place");
    assert_eq!(last.order_book().await.expect("book").len(), 1);
    assert!(first.order_book().await.expect("book").is_empty(), "books are per user");
    assert!(sim.token_of("SIMU00301").is_none());
    sim.shutdown().await;
}
