//! One market-data WebSocket session: control frames in, protobuf frames out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use upstox_proto::Message as _;
use upstox_proto::wire::{
    Feed, FeedResponse, FirstLevelWithGreeks, FullFeed, IndexFullFeed, Ltpc, MarketFullFeed, MarketInfo, MarketLevel,
    MarketOhlc, Ohlc, OptionGreeks, Quote, RequestMode, StatusInfo, Type, feed, full_feed,
};
use upstox_types::{FeedMode, Segment};

use super::random_drop;
use crate::market::calendar::MarketStatus;
use crate::market::candles::{Ohlcv, RunningCandle};
use crate::market::{Market, Side};
use crate::state::AppState;

/// A candle on the wire: `interval`, its start, and its values at the frame's instant.
fn wire(interval: &str, start: DateTime<Utc>, c: Ohlcv) -> Ohlc {
    Ohlc {
        interval: interval.into(),
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        vol: c.volume as i64,
        ts: start.timestamp_millis(),
    }
}

/// What a subscription remembers between frames: last values sent and running candles.
#[derive(Debug, Clone)]
struct Sub {
    mode: FeedMode,
    last_ltp: f64,
    last_vtt: u64,
    /// The day's, this minute's and this half hour's candles (half hours from the session's
    /// open, as the history candles), and the last finished minute.
    day_candle: Option<RunningCandle>,
    minute: Option<RunningCandle>,
    prev_minute: Option<(DateTime<Utc>, Ohlcv)>,
    half_hour: Option<RunningCandle>,
}

impl Sub {
    fn new(mode: FeedMode) -> Self {
        Self {
            mode,
            last_ltp: f64::NAN,
            last_vtt: 0,
            day_candle: None,
            minute: None,
            prev_minute: None,
            half_hour: None,
        }
    }
}

/// The connection's subscriptions.
#[derive(Debug, Default)]
struct Subscriptions {
    subs: BTreeMap<u32, Sub>,
    counts: [usize; 4],
}

impl Subscriptions {
    /// Applies a control frame; answers the instruments that need an `initial_feed` snapshot.
    /// Malformed frames, unknown methods, modes and keys, and keys over a cap are ignored
    /// silently, as the real server does.
    fn apply(&mut self, state: &AppState, bytes: &[u8]) -> Vec<u32> {
        let Some(c) = super::parse_control(bytes) else {
            return Vec::new();
        };
        let keys: Vec<u32> = c
            .data
            .instrument_keys
            .iter()
            .filter_map(|k| state.market.lookup(k))
            .collect();
        match c.method.as_str() {
            "unsub" => {
                for k in keys {
                    if let Some(s) = self.subs.remove(&k) {
                        self.counts[s.mode.index()] -= 1;
                    }
                }
                Vec::new()
            }
            "sub" | "change_mode" => {
                let mode = match c.data.mode.as_deref() {
                    None if c.method == "sub" => FeedMode::Ltpc,
                    None => return Vec::new(),
                    Some(m) => match m.parse::<FeedMode>() {
                        Ok(m) => m,
                        Err(_) => return Vec::new(),
                    },
                };
                let caps = &state.config.feed.caps;
                let mut fresh = Vec::new();
                for k in keys {
                    let mut counts = self.counts;
                    if let Some(old) = self.subs.get(&k) {
                        if old.mode == mode {
                            fresh.push(k);
                            continue;
                        }
                        counts[old.mode.index()] -= 1;
                    }
                    counts[mode.index()] += 1;
                    if caps.allows(&counts) {
                        self.counts = counts;
                        self.subs.insert(k, Sub::new(mode));
                        fresh.push(k);
                    }
                }
                fresh
            }
            _ => Vec::new(),
        }
    }
}

fn request_mode(mode: FeedMode) -> RequestMode {
    match mode {
        FeedMode::Ltpc => RequestMode::Ltpc,
        FeedMode::OptionGreeks => RequestMode::OptionGreeks,
        FeedMode::Full => RequestMode::FullD5,
        FeedMode::FullD30 => RequestMode::FullD30,
    }
}

fn status_code(s: MarketStatus) -> i32 {
    match s {
        MarketStatus::PreOpenStart => 0,
        MarketStatus::PreOpenEnd => 1,
        MarketStatus::NormalOpen => 2,
        MarketStatus::NormalClose => 3,
        MarketStatus::ClosingStart => 4,
        MarketStatus::ClosingEnd => 5,
    }
}

/// The first frame of every connection.
fn market_info(market: &Market, now: DateTime<Utc>) -> FeedResponse {
    let mut info = MarketInfo::default();
    for seg in Segment::ALL {
        let s = market.calendar.status(seg, now);
        info.segment_status.insert(seg.as_str().into(), status_code(s));
        if matches!(seg, Segment::NseEq | Segment::BseEq) {
            let st = StatusInfo {
                status: s.as_str().into(),
                updated_time: now.timestamp_millis(),
            };
            info.cas_market_status.insert(seg.as_str().into(), st.clone());
            info.pre_open_session_status.insert(seg.as_str().into(), st);
        }
    }
    FeedResponse {
        r#type: Type::MarketInfo as i32,
        feeds: Default::default(),
        current_ts: now.timestamp_millis(),
        market_info: Some(info),
    }
}

/// Builds one instrument's feed in its mode, updating the running candles.
fn build_feed(market: &Market, idx: u32, sub: &mut Sub, now: DateTime<Utc>) -> Feed {
    let inst = market.get(idx);
    let seg = inst.segment;
    let t = market.calendar.market_time(seg, now);
    let (ltp, ltq, vtt, cp, oi) = market.snapshot_light(idx, t);
    let status = market.calendar.status(seg, now);
    let auction = matches!(
        status,
        MarketStatus::PreOpenStart | MarketStatus::PreOpenEnd | MarketStatus::ClosingStart
    );
    let ltpc = Ltpc {
        ltp,
        ltt: t.timestamp_millis(),
        ltq: ltq as i64,
        cp,
        iep: auction.then_some(ltp),
    };
    let mode = sub.mode;
    sub.last_ltp = ltp;
    sub.last_vtt = vtt;
    let greeks = || {
        market.option_greeks(idx, t).map(|(g, iv)| {
            (
                OptionGreeks {
                    delta: g.delta,
                    theta: g.theta,
                    gamma: g.gamma,
                    vega: g.vega,
                    rho: g.rho,
                },
                iv,
            )
        })
    };
    let feed_union = match mode {
        FeedMode::Ltpc => feed::FeedUnion::Ltpc(ltpc),
        FeedMode::OptionGreeks => {
            let bid = market.depth(idx, ltp, t, Side::Bid, 1)[0];
            let ask = market.depth(idx, ltp, t, Side::Ask, 1)[0];
            let (g, iv) = greeks().map_or((None, 0.0), |(g, iv)| (Some(g), iv));
            feed::FeedUnion::FirstLevelWithGreeks(FirstLevelWithGreeks {
                ltpc: Some(ltpc),
                first_depth: Some(Quote {
                    bid_q: bid.quantity as i64,
                    bid_p: bid.price,
                    ask_q: ask.quantity as i64,
                    ask_p: ask.price,
                }),
                option_greeks: g,
                vtt: vtt as i64,
                oi,
                iv,
            })
        }
        FeedMode::Full | FeedMode::FullD30 => {
            // Running candles, read on the market's one grid (`market::candles`): the REST
            // candles and quotes of the same instant show the same values.
            let (open_t, _) = market.calendar.session(seg, market.calendar.session_day(seg, t));
            // At a boundary instant the candle that just closed is still the live one (as in
            // the OHLC API): a candle has begun once time has passed its start.
            let since = (t - chrono::Duration::milliseconds(1) - open_t)
                .num_milliseconds()
                .max(0);
            let aligned = |len: i64| open_t + chrono::Duration::milliseconds(since - since % len);
            let m_start = aligned(60_000);
            let h_start = aligned(30 * 60_000);
            if sub.day_candle.is_none_or(|c| c.start != open_t) {
                sub.day_candle = Some(market.running_candle(idx, open_t));
                sub.minute = None;
                sub.prev_minute = None;
                sub.half_hour = None;
            }
            if let Some(m) = sub.minute.filter(|m| m.start != m_start) {
                let mut m = m;
                market.advance(&mut m, m_start);
                sub.prev_minute = (m.start + chrono::Duration::minutes(1) == m_start)
                    .then(|| (m.start, market.candle_at(&m, m_start)));
                sub.minute = None;
            }
            let minute = sub.minute.get_or_insert_with(|| market.running_candle(idx, m_start));
            if sub.half_hour.is_none_or(|h| h.start != h_start) {
                sub.half_hour = Some(market.running_candle(idx, h_start));
            }
            let mut candles = Vec::with_capacity(4);
            let mut day_ohlc = None;
            for (c, iv) in [
                (sub.day_candle.as_mut(), "1d"),
                (Some(minute), "I1"),
                (sub.half_hour.as_mut(), "I30"),
            ] {
                if let Some(c) = c {
                    market.advance(c, t);
                    let now = market.candle_at(c, t);
                    if iv == "1d" {
                        day_ohlc = Some(now);
                    }
                    if iv == "I1"
                        && let Some((start, prev)) = sub.prev_minute
                    {
                        candles.push(wire("I1", start, prev));
                    }
                    candles.push(wire(iv, c.start, now));
                }
            }
            let ohlc = MarketOhlc { ohlc: candles };
            if seg.is_index() {
                feed::FeedUnion::FullFeed(FullFeed {
                    full_feed_union: Some(full_feed::FullFeedUnion::IndexFf(IndexFullFeed {
                        ltpc: Some(ltpc),
                        market_ohlc: Some(ohlc),
                    })),
                })
            } else {
                let levels = if mode == FeedMode::FullD30 { 30 } else { 5 };
                let bids = market.depth(idx, ltp, t, Side::Bid, levels);
                let asks = market.depth(idx, ltp, t, Side::Ask, levels);
                let tbq: u64 = bids.iter().map(|l| l.quantity).sum();
                let tsq: u64 = asks.iter().map(|l| l.quantity).sum();
                let quotes = bids
                    .iter()
                    .zip(&asks)
                    .map(|(b, a)| Quote {
                        bid_q: b.quantity as i64,
                        bid_p: b.price,
                        ask_q: a.quantity as i64,
                        ask_p: a.price,
                    })
                    .collect();
                let (g, iv) = greeks().map_or((None, 0.0), |(g, iv)| (Some(g), iv));
                let day = day_ohlc.map_or(ltp, |c| (c.open + c.high + c.low + c.close) / 4.0);
                let closing = status == MarketStatus::ClosingStart;
                feed::FeedUnion::FullFeed(FullFeed {
                    full_feed_union: Some(full_feed::FullFeedUnion::MarketFf(MarketFullFeed {
                        ltpc: Some(ltpc),
                        market_level: Some(MarketLevel { bid_ask_quote: quotes }),
                        option_greeks: g,
                        market_ohlc: Some(ohlc),
                        atp: (day * 100.0).round() / 100.0,
                        vtt: vtt as i64,
                        oi,
                        iv,
                        tbq: tbq as f64,
                        tsq: tsq as f64,
                        iep: if closing { ltp } else { 0.0 },
                        rp: if closing { cp } else { 0.0 },
                        ieq: if closing { (vtt / 50) as i64 } else { 0 },
                        iiq_total: if closing { (tbq as i64) - (tsq as i64) } else { 0 },
                        iiq_m: if closing { (tbq as i64 - tsq as i64) / 2 } else { 0 },
                        cas_eligible: closing && seg == Segment::NseEq,
                    })),
                })
            }
        }
    };
    Feed {
        feed_union: Some(feed_union),
        request_mode: request_mode(mode) as i32,
    }
}

/// A frame of `kind` with the feeds of `idxs`.
fn frame(
    state: &AppState,
    subs: &mut Subscriptions,
    idxs: &[u32],
    kind: Type,
    now: DateTime<Utc>,
    stamp: DateTime<Utc>,
) -> Vec<u8> {
    let mut resp = FeedResponse {
        r#type: kind as i32,
        feeds: Default::default(),
        current_ts: stamp.timestamp_millis(),
        market_info: None,
    };
    for &i in idxs {
        if let Some(sub) = subs.subs.get_mut(&i) {
            resp.feeds.insert(
                state.market.get(i).instrument_key.clone(),
                build_feed(&state.market, i, sub, now),
            );
        }
    }
    resp.encode_to_vec()
}

/// Instruments whose price or volume moved since the last frame.
fn changed(state: &AppState, subs: &Subscriptions, now: DateTime<Utc>) -> Vec<u32> {
    subs.subs
        .iter()
        .filter(|(i, s)| {
            let inst = state.market.get(**i);
            let t = state.market.calendar.market_time(inst.segment, now);
            let ltp = state.market.ltp(**i, t);
            ltp != s.last_ltp || (s.mode != FeedMode::Ltpc && state.market.volume_at(**i, t) != s.last_vtt)
        })
        .map(|(i, _)| *i)
        .collect()
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// Records the send time of a frame of `idxs` stamped `current`, when a send log is kept.
fn stamp(state: &AppState, current: DateTime<Utc>, idxs: &[u32]) {
    if let Some(log) = state.feed.send_log(state.config.feed.send_log.as_deref()) {
        log.stamp(
            current.timestamp_millis(),
            idxs.iter().map(|&i| state.market.get(i).instrument_key.as_str()),
        );
    }
}

/// Sends one frame; false when the client is gone or does not read it in time.
async fn send(tx: &mut Sink, bytes: Vec<u8>) -> bool {
    crate::feed::send_within(tx, Message::Binary(bytes.into())).await
}

/// Runs one connection until the client leaves or a fault drops it.
pub(super) async fn session(state: AppState, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let mut subs = Subscriptions::default();
    let mut stalled = state.feed.stalled();
    let mut drops = state.feed.drops();
    let cfg = state.config.feed.clone();
    let ping_idle = Duration::from_millis(cfg.ping_idle_ms.max(1));
    let tick = Duration::from_millis(cfg.tick_interval_ms.max(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    if !send(&mut tx, market_info(&state.market, state.now()).encode_to_vec()).await {
        return;
    }
    let mut last_sent = Instant::now();
    loop {
        if !crate::feed::hold_while_stalled(&mut stalled, &mut drops).await {
            return;
        }
        tokio::select! {
            // Dropped: the socket goes away without a close frame.
            _ = drops.recv() => return,
            r = stalled.changed() => if r.is_err() { return },
            msg = rx.next() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Binary(b))) => {
                    let fresh = subs.apply(&state, &b);
                    if !fresh.is_empty() {
                        let now = state.now();
                        let bytes = frame(&state, &mut subs, &fresh, Type::InitialFeed, now, now);
                        stamp(&state, now, &fresh);
                        if !send(&mut tx, bytes).await {
                            return;
                        }
                        last_sent = Instant::now();
                    }
                }
                // Text frames are not accepted by the real server; pings are answered by the stack.
                Some(Ok(_)) => {}
            },
            _ = ticker.tick() => {
                if random_drop(&state, tick) {
                    return;
                }
                let now = state.now();
                let moved = changed(&state, &subs, now);
                let per_frame = if cfg.max_keys_per_frame == 0 { moved.len().max(1) } else { cfg.max_keys_per_frame };
                for chunk in moved.chunks(per_frame) {
                    // Prices are those of the tick instant; currentTs is when this frame leaves.
                    let leaves = state.now();
                    let bytes = frame(&state, &mut subs, chunk, Type::LiveFeed, now, leaves);
                    stamp(&state, leaves, chunk);
                    if !send(&mut tx, bytes).await {
                        return;
                    }
                    last_sent = Instant::now();
                }
                if last_sent.elapsed() >= ping_idle {
                    if !crate::feed::send_within(&mut tx, Message::Ping(Vec::new().into())).await {
                        return;
                    }
                    last_sent = Instant::now();
                }
            }
        }
    }
}
