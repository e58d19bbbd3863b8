//! From a wrong instrument key to the right one: the mistakes people make most — a trading
//! symbol where Upstox wants the exchange token or ISIN (`NSE_EQ|RELIANCE`,
//! `NSE_FO|BANKNIFTY25FEB51000CE`), an index under an equity segment (`NSE_EQ|NIFTY50`), a
//! contract that has expired, a near-miss spelling — each answered with keys from the master
//! that can be pasted as they are.

use chrono::{Datelike, TimeZone};

use crate::master::{Instrument, InstrumentMaster};

/// Why a key is suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The key held a trading symbol; this is that instrument's key.
    SymbolAsKey,
    /// An index written under an equity segment; indices live under `NSE_INDEX`/`BSE_INDEX`.
    IndexUnderEquity,
    /// The contract asked for has expired (or is not listed); the same strike and type at the
    /// nearest live expiry.
    NearestLiveExpiry,
    /// A close spelling of a symbol the master has.
    CloseSpelling,
}

impl Why {
    /// In words, for a person.
    pub fn words(self) -> &'static str {
        match self {
            Self::SymbolAsKey => "a trading symbol was written where Upstox wants the instrument's token or ISIN",
            Self::IndexUnderEquity => "an index was written under an equity segment",
            Self::NearestLiveExpiry => "that contract is not live; the same strike at the nearest live expiry",
            Self::CloseSpelling => "a close spelling",
        }
    }
}

/// One suggested instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion<'a> {
    pub instrument: Instrument<'a>,
    pub why: Why,
}

/// Upper case with spaces, dashes and underscores taken out.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_uppercase)
        .collect()
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// A derivative written as a compact symbol: `BANKNIFTY25FEB51000CE`, `NIFTY 26000 CE 25 NOV 26`,
/// `BANKNIFTY25FEB24C51000`, `NIFTY25NOVFUT`.
#[derive(Debug, PartialEq)]
struct Contract {
    underlying: String,
    /// Month (1–12) and the two-digit numbers written next to it (day and/or year).
    month: Option<u32>,
    numbers: Vec<u32>,
    /// `Some(true)` call, `Some(false)` put, `None` a future.
    call: Option<bool>,
    strike: Option<f64>,
}

fn contract(id: &str) -> Option<Contract> {
    let s = id.trim().to_ascii_uppercase();
    // Runs of letters and of digits (with a decimal point), spaces dropped.
    let mut tokens: Vec<String> = Vec::new();
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        let digit = c.is_ascii_digit() || c == '.';
        match tokens.last_mut() {
            Some(t)
                if t.chars()
                    .next()
                    .is_some_and(|f| f.is_ascii_digit() == digit || (digit && f == '.')) =>
            {
                t.push(c);
            }
            _ => tokens.push(c.to_string()),
        }
    }
    let underlying = tokens
        .first()
        .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()))?
        .clone();
    let (mut month, mut numbers, mut call, mut strike, mut future) = (None, Vec::new(), None, None, false);
    for t in &tokens[1..] {
        if let Ok(n) = t.parse::<f64>() {
            // Strikes are the big numbers; days and years have two digits.
            if t.len() <= 2 && !t.contains('.') {
                numbers.push(n as u32);
            } else {
                strike = Some(n);
            }
            continue;
        }
        let mut rest = t.as_str();
        if let Some(m) = MONTHS.iter().position(|m| rest.starts_with(m)) {
            month = Some(m as u32 + 1);
            rest = &rest[3..];
        }
        match rest {
            "" => {}
            "CE" | "C" | "CALL" => call = Some(true),
            "PE" | "P" | "PUT" => call = Some(false),
            "FUT" => future = true,
            _ => return None,
        }
    }
    if call.is_none() && !future {
        return None;
    }
    if call.is_some() && strike.is_none() {
        return None;
    }
    Some(Contract {
        underlying,
        month,
        numbers,
        call,
        strike,
    })
}

impl InstrumentMaster {
    /// The instruments `key` was probably meant to be, best first (at most `limit`); `now_ms`
    /// decides which contracts are live. Empty when the master knows the key, or nothing
    /// close.
    pub fn suggest(&self, key: &str, now_ms: i64, limit: usize) -> Vec<Suggestion<'_>> {
        if self.get(key).is_some() || limit == 0 {
            return Vec::new();
        }
        let (segment, id) = key.split_once('|').unwrap_or(("", key));
        let wanted = norm(id);
        if wanted.is_empty() {
            return Vec::new();
        }
        let equity = matches!(segment, "NSE_EQ" | "BSE_EQ");
        // A symbol (or an index's name) written as the key.
        let mut exact: Vec<Suggestion<'_>> = self
            .iter()
            .filter(|r| r.expiry.is_none())
            .filter(|r| norm(r.trading_symbol) == wanted || (r.instrument_type == "INDEX" && norm(r.name) == wanted))
            .map(|r| Suggestion {
                instrument: r,
                why: if equity && r.instrument_type == "INDEX" {
                    Why::IndexUnderEquity
                } else {
                    Why::SymbolAsKey
                },
            })
            .collect();
        // The segment asked for first, then cash before indices.
        exact.sort_by_key(|s| (s.instrument.segment != segment, s.instrument.instrument_type == "INDEX"));
        if !exact.is_empty() {
            exact.truncate(limit);
            return exact;
        }
        if let Some(c) = contract(id) {
            let found = self.contracts(&c, now_ms, limit);
            if !found.is_empty() {
                return found;
            }
        }
        self.close_spellings(&wanted, limit)
    }

    /// Live contracts matching `c`: its own expiry when that is live, else the nearest.
    fn contracts(&self, c: &Contract, now_ms: i64, limit: usize) -> Vec<Suggestion<'_>> {
        let ist = chrono::FixedOffset::east_opt(19_800);
        let mut live: Vec<(Instrument<'_>, bool)> = self
            .iter()
            .filter(|r| r.expiry.is_some_and(|e| e >= now_ms))
            .filter(|r| {
                r.underlying_symbol
                    .is_some_and(|u| u.eq_ignore_ascii_case(&c.underlying))
            })
            .filter(|r| match c.call {
                Some(true) => r.instrument_type == "CE",
                Some(false) => r.instrument_type == "PE",
                None => r.instrument_type == "FUT",
            })
            .filter(|r| {
                c.strike
                    .is_none_or(|s| r.strike_price.is_some_and(|p| (p - s).abs() < 1e-6))
            })
            .map(|r| {
                let date = r
                    .expiry
                    .zip(ist)
                    .and_then(|(e, tz)| tz.timestamp_millis_opt(e).single())
                    .map(|d| d.date_naive());
                // As written: its month, and each two-digit number its day or its year.
                let as_written = c.month.is_some_and(|m| {
                    date.is_some_and(|d| {
                        d.month() == m
                            && c.numbers
                                .iter()
                                .all(|&n| n == d.day() || n == d.year().rem_euclid(100) as u32)
                    })
                });
                (r, as_written)
            })
            .collect();
        live.sort_by_key(|(r, as_written)| (!*as_written, r.expiry));
        let asked_live = live.first().is_some_and(|(_, w)| *w);
        live.into_iter()
            .take(limit)
            .map(|(r, _)| Suggestion {
                instrument: r,
                why: if asked_live {
                    Why::SymbolAsKey
                } else {
                    Why::NearestLiveExpiry
                },
            })
            .collect()
    }

    /// Cash and index symbols spelled closest to `wanted` (Jaro–Winkler ≥ 0.85).
    fn close_spellings(&self, wanted: &str, limit: usize) -> Vec<Suggestion<'_>> {
        let mut scored: Vec<(f64, Instrument<'_>)> = self
            .iter()
            .filter(|r| r.expiry.is_none())
            .map(|r| (strsim::jaro_winkler(wanted, &norm(r.trading_symbol)), r))
            .filter(|(s, _)| *s >= 0.85)
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.trading_symbol.cmp(b.1.trading_symbol))
        });
        scored.dedup_by(|a, b| a.1.instrument_key == b.1.instrument_key);
        scored
            .into_iter()
            .take(limit)
            .map(|(_, r)| Suggestion {
                instrument: r,
                why: Why::CloseSpelling,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_contract_symbols_are_read() {
        let c = contract("BANKNIFTY25FEB51000CE").expect("contract");
        assert_eq!(
            c,
            Contract {
                underlying: "BANKNIFTY".into(),
                month: Some(2),
                numbers: vec![25],
                call: Some(true),
                strike: Some(51000.0)
            }
        );
        let c = contract("BANKNIFTY25FEB24C51000").expect("contract");
        assert_eq!(
            (c.month, c.numbers, c.call, c.strike),
            (Some(2), vec![25, 24], Some(true), Some(51000.0))
        );
        let c = contract("NIFTY 26000 PE 25 NOV 26").expect("contract");
        assert_eq!(
            (c.month, c.numbers, c.call, c.strike),
            (Some(11), vec![25, 26], Some(false), Some(26000.0))
        );
        assert_eq!(contract("NIFTY25NOVFUT").map(|c| c.call), Some(None));
        assert!(contract("RELIANCE").is_none());
        assert!(contract("INE002A01018").is_none());
    }
}
