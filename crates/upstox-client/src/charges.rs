//! Charges: the margin a basket of orders needs and the brokerage, taxes and fees of one order
//! (`POST /v2/charges/margin`, `GET /v2/charges/brokerage`). Both only read, so both are retried
//! like any other read.

use reqwest::Method;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::{Product, TransactionType};

use crate::client::{Auth, Body, Envelope, UpstoxClient, q};
use crate::error::{Error, Result};
use crate::wire;

/// At most this many instruments in one margin request.
pub const MAX_MARGIN_BASKET: usize = 20;

/// One leg of a margin request. `price` zero means the market price.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MarginLeg {
    pub instrument_key: String,
    pub quantity: u64,
    pub product: Product,
    pub transaction_type: TransactionType,
    #[serde(with = "wire::decimal")]
    pub price: Decimal,
}

/// The margin of one leg, by component.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LegMargin {
    #[serde(with = "wire::decimal")]
    pub span_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub exposure_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub equity_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub net_buy_premium: Decimal,
    #[serde(with = "wire::decimal")]
    pub additional_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub total_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub tender_margin: Decimal,
}

/// The margin of a basket: one entry per leg in request order, the sum without hedge benefit
/// (`required_margin`) and after it (`final_margin`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MarginReport {
    pub margins: Vec<LegMargin>,
    #[serde(with = "wire::decimal")]
    pub required_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub final_margin: Decimal,
}

/// Taxes of an order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Taxes {
    #[serde(with = "wire::decimal")]
    pub gst: Decimal,
    #[serde(with = "wire::decimal")]
    pub stt: Decimal,
    #[serde(with = "wire::decimal")]
    pub stamp_duty: Decimal,
}

/// Exchange and regulator fees of an order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OtherTaxes {
    #[serde(with = "wire::decimal")]
    pub transaction: Decimal,
    #[serde(with = "wire::decimal")]
    pub clearing: Decimal,
    #[serde(with = "wire::decimal")]
    pub sebi_turnover: Decimal,
}

/// The depository plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DpPlan {
    pub name: String,
    #[serde(with = "wire::decimal")]
    pub min_expense: Decimal,
}

/// The charges of one order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Charges {
    #[serde(with = "wire::decimal")]
    pub total: Decimal,
    #[serde(with = "wire::decimal")]
    pub brokerage: Decimal,
    pub taxes: Taxes,
    pub other_taxes: OtherTaxes,
    pub dp_plan: Option<DpPlan>,
}

#[derive(Deserialize)]
struct ChargesData {
    charges: Charges,
}

impl UpstoxClient {
    /// The margin `basket` needs (1 to [`MAX_MARGIN_BASKET`] legs).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or oversized basket (nothing is sent); Upstox's
    /// validation errors for a leg.
    pub async fn margin(&self, basket: &[MarginLeg]) -> Result<MarginReport> {
        if basket.is_empty() || basket.len() > MAX_MARGIN_BASKET {
            return Err(Error::InvalidInput(format!(
                "a margin request holds 1 to {MAX_MARGIN_BASKET} instruments, not {}",
                basket.len()
            )));
        }
        let body = serde_json::json!({ "instruments": basket });
        let envelope: Envelope<MarginReport> = self
            .send(
                Method::POST,
                "/v2/charges/margin",
                &[],
                Body::Json(body),
                Auth::Bearer,
                true,
            )
            .await?;
        Ok(envelope.data)
    }

    /// The brokerage, taxes and fees of one order of `quantity` at `price`.
    ///
    /// # Errors
    /// Upstox's validation errors (unknown instrument, quantity not in lots).
    pub async fn brokerage(
        &self,
        instrument_token: &str,
        quantity: u64,
        product: Product,
        side: TransactionType,
        price: Decimal,
    ) -> Result<Charges> {
        let quantity = quantity.to_string();
        let price = price.to_string();
        let query = q(&[
            ("instrument_token", instrument_token),
            ("quantity", &quantity),
            ("product", product.as_str()),
            ("transaction_type", side.as_str()),
            ("price", &price),
        ]);
        let data: ChargesData = self.get_data("/v2/charges/brokerage", &query).await?;
        Ok(data.charges)
    }
}
