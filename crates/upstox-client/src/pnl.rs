//! The trade P&L report (`/v2/trade/profit-loss/metadata|data|charges`): realised trades of a
//! segment in a financial year, and the charges paid on them.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::client::{UpstoxClient, q};
use crate::error::{Error, Result};
use crate::wire;

/// The report's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PnlSegment {
    /// `EQ`.
    Equity,
    /// `FO`.
    Derivatives,
    /// `COM`.
    Commodity,
    /// `CD`.
    Currency,
}

impl PnlSegment {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Equity => "EQ",
            Self::Derivatives => "FO",
            Self::Commodity => "COM",
            Self::Currency => "CD",
        }
    }
}

/// An Indian financial year, April to March, written as Upstox wants it (`2526`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinancialYear(i32);

impl FinancialYear {
    /// The year starting in April of `year`.
    pub const fn starting(year: i32) -> Self {
        Self(year)
    }

    /// The year `date` falls in.
    pub fn of(date: NaiveDate) -> Self {
        Self(if date.month() >= 4 {
            date.year()
        } else {
            date.year() - 1
        })
    }
}

impl fmt::Display for FinancialYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}{:02}", self.0.rem_euclid(100), (self.0 + 1).rem_euclid(100))
    }
}

/// How many realised trades the report holds, and the largest page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PnlMetadata {
    pub trades_count: u64,
    pub page_size_limit: u64,
}

/// One realised trade: a quantity bought and sold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PnlTrade {
    #[serde(with = "wire::decimal")]
    pub quantity: Decimal,
    #[serde(default)]
    pub isin: String,
    pub scrip_name: String,
    #[serde(default)]
    pub trade_type: String,
    #[serde(deserialize_with = "dmy")]
    pub buy_date: NaiveDate,
    #[serde(with = "wire::decimal")]
    pub buy_average: Decimal,
    #[serde(deserialize_with = "dmy")]
    pub sell_date: NaiveDate,
    #[serde(with = "wire::decimal")]
    pub sell_average: Decimal,
    #[serde(with = "wire::decimal")]
    pub buy_amount: Decimal,
    #[serde(with = "wire::decimal")]
    pub sell_amount: Decimal,
}

impl PnlTrade {
    /// Sold minus bought (₹).
    pub fn pnl(&self) -> Decimal {
        self.sell_amount - self.buy_amount
    }
}

/// Dates as the report writes them, `dd-mm-yyyy`.
fn dmy<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<NaiveDate, D::Error> {
    let s = String::deserialize(d)?;
    NaiveDate::parse_from_str(&s, "%d-%m-%Y").map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PnlOtherCharges {
    #[serde(with = "wire::decimal")]
    pub transaction: Decimal,
    #[serde(with = "wire::decimal")]
    pub clearing: Decimal,
    #[serde(with = "wire::decimal")]
    pub others: Decimal,
    #[serde(with = "wire::decimal")]
    pub sebi_turnover: Decimal,
    #[serde(with = "wire::decimal")]
    pub demat_transaction: Decimal,
}

/// The charges of the year's trades in a segment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PnlCharges {
    #[serde(with = "wire::decimal")]
    pub total: Decimal,
    #[serde(with = "wire::decimal")]
    pub brokerage: Decimal,
    pub taxes: crate::charges::Taxes,
    pub charges: PnlOtherCharges,
}

#[derive(Deserialize)]
struct ChargesData {
    charges_breakdown: PnlCharges,
}

fn scope(segment: PnlSegment, year: FinancialYear) -> Vec<(String, String)> {
    q(&[("segment", segment.as_str()), ("financial_year", &year.to_string())])
}

impl UpstoxClient {
    /// How many realised trades the report holds.
    ///
    /// # Errors
    /// Transport and API errors.
    pub async fn pnl_metadata(&self, segment: PnlSegment, year: FinancialYear) -> Result<PnlMetadata> {
        self.get_data("/v2/trade/profit-loss/metadata", &scope(segment, year))
            .await
    }

    /// One page of realised trades (`page` from 1; `page_size` up to the metadata's limit).
    ///
    /// # Errors
    /// A page or size of 0; transport and API errors.
    pub async fn pnl_trades(
        &self,
        segment: PnlSegment,
        year: FinancialYear,
        page: u32,
        page_size: u32,
    ) -> Result<Vec<PnlTrade>> {
        if page == 0 || page_size == 0 {
            return Err(Error::InvalidInput("page and page size start at 1".into()));
        }
        let mut query = scope(segment, year);
        query.push(("page_number".into(), page.to_string()));
        query.push(("page_size".into(), page_size.to_string()));
        self.get_data("/v2/trade/profit-loss/data", &query).await
    }

    /// The charges paid on the year's trades in a segment.
    ///
    /// # Errors
    /// Transport and API errors.
    pub async fn pnl_charges(&self, segment: PnlSegment, year: FinancialYear) -> Result<PnlCharges> {
        let data: ChargesData = self
            .get_data("/v2/trade/profit-loss/charges", &scope(segment, year))
            .await?;
        Ok(data.charges_breakdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn financial_years_are_written_as_upstox_wants_them() {
        assert_eq!(FinancialYear::starting(2025).to_string(), "2526");
        assert_eq!(FinancialYear::starting(2099).to_string(), "9900");
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
        assert_eq!(FinancialYear::of(d(2026, 3, 31)), FinancialYear::starting(2025));
        assert_eq!(FinancialYear::of(d(2026, 4, 1)), FinancialYear::starting(2026));
    }
}
