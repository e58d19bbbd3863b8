//! The paper broker: the same path as a live order up to the broker, then fills in-process
//! against the live prices of the market stream, with the simulator's fill rule
//! ([`upstox_types::fill`]) — so a client can forward-test a strategy on real prices before going
//! live. Each account has its own paper book and capital.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use secrecy::SecretString;
use upstox_types::fill::{Touch, fill_price};
use upstox_types::{InstrumentKey, OrderStatus, OrderType, Product, Segment, TransactionType};

use super::{AccountRef, Broker, BrokerError, Brokers, Found, OrderRequest, Placement};
use crate::intent::OrderView;
use crate::positions::{Position, apply_fill};

/// How long after its last tick a segment still counts as open.
const OPEN_WHILE_TICKING: Duration = Duration::from_secs(300);

/// The last prices of the market stream, shared by everything that needs them.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    inner: Arc<RwLock<PricesInner>>,
}

#[derive(Debug, Default)]
struct PricesInner {
    touch: HashMap<InstrumentKey, Touch>,
    segment_seen: HashMap<Segment, Instant>,
}

impl Prices {
    /// Records a price; `bid`/`ask` when the feed gave depth.
    pub fn update(&self, key: &InstrumentKey, last: f64, bid: Option<f64>, ask: Option<f64>) {
        if !(last.is_finite() && last > 0.0) {
            return;
        }
        let touch = match (bid, ask) {
            (Some(b), Some(a)) if b > 0.0 && a >= b => Touch { last, bid: b, ask: a },
            _ => Touch {
                last,
                bid: last,
                ask: last,
            },
        };
        let mut inner = self.inner.write();
        inner.touch.insert(key.clone(), touch);
        inner.segment_seen.insert(key.segment(), Instant::now());
    }

    /// The touch of `key`, if a price came.
    pub fn touch(&self, key: &InstrumentKey) -> Option<Touch> {
        self.inner.read().touch.get(key).copied()
    }

    /// The last price of `key` as a decimal.
    pub fn last(&self, key: &InstrumentKey) -> Option<Decimal> {
        self.touch(key)
            .and_then(|t| Decimal::from_f64(t.last))
            .map(|d| d.round_dp(2))
    }

    fn ticking(&self, segment: Segment) -> bool {
        self.inner
            .read()
            .segment_seen
            .get(&segment)
            .is_some_and(|t| t.elapsed() < OPEN_WHILE_TICKING)
    }
}

/// Margin fractions of notional, as the simulator's defaults.
fn margin_fraction(instrument: &InstrumentKey, product: Product) -> Decimal {
    match instrument.segment() {
        Segment::NseEq | Segment::BseEq if product == Product::Delivery => Decimal::ONE,
        Segment::NseEq | Segment::BseEq => Decimal::new(20, 2),
        _ => Decimal::new(12, 2),
    }
}

#[derive(Debug, Default)]
struct PaperAccount {
    orders: Vec<OrderView>,
    positions: HashMap<(InstrumentKey, Product), Position>,
}

/// Paper brokers sharing one price source; each account starts with `capital`.
#[derive(Debug, Clone)]
pub struct PaperBrokers {
    prices: Prices,
    capital: Decimal,
    accounts: Arc<Mutex<HashMap<String, PaperAccount>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl PaperBrokers {
    pub fn new(prices: Prices, capital: Decimal) -> Self {
        Self {
            prices,
            capital,
            accounts: Arc::default(),
            next_id: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl Brokers for PaperBrokers {
    fn broker(&self, account: &AccountRef, _token: SecretString) -> Result<Arc<dyn Broker>, BrokerError> {
        Ok(Arc::new(PaperBroker {
            account: account.id.clone(),
            shared: self.clone(),
        }))
    }
}

/// One account's paper book.
#[derive(Debug)]
pub struct PaperBroker {
    account: String,
    shared: PaperBrokers,
}

impl PaperBroker {
    fn today() -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&upstox_types::IST).date_naive()
    }

    fn used_and_realised(&self, acct: &PaperAccount) -> (Decimal, Decimal) {
        let today = Self::today();
        acct.positions
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(used, real), ((key, product), p)| {
                (
                    used + p.exposure(p.avg_price, 1) * margin_fraction(key, *product),
                    real + p.realised_on(today),
                )
            })
    }

    /// The account's orders that `keep` keeps.
    fn orders_where(&self, keep: impl Fn(&OrderView) -> bool) -> Vec<OrderView> {
        self.shared
            .accounts
            .lock()
            .get(&self.account)
            .map(|a| a.orders.iter().filter(|o| keep(o)).cloned().collect())
            .unwrap_or_default()
    }
}

impl Broker for PaperBroker {
    fn place<'a>(&'a self, order: &'a OrderRequest) -> BoxFuture<'a, Placement> {
        async move {
            let Some(touch) = self.shared.prices.touch(&order.instrument) else {
                return Placement::Refused {
                    status: 400,
                    code: None,
                    message: format!(
                        "paper: no live price for {} yet (paper fills need the market stream)",
                        order.instrument
                    ),
                };
            };
            let price = fill_price(OrderType::Market, order.side, 0.0, touch)
                .and_then(Decimal::from_f64)
                .map(|d| d.round_dp(2))
                .unwrap_or_default();
            let id = format!(
                "PAPER{:010}",
                self.shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut accounts = self.shared.accounts.lock();
            let acct = accounts.entry(self.account.clone()).or_default();
            let key = (order.instrument.clone(), order.product);
            let pos = acct.positions.get(&key).cloned().unwrap_or_default();
            let after = apply_fill(&pos, order.side, order.quantity, price, 1, Self::today());
            let (used, realised) = self.used_and_realised(acct);
            let extra = (after.exposure(after.avg_price, 1) - pos.exposure(pos.avg_price, 1))
                * margin_fraction(&order.instrument, order.product);
            let available = self.shared.capital + realised - used;
            let (status, filled, message) = if extra > available {
                (
                    OrderStatus::Rejected,
                    0,
                    Some(format!(
                        "paper: you need to add Rs. {:.2} to place this trade",
                        extra - available
                    )),
                )
            } else {
                acct.positions.insert(key, after);
                (OrderStatus::Complete, order.quantity, None)
            };
            acct.orders.push(OrderView {
                order_id: id.clone(),
                tag: Some(order.tag.clone()),
                status,
                quantity: order.quantity,
                filled,
                average_price: if filled > 0 { price } else { Decimal::ZERO },
                message,
            });
            Placement::Placed { order_ids: vec![id] }
        }
        .boxed()
    }

    fn find<'a>(&'a self, order: &'a OrderRequest) -> BoxFuture<'a, Result<Found, BrokerError>> {
        async move {
            let accounts = self.shared.accounts.lock();
            let ids: Vec<String> = accounts
                .get(&self.account)
                .map(|a| {
                    a.orders
                        .iter()
                        .filter(|o| o.tag.as_deref() == Some(order.tag.as_str()))
                        .map(|o| o.order_id.clone())
                        .collect()
                })
                .unwrap_or_default();
            Ok(if ids.is_empty() {
                Found::Nothing
            } else {
                Found::Orders(ids)
            })
        }
        .boxed()
    }

    fn orders(&self) -> BoxFuture<'_, Result<Vec<OrderView>, BrokerError>> {
        async move { Ok(self.orders_where(|_| true)) }.boxed()
    }

    fn orders_by_id<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<OrderView>, BrokerError>> {
        async move { Ok(self.orders_where(|o| ids.contains(&o.order_id))) }.boxed()
    }

    fn cancel<'a>(&'a self, _order_id: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        // Paper orders fill or are rejected at once; nothing is ever open to cancel.
        async { Ok(()) }.boxed()
    }

    fn available_margin(&self) -> BoxFuture<'_, Result<Decimal, BrokerError>> {
        async move {
            let accounts = self.shared.accounts.lock();
            let (used, realised) = accounts
                .get(&self.account)
                .map_or((Decimal::ZERO, Decimal::ZERO), |a| self.used_and_realised(a));
            Ok(self.shared.capital + realised - used)
        }
        .boxed()
    }

    fn margin<'a>(
        &'a self,
        instrument: &'a InstrumentKey,
        quantity: u64,
        product: Product,
        _side: TransactionType,
    ) -> BoxFuture<'a, Result<Decimal, BrokerError>> {
        async move {
            let price = self.shared.prices.last(instrument).unwrap_or_default();
            Ok(price * Decimal::from(quantity) * margin_fraction(instrument, product))
        }
        .boxed()
    }

    fn market_open(&self, segment: Segment) -> BoxFuture<'_, Result<bool, BrokerError>> {
        async move { Ok(self.shared.prices.ticking(segment)) }.boxed()
    }
}
