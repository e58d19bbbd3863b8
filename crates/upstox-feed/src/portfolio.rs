//! The portfolio streamer: order, position, holding and GTT updates as typed events, with the
//! same connection loop as the market feed (fresh authorize per connect, backoff, stall
//! detection, 401/403 diagnosis). Updates are never coalesced: they arrive in order as
//! [`FeedEvent::Portfolio`], in a bounded queue whose oldest entry is dropped (and counted) only
//! if the consumer stops taking them.

use std::future::Future;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;
use upstox_client::UpstoxClient;

use crate::connection::{Protocol, Worker, Ws};
use crate::events::{EventStream, Fanout, FeedEvent, Policy};
use crate::market::StreamerConfig;
use crate::token::TokenSource;

/// Which updates to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateTypes {
    pub order: bool,
    pub position: bool,
    pub holding: bool,
    pub gtt_order: bool,
}

impl Default for UpdateTypes {
    /// Orders only, as Upstox defaults.
    fn default() -> Self {
        Self {
            order: true,
            position: false,
            holding: false,
            gtt_order: false,
        }
    }
}

impl UpdateTypes {
    fn names(self) -> Vec<&'static str> {
        [
            (self.order, "order"),
            (self.position, "position"),
            (self.holding, "holding"),
            (self.gtt_order, "gtt_order"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }
}

/// An order update (the fields a trading program acts on; the full payload is in `raw`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub order_id: String,
    pub status: upstox_types::OrderStatus,
    #[serde(default)]
    pub instrument_token: Option<String>,
    #[serde(default)]
    pub transaction_type: Option<String>,
    #[serde(default)]
    pub quantity: u64,
    #[serde(default)]
    pub filled_quantity: u64,
    #[serde(default)]
    pub average_price: f64,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub status_message: Option<String>,
}

/// A position update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionUpdate {
    pub instrument_token: String,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub average_price: Option<f64>,
    #[serde(default)]
    pub buy_price: f64,
    #[serde(default)]
    pub sell_price: f64,
}

/// A holding update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldingUpdate {
    pub instrument_token: String,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub t1_quantity: i64,
    #[serde(default)]
    pub average_price: f64,
}

/// A GTT update: the whole GTT with each rule's state (`expires_at` / `created_at` are epoch
/// microseconds on the wire), the same shape as `GET /v3/order/gtt` answers.
pub type GttUpdate = upstox_client::gtt::GttOrder;

/// One update of the portfolio stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PortfolioUpdate {
    Order(OrderUpdate),
    Position(PositionUpdate),
    Holding(HoldingUpdate),
    Gtt(GttUpdate),
    /// An update type this crate does not know, kept as JSON.
    Other(serde_json::Value),
}

/// Parses one text (or binary-carrying-JSON) frame of the portfolio stream.
///
/// # Errors
/// When the frame is not JSON, or a known update type lacks its required fields.
pub fn parse_update(bytes: &[u8]) -> Result<PortfolioUpdate, serde_json::Error> {
    let v: serde_json::Value = serde_json::from_slice(bytes)?;
    Ok(match v.get("update_type").and_then(|t| t.as_str()) {
        Some("order") => PortfolioUpdate::Order(serde_json::from_value(v)?),
        Some("position") => PortfolioUpdate::Position(serde_json::from_value(v)?),
        Some("holding") => PortfolioUpdate::Holding(serde_json::from_value(v)?),
        Some("gtt_order") => PortfolioUpdate::Gtt(serde_json::from_value(v)?),
        _ => PortfolioUpdate::Other(v),
    })
}

struct PortfolioProtocol {
    types: UpdateTypes,
}

impl Protocol for PortfolioProtocol {
    type Conn = ();

    fn authorize(&self, client: UpstoxClient) -> impl Future<Output = upstox_client::Result<String>> + Send {
        let names = self.types.names();
        async move { client.portfolio_feed_authorize(&names).await }
    }

    fn sync(&self, _ws: &mut Ws, _conn: &mut ()) -> impl Future<Output = Result<(), tungstenite::Error>> + Send {
        // Updates flow without any subscription message.
        std::future::ready(Ok(()))
    }

    fn frame(&self, msg: Message, queue: &Fanout) -> bool {
        let bytes: &[u8] = match &msg {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
            _ => return false,
        };
        match parse_update(bytes) {
            Ok(u) => queue.push_status(FeedEvent::Portfolio(u)),
            Err(e) => tracing::warn!(error = %e, "skipping a portfolio frame that is not an update"),
        }
        true
    }
}

/// A running portfolio streamer. Dropping it stops the task.
#[derive(Debug)]
pub struct PortfolioStreamer {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Drop for PortfolioStreamer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl PortfolioStreamer {
    /// Starts streaming `types` of updates.
    pub fn start(
        client: UpstoxClient,
        tokens: impl TokenSource,
        types: UpdateTypes,
        config: StreamerConfig,
    ) -> (Self, EventStream) {
        let queue = Fanout::new(config.status_queue);
        let first = queue.subscribe(Policy::Latest);
        let cancel = CancellationToken::new();
        let worker = Worker {
            client,
            tokens: Box::new(tokens),
            config,
            protocol: PortfolioProtocol { types },
            wake: Arc::new(Notify::new()),
            cancel: cancel.clone(),
            queue: queue.clone(),
        };
        let task = tokio::spawn(worker.run());
        (
            Self {
                cancel,
                task: Some(task),
            },
            first,
        )
    }

    /// Closes the connection and waits for the task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_payloads() {
        let order = br#"{"update_type":"order","order_id":"240221025997024","status":"put order req received","quantity":1,"filled_quantity":0,"average_price":0,"instrument_token":"NSE_EQ|INE848E01016","tag":null}"#;
        assert!(
            matches!(parse_update(order), Ok(PortfolioUpdate::Order(o)) if o.status == upstox_types::OrderStatus::PutOrderReqReceived)
        );
        let gtt = br#"{"update_type":"gtt_order","type":"MULTIPLE","exchange":"NSE_EQ","instrument_token":"NSE_EQ|INE806A01020","quantity":1,"product":"D","gtt_order_id":"GTT-CU25270200024002","expires_at":1772216999000000,"created_at":1740641185000000,"rules":[{"strategy":"ENTRY","status":"FAILED","trigger_type":"IMMEDIATE","trigger_price":7.7,"transaction_type":"BUY","message":"...","order_id":"250228010168535","trailing_gap":null}]}"#;
        assert!(matches!(parse_update(gtt), Ok(PortfolioUpdate::Gtt(g))
            if g.rules.len() == 1 && g.rules[0].status == upstox_types::GttRuleStatus::Failed));
        // A GTT update without its rules' states is malformed, not silently empty.
        let bare = br#"{"update_type":"gtt_order","type":"MULTIPLE","gtt_order_id":"GTT-1","expires_at":1,"rules":[{"strategy":"ENTRY"}]}"#;
        assert!(parse_update(bare).is_err());
        assert!(matches!(
            parse_update(br#"{"update_type":"new_thing"}"#),
            Ok(PortfolioUpdate::Other(_))
        ));
        assert!(parse_update(b"not json").is_err());
        assert_eq!(
            UpdateTypes {
                position: true,
                ..UpdateTypes::default()
            }
            .names(),
            vec!["order", "position"]
        );
    }
}
