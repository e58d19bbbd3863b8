//! GTT (good-till-triggered) orders, v3: place, modify, cancel and read (api-facts §4.11, §15).
//!
//! A GTT waits on Upstox's side for the price and places a MARKET order when a rule fires:
//! `SINGLE` has one entry rule; `MULTIPLE` an entry with a target and/or a stop loss (which
//! become live once the entry's order completes, and cancel each other). None of these calls
//! is retried: a GTT place carries no tag to find it again, so a lost answer comes back as an
//! error ([`Error::outcome_unknown`]) and the caller reads [`UpstoxClient::gtt_orders`] before
//! placing it again.

use chrono::{DateTime, Utc};
use reqwest::Method;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::{GttRuleStatus, GttStrategy, GttTriggerType, GttType, Product, TransactionType};

use crate::client::{UpstoxClient, q};
use crate::error::{Error, Result};
use crate::wire;

/// One rule of a GTT as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GttRule {
    pub strategy: GttStrategy,
    pub trigger_type: GttTriggerType,
    #[serde(with = "wire::decimal")]
    pub trigger_price: Decimal,
    /// A trailing stop loss: the trigger follows the best price at this distance.
    #[serde(with = "wire::decimal_opt", skip_serializing_if = "Option::is_none", default)]
    pub trailing_gap: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub market_protection: Option<f64>,
}

impl GttRule {
    /// A rule without trailing gap or market protection.
    pub fn new(strategy: GttStrategy, trigger_type: GttTriggerType, trigger_price: Decimal) -> Self {
        Self {
            strategy,
            trigger_type,
            trigger_price,
            trailing_gap: None,
            market_protection: None,
        }
    }
}

/// `POST /v3/order/gtt/place`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceGttRequest {
    #[serde(rename = "type")]
    pub kind: GttType,
    pub quantity: u64,
    pub product: Product,
    pub instrument_token: String,
    pub transaction_type: TransactionType,
    pub rules: Vec<GttRule>,
}

/// The type a GTT with `rules` has: `SINGLE` for its entry alone, else `MULTIPLE`.
pub fn kind_for(rules: &[GttRule]) -> GttType {
    if rules.len() == 1 {
        GttType::Single
    } else {
        GttType::Multiple
    }
}

impl PlaceGttRequest {
    /// `SINGLE` when there is one rule, else `MULTIPLE`.
    pub fn new(
        instrument_token: impl Into<String>,
        side: TransactionType,
        quantity: u64,
        product: Product,
        rules: Vec<GttRule>,
    ) -> Self {
        Self {
            kind: kind_for(&rules),
            quantity,
            product,
            instrument_token: instrument_token.into(),
            transaction_type: side,
            rules,
        }
    }
}

/// `PUT /v3/order/gtt/modify`: the rules, type and quantity of an existing GTT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModifyGttRequest {
    #[serde(rename = "type")]
    pub kind: GttType,
    pub quantity: u64,
    pub rules: Vec<GttRule>,
    pub gtt_order_id: String,
}

/// One rule of a GTT as read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GttRuleState {
    pub strategy: GttStrategy,
    pub status: GttRuleStatus,
    #[serde(default)]
    pub message: Option<String>,
    pub trigger_type: GttTriggerType,
    #[serde(with = "wire::decimal")]
    pub trigger_price: Decimal,
    pub transaction_type: TransactionType,
    /// The order the rule placed, once it fired.
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(with = "wire::decimal_opt", default)]
    pub trailing_gap: Option<Decimal>,
}

/// A GTT as `GET /v3/order/gtt` and the portfolio stream's `gtt_order` updates show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GttOrder {
    #[serde(rename = "type")]
    pub kind: GttType,
    /// The segment (`NSE_EQ`, `NSE_FO`, …).
    #[serde(default)]
    pub exchange: String,
    pub quantity: u64,
    pub product: Product,
    pub rules: Vec<GttRuleState>,
    #[serde(default)]
    pub trading_symbol: String,
    pub instrument_token: String,
    pub gtt_order_id: String,
    /// Epoch microseconds.
    pub expires_at: i64,
    /// Epoch microseconds.
    pub created_at: i64,
}

impl GttOrder {
    /// When the GTT was created.
    pub fn created(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.created_at)
    }

    /// When the GTT lapses if nothing fired.
    pub fn expires(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.expires_at)
    }

    /// Whether every rule is final (completed, failed, cancelled or expired).
    pub fn is_finished(&self) -> bool {
        self.rules.iter().all(|r| r.status.is_final())
    }
}

#[derive(Deserialize)]
struct GttIds {
    gtt_order_ids: Vec<String>,
}

impl UpstoxClient {
    /// Places a GTT; answers its id(s). Not retried (see the module docs).
    ///
    /// # Errors
    /// `UDAPI100038` with the reason for rules that contradict each other; a lost answer as a
    /// timeout, transport or 5xx error.
    pub async fn place_gtt(&self, req: &PlaceGttRequest) -> Result<Vec<String>> {
        if req.rules.is_empty() {
            return Err(Error::InvalidInput("a GTT needs at least its ENTRY rule".into()));
        }
        Ok(self
            .call_data::<GttIds, _>(Method::POST, "/v3/order/gtt/place", &[], Some(req))
            .await?
            .data
            .gtt_order_ids)
    }

    /// Changes a GTT's rules (before its entry fires, anything; after, only the exits).
    ///
    /// # Errors
    /// Unknown GTT; a finished one; a change that contradicts itself.
    pub async fn modify_gtt(&self, req: &ModifyGttRequest) -> Result<Vec<String>> {
        Ok(self
            .call_data::<GttIds, _>(Method::PUT, "/v3/order/gtt/modify", &[], Some(req))
            .await?
            .data
            .gtt_order_ids)
    }

    /// Cancels a GTT's rules that have not fired.
    ///
    /// # Errors
    /// Unknown GTT, or one already finished.
    pub async fn cancel_gtt(&self, gtt_order_id: &str) -> Result<Vec<String>> {
        let body = serde_json::json!({ "gtt_order_id": gtt_order_id });
        Ok(self
            .call_data::<GttIds, _>(Method::DELETE, "/v3/order/gtt/cancel", &[], Some(&body))
            .await?
            .data
            .gtt_order_ids)
    }

    /// Every GTT of the user (`None`), or one.
    ///
    /// # Errors
    /// 401 for a bad token; an unknown id.
    pub async fn gtt_orders(&self, gtt_order_id: Option<&str>) -> Result<Vec<GttOrder>> {
        let query = gtt_order_id.map_or_else(Vec::new, |id| q(&[("gtt_order_id", id)]));
        self.get_data("/v3/order/gtt", &query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_update_reads_into_a_typed_gtt() {
        let body = r#"{"update_type":"gtt_order","type":"MULTIPLE","exchange":"NSE_EQ","instrument_token":"NSE_EQ|INE806A01020","quantity":1,"product":"D","gtt_order_id":"GTT-CU25270200024002","expires_at":1772216999000000,"created_at":1740641185000000,"rules":[{"strategy":"ENTRY","status":"FAILED","trigger_type":"IMMEDIATE","trigger_price":7.7,"transaction_type":"BUY","message":"no funds","order_id":"250228010168535","trailing_gap":null}]}"#;
        let g: GttOrder = serde_json::from_str(body).expect("a documented update");
        assert_eq!(g.rules[0].status, GttRuleStatus::Failed);
        assert_eq!(g.rules[0].trigger_price, Decimal::new(77, 1));
        assert!(g.is_finished());
        assert_eq!(g.created().map(|t| t.timestamp()), Some(1_740_641_185));
    }

    #[test]
    fn a_place_body_is_written_as_the_api_reads_it() {
        let req = PlaceGttRequest::new(
            "NSE_EQ|INE002A01018",
            TransactionType::Buy,
            5,
            Product::Delivery,
            vec![
                GttRule::new(GttStrategy::Entry, GttTriggerType::Below, Decimal::new(2400, 0)),
                GttRule {
                    trailing_gap: Some(Decimal::new(5, 0)),
                    ..GttRule::new(GttStrategy::StopLoss, GttTriggerType::Immediate, Decimal::new(2350, 0))
                },
            ],
        );
        let v = serde_json::to_value(&req).expect("json");
        assert_eq!(v["type"], "MULTIPLE");
        assert_eq!(v["rules"][1]["strategy"], "STOPLOSS");
        assert_eq!(v["rules"][1]["trailing_gap"], 5.0);
        assert!(v["rules"][0].get("trailing_gap").is_none());
    }
}
