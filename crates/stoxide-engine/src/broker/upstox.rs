//! The broker that is Upstox (or the simulator): the real client acting for one account, with
//! that account's token, the process's one rate limiter (a budget per user and API category),
//! the configured egress address and each strategy's `X-Algo-Name`.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use secrecy::SecretString;
use stoxide_app::clients::Clients;
use upstox_client::charges::MarginLeg;
use upstox_client::orders::{PlaceOrderRequest, Reconciled, reconcile};
use upstox_client::{Error as ClientError, UpstoxClient};
use upstox_feed::{FeedEvent, PortfolioStreamer, PortfolioUpdate, StaticToken, StreamerConfig, UpdateTypes};
use upstox_types::{InstrumentKey, OrderType, Product, Segment, TransactionType, Validity};

use super::{AccountRef, Broker, BrokerError, BrokerErrorKind, Brokers, Found, OrderRequest, Placement};
use crate::intent::OrderView;

/// Makes Upstox brokers from the process's clients.
#[derive(Debug, Clone)]
pub struct UpstoxBrokers {
    clients: Clients,
    order_stream: bool,
}

impl UpstoxBrokers {
    /// Brokers from `clients` (which carry the limiter, the egress address and the timeouts).
    pub fn new(clients: Clients) -> Self {
        Self {
            clients,
            order_stream: true,
        }
    }

    /// Whether each account's broker listens to its portfolio stream for order updates (on by
    /// default; the order book is polled either way).
    #[must_use]
    pub fn with_order_stream(mut self, on: bool) -> Self {
        self.order_stream = on;
        self
    }
}

impl Brokers for UpstoxBrokers {
    fn broker(&self, account: &AccountRef, token: SecretString) -> Result<Arc<dyn Broker>, BrokerError> {
        let client = self
            .clients
            .for_user(&account.base_url, &account.id, token.clone())
            .map_err(|e| BrokerError {
                kind: BrokerErrorKind::Refused,
                message: e.to_string(),
            })?;
        let (stream, updates) = if self.order_stream {
            match self.clients.client(&account.base_url) {
                Ok(anonymous) => {
                    let (streamer, events) = PortfolioStreamer::start(
                        anonymous,
                        StaticToken(token),
                        UpdateTypes::default(),
                        StreamerConfig::default(),
                    );
                    let (tx, rx) = tokio::sync::mpsc::channel(64);
                    tokio::spawn(async move {
                        while let Some(event) = events.next().await {
                            match event {
                                FeedEvent::Portfolio(PortfolioUpdate::Order(o)) => {
                                    // A full queue already holds a nudge: this one adds nothing.
                                    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                                        tx.try_send(o.order_id)
                                    {
                                        break;
                                    }
                                }
                                FeedEvent::Stopped(_) => break,
                                _ => {}
                            }
                        }
                    });
                    (Some(streamer), Some(rx))
                }
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };
        Ok(Arc::new(UpstoxBroker {
            client,
            _stream: stream,
            updates: parking_lot::Mutex::new(updates),
        }))
    }
}

/// One account at Upstox.
#[derive(Debug)]
pub struct UpstoxBroker {
    client: UpstoxClient,
    /// The account's portfolio stream, ended with the broker.
    _stream: Option<PortfolioStreamer>,
    updates: parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
}

fn wire(order: &OrderRequest) -> PlaceOrderRequest {
    PlaceOrderRequest {
        quantity: order.quantity,
        product: order.product,
        validity: Validity::Day,
        price: Decimal::ZERO,
        tag: Some(order.tag.clone()),
        instrument_token: order.instrument.to_string(),
        order_type: OrderType::Market,
        transaction_type: order.side,
        disclosed_quantity: 0,
        trigger_price: Decimal::ZERO,
        is_amo: false,
        market_protection: Some(order.market_protection),
        slice: order.slice.then_some(true),
    }
}

/// Upstox's first error code and message of an API error.
fn first_error(e: &ClientError) -> (Option<String>, String) {
    match e {
        ClientError::Api { errors, .. } => {
            let code = errors.iter().find_map(|x| x.error_code.clone());
            let message = errors
                .iter()
                .find_map(|x| x.message.clone())
                .unwrap_or_else(|| e.to_string());
            (code, message)
        }
        other => (None, other.to_string()),
    }
}

fn broker_error(e: &ClientError) -> BrokerError {
    let kind = if e.is_unauthorized() {
        BrokerErrorKind::Unauthorized
    } else if e.is_rate_limited() {
        BrokerErrorKind::RateLimited
    } else if e.status().is_some_and(|s| (400..500).contains(&s)) {
        BrokerErrorKind::Refused
    } else {
        BrokerErrorKind::Unavailable
    };
    let (code, message) = first_error(e);
    BrokerError {
        kind,
        message: match code {
            Some(c) => format!("{c}: {message}"),
            None => message,
        },
    }
}

/// An order as the engine reads it.
fn view_of(o: upstox_client::orders::Order) -> OrderView {
    OrderView {
        order_id: o.order_id,
        tag: o.tag,
        status: o.status,
        quantity: o.quantity,
        filled: o.filled_quantity,
        average_price: o.average_price,
        message: o.status_message,
    }
}

impl Broker for UpstoxBroker {
    fn place<'a>(&'a self, order: &'a OrderRequest) -> BoxFuture<'a, Placement> {
        async move {
            let client = self.client.with_algo_name(&order.algo_name);
            match client.place_order_v3_once(&wire(order)).await {
                Ok(placed) => Placement::Placed {
                    order_ids: placed.order_ids,
                },
                Err(e) if e.is_unauthorized() => Placement::Unauthorized { message: e.to_string() },
                Err(e) if e.is_rate_limited() => Placement::RateLimited { message: e.to_string() },
                Err(e) if e.outcome_unknown() => Placement::Unknown { why: e.to_string() },
                Err(e) => {
                    let (code, message) = first_error(&e);
                    match e.status() {
                        Some(status) if (400..500).contains(&status) => Placement::Refused { status, code, message },
                        // Anything else leaves the outcome open: the order book decides.
                        _ => Placement::Unknown { why: e.to_string() },
                    }
                }
            }
        }
        .boxed()
    }

    fn find<'a>(&'a self, order: &'a OrderRequest) -> BoxFuture<'a, Result<Found, BrokerError>> {
        async move {
            let book = self.client.order_book().await.map_err(|e| broker_error(&e))?;
            // The tag is the intent's own: no earlier order of the day carries it.
            Ok(
                match reconcile(&wire(order), &book, &std::collections::HashSet::new()) {
                    Reconciled::Found(ids) => Found::Orders(ids),
                    Reconciled::NotFound => Found::Nothing,
                    Reconciled::Mismatch(why) => Found::Mismatch(why),
                },
            )
        }
        .boxed()
    }

    fn orders(&self) -> BoxFuture<'_, Result<Vec<OrderView>, BrokerError>> {
        async move {
            let book = self.client.order_book().await.map_err(|e| broker_error(&e))?;
            Ok(book.into_iter().map(view_of).collect())
        }
        .boxed()
    }

    fn orders_by_id<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<OrderView>, BrokerError>> {
        async move {
            let mut views = Vec::with_capacity(ids.len());
            for id in ids {
                let order = self.client.order_details(id).await.map_err(|e| broker_error(&e))?;
                views.push(view_of(order));
            }
            Ok(views)
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        async move {
            self.client
                .cancel_order(order_id)
                .await
                .map(drop)
                .map_err(|e| broker_error(&e))
        }
        .boxed()
    }

    fn available_margin(&self) -> BoxFuture<'_, Result<Decimal, BrokerError>> {
        async move {
            let funds = self.client.funds_v2(None).await.map_err(|e| broker_error(&e))?;
            Ok(funds.equity.map_or(Decimal::ZERO, |e| e.available_margin))
        }
        .boxed()
    }

    fn margin<'a>(
        &'a self,
        instrument: &'a InstrumentKey,
        quantity: u64,
        product: Product,
        side: TransactionType,
    ) -> BoxFuture<'a, Result<Decimal, BrokerError>> {
        async move {
            let leg = MarginLeg {
                instrument_key: instrument.to_string(),
                quantity,
                product,
                transaction_type: side,
                price: Decimal::ZERO,
            };
            let report = self.client.margin(&[leg]).await.map_err(|e| broker_error(&e))?;
            Ok(report.final_margin)
        }
        .boxed()
    }

    fn order_updates(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.updates.lock().take()
    }

    fn market_open(&self, segment: Segment) -> BoxFuture<'_, Result<bool, BrokerError>> {
        async move {
            let status = self
                .client
                .market_status(segment.order_exchange())
                .await
                .map_err(|e| broker_error(&e))?;
            Ok(status.status == "NORMAL_OPEN")
        }
        .boxed()
    }
}
