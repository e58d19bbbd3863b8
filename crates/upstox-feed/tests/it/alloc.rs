//! A warm [`FrameDecoder`] allocates nothing per tick: keys rewritten in place, depth and
//! candles in reused storage (counted by `allocation-counter`, on this test's thread only).

use upstox_feed::{Decoded, FrameDecoder};
use upstox_proto::Message;
use upstox_proto::wire::{self, feed, full_feed};

fn ltpc(n: u64) -> wire::Ltpc {
    wire::Ltpc {
        ltp: 100.0 + n as f64,
        ltt: 1_764_900_000_000 + n as i64,
        ltq: 75,
        cp: 99.5,
        iep: None,
    }
}

fn full(n: u64) -> wire::Feed {
    let quote = |i: u64| wire::Quote {
        bid_q: 75 * i as i64,
        bid_p: 100.0 - i as f64 * 0.05,
        ask_q: 150,
        ask_p: 100.0 + i as f64 * 0.05,
    };
    let candle = |interval: &str| wire::Ohlc {
        interval: interval.to_owned(),
        open: 99.0,
        high: 101.0,
        low: 98.5,
        close: 100.0 + n as f64,
        vol: 12_000,
        ts: 1_764_900_000_000,
    };
    wire::Feed {
        feed_union: Some(feed::FeedUnion::FullFeed(wire::FullFeed {
            full_feed_union: Some(full_feed::FullFeedUnion::MarketFf(wire::MarketFullFeed {
                ltpc: Some(ltpc(n)),
                market_level: Some(wire::MarketLevel {
                    bid_ask_quote: (1..=5).map(quote).collect(),
                }),
                option_greeks: Some(wire::OptionGreeks {
                    delta: 0.5,
                    theta: -3.1,
                    gamma: 0.001,
                    vega: 7.2,
                    rho: 0.3,
                }),
                market_ohlc: Some(wire::MarketOhlc {
                    ohlc: vec![candle("1d"), candle("I1"), candle("I1"), candle("I30")],
                }),
                atp: 100.2,
                vtt: 1_000_000,
                oi: 52_000.0,
                iv: 0.18,
                tbq: 100_000.0,
                tsq: 90_000.0,
                ..Default::default()
            })),
        })),
        request_mode: 1,
    }
}

fn index(n: u64) -> wire::Feed {
    wire::Feed {
        feed_union: Some(feed::FeedUnion::FullFeed(wire::FullFeed {
            full_feed_union: Some(full_feed::FullFeedUnion::IndexFf(wire::IndexFullFeed {
                ltpc: Some(ltpc(n)),
                market_ohlc: Some(wire::MarketOhlc {
                    ohlc: vec![wire::Ohlc {
                        interval: "1d".into(),
                        ..Default::default()
                    }],
                }),
            })),
        })),
        request_mode: 1,
    }
}

/// Frame `i` of a live stream: ten of 200 option contracts (a different ten each frame, keys of
/// different lengths), in full mode, with an index and an ltpc-mode equity among them.
fn frame(i: u64) -> Vec<u8> {
    let mut msg = wire::FeedResponse {
        r#type: wire::Type::LiveFeed as i32,
        current_ts: 1_764_900_000_000 + i as i64,
        ..Default::default()
    };
    for k in 0..10 {
        let token = 40_000 + (i * 7 + k * 13) % 200 * 37;
        msg.feeds.insert(format!("NSE_FO|{token}"), full(i + k));
    }
    msg.feeds.insert("NSE_INDEX|Nifty Bank".into(), index(i));
    msg.feeds.insert(
        "NSE_EQ|INE002A01018".into(),
        wire::Feed {
            feed_union: Some(feed::FeedUnion::Ltpc(ltpc(i))),
            request_mode: 0,
        },
    );
    msg.encode_to_vec()
}

#[test]
fn a_warm_decoder_allocates_nothing_per_tick() {
    let frames: Vec<Vec<u8>> = (0..500).map(frame).collect();
    let mut decoder = FrameDecoder::default();
    // Warm-up: the slots and spares grow to what a frame needs.
    for f in frames.iter().take(20) {
        decoder.decode(f).expect("frame");
    }
    let mut ticks = 0usize;
    let mut ltp_sum = 0.0;
    let counted = allocation_counter::measure(|| {
        for f in &frames {
            match decoder.decode(f).expect("frame") {
                Decoded::Ticks(t) => {
                    ticks += t.len();
                    ltp_sum += t.iter().filter_map(|t| t.ltpc()).map(|l| l.ltp).sum::<f64>();
                }
                Decoded::MarketInfo(_) => panic!("a live frame"),
            }
        }
    });
    assert_eq!(ticks, 500 * 12, "every tick decoded");
    assert!(ltp_sum > 0.0);
    assert_eq!(
        counted.count_total, 0,
        "allocations while decoding {ticks} ticks with a warm decoder: {counted:?}"
    );

    // The allocating path, for contrast: the counter sees allocations when there are some.
    let owned = allocation_counter::measure(|| {
        for f in frames.iter().take(10) {
            let _ = upstox_feed::decode(f).expect("frame");
        }
    });
    assert!(owned.count_total >= 10 * 12, "{owned:?}");
}
