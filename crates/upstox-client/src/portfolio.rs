//! Positions and holdings.

use serde::{Deserialize, Serialize};

use crate::client::UpstoxClient;
use crate::error::Result;

/// A short-term position.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Position {
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub multiplier: f64,
    #[serde(default)]
    pub value: f64,
    #[serde(default)]
    pub pnl: f64,
    #[serde(default)]
    pub product: Option<String>,
    pub instrument_token: String,
    #[serde(default)]
    pub average_price: Option<f64>,
    #[serde(default)]
    pub buy_value: f64,
    #[serde(default)]
    pub overnight_quantity: i64,
    #[serde(default)]
    pub day_buy_value: f64,
    #[serde(default)]
    pub day_buy_price: f64,
    #[serde(default)]
    pub day_buy_quantity: i64,
    #[serde(default)]
    pub day_sell_value: f64,
    #[serde(default)]
    pub day_sell_price: f64,
    #[serde(default)]
    pub day_sell_quantity: i64,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub last_price: f64,
    #[serde(default)]
    pub unrealised: f64,
    #[serde(default)]
    pub realised: f64,
    #[serde(default)]
    pub sell_value: f64,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default)]
    pub close_price: f64,
    #[serde(default)]
    pub buy_price: f64,
    #[serde(default)]
    pub sell_price: f64,
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
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default)]
    pub last_price: f64,
    #[serde(default)]
    pub close_price: f64,
    #[serde(default)]
    pub pnl: f64,
    #[serde(default)]
    pub day_change: f64,
    #[serde(default)]
    pub day_change_percentage: f64,
    pub instrument_token: String,
    #[serde(default)]
    pub average_price: f64,
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
