//! Positions and holdings; rupee amounts are exact decimals.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::Product;

use crate::client::UpstoxClient;
use crate::error::Result;
use crate::wire;

/// A short-term position.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Position {
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub multiplier: f64,
    #[serde(default, with = "wire::decimal")]
    pub value: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub pnl: Decimal,
    #[serde(default, with = "wire::lenient")]
    pub product: Option<Product>,
    pub instrument_token: String,
    #[serde(default, with = "wire::decimal_opt")]
    pub average_price: Option<Decimal>,
    #[serde(default, with = "wire::decimal")]
    pub buy_value: Decimal,
    #[serde(default)]
    pub overnight_quantity: i64,
    #[serde(default, with = "wire::decimal")]
    pub day_buy_value: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub day_buy_price: Decimal,
    #[serde(default)]
    pub day_buy_quantity: i64,
    #[serde(default, with = "wire::decimal")]
    pub day_sell_value: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub day_sell_price: Decimal,
    #[serde(default)]
    pub day_sell_quantity: i64,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default, with = "wire::decimal")]
    pub last_price: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub unrealised: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub realised: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub sell_value: Decimal,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default, with = "wire::decimal")]
    pub close_price: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub buy_price: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub sell_price: Decimal,
}

/// A long-term holding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holding {
    #[serde(default)]
    pub isin: Option<String>,
    #[serde(default)]
    pub cnc_used_quantity: i64,
    #[serde(default)]
    pub collateral_type: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub haircut: f64,
    #[serde(default, with = "wire::lenient")]
    pub product: Option<Product>,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default, with = "wire::decimal")]
    pub last_price: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub close_price: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub pnl: Decimal,
    #[serde(default, with = "wire::decimal")]
    pub day_change: Decimal,
    #[serde(default)]
    pub day_change_percentage: f64,
    pub instrument_token: String,
    #[serde(default, with = "wire::decimal")]
    pub average_price: Decimal,
    #[serde(default)]
    pub t1_quantity: i64,
    #[serde(default)]
    pub exchange: Option<String>,
}

impl UpstoxClient {
    /// # Errors
    /// 401 for a bad token.
    pub async fn positions(&self) -> Result<Vec<Position>> {
        self.get_data("/v2/portfolio/short-term-positions", &[]).await
    }

    /// # Errors
    /// 401 for a bad token.
    pub async fn holdings(&self) -> Result<Vec<Holding>> {
        self.get_data("/v2/portfolio/long-term-holdings", &[]).await
    }
}
