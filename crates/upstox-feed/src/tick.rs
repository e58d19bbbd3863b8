//! Typed ticks: what a consumer gets from a feed frame (no string maps, no JSON).

use serde::Serialize;
use upstox_types::InstrumentKey;

/// Snapshot after a `sub`, or an incremental update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    Initial,
    Live,
}

/// The mode that produced a feed (`Feed.requestMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestMode {
    Ltpc,
    FullD5,
    OptionGreeks,
    FullD30,
    Unknown(i32),
}

impl RequestMode {
    pub(crate) fn from_wire(v: i32) -> Self {
        match v {
            0 => RequestMode::Ltpc,
            1 => RequestMode::FullD5,
            2 => RequestMode::OptionGreeks,
            3 => RequestMode::FullD30,
            n => RequestMode::Unknown(n),
        }
    }
}

/// Last trade: price, time (epoch ms), quantity, previous close; `iep` during auctions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Ltpc {
    pub ltp: f64,
    pub ltt: i64,
    pub ltq: i64,
    pub cp: f64,
    pub iep: Option<f64>,
}

/// One depth level, bid and ask side by side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quote {
    pub bid_qty: i64,
    pub bid: f64,
    pub ask_qty: i64,
    pub ask: f64,
}

/// Option greeks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Greeks {
    pub delta: f64,
    pub theta: f64,
    pub gamma: f64,
    pub vega: f64,
    pub rho: f64,
}

/// Candle interval (`1d`, `I1`, `I30`, or anything else Upstox sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Interval {
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "I1")]
    OneMinute,
    #[serde(rename = "I30")]
    ThirtyMinutes,
    Other(String),
}

impl Interval {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "1d" => Interval::Day,
            "I1" => Interval::OneMinute,
            "I30" => Interval::ThirtyMinutes,
            other => Interval::Other(other.to_owned()),
        }
    }
}

/// An OHLC candle; `ts` is its start (epoch ms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candle {
    pub interval: Interval,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: i64,
    pub ts: i64,
}

/// Closing-auction data (added 2026-09); zero outside the auction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Auction {
    pub iep: f64,
    pub rp: f64,
    pub ieq: i64,
    pub iiq_total: i64,
    pub iiq_m: i64,
    pub cas_eligible: bool,
}

/// Full mode of a tradable instrument.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MarketFull {
    pub ltpc: Option<Ltpc>,
    pub depth: Vec<Quote>,
    pub greeks: Option<Greeks>,
    pub candles: Vec<Candle>,
    pub atp: f64,
    pub vtt: i64,
    pub oi: f64,
    pub iv: f64,
    pub tbq: f64,
    pub tsq: f64,
    pub auction: Auction,
}

/// Full mode of an index.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndexFull {
    pub ltpc: Option<Ltpc>,
    pub candles: Vec<Candle>,
}

/// Option-greeks mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FirstLevel {
    pub ltpc: Option<Ltpc>,
    pub first_depth: Option<Quote>,
    pub greeks: Option<Greeks>,
    pub vtt: i64,
    pub oi: f64,
    pub iv: f64,
}

/// What one instrument's feed carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickData {
    Ltpc(Ltpc),
    Full(Box<MarketFull>),
    Index(IndexFull),
    OptionGreeks(FirstLevel),
    /// A feed with no payload.
    Empty,
}

/// One instrument's update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    pub instrument_key: InstrumentKey,
    pub kind: FrameKind,
    pub mode: RequestMode,
    /// The frame's `currentTs` (epoch ms): when the server sent it.
    pub current_ts: i64,
    pub data: TickData,
}

impl Tick {
    /// The last-trade part, whatever the mode.
    pub fn ltpc(&self) -> Option<&Ltpc> {
        match &self.data {
            TickData::Ltpc(l) => Some(l),
            TickData::Full(f) => f.ltpc.as_ref(),
            TickData::Index(i) => i.ltpc.as_ref(),
            TickData::OptionGreeks(g) => g.ltpc.as_ref(),
            TickData::Empty => None,
        }
    }

    /// Cumulative traded volume, when the mode carries it.
    pub fn volume(&self) -> Option<i64> {
        match &self.data {
            TickData::Full(f) => Some(f.vtt),
            TickData::OptionGreeks(g) => Some(g.vtt),
            _ => None,
        }
    }

    /// Best bid and ask, when the mode carries depth.
    pub fn best(&self) -> Option<Quote> {
        match &self.data {
            TickData::Full(f) => f.depth.first().copied(),
            TickData::OptionGreeks(g) => g.first_depth,
            _ => None,
        }
    }
}

/// Segment statuses of a `market_info` frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MarketInfo {
    pub current_ts: i64,
    /// Segment → status name (`NORMAL_OPEN`, ...), sorted by segment.
    pub segment_status: Vec<(String, String)>,
}
