//! The instrument master in memory: gunzip, parse and index the BOD file (`complete.json.gz`,
//! 100,000+ records) by key, by trading symbol, and option chains by underlying, expiry, strike
//! and type.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod scan;

/// One record of the instrument master, with the real file's field names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstrumentRecord {
    pub segment: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub exchange: String,
    #[serde(default)]
    pub isin: Option<String>,
    #[serde(default)]
    pub instrument_type: String,
    pub instrument_key: String,
    #[serde(default)]
    pub lot_size: Option<u32>,
    #[serde(default)]
    pub freeze_quantity: Option<f64>,
    #[serde(default, deserialize_with = "string_or_number")]
    pub exchange_token: String,
    /// In paise (`5.0` = ₹0.05).
    #[serde(default)]
    pub tick_size: Option<f64>,
    #[serde(default)]
    pub trading_symbol: String,
    #[serde(default)]
    pub short_name: Option<String>,
    #[serde(default)]
    pub security_type: Option<String>,
    /// Epoch milliseconds.
    #[serde(default)]
    pub expiry: Option<i64>,
    #[serde(default)]
    pub strike_price: Option<f64>,
    #[serde(default)]
    pub weekly: Option<bool>,
    #[serde(default)]
    pub minimum_lot: Option<u32>,
    #[serde(default)]
    pub underlying_key: Option<String>,
    #[serde(default)]
    pub underlying_type: Option<String>,
    #[serde(default)]
    pub underlying_symbol: Option<String>,
}

/// `exchange_token` is a string for most records and a number for some indices.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Either::deserialize(d)? {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    })
}

impl InstrumentRecord {
    /// Whether this is a call (`CE`) or put (`PE`).
    pub fn is_option(&self) -> bool {
        matches!(self.instrument_type.as_str(), "CE" | "PE")
    }
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OptionKind {
    #[serde(rename = "CE")]
    Call,
    #[serde(rename = "PE")]
    Put,
}

/// Strikes are indexed in paise so they can be ordered and compared exactly.
fn strike_key(strike: f64) -> i64 {
    (strike * 100.0).round() as i64
}

/// A borrowed view of one record of the master (the same fields as [`InstrumentRecord`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Instrument<'a> {
    pub segment: &'a str,
    pub name: &'a str,
    pub exchange: &'a str,
    pub isin: Option<&'a str>,
    pub instrument_type: &'a str,
    pub instrument_key: &'a str,
    pub lot_size: Option<u32>,
    pub freeze_quantity: Option<f64>,
    pub exchange_token: &'a str,
    /// In paise.
    pub tick_size: Option<f64>,
    pub trading_symbol: &'a str,
    pub short_name: Option<&'a str>,
    pub security_type: Option<&'a str>,
    /// Epoch milliseconds.
    pub expiry: Option<i64>,
    pub strike_price: Option<f64>,
    pub weekly: Option<bool>,
    pub minimum_lot: Option<u32>,
    pub underlying_key: Option<&'a str>,
    pub underlying_type: Option<&'a str>,
    pub underlying_symbol: Option<&'a str>,
}

impl Instrument<'_> {
    /// Whether this is a call (`CE`) or put (`PE`).
    pub fn is_option(&self) -> bool {
        matches!(self.instrument_type, "CE" | "PE")
    }

    /// An owned copy.
    pub fn to_record(&self) -> InstrumentRecord {
        let own = |s: Option<&str>| s.map(str::to_owned);
        InstrumentRecord {
            segment: self.segment.to_owned(),
            name: self.name.to_owned(),
            exchange: self.exchange.to_owned(),
            isin: own(self.isin),
            instrument_type: self.instrument_type.to_owned(),
            instrument_key: self.instrument_key.to_owned(),
            lot_size: self.lot_size,
            freeze_quantity: self.freeze_quantity,
            exchange_token: self.exchange_token.to_owned(),
            tick_size: self.tick_size,
            trading_symbol: self.trading_symbol.to_owned(),
            short_name: own(self.short_name),
            security_type: own(self.security_type),
            expiry: self.expiry,
            strike_price: self.strike_price,
            weekly: self.weekly,
            minimum_lot: self.minimum_lot,
            underlying_key: own(self.underlying_key),
            underlying_type: own(self.underlying_type),
            underlying_symbol: own(self.underlying_symbol),
        }
    }
}

/// Where a string lives: a range of the JSON text, or of the side buffer for strings that had
/// escapes (and so could not be borrowed). `NONE` marks an absent optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span(u32, u32);

impl Span {
    const NONE: Span = Span(u32::MAX, 0);
    const SIDE: u32 = 1 << 31;
}

/// One parsed record, as spans and numbers (no allocation per record).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    segment: Span,
    name: Span,
    exchange: Span,
    isin: Span,
    instrument_type: Span,
    instrument_key: Span,
    exchange_token: Span,
    trading_symbol: Span,
    short_name: Span,
    security_type: Span,
    underlying_key: Span,
    underlying_type: Span,
    underlying_symbol: Span,
    lot_size: Option<u32>,
    minimum_lot: Option<u32>,
    freeze_quantity: Option<f64>,
    tick_size: Option<f64>,
    strike_price: Option<f64>,
    expiry: Option<i64>,
    weekly: Option<bool>,
}

/// A string field that borrows from the input when it can.
#[derive(Debug)]
enum Text<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'a>, E> {
                Ok(Text::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'a>, E> {
                Ok(Text::Owned(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Text<'a>, E> {
                Ok(Text::Owned(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Text<'a>, E> {
                Ok(Text::Owned(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Text<'a>, E> {
                Ok(Text::Owned(v.to_string()))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The wire record, borrowing its strings.
#[derive(Debug, Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    segment: Text<'a>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    exchange: Option<Text<'a>>,
    #[serde(borrow, default)]
    isin: Option<Text<'a>>,
    #[serde(borrow, default)]
    instrument_type: Option<Text<'a>>,
    #[serde(borrow)]
    instrument_key: Text<'a>,
    #[serde(default)]
    lot_size: Option<u32>,
    #[serde(default)]
    freeze_quantity: Option<f64>,
    #[serde(borrow, default)]
    exchange_token: Option<Text<'a>>,
    #[serde(default)]
    tick_size: Option<f64>,
    #[serde(borrow, default)]
    trading_symbol: Option<Text<'a>>,
    #[serde(borrow, default)]
    short_name: Option<Text<'a>>,
    #[serde(borrow, default)]
    security_type: Option<Text<'a>>,
    #[serde(default)]
    expiry: Option<i64>,
    #[serde(default)]
    strike_price: Option<f64>,
    #[serde(default)]
    weekly: Option<bool>,
    #[serde(default)]
    minimum_lot: Option<u32>,
    #[serde(borrow, default)]
    underlying_key: Option<Text<'a>>,
    #[serde(borrow, default)]
    underlying_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    underlying_symbol: Option<Text<'a>>,
}

/// Turns borrowed strings into spans of `base`, owned ones into spans of `side`.
struct SpanMaker<'a> {
    base: &'a str,
    side: String,
}

impl SpanMaker<'_> {
    fn span(&mut self, t: Option<Text<'_>>) -> Span {
        match t {
            None => Span::NONE,
            Some(Text::Borrowed(s)) => {
                // A borrowed string lies inside `base`: its offset is the pointer difference.
                let start = s.as_ptr() as usize - self.base.as_ptr() as usize;
                Span(start as u32, s.len() as u32)
            }
            Some(Text::Owned(s)) => {
                let start = self.side.len() as u32 | Span::SIDE;
                self.side.push_str(&s);
                Span(start, s.len() as u32)
            }
        }
    }

    fn row(&mut self, r: RawRecord<'_>) -> Row {
        Row {
            segment: self.span(Some(r.segment)),
            name: self.span(r.name),
            exchange: self.span(r.exchange),
            isin: self.span(r.isin),
            instrument_type: self.span(r.instrument_type),
            instrument_key: self.span(Some(r.instrument_key)),
            exchange_token: self.span(r.exchange_token),
            trading_symbol: self.span(r.trading_symbol),
            short_name: self.span(r.short_name),
            security_type: self.span(r.security_type),
            underlying_key: self.span(r.underlying_key),
            underlying_type: self.span(r.underlying_type),
            underlying_symbol: self.span(r.underlying_symbol),
            lot_size: r.lot_size,
            minimum_lot: r.minimum_lot,
            freeze_quantity: r.freeze_quantity,
            tick_size: r.tick_size,
            strike_price: r.strike_price,
            expiry: r.expiry,
            weekly: r.weekly,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Parses the records between byte `from` (the first `{`) and `to` (exclusive) of `text`:
/// objects separated by commas; stops at `to` or at the closing `]`.
fn parse_records(text: &str, from: usize, to: usize) -> Result<(Vec<Row>, String, usize)> {
    let bytes = text.as_bytes();
    let mut maker = SpanMaker {
        base: text,
        side: String::new(),
    };
    let mut rows = Vec::with_capacity((to - from) / 300 + 1);
    let mut order = scan::KeyOrder::default();
    let mut pos = from;
    loop {
        pos = skip_ws(bytes, pos);
        if pos >= to || bytes.get(pos) == Some(&b']') {
            return Ok((rows, maker.side, pos));
        }
        if let Some((row, next)) = scan::record_in_order(text, pos, &mut order).filter(|&(_, next)| next <= to) {
            rows.push(row);
            pos = next;
        } else {
            let (row, next) = parse_one(&mut maker, text, pos, to, rows.len())?;
            rows.push(row);
            pos = next;
        }
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b']') => return Ok((rows, maker.side, pos)),
            _ if pos >= to => return Ok((rows, maker.side, pos)),
            _ => {
                return Err(Error::Malformed(format!(
                    "expected ',' or ']' after record {}",
                    rows.len()
                )));
            }
        }
    }
}

/// One record at `pos` by serde_json (what the scanner left to it): its row and the position
/// after it. `parsed`: how many records came before it.
fn parse_one(maker: &mut SpanMaker<'_>, text: &str, pos: usize, to: usize, parsed: usize) -> Result<(Row, usize)> {
    let mut stream = serde_json::Deserializer::from_str(&text[pos..to]).into_iter::<RawRecord<'_>>();
    let raw = match stream.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Err(Error::Malformed(format!(
                "record {} is not an instrument record: {e}",
                parsed + 1
            )));
        }
        None => return Err(Error::Malformed("the JSON array ends early".into())),
    };
    let next = pos + stream.byte_offset();
    Ok((maker.row(raw), next))
}

/// A record boundary near `mid`: the `{` of a record that follows `},`. Only a guess (a string
/// could contain `},{`); a wrong guess makes the second half fail to parse, and the caller then
/// parses everything on one thread.
fn split_point(b: &[u8], mid: usize) -> Option<usize> {
    let mut i = mid;
    while i + 2 < b.len() {
        if b[i] == b'}' {
            let j = skip_ws(b, i + 1);
            if b.get(j) == Some(&b',') {
                let k = skip_ws(b, j + 1);
                if b.get(k) == Some(&b'{') {
                    return Some(k);
                }
            }
        }
        i += 1;
    }
    None
}

/// The second half's text spans moved by `mid`, its offset in the whole (done on its own
/// thread, while the first half may still be parsing).
fn shift_text_spans(parsed: &mut Parsed, mid: usize) {
    let mid = mid as u32;
    for r in &mut parsed.0 {
        for_each_span(r, |s| {
            if s.0 & Span::SIDE == 0 {
                s.0 += mid;
            }
        });
    }
    parsed.2 += mid as usize;
}

/// `f` on each of a row's present string spans.
fn for_each_span(r: &mut Row, mut f: impl FnMut(&mut Span)) {
    for s in [
        &mut r.segment,
        &mut r.name,
        &mut r.exchange,
        &mut r.isin,
        &mut r.instrument_type,
        &mut r.instrument_key,
        &mut r.exchange_token,
        &mut r.trading_symbol,
        &mut r.short_name,
        &mut r.security_type,
        &mut r.underlying_key,
        &mut r.underlying_type,
        &mut r.underlying_symbol,
    ] {
        if s.0 != u32::MAX {
            f(s);
        }
    }
}

/// The two halves' parses as one (the second's text spans already moved): its side-buffer
/// spans move past the first's side buffer; the end is the second's.
fn join_halves(first: Parsed, second: Parsed) -> Parsed {
    let ((mut rows, mut side, _), (mut rows2, side2, end)) = (first, second);
    if !side.is_empty() && !side2.is_empty() {
        let shift = side.len() as u32;
        for r in &mut rows2 {
            for_each_span(r, |s| {
                if s.0 & Span::SIDE != 0 {
                    s.0 += shift;
                }
            });
        }
    }
    side.push_str(&side2);
    rows.append(&mut rows2);
    (rows, side, end)
}

/// Row numbers hashed by instrument key (no key is copied).
type KeyTable = hashbrown::HashTable<u32>;

/// The key index, a table per parsed half, each built on its half's thread: the first half's
/// rows by their numbers, the second's counted from `tail_base`.
#[derive(Default)]
struct KeyIndex {
    tables: [KeyTable; 2],
    tail_base: u32,
}

/// One half's rows (spans still its own: `text` is that half) by instrument key; a later row
/// with the same key replaces the earlier, as a map would.
fn key_table(parsed: &Parsed, text: &str, hasher: &hashbrown::DefaultHashBuilder) -> KeyTable {
    let (rows, side) = (&parsed.0, parsed.1.as_str());
    let key = |i: u32| {
        let s = rows.get(i as usize).map_or(Span::NONE, |r| r.instrument_key);
        let (buf, start) = if s.0 & Span::SIDE != 0 {
            (side, s.0 & !Span::SIDE)
        } else {
            (text, s.0)
        };
        buf.get(start as usize..(start + s.1) as usize).unwrap_or("")
    };
    let hash = |k: &str| std::hash::BuildHasher::hash_one(hasher, k);
    let mut table = KeyTable::with_capacity(rows.len());
    for i in 0..rows.len() as u32 {
        let k = key(i);
        let h = hash(k);
        match table.find_mut(h, |&j| key(j) == k) {
            Some(slot) => *slot = i,
            None => {
                table.insert_unique(h, i, |&j| hash(key(j)));
            }
        }
    }
    table
}

/// Huge pages are 2 MiB here; a buffer at least this big is mapped for them.
const HUGE_PAGE: usize = 2 << 20;

/// A zeroed buffer of `size` bytes on huge pages (transparent huge pages, advised): a 45 MB
/// file then costs ~23 page faults instead of ~11,000, which took a third of the gunzip's time.
/// `None` for a small file, or where the map cannot be made (the caller uses the heap).
fn huge_buffer(size: usize) -> Option<memmap2::MmapMut> {
    if size < 2 * HUGE_PAGE {
        return None;
    }
    let map = memmap2::MmapOptions::new()
        .len(size.next_multiple_of(HUGE_PAGE))
        .map_anon()
        .ok()?;
    // Only advice: without transparent huge pages the map still works, on small pages.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Some(map)
}

/// Options by underlying key, then (expiry ms, strike paise, kind) → row.
type OptionIndex = HashMap<Box<str>, BTreeMap<(i64, i64, OptionKind), u32>>;

/// The decompressed file's bytes: on the heap, or (a large file gunzipped by
/// [`InstrumentMaster::from_gzip`]) in an anonymous map advised onto huge pages.
enum Bytes {
    Heap(Vec<u8>),
    Map(memmap2::MmapMut, usize),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Heap(v) => v,
            Bytes::Map(m, len) => &m[..*len],
        }
    }
}

/// The text, checked as UTF-8 in two parts split at a record's `{` (each part on its parsing
/// thread; an ASCII byte cannot split a character, so both parts valid means the whole is).
/// `tail` begins where `head` ends; a string never spans the two.
struct Halves<'a> {
    head: &'a str,
    tail: &'a str,
}

self_cell::self_cell!(
    struct Json {
        owner: Bytes,
        #[covariant]
        dependent: Halves,
    }
);

impl Default for Json {
    fn default() -> Self {
        Json::new(Bytes::Heap(Vec::new()), |_| Halves { head: "", tail: "" })
    }
}

/// What parsing gives besides the text: rows, the side buffer of unescaped strings, and the
/// position (in the whole text) of the closing `]`.
type Parsed = (Vec<Row>, String, usize);

/// The parsed and indexed master. It keeps the decompressed JSON and points into it, so a
/// record costs no allocation; views ([`Instrument`]) borrow from it. The key index is built
/// at load; the symbol and option-chain indexes on first use.
#[derive(Default)]
pub struct InstrumentMaster {
    text: Json,
    side: String,
    rows: Vec<Row>,
    /// Row numbers hashed by instrument key (no key is copied).
    by_key: KeyIndex,
    hasher: hashbrown::DefaultHashBuilder,
    by_symbol: OnceLock<HashMap<Box<str>, Vec<u32>>>,
    options: OnceLock<OptionIndex>,
}

impl std::fmt::Debug for InstrumentMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentMaster")
            .field("records", &self.rows.len())
            .finish_non_exhaustive()
    }
}

/// The most a decompressed instrument file may grow to (the real complete file is well under).
const MAX_JSON_BYTES: usize = 1 << 30;

impl InstrumentMaster {
    /// Parses the JSON array and builds the indexes.
    ///
    /// # Errors
    /// When the bytes are not a JSON array of instrument records.
    pub fn from_json(json: Vec<u8>) -> Result<Self> {
        Self::from_bytes(Bytes::Heap(json))
    }

    fn from_bytes(bytes: Bytes) -> Result<Self> {
        let b: &[u8] = &bytes;
        let start = skip_ws(b, 0);
        if b.get(start) != Some(&b'[') {
            return Err(Error::Malformed("not a JSON array of instrument records".into()));
        }
        // Two halves on two threads when the file is big enough to be worth it: each thread
        // checks its half's UTF-8 and parses its records.
        let mid = if b.len() > 1 << 20 {
            split_point(b, b.len() / 2)
        } else {
            None
        };
        let Some(mid) = mid else {
            let hasher = hashbrown::DefaultHashBuilder::default();
            let (text, parsed, keys) = Self::parse_whole(bytes, start, &hasher)?;
            return Self::indexed(text, parsed, keys, hasher);
        };
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut parsed: Option<Result<(Parsed, KeyIndex)>> = None;
        let split = Json::try_new_or_recover(bytes, |b| {
            let (head, tail) = b.split_at(mid);
            let hasher = &hasher;
            let (head, tail) = std::thread::scope(|s| {
                let second = s.spawn(move || {
                    let tail = std::str::from_utf8(tail)?;
                    let parsed = parse_records(tail, 0, tail.len()).map(|mut p| {
                        // Indexed while its spans are still its own, then moved by `mid`.
                        let keys = key_table(&p, tail, hasher);
                        shift_text_spans(&mut p, mid);
                        (p, keys)
                    });
                    Ok::<_, std::str::Utf8Error>((tail, parsed))
                });
                let head = std::str::from_utf8(head).map(|head| {
                    let parsed = parse_records(head, start + 1, head.len()).map(|p| {
                        let keys = key_table(&p, head, hasher);
                        (p, keys)
                    });
                    (head, parsed)
                });
                (head, second.join())
            });
            // Not UTF-8 (or a thread that did not finish): the whole on one thread says where,
            // counting from the start of the file, not of a half.
            let (Ok((head, first)), Ok(Ok((tail, second)))) = (head, tail) else {
                return Err(());
            };
            parsed = Some(first.and_then(|(first, head_keys)| {
                let (second, tail_keys) = second?;
                let tail_base = first.0.len() as u32;
                let keys = KeyIndex {
                    tables: [head_keys, tail_keys],
                    tail_base,
                };
                Ok((join_halves(first, second), keys))
            }));
            Ok(Halves { head, tail })
        });
        let (text, parsed, keys) = match (split, parsed) {
            (Ok(text), Some(Ok((parsed, keys)))) => (text, parsed, keys),
            // A guess inside a string (or a record the second half could not take), or text that
            // is not UTF-8: the whole on one thread, which decides and explains.
            (Ok(text), _) => Self::parse_whole(text.into_owner(), start, &hasher)?,
            (Err((bytes, ())), _) => Self::parse_whole(bytes, start, &hasher)?,
        };
        Self::indexed(text, parsed, keys, hasher)
    }

    /// The master over checked text, its parse and key index, once the end is checked.
    fn indexed(text: Json, parsed: Parsed, by_key: KeyIndex, hasher: hashbrown::DefaultHashBuilder) -> Result<Self> {
        let (rows, side, end) = parsed;
        let whole = text.borrow_owner();
        if whole.get(end) != Some(&b']') || skip_ws(whole, end + 1) != whole.len() {
            return Err(Error::Malformed(
                "not a JSON array of instrument records (trailing data or no closing ']')".into(),
            ));
        }
        Ok(Self {
            text,
            side,
            rows,
            by_key,
            hasher,
            ..Self::default()
        })
    }

    /// The whole text checked and parsed on this thread.
    fn parse_whole(
        bytes: Bytes,
        start: usize,
        hasher: &hashbrown::DefaultHashBuilder,
    ) -> Result<(Json, Parsed, KeyIndex)> {
        let mut parsed = None;
        let text = Json::try_new(bytes, |b| {
            let head = std::str::from_utf8(b).map_err(|e| Error::Malformed(format!("not UTF-8 text: {e}")))?;
            parsed = Some(parse_records(head, start + 1, head.len()));
            Ok::<_, Error>(Halves { head, tail: "" })
        })?;
        match parsed {
            Some(p) => {
                let p = p?;
                let keys = text.with_dependent(|_, h| KeyIndex {
                    tables: [key_table(&p, h.head, hasher), KeyTable::new()],
                    tail_base: p.0.len() as u32,
                });
                Ok((text, p, keys))
            }
            None => Err(Error::Malformed("the parse gave no answer".into())),
        }
    }

    /// Gunzips, parses and indexes a `.json.gz` file's bytes.
    ///
    /// # Errors
    /// When the bytes are not gzip, or not instrument JSON.
    pub fn from_gzip(gz: &[u8]) -> Result<Self> {
        // The gzip trailer gives the size (mod 2^32); one allocation, one pass.
        let size = gz
            .len()
            .checked_sub(4)
            .and_then(|i| gz.get(i..))
            .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize);
        let not_gzip = |e: &dyn std::fmt::Display| {
            Error::Malformed(format!("not a gzip file ({e}); expected complete.json.gz or similar"))
        };
        let size = size
            .filter(|_| gz.starts_with(&[0x1f, 0x8b]))
            .ok_or_else(|| not_gzip(&"no gzip header"))?;
        if size > MAX_JSON_BYTES {
            return Err(Error::Malformed(format!(
                "the file claims {size} bytes uncompressed, more than the {MAX_JSON_BYTES} allowed"
            )));
        }
        let mut inflater = libdeflater::Decompressor::new();
        let bytes = match huge_buffer(size) {
            Some(mut map) => {
                let n = inflater.gzip_decompress(gz, &mut map).map_err(|e| not_gzip(&e))?;
                Bytes::Map(map, n)
            }
            None => {
                let mut json = vec![0u8; size];
                let n = inflater.gzip_decompress(gz, &mut json).map_err(|e| not_gzip(&e))?;
                json.truncate(n);
                Bytes::Heap(json)
            }
        };
        Self::from_bytes(bytes)
    }

    /// Indexes owned records (serializes them once and parses them back).
    ///
    /// # Errors
    /// Never for records that serialize; kept fallible for symmetry.
    pub fn from_records(records: &[InstrumentRecord]) -> Result<Self> {
        let json = serde_json::to_vec(records).map_err(|e| Error::Malformed(e.to_string()))?;
        Self::from_json(json)
    }

    fn key_hash(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    fn symbols(&self) -> &HashMap<Box<str>, Vec<u32>> {
        self.by_symbol.get_or_init(|| {
            let mut by_symbol: HashMap<Box<str>, Vec<u32>> = HashMap::with_capacity(self.rows.len());
            for (i, r) in self.iter().enumerate() {
                by_symbol
                    .entry(r.trading_symbol.to_ascii_uppercase().into_boxed_str())
                    .or_default()
                    .push(i as u32);
            }
            by_symbol
        })
    }

    fn option_index(&self) -> &OptionIndex {
        self.options.get_or_init(|| {
            let mut options = OptionIndex::new();
            for (i, r) in self.iter().enumerate() {
                if let (true, Some(u), Some(e), Some(s)) = (r.is_option(), r.underlying_key, r.expiry, r.strike_price) {
                    let kind = if r.instrument_type == "CE" {
                        OptionKind::Call
                    } else {
                        OptionKind::Put
                    };
                    let entry = match options.get_mut(u) {
                        Some(m) => m,
                        None => options.entry(u.into()).or_default(),
                    };
                    entry.insert((e, strike_key(s), kind), i as u32);
                }
            }
            options
        })
    }

    fn str_of(&self, s: Span) -> Option<&str> {
        if s == Span::NONE {
            return None;
        }
        let (start, len) = (s.0 as usize, s.1 as usize);
        if s.0 & Span::SIDE != 0 {
            let start = start & !(Span::SIDE as usize);
            return self.side.get(start..start + len);
        }
        let text = self.text.borrow_dependent();
        match start.checked_sub(text.head.len()) {
            None => text.head.get(start..start + len),
            Some(at) => text.tail.get(at..at + len),
        }
    }

    /// The instrument key of row `i` (what the key index compares).
    fn key_at(&self, i: usize) -> &str {
        self.rows
            .get(i)
            .and_then(|r| self.str_of(r.instrument_key))
            .unwrap_or("")
    }

    fn view(&self, i: usize) -> Instrument<'_> {
        let r = &self.rows[i];
        let req = |s| self.str_of(s).unwrap_or("");
        Instrument {
            segment: req(r.segment),
            name: req(r.name),
            exchange: req(r.exchange),
            isin: self.str_of(r.isin),
            instrument_type: req(r.instrument_type),
            instrument_key: req(r.instrument_key),
            lot_size: r.lot_size,
            freeze_quantity: r.freeze_quantity,
            exchange_token: req(r.exchange_token),
            tick_size: r.tick_size,
            trading_symbol: req(r.trading_symbol),
            short_name: self.str_of(r.short_name),
            security_type: self.str_of(r.security_type),
            expiry: r.expiry,
            strike_price: r.strike_price,
            weekly: r.weekly,
            minimum_lot: r.minimum_lot,
            underlying_key: self.str_of(r.underlying_key),
            underlying_type: self.str_of(r.underlying_type),
            underlying_symbol: self.str_of(r.underlying_symbol),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every record, in file order.
    pub fn iter(&self) -> impl Iterator<Item = Instrument<'_>> + '_ {
        (0..self.rows.len()).map(|i| self.view(i))
    }

    /// By instrument key (`NSE_EQ|INE002A01018`).
    pub fn get(&self, key: &str) -> Option<Instrument<'_>> {
        let hash = self.key_hash(key);
        let [head, tail] = &self.by_key.tables;
        let base = self.by_key.tail_base;
        // The second half first: a later record with the same key wins, as in a map.
        tail.find(hash, |&i| self.key_at((base + i) as usize) == key)
            .map(|&i| base + i)
            .or_else(|| head.find(hash, |&i| self.key_at(i as usize) == key).copied())
            .map(|i| self.view(i as usize))
    }

    /// By trading symbol, case-insensitive (several segments may share one).
    pub fn by_trading_symbol(&self, symbol: &str) -> Vec<Instrument<'_>> {
        self.symbols()
            .get(symbol.to_ascii_uppercase().as_str())
            .map(|v| v.iter().map(|&i| self.view(i as usize)).collect())
            .unwrap_or_default()
    }

    /// Expiries (epoch ms) with options on `underlying`, soonest first.
    pub fn expiries(&self, underlying: &str) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .option_index()
            .get(underlying)
            .map(|m| m.keys().map(|k| k.0).collect())
            .unwrap_or_default();
        out.dedup();
        out
    }

    /// One option by underlying, expiry (epoch ms), strike and kind.
    pub fn option(&self, underlying: &str, expiry: i64, strike: f64, kind: OptionKind) -> Option<Instrument<'_>> {
        let i = self
            .option_index()
            .get(underlying)?
            .get(&(expiry, strike_key(strike), kind))?;
        Some(self.view(*i as usize))
    }

    /// The chain of one expiry, ordered by strike then kind.
    pub fn chain(&self, underlying: &str, expiry: i64) -> Vec<Instrument<'_>> {
        self.option_index()
            .get(underlying)
            .map(|m| {
                m.range((expiry, i64::MIN, OptionKind::Call)..=(expiry, i64::MAX, OptionKind::Put))
                    .map(|(_, &i)| self.view(i as usize))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records whose trading symbol or name contains `text` (case-insensitive): exact symbol
    /// matches first, then prefixes, then the rest; cash and index instruments before derivatives.
    ///
    /// Several words ("banknifty 51000 ce feb") find the records each of whose words begins a
    /// word of the symbol or name, cash first, then contracts by expiry.
    pub fn search(&self, text: &str, limit: usize) -> Vec<Instrument<'_>> {
        let needle = text.trim().to_ascii_uppercase();
        if needle.is_empty() {
            return Vec::new();
        }
        let words: Vec<&str> = needle.split_whitespace().collect();
        if words.len() > 1 {
            let mut hits: Vec<Instrument<'_>> = self
                .iter()
                .filter(|r| {
                    let sym = r.trading_symbol.to_ascii_uppercase();
                    let name = r.name.to_ascii_uppercase();
                    words.iter().all(|w| {
                        sym.split_whitespace()
                            .chain(name.split_whitespace())
                            .any(|have| have.starts_with(w))
                    })
                })
                .collect();
            hits.sort_by(|a, b| {
                (a.expiry.is_some(), a.expiry, a.trading_symbol).cmp(&(b.expiry.is_some(), b.expiry, b.trading_symbol))
            });
            hits.truncate(limit);
            return hits;
        }
        let mut hits: Vec<(u8, bool, usize, Instrument<'_>)> = self
            .iter()
            .filter_map(|r| {
                let sym = r.trading_symbol.to_ascii_uppercase();
                let rank = if sym == needle {
                    0
                } else if sym.starts_with(&needle) {
                    1
                } else if sym.contains(&needle)
                    || r.name.to_ascii_uppercase().contains(&needle)
                    || r.instrument_key.eq_ignore_ascii_case(&needle)
                {
                    2
                } else {
                    return None;
                };
                Some((rank, r.expiry.is_some(), r.trading_symbol.len(), r))
            })
            .collect();
        hits.sort_by(|a, b| {
            (a.0, a.1, a.2)
                .cmp(&(b.0, b.1, b.2))
                .then_with(|| a.3.trading_symbol.cmp(b.3.trading_symbol))
        });
        hits.into_iter().take(limit).map(|h| h.3).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[
      {"segment":"NSE_EQ","name":"RELIANCE INDUSTRIES LTD","exchange":"NSE","isin":"INE002A01018","instrument_type":"EQ","instrument_key":"NSE_EQ|INE002A01018","lot_size":1,"freeze_quantity":100000.0,"exchange_token":"2885","tick_size":5.0,"trading_symbol":"RELIANCE","short_name":"Reliance","security_type":"NORMAL"},
      {"segment":"NSE_INDEX","name":"Nifty 50","exchange":"NSE","instrument_type":"INDEX","instrument_key":"NSE_INDEX|Nifty 50","exchange_token":26000,"trading_symbol":"NIFTY"},
      {"segment":"NSE_FO","name":"NIFTY","exchange":"NSE","instrument_type":"CE","instrument_key":"NSE_FO|43919","lot_size":65,"freeze_quantity":1755.0,"exchange_token":"43919","tick_size":5.0,"trading_symbol":"NIFTY 26000 CE 25 NOV 26","expiry":1795631399000,"strike_price":26000.0,"weekly":false,"minimum_lot":65,"underlying_key":"NSE_INDEX|Nifty 50","underlying_type":"INDEX","underlying_symbol":"NIFTY"}
    ]"#;

    #[test]
    fn parses_and_indexes_the_real_record_shapes() {
        let m = InstrumentMaster::from_json(SAMPLE.as_bytes().to_vec()).expect("sample");
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("NSE_INDEX|Nifty 50").map(|r| r.exchange_token), Some("26000"));
        assert_eq!(m.by_trading_symbol("reliance").len(), 1);
        let call = m
            .option("NSE_INDEX|Nifty 50", 1_795_631_399_000, 26000.0, OptionKind::Call)
            .expect("option");
        assert_eq!(call.instrument_key, "NSE_FO|43919");
        assert_eq!(m.expiries("NSE_INDEX|Nifty 50"), vec![1_795_631_399_000]);
        assert_eq!(m.search("nifty", 10)[0].instrument_key, "NSE_INDEX|Nifty 50");
    }

    /// Big enough for the two-thread path, with escapes and a `},{` inside a string.
    #[test]
    fn two_halves_escapes_and_tricky_strings_parse_like_one() {
        let mut records = Vec::new();
        for i in 0..6000 {
            let name = if i % 1000 == 7 {
                format!("A \\\"quoted\\\"}},{{ name {i}")
            } else {
                format!("CO {i} LTD")
            };
            records.push(format!(
                r#"{{"segment":"NSE_EQ","name":"{name}","exchange":"NSE","isin":"INE{i:06}","instrument_type":"EQ","instrument_key":"NSE_EQ|INE{i:06}","lot_size":1,"exchange_token":{i},"tick_size":5.0,"trading_symbol":"SYM{i}","security_type":"NORMAL","short_name":"padding padding padding padding padding padding padding padding padding padding"}}"#
            ));
        }
        let json = format!("[\n{}\n]\n", records.join(",\n"));
        assert!(json.len() > 1 << 20);
        let m = InstrumentMaster::from_json(json.into_bytes()).expect("parse");
        assert_eq!(m.len(), 6000);
        let tricky = m.get("NSE_EQ|INE001007").expect("record 1007");
        assert_eq!(tricky.name, "A \"quoted\"},{ name 1007");
        assert_eq!(tricky.exchange_token, "1007");
        // A split guessed inside a string fails to parse, which sends from_json to one thread.
        let b = json_for_split_test();
        let inside = b.find("},{ name").expect("tricky name");
        let guess = split_point(b.as_bytes(), inside).expect("a guess");
        assert!(parse_records(&b, guess, b.len()).is_err());
        let last = m.get("NSE_EQ|INE005999").expect("last record");
        assert_eq!(last.trading_symbol, "SYM5999");
        assert_eq!(
            m.iter()
                .map(|r| r.trading_symbol)
                .filter(|s| s.starts_with("SYM"))
                .count(),
            6000
        );
    }

    /// A file big enough for the huge-page buffer and the two-thread parse reads, through
    /// `from_gzip`, exactly as the same JSON through one thread's `from_json` of a small copy
    /// of each record.
    #[test]
    fn a_large_gzip_file_loads_like_its_records_one_by_one() {
        let records: Vec<String> = (0..16_000)
            .map(|i| {
                format!(
                    r#"{{"segment":"NSE_FO","name":"NIFTY","exchange":"NSE_FO","instrument_type":"{kind}","instrument_key":"NSE_FO|{i}","lot_size":75,"freeze_quantity":1800.0,"exchange_token":"{i}","tick_size":5.0,"trading_symbol":"NIFTY {strike} {kind} 25 DEC 26","expiry":1798191000000,"strike_price":{strike}.5,"weekly":{weekly},"minimum_lot":75,"underlying_key":"NSE_INDEX|Nifty 50","underlying_type":"INDEX","underlying_symbol":"NIFTY","short_name":"{pad}"}}"#,
                    kind = if i % 2 == 0 { "CE" } else { "PE" },
                    strike = 20_000 + i,
                    weekly = i % 3 == 0,
                    pad = if i % 7_000 == 2_001 { format!("esc\\\\aped {i} \\u00e9") } else { "x".repeat(i % 40) },
                )
            })
            .collect();
        let json = format!("[{}]", records.join(","));
        assert!(json.len() > 2 * HUGE_PAGE, "{} bytes", json.len());
        let mut zip = libdeflater::Compressor::new(libdeflater::CompressionLvl::fastest());
        let mut gz = vec![0; zip.gzip_compress_bound(json.len())];
        let n = zip.gzip_compress(json.as_bytes(), &mut gz).expect("gzip");
        gz.truncate(n);
        let m = InstrumentMaster::from_gzip(&gz).expect("load");
        assert_eq!(m.len(), records.len());
        for (got, one) in m.iter().zip(&records) {
            let alone = InstrumentMaster::from_json(format!("[{one}]").into_bytes()).expect("one record");
            let want = alone.iter().next().expect("its row").to_record();
            assert_eq!(got.to_record(), want);
        }
        // Unescaped strings from both halves, each at its own place in the side buffer.
        for i in [2_001, 9_001] {
            let short_name = m.get(&format!("NSE_FO|{i}")).and_then(|r| r.short_name);
            assert_eq!(short_name, Some(format!("esc\\aped {i} \u{e9}").as_str()));
        }
        let r = m.get("NSE_FO|9001").expect("by key");
        assert_eq!(r.strike_price, Some(29_001.5));
        assert_eq!(
            m.get("NSE_FO|15999").map(|r| r.trading_symbol),
            Some("NIFTY 35999 PE 25 DEC 26")
        );
    }

    fn json_for_split_test() -> String {
        r#"[{"segment":"NSE_EQ","name":"A \"q\"},{ name","instrument_key":"NSE_EQ|A"},{"segment":"NSE_EQ","instrument_key":"NSE_EQ|B"}]"#.to_owned()
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let e = InstrumentMaster::from_gzip(b"not gzip").expect_err("garbage");
        assert!(e.to_string().contains("not a gzip file"), "{e}");
        let e = InstrumentMaster::from_json(b"{\"a\":1}".to_vec()).expect_err("object");
        assert!(e.to_string().contains("not a JSON array"), "{e}");
        let e = InstrumentMaster::from_json(b"[{\"segment\":\"NSE_EQ\"}]".to_vec()).expect_err("no key");
        assert!(e.to_string().contains("record 1"), "{e}");
        let e = InstrumentMaster::from_json(b"[{\"segment\":\"NSE_EQ\",\"instrument_key\":\"NSE_EQ|X\"}".to_vec())
            .expect_err("truncated");
        assert!(e.to_string().contains("not a JSON array"), "{e}");
        // A byte that is not UTF-8 in the second half of a file parsed on two threads is placed
        // from the start of the file.
        let record = r#"{"segment":"NSE_EQ","instrument_key":"NSE_EQ|X","name":"padding padding padding"}"#;
        let mut json = format!("[{}]", vec![record; 20_000].join(",")).into_bytes();
        let bad = json.len() - 40;
        json[bad] = 0xff;
        assert!(json.len() > 1 << 20);
        let e = InstrumentMaster::from_json(json).expect_err("not UTF-8");
        assert!(
            e.to_string().contains(&format!(
                "not UTF-8 text: invalid utf-8 sequence of 1 bytes from index {bad}"
            )),
            "{e}"
        );
    }

    #[test]
    fn records_round_trip_through_serde() {
        let m = InstrumentMaster::from_json(SAMPLE.as_bytes().to_vec()).expect("sample");
        let records: Vec<InstrumentRecord> = m.iter().map(|r| r.to_record()).collect();
        let back = InstrumentMaster::from_records(&records).expect("parse back");
        assert_eq!(back.iter().collect::<Vec<_>>(), m.iter().collect::<Vec<_>>());
    }
}
