//! Instrument keys (`SEGMENT|ID`, api-facts §6) and exchange segments.

use std::fmt;
use std::str::FromStr;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exchange segment as it appears in instrument keys and instrument records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    NseEq,
    NseIndex,
    NseFo,
    NcdFo,
    BseEq,
    BseIndex,
    BseFo,
    BcdFo,
    McxFo,
    NseCom,
}

impl Segment {
    /// Every segment, in a stable order.
    pub const ALL: [Segment; 10] = [
        Segment::NseEq,
        Segment::NseIndex,
        Segment::NseFo,
        Segment::NcdFo,
        Segment::BseEq,
        Segment::BseIndex,
        Segment::BseFo,
        Segment::BcdFo,
        Segment::McxFo,
        Segment::NseCom,
    ];

    /// The wire spelling, e.g. `NSE_EQ`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Segment::NseEq => "NSE_EQ",
            Segment::NseIndex => "NSE_INDEX",
            Segment::NseFo => "NSE_FO",
            Segment::NcdFo => "NCD_FO",
            Segment::BseEq => "BSE_EQ",
            Segment::BseIndex => "BSE_INDEX",
            Segment::BseFo => "BSE_FO",
            Segment::BcdFo => "BCD_FO",
            Segment::McxFo => "MCX_FO",
            Segment::NseCom => "NSE_COM",
        }
    }

    /// The exchange name used in order books and positions (`NSE`, `NFO`, `BSE`, `BFO`, `MCX`, `CDS`).
    pub const fn order_exchange(self) -> &'static str {
        match self {
            Segment::NseEq | Segment::NseIndex => "NSE",
            Segment::NseFo => "NFO",
            Segment::NcdFo => "CDS",
            Segment::BseEq | Segment::BseIndex => "BSE",
            Segment::BseFo => "BFO",
            Segment::BcdFo => "BCD",
            Segment::McxFo | Segment::NseCom => "MCX",
        }
    }

    /// The exchange as written in instrument records (`NSE`, `BSE`, `MCX`).
    pub const fn exchange(self) -> &'static str {
        match self {
            Segment::NseEq | Segment::NseIndex | Segment::NseFo | Segment::NcdFo | Segment::NseCom => "NSE",
            Segment::BseEq | Segment::BseIndex | Segment::BseFo | Segment::BcdFo => "BSE",
            Segment::McxFo => "MCX",
        }
    }

    /// Whether instruments of this segment are indices (not tradable).
    pub const fn is_index(self) -> bool {
        matches!(self, Segment::NseIndex | Segment::BseIndex)
    }

    /// Whether this is a derivatives segment.
    pub const fn is_derivative(self) -> bool {
        matches!(
            self,
            Segment::NseFo | Segment::BseFo | Segment::McxFo | Segment::NcdFo | Segment::BcdFo | Segment::NseCom
        )
    }

    /// Whether order quantities count lots here (MCX), not units: a unit's P&L is then a lot's.
    pub const fn quantity_in_lots(self) -> bool {
        matches!(self, Segment::McxFo)
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Segment {
    type Err = InstrumentKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Segment::ALL
            .into_iter()
            .find(|seg| seg.as_str() == s)
            .ok_or_else(|| InstrumentKeyError::UnknownSegment(s.to_owned()))
    }
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a string is not an instrument key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstrumentKeyError {
    #[error("instrument key {0:?} has no '|': write it as SEGMENT|ID, e.g. NSE_EQ|INE002A01018 or NSE_INDEX|Nifty 50")]
    MissingPipe(String),
    #[error(
        "unknown segment {0:?}: use one of NSE_EQ, NSE_INDEX, NSE_FO, NCD_FO, BSE_EQ, BSE_INDEX, BSE_FO, BCD_FO, MCX_FO, NSE_COM"
    )]
    UnknownSegment(String),
    #[error("an instrument key must be UTF-8 text")]
    NotUtf8,
    #[error("instrument key {0:?} has an empty id after '|'")]
    EmptyId(String),
    #[error("instrument key {0:?} holds control characters; no instrument key does")]
    ControlCharacters(String),
}

/// An instrument key such as `NSE_EQ|INE002A01018`, `NSE_INDEX|Nifty 50` or `NSE_FO|43919`.
///
/// The id is kept inline when it fits in 24 bytes (exchange tokens, ISINs and index names do):
/// a key is copied without touching the heap, as the feed decoder does once a tick.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstrumentKey {
    segment: Segment,
    id: CompactString,
}

impl InstrumentKey {
    /// Builds a key from its parts.
    pub fn new(segment: Segment, id: impl AsRef<str>) -> Self {
        Self {
            segment,
            id: CompactString::new(id),
        }
    }

    /// The segment part.
    pub fn segment(&self) -> Segment {
        self.segment
    }

    /// The id part (ISIN, index name or exchange token).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for InstrumentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.segment, self.id)
    }
}

/// The checked parts of `s`: its segment and its trimmed id.
fn key_parts(s: &str) -> Result<(Segment, &str), InstrumentKeyError> {
    let (segment, id) = s
        .split_once('|')
        .ok_or_else(|| InstrumentKeyError::MissingPipe(s.to_owned()))?;
    let segment: Segment = segment.trim().parse()?;
    let id = id.trim();
    if id.is_empty() {
        return Err(InstrumentKeyError::EmptyId(s.to_owned()));
    }
    if id.chars().any(char::is_control) {
        return Err(InstrumentKeyError::ControlCharacters(s.to_owned()));
    }
    Ok((segment, id))
}

/// [`key_parts`] for the keys a feed carries (ASCII, no spaces around the parts, no control
/// characters); `None` sends anything else to [`key_parts`], which decides and explains.
#[inline]
fn ascii_key_parts(b: &[u8]) -> Option<(Segment, &[u8])> {
    // Segment names have 6, 7 or 9 letters and no '|': the first '|' is right after one of
    // them, so three bytes are looked at instead of scanning for it.
    let (segment, id) = [6, 7, 9].into_iter().find_map(|n| {
        if b.get(n) != Some(&b'|') {
            return None;
        }
        let segment = match &b[..n] {
            b"NSE_EQ" => Segment::NseEq,
            b"NSE_INDEX" => Segment::NseIndex,
            b"NSE_FO" => Segment::NseFo,
            b"NCD_FO" => Segment::NcdFo,
            b"BSE_EQ" => Segment::BseEq,
            b"BSE_INDEX" => Segment::BseIndex,
            b"BSE_FO" => Segment::BseFo,
            b"BCD_FO" => Segment::BcdFo,
            b"MCX_FO" => Segment::McxFo,
            b"NSE_COM" => Segment::NseCom,
            _ => return None,
        };
        Some((segment, &b[n + 1..]))
    })?;
    // Printable ASCII (space to '~'), not starting or ending with a space.
    let (first, last) = (id.first()?, id.last()?);
    let printable = id.iter().fold(true, |ok, &c| ok & (c.wrapping_sub(b' ') < 0x5f));
    if *first == b' ' || *last == b' ' || !printable {
        return None;
    }
    Some((segment, id))
}

impl InstrumentKey {
    /// Makes this key the one `s` spells, reusing the id's storage (no allocation when the new
    /// id fits): how a decoder that keeps its ticks fills a key frame after frame.
    ///
    /// # Errors
    /// As [`str::parse`]; the key is left as it was.
    pub fn assign(&mut self, s: &str) -> Result<(), InstrumentKeyError> {
        self.assign_utf8(s.as_bytes())
    }

    /// [`assign`](Self::assign) from bytes as they come off a wire: printable ASCII (every key
    /// a feed sends) is taken without a separate UTF-8 pass.
    ///
    /// # Errors
    /// As [`str::parse`], and [`InstrumentKeyError::NotUtf8`]; the key is left as it was.
    pub fn assign_utf8(&mut self, b: &[u8]) -> Result<(), InstrumentKeyError> {
        if let Some((segment, id)) = ascii_key_parts(b) {
            self.segment = segment;
            // Printable ASCII, so this check cannot fail.
            self.set_id(std::str::from_utf8(id).map_err(|_| InstrumentKeyError::NotUtf8)?);
            return Ok(());
        }
        let s = std::str::from_utf8(b).map_err(|_| InstrumentKeyError::NotUtf8)?;
        let (segment, id) = key_parts(s)?;
        self.segment = segment;
        self.set_id(id);
        Ok(())
    }

    /// Replaces the id: a short one is built inline (no heap), a long one reuses the buffer.
    #[inline]
    fn set_id(&mut self, id: &str) {
        if id.len() <= std::mem::size_of::<CompactString>() {
            self.id = CompactString::new(id);
        } else {
            self.id.clear();
            self.id.push_str(id);
        }
    }
}

impl FromStr for InstrumentKey {
    type Err = InstrumentKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (segment, id) = key_parts(s)?;
        Ok(Self::new(segment, id))
    }
}

impl PartialEq<str> for InstrumentKey {
    fn eq(&self, other: &str) -> bool {
        other
            .split_once('|')
            .is_some_and(|(seg, id)| seg == self.segment.as_str() && id == self.id)
    }
}

impl PartialEq<&str> for InstrumentKey {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for InstrumentKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstrumentKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_characters_are_refused_and_never_shown_raw() {
        let e = "NSE_EQ|\u{1b}[31mRED".parse::<InstrumentKey>().expect_err("escape");
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        assert!(e.to_string().contains("\\u{1b}"), "{e}");
        let e = "NSE\u{7}EQ|X".parse::<InstrumentKey>().expect_err("bell in segment");
        assert!(!e.to_string().contains('\u{7}'), "{e}");
    }

    #[test]
    fn parses_the_documented_shapes() {
        let eq: InstrumentKey = "NSE_EQ|INE002A01018".parse().expect("equity key");
        assert_eq!(eq.segment(), Segment::NseEq);
        assert_eq!(eq.id(), "INE002A01018");
        let idx: InstrumentKey = "NSE_INDEX|Nifty 50".parse().expect("index key");
        assert_eq!(idx.id(), "Nifty 50");
        assert_eq!(idx.to_string(), "NSE_INDEX|Nifty 50");
    }

    #[test]
    fn rejects_bad_keys_with_a_reason() {
        assert!(matches!(
            "RELIANCE".parse::<InstrumentKey>(),
            Err(InstrumentKeyError::MissingPipe(_))
        ));
        assert!(matches!(
            "NSE|X".parse::<InstrumentKey>(),
            Err(InstrumentKeyError::UnknownSegment(_))
        ));
        assert!(matches!(
            "NSE_EQ|".parse::<InstrumentKey>(),
            Err(InstrumentKeyError::EmptyId(_))
        ));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(seg in 0usize..10, id in "[A-Za-z0-9 ]{0,10}[A-Za-z0-9]") {
            let key = InstrumentKey::new(Segment::ALL[seg], id.trim());
            let back: InstrumentKey = key.to_string().parse().expect("round trip");
            prop_assert_eq!(back, key);
        }

        /// Assigning in place (the decoder's fast path for ASCII keys, and the slow one for the
        /// rest) accepts exactly what parsing accepts, and gives the same key.
        #[test]
        fn assign_agrees_with_parse(
            seg in prop_oneof![Just("NSE_FO".to_owned()), Just("NSE_INDEX".to_owned()), Just(" BSE_EQ".to_owned()), "[A-Z_]{0,9}"],
            id in "[ A-Za-z0-9\u{7f}\u{85}\u{a0}|é\t]{0,12}",
            pipe: bool,
        ) {
            let s = if pipe { format!("{seg}|{id}") } else { format!("{seg}{id}") };
            let parsed = s.parse::<InstrumentKey>();
            let mut key = InstrumentKey::new(Segment::McxFo, "previous");
            let assigned = key.assign(&s);
            prop_assert_eq!(parsed.is_ok(), assigned.is_ok(), "{:?}", s);
            match parsed {
                Ok(p) => prop_assert_eq!(p, key),
                Err(_) => prop_assert_eq!(key, InstrumentKey::new(Segment::McxFo, "previous")),
            }
        }
    }
}
