//! Profile and funds.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::client::{UpstoxClient, q};
use crate::error::Result;
use crate::wire;

/// `GET /v2/user/profile`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub exchanges: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub broker: Option<String>,
    pub user_id: String,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub order_types: Vec<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub poa: Option<bool>,
    #[serde(default)]
    pub ddpi: Option<bool>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// One segment of funds v2.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FundSegment {
    #[serde(with = "wire::decimal")]
    pub used_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub payin_amount: Decimal,
    #[serde(with = "wire::decimal")]
    pub span_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub adhoc_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub notional_cash: Decimal,
    #[serde(with = "wire::decimal")]
    pub available_margin: Decimal,
    #[serde(with = "wire::decimal")]
    pub exposure_margin: Decimal,
}

/// `GET /v2/user/get-funds-and-margin`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FundsV2 {
    pub equity: Option<FundSegment>,
    pub commodity: Option<FundSegment>,
}

/// Cash part of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CashV3 {
    #[serde(with = "wire::decimal")]
    pub opening_balance: Decimal,
    #[serde(with = "wire::decimal")]
    pub added_today: Decimal,
    #[serde(with = "wire::decimal")]
    pub withdrawn_today: Decimal,
    #[serde(with = "wire::decimal")]
    pub amount_from_stock_sale: Decimal,
    #[serde(with = "wire::decimal")]
    pub unpaid_charges: Decimal,
}

/// Margin-used part of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MarginUsedV3 {
    #[serde(with = "wire::decimal")]
    pub total: Decimal,
    #[serde(with = "wire::decimal")]
    pub mtf: Decimal,
    #[serde(with = "wire::decimal")]
    pub span_exposure: Decimal,
    #[serde(with = "wire::decimal")]
    pub cash_margin_var_elm: Decimal,
    #[serde(with = "wire::decimal")]
    pub premium_present: Decimal,
}

/// `cash_available_to_trade` of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CashAvailableV3 {
    #[serde(with = "wire::decimal")]
    pub total: Decimal,
    pub cash: CashV3,
    pub margin_used: MarginUsedV3,
}

/// `available_to_trade` of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AvailableToTradeV3 {
    #[serde(with = "wire::decimal")]
    pub total: Decimal,
    pub cash_available_to_trade: CashAvailableV3,
    /// The pledge part, kept as JSON (deeply nested and rarely used).
    pub pledge_available_to_trade: serde_json::Value,
}

/// `GET /v3/user/get-funds-and-margin`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FundsV3 {
    pub available_to_trade: AvailableToTradeV3,
    pub unavailable_to_trade: serde_json::Value,
}

impl UpstoxClient {
    /// # Errors
    /// 401 when the token is invalid or expired.
    pub async fn profile(&self) -> Result<Profile> {
        self.get_data("/v2/user/profile", &[]).await
    }

    /// Funds v2; `segment` is `SEC` or `COM`.
    ///
    /// # Errors
    /// 423 between 00:00 and 05:30 IST.
    pub async fn funds_v2(&self, segment: Option<&str>) -> Result<FundsV2> {
        let query = segment.map(|s| q(&[("segment", s)])).unwrap_or_default();
        self.get_data("/v2/user/get-funds-and-margin", &query).await
    }

    /// Funds v3.
    ///
    /// # Errors
    /// 423 between 00:00 and 05:30 IST.
    pub async fn funds_v3(&self) -> Result<FundsV3> {
        self.get_data("/v3/user/get-funds-and-margin", &[]).await
    }
}
