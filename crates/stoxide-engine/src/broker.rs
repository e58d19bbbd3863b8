//! The broker seam: what the engine asks of an account's broker, and what it answers. Two
//! implementations: [`upstox::UpstoxBrokers`] (the real client, against Upstox or the simulator)
//! and [`paper::PaperBrokers`] (in-process fills against live prices, with the simulator's fill
//! rule). Each broker acts for one account; the engine never mixes one user's calls with
//! another's.

pub mod paper;
pub mod upstox;

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use upstox_types::{InstrumentKey, Product, Segment, TransactionType};

use crate::intent::OrderView;

/// An order the engine sends: always MARKET with `market_protection`, tagged with its intent's
/// deterministic tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub tag: String,
    pub instrument: InstrumentKey,
    pub side: TransactionType,
    /// Units (lots for MCX).
    pub quantity: u64,
    pub product: Product,
    /// Above the freeze quantity: Upstox slices it (v3 `slice`).
    pub slice: bool,
    /// −1 (Upstox's automatic protection) or 0–25 (%).
    pub market_protection: i32,
    /// The exchange-registered algo name (`X-Algo-Name`).
    pub algo_name: String,
}

/// What a place came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Placement {
    /// Acknowledged: the order(s) it became.
    Placed { order_ids: Vec<String> },
    /// Refused before any order existed (Upstox's code and message).
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// 429: nothing was placed; the user's budget is spent for now.
    RateLimited { message: String },
    /// 401: the account's token is no longer accepted.
    Unauthorized { message: String },
    /// No answer (timeout, broken connection, 5xx): the order may or may not exist.
    Unknown { why: String },
}

/// What the order book says about an order sent once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The order(s) carrying the tag, with the terms sent.
    Orders(Vec<String>),
    /// No order carries the tag: the request never arrived.
    Nothing,
    /// Orders carry the tag but not the terms sent: left for a person to look at.
    Mismatch(String),
}

/// Why a broker call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BrokerError {
    pub kind: BrokerErrorKind,
    pub message: String,
}

/// The kinds of failure the engine treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerErrorKind {
    /// 401: the token is refused.
    Unauthorized,
    /// 429.
    RateLimited,
    /// Upstox refused the request (4xx).
    Refused,
    /// No answer, or a 5xx: try again later.
    Unavailable,
}

/// One account's broker.
pub trait Broker: Send + Sync + Debug {
    /// Sends `order` once: never retried, never reconciled here.
    fn place<'a>(&'a self, order: &'a OrderRequest) -> BoxFuture<'a, Placement>;
    /// Looks for `order` in today's order book by its tag, checking its terms.
    fn find<'a>(&'a self, order: &'a OrderRequest) -> BoxFuture<'a, Result<Found, BrokerError>>;
    /// Today's orders (the engine's carry their tags).
    fn orders(&self) -> BoxFuture<'_, Result<Vec<OrderView>, BrokerError>>;
    /// These orders alone (Upstox's order details, one call each): while few orders work, this
    /// costs as many calls as the book and does not grow with the day's orders.
    fn orders_by_id<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<OrderView>, BrokerError>>;
    /// Cancels an open order.
    fn cancel<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;
    /// The margin available for new orders (₹).
    fn available_margin(&self) -> BoxFuture<'_, Result<Decimal, BrokerError>>;
    /// The margin `quantity` of `instrument` needs (₹), from the margin API.
    fn margin<'a>(
        &'a self,
        instrument: &'a InstrumentKey,
        quantity: u64,
        product: Product,
        side: TransactionType,
    ) -> BoxFuture<'a, Result<Decimal, BrokerError>>;
    /// Whether `segment` takes orders now.
    fn market_open(&self, segment: Segment) -> BoxFuture<'_, Result<bool, BrokerError>>;
    /// Order updates the broker pushes (Upstox's portfolio stream), each an order id: a nudge to
    /// read the order book now rather than at the next poll. Taken once; `None` without a stream.
    fn order_updates(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        None
    }
}

/// An account the engine trades: its Upstox user id and the API it lives on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountRef {
    pub id: String,
    pub base_url: String,
}

/// Makes each account's broker.
pub trait Brokers: Send + Sync + Debug {
    /// The broker acting for `account` with `token`.
    ///
    /// # Errors
    /// A configuration that cannot reach the account's API (a malformed base URL).
    fn broker(&self, account: &AccountRef, token: SecretString) -> Result<Arc<dyn Broker>, BrokerError>;
}
