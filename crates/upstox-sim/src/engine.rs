//! The paper-trading engine: orders, fills, positions, holdings and funds per user.
//!
//! MARKET orders fill at the touch (ask for a buy, bid for a sell); LIMIT orders fill when the
//! touch crosses their price; SL and SL-M wait in `trigger pending` until the last price crosses
//! the trigger. Margin is checked against available funds before an order is accepted; a
//! shortfall rejects the order with a status message like the real one. Positions, holdings
//! and funds are derived from fills.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use upstox_types::ist::order_timestamp;
use upstox_types::{OrderStatus, OrderType, Product, Segment, TransactionType, Validity};

use crate::config::{MarginConfig, SimConfig};
use crate::gtt::{Gtt, GttSpec, OrderOutcome};
use crate::market::Market;
use crate::market::universe::Kind;

/// A validated order request.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub instrument: u32,
    pub quantity: u64,
    pub product: Product,
    pub validity: Validity,
    pub price: f64,
    pub trigger_price: f64,
    pub order_type: OrderType,
    pub transaction_type: TransactionType,
    pub disclosed_quantity: u64,
    pub tag: Option<String>,
    pub is_amo: bool,
}

/// A change to an open order.
#[derive(Debug, Clone, Default)]
pub struct OrderChange {
    pub quantity: Option<u64>,
    pub validity: Option<Validity>,
    pub price: Option<f64>,
    pub order_type: Option<OrderType>,
    pub trigger_price: Option<f64>,
    pub disclosed_quantity: Option<u64>,
}

/// One order and its history.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_id: String,
    pub req: OrderRequest,
    pub status: OrderStatus,
    pub status_message: Option<String>,
    pub filled_quantity: u64,
    pub average_price: f64,
    pub placed_at: DateTime<Utc>,
    pub exchange_order_id: Option<String>,
    pub exchange_time: Option<DateTime<Utc>>,
    pub triggered: bool,
    /// Each state's JSON text (as text: a `Value` per state cost ~4 KB an order, which a
    /// 150,000-order simulator ran out of memory on).
    pub history: Vec<Box<str>>,
    /// The GTT whose rule placed this order.
    pub gtt: Option<String>,
}

impl Order {
    /// Appends the order's present state to its history.
    fn record(&mut self, market: &Market) {
        let state = order_json(market, self).to_string().into();
        self.history.push(state);
    }

    /// The history's states, oldest first, as JSON values.
    pub fn history_json(&self) -> impl Iterator<Item = Value> + '_ {
        // Written by `record` from a `Value`, so each parses back.
        self.history.iter().filter_map(|t| serde_json::from_str(t).ok())
    }
}

/// One fill.
#[derive(Debug, Clone)]
pub struct Trade {
    pub trade_id: String,
    pub order_id: String,
    pub instrument: u32,
    pub product: Product,
    pub order_type: OrderType,
    pub transaction_type: TransactionType,
    pub quantity: u64,
    pub price: f64,
    pub time: DateTime<Utc>,
    pub exchange_order_id: String,
    pub placed_at: DateTime<Utc>,
    /// The GTT whose rule placed the order.
    pub gtt: Option<String>,
}

/// `order_ref_id` on the wire: the GTT's id for an order a GTT placed.
fn order_ref_id(order_id: &str, gtt: Option<&String>) -> String {
    gtt.cloned().unwrap_or_else(|| format!("SIM-{order_id}"))
}

impl Trade {
    /// `order_ref_id` on the wire (as its order's).
    pub fn order_ref_id(&self) -> String {
        order_ref_id(&self.order_id, self.gtt.as_ref())
    }
}

#[derive(Debug, Clone, Default)]
struct Position {
    buy_qty: u64,
    buy_value: f64,
    sell_qty: u64,
    sell_value: f64,
}

impl Position {
    fn net(&self) -> i64 {
        self.buy_qty as i64 - self.sell_qty as i64
    }
    fn buy_avg(&self) -> f64 {
        if self.buy_qty == 0 {
            0.0
        } else {
            self.buy_value / self.buy_qty as f64
        }
    }
    fn sell_avg(&self) -> f64 {
        if self.sell_qty == 0 {
            0.0
        } else {
            self.sell_value / self.sell_qty as f64
        }
    }
    fn open_avg(&self) -> f64 {
        if self.net() >= 0 {
            self.buy_avg()
        } else {
            self.sell_avg()
        }
    }
    fn realised(&self, mult: f64) -> f64 {
        let matched = self.buy_qty.min(self.sell_qty) as f64;
        matched * (self.sell_avg() - self.buy_avg()) * mult
    }
}

#[derive(Debug, Clone)]
struct Holding {
    instrument: u32,
    /// Settled before the simulator started (the seeded holdings).
    quantity: u64,
    /// Delivery buys since: on their trade day they are positions only; the next trading day
    /// they show as `t1_quantity`; after it as `quantity` (T+1 settlement).
    bought: Vec<(chrono::NaiveDate, u64, f64)>,
    cnc_used_quantity: u64,
    /// Of the settled `quantity`.
    average_price: f64,
}

/// A holding as `/v2/portfolio/long-term-holdings` shows it on one day.
#[derive(Debug, Clone, Copy)]
struct HoldingView {
    instrument: u32,
    quantity: u64,
    t1_quantity: u64,
    cnc_used_quantity: u64,
    average_price: f64,
}

impl Holding {
    /// Everything held, today's delivery buys included (what a delivery sell may sell).
    fn sellable(&self) -> u64 {
        (self.quantity + self.bought.iter().map(|b| b.1).sum::<u64>()).saturating_sub(self.cnc_used_quantity)
    }

    /// As shown on `today` (a trading day), whose previous trading day is `previous`.
    fn view(&self, today: chrono::NaiveDate, previous: chrono::NaiveDate) -> HoldingView {
        let (mut settled, mut t1) = (self.quantity, 0u64);
        let mut value = self.average_price * self.quantity as f64;
        for &(day, qty, price) in &self.bought {
            if day >= today {
                continue;
            }
            if day >= previous {
                t1 += qty;
            } else {
                settled += qty;
            }
            value += price * qty as f64;
        }
        let shown = settled + t1;
        HoldingView {
            instrument: self.instrument,
            quantity: settled,
            t1_quantity: t1,
            cnc_used_quantity: self.cnc_used_quantity,
            average_price: if shown > 0 { r2(value / shown as f64) } else { 0.0 },
        }
    }
}

/// The trading day of the equity segment at `now`, and the one before it.
fn equity_days(market: &Market, now: DateTime<Utc>) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let today = market.calendar.session_day(Segment::NseEq, now);
    (today, market.calendar.previous_trading_day(today))
}

/// The margin one order needs, by component (rupees).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MarginParts {
    pub span: f64,
    pub exposure: f64,
    pub equity: f64,
    pub net_buy_premium: f64,
    pub total: f64,
}

/// One user's book.
#[derive(Debug, Clone)]
pub struct Account {
    opening_cash: f64,
    orders: Vec<Order>,
    by_id: HashMap<String, usize>,
    trades: Vec<Trade>,
    positions: BTreeMap<(u32, &'static str), Position>,
    holdings: BTreeMap<u32, Holding>,
    gtts: Vec<Gtt>,
    /// The exchanges the user may trade (the profile's `exchanges`); `None`: every one.
    exchanges: Option<Vec<String>>,
}

/// A portfolio update for the portfolio stream, serialised once for every connection of its user.
#[derive(Debug)]
pub struct PortfolioUpdate {
    /// `order`, `position`, `holding` or `gtt_order`.
    pub update_type: String,
    /// The JSON text sent.
    pub text: String,
}

/// Updates a connection may fall behind by before it skips some (it then reads the order book).
/// Each user with a connection has a buffer of this many slots allocated at once, so it is kept
/// small: 10,000 connected users at 1,024 slots had been half a gigabyte.
const UPDATES_PER_USER: usize = 128;

/// The portfolio stream's channels, one per user with a connection, so an update is built,
/// serialised and delivered only for the user it concerns (one channel for everyone made every
/// connection copy every user's updates: quadratic in users).
#[derive(Debug, Default)]
struct Updates(HashMap<String, broadcast::Sender<std::sync::Arc<PortfolioUpdate>>>);

impl Updates {
    fn subscribe(&mut self, user: &str) -> broadcast::Receiver<std::sync::Arc<PortfolioUpdate>> {
        self.0
            .entry(user.to_owned())
            .or_insert_with(|| broadcast::channel(UPDATES_PER_USER).0)
            .subscribe()
    }

    /// Whether the user has a connection open (else no update need be built).
    fn listening(&self, user: &str) -> bool {
        self.0.get(user).is_some_and(|tx| tx.receiver_count() > 0)
    }

    fn send(&self, user: &str, update: &Value) {
        if let Some(tx) = self.0.get(user).filter(|tx| tx.receiver_count() > 0) {
            let update_type = update
                .get("update_type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            // No subscriber left is not an error: the stream may just have closed.
            let _ = tx.send(std::sync::Arc::new(PortfolioUpdate {
                update_type,
                text: update.to_string(),
            }));
        }
    }
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    accounts: HashMap<String, Account>,
    margins: MarginConfig,
    next_order: u64,
    next_trade: u64,
    next_gtt: u64,
    updates: Updates,
}

/// Why an order cannot be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    NotFound,
    Terminal,
}

/// What a GTT modify may change.
#[derive(Debug, Clone)]
pub struct GttChange {
    pub kind: upstox_types::GttType,
    pub quantity: u64,
    pub rules: Vec<crate::gtt::RuleSpec>,
}

/// Why a GTT cannot be placed, changed or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GttError {
    NotFound,
    /// The request contradicts itself or the GTT's state; the message says how.
    Invalid(String),
}

/// `yymmdd` of `now` in IST, as Upstox's ids begin.
fn ist_date(now: DateTime<Utc>) -> impl std::fmt::Display {
    now.with_timezone(&upstox_types::IST).format("%y%m%d")
}

fn r2(x: f64) -> f64 {
    // `+ 0.0` turns -0.0 into 0.0 so JSON never shows "-0".
    (x * 100.0).round() / 100.0 + 0.0
}

/// Quantity multiplier: MCX quantities are lots.
fn multiplier(market: &Market, idx: u32) -> f64 {
    let inst = market.get(idx);
    if inst.segment == Segment::McxFo {
        f64::from(inst.lot())
    } else {
        1.0
    }
}

impl Engine {
    /// Accounts for every configured user, with a few seeded delivery holdings.
    pub fn new(config: &SimConfig, market: &Market) -> Self {
        let mut accounts = HashMap::new();
        for (u, user) in config.users.iter().enumerate() {
            let mut holdings = BTreeMap::new();
            for k in 0..3u32 {
                let key = market
                    .instruments()
                    .iter()
                    .position(|i| i.segment == Segment::NseEq)
                    .map(|p| p as u32 + 2 * (k + u as u32));
                if let Some(idx) = key {
                    let price = market.ltp(idx, Utc::now());
                    holdings.insert(
                        idx,
                        Holding {
                            instrument: idx,
                            quantity: 10 * u64::from(k + 1),
                            bought: Vec::new(),
                            cnc_used_quantity: 0,
                            average_price: r2(price * 0.95),
                        },
                    );
                }
            }
            accounts.insert(
                user.user_id.clone(),
                Account {
                    opening_cash: user.funds,
                    orders: Vec::new(),
                    by_id: HashMap::new(),
                    trades: Vec::new(),
                    positions: BTreeMap::new(),
                    holdings,
                    gtts: Vec::new(),
                    exchanges: user.exchanges.clone(),
                },
            );
        }
        Self {
            accounts,
            margins: config.market.margins.clone(),
            next_order: 1,
            next_trade: 1,
            next_gtt: 1,
            updates: Updates::default(),
        }
    }

    /// Subscribes to one user's portfolio updates.
    pub fn subscribe(&mut self, user: &str) -> broadcast::Receiver<std::sync::Arc<PortfolioUpdate>> {
        self.updates.subscribe(user)
    }

    pub fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.get(user)
    }

    fn margin_fraction(&self, market: &Market, idx: u32, product: Product, net_after: i64) -> (f64, bool) {
        let inst = market.get(idx);
        match inst.kind {
            Kind::Spot { .. } => (
                if product == Product::Intraday {
                    self.margins.intraday_equity
                } else {
                    self.margins.delivery_equity
                },
                false,
            ),
            Kind::Future { .. } if inst.segment == Segment::McxFo => (self.margins.commodity, false),
            Kind::Future { .. } => (self.margins.futures, false),
            Kind::Option { .. } if net_after < 0 => (self.margins.option_sell, true),
            Kind::Option { .. } => (self.margins.option_buy, false),
        }
    }

    /// Margin held by a net position of `net` units at `price`.
    fn position_margin(
        &self,
        market: &Market,
        idx: u32,
        product: Product,
        net: i64,
        price: f64,
        now: DateTime<Utc>,
    ) -> f64 {
        if net == 0 {
            return 0.0;
        }
        let (frac, on_underlying) = self.margin_fraction(market, idx, product, net);
        let inst = market.get(idx);
        if matches!(inst.kind, Kind::Spot { .. }) && product == Product::Delivery && net < 0 {
            // Selling delivery stock from holdings blocks no margin.
            return 0.0;
        }
        let ref_price = if on_underlying {
            market.underlying_price(idx, market.calendar.market_time(inst.segment, now))
        } else {
            price
        };
        net.unsigned_abs() as f64 * ref_price * frac * multiplier(market, idx)
    }

    fn used_margin(&self, market: &Market, acct: &Account, now: DateTime<Utc>) -> f64 {
        let positions: f64 = acct
            .positions
            .iter()
            .map(|((idx, prod), p)| {
                let product = prod.parse().unwrap_or(Product::Intraday);
                self.position_margin(market, *idx, product, p.net(), p.open_avg(), now)
            })
            .sum();
        let pending: f64 = acct
            .orders
            .iter()
            .filter(|o| !o.status.is_terminal())
            .map(|o| self.order_margin(market, acct, &o.req, now))
            .sum();
        positions + pending
    }

    /// Extra margin an order needs on top of what its position already holds.
    fn order_margin(&self, market: &Market, acct: &Account, req: &OrderRequest, now: DateTime<Utc>) -> f64 {
        let pos = acct
            .positions
            .get(&(req.instrument, req.product.as_str()))
            .cloned()
            .unwrap_or_default();
        let price = if req.order_type == OrderType::Limit || req.order_type == OrderType::StopLoss {
            req.price
        } else {
            market.ltp(req.instrument, now)
        };
        let before = self.position_margin(market, req.instrument, req.product, pos.net(), price, now);
        let after_net = pos.net() + req.transaction_type.sign() * req.quantity as i64;
        let after = self.position_margin(market, req.instrument, req.product, after_net, price, now);
        (after - before).max(0.0)
    }

    /// The margin each order of a basket needs on its own (a flat book, no hedge benefit), as
    /// `POST /v2/charges/margin` reports it — the same figure the order check blocks for it
    /// when the user holds no position in that instrument and product.
    pub fn basket_margin(&self, market: &Market, basket: &[OrderRequest], now: DateTime<Utc>) -> Vec<MarginParts> {
        basket
            .iter()
            .map(|req| {
                let price = if req.price > 0.0 {
                    req.price
                } else {
                    market.ltp(req.instrument, now)
                };
                let net = req.transaction_type.sign() * req.quantity as i64;
                let total = r2(self.position_margin(market, req.instrument, req.product, net, price, now));
                let inst = market.get(req.instrument);
                let mut parts = MarginParts {
                    total,
                    ..MarginParts::default()
                };
                match inst.kind {
                    Kind::Spot { .. } => parts.equity = total,
                    Kind::Option { .. } if net > 0 => parts.net_buy_premium = total,
                    // Derivatives: SPAN and exposure, split 80/20.
                    _ => {
                        parts.span = r2(total * 0.8);
                        parts.exposure = r2(total - parts.span);
                    }
                }
                parts
            })
            .collect()
    }

    fn realised(market: &Market, acct: &Account) -> f64 {
        acct.positions
            .iter()
            .map(|((idx, _), p)| p.realised(multiplier(market, *idx)))
            .sum()
    }

    /// (available margin, used margin, opening balance) of a user.
    pub fn funds(&self, market: &Market, user: &str, now: DateTime<Utc>) -> Option<(f64, f64, f64)> {
        let acct = self.accounts.get(user)?;
        let used = self.used_margin(market, acct, now);
        Some((
            r2(acct.opening_cash + Self::realised(market, acct) - used),
            r2(used),
            acct.opening_cash,
        ))
    }

    fn next_order_id(&mut self, now: DateTime<Utc>) -> String {
        self.next_order += 1;
        format!("{}01{:07}", ist_date(now), self.next_order - 1)
    }

    /// Places an order; answers its id. Rejections (freeze, price band, holdings, margin) are order states,
    /// as on the real API, not request errors.
    pub fn place(
        &mut self,
        market: &Market,
        user: &str,
        req: OrderRequest,
        now: DateTime<Utc>,
        freeze_checked: bool,
    ) -> Option<String> {
        self.place_for(market, user, req, now, freeze_checked, None)
    }

    fn place_for(
        &mut self,
        market: &Market,
        user: &str,
        req: OrderRequest,
        now: DateTime<Utc>,
        freeze_checked: bool,
        gtt: Option<String>,
    ) -> Option<String> {
        let order_id = self.next_order_id(now);
        let acct = self.accounts.get(user)?;
        let mut rejection = None;
        let inst = market.get(req.instrument);
        if !freeze_checked && inst.freeze_quantity.is_some_and(|f| req.quantity as f64 > f) {
            rejection = Some(format!(
                "Order quantity {} exceeds the freeze quantity {} of {}; place it with slice=true or in smaller orders.",
                req.quantity,
                inst.freeze_quantity.unwrap_or_default(),
                inst.trading_symbol
            ));
        }
        let exchange = inst.segment.order_exchange();
        if rejection.is_none()
            && acct
                .exchanges
                .as_ref()
                .is_some_and(|cleared| !cleared.iter().any(|e| e == exchange))
        {
            rejection = Some(format!(
                "Your account is not enabled for trading in the {exchange} segment; activate it with your broker."
            ));
        }
        if rejection.is_none() {
            rejection = outside_band(market, &req, now);
        }
        if rejection.is_none()
            && matches!(inst.kind, Kind::Spot { .. })
            && req.product == Product::Delivery
            && req.transaction_type == TransactionType::Sell
        {
            let held = acct.holdings.get(&req.instrument).map_or(0, Holding::sellable) as i64;
            let pending: i64 = acct
                .orders
                .iter()
                .filter(|o| {
                    !o.status.is_terminal()
                        && o.req.instrument == req.instrument
                        && o.req.product == Product::Delivery
                        && o.req.transaction_type == TransactionType::Sell
                })
                .map(|o| (o.req.quantity - o.filled_quantity) as i64)
                .sum();
            if (req.quantity as i64) > held - pending {
                rejection = Some(format!(
                    "Insufficient holdings: you can sell at most {} shares of {} in delivery.",
                    (held - pending).max(0),
                    inst.trading_symbol
                ));
            }
        }
        if rejection.is_none() {
            let required = self.order_margin(market, acct, &req, now);
            let used = self.used_margin(market, acct, now);
            let available = acct.opening_cash + Self::realised(market, acct) - used;
            if required > available {
                rejection = Some(format!(
                    "You need to add Rs. {:.2} in your account to place this trade.",
                    required - available
                ));
            }
        }
        let is_open = market.is_open(inst.segment, now);
        let mut order = Order {
            order_id: order_id.clone(),
            req: OrderRequest {
                is_amo: !is_open,
                ..req
            },
            status: OrderStatus::PutOrderReqReceived,
            status_message: None,
            filled_quantity: 0,
            average_price: 0.0,
            placed_at: now,
            exchange_order_id: None,
            exchange_time: None,
            triggered: false,
            history: Vec::new(),
            gtt,
        };
        let acct = self.accounts.get_mut(user)?;
        order.record(market);
        if let Some(message) = rejection {
            order.status = OrderStatus::Rejected;
            order.status_message = Some(message);
        } else {
            order.status = OrderStatus::ValidationPending;
            order.record(market);
            order.status = OrderStatus::OpenPending;
            order.record(market);
            order.exchange_order_id = Some(format!("13{:014}", self.next_order));
            order.exchange_time = Some(now);
            order.status = if !is_open {
                OrderStatus::AfterMarketOrderReqReceived
            } else if matches!(order.req.order_type, OrderType::StopLoss | OrderType::StopLossMarket) {
                OrderStatus::TriggerPending
            } else {
                OrderStatus::Open
            };
        }
        order.record(market);
        if self.updates.listening(user) {
            self.updates.send(user, &portfolio_order_update(market, user, &order));
        }
        acct.by_id.insert(order_id.clone(), acct.orders.len());
        acct.orders.push(order);
        self.match_user(market, user, now);
        Some(order_id)
    }

    fn order_mut<'a>(acct: &'a mut Account, order_id: &str) -> Result<&'a mut Order, OrderError> {
        let i = *acct.by_id.get(order_id).ok_or(OrderError::NotFound)?;
        Ok(&mut acct.orders[i])
    }

    /// Modifies an open order.
    ///
    /// # Errors
    /// Unknown order, or one already complete, rejected or cancelled.
    pub fn modify(
        &mut self,
        market: &Market,
        user: &str,
        order_id: &str,
        change: OrderChange,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        let acct = self.accounts.get_mut(user).ok_or(OrderError::NotFound)?;
        let order = Self::order_mut(acct, order_id)?;
        if order.status.is_terminal() {
            return Err(OrderError::Terminal);
        }
        order.status = OrderStatus::ModifyPending;
        order.record(market);
        let r = &mut order.req;
        if let Some(q) = change.quantity {
            r.quantity = q.max(order.filled_quantity + 1);
        }
        if let Some(v) = change.validity {
            r.validity = v;
        }
        if let Some(p) = change.price {
            r.price = p;
        }
        if let Some(t) = change.order_type {
            r.order_type = t;
        }
        if let Some(t) = change.trigger_price {
            r.trigger_price = t;
        }
        if let Some(d) = change.disclosed_quantity {
            r.disclosed_quantity = d;
        }
        order.status = OrderStatus::Modified;
        order.record(market);
        order.status = if order.req.is_amo {
            OrderStatus::AfterMarketOrderReqReceived
        } else if matches!(order.req.order_type, OrderType::StopLoss | OrderType::StopLossMarket) && !order.triggered {
            OrderStatus::TriggerPending
        } else {
            OrderStatus::Open
        };
        order.record(market);
        if self.updates.listening(user) {
            self.updates.send(user, &portfolio_order_update(market, user, order));
        }
        self.match_user(market, user, now);
        Ok(())
    }

    /// Cancels an open order.
    ///
    /// # Errors
    /// Unknown order, or one already complete, rejected or cancelled.
    pub fn cancel(&mut self, market: &Market, user: &str, order_id: &str) -> Result<(), OrderError> {
        let acct = self.accounts.get_mut(user).ok_or(OrderError::NotFound)?;
        let order = Self::order_mut(acct, order_id)?;
        if order.status.is_terminal() {
            return Err(OrderError::Terminal);
        }
        order.status = OrderStatus::CancelPending;
        order.record(market);
        order.status = OrderStatus::Cancelled;
        order.record(market);
        if self.updates.listening(user) {
            self.updates.send(user, &portfolio_order_update(market, user, order));
        }
        Ok(())
    }

    /// Ids of a user's open orders, optionally filtered by segment and tag.
    pub fn open_orders(&self, market: &Market, user: &str, segment: Option<Segment>, tag: Option<&str>) -> Vec<String> {
        self.accounts.get(user).map_or_else(Vec::new, |a| {
            a.orders
                .iter()
                .filter(|o| !o.status.is_terminal())
                .filter(|o| segment.is_none_or(|s| market.get(o.req.instrument).segment == s))
                .filter(|o| tag.is_none_or(|t| o.req.tag.as_deref() == Some(t)))
                .map(|o| o.order_id.clone())
                .collect()
        })
    }

    /// Open positions of a user as (instrument, product, net quantity).
    pub fn open_positions(&self, user: &str) -> Vec<(u32, Product, i64)> {
        self.accounts.get(user).map_or_else(Vec::new, |a| {
            a.positions
                .iter()
                .filter(|(_, p)| p.net() != 0)
                .map(|((idx, prod), p)| (*idx, prod.parse().unwrap_or(Product::Intraday), p.net()))
                .collect()
        })
    }

    /// Re-checks every user's open orders against current prices.
    pub fn match_all(&mut self, market: &Market, now: DateTime<Utc>) {
        let users: Vec<String> = self.accounts.keys().cloned().collect();
        for u in users {
            self.match_user(market, &u, now);
            self.run_gtts(market, &u, now);
        }
    }

    fn match_user(&mut self, market: &Market, user: &str, now: DateTime<Utc>) {
        let Some(acct) = self.accounts.get_mut(user) else {
            return;
        };
        let mut fills = Vec::new();
        for (i, order) in acct.orders.iter_mut().enumerate() {
            if order.status.is_terminal() {
                continue;
            }
            let inst = market.get(order.req.instrument);
            if !market.is_open(inst.segment, now) {
                continue;
            }
            if order.req.is_amo {
                order.req.is_amo = false;
                order.status = if matches!(order.req.order_type, OrderType::StopLoss | OrderType::StopLossMarket) {
                    OrderStatus::TriggerPending
                } else {
                    OrderStatus::Open
                };
                order.record(market);
            }
            let tick = inst.tick();
            let ltp = market.ltp(order.req.instrument, now);
            let touch = upstox_types::fill::Touch::around(ltp, tick);
            let side = order.req.transaction_type;
            if matches!(order.req.order_type, OrderType::StopLoss | OrderType::StopLossMarket) && !order.triggered {
                if !upstox_types::fill::triggered(side, order.req.trigger_price, ltp) {
                    continue;
                }
                order.triggered = true;
                order.status = OrderStatus::Open;
                order.record(market);
            }
            let fill_price = upstox_types::fill::fill_price(order.req.order_type, side, order.req.price, touch);
            match fill_price {
                Some(price) => fills.push((i, price)),
                None if order.req.validity == Validity::Ioc => {
                    order.status = OrderStatus::Cancelled;
                    order.status_message = Some("IOC order cancelled: not filled on arrival".into());
                    order.record(market);
                }
                None => {}
            }
        }
        for (i, price) in fills {
            self.fill(market, user, i, price, now);
        }
    }

    fn fill(&mut self, market: &Market, user: &str, i: usize, price: f64, now: DateTime<Utc>) {
        let trade_id = format!("{:08}", self.next_trade);
        self.next_trade += 1;
        let Some(acct) = self.accounts.get_mut(user) else {
            return;
        };
        let order = &mut acct.orders[i];
        let qty = order.req.quantity - order.filled_quantity;
        order.filled_quantity += qty;
        order.average_price = price;
        order.status = OrderStatus::Complete;
        order.exchange_time = Some(now);
        order.record(market);
        let req = order.req.clone();
        let trade = Trade {
            trade_id,
            order_id: order.order_id.clone(),
            instrument: req.instrument,
            product: req.product,
            order_type: req.order_type,
            transaction_type: req.transaction_type,
            quantity: qty,
            price,
            time: now,
            exchange_order_id: order.exchange_order_id.clone().unwrap_or_default(),
            placed_at: order.placed_at,
            gtt: order.gtt.clone(),
        };
        let listening = self.updates.listening(user);
        let order_update = listening.then(|| portfolio_order_update(market, user, order));
        let mult = multiplier(market, req.instrument);
        let pos = acct
            .positions
            .entry((req.instrument, req.product.as_str()))
            .or_default();
        match req.transaction_type {
            TransactionType::Buy => {
                pos.buy_qty += qty;
                pos.buy_value += qty as f64 * price;
            }
            TransactionType::Sell => {
                pos.sell_qty += qty;
                pos.sell_value += qty as f64 * price;
            }
        }
        let position_update = listening.then(|| {
            position_json(
                market,
                req.instrument,
                req.product.as_str(),
                pos,
                mult,
                market.ltp(req.instrument, now),
            )
        });
        let inst = market.get(req.instrument);
        let mut holding_update = None;
        if matches!(inst.kind, Kind::Spot { .. }) && req.product == Product::Delivery {
            let h = acct.holdings.entry(req.instrument).or_insert(Holding {
                instrument: req.instrument,
                quantity: 0,
                bought: Vec::new(),
                cnc_used_quantity: 0,
                average_price: price,
            });
            let (today, previous) = equity_days(market, now);
            match req.transaction_type {
                // A delivery buy is a position today; holdings show it from the next trading day.
                TransactionType::Buy => h.bought.push((today, qty, price)),
                TransactionType::Sell => {
                    h.cnc_used_quantity += qty;
                    holding_update = listening
                        .then(|| holding_json(market, &h.view(today, previous), market.ltp(req.instrument, now)));
                }
            }
        }
        acct.trades.push(trade);
        for update in [order_update, position_update, holding_update].into_iter().flatten() {
            self.updates.send(user, &update);
        }
    }

    fn next_gtt_id(&mut self, now: DateTime<Utc>) -> String {
        self.next_gtt += 1;
        format!("GTT-C{}{:08}", ist_date(now), self.next_gtt - 1)
    }

    fn send_gtt(&self, market: &Market, user: &str, g: &Gtt) {
        if !self.updates.listening(user) {
            return;
        }
        let mut v = gtt_json(market, g);
        if let Some(o) = v.as_object_mut() {
            o.insert("update_type".into(), "gtt_order".into());
        }
        self.updates.send(user, &v);
    }

    /// Places a GTT; answers its id. Its rules are checked against each other here; the
    /// orders it places later meet the usual checks (margin, freeze, band) when they go out.
    ///
    /// # Errors
    /// [`GttError::NotFound`] for an unknown user; [`GttError::Invalid`] for contradicting rules.
    pub fn place_gtt(
        &mut self,
        market: &Market,
        user: &str,
        spec: GttSpec,
        now: DateTime<Utc>,
    ) -> Result<String, GttError> {
        if !self.accounts.contains_key(user) {
            return Err(GttError::NotFound);
        }
        crate::gtt::validate(&spec, market.get(spec.instrument).tick()).map_err(GttError::Invalid)?;
        let id = self.next_gtt_id(now);
        let g = Gtt::new(id.clone(), spec, now);
        self.send_gtt(market, user, &g);
        if let Some(acct) = self.accounts.get_mut(user) {
            acct.gtts.push(g);
        }
        self.run_gtts(market, user, now);
        Ok(id)
    }

    fn gtt_mut<'a>(&'a mut self, user: &str, id: &str) -> Result<&'a mut Gtt, GttError> {
        self.accounts
            .get_mut(user)
            .and_then(|a| a.gtts.iter_mut().find(|g| g.id == id))
            .ok_or(GttError::NotFound)
    }

    /// Changes a GTT (see [`Gtt::modify`] for what may change once its entry fired).
    ///
    /// # Errors
    /// Unknown GTT; a finished one; a change that is not allowed or contradicts itself.
    pub fn modify_gtt(
        &mut self,
        market: &Market,
        user: &str,
        id: &str,
        change: GttChange,
        now: DateTime<Utc>,
    ) -> Result<(), GttError> {
        let g = self.gtt_mut(user, id)?;
        let inst = market.get(g.instrument);
        let lot = inst.quantity_step();
        if change.quantity == 0 || !change.quantity.is_multiple_of(lot) {
            return Err(GttError::Invalid(format!(
                "quantity {} must be a whole number of lots of {lot}",
                change.quantity
            )));
        }
        let spec = GttSpec {
            kind: change.kind,
            instrument: g.instrument,
            quantity: change.quantity,
            product: g.product,
            side: g.side,
            rules: change.rules,
        };
        g.modify(spec, inst.tick()).map_err(GttError::Invalid)?;
        let g = g.clone();
        self.send_gtt(market, user, &g);
        self.run_gtts(market, user, now);
        Ok(())
    }

    /// Cancels a GTT's rules not yet final (an order a rule already placed is left alone).
    ///
    /// # Errors
    /// Unknown GTT, or one already finished.
    pub fn cancel_gtt(&mut self, market: &Market, user: &str, id: &str) -> Result<(), GttError> {
        let g = self.gtt_mut(user, id)?;
        if !g.cancel("cancelled by the user") {
            return Err(GttError::Invalid(format!(
                "GTT {id} is already finished (completed, failed, cancelled or expired)"
            )));
        }
        let g = g.clone();
        self.send_gtt(market, user, &g);
        Ok(())
    }

    /// A user's GTTs as `GET /v3/order/gtt` lists them (one when `id` is given).
    ///
    /// # Errors
    /// [`GttError::NotFound`] when `id` names no GTT of this user.
    pub fn gtt_orders(&self, market: &Market, user: &str, id: Option<&str>) -> Result<Vec<Value>, GttError> {
        let all = self.accounts.get(user).map_or(&[][..], |a| a.gtts.as_slice());
        let out: Vec<Value> = all
            .iter()
            .filter(|g| id.is_none_or(|id| g.id == id))
            .map(|g| gtt_json(market, g))
            .collect();
        if id.is_some() && out.is_empty() {
            return Err(GttError::NotFound);
        }
        Ok(out)
    }

    /// Brings a user's GTTs up to date with the price at `now`: settles rules whose orders
    /// ended, expires, trails stop losses, and fires due rules (placing their MARKET orders,
    /// only while the instrument's market is open). Every change goes out as a `gtt_order` update.
    fn run_gtts(&mut self, market: &Market, user: &str, now: DateTime<Utc>) {
        let Some(acct) = self.accounts.get(user) else {
            return;
        };
        if acct.gtts.iter().all(Gtt::is_finished) {
            return;
        }
        let mut changed = self.settle_gtts(user, now);
        // Fire at most one rule per GTT a pass; the next pass settles its order.
        let mut fire = Vec::new();
        if let Some(acct) = self.accounts.get_mut(user) {
            for (gi, g) in acct.gtts.iter_mut().enumerate() {
                if g.is_finished() {
                    continue;
                }
                let inst = market.get(g.instrument);
                if !market.is_open(inst.segment, now) {
                    continue;
                }
                let ltp = market.ltp(g.instrument, now);
                if g.trail(ltp, inst.tick()) {
                    changed.push(gi);
                }
                if let Some(ri) = g.due(ltp) {
                    let req = OrderRequest {
                        instrument: g.instrument,
                        quantity: g.quantity,
                        product: g.product,
                        validity: Validity::Day,
                        price: 0.0,
                        trigger_price: 0.0,
                        order_type: OrderType::Market,
                        transaction_type: g.side_of(g.rules[ri].spec.strategy),
                        disclosed_quantity: 0,
                        tag: None,
                        is_amo: false,
                    };
                    fire.push((gi, ri, g.id.clone(), req));
                }
            }
        }
        for (gi, ri, id, req) in fire {
            let Some(order_id) = self.place_for(market, user, req, now, false, Some(id)) else {
                continue;
            };
            if let Some(g) = self.accounts.get_mut(user).and_then(|a| a.gtts.get_mut(gi)) {
                g.fired(ri, order_id);
                changed.push(gi);
            }
        }
        changed.extend(self.settle_gtts(user, now));
        changed.sort_unstable();
        changed.dedup();
        for gi in changed {
            if let Some(g) = self.accounts.get(user).and_then(|a| a.gtts.get(gi)) {
                self.send_gtt(market, user, g);
            }
        }
    }

    /// Settles rules whose orders ended and expires GTTs past their time; answers which changed.
    fn settle_gtts(&mut self, user: &str, now: DateTime<Utc>) -> Vec<usize> {
        let Some(acct) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let Account {
            gtts, orders, by_id, ..
        } = acct;
        let mut changed = Vec::new();
        for (gi, g) in gtts.iter_mut().enumerate() {
            let mut any = g.expire(now);
            for ri in 0..g.rules.len() {
                let Some(order) = g.rules[ri]
                    .order_id
                    .as_ref()
                    .and_then(|id| by_id.get(id))
                    .map(|i| &orders[*i])
                else {
                    continue;
                };
                let outcome = match order.status {
                    OrderStatus::Complete => OrderOutcome::Complete,
                    OrderStatus::Rejected | OrderStatus::Cancelled => OrderOutcome::Failed(
                        order
                            .status_message
                            .clone()
                            .unwrap_or_else(|| format!("order {} was {}", order.order_id, order.status.as_str())),
                    ),
                    _ => OrderOutcome::Working,
                };
                any |= g.settle(ri, outcome);
            }
            if any {
                changed.push(gi);
            }
        }
        changed
    }

    /// Order book of a user (order-book JSON objects).
    pub fn order_book(&self, market: &Market, user: &str) -> Vec<Value> {
        self.accounts
            .get(user)
            .map_or_else(Vec::new, |a| a.orders.iter().map(|o| order_json(market, o)).collect())
    }

    pub fn order(&self, user: &str, order_id: &str) -> Option<&Order> {
        let a = self.accounts.get(user)?;
        a.by_id.get(order_id).map(|i| &a.orders[*i])
    }

    /// Orders carrying `tag`.
    pub fn orders_by_tag<'a>(&'a self, user: &str, tag: &'a str) -> impl Iterator<Item = &'a Order> + 'a {
        self.accounts
            .get(user)
            .into_iter()
            .flat_map(move |a| a.orders.iter().filter(move |o| o.req.tag.as_deref() == Some(tag)))
    }

    pub fn trades(&self, user: &str) -> &[Trade] {
        self.accounts.get(user).map_or(&[], |a| &a.trades)
    }

    /// Positions JSON.
    pub fn positions(&self, market: &Market, user: &str, now: DateTime<Utc>) -> Vec<Value> {
        self.accounts.get(user).map_or_else(Vec::new, |a| {
            a.positions
                .iter()
                .map(|((idx, prod), p)| {
                    position_json(market, *idx, prod, p, multiplier(market, *idx), market.ltp(*idx, now))
                })
                .collect()
        })
    }

    /// Holdings JSON.
    pub fn holdings(&self, market: &Market, user: &str, now: DateTime<Utc>) -> Vec<Value> {
        self.accounts.get(user).map_or_else(Vec::new, |a| {
            let (today, previous) = equity_days(market, now);
            a.holdings
                .values()
                .map(|h| h.view(today, previous))
                .filter(|h| h.quantity + h.t1_quantity + h.cnc_used_quantity > 0)
                .map(|h| {
                    let mut v = holding_json(market, &h, market.ltp(h.instrument, now));
                    if let Some(o) = v.as_object_mut() {
                        o.remove("update_type");
                        o.remove("instrument_key");
                    }
                    v
                })
                .collect()
        })
    }
}

/// The order-book JSON of an order (api-facts §4.9).
pub fn order_json(market: &Market, o: &Order) -> Value {
    let inst = market.get(o.req.instrument);
    json!({
        "exchange": inst.segment.order_exchange(),
        "product": o.req.product,
        "price": o.req.price,
        "quantity": o.req.quantity,
        "status": o.status.as_str(),
        "guid": null,
        "tag": o.req.tag,
        "instrument_token": inst.instrument_key,
        "placed_by": null,
        "trading_symbol": inst.quote_symbol,
        "tradingsymbol": inst.quote_symbol,
        "order_type": o.req.order_type,
        "validity": o.req.validity,
        "trigger_price": o.req.trigger_price,
        "disclosed_quantity": o.req.disclosed_quantity,
        "transaction_type": o.req.transaction_type,
        "average_price": o.average_price,
        "filled_quantity": o.filled_quantity,
        "pending_quantity": o.req.quantity - o.filled_quantity,
        "status_message": o.status_message,
        "status_message_raw": o.status_message,
        "exchange_order_id": o.exchange_order_id,
        "parent_order_id": null,
        "order_id": o.order_id,
        "variety": "SIMPLE",
        "order_timestamp": order_timestamp(o.placed_at),
        "exchange_timestamp": o.exchange_time.map(order_timestamp),
        "is_amo": o.req.is_amo,
        "order_request_id": "1",
        "order_ref_id": order_ref_id(&o.order_id, o.gtt.as_ref()),
    })
}

fn gtt_json(market: &Market, g: &Gtt) -> Value {
    let inst = market.get(g.instrument);
    g.json(inst.segment.as_str(), &inst.quote_symbol, &inst.instrument_key)
}

fn portfolio_order_update(market: &Market, user: &str, o: &Order) -> Value {
    let mut v = order_json(market, o);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("update_type".into(), "order".into());
        obj.insert("user_id".into(), user.into());
        obj.insert("userId".into(), user.into());
        obj.insert(
            "instrument_key".into(),
            market.get(o.req.instrument).instrument_key.clone().into(),
        );
        obj.insert("placed_by".into(), user.into());
    }
    v
}

fn position_json(market: &Market, idx: u32, product: &str, p: &Position, mult: f64, ltp: f64) -> Value {
    let inst = market.get(idx);
    let net = p.net();
    let realised = r2(p.realised(mult));
    let unrealised = r2(net as f64 * (ltp - p.open_avg()) * mult);
    json!({
        "update_type": "position",
        "exchange": inst.segment.order_exchange(),
        "multiplier": mult,
        "value": r2((p.sell_value - p.buy_value) * mult),
        "pnl": r2(realised + unrealised),
        "product": product,
        "instrument_token": inst.instrument_key,
        "instrument_key": inst.instrument_key,
        "average_price": if net == 0 { Value::Null } else { r2(p.open_avg()).into() },
        "buy_value": r2(p.buy_value * mult),
        "overnight_quantity": 0,
        "day_buy_value": r2(p.buy_value * mult),
        "day_buy_price": r2(p.buy_avg()),
        "overnight_buy_amount": 0.0,
        "overnight_buy_quantity": 0,
        "day_buy_quantity": p.buy_qty,
        "day_sell_value": r2(p.sell_value * mult),
        "day_sell_price": r2(p.sell_avg()),
        "overnight_sell_amount": 0.0,
        "overnight_sell_quantity": 0,
        "day_sell_quantity": p.sell_qty,
        "quantity": net,
        "last_price": ltp,
        "unrealised": unrealised,
        "realised": realised,
        "sell_value": r2(p.sell_value * mult),
        "trading_symbol": inst.quote_symbol,
        "tradingsymbol": inst.quote_symbol,
        "close_price": ltp,
        "buy_price": r2(p.buy_avg()),
        "sell_price": r2(p.sell_avg()),
    })
}

fn holding_json(market: &Market, h: &HoldingView, ltp: f64) -> Value {
    let inst = market.get(h.instrument);
    let qty = h.quantity + h.t1_quantity;
    json!({
        "update_type": "holding",
        "isin": inst.isin,
        "cnc_used_quantity": h.cnc_used_quantity,
        "collateral_type": "WC",
        "company_name": inst.name,
        "haircut": 0.2,
        "product": "D",
        "quantity": h.quantity,
        "trading_symbol": inst.quote_symbol,
        "tradingsymbol": inst.quote_symbol,
        "last_price": ltp,
        "close_price": ltp,
        "pnl": r2((ltp - h.average_price) * qty as f64),
        "day_change": 0.0,
        "day_change_percentage": 0.0,
        "instrument_token": inst.instrument_key,
        "instrument_key": inst.instrument_key,
        "average_price": h.average_price,
        "collateral_quantity": 0,
        "collateral_update_quantity": 0,
        "t1_quantity": h.t1_quantity,
        "exchange": inst.segment.exchange(),
    })
}

/// The exchange refuses a limit or trigger price outside the instrument's circuit limits for
/// the day: the rejection message, or `None` when the prices are inside (or unpriced).
fn outside_band(market: &Market, req: &OrderRequest, now: DateTime<Utc>) -> Option<String> {
    let priced = matches!(req.order_type, OrderType::Limit | OrderType::StopLoss);
    let triggered = matches!(req.order_type, OrderType::StopLoss | OrderType::StopLossMarket);
    if !priced && !triggered {
        return None;
    }
    let snap = market.snapshot(req.instrument, now);
    let (lo, hi) = (snap.lower_circuit, snap.upper_circuit);
    let outside = |p: f64| p < lo || p > hi;
    let (what, p) = if priced && outside(req.price) {
        ("price", req.price)
    } else if triggered && outside(req.trigger_price) {
        ("trigger price", req.trigger_price)
    } else {
        return None;
    };
    Some(format!(
        "The {what} {p:.2} is outside the circuit limits of {} for the day ({lo:.2} to {hi:.2}).",
        market.get(req.instrument).trading_symbol
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::config::ClockConfig;

    /// One market and engine for all the tests (building ~108k instruments takes a moment).
    fn fixture() -> (&'static Market, DateTime<Utc>) {
        static MARKET: std::sync::OnceLock<(Market, DateTime<Utc>)> = std::sync::OnceLock::new();
        let (m, now) = MARKET.get_or_init(|| {
            let now = SimClock::new(&ClockConfig::default()).expect("clock").now();
            (
                Market::new(crate::config::MarketConfig::default(), 42, now).expect("market"),
                now,
            )
        });
        (m, *now)
    }

    fn engine(market: &Market) -> Engine {
        Engine::new(&SimConfig::default(), market)
    }

    fn req(
        market: &Market,
        key: &str,
        side: TransactionType,
        quantity: u64,
        order_type: OrderType,
        price: f64,
    ) -> OrderRequest {
        OrderRequest {
            instrument: market.lookup(key).expect("instrument"),
            quantity,
            product: Product::Intraday,
            validity: Validity::Day,
            price,
            trigger_price: 0.0,
            order_type,
            transaction_type: side,
            disclosed_quantity: 0,
            tag: None,
            is_amo: false,
        }
    }

    const RELIANCE: &str = "NSE_EQ|INE002A01018";

    #[test]
    fn a_market_order_fills_at_once_near_the_last_price() {
        let (m, now) = fixture();
        let mut e = engine(m);
        let id = e
            .place(
                m,
                "SIM001",
                req(m, RELIANCE, TransactionType::Buy, 5, OrderType::Market, 0.0),
                now,
                false,
            )
            .expect("placed");
        let o = e.order("SIM001", &id).expect("order");
        assert_eq!((o.status.clone(), o.filled_quantity), (OrderStatus::Complete, 5));
        let ltp = m.ltp(o.req.instrument, now);
        assert!(
            (o.average_price - ltp).abs() <= 1.0,
            "filled at {} vs ltp {ltp}",
            o.average_price
        );
        assert_eq!(e.trades("SIM001").len(), 1);
    }

    #[test]
    fn a_limit_order_away_from_the_market_rests_until_the_price_reaches_it() {
        let (m, now) = fixture();
        let mut e = engine(m);
        let k = m.lookup(RELIANCE).expect("reliance");
        let ltp = m.ltp(k, now);
        let snap = m.snapshot(k, now);
        // A buy limit just above the lower circuit: far below the market, inside the band.
        let low = ((snap.lower_circuit + 0.1) * 20.0).ceil() / 20.0;
        assert!(low < ltp);
        let id = e
            .place(
                m,
                "SIM001",
                req(m, RELIANCE, TransactionType::Buy, 1, OrderType::Limit, low),
                now,
                false,
            )
            .expect("placed");
        assert_eq!(e.order("SIM001", &id).expect("order").status, OrderStatus::Open);
        e.match_all(m, now + chrono::Duration::seconds(1));
        assert_eq!(
            e.order("SIM001", &id).expect("order").status,
            OrderStatus::Open,
            "still resting"
        );
        e.cancel(m, "SIM001", &id).expect("cancel");
        assert_eq!(e.order("SIM001", &id).expect("order").status, OrderStatus::Cancelled);
        assert!(
            e.cancel(m, "SIM001", &id).is_err(),
            "a cancelled order cannot be cancelled again"
        );
        // A buy limit above the market fills at the touch, not at the limit.
        let high = ((ltp * 1.02) * 20.0).round() / 20.0;
        let id = e
            .place(
                m,
                "SIM001",
                req(m, RELIANCE, TransactionType::Buy, 1, OrderType::Limit, high),
                now,
                false,
            )
            .expect("placed");
        let o = e.order("SIM001", &id).expect("order");
        assert_eq!(o.status, OrderStatus::Complete);
        assert!(o.average_price < high);
    }

    #[test]
    fn freeze_band_and_margin_rejections_are_order_states() {
        let (m, now) = fixture();
        let mut e = engine(m);
        let rejected = |e: &mut Engine, r: OrderRequest| {
            let id = e.place(m, "SIM001", r, now, false).expect("placed");
            let o = e.order("SIM001", &id).expect("order").clone();
            assert_eq!(o.status, OrderStatus::Rejected, "{:?}", o.status_message);
            o.status_message.unwrap_or_default()
        };
        let msg = rejected(
            &mut e,
            req(m, RELIANCE, TransactionType::Buy, 200_000, OrderType::Market, 0.0),
        );
        assert!(msg.contains("freeze quantity"), "{msg}");
        let snap = m.snapshot(m.lookup(RELIANCE).expect("k"), now);
        let above = ((snap.upper_circuit * 1.5) * 20.0).round() / 20.0;
        let msg = rejected(
            &mut e,
            req(m, RELIANCE, TransactionType::Buy, 1, OrderType::Limit, above),
        );
        assert!(msg.contains("circuit limits"), "{msg}");
        let mut sl = req(m, RELIANCE, TransactionType::Sell, 1, OrderType::StopLossMarket, 0.0);
        sl.trigger_price = ((snap.lower_circuit * 0.5) * 20.0).round() / 20.0;
        let msg = rejected(&mut e, sl);
        assert!(msg.contains("trigger price"), "{msg}");
        let msg = rejected(
            &mut e,
            req(m, RELIANCE, TransactionType::Buy, 90_000, OrderType::Market, 0.0),
        );
        assert!(msg.contains("You need to add Rs."), "{msg}");
        assert!(e.trades("SIM001").is_empty(), "nothing filled");
    }

    #[test]
    fn a_segment_the_user_is_not_cleared_for_rejects_the_order() {
        let (m, now) = fixture();
        let mut config = SimConfig::default();
        config.users[0].exchanges = Some(vec!["NSE".into(), "BSE".into()]);
        let mut e = Engine::new(&config, m);
        let future = m
            .instruments()
            .iter()
            .find(|i| i.segment == Segment::NseFo)
            .expect("an NSE future or option");
        let lot = u64::from(future.lot());
        let id = e
            .place(
                m,
                "SIM001",
                req(
                    m,
                    &future.instrument_key,
                    TransactionType::Buy,
                    lot,
                    OrderType::Market,
                    0.0,
                ),
                now,
                false,
            )
            .expect("placed");
        let o = e.order("SIM001", &id).expect("order");
        assert_eq!(o.status, OrderStatus::Rejected);
        assert!(
            o.status_message
                .as_deref()
                .is_some_and(|m| m.contains("not enabled for trading in the NFO segment")),
            "{:?}",
            o.status_message
        );
        let id = e
            .place(
                m,
                "SIM001",
                req(m, RELIANCE, TransactionType::Buy, 1, OrderType::Market, 0.0),
                now,
                false,
            )
            .expect("placed");
        assert_eq!(
            e.order("SIM001", &id).expect("order").status,
            OrderStatus::Complete,
            "NSE is cleared"
        );
    }

    #[test]
    fn a_stop_loss_waits_for_its_trigger_and_a_delivery_sell_needs_holdings() {
        let (m, now) = fixture();
        let mut e = engine(m);
        let k = m.lookup(RELIANCE).expect("reliance");
        let ltp = m.ltp(k, now);
        let mut sl = req(m, RELIANCE, TransactionType::Buy, 1, OrderType::StopLossMarket, 0.0);
        sl.trigger_price = (((ltp * 1.03).min(m.snapshot(k, now).upper_circuit - 0.1)) * 20.0).floor() / 20.0;
        let id = e.place(m, "SIM001", sl, now, false).expect("placed");
        assert_eq!(
            e.order("SIM001", &id).expect("order").status,
            OrderStatus::TriggerPending
        );
        let mut sell = req(m, RELIANCE, TransactionType::Sell, 1_000_000, OrderType::Market, 0.0);
        sell.product = Product::Delivery;
        let id = e.place(m, "SIM001", sell, now, true).expect("placed");
        let o = e.order("SIM001", &id).expect("order");
        assert_eq!(o.status, OrderStatus::Rejected);
        assert!(
            o.status_message
                .as_deref()
                .is_some_and(|s| s.contains("Insufficient holdings"))
        );
    }
}
