//! Frame decoding: protobuf `FeedResponse` bytes into typed ticks.
//!
//! prost does the wire parsing (it never panics on malformed input and allocates no more than
//! the input describes); this module turns the result into our own types.

use upstox_proto::Message;
use upstox_proto::wire::{self, feed, full_feed};

use crate::tick::{
    Auction, Candle, FirstLevel, FrameKind, Greeks, IndexFull, Interval, Ltpc, MarketFull, MarketInfo, Quote,
    RequestMode, Tick, TickData,
};

/// Why bytes are not a feed frame.
#[derive(Debug, thiserror::Error)]
#[error("not a Market Data Feed v3 frame: {0}")]
pub struct DecodeError(String);

impl DecodeError {
    pub(crate) fn new(what: &str) -> Self {
        Self(what.to_owned())
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    MarketInfo(MarketInfo),
    Ticks(Vec<Tick>),
}

fn ltpc(m: &wire::Ltpc) -> Ltpc {
    Ltpc {
        ltp: m.ltp,
        ltt: m.ltt,
        ltq: m.ltq,
        cp: m.cp,
        iep: m.iep,
    }
}

fn quote(m: &wire::Quote) -> Quote {
    Quote {
        bid_qty: m.bid_q,
        bid: m.bid_p,
        ask_qty: m.ask_q,
        ask: m.ask_p,
    }
}

fn greeks(m: &wire::OptionGreeks) -> Greeks {
    Greeks {
        delta: m.delta,
        theta: m.theta,
        gamma: m.gamma,
        vega: m.vega,
        rho: m.rho,
    }
}

fn candles(m: Option<&wire::MarketOhlc>) -> Vec<Candle> {
    m.map(|o| {
        o.ohlc
            .iter()
            .map(|c| Candle {
                interval: Interval::parse(&c.interval),
                open: c.open,
                high: c.high,
                low: c.low,
                close: c.close,
                volume: c.vol,
                ts: c.ts,
            })
            .collect()
    })
    .unwrap_or_default()
}

fn data(f: &wire::Feed) -> TickData {
    match &f.feed_union {
        Some(feed::FeedUnion::Ltpc(l)) => TickData::Ltpc(ltpc(l)),
        Some(feed::FeedUnion::FullFeed(ff)) => match &ff.full_feed_union {
            Some(full_feed::FullFeedUnion::MarketFf(m)) => TickData::Full(Box::new(MarketFull {
                ltpc: m.ltpc.as_ref().map(ltpc),
                depth: m
                    .market_level
                    .as_ref()
                    .map(|l| l.bid_ask_quote.iter().map(quote).collect())
                    .unwrap_or_default(),
                greeks: m.option_greeks.as_ref().map(greeks),
                candles: candles(m.market_ohlc.as_ref()),
                atp: m.atp,
                vtt: m.vtt,
                oi: m.oi,
                iv: m.iv,
                tbq: m.tbq,
                tsq: m.tsq,
                auction: Auction {
                    iep: m.iep,
                    rp: m.rp,
                    ieq: m.ieq,
                    iiq_total: m.iiq_total,
                    iiq_m: m.iiq_m,
                    cas_eligible: m.cas_eligible,
                },
            })),
            Some(full_feed::FullFeedUnion::IndexFf(i)) => TickData::Index(IndexFull {
                ltpc: i.ltpc.as_ref().map(ltpc),
                candles: candles(i.market_ohlc.as_ref()),
            }),
            None => TickData::Empty,
        },
        Some(feed::FeedUnion::FirstLevelWithGreeks(g)) => TickData::OptionGreeks(FirstLevel {
            ltpc: g.ltpc.as_ref().map(ltpc),
            first_depth: g.first_depth.as_ref().map(quote),
            greeks: g.option_greeks.as_ref().map(greeks),
            vtt: g.vtt,
            oi: g.oi,
            iv: g.iv,
        }),
        None => TickData::Empty,
    }
}

/// Decodes the raw protobuf message.
///
/// # Errors
/// When the bytes are not a valid `FeedResponse`.
pub fn decode_wire(bytes: &[u8]) -> Result<wire::FeedResponse, DecodeError> {
    wire::FeedResponse::decode(bytes).map_err(|e| DecodeError(e.to_string()))
}

/// Decodes a frame into typed ticks (or the market-info snapshot) with the hot decoder.
///
/// # Errors
/// When the bytes are not a valid `FeedResponse`.
pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    crate::fast::decode(bytes)
}

/// The same through prost's message types (the reference the hot decoder is checked against).
///
/// # Errors
/// When the bytes are not a valid `FeedResponse`.
pub fn decode_prost(bytes: &[u8]) -> Result<Frame, DecodeError> {
    Ok(from_wire(decode_wire(bytes)?))
}

/// Turns a decoded message into a frame.
pub fn from_wire(msg: wire::FeedResponse) -> Frame {
    if msg.r#type == wire::Type::MarketInfo as i32 {
        let mut segment_status: Vec<(String, String)> = msg
            .market_info
            .map(|i| {
                i.segment_status
                    .into_iter()
                    .map(|(k, v)| {
                        let name = wire::MarketStatus::try_from(v)
                            .map_or_else(|_| v.to_string(), |s| s.as_str_name().to_owned());
                        (k, name)
                    })
                    .collect()
            })
            .unwrap_or_default();
        segment_status.sort();
        return Frame::MarketInfo(MarketInfo {
            current_ts: msg.current_ts,
            segment_status,
        });
    }
    let kind = if msg.r#type == wire::Type::LiveFeed as i32 {
        FrameKind::Live
    } else {
        FrameKind::Initial
    };
    let ticks = msg
        .feeds
        .into_iter()
        .filter_map(|(key, f)| {
            Some(Tick {
                data: data(&f),
                mode: RequestMode::from_wire(f.request_mode),
                instrument_key: key.parse().ok()?,
                kind,
                current_ts: msg.current_ts,
            })
        })
        .collect();
    Frame::Ticks(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(matches!(decode(&[]), Ok(Frame::Ticks(t)) if t.is_empty()));
    }

    #[test]
    fn an_ltpc_frame_decodes() {
        let mut m = wire::FeedResponse {
            r#type: wire::Type::LiveFeed as i32,
            current_ts: 5,
            ..Default::default()
        };
        m.feeds.insert(
            "NSE_FO|45450".into(),
            wire::Feed {
                feed_union: Some(feed::FeedUnion::Ltpc(wire::Ltpc {
                    ltp: 219.3,
                    ltt: 1,
                    ltq: 75,
                    cp: 494.05,
                    iep: Some(219.0),
                })),
                request_mode: 0,
            },
        );
        let Frame::Ticks(t) = decode(&m.encode_to_vec()).expect("decode") else {
            panic!("ticks expected")
        };
        assert_eq!(t[0].instrument_key, "NSE_FO|45450");
        assert_eq!(t[0].kind, FrameKind::Live);
        assert_eq!(
            t[0].ltpc().map(|l| (l.ltp, l.ltq, l.iep)),
            Some((219.3, 75, Some(219.0)))
        );
    }
}
