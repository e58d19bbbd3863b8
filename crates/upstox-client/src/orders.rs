//! Orders. Place, modify and cancel are never retried blindly: a place whose outcome is
//! unknown (timeout, 5xx, broken connection) is first looked up in the order book by its
//! `tag`, and only re-sent when the book shows no such order.

use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::{OrderStatus, OrderType, Product, TransactionType, Validity};

use crate::client::{UpstoxClient, q};
use crate::error::{Error, Result};
use crate::wire;

/// A place-order request (v2 and v3; `slice` only matters for v3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlaceOrderRequest {
    pub quantity: u64,
    pub product: Product,
    pub validity: Validity,
    #[serde(with = "rust_decimal::serde::float")]
    pub price: Decimal,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tag: Option<String>,
    pub instrument_token: String,
    pub order_type: OrderType,
    pub transaction_type: TransactionType,
    pub disclosed_quantity: u64,
    #[serde(with = "rust_decimal::serde::float")]
    pub trigger_price: Decimal,
    pub is_amo: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub market_protection: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub slice: Option<bool>,
}

impl PlaceOrderRequest {
    /// A DAY MARKET order.
    pub fn market(instrument_token: impl Into<String>, side: TransactionType, quantity: u64, product: Product) -> Self {
        Self {
            quantity,
            product,
            validity: Validity::Day,
            price: Decimal::ZERO,
            tag: None,
            instrument_token: instrument_token.into(),
            order_type: OrderType::Market,
            transaction_type: side,
            disclosed_quantity: 0,
            trigger_price: Decimal::ZERO,
            is_amo: false,
            market_protection: None,
            slice: None,
        }
    }

    /// A DAY LIMIT order.
    pub fn limit(
        instrument_token: impl Into<String>,
        side: TransactionType,
        quantity: u64,
        product: Product,
        price: Decimal,
    ) -> Self {
        Self {
            order_type: OrderType::Limit,
            price,
            ..Self::market(instrument_token, side, quantity, product)
        }
    }
}

/// A modify request; unset optional fields keep the order's values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModifyOrderRequest {
    pub order_id: String,
    pub validity: Validity,
    #[serde(with = "rust_decimal::serde::float")]
    pub price: Decimal,
    pub order_type: OrderType,
    #[serde(with = "rust_decimal::serde::float")]
    pub trigger_price: Decimal,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quantity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub disclosed_quantity: Option<u64>,
}

/// An order as the order book, details and history show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub order_id: String,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default, with = "wire::lenient")]
    pub product: Option<Product>,
    #[serde(default, with = "wire::decimal")]
    pub price: Decimal,
    #[serde(default)]
    pub quantity: u64,
    pub status: OrderStatus,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub instrument_token: Option<String>,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default, with = "wire::lenient")]
    pub order_type: Option<OrderType>,
    #[serde(default, with = "wire::lenient")]
    pub validity: Option<Validity>,
    #[serde(default, with = "wire::decimal")]
    pub trigger_price: Decimal,
    #[serde(default)]
    pub disclosed_quantity: u64,
    #[serde(default, with = "wire::lenient")]
    pub transaction_type: Option<TransactionType>,
    #[serde(default, with = "wire::decimal")]
    pub average_price: Decimal,
    #[serde(default)]
    pub filled_quantity: u64,
    #[serde(default)]
    pub pending_quantity: u64,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub exchange_order_id: Option<String>,
    #[serde(default)]
    pub parent_order_id: Option<String>,
    #[serde(default)]
    pub variety: Option<String>,
    #[serde(default)]
    pub order_timestamp: Option<String>,
    #[serde(default)]
    pub exchange_timestamp: Option<String>,
    #[serde(default)]
    pub is_amo: bool,
    /// Upstox's reference; a GTT's id (`GTT-…`) for an order a GTT rule placed.
    #[serde(default)]
    pub order_ref_id: Option<String>,
}

/// A fill.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trade {
    pub trade_id: String,
    pub order_id: String,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default, with = "wire::lenient")]
    pub product: Option<Product>,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default)]
    pub instrument_token: Option<String>,
    #[serde(default, with = "wire::lenient")]
    pub order_type: Option<OrderType>,
    #[serde(default, with = "wire::lenient")]
    pub transaction_type: Option<TransactionType>,
    #[serde(default)]
    pub quantity: u64,
    #[serde(default, with = "wire::decimal")]
    pub average_price: Decimal,
    #[serde(default)]
    pub exchange_timestamp: Option<String>,
    #[serde(default)]
    pub order_timestamp: Option<String>,
}

/// The outcome of a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedOrder {
    pub order_ids: Vec<String>,
    /// The tag the order went out with (generated when the request had none).
    pub tag: String,
    /// True when the first answer was lost and the ids come from the order book.
    pub reconciled: bool,
    /// Upstox's `metadata.latency` (v3), ms.
    pub latency_ms: Option<u64>,
}

/// One line of a multi-order request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MultiOrderLine {
    pub correlation_id: String,
    #[serde(flatten)]
    pub order: PlaceOrderRequest,
}

/// One placed line of a multi-order answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MultiOrderPlaced {
    pub correlation_id: String,
    pub order_id: String,
}

/// Totals of a multi or bulk answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Summary {
    pub total: u64,
    pub success: u64,
    pub error: u64,
    pub payload_error: u64,
}

/// `POST /v2/order/multi/place` answer (HTTP 200, 207 or 400).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MultiOrderResponse {
    pub status: String,
    #[serde(default)]
    pub data: Vec<MultiOrderPlaced>,
    #[serde(default)]
    pub errors: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub summary: Summary,
}

/// Cancel-all and exit-all answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BulkOrderResponse {
    pub status: String,
    #[serde(default)]
    pub data: Option<OrderIds>,
    #[serde(default)]
    pub errors: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub summary: Summary,
}

/// `{"order_ids": [...]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderIds {
    #[serde(default)]
    pub order_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct OrderIdData {
    order_id: String,
}

/// The optional `segment` and `tag` filters of the bulk order calls.
fn segment_and_tag(segment: Option<&str>, tag: Option<&str>) -> Vec<(String, String)> {
    [("segment", segment), ("tag", tag)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect()
}

/// A unique tag for reconciliation: `stx` + 16 hex digits (within Upstox's 40 characters).
pub fn unique_tag() -> String {
    format!("stx{:016x}", rand::rng().random::<u64>())
}

/// How many times a place whose outcome stayed unknown is re-sent after the order book showed
/// nothing (the order book is always checked first).
const RESENDS: u32 = 1;

/// What the order book says about a place whose answer was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The orders the request became (one, or the slices of a sliced request).
    Found(Vec<String>),
    /// No order carries the tag: the request never arrived.
    NotFound,
    /// Orders carry the tag but are not what was sent: the outcome stays unknown.
    Mismatch(String),
}

fn describe_order(o: &Order) -> String {
    let show = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    format!(
        "order {} is {} {} {} {} {}{}",
        o.order_id,
        show(o.transaction_type.map(|t| t.to_string())),
        o.quantity,
        show(o.instrument_token.clone()),
        show(o.order_type.map(|t| t.to_string())),
        show(o.product.map(|p| p.to_string())),
        if o.price.is_zero() {
            String::new()
        } else {
            format!(" at {}", o.price)
        }
    )
}

/// Whether `order` has the instrument, side, product, type, price and trigger that `req` asked
/// for (the quantity is checked over all the request's orders, as slicing splits it).
fn same_terms(req: &PlaceOrderRequest, order: &Order) -> bool {
    let priced = matches!(req.order_type, OrderType::Limit | OrderType::StopLoss);
    let triggered = matches!(req.order_type, OrderType::StopLoss | OrderType::StopLossMarket);
    order.instrument_token.as_deref() == Some(req.instrument_token.as_str())
        && order.transaction_type == Some(req.transaction_type)
        && order.order_type == Some(req.order_type)
        && order.product == Some(req.product)
        && (!priced || order.price == req.price)
        && (!triggered || order.trigger_price == req.trigger_price)
}

/// Matches the order book against a place whose answer was lost: only orders carrying the
/// request's tag that were not in the book before the attempt began (`before`) count, and they
/// must be exactly what was sent — the same terms, and quantities that add up to the request's
/// (one order, or the slices of a sliced request). A pure function of its inputs.
pub fn reconcile(req: &PlaceOrderRequest, book: &[Order], before: &std::collections::HashSet<String>) -> Reconciled {
    let Some(tag) = req.tag.as_deref() else {
        return Reconciled::NotFound;
    };
    let tagged: Vec<&Order> = book
        .iter()
        .filter(|o| o.tag.as_deref() == Some(tag) && !before.contains(&o.order_id))
        .collect();
    if tagged.is_empty() {
        return Reconciled::NotFound;
    }
    if let Some(other) = tagged.iter().find(|o| !same_terms(req, o)) {
        return Reconciled::Mismatch(format!(
            "the order book has an order with tag {tag:?} that is not the one sent: {}; the request was {} {} {} {} {}",
            describe_order(other),
            req.transaction_type,
            req.quantity,
            req.instrument_token,
            req.order_type,
            req.product
        ));
    }
    let total: u64 = tagged.iter().map(|o| o.quantity).sum();
    let sliced = req.slice == Some(true);
    if total != req.quantity || (!sliced && tagged.len() != 1) {
        return Reconciled::Mismatch(format!(
            "the order book has {} order(s) with tag {tag:?} for {total} in all, the request was for {}",
            tagged.len(),
            req.quantity
        ));
    }
    Reconciled::Found(tagged.iter().map(|o| o.order_id.clone()).collect())
}

impl UpstoxClient {
    /// Refuses a caller's tag that an order of today already carries: reconciliation by tag
    /// would find that order instead. Answers the ids in the book before the attempt begins.
    async fn tag_is_free(&self, tag: &str) -> Result<std::collections::HashSet<String>> {
        let book = self.order_book().await?;
        if let Some(o) = book.iter().find(|o| o.tag.as_deref() == Some(tag)) {
            return Err(Error::TagInUse {
                tag: tag.to_owned(),
                order_id: o.order_id.clone(),
            });
        }
        Ok(book.into_iter().map(|o| o.order_id).collect())
    }

    async fn place_reconciled(&self, path: &str, mut req: PlaceOrderRequest, v3: bool) -> Result<PlacedOrder> {
        // A generated tag is new by construction (64 random bits); a caller's tag is checked.
        let before = match &req.tag {
            Some(tag) => self.tag_is_free(tag).await?,
            None => std::collections::HashSet::new(),
        };
        let tag = req.tag.get_or_insert_with(unique_tag).clone();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = if v3 {
                self.call_data::<OrderIds, _>(Method::POST, path, &[], Some(&req))
                    .await
                    .map(|env| {
                        let latency = env
                            .metadata
                            .as_ref()
                            .and_then(|m| m.get("latency"))
                            .and_then(serde_json::Value::as_u64);
                        (env.data.order_ids, latency)
                    })
            } else {
                self.call_data::<OrderIdData, _>(Method::POST, path, &[], Some(&req))
                    .await
                    .map(|env| (vec![env.data.order_id], None))
            };
            let err = match sent {
                Ok((order_ids, latency_ms)) => {
                    return Ok(PlacedOrder {
                        order_ids,
                        tag,
                        reconciled: false,
                        latency_ms,
                    });
                }
                Err(e) if !e.outcome_unknown() => return Err(e),
                Err(e) => e,
            };
            tracing::warn!(%tag, error = %err, "place-order outcome unknown; checking the order book before anything is re-sent");
            // The order may take a moment to show up; look a few times.
            let mut outcome = Reconciled::NotFound;
            for wait_ms in [0u64, 250, 750] {
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                let book = match self.order_book().await {
                    Ok(b) => b,
                    Err(book_err) => {
                        return Err(Error::OrderOutcomeUnknown {
                            tag,
                            attempts,
                            last: format!("{err}; order book unavailable: {book_err}"),
                        });
                    }
                };
                outcome = reconcile(&req, &book, &before);
                if outcome != Reconciled::NotFound {
                    break;
                }
            }
            match outcome {
                Reconciled::Found(order_ids) => {
                    return Ok(PlacedOrder {
                        order_ids,
                        tag,
                        reconciled: true,
                        latency_ms: None,
                    });
                }
                Reconciled::Mismatch(why) => {
                    return Err(Error::OrderOutcomeUnknown {
                        tag,
                        attempts,
                        last: format!("{err}; {why}"),
                    });
                }
                Reconciled::NotFound if attempts > RESENDS => {
                    return Err(Error::OrderOutcomeUnknown {
                        tag,
                        attempts,
                        last: err.to_string(),
                    });
                }
                Reconciled::NotFound => tracing::info!(%tag, "order book has no such order; re-sending once"),
            }
        }
    }

    /// Places an order (v2, deprecated upstream but served). See the module docs on retries.
    ///
    /// # Errors
    /// Upstox's validation errors; [`Error::OrderOutcomeUnknown`] when neither the answer nor
    /// the order book tells whether the order exists.
    pub async fn place_order_v2(&self, req: &PlaceOrderRequest) -> Result<PlacedOrder> {
        self.place_reconciled(
            "/v2/order/place",
            PlaceOrderRequest {
                slice: None,
                ..req.clone()
            },
            false,
        )
        .await
    }

    /// Places an order with v3 (optionally sliced by freeze quantity).
    ///
    /// # Errors
    /// As [`UpstoxClient::place_order_v2`]; `UDAPI1118` when slicing would need over 25 orders.
    pub async fn place_order_v3(&self, req: &PlaceOrderRequest) -> Result<PlacedOrder> {
        self.place_reconciled("/v3/order/place", req.clone(), true).await
    }

    /// Sends one v3 place request and nothing more: no retry, no order-book check. For callers
    /// that keep their own durable record of each order (the engine's intents) and reconcile by
    /// its deterministic tag themselves when [`Error::outcome_unknown`] says the answer was lost.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] without a tag (nothing is sent); Upstox's validation errors; a
    /// lost answer as a timeout, transport or 5xx error.
    pub async fn place_order_v3_once(&self, req: &PlaceOrderRequest) -> Result<PlacedOrder> {
        let Some(tag) = req.tag.clone() else {
            return Err(Error::InvalidInput(
                "an order sent once needs a tag, to find it again if the answer is lost".into(),
            ));
        };
        let env = self
            .call_data::<OrderIds, _>(Method::POST, "/v3/order/place", &[], Some(req))
            .await?;
        let latency_ms = env
            .metadata
            .as_ref()
            .and_then(|m| m.get("latency"))
            .and_then(serde_json::Value::as_u64);
        Ok(PlacedOrder {
            order_ids: env.data.order_ids,
            tag,
            reconciled: false,
            latency_ms,
        })
    }

    /// Modifies an open order (v3). Not retried.
    ///
    /// # Errors
    /// `UDAPI100010` unknown order, `UDAPI100040` order already complete/cancelled/rejected.
    pub async fn modify_order(&self, req: &ModifyOrderRequest) -> Result<String> {
        Ok(self
            .call_data::<OrderIdData, _>(Method::PUT, "/v3/order/modify", &[], Some(req))
            .await?
            .data
            .order_id)
    }

    /// Modifies an open order (v2).
    ///
    /// # Errors
    /// As [`UpstoxClient::modify_order`].
    pub async fn modify_order_v2(&self, req: &ModifyOrderRequest) -> Result<String> {
        Ok(self
            .call_data::<OrderIdData, _>(Method::PUT, "/v2/order/modify", &[], Some(req))
            .await?
            .data
            .order_id)
    }

    /// Cancels an order (v3). Not retried.
    ///
    /// # Errors
    /// `UDAPI100010` unknown order, `UDAPI100040` order already terminal.
    pub async fn cancel_order(&self, order_id: &str) -> Result<String> {
        Ok(self
            .call_data::<OrderIdData, ()>(Method::DELETE, "/v3/order/cancel", &q(&[("order_id", order_id)]), None)
            .await?
            .data
            .order_id)
    }

    /// Cancels an order (v2).
    ///
    /// # Errors
    /// As [`UpstoxClient::cancel_order`].
    pub async fn cancel_order_v2(&self, order_id: &str) -> Result<String> {
        Ok(self
            .call_data::<OrderIdData, ()>(Method::DELETE, "/v2/order/cancel", &q(&[("order_id", order_id)]), None)
            .await?
            .data
            .order_id)
    }

    async fn multi_status<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let body = body.map_or(crate::client::Body::None, crate::client::Body::Json);
        match self
            .send_raw(method.clone(), path, query, body, crate::client::Auth::Bearer, false)
            .await
        {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                endpoint: format!("{method} {path}"),
                message: e.to_string(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Places up to 25 orders at once; 207 answers (partial success) are returned, not errors.
    ///
    /// # Errors
    /// When every line failed (HTTP 400) or the request was malformed.
    pub async fn place_multi_order(&self, lines: &[MultiOrderLine]) -> Result<MultiOrderResponse> {
        let body = serde_json::to_value(lines).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.multi_status(Method::POST, "/v2/order/multi/place", &[], Some(body))
            .await
    }

    /// Cancels every open order (optionally of one segment or tag).
    ///
    /// # Errors
    /// When there is nothing to cancel, or Upstox refuses.
    pub async fn cancel_all_orders(&self, segment: Option<&str>, tag: Option<&str>) -> Result<BulkOrderResponse> {
        let query = segment_and_tag(segment, tag);
        self.multi_status(Method::DELETE, "/v2/order/multi/cancel", &query, None)
            .await
    }

    /// Exits every open position with market orders (not delivery equity).
    ///
    /// # Errors
    /// When there is nothing to exit, or Upstox refuses.
    pub async fn exit_all_positions(&self, segment: Option<&str>, tag: Option<&str>) -> Result<BulkOrderResponse> {
        let query = segment_and_tag(segment, tag);
        self.multi_status(Method::POST, "/v2/order/positions/exit", &query, None)
            .await
    }

    /// Today's orders.
    ///
    /// # Errors
    /// 401 for a bad token.
    pub async fn order_book(&self) -> Result<Vec<Order>> {
        self.get_data("/v2/order/retrieve-all", &[]).await
    }

    /// One order's current state.
    ///
    /// # Errors
    /// `UDAPI100010` unknown order.
    pub async fn order_details(&self, order_id: &str) -> Result<Order> {
        self.get_data("/v2/order/details", &q(&[("order_id", order_id)])).await
    }

    /// Every state an order went through.
    ///
    /// # Errors
    /// `UDAPI100010` unknown order.
    pub async fn order_history(&self, order_id: &str) -> Result<Vec<Order>> {
        self.get_data("/v2/order/history", &q(&[("order_id", order_id)])).await
    }

    /// Every state of every order carrying `tag`.
    ///
    /// # Errors
    /// 401 for a bad token.
    pub async fn order_history_by_tag(&self, tag: &str) -> Result<Vec<Order>> {
        self.get_data("/v2/order/history", &q(&[("tag", tag)])).await
    }

    /// Today's fills.
    ///
    /// # Errors
    /// 401 for a bad token.
    pub async fn trades_for_day(&self) -> Result<Vec<Trade>> {
        self.get_data("/v2/order/trades/get-trades-for-day", &[]).await
    }

    /// The fills of one order.
    ///
    /// # Errors
    /// `UDAPI100010` unknown order.
    pub async fn order_trades(&self, order_id: &str) -> Result<Vec<Trade>> {
        self.get_data("/v2/order/trades", &q(&[("order_id", order_id)])).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn place_body_has_the_documented_field_names() {
        let mut req = PlaceOrderRequest::limit(
            "NSE_EQ|INE848E01016",
            TransactionType::Buy,
            1,
            Product::Delivery,
            Decimal::new(5205, 2),
        );
        req.tag = Some("t".into());
        let v = serde_json::to_value(&req).expect("serialize");
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"quantity":1,"product":"D","validity":"DAY","price":52.05,"tag":"t","instrument_token":"NSE_EQ|INE848E01016",
                "order_type":"LIMIT","transaction_type":"BUY","disclosed_quantity":0,"trigger_price":0.0,"is_amo":false}"#,
        )
        .expect("doc body");
        assert_eq!(v, doc);
    }

    #[test]
    fn order_book_entry_from_the_docs_parses() {
        let o: Order = serde_json::from_str(
            r#"{"exchange":"NSE","product":"D","price":571.0,"quantity":1,"status":"complete","guid":null,"tag":null,
            "instrument_token":"NSE_EQ|INE062A01020","placed_by":"******","trading_symbol":"SBIN-EQ","tradingsymbol":"SBIN-EQ",
            "order_type":"LIMIT","validity":"DAY","trigger_price":0.0,"disclosed_quantity":0,"transaction_type":"BUY",
            "average_price":570.95,"filled_quantity":1,"pending_quantity":0,"status_message":null,"status_message_raw":null,
            "exchange_order_id":"1300000025660919","parent_order_id":null,"order_id":"231019025562880","variety":"SIMPLE",
            "order_timestamp":"2023-10-19 13:25:13","exchange_timestamp":"2023-10-19 13:25:13","is_amo":false,
            "order_request_id":"1","order_ref_id":"GTT-C23191000044253"}"#,
        )
        .expect("doc order");
        assert_eq!(o.status, OrderStatus::Complete);
        assert_eq!(o.average_price, Decimal::new(57095, 2));
        assert_eq!(o.product, Some(Product::Delivery));
        assert_eq!(o.transaction_type, Some(TransactionType::Buy));
        let back: Order = serde_json::from_value(serde_json::to_value(&o).expect("ser")).expect("de");
        assert_eq!(back, o);
    }

    fn booked(id: &str, req: &PlaceOrderRequest, quantity: u64) -> Order {
        Order {
            order_id: id.into(),
            exchange: Some("NSE".into()),
            product: Some(req.product),
            price: req.price,
            quantity,
            status: OrderStatus::Open,
            tag: req.tag.clone(),
            instrument_token: Some(req.instrument_token.clone()),
            trading_symbol: None,
            order_type: Some(req.order_type),
            validity: Some(req.validity),
            trigger_price: req.trigger_price,
            disclosed_quantity: 0,
            transaction_type: Some(req.transaction_type),
            average_price: Decimal::ZERO,
            filled_quantity: 0,
            pending_quantity: quantity,
            status_message: None,
            exchange_order_id: None,
            parent_order_id: None,
            variety: None,
            order_timestamp: None,
            exchange_timestamp: None,
            is_amo: false,
            order_ref_id: None,
        }
    }

    fn tagged(mut req: PlaceOrderRequest, tag: &str) -> PlaceOrderRequest {
        req.tag = Some(tag.into());
        req
    }

    #[test]
    fn reconciliation_matches_the_order_sent_not_just_its_tag() {
        use std::collections::HashSet;
        let key = "NSE_EQ|INE002A01018";
        let buy1 = tagged(
            PlaceOrderRequest::market(key, TransactionType::Buy, 1, Product::Intraday),
            "R",
        );
        let sell5 = tagged(
            PlaceOrderRequest::market(key, TransactionType::Sell, 5, Product::Intraday),
            "R",
        );
        let earlier = booked("A1", &buy1, 1);
        // The issue's case: an earlier BUY 1 with the same tag is not the SELL 5 that was sent.
        assert!(matches!(
            reconcile(&sell5, std::slice::from_ref(&earlier), &HashSet::new()),
            Reconciled::Mismatch(why) if why.contains("A1") && why.contains("BUY 1")
        ));
        // An order that was in the book before the attempt never counts.
        let before: HashSet<String> = ["A1".to_owned()].into();
        assert_eq!(
            reconcile(&sell5, std::slice::from_ref(&earlier), &before),
            Reconciled::NotFound
        );
        let sold = booked("B1", &sell5, 5);
        assert_eq!(
            reconcile(&sell5, &[earlier.clone(), sold.clone()], &before),
            Reconciled::Found(vec!["B1".into()])
        );
        // Same side and instrument, other quantity or price: not the order sent.
        assert!(matches!(
            reconcile(&sell5, &[booked("B2", &sell5, 4)], &before),
            Reconciled::Mismatch(_)
        ));
        let limit = tagged(
            PlaceOrderRequest::limit(key, TransactionType::Buy, 2, Product::Delivery, Decimal::new(250050, 2)),
            "L",
        );
        let mut cheaper = booked("C1", &limit, 2);
        cheaper.price = Decimal::new(250000, 2);
        assert!(matches!(
            reconcile(&limit, &[cheaper], &HashSet::new()),
            Reconciled::Mismatch(_)
        ));
        assert_eq!(
            reconcile(&limit, &[booked("C2", &limit, 2)], &HashSet::new()),
            Reconciled::Found(vec!["C2".into()])
        );
        // Slices add up to the request; without slicing, two orders are never one request.
        let mut big = tagged(
            PlaceOrderRequest::market("NSE_FO|43919", TransactionType::Buy, 3000, Product::Intraday),
            "S",
        );
        let slices = [booked("S1", &big, 1755), booked("S2", &big, 1245)];
        assert!(matches!(
            reconcile(&big, &slices, &HashSet::new()),
            Reconciled::Mismatch(_)
        ));
        big.slice = Some(true);
        assert_eq!(
            reconcile(&big, &slices, &HashSet::new()),
            Reconciled::Found(vec!["S1".into(), "S2".into()])
        );
        assert!(matches!(
            reconcile(&big, &slices[..1], &HashSet::new()),
            Reconciled::Mismatch(_)
        ));
        assert_eq!(reconcile(&big, &[], &HashSet::new()), Reconciled::NotFound);
    }

    proptest! {
        /// Any one term changed makes a booked order another order.
        #[test]
        fn an_order_differing_in_any_term_is_never_reconciled(field in 0usize..6, qty in 1u64..10_000, paise in 1i64..10_000_000) {
            let req = tagged(
                PlaceOrderRequest::limit("NSE_EQ|INE002A01018", TransactionType::Buy, qty, Product::Intraday, Decimal::new(paise, 2)),
                "P",
            );
            let mut o = booked("X", &req, qty);
            match field {
                0 => o.instrument_token = Some("NSE_EQ|INE009A01021".into()),
                1 => o.transaction_type = Some(TransactionType::Sell),
                2 => o.order_type = Some(OrderType::Market),
                3 => o.product = Some(Product::Delivery),
                4 => o.price += Decimal::new(5, 2),
                _ => o.quantity += 1,
            }
            prop_assert!(matches!(reconcile(&req, &[o], &std::collections::HashSet::new()), Reconciled::Mismatch(_)));
        }

        #[test]
        fn place_request_round_trips(qty in 1u64..100_000, paise in 0i64..10_000_000, buy: bool, tag in proptest::option::of("[a-z0-9]{1,40}"), slice in proptest::option::of(proptest::bool::ANY)) {
            let side = if buy { TransactionType::Buy } else { TransactionType::Sell };
            let mut req = PlaceOrderRequest::limit("NSE_FO|43919", side, qty, Product::Intraday, Decimal::new(paise, 2));
            req.tag = tag;
            req.slice = slice;
            let back: PlaceOrderRequest = serde_json::from_str(&serde_json::to_string(&req).expect("ser")).expect("de");
            prop_assert_eq!(back, req);
        }
    }
}
