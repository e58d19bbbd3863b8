//! The fast path for one instrument record: a scanner for the flat objects the master is made
//! of (string, number, boolean and null values, no escapes), three to four times quicker than
//! serde_json on them. Anything it is not sure of — an escape, a nested value, a number where a
//! string is expected, a duplicate or missing key, a malformed number — answers `None`, and the
//! caller parses that record with serde_json, whose answer (a row or an error) is then the one.
//! A property test holds the two to the same rows.

use super::{Row, Span};

/// Which field a key names.
#[derive(Clone, Copy)]
enum Field {
    Text(TextField),
    LotSize,
    MinimumLot,
    FreezeQuantity,
    TickSize,
    StrikePrice,
    Expiry,
    Weekly,
    /// A key the record type does not have: its value is skipped.
    Other,
}

#[derive(Clone, Copy)]
enum TextField {
    Segment,
    Name,
    Exchange,
    Isin,
    InstrumentType,
    InstrumentKey,
    ExchangeToken,
    TradingSymbol,
    ShortName,
    SecurityType,
    UnderlyingKey,
    UnderlyingType,
    UnderlyingSymbol,
}

impl Field {
    fn of(key: &[u8]) -> Self {
        use TextField as T;
        match key {
            b"segment" => Self::Text(T::Segment),
            b"name" => Self::Text(T::Name),
            b"exchange" => Self::Text(T::Exchange),
            b"isin" => Self::Text(T::Isin),
            b"instrument_type" => Self::Text(T::InstrumentType),
            b"instrument_key" => Self::Text(T::InstrumentKey),
            b"exchange_token" => Self::Text(T::ExchangeToken),
            b"trading_symbol" => Self::Text(T::TradingSymbol),
            b"short_name" => Self::Text(T::ShortName),
            b"security_type" => Self::Text(T::SecurityType),
            b"underlying_key" => Self::Text(T::UnderlyingKey),
            b"underlying_type" => Self::Text(T::UnderlyingType),
            b"underlying_symbol" => Self::Text(T::UnderlyingSymbol),
            b"lot_size" => Self::LotSize,
            b"minimum_lot" => Self::MinimumLot,
            b"freeze_quantity" => Self::FreezeQuantity,
            b"tick_size" => Self::TickSize,
            b"strike_price" => Self::StrikePrice,
            b"expiry" => Self::Expiry,
            b"weekly" => Self::Weekly,
            _ => Self::Other,
        }
    }

    /// A bit per known field, to see a key twice (serde refuses a duplicate field).
    fn bit(self) -> u32 {
        match self {
            Self::Text(t) => 1 << (t as u32),
            Self::LotSize => 1 << 13,
            Self::MinimumLot => 1 << 14,
            Self::FreezeQuantity => 1 << 15,
            Self::TickSize => 1 << 16,
            Self::StrikePrice => 1 << 17,
            Self::Expiry => 1 << 18,
            Self::Weekly => 1 << 19,
            Self::Other => 0,
        }
    }
}

/// A value as scanned.
enum Value {
    Str(usize, usize),
    Num(usize, usize),
    Bool(bool),
    Null,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        i += 1;
    }
    i
}

/// The string whose opening quote is at `i`: (start, end) of its content and the position after
/// the closing quote; `None` for an escape or a control character (serde's business).
#[inline(always)]
fn string(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let start = i + 1;
    let end = start + stop(b.get(start..)?)?;
    if b[end] != b'"' {
        return None;
    }
    Some((start, end, end + 1))
}

/// Where the first `"`, `\\` or control character of `b` is. Eight bytes at a time (the
/// master's strings are short, mostly under 32 bytes: `memchr2`'s vector set-up and a second
/// pass for control characters had taken 16 % of a load), the tail a byte at a time.
#[inline(always)]
fn stop(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte's high bit set where it is zero (exact for the first such byte, which is all
    // that is read), and where it is below 0x20.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = |x: u64| x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let mut at = 0;
    while let Some(w) = b.get(at..at + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let x = u64::from_le_bytes(a);
        let hit = zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) | below_space(x);
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

/// A JSON number at `i` (strict grammar): its end.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > s).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i)?,
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

fn value(b: &[u8], i: usize) -> Option<(Value, usize)> {
    match *b.get(i)? {
        b'"' => string(b, i).map(|(s, e, next)| (Value::Str(s, e), next)),
        b't' if b[i..].starts_with(b"true") => Some((Value::Bool(true), i + 4)),
        b'f' if b[i..].starts_with(b"false") => Some((Value::Bool(false), i + 5)),
        b'n' if b[i..].starts_with(b"null") => Some((Value::Null, i + 4)),
        b'-' | b'0'..=b'9' => number(b, i).map(|e| (Value::Num(i, e), e)),
        _ => None,
    }
}

/// An unsigned integer that fits `u32` (what serde takes for `Option<u32>`); `t` is a number
/// `number` accepted, read in one pass.
fn uint(t: &str) -> Option<u32> {
    t.bytes().try_fold(0u32, |v, c| {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v.checked_mul(10)?.checked_add(u32::from(d))
    })
}

/// A signed integer that fits `i64`, in one pass.
fn int(t: &str) -> Option<i64> {
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t),
    };
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0i64, |v, c| {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        let v = v.checked_mul(10)?;
        if neg {
            v.checked_sub(i64::from(d))
        } else {
            v.checked_add(i64::from(d))
        }
    })
}

/// Exact powers of ten as `f64` (every one up to 10^22 is).
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A number `number` accepted, as `f64`. A plain decimal of at most 15 digits (every price,
/// strike and tick size in the file) is its digits as an integer over a power of ten: both
/// exact, so the one division rounds correctly — the value any correct parser gives (Clinger's
/// fast path). Anything else goes to the standard parser.
fn float(t: &str) -> Option<f64> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    let (mut m, mut digits, mut frac, mut dot) = (0u64, 0usize, 0usize, false);
    for c in body.bytes() {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(c - b'0');
                digits += 1;
                frac += usize::from(dot);
                if digits > 15 {
                    return t.parse().ok();
                }
            }
            b'.' => dot = true,
            _ => return t.parse().ok(),
        }
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// Whether `b` starts with `prefix`: for a prefix of 8 to 32 bytes (every key as spelled, from
/// `"isin":` to `"underlying_symbol":`) by eight-byte words, the last one overlapping, in place
/// of a `memcmp` call per key (5.6 % of a load's instructions).
#[inline(always)]
fn starts_with(b: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len();
    let (Some(b), true) = (b.get(..n), (8..=32).contains(&n)) else {
        return b.starts_with(prefix);
    };
    let word = |s: &[u8], at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(a)
    };
    let mut at = 0;
    let mut differ = 0;
    while at + 8 < n {
        differ |= word(b, at) ^ word(prefix, at);
        at += 8;
    }
    differ |= word(b, n - 8) ^ word(prefix, n - 8);
    differ == 0
}

/// The keys of the records read so far, in their order and spelled as on the wire (`"name":`),
/// so that the next record's keys — the same ones in the same order, in every record of the
/// file — are each matched by one comparison instead of being scanned and looked up.
#[derive(Default)]
pub(super) struct KeyOrder {
    /// (spelling, field, the field's bit)
    keys: Vec<(Box<[u8]>, Field, u32)>,
}

/// The record whose `{` is at `pos` of `text`: its row and the position after its `}`; `None`
/// when the serde path must decide.
#[cfg(test)]
pub(super) fn record(text: &str, pos: usize) -> Option<(Row, usize)> {
    record_in_order(text, pos, &mut KeyOrder::default())
}

/// [`record`], with the key order of the records before it (`order` learns this one's).
pub(super) fn record_in_order(text: &str, pos: usize, order: &mut KeyOrder) -> Option<(Row, usize)> {
    let b = text.as_bytes();
    if b.get(pos) != Some(&b'{') {
        return None;
    }
    let mut row = Row {
        segment: Span::NONE,
        name: Span::NONE,
        exchange: Span::NONE,
        isin: Span::NONE,
        instrument_type: Span::NONE,
        instrument_key: Span::NONE,
        exchange_token: Span::NONE,
        trading_symbol: Span::NONE,
        short_name: Span::NONE,
        security_type: Span::NONE,
        underlying_key: Span::NONE,
        underlying_type: Span::NONE,
        underlying_symbol: Span::NONE,
        lot_size: None,
        minimum_lot: None,
        freeze_quantity: None,
        tick_size: None,
        strike_price: None,
        expiry: None,
        weekly: None,
    };
    let mut seen = 0u32;
    let mut i = ws(b, pos + 1);
    if b.get(i) == Some(&b'}') {
        // No segment and no key: serde's error.
        return None;
    }
    let mut nth = 0;
    loop {
        let (field, bit) = match order.keys.get(nth) {
            Some((spelled, field, bit)) if starts_with(b.get(i..).unwrap_or_default(), spelled) => {
                i += spelled.len();
                (*field, *bit)
            }
            _ => {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                let (ks, ke, next) = string(b, i)?;
                let field = Field::of(&b[ks..ke]);
                let colon = ws(b, next);
                if b.get(colon) != Some(&b':') {
                    return None;
                }
                // Learned as spelled here, quotes to colon.
                order.keys.truncate(nth);
                order.keys.push((b[i..=colon].into(), field, field.bit()));
                i = colon + 1;
                (field, field.bit())
            }
        };
        nth += 1;
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        i = ws(b, i);
        let (v, next) = value(b, i)?;
        let num = |s: usize, e: usize| &text[s..e];
        match (field, v) {
            (Field::Other, _) => {}
            (Field::Text(t), Value::Str(s, e)) => {
                let span = Span(u32::try_from(s).ok()?, u32::try_from(e - s).ok()?);
                *text_slot(&mut row, t) = span;
            }
            // A required string may not be null; an optional one is then absent.
            (Field::Text(TextField::Segment | TextField::InstrumentKey), Value::Null) => return None,
            (Field::Text(_), Value::Null)
            | (
                Field::LotSize
                | Field::MinimumLot
                | Field::FreezeQuantity
                | Field::TickSize
                | Field::StrikePrice
                | Field::Expiry
                | Field::Weekly,
                Value::Null,
            ) => {}
            (Field::LotSize, Value::Num(s, e)) => row.lot_size = Some(uint(num(s, e))?),
            (Field::MinimumLot, Value::Num(s, e)) => row.minimum_lot = Some(uint(num(s, e))?),
            (Field::Expiry, Value::Num(s, e)) => row.expiry = Some(int(num(s, e))?),
            (Field::FreezeQuantity, Value::Num(s, e)) => row.freeze_quantity = Some(float(num(s, e))?),
            (Field::TickSize, Value::Num(s, e)) => row.tick_size = Some(float(num(s, e))?),
            (Field::StrikePrice, Value::Num(s, e)) => row.strike_price = Some(float(num(s, e))?),
            (Field::Weekly, Value::Bool(v)) => row.weekly = Some(v),
            // A number where a string is expected, a string where a number is: serde decides.
            _ => return None,
        }
        i = ws(b, next);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if row.segment == Span::NONE || row.instrument_key == Span::NONE {
        return None;
    }
    Some((row, i + 1))
}

fn text_slot(row: &mut Row, t: TextField) -> &mut Span {
    use TextField as T;
    match t {
        T::Segment => &mut row.segment,
        T::Name => &mut row.name,
        T::Exchange => &mut row.exchange,
        T::Isin => &mut row.isin,
        T::InstrumentType => &mut row.instrument_type,
        T::InstrumentKey => &mut row.instrument_key,
        T::ExchangeToken => &mut row.exchange_token,
        T::TradingSymbol => &mut row.trading_symbol,
        T::ShortName => &mut row.short_name,
        T::SecurityType => &mut row.security_type,
        T::UnderlyingKey => &mut row.underlying_key,
        T::UnderlyingType => &mut row.underlying_type,
        T::UnderlyingSymbol => &mut row.underlying_symbol,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{InstrumentRecord, SpanMaker, parse_one};
    use super::*;

    /// The serde path's row for one record (whatever the scanner says).
    fn by_serde(text: &str) -> Option<Row> {
        let mut maker = SpanMaker {
            base: text,
            side: String::new(),
        };
        parse_one(&mut maker, text, 0, text.len(), 0).ok().map(|(row, _)| row)
    }

    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec![
                "segment", "name", "exchange", "isin", "instrument_type", "instrument_key",
                "exchange_token", "trading_symbol", "short_name", "security_type", "underlying_key",
                "underlying_type", "underlying_symbol", "lot_size", "minimum_lot", "freeze_quantity",
                "tick_size", "strike_price", "expiry", "weekly",
            ])
            .prop_map(str::to_owned),
            1 => "[a-z_]{1,12}",
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::{Value as J, json};
        prop_oneof![
            "[ -~]{0,12}".prop_map(J::from),
            "\\PC{0,6}".prop_map(J::from),
            any::<u32>().prop_map(J::from),
            any::<i64>().prop_map(J::from),
            (-10_000_000i64..10_000_000).prop_map(|c| json!(c as f64 / 100.0)),
            any::<bool>().prop_map(J::from),
            Just(J::Null),
            Just(json!([1, "a"])),
            Just(json!({"x": 1})),
        ]
    }

    /// Mostly a value of the type the field has, now and then anything.
    fn typed_value(name: String) -> BoxedStrategy<serde_json::Value> {
        use serde_json::{Value as J, json};
        let typed: BoxedStrategy<J> = match name.as_str() {
            "lot_size" | "minimum_lot" => any::<u32>().prop_map(J::from).boxed(),
            "expiry" => any::<i64>().prop_map(J::from).boxed(),
            "freeze_quantity" | "tick_size" | "strike_price" => prop_oneof![
                (-10_000_000i64..10_000_000).prop_map(|c| json!(c as f64 / 100.0)),
                (0u32..1_000_000).prop_map(J::from),
            ]
            .boxed(),
            "weekly" => any::<bool>().prop_map(J::from).boxed(),
            _ => "[ -~]{0,16}".prop_map(J::from).boxed(),
        };
        prop_oneof![6 => typed, 1 => Just(J::Null), 1 => json_value()].boxed()
    }

    fn row_text(r: &Row, text: &str) -> Vec<Option<String>> {
        let s = |sp: Span| (sp != Span::NONE).then(|| text[sp.0 as usize..(sp.0 + sp.1) as usize].to_owned());
        vec![
            s(r.segment),
            s(r.instrument_key),
            s(r.name),
            s(r.trading_symbol),
            s(r.exchange_token),
            s(r.underlying_symbol),
        ]
    }

    /// Records sharing (mostly) one key set: the segment and key, and up to ten fields.
    fn fields() -> impl Strategy<Value = Vec<(String, serde_json::Value)>> {
        (
            "[ -~]{0,12}",
            "[ -~]{0,12}",
            prop::collection::vec(
                field_name().prop_flat_map(|name| (Just(name.clone()), typed_value(name))),
                0..10,
            ),
        )
            .prop_flat_map(|(seg, key, mut rest)| {
                rest.push(("segment".to_owned(), seg.into()));
                rest.push(("instrument_key".to_owned(), key.into()));
                Just(rest).prop_shuffle()
            })
    }

    proptest! {
        /// Records read one after another, each key matched against the order the earlier ones
        /// taught, read exactly as each read alone: same keys in the same order, others
        /// reversed or cut short, keys spelled with and without spaces.
        #[test]
        fn records_read_in_a_learned_key_order_read_as_each_alone(
            base in fields(),
            plan in prop::collection::vec((any::<bool>(), 0usize..4, prop::sample::select(vec!["", " "])), 1..6),
        ) {
            let mut order = KeyOrder::default();
            for (reverse, cut, space) in plan {
                let mut f = base.clone();
                if reverse {
                    f.reverse();
                }
                f.truncate(f.len().saturating_sub(cut));
                let body: Vec<String> = f
                    .iter()
                    .map(|(name, v)| format!("{}{space}:{v}", serde_json::to_string(name).unwrap_or_default()))
                    .collect();
                let text = format!("{{{}}}", body.join(","));
                prop_assert_eq!(record_in_order(&text, 0, &mut order), record(&text, 0), "{}", text);
            }
        }
    }

    proptest! {
        /// Whatever the scanner accepts, serde_json accepts as the same row.
        #[test]
        fn what_the_scanner_accepts_serde_reads_the_same(
            fields in (
                "[ -~]{0,12}",
                "[ -~]{0,12}",
                prop::collection::vec(field_name().prop_flat_map(|name| (Just(name.clone()), typed_value(name))), 0..10),
            )
                .prop_flat_map(|(seg, key, mut rest)| {
                    // Mostly records with their two required strings, in any place.
                    rest.push(("segment".to_owned(), seg.into()));
                    rest.push(("instrument_key".to_owned(), key.into()));
                    Just(rest).prop_shuffle()
                }),
            spaces in prop::collection::vec(prop::sample::select(vec!["", " ", "\n  ", "\t"]), 4),
        ) {
            let mut text = format!("{{{}", spaces[0]);
            for (k, (name, v)) in fields.iter().enumerate() {
                if k > 0 {
                    text.push_str(&format!(",{}", spaces[1]));
                }
                text.push_str(&format!("{}{}:{}{}", serde_json::to_string(name).unwrap_or_default(), spaces[2], spaces[3], v));
            }
            text.push('}');
            if let Some((row, end)) = record(&text, 0) {
                prop_assert_eq!(end, text.len());
                let serde = by_serde(&text);
                prop_assert!(serde.is_some(), "the scanner took a record serde refuses: {}", text);
                let serde = serde.unwrap_or(row);
                prop_assert_eq!(row_text(&row, &text), row_text(&serde, &text));
                prop_assert_eq!(row, serde, "{}", text);
            }
        }
    }

    #[test]
    fn the_records_the_master_is_made_of_take_the_fast_path() {
        let rec = InstrumentRecord {
            segment: "NSE_FO".into(),
            name: "NIFTY".into(),
            exchange: "NSE".into(),
            isin: None,
            instrument_type: "CE".into(),
            instrument_key: "NSE_FO|43919".into(),
            lot_size: Some(65),
            freeze_quantity: Some(1755.0),
            exchange_token: "43919".into(),
            tick_size: Some(5.0),
            trading_symbol: "NIFTY 26000 CE 25 NOV 26".into(),
            short_name: None,
            security_type: None,
            expiry: Some(1_795_631_399_000),
            strike_price: Some(26000.0),
            weekly: Some(false),
            minimum_lot: Some(65),
            underlying_key: Some("NSE_INDEX|Nifty 50".into()),
            underlying_type: Some("INDEX".into()),
            underlying_symbol: Some("NIFTY".into()),
        };
        let text = serde_json::to_string(&rec).expect("json");
        let (row, _) = record(&text, 0).expect("the fast path takes a plain record");
        assert_eq!(Some(row), by_serde(&text));
        // An escape, a nested value and a number for a string are left to serde.
        for odd in [
            r#"{"segment":"NSE_EQ","instrument_key":"NSE_EQ|A\"B"}"#,
            r#"{"segment":"NSE_EQ","instrument_key":"K","extra":{"a":1}}"#,
            r#"{"segment":"NSE_EQ","instrument_key":"K","exchange_token":26000}"#,
            r#"{"segment":"NSE_EQ","instrument_key":"K","segment":"NSE_FO"}"#,
            r#"{"segment":"NSE_EQ","lot_size":1}"#,
        ] {
            assert!(record(odd, 0).is_none(), "{odd}");
        }
    }

    proptest! {
        /// The one-pass number readers give what the standard parsers give, for any number the
        /// grammar admits: decimals of every length (the fast path and past it), exponents,
        /// integers at and beyond the types' ends.
        #[test]
        fn numbers_read_as_the_standard_parsers_read_them(
            x in any::<f64>().prop_filter("finite", |x| x.is_finite()),
            int_part in 0u64..10_000_000_000_000_000,
            frac in "[0-9]{1,12}",
            neg in any::<bool>(),
            i in any::<i64>(),
            u in any::<u64>(),
        ) {
            let sign = if neg { "-" } else { "" };
            for t in [format!("{x:?}"), format!("{x}"), format!("{sign}{int_part}.{frac}"), format!("{sign}{int_part}"), format!("{x:e}")] {
                let Some(end) = number(t.as_bytes(), 0).filter(|&e| e == t.len()) else { continue };
                let t = &t[..end];
                prop_assert_eq!(float(t).map(f64::to_bits), t.parse::<f64>().ok().map(f64::to_bits), "{}", t);
            }
            for t in [i.to_string(), u.to_string(), format!("-{u}"), format!("{}", u % 100)] {
                prop_assert_eq!(int(&t), t.parse::<i64>().ok(), "{}", t);
                prop_assert_eq!(uint(&t), t.parse::<u32>().ok(), "{}", t);
            }
        }
    }

    proptest! {
        /// The word-wise prefix check answers as the slice's own, at every length and for a
        /// difference in any byte.
        #[test]
        fn the_word_wise_prefix_check_is_starts_with(
            prefix in prop::collection::vec(any::<u8>(), 0..40),
            tail in prop::collection::vec(any::<u8>(), 0..8),
            flip in any::<prop::sample::Index>(),
            cut in 0usize..3,
        ) {
            let mut b = prefix.clone();
            b.extend(&tail);
            prop_assert!(starts_with(&b, &prefix));
            if !prefix.is_empty() {
                let mut other = b.clone();
                other[flip.index(prefix.len())] ^= 0x20;
                prop_assert!(!starts_with(&other, &prefix));
                let short = &prefix[..prefix.len() - 1];
                prop_assert_eq!(starts_with(short, &prefix), false);
            }
            let shorter = &b[..b.len().saturating_sub(cut)];
            prop_assert_eq!(starts_with(shorter, &prefix), shorter.starts_with(&prefix));
        }
    }
}
