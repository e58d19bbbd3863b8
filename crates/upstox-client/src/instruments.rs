//! The instrument master: download (with progress), gunzip, parse and index the BOD file
//! (`complete.json.gz`, 100,000+ records) in memory, by key, by trading symbol, and option
//! chains by underlying, expiry, strike and type.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::client::UpstoxClient;
use crate::error::{Error, Result};

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

/// The parsed and indexed master.
#[derive(Debug, Default)]
pub struct InstrumentMaster {
    records: Vec<InstrumentRecord>,
    by_key: HashMap<String, u32>,
    by_symbol: HashMap<String, Vec<u32>>,
    /// underlying key → (expiry ms, strike paise, kind) → record.
    options: HashMap<String, BTreeMap<(i64, i64, OptionKind), u32>>,
}

impl InstrumentMaster {
    /// Parses the JSON array and builds the indexes.
    ///
    /// # Errors
    /// When the bytes are not a JSON array of instrument records.
    pub fn from_json(json: &[u8]) -> Result<Self> {
        let records: Vec<InstrumentRecord> = serde_json::from_slice(json)
            .map_err(|e| Error::Instruments(format!("not a JSON array of instrument records: {e}")))?;
        Ok(Self::index(records))
    }

    /// Gunzips, parses and indexes a `.json.gz` file's bytes.
    ///
    /// # Errors
    /// When the bytes are not gzip, or not instrument JSON.
    pub fn from_gzip(gz: &[u8]) -> Result<Self> {
        let mut json = Vec::with_capacity(gz.len() * 8);
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut json)
            .map_err(|e| Error::Instruments(format!("not a gzip file ({e}); expected complete.json.gz or similar")))?;
        Self::from_json(&json)
    }

    /// Builds the indexes over `records`.
    pub fn index(records: Vec<InstrumentRecord>) -> Self {
        let mut by_key = HashMap::with_capacity(records.len());
        let mut by_symbol: HashMap<String, Vec<u32>> = HashMap::with_capacity(records.len());
        let mut options: HashMap<String, BTreeMap<(i64, i64, OptionKind), u32>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            let i = i as u32;
            by_key.insert(r.instrument_key.clone(), i);
            by_symbol
                .entry(r.trading_symbol.to_ascii_uppercase())
                .or_default()
                .push(i);
            if let (true, Some(u), Some(e), Some(s)) = (r.is_option(), &r.underlying_key, r.expiry, r.strike_price) {
                let kind = if r.instrument_type == "CE" {
                    OptionKind::Call
                } else {
                    OptionKind::Put
                };
                options
                    .entry(u.clone())
                    .or_default()
                    .insert((e, strike_key(s), kind), i);
            }
        }
        Self {
            records,
            by_key,
            by_symbol,
            options,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn records(&self) -> &[InstrumentRecord] {
        &self.records
    }

    /// By instrument key (`NSE_EQ|INE002A01018`).
    pub fn get(&self, key: &str) -> Option<&InstrumentRecord> {
        self.by_key.get(key).map(|&i| &self.records[i as usize])
    }

    /// By trading symbol, case-insensitive (several segments may share one).
    pub fn by_trading_symbol(&self, symbol: &str) -> Vec<&InstrumentRecord> {
        self.by_symbol
            .get(&symbol.to_ascii_uppercase())
            .map(|v| v.iter().map(|&i| &self.records[i as usize]).collect())
            .unwrap_or_default()
    }

    /// Expiries (epoch ms) with options on `underlying`.
    pub fn expiries(&self, underlying: &str) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .options
            .get(underlying)
            .map(|m| m.keys().map(|k| k.0).collect())
            .unwrap_or_default();
        out.dedup();
        out
    }

    /// One option by underlying, expiry (epoch ms), strike and kind.
    pub fn option(&self, underlying: &str, expiry: i64, strike: f64, kind: OptionKind) -> Option<&InstrumentRecord> {
        let i = self.options.get(underlying)?.get(&(expiry, strike_key(strike), kind))?;
        Some(&self.records[*i as usize])
    }

    /// The chain of one expiry, ordered by strike then kind.
    pub fn chain(&self, underlying: &str, expiry: i64) -> Vec<&InstrumentRecord> {
        self.options
            .get(underlying)
            .map(|m| {
                m.range((expiry, i64::MIN, OptionKind::Call)..=(expiry, i64::MAX, OptionKind::Put))
                    .map(|(_, &i)| &self.records[i as usize])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records whose trading symbol or name contains `text` (case-insensitive): exact symbol
    /// matches first, then prefixes, then the rest; cash and index instruments before derivatives.
    pub fn search(&self, text: &str, limit: usize) -> Vec<&InstrumentRecord> {
        let needle = text.trim().to_ascii_uppercase();
        if needle.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(u8, bool, usize, &InstrumentRecord)> = self
            .records
            .iter()
            .filter_map(|r| {
                let sym = r.trading_symbol.to_ascii_uppercase();
                let rank = if sym == needle {
                    0
                } else if sym.starts_with(&needle) {
                    1
                } else if sym.contains(&needle)
                    || r.name.to_ascii_uppercase().contains(&needle)
                    || r.instrument_key.to_ascii_uppercase() == needle
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
                .then_with(|| a.3.trading_symbol.cmp(&b.3.trading_symbol))
        });
        hits.into_iter().take(limit).map(|h| h.3).collect()
    }
}

impl UpstoxClient {
    /// The URL of an instrument file (`complete`, `NSE`, `BSE`, `MCX`).
    pub fn instruments_url(&self, file: &str) -> String {
        format!(
            "{}/market-quote/instruments/exchange/{file}.json.gz",
            self.hosts().assets.trim_end_matches('/')
        )
    }

    /// Downloads an instrument file, calling `progress(bytes_so_far, total_if_known)` as it goes.
    ///
    /// # Errors
    /// Transport errors and non-2xx answers.
    pub async fn download_instruments(
        &self,
        file: &str,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<u8>> {
        let url = self.instruments_url(file);
        let endpoint = format!("GET {file}.json.gz");
        let resp = reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Transport {
                endpoint: endpoint.clone(),
                message: e.without_url().to_string(),
                connect: true,
            })?;
        if !resp.status().is_success() {
            return Err(Error::Api {
                endpoint,
                status: resp.status().as_u16(),
                errors: Vec::new(),
            });
        }
        let total = resp.content_length();
        let mut body = Vec::with_capacity(total.unwrap_or(1 << 20) as usize);
        let mut stream = resp.bytes_stream();
        progress(0, total);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Transport {
                endpoint: endpoint.clone(),
                message: e.without_url().to_string(),
                connect: false,
            })?;
            body.extend_from_slice(&chunk);
            progress(body.len() as u64, total);
        }
        Ok(body)
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
        let m = InstrumentMaster::from_json(SAMPLE.as_bytes()).expect("sample");
        assert_eq!(m.len(), 3);
        assert_eq!(
            m.get("NSE_INDEX|Nifty 50").map(|r| r.exchange_token.as_str()),
            Some("26000")
        );
        assert_eq!(m.by_trading_symbol("reliance").len(), 1);
        let call = m
            .option("NSE_INDEX|Nifty 50", 1_795_631_399_000, 26000.0, OptionKind::Call)
            .expect("option");
        assert_eq!(call.instrument_key, "NSE_FO|43919");
        assert_eq!(m.expiries("NSE_INDEX|Nifty 50"), vec![1_795_631_399_000]);
        assert_eq!(m.search("nifty", 10)[0].instrument_key, "NSE_INDEX|Nifty 50");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let e = InstrumentMaster::from_gzip(b"not gzip").expect_err("garbage");
        assert!(e.to_string().contains("not a gzip file"), "{e}");
        let e = InstrumentMaster::from_json(b"{\"a\":1}").expect_err("object");
        assert!(e.to_string().contains("not a JSON array"), "{e}");
    }

    #[test]
    fn records_round_trip_through_serde() {
        let m = InstrumentMaster::from_json(SAMPLE.as_bytes()).expect("sample");
        let json = serde_json::to_vec(m.records()).expect("serialize");
        let back = InstrumentMaster::from_json(&json).expect("parse back");
        assert_eq!(back.records(), m.records());
    }
}
