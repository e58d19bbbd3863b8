//! The hot decoder: protobuf `FeedResponse` bytes straight into typed ticks, without building
//! prost's intermediate message (no `HashMap<String, Feed>`, no strings for candle intervals).
//!
//! Every message is read by one loop ([`fields`]) over its fields; each message's decoder is a
//! table from field number to the slot it fills. [`FrameDecoder`] keeps its ticks between
//! frames — instrument keys rewritten in place, depth and candles in reused vectors, full-mode
//! boxes recycled — so a warm decoder allocates nothing per tick (a counting allocator proves it
//! in the tests).
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

    #[inline(always)]
    fn varint(&mut self) -> R<u64> {
        // Most varints on this wire (field keys, small counts) are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        // Times and volumes take five to seven bytes: with ten bytes left, one bounds check.
        if let Some(w) = self.buf.get(self.pos..self.pos + 10) {
            let mut v = 0u64;
            for (i, &b) in w.iter().enumerate() {
                v |= u64::from(b & 0x7f) << (7 * i);
                if b < 0x80 {
                    if i == 9 && b > 1 {
                        return Err(err("varint overflows 64 bits"));
                    }
                    self.pos += i + 1;
                    return Ok(v);
                }
            }
            return Err(err("varint longer than 10 bytes"));
        }
        self.varint_tail()
    }

    /// A varint within the last ten bytes of a message.
    #[cold]
    fn varint_tail(&mut self) -> R<u64> {
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

    #[inline(always)]
    fn key(&mut self) -> R<(u32, u8)> {
        let k = self.varint()?;
        let field = (k >> 3) as u32;
        if field == 0 || k >> 3 > u64::from(u32::MAX >> 3) {
            return Err(err("invalid field number"));
        }
        Ok((field, (k & 7) as u8))
    }

    #[inline(always)]
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

    #[inline(always)]
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

    /// A known `double` field (wire type checked as prost checks it).
    #[inline(always)]
    fn double(&mut self, wire: u8) -> R<f64> {
        want(wire, FIXED64)?;
        self.f64()
    }

    /// A known varint field (`int64`, `int32`, `bool`, enums), as its raw 64 bits.
    #[inline(always)]
    fn int(&mut self, wire: u8) -> R<u64> {
        want(wire, VARINT)?;
        self.varint()
    }

    /// A known message, string or bytes field.
    #[inline(always)]
    fn msg(&mut self, wire: u8) -> R<&'a [u8]> {
        want(wire, LEN)?;
        self.bytes()
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

/// A known field with another wire type than its declaration's fails, as in prost.
#[inline(always)]
fn want(wire: u8, expected: u8) -> R<()> {
    if wire == expected {
        Ok(())
    } else {
        Err(err("invalid wire type for a known field"))
    }
}

/// The one field loop: `take` is given each field of the message in `buf` and reads the ones
/// it knows (returning `true`); the rest are skipped.
#[inline(always)]
fn fields<'a>(buf: &'a [u8], mut take: impl FnMut(u32, u8, &mut Reader<'a>) -> R<bool>) -> R<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        if !take(field, wire, &mut r)? {
            r.skip_field(field, wire)?;
        }
    }
    Ok(())
}

fn ltpc(buf: &[u8], m: &mut Ltpc) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => m.ltp = r.double(w)?,
            2 => m.ltt = r.int(w)? as i64,
            3 => m.ltq = r.int(w)? as i64,
            4 => m.cp = r.double(w)?,
            5 => {
                // google.protobuf.DoubleValue: field 1 is the double; a second occurrence merges.
                let mut v = m.iep.unwrap_or(0.0);
                fields(r.msg(w)?, |f, w, r| {
                    if f == 1 {
                        v = r.double(w)?;
                    }
                    Ok(f == 1)
                })?;
                m.iep = Some(v);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn quote(buf: &[u8], q: &mut Quote) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => q.bid_qty = r.int(w)? as i64,
            2 => q.bid = r.double(w)?,
            3 => q.ask_qty = r.int(w)? as i64,
            4 => q.ask = r.double(w)?,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn greeks(buf: &[u8], g: &mut Greeks) -> R<()> {
    fields(buf, |f, w, r| {
        let slot = match f {
            1 => &mut g.delta,
            2 => &mut g.theta,
            3 => &mut g.gamma,
            4 => &mut g.vega,
            5 => &mut g.rho,
            _ => return Ok(false),
        };
        *slot = r.double(w)?;
        Ok(true)
    })
}

fn interval(b: &[u8]) -> R<Interval> {
    Ok(match b {
        b"1d" => Interval::Day,
        b"I1" => Interval::OneMinute,
        b"I30" => Interval::ThirtyMinutes,
        other => Interval::Other(utf8(other)?.to_owned()),
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
    fields(buf, |f, w, r| {
        match f {
            1 => c.interval = interval(r.msg(w)?)?,
            2 => c.open = r.double(w)?,
            3 => c.high = r.double(w)?,
            4 => c.low = r.double(w)?,
            5 => c.close = r.double(w)?,
            6 => c.volume = r.int(w)? as i64,
            7 => c.ts = r.int(w)? as i64,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(c)
}

/// `MarketOHLC` (repeated `OHLC` in field 1), appended to `out` (a repeated field merges by appending).
fn candles(buf: &[u8], out: &mut Vec<Candle>) -> R<()> {
    fields(buf, |f, w, r| {
        if f != 1 {
            return Ok(false);
        }
        let b = r.msg(w)?;
        if out.capacity() == 0 {
            // 1d, I1 (current and previous), I30: usually four candles.
            out.reserve(4);
        }
        out.push(candle(b)?);
        Ok(true)
    })
}

fn market_ff(buf: &[u8], m: &mut MarketFull) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => ltpc(r.msg(w)?, m.ltpc.get_or_insert_with(Ltpc::default))?,
            2 => {
                let levels = r.msg(w)?;
                fields(levels, |f, w, r| {
                    if f != 1 {
                        return Ok(false);
                    }
                    let mut q = Quote::default();
                    quote(r.msg(w)?, &mut q)?;
                    if m.depth.capacity() == 0 {
                        // Five levels in full mode, thirty in full_d30: one allocation either way.
                        m.depth.reserve(if levels.len() > 200 { 30 } else { 5 });
                    }
                    m.depth.push(q);
                    Ok(true)
                })?;
            }
            3 => greeks(r.msg(w)?, m.greeks.get_or_insert_with(Greeks::default))?,
            4 => candles(r.msg(w)?, &mut m.candles)?,
            5 => m.atp = r.double(w)?,
            6 => m.vtt = r.int(w)? as i64,
            7 => m.oi = r.double(w)?,
            8 => m.iv = r.double(w)?,
            9 => m.tbq = r.double(w)?,
            10 => m.tsq = r.double(w)?,
            11 => m.auction.iep = r.double(w)?,
            12 => m.auction.rp = r.double(w)?,
            13 => m.auction.ieq = r.int(w)? as i64,
            14 => m.auction.iiq_total = r.int(w)? as i64,
            15 => m.auction.iiq_m = r.int(w)? as i64,
            16 => m.auction.cas_eligible = r.int(w)? != 0,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn index_ff(buf: &[u8], m: &mut IndexFull) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => ltpc(r.msg(w)?, m.ltpc.get_or_insert_with(Ltpc::default))?,
            2 => candles(r.msg(w)?, &mut m.candles)?,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

fn first_level(buf: &[u8], m: &mut FirstLevel) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => ltpc(r.msg(w)?, m.ltpc.get_or_insert_with(Ltpc::default))?,
            2 => quote(r.msg(w)?, m.first_depth.get_or_insert_with(Quote::default))?,
            3 => greeks(r.msg(w)?, m.greeks.get_or_insert_with(Greeks::default))?,
            4 => m.vtt = r.int(w)? as i64,
            5 => m.oi = r.double(w)?,
            6 => m.iv = r.double(w)?,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

/// Heap parts of earlier ticks, kept for the next ones.
#[derive(Debug, Default)]
struct Spares {
    // Boxed as the ticks hold them: a box moves between a tick and here without allocating.
    #[allow(clippy::vec_box)]
    full: Vec<Box<MarketFull>>,
    candles: Vec<Vec<Candle>>,
}

impl Spares {
    /// Keeps what `data` holds on the heap; `data` is left empty.
    #[inline]
    fn recycle(&mut self, data: &mut TickData) {
        match std::mem::replace(data, TickData::Empty) {
            TickData::Full(b) => self.full.push(b),
            TickData::Index(i) => self.candles.push(i.candles),
            _ => {}
        }
    }

    /// An empty full-mode payload, on a recycled box when there is one.
    #[inline]
    fn full(&mut self) -> Box<MarketFull> {
        match self.full.pop() {
            Some(mut b) => {
                clear_full(&mut b);
                b
            }
            None => Box::default(),
        }
    }

    /// An empty candle list, on recycled storage when there is some.
    #[inline]
    fn candles(&mut self) -> Vec<Candle> {
        let mut c = self.candles.pop().unwrap_or_default();
        c.clear();
        c
    }
}

/// A full-mode payload emptied in place, its depth and candle lists keeping their storage.
#[inline]
fn clear_full(m: &mut MarketFull) {
    let (mut depth, mut candles) = (std::mem::take(&mut m.depth), std::mem::take(&mut m.candles));
    depth.clear();
    candles.clear();
    *m = MarketFull {
        depth,
        candles,
        ..MarketFull::default()
    };
}

/// `FullFeed`: a oneof of `marketFF` (1) and `indexFF` (2). `stale`: `data` still holds an
/// earlier payload (another frame's, or another member's), to be emptied — in place when it is
/// of the same kind — before the first member is read into it; a later member of the same
/// kind merges.
fn full_feed(buf: &[u8], data: &mut TickData, spares: &mut Spares, stale: &mut bool) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => {
                let b = r.msg(w)?;
                match data {
                    TickData::Full(m) if *stale => clear_full(m),
                    TickData::Full(_) => {}
                    _ => {
                        spares.recycle(data);
                        *data = TickData::Full(spares.full());
                    }
                }
                *stale = false;
                if let TickData::Full(m) = data {
                    market_ff(b, m)?;
                }
            }
            2 => {
                let b = r.msg(w)?;
                match data {
                    TickData::Index(m) if *stale => {
                        m.ltpc = None;
                        m.candles.clear();
                    }
                    TickData::Index(_) => {}
                    _ => {
                        spares.recycle(data);
                        *data = TickData::Index(IndexFull {
                            ltpc: None,
                            candles: spares.candles(),
                        });
                    }
                }
                *stale = false;
                if let TickData::Index(m) = data {
                    index_ff(b, m)?;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

/// `Feed` into `data`, which holds an earlier payload (the slot's last one) that is emptied
/// — in place when the union member is the same kind — at the first member read: the oneof
/// `FeedUnion` (a repeated member merges, another member replaces). Returns `requestMode`.
fn feed(buf: &[u8], data: &mut TickData, spares: &mut Spares) -> R<i32> {
    // The member set so far (0: none), and whether a FullFeed wrapper has yet to fill `data`.
    let mut set = 0u32;
    let mut stale = false;
    let mut mode = 0i32;
    fields(buf, |f, w, r| {
        match f {
            1 => {
                let b = r.msg(w)?;
                if set != 1 {
                    set = 1;
                    match data {
                        TickData::Ltpc(l) => *l = Ltpc::default(),
                        _ => {
                            spares.recycle(data);
                            *data = TickData::Ltpc(Ltpc::default());
                        }
                    }
                }
                if let TickData::Ltpc(l) = data {
                    ltpc(b, l)?;
                }
            }
            2 => {
                let b = r.msg(w)?;
                if set != 2 {
                    set = 2;
                    stale = true;
                }
                full_feed(b, data, spares, &mut stale)?;
            }
            3 => {
                let b = r.msg(w)?;
                if set != 3 {
                    set = 3;
                    match data {
                        TickData::OptionGreeks(g) => *g = FirstLevel::default(),
                        _ => {
                            spares.recycle(data);
                            *data = TickData::OptionGreeks(FirstLevel::default());
                        }
                    }
                }
                if let TickData::OptionGreeks(g) = data {
                    first_level(b, g)?;
                }
            }
            4 => mode = r.int(w)? as i32,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if set == 0 || stale {
        // No member, or a FullFeed wrapper with none: an empty payload.
        spares.recycle(data);
    }
    Ok(mode)
}

fn utf8(b: &[u8]) -> R<&str> {
    std::str::from_utf8(b).map_err(|_| err("invalid UTF-8 in a string"))
}

/// `MarketInfo.segmentStatus` (map<string, MarketStatus>); the CAS and pre-open maps are
/// validated as prost would and skipped (the typed `MarketInfo` carries segment statuses only).
fn market_info(buf: &[u8], out: &mut Vec<(String, String)>) -> R<()> {
    fields(buf, |f, w, r| {
        match f {
            1 => {
                let (mut k, mut v) = ("", 0i32);
                fields(r.msg(w)?, |f, w, r| {
                    match f {
                        1 => k = utf8(r.msg(w)?)?,
                        2 => v = r.int(w)? as i32,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                let name = upstox_proto::wire::MarketStatus::try_from(v)
                    .map_or_else(|_| v.to_string(), |s| s.as_str_name().to_owned());
                match out.iter_mut().find(|(s, _)| s == k) {
                    Some(slot) => slot.1 = name,
                    None => out.push((k.to_owned(), name)),
                }
            }
            2 | 3 => {
                // Entries are maps of string → StatusInfo { string, int }.
                fields(r.msg(w)?, |f, w, r| {
                    match f {
                        1 => drop(utf8(r.msg(w)?)?),
                        2 => fields(r.msg(w)?, |f, w, r| {
                            match f {
                                1 => drop(utf8(r.msg(w)?)?),
                                2 => drop(r.int(w)?),
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })
}

/// Decodes frame after frame into the same storage: once warm (each tick slot has seen the
/// largest payload it will carry), decoding allocates nothing.
///
/// ```
/// let mut decoder = upstox_feed::FrameDecoder::default();
/// match decoder.decode(&[]).expect("an empty frame is valid") {
///     upstox_feed::Decoded::Ticks(ticks) => assert!(ticks.is_empty()),
///     upstox_feed::Decoded::MarketInfo(_) => unreachable!(),
/// }
/// ```
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Tick slots; the first `used` are the last frame's.
    ticks: Vec<Tick>,
    used: usize,
    spares: Spares,
}

/// What [`FrameDecoder::decode`] found: ticks borrowed from the decoder (valid until the next
/// frame), or the market-info snapshot.
#[derive(Debug, PartialEq)]
pub enum Decoded<'a> {
    Ticks(&'a [Tick]),
    MarketInfo(MarketInfo),
}

impl FrameDecoder {
    /// Decodes one frame; its ticks replace the previous frame's.
    ///
    /// # Errors
    /// When the bytes are not a valid `FeedResponse` (the decoder stays usable).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
        Ok(match self.fill(bytes)? {
            Some(info) => Decoded::MarketInfo(info),
            None => Decoded::Ticks(&self.ticks[..self.used]),
        })
    }

    /// Decodes into the slots; `Some` for a market-info frame.
    fn fill(&mut self, bytes: &[u8]) -> R<Option<MarketInfo>> {
        // The last frame's heap parts go back first, so this frame's ticks find them whatever
        // order its instruments come in (the map's order changes frame to frame). Payloads
        // without heap parts (ltpc, option greeks) stay in their slots, and a tick of the same
        // kind is decoded over them in place.
        for t in &mut self.ticks[..self.used] {
            if matches!(t.data, TickData::Full(_) | TickData::Index(_)) {
                self.spares.recycle(&mut t.data);
            }
        }
        self.used = 0;
        let mut kind = 0i32;
        let mut current_ts = 0i64;
        let mut info: Option<Vec<(String, String)>> = None;
        // Ticks are filled as the map entries arrive; `type` and `currentTs` may come after
        // them on the wire, so those two are set at the end.
        let Self { ticks, used, spares } = self;
        fields(bytes, |f, w, r| {
            match f {
                1 => kind = r.int(w)? as i32,
                2 => {
                    if *used == ticks.len() {
                        ticks.push(Tick {
                            instrument_key: upstox_types::InstrumentKey::new(upstox_types::Segment::NseEq, ""),
                            kind: FrameKind::Initial,
                            mode: RequestMode::Ltpc,
                            current_ts: 0,
                            data: TickData::Empty,
                        });
                    }
                    let slot = &mut ticks[*used];
                    let mut key: Option<&[u8]> = None;
                    let mut mode = 0i32;
                    let mut valued = false;
                    fields(r.msg(w)?, |f, w, r| {
                        match f {
                            1 => {
                                // Every occurrence is checked (prost refuses a frame whose
                                // first key is not UTF-8 even when a later one replaces it);
                                // the last one by `assign_utf8` below.
                                if let Some(earlier) = key.replace(r.msg(w)?) {
                                    utf8(earlier)?;
                                }
                            }
                            2 => {
                                // A second value replaces the first.
                                valued = true;
                                mode = feed(r.msg(w)?, &mut slot.data, spares)?;
                            }
                            _ => return Ok(false),
                        }
                        Ok(true)
                    })?;
                    if !valued {
                        spares.recycle(&mut slot.data);
                    }
                    // A key that is not SEGMENT|ID of a known segment cannot be subscribed to,
                    // so it is no instrument of ours: skipped, as prost's path skips it.
                    match slot.instrument_key.assign_utf8(key.unwrap_or_default()) {
                        Ok(()) => {
                            slot.mode = RequestMode::from_wire(mode);
                            *used += 1;
                        }
                        Err(upstox_types::InstrumentKeyError::NotUtf8) => return Err(err("invalid UTF-8 in a string")),
                        Err(_) => {}
                    }
                }
                3 => current_ts = r.int(w)? as i64,
                4 => market_info(r.msg(w)?, info.get_or_insert_with(Vec::new))?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if kind == upstox_proto::wire::Type::MarketInfo as i32 {
            let mut segment_status = info.unwrap_or_default();
            segment_status.sort();
            self.used = 0;
            return Ok(Some(MarketInfo {
                current_ts,
                segment_status,
            }));
        }
        let kind = if kind == upstox_proto::wire::Type::LiveFeed as i32 {
            FrameKind::Live
        } else {
            FrameKind::Initial
        };
        for t in &mut self.ticks[..self.used] {
            t.kind = kind;
            t.current_ts = current_ts;
        }
        Ok(None)
    }
}

/// Decodes a frame into typed ticks (or the market-info snapshot), owned.
///
/// # Errors
/// When the bytes are not a valid `FeedResponse`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    let mut d = FrameDecoder::default();
    Ok(match d.fill(bytes)? {
        Some(info) => Frame::MarketInfo(info),
        None => {
            d.ticks.truncate(d.used);
            Frame::Ticks(d.ticks)
        }
    })
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

    /// Found by the `feed_frame` fuzzer: a map entry whose first key is not UTF-8 and whose
    /// second (replacing it) is ASCII. prost refuses the frame; so must we.
    #[test]
    fn a_first_key_that_is_not_utf8_fails_the_frame_even_when_a_later_one_replaces_it() {
        let mut frame = vec![0x12, 0x18, 0x0a, 0x0a];
        frame.extend_from_slice(&[0x1e, 0xdb, 0x76, 0xde, 0x5b, 0x30, 0x20, 0x2c, 0x20, 0x0a]);
        frame.extend_from_slice(&[0x0a, 0x0a]);
        frame.extend_from_slice(b"\n\n\n\n222222");
        assert!(crate::decode::decode_prost(&frame).is_err());
        assert!(decode(&frame).is_err());
        assert!(FrameDecoder::default().decode(&frame).is_err());
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

        /// One decoder reused frame after frame (modes switching, lists shrinking and growing)
        /// gives what a fresh decode gives each time: nothing of an earlier frame leaks.
        #[test]
        fn a_reused_decoder_decodes_like_a_fresh_one(frames in proptest::collection::vec(
            (proptest::collection::hash_map("[A-Z_]{2,6}\\|[0-9A-Za-z ]{1,8}", arb_feed(), 0..6), 0i32..3, any::<i64>()),
            1..6,
        )) {
            let mut reused = FrameDecoder::default();
            for (feeds, kind, ts) in frames {
                let msg = wire::FeedResponse { r#type: kind, feeds, current_ts: ts, market_info: None };
                let bytes = msg.encode_to_vec();
                let fresh = decode(&bytes).expect("fresh");
                let again = match reused.decode(&bytes).expect("reused") {
                    Decoded::Ticks(t) => Frame::Ticks(t.to_vec()),
                    Decoded::MarketInfo(i) => Frame::MarketInfo(i),
                };
                prop_assert_eq!(format!("{fresh:?}"), format!("{again:?}"));
            }
        }

        /// Any bytes: both decoders accept or both refuse.
        #[test]
        fn refuses_what_prost_refuses(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode(&bytes).is_ok(), crate::decode::decode_prost(&bytes).is_ok());
        }
    }
}
