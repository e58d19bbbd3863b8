//! The hot decoder: protobuf `FeedResponse` bytes straight into typed ticks, without building
//! prost's intermediate message (no `HashMap<String, Feed>`, no strings for candle intervals).
//!
//! It follows the wire rules prost follows — unknown fields skipped, a repeated occurrence of a
//! message field merged into the first, the last scalar wins, a known field with the wrong wire
//! type is an error — and is cross-checked against prost by a property test and by the
//! `feed_frame` fuzz target. One difference, invisible to consumers: a map key that appears
//! twice in one frame (the server never does this) yields two ticks, and the event stream keeps
//! the later one, as a map would.

use crate::decode::{DecodeError, Frame};
use crate::tick::{
    Candle, FirstLevel, FrameKind, Greeks, IndexFull, Interval, Ltpc, MarketFull, MarketInfo, Quote, RequestMode, Tick,
    TickData,
};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

type R<T> = Result<T, DecodeError>;

fn err(what: &str) -> DecodeError {
    DecodeError::new(what)
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    fn varint(&mut self) -> R<u64> {
        // Most varints on this wire (field keys, small counts) are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or_else(|| err("truncated varint"))?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(err("varint longer than 10 bytes"))
    }

    #[inline]
    fn key(&mut self) -> R<(u32, u8)> {
        let k = self.varint()?;
        let field = (k >> 3) as u32;
        if field == 0 || k >> 3 > u64::from(u32::MAX >> 3) {
            return Err(err("invalid field number"));
        }
        Ok((field, (k & 7) as u8))
    }

    #[inline]
    fn f64(&mut self) -> R<f64> {
        let b = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or_else(|| err("truncated double"))?;
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    #[inline]
    fn bytes(&mut self) -> R<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| err("length too large"))?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| err("truncated length-delimited field"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    /// Skips a field's value. A group (wire types 3/4, deprecated but legal) is skipped up to
    /// its matching end tag, at most 100 deep, as prost does.
    fn skip_field(&mut self, field: u32, wire: u8) -> R<()> {
        if wire != START_GROUP {
            return self.skip(wire);
        }
        let mut open = vec![field];
        while let Some(&top) = open.last() {
            let (f, w) = self.key()?;
            match w {
                START_GROUP => {
                    if open.len() >= 100 {
                        return Err(err("recursion limit reached"));
                    }
                    open.push(f);
                }
                END_GROUP if f == top => {
                    open.pop();
                }
                END_GROUP => return Err(err("unexpected end group tag")),
                other => self.skip(other)?,
            }
        }
        Ok(())
    }

    fn skip(&mut self, wire: u8) -> R<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.f64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                let end = self.pos + 4;
                if end > self.buf.len() {
                    return Err(err("truncated fixed32"));
                }
                self.pos = end;
                Ok(())
            }
            _ => Err(err("invalid wire type")),
        }
    }
}

/// Reads a field of the expected wire type, or fails like prost.
macro_rules! expect {
    ($wire:expr, $want:expr) => {
        if $wire != $want {
            return Err(err("invalid wire type for a known field"));
        }
    };
}

fn ltpc(buf: &[u8], m: &mut Ltpc) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, FIXED64);
                m.ltp = r.f64()?;
            }
            (2, w) => {
                expect!(w, VARINT);
                m.ltt = r.varint()? as i64;
            }
            (3, w) => {
                expect!(w, VARINT);
                m.ltq = r.varint()? as i64;
            }
            (4, w) => {
                expect!(w, FIXED64);
                m.cp = r.f64()?;
            }
            (5, w) => {
                expect!(w, LEN);
                // google.protobuf.DoubleValue: field 1 is the double; a second occurrence merges.
                let mut v = m.iep.unwrap_or(0.0);
                let mut inner = Reader::new(r.bytes()?);
                while !inner.done() {
                    match inner.key()? {
                        (1, w) => {
                            expect!(w, FIXED64);
                            v = inner.f64()?;
                        }
                        (f, w) => inner.skip_field(f, w)?,
                    }
                }
                m.iep = Some(v);
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

fn quote(buf: &[u8], q: &mut Quote) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, VARINT);
                q.bid_qty = r.varint()? as i64;
            }
            (2, w) => {
                expect!(w, FIXED64);
                q.bid = r.f64()?;
            }
            (3, w) => {
                expect!(w, VARINT);
                q.ask_qty = r.varint()? as i64;
            }
            (4, w) => {
                expect!(w, FIXED64);
                q.ask = r.f64()?;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

fn greeks(buf: &[u8], g: &mut Greeks) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (f, w) = r.key()?;
        let slot = match f {
            1 => &mut g.delta,
            2 => &mut g.theta,
            3 => &mut g.gamma,
            4 => &mut g.vega,
            5 => &mut g.rho,
            _ => {
                r.skip_field(f, w)?;
                continue;
            }
        };
        expect!(w, FIXED64);
        *slot = r.f64()?;
    }
    Ok(())
}

fn interval(b: &[u8]) -> R<Interval> {
    Ok(match b {
        b"1d" => Interval::Day,
        b"I1" => Interval::OneMinute,
        b"I30" => Interval::ThirtyMinutes,
        other => Interval::Other(
            std::str::from_utf8(other)
                .map_err(|_| err("invalid UTF-8 in a string"))?
                .to_owned(),
        ),
    })
}

fn candle(buf: &[u8]) -> R<Candle> {
    let mut c = Candle {
        interval: Interval::Other(String::new()),
        open: 0.0,
        high: 0.0,
        low: 0.0,
        close: 0.0,
        volume: 0,
        ts: 0,
    };
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                c.interval = interval(r.bytes()?)?;
            }
            (f @ 2..=5, w) => {
                expect!(w, FIXED64);
                let v = r.f64()?;
                match f {
                    2 => c.open = v,
                    3 => c.high = v,
                    4 => c.low = v,
                    _ => c.close = v,
                }
            }
            (6, w) => {
                expect!(w, VARINT);
                c.volume = r.varint()? as i64;
            }
            (7, w) => {
                expect!(w, VARINT);
                c.ts = r.varint()? as i64;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(c)
}

/// `MarketOHLC` (repeated `OHLC` in field 1), appended to `out` (a repeated field merges by appending).
fn candles(buf: &[u8], out: &mut Vec<Candle>) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                if out.capacity() == 0 {
                    // 1d, I1 (current and previous), I30: usually four candles.
                    out.reserve(4);
                }
                out.push(candle(r.bytes()?)?);
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

fn market_ff(buf: &[u8], m: &mut MarketFull) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                ltpc(r.bytes()?, m.ltpc.get_or_insert_with(Ltpc::default))?;
            }
            (2, w) => {
                expect!(w, LEN);
                let mut level = Reader::new(r.bytes()?);
                while !level.done() {
                    match level.key()? {
                        (1, w) => {
                            expect!(w, LEN);
                            let mut q = Quote::default();
                            quote(level.bytes()?, &mut q)?;
                            if m.depth.capacity() == 0 {
                                // Five levels in full mode, thirty in full_d30: one allocation either way.
                                m.depth.reserve(if level.buf.len() > 200 { 30 } else { 5 });
                            }
                            m.depth.push(q);
                        }
                        (f, w) => level.skip_field(f, w)?,
                    }
                }
            }
            (3, w) => {
                expect!(w, LEN);
                greeks(r.bytes()?, m.greeks.get_or_insert_with(Greeks::default))?;
            }
            (4, w) => {
                expect!(w, LEN);
                candles(r.bytes()?, &mut m.candles)?;
            }
            (f @ (5 | 7 | 8 | 9 | 10 | 11 | 12), w) => {
                expect!(w, FIXED64);
                let v = r.f64()?;
                match f {
                    5 => m.atp = v,
                    7 => m.oi = v,
                    8 => m.iv = v,
                    9 => m.tbq = v,
                    10 => m.tsq = v,
                    11 => m.auction.iep = v,
                    _ => m.auction.rp = v,
                }
            }
            (f @ (6 | 13 | 14 | 15 | 16), w) => {
                expect!(w, VARINT);
                let v = r.varint()?;
                match f {
                    6 => m.vtt = v as i64,
                    13 => m.auction.ieq = v as i64,
                    14 => m.auction.iiq_total = v as i64,
                    15 => m.auction.iiq_m = v as i64,
                    _ => m.auction.cas_eligible = v != 0,
                }
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

fn index_ff(buf: &[u8], m: &mut IndexFull) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                ltpc(r.bytes()?, m.ltpc.get_or_insert_with(Ltpc::default))?;
            }
            (2, w) => {
                expect!(w, LEN);
                candles(r.bytes()?, &mut m.candles)?;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

fn first_level(buf: &[u8], m: &mut FirstLevel) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                ltpc(r.bytes()?, m.ltpc.get_or_insert_with(Ltpc::default))?;
            }
            (2, w) => {
                expect!(w, LEN);
                quote(r.bytes()?, m.first_depth.get_or_insert_with(Quote::default))?;
            }
            (3, w) => {
                expect!(w, LEN);
                greeks(r.bytes()?, m.greeks.get_or_insert_with(Greeks::default))?;
            }
            (4, w) => {
                expect!(w, VARINT);
                m.vtt = r.varint()? as i64;
            }
            (5, w) => {
                expect!(w, FIXED64);
                m.oi = r.f64()?;
            }
            (6, w) => {
                expect!(w, FIXED64);
                m.iv = r.f64()?;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

/// `FullFeed`: a oneof of `marketFF` (1) and `indexFF` (2).
fn full_feed(buf: &[u8], data: &mut TickData) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                let b = r.bytes()?;
                if !matches!(data, TickData::Full(_)) {
                    *data = TickData::Full(Box::default());
                }
                if let TickData::Full(m) = data {
                    market_ff(b, m)?;
                }
            }
            (2, w) => {
                expect!(w, LEN);
                let b = r.bytes()?;
                if !matches!(data, TickData::Index(_)) {
                    *data = TickData::Index(IndexFull::default());
                }
                if let TickData::Index(m) = data {
                    index_ff(b, m)?;
                }
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

/// `Feed`: the oneof `FeedUnion` and `requestMode`.
fn feed(buf: &[u8]) -> R<(TickData, i32)> {
    // The oneof is held as our TickData; `full` means the FullFeed wrapper was seen.
    let mut data = TickData::Empty;
    let mut full = false;
    let mut mode = 0i32;
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                let b = r.bytes()?;
                if !matches!(data, TickData::Ltpc(_)) {
                    data = TickData::Ltpc(Ltpc::default());
                }
                full = false;
                if let TickData::Ltpc(l) = &mut data {
                    ltpc(b, l)?;
                }
            }
            (2, w) => {
                expect!(w, LEN);
                let b = r.bytes()?;
                if !full {
                    data = TickData::Empty;
                    full = true;
                }
                full_feed(b, &mut data)?;
            }
            (3, w) => {
                expect!(w, LEN);
                let b = r.bytes()?;
                if !matches!(data, TickData::OptionGreeks(_)) {
                    data = TickData::OptionGreeks(FirstLevel::default());
                }
                full = false;
                if let TickData::OptionGreeks(g) = &mut data {
                    first_level(b, g)?;
                }
            }
            (4, w) => {
                expect!(w, VARINT);
                mode = r.varint()? as i32;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok((data, mode))
}

fn utf8(b: &[u8]) -> R<&str> {
    std::str::from_utf8(b).map_err(|_| err("invalid UTF-8 in a string"))
}

/// `MarketInfo.segmentStatus` (map<string, MarketStatus>); the CAS and pre-open maps are skipped
/// (the typed `MarketInfo` carries segment statuses only).
fn market_info(buf: &[u8], out: &mut Vec<(String, String)>) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, LEN);
                let mut e = Reader::new(r.bytes()?);
                let (mut k, mut v) = ("", 0i32);
                while !e.done() {
                    match e.key()? {
                        (1, w) => {
                            expect!(w, LEN);
                            k = utf8(e.bytes()?)?;
                        }
                        (2, w) => {
                            expect!(w, VARINT);
                            v = e.varint()? as i32;
                        }
                        (f, w) => e.skip_field(f, w)?,
                    }
                }
                let name = upstox_proto::wire::MarketStatus::try_from(v)
                    .map_or_else(|_| v.to_string(), |s| s.as_str_name().to_owned());
                match out.iter_mut().find(|(s, _)| s == k) {
                    Some(slot) => slot.1 = name,
                    None => out.push((k.to_owned(), name)),
                }
            }
            (f @ (2 | 3), w) => {
                expect!(w, LEN);
                // Validate like prost would: entries are maps of string → StatusInfo.
                let mut e = Reader::new(r.bytes()?);
                while !e.done() {
                    match e.key()? {
                        (1, w) => {
                            expect!(w, LEN);
                            utf8(e.bytes()?)?;
                        }
                        (2, w) => {
                            expect!(w, LEN);
                            let mut s = Reader::new(e.bytes()?);
                            while !s.done() {
                                match s.key()? {
                                    (1, w) => {
                                        expect!(w, LEN);
                                        utf8(s.bytes()?)?;
                                    }
                                    (2, w) => {
                                        expect!(w, VARINT);
                                        s.varint()?;
                                    }
                                    (f, w) => s.skip_field(f, w)?,
                                }
                            }
                        }
                        (f, w) => e.skip_field(f, w)?,
                    }
                }
                let _ = f;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    Ok(())
}

/// Decodes a frame into typed ticks (or the market-info snapshot).
///
/// # Errors
/// When the bytes are not a valid `FeedResponse`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let mut kind = 0i32;
    let mut current_ts = 0i64;
    // Ticks are built as the map entries arrive; `type` and `currentTs` may come after them on
    // the wire, so those two are filled in at the end.
    let mut ticks: Vec<Tick> = Vec::new();
    let mut info: Option<Vec<(String, String)>> = None;
    let mut r = Reader::new(bytes);
    while !r.done() {
        match r.key()? {
            (1, w) => {
                expect!(w, VARINT);
                kind = r.varint()? as i32;
            }
            (2, w) => {
                expect!(w, LEN);
                let mut e = Reader::new(r.bytes()?);
                let mut key = "";
                let mut value: Option<(TickData, i32)> = None;
                while !e.done() {
                    match e.key()? {
                        (1, w) => {
                            expect!(w, LEN);
                            key = utf8(e.bytes()?)?;
                        }
                        (2, w) => {
                            expect!(w, LEN);
                            value = Some(feed(e.bytes()?)?);
                        }
                        (f, w) => e.skip_field(f, w)?,
                    }
                }
                let (data, mode) = value.unwrap_or((TickData::Empty, 0));
                // A key that is not SEGMENT|ID of a known segment cannot be subscribed to, so it
                // is no instrument of ours: skipped, as prost's path skips it.
                let Ok(instrument_key) = key.parse::<upstox_types::InstrumentKey>() else {
                    continue;
                };
                ticks.push(Tick {
                    instrument_key,
                    kind: FrameKind::Initial,
                    mode: RequestMode::from_wire(mode),
                    current_ts: 0,
                    data,
                });
            }
            (3, w) => {
                expect!(w, VARINT);
                current_ts = r.varint()? as i64;
            }
            (4, w) => {
                expect!(w, LEN);
                market_info(r.bytes()?, info.get_or_insert_with(Vec::new))?;
            }
            (f, w) => r.skip_field(f, w)?,
        }
    }
    if kind == upstox_proto::wire::Type::MarketInfo as i32 {
        let mut segment_status = info.unwrap_or_default();
        segment_status.sort();
        return Ok(Frame::MarketInfo(MarketInfo {
            current_ts,
            segment_status,
        }));
    }
    let kind = if kind == upstox_proto::wire::Type::LiveFeed as i32 {
        FrameKind::Live
    } else {
        FrameKind::Initial
    };
    for t in &mut ticks {
        t.kind = kind;
        t.current_ts = current_ts;
    }
    Ok(Frame::Ticks(ticks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use upstox_proto::Message;
    use upstox_proto::wire::{self, feed, full_feed};

    fn sorted(f: Frame) -> Frame {
        match f {
            Frame::Ticks(mut t) => {
                t.sort_by(|a, b| a.instrument_key.cmp(&b.instrument_key));
                Frame::Ticks(t)
            }
            other => other,
        }
    }

    fn arb_ltpc() -> impl Strategy<Value = wire::Ltpc> {
        (
            any::<f64>(),
            any::<i64>(),
            any::<i64>(),
            any::<f64>(),
            proptest::option::of(any::<f64>()),
        )
            .prop_map(|(ltp, ltt, ltq, cp, iep)| wire::Ltpc { ltp, ltt, ltq, cp, iep })
    }

    fn arb_quote() -> impl Strategy<Value = wire::Quote> {
        (any::<i64>(), any::<f64>(), any::<i64>(), any::<f64>()).prop_map(|(bid_q, bid_p, ask_q, ask_p)| wire::Quote {
            bid_q,
            bid_p,
            ask_q,
            ask_p,
        })
    }

    fn arb_ohlc() -> impl Strategy<Value = wire::Ohlc> {
        (
            prop_oneof![
                Just("1d".to_owned()),
                Just("I1".to_owned()),
                Just("I30".to_owned()),
                "[a-z]{0,3}"
            ],
            any::<f64>(),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(|(interval, p, vol, ts)| wire::Ohlc {
                interval,
                open: p,
                high: p,
                low: p,
                close: p,
                vol,
                ts,
            })
    }

    fn arb_feed() -> impl Strategy<Value = wire::Feed> {
        let union = prop_oneof![
            arb_ltpc().prop_map(|l| Some(feed::FeedUnion::Ltpc(l))),
            (
                proptest::option::of(arb_ltpc()),
                proptest::collection::vec(arb_quote(), 0..6),
                proptest::collection::vec(arb_ohlc(), 0..4),
                any::<f64>(),
                any::<i64>(),
                any::<bool>()
            )
                .prop_map(|(ltpc, q, c, x, n, b)| Some(feed::FeedUnion::FullFeed(wire::FullFeed {
                    full_feed_union: Some(full_feed::FullFeedUnion::MarketFf(wire::MarketFullFeed {
                        ltpc,
                        market_level: Some(wire::MarketLevel { bid_ask_quote: q }),
                        option_greeks: Some(wire::OptionGreeks {
                            delta: x,
                            theta: x,
                            gamma: x,
                            vega: x,
                            rho: x
                        }),
                        market_ohlc: Some(wire::MarketOhlc { ohlc: c }),
                        atp: x,
                        vtt: n,
                        oi: x,
                        iv: x,
                        tbq: x,
                        tsq: x,
                        iep: x,
                        rp: x,
                        ieq: n,
                        iiq_total: n,
                        iiq_m: n,
                        cas_eligible: b,
                    })),
                }))),
            (
                proptest::option::of(arb_ltpc()),
                proptest::collection::vec(arb_ohlc(), 0..3)
            )
                .prop_map(|(ltpc, c)| Some(feed::FeedUnion::FullFeed(wire::FullFeed {
                    full_feed_union: Some(full_feed::FullFeedUnion::IndexFf(wire::IndexFullFeed {
                        ltpc,
                        market_ohlc: Some(wire::MarketOhlc { ohlc: c })
                    })),
                }))),
            (
                proptest::option::of(arb_ltpc()),
                proptest::option::of(arb_quote()),
                any::<i64>(),
                any::<f64>()
            )
                .prop_map(|(ltpc, q, n, x)| Some(feed::FeedUnion::FirstLevelWithGreeks(
                    wire::FirstLevelWithGreeks {
                        ltpc,
                        first_depth: q,
                        option_greeks: None,
                        vtt: n,
                        oi: x,
                        iv: x,
                    }
                ))),
            Just(None),
        ];
        (union, 0i32..5).prop_map(|(feed_union, request_mode)| wire::Feed {
            feed_union,
            request_mode,
        })
    }

    proptest! {
        /// The hand decoder and prost agree on every frame prost can write.
        #[test]
        fn agrees_with_prost(feeds in proptest::collection::hash_map("[A-Z_]{2,6}\\\\|[0-9A-Za-z ]{1,8}", arb_feed(), 0..6), kind in 0i32..3, ts: i64) {
            let msg = wire::FeedResponse { r#type: kind, feeds, current_ts: ts, market_info: None };
            let bytes = msg.encode_to_vec();
            let ours = decode(&bytes).expect("ours");
            let theirs = crate::decode::decode_prost(&bytes).expect("prost");
            // NaN != NaN: compare through the Debug text, which prints NaN the same both ways.
            prop_assert_eq!(format!("{:?}", sorted(ours)), format!("{:?}", sorted(theirs)));
        }

        /// Any bytes: both decoders accept or both refuse.
        #[test]
        fn refuses_what_prost_refuses(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&bytes).is_ok(), crate::decode::decode_prost(&bytes).is_ok());
        }
    }
}
