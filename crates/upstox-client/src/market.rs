//! Market data over REST: LTP, OHLC, full quotes, option greeks, candles, option contracts
//! and chains. Quote maps are keyed `SEGMENT:SYMBOL`; each value carries `instrument_token`
//! (the `SEGMENT|ID` key you asked with).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::client::{UpstoxClient, q, seg};
use crate::error::{Error, Result};

/// v2 LTP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LtpV2 {
    pub last_price: f64,
    pub instrument_token: upstox_types::InstrumentKey,
}

/// v3 LTP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LtpV3 {
    pub last_price: f64,
    pub instrument_token: upstox_types::InstrumentKey,
    #[serde(default)]
    pub ltq: u64,
    #[serde(default)]
    pub volume: u64,
    /// Previous close.
    #[serde(default)]
    pub cp: f64,
}

/// Open, high, low, close.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Ohlc {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

/// v2 OHLC quote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OhlcV2 {
    #[serde(default)]
    pub ohlc: Option<Ohlc>,
    pub last_price: f64,
    pub instrument_token: upstox_types::InstrumentKey,
}

/// A v3 candle with volume and start time.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct OhlcCandle {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    #[serde(default)]
    pub volume: u64,
    /// Candle start, epoch ms.
    #[serde(default)]
    pub ts: i64,
}

/// v3 OHLC quote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OhlcV3 {
    pub last_price: f64,
    pub instrument_token: upstox_types::InstrumentKey,
    #[serde(default)]
    pub prev_ohlc: Option<OhlcCandle>,
    #[serde(default)]
    pub live_ohlc: Option<OhlcCandle>,
}

/// One depth level.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct DepthLevel {
    pub quantity: u64,
    pub price: f64,
    pub orders: u64,
}

/// Five levels each side.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Depth {
    pub buy: Vec<DepthLevel>,
    pub sell: Vec<DepthLevel>,
}

/// Full market quote (v2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FullQuote {
    #[serde(default)]
    pub ohlc: Option<Ohlc>,
    #[serde(default)]
    pub depth: Option<Depth>,
    #[serde(default)]
    pub timestamp: Option<String>,
    pub instrument_token: upstox_types::InstrumentKey,
    #[serde(default)]
    pub symbol: Option<String>,
    pub last_price: f64,
    #[serde(default)]
    pub volume: u64,
    #[serde(default)]
    pub average_price: f64,
    #[serde(default)]
    pub oi: f64,
    #[serde(default)]
    pub net_change: f64,
    #[serde(default)]
    pub total_buy_quantity: f64,
    #[serde(default)]
    pub total_sell_quantity: f64,
    #[serde(default)]
    pub lower_circuit_limit: f64,
    #[serde(default)]
    pub upper_circuit_limit: f64,
    /// Epoch ms as a string.
    #[serde(default)]
    pub last_trade_time: Option<String>,
    #[serde(default)]
    pub oi_day_high: f64,
    #[serde(default)]
    pub oi_day_low: f64,
}

/// Option greeks quote (v3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionGreekQuote {
    pub last_price: f64,
    pub instrument_token: upstox_types::InstrumentKey,
    #[serde(default)]
    pub ltq: u64,
    #[serde(default)]
    pub volume: u64,
    #[serde(default)]
    pub cp: f64,
    #[serde(default)]
    pub iv: f64,
    #[serde(default)]
    pub vega: f64,
    #[serde(default)]
    pub gamma: f64,
    #[serde(default)]
    pub theta: f64,
    #[serde(default)]
    pub delta: f64,
    #[serde(default)]
    pub oi: f64,
}

/// `[timestamp, open, high, low, close, volume, oi]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle(pub String, pub f64, pub f64, pub f64, pub f64, pub u64, pub f64);

#[derive(Debug, Deserialize)]
struct Candles {
    candles: Vec<Candle>,
}

/// Candle size for v3 history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandleUnit {
    Minutes(u32),
    Hours(u32),
    Days,
    Weeks,
    Months,
}

impl CandleUnit {
    fn path(self) -> String {
        match self {
            CandleUnit::Minutes(n) => format!("minutes/{n}"),
            CandleUnit::Hours(n) => format!("hours/{n}"),
            CandleUnit::Days => "days/1".into(),
            CandleUnit::Weeks => "weeks/1".into(),
            CandleUnit::Months => "months/1".into(),
        }
    }
}

/// An option contract (`/v2/option/contract`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionContract {
    pub instrument_key: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub exchange: Option<String>,
    /// `YYYY-MM-DD`.
    pub expiry: String,
    #[serde(default)]
    pub exchange_token: Option<String>,
    #[serde(default)]
    pub trading_symbol: Option<String>,
    #[serde(default)]
    pub tick_size: f64,
    #[serde(default)]
    pub lot_size: u64,
    pub instrument_type: String,
    #[serde(default)]
    pub freeze_quantity: f64,
    #[serde(default)]
    pub underlying_key: Option<String>,
    #[serde(default)]
    pub underlying_symbol: Option<String>,
    pub strike_price: f64,
    #[serde(default)]
    pub weekly: bool,
}

/// Market data of one side of a chain row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChainMarketData {
    pub ltp: f64,
    pub volume: u64,
    pub oi: f64,
    pub close_price: f64,
    pub bid_price: f64,
    pub bid_qty: u64,
    pub ask_price: f64,
    pub ask_qty: u64,
    pub prev_oi: f64,
}

/// Greeks of one side of a chain row.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChainGreeks {
    pub vega: f64,
    pub theta: f64,
    pub gamma: f64,
    pub delta: f64,
    pub iv: f64,
    pub pop: f64,
}

/// One side (call or put) of a chain row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChainSide {
    pub instrument_key: String,
    #[serde(default)]
    pub market_data: ChainMarketData,
    #[serde(default)]
    pub option_greeks: ChainGreeks,
}

/// One strike of an option chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionChainRow {
    pub expiry: String,
    #[serde(default)]
    pub pcr: f64,
    pub strike_price: f64,
    pub underlying_key: String,
    pub underlying_spot_price: f64,
    #[serde(default)]
    pub call_options: Option<ChainSide>,
    #[serde(default)]
    pub put_options: Option<ChainSide>,
}

/// A segment's market status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MarketStatus {
    pub exchange: String,
    pub status: String,
    #[serde(default)]
    pub last_updated: i64,
}

/// An exchange's session on one day (epoch ms).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExchangeTiming {
    pub exchange: String,
    pub start_time: i64,
    pub end_time: i64,
}

/// An exchange holiday.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holiday {
    pub date: chrono::NaiveDate,
    #[serde(default)]
    pub description: String,
    /// `TRADING_HOLIDAY`, `SETTLEMENT_HOLIDAY` or `SPECIAL_TIMING`.
    #[serde(default)]
    pub holiday_type: String,
    #[serde(default)]
    pub closed_exchanges: Vec<String>,
    /// Exchanges that trade that day anyway, with their hours.
    #[serde(default)]
    pub open_exchanges: Vec<ExchangeTiming>,
}

fn keys_param(keys: &[&str]) -> Result<Vec<(String, String)>> {
    if keys.is_empty() {
        return Err(Error::InvalidInput("give at least one instrument key".into()));
    }
    for k in keys {
        k.parse::<upstox_types::InstrumentKey>()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
    }
    Ok(q(&[("instrument_key", &keys.join(","))]))
}

/// Quote maps keyed `SEGMENT:SYMBOL`.
pub type QuoteMap<T> = HashMap<String, T>;

impl UpstoxClient {
    /// LTP v3 of up to 500 keys.
    ///
    /// # Errors
    /// A malformed key (before sending), or Upstox's error.
    pub async fn ltp(&self, keys: &[&str]) -> Result<QuoteMap<LtpV3>> {
        self.get_data("/v3/market-quote/ltp", &keys_param(keys)?).await
    }

    /// LTP v2 (deprecated upstream).
    ///
    /// # Errors
    /// As [`UpstoxClient::ltp`].
    pub async fn ltp_v2(&self, keys: &[&str]) -> Result<QuoteMap<LtpV2>> {
        self.get_data("/v2/market-quote/ltp", &keys_param(keys)?).await
    }

    /// OHLC v2; interval `1d`, `I1` or `I30`.
    ///
    /// # Errors
    /// As [`UpstoxClient::ltp`].
    pub async fn ohlc_v2(&self, keys: &[&str], interval: &str) -> Result<QuoteMap<OhlcV2>> {
        let mut query = keys_param(keys)?;
        query.push(("interval".into(), interval.into()));
        self.get_data("/v2/market-quote/ohlc", &query).await
    }

    /// OHLC v3 (previous and live candle); interval `1d`, `I1` or `I30`.
    ///
    /// # Errors
    /// As [`UpstoxClient::ltp`].
    pub async fn ohlc(&self, keys: &[&str], interval: &str) -> Result<QuoteMap<OhlcV3>> {
        let mut query = keys_param(keys)?;
        query.push(("interval".into(), interval.into()));
        self.get_data("/v3/market-quote/ohlc", &query).await
    }

    /// Full quotes (depth, OHLC, circuit limits) of up to 500 keys.
    ///
    /// # Errors
    /// As [`UpstoxClient::ltp`].
    pub async fn full_quote(&self, keys: &[&str]) -> Result<QuoteMap<FullQuote>> {
        self.get_data("/v2/market-quote/quotes", &keys_param(keys)?).await
    }

    /// Option greeks of up to 50 option keys.
    ///
    /// # Errors
    /// As [`UpstoxClient::ltp`].
    pub async fn option_greeks(&self, keys: &[&str]) -> Result<QuoteMap<OptionGreekQuote>> {
        self.get_data("/v3/market-quote/option-greek", &keys_param(keys)?).await
    }

    /// Historical candles v3, newest first. Dates `YYYY-MM-DD`. Needs no token.
    ///
    /// # Errors
    /// An unknown key or a date range longer than Upstox allows for the unit.
    pub async fn historical_candles(
        &self,
        key: &str,
        unit: CandleUnit,
        to: &str,
        from: Option<&str>,
    ) -> Result<Vec<Candle>> {
        let mut path = format!("/v3/historical-candle/{}/{}/{to}", seg(key), unit.path());
        if let Some(f) = from {
            path = format!("{path}/{f}");
        }
        self.public_candles(&path).await
    }

    /// Historical candles v2 (`1minute`, `30minute`, `day`, `week`, `month`).
    ///
    /// # Errors
    /// As [`UpstoxClient::historical_candles`].
    pub async fn historical_candles_v2(
        &self,
        key: &str,
        interval: &str,
        to: &str,
        from: Option<&str>,
    ) -> Result<Vec<Candle>> {
        let mut path = format!("/v2/historical-candle/{}/{interval}/{to}", seg(key));
        if let Some(f) = from {
            path = format!("{path}/{f}");
        }
        self.public_candles(&path).await
    }

    /// Today's candles so far (v3).
    ///
    /// # Errors
    /// An unknown key or unit.
    pub async fn intraday_candles(&self, key: &str, unit: CandleUnit) -> Result<Vec<Candle>> {
        self.public_candles(&format!("/v3/historical-candle/intraday/{}/{}", seg(key), unit.path()))
            .await
    }

    /// Today's candles so far (v2: `1minute` or `30minute`).
    ///
    /// # Errors
    /// An unknown key or interval.
    pub async fn intraday_candles_v2(&self, key: &str, interval: &str) -> Result<Vec<Candle>> {
        self.public_candles(&format!("/v2/historical-candle/intraday/{}/{interval}", seg(key)))
            .await
    }

    async fn public_candles(&self, path: &str) -> Result<Vec<Candle>> {
        let env: crate::client::Envelope<Candles> = self
            .send(
                reqwest::Method::GET,
                path,
                &[],
                crate::client::Body::None,
                crate::client::Auth::Public,
                true,
            )
            .await?;
        Ok(env.data.candles)
    }

    /// Option contracts of an underlying (`NSE_INDEX|Nifty 50`), optionally one expiry.
    ///
    /// # Errors
    /// A malformed key.
    pub async fn option_contracts(&self, underlying: &str, expiry: Option<&str>) -> Result<Vec<OptionContract>> {
        let mut query = q(&[("instrument_key", underlying)]);
        if let Some(e) = expiry {
            query.push(("expiry_date".into(), e.into()));
        }
        self.get_data("/v2/option/contract", &query).await
    }

    /// The option chain of an underlying for one expiry.
    ///
    /// # Errors
    /// A malformed key or date.
    pub async fn option_chain(&self, underlying: &str, expiry: &str) -> Result<Vec<OptionChainRow>> {
        self.get_data(
            "/v2/option/chain",
            &q(&[("instrument_key", underlying), ("expiry_date", expiry)]),
        )
        .await
    }

    /// Status of an exchange (`NSE`, `NFO`, `BSE`, `BFO`, `MCX`).
    ///
    /// # Errors
    /// An unknown exchange.
    pub async fn market_status(&self, exchange: &str) -> Result<MarketStatus> {
        self.get_data(&format!("/v2/market/status/{}", seg(exchange)), &[])
            .await
    }

    /// This year's exchange holidays.
    ///
    /// # Errors
    /// Transport and API errors.
    pub async fn market_holidays(&self) -> Result<Vec<Holiday>> {
        self.get_data("/v2/market/holidays", &[]).await
    }

    /// The holiday on `date`, if it is one (an empty list otherwise).
    ///
    /// # Errors
    /// Transport and API errors.
    pub async fn market_holiday(&self, date: chrono::NaiveDate) -> Result<Vec<Holiday>> {
        self.get_data(&format!("/v2/market/holidays/{}", date.format("%Y-%m-%d")), &[])
            .await
    }

    /// Each exchange's session on `date` (none on a weekend or a holiday).
    ///
    /// # Errors
    /// Transport and API errors.
    pub async fn exchange_timings(&self, date: chrono::NaiveDate) -> Result<Vec<ExchangeTiming>> {
        self.get_data(&format!("/v2/market/timings/{}", date.format("%Y-%m-%d")), &[])
            .await
    }
}
