//! Profile and funds.

use serde::{Deserialize, Serialize};

use crate::client::{UpstoxClient, q};
use crate::error::Result;

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
    pub used_margin: f64,
    pub payin_amount: f64,
    pub span_margin: f64,
    pub adhoc_margin: f64,
    pub notional_cash: f64,
    pub available_margin: f64,
    pub exposure_margin: f64,
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
    pub opening_balance: f64,
    pub added_today: f64,
    pub withdrawn_today: f64,
    pub amount_from_stock_sale: f64,
    pub unpaid_charges: f64,
}

/// Margin-used part of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MarginUsedV3 {
    pub total: f64,
    pub mtf: f64,
    pub span_exposure: f64,
    pub cash_margin_var_elm: f64,
    pub premium_present: f64,
}

/// `cash_available_to_trade` of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CashAvailableV3 {
    pub total: f64,
    pub cash: CashV3,
    pub margin_used: MarginUsedV3,
}

/// `available_to_trade` of funds v3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AvailableToTradeV3 {
    pub total: f64,
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
