//! The synthetic instrument universe: equities on NSE and BSE, indices, index and stock futures
//! and options over several weekly and monthly expiries, and MCX futures. Built from the
//! market data and the seed; sized like the real instrument master (100,000+ records).

use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;
use upstox_types::Segment;

use super::calendar::{Calendar, ist_instant, weekday};
use super::price_path::{PricePath, mix, unit};
use crate::config::MarketConfig;
use crate::error::SimError;

/// What drives an instrument's price.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An index or equity priced directly by path `path`.
    Spot { path: u32 },
    /// A future on path `path` expiring at `expiry` (epoch seconds).
    Future { path: u32, expiry: i64 },
    /// An option on path `path`; `vol_source` is the path whose level/100 is the base IV
    /// (India VIX for indices), or `None` with `base_iv` for stocks.
    Option {
        path: u32,
        expiry: i64,
        strike: f64,
        call: bool,
        base_iv: f64,
        vol_from_vix: bool,
    },
}

/// One instrument, with the fields of the real instrument master record.
#[derive(Debug, Clone, Serialize)]
pub struct Instrument {
    pub segment: Segment,
    pub name: String,
    pub exchange: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isin: Option<String>,
    pub instrument_type: &'static str,
    pub instrument_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze_quantity: Option<f64>,
    pub exchange_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_size: Option<f64>,
    pub trading_symbol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_type: Option<&'static str>,
    /// Epoch milliseconds (23:59:59 IST of the expiry day), derivatives only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strike_price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum_lot: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub underlying_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub underlying_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub underlying_symbol: Option<String>,
    /// The exchange's compact symbol used in quote response keys (`NSE_FO:NIFTY25D0226000CE`).
    #[serde(skip)]
    pub quote_symbol: String,
    #[serde(skip)]
    pub kind: Kind,
    /// Expiry date, derivatives only.
    #[serde(skip)]
    pub expiry_date: Option<NaiveDate>,
}

impl Instrument {
    /// `SEGMENT:SYMBOL`, the key of quote responses.
    pub fn quote_key(&self) -> String {
        format!("{}:{}", self.segment, self.quote_symbol)
    }

    /// Tick size in rupees.
    pub fn tick(&self) -> f64 {
        self.tick_size.unwrap_or(5.0) / 100.0
    }

    pub fn lot(&self) -> u32 {
        self.lot_size.unwrap_or(1).max(1)
    }

    /// What an order's quantity must be a multiple of: 1 where quantities count lots (MCX),
    /// else the lot size in units.
    pub fn quantity_step(&self) -> u64 {
        if self.segment.quantity_in_lots() {
            1
        } else {
            u64::from(self.lot())
        }
    }

    pub fn is_option(&self) -> bool {
        matches!(self.kind, Kind::Option { .. })
    }
}

/// The universe and the price paths behind it.
#[derive(Debug)]
pub struct Universe {
    pub instruments: Vec<Instrument>,
    pub paths: Vec<PricePath>,
    /// Path of India VIX.
    pub vix_path: u32,
}

const REAL_EQUITIES: [(&str, &str, &str); 6] = [
    ("RELIANCE", "RELIANCE INDUSTRIES LTD", "INE002A01018"),
    ("NHPC", "NHPC LTD", "INE848E01016"),
    ("SBIN", "STATE BANK OF INDIA", "INE062A01020"),
    ("YESBANK", "YES BANK LTD.", "INE528G01035"),
    ("IDEA", "VODAFONE IDEA LIMITED", "INE669E01016"),
    ("NHPCTEST", "GTT SAMPLE LTD", "INE806A01020"),
];

const SYLLABLES: [&str; 24] = [
    "AR", "BA", "CHA", "DEV", "EK", "GA", "HAR", "IN", "JAY", "KAM", "LAK", "MA", "NAV", "OM", "PRA", "RA", "SAN",
    "TAR", "UMA", "VAS", "YAM", "ZEN", "SHRI", "VIR",
];
const SUFFIXES: [&str; 8] = [
    "INDUSTRIES",
    "FINANCE",
    "POWER",
    "PHARMA",
    "TEXTILES",
    "INFRA",
    "CHEMICALS",
    "MOTORS",
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn fmt_strike(strike: f64) -> String {
    if strike.fract() == 0.0 {
        format!("{strike:.0}")
    } else {
        format!("{strike}")
    }
}

/// `NIFTY 26000 CE 25 NOV 26`-style record symbol and `NIFTY26N2526000CE` / `NIFTY26NOV26000CE` quote symbol.
fn option_symbols(root: &str, strike: f64, call: bool, expiry: NaiveDate, monthly: bool) -> (String, String) {
    use chrono::Datelike;
    let cp = if call { "CE" } else { "PE" };
    let month = MONTHS[expiry.month0() as usize];
    let record = format!(
        "{root} {} {cp} {:02} {month} {:02}",
        fmt_strike(strike),
        expiry.day(),
        expiry.year() % 100
    );
    let compact = if monthly {
        format!("{root}{:02}{month}{}{cp}", expiry.year() % 100, fmt_strike(strike))
    } else {
        let m = match expiry.month() {
            10 => "O".to_owned(),
            11 => "N".to_owned(),
            12 => "D".to_owned(),
            n => n.to_string(),
        };
        format!(
            "{root}{:02}{m}{:02}{}{cp}",
            expiry.year() % 100,
            expiry.day(),
            fmt_strike(strike)
        )
    };
    (record, compact)
}

fn future_symbols(root: &str, expiry: NaiveDate) -> (String, String) {
    use chrono::Datelike;
    let month = MONTHS[expiry.month0() as usize];
    (
        format!("{root} FUT {:02} {month} {:02}", expiry.day(), expiry.year() % 100),
        format!("{root}{:02}{month}FUT", expiry.year() % 100),
    )
}

fn expiry_epoch(date: NaiveDate, close: NaiveTime) -> i64 {
    ist_instant(date, close).timestamp()
}

fn record_expiry_ms(date: NaiveDate) -> i64 {
    let end = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
    ist_instant(date, end).timestamp_millis()
}

struct Builder {
    out: Vec<Instrument>,
    paths: Vec<PricePath>,
    seed: u64,
    next_nfo_token: u64,
    next_bfo_token: u64,
    next_mcx_token: u64,
}

impl Builder {
    fn path(&mut self, base: f64, daily_vol: f64, levels: u32) -> u32 {
        let salt = mix(self.seed ^ mix(self.paths.len() as u64 + 1));
        self.paths.push(PricePath {
            base,
            daily_vol,
            salt,
            levels,
        });
        (self.paths.len() - 1) as u32
    }

    fn fo_token(&mut self, segment: Segment) -> String {
        let t = match segment {
            Segment::BseFo => &mut self.next_bfo_token,
            Segment::McxFo => &mut self.next_mcx_token,
            _ => &mut self.next_nfo_token,
        };
        *t += 1;
        t.to_string()
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per derivative kind; a struct would only rename these"
    )]
    fn derivative(
        &mut self,
        segment: Segment,
        root: &str,
        underlying_key: &str,
        underlying_type: &'static str,
        lot: u32,
        freeze: f64,
        tick_paise: f64,
        expiry: NaiveDate,
        weekly: bool,
        kind: Kind,
        symbols: (String, String),
    ) {
        let token = self.fo_token(segment);
        let (instrument_type, strike) = match kind {
            Kind::Future { .. } => ("FUT", 0.0),
            Kind::Option { strike, call, .. } => (if call { "CE" } else { "PE" }, strike),
            Kind::Spot { .. } => ("EQ", 0.0),
        };
        self.out.push(Instrument {
            segment,
            name: root.to_owned(),
            exchange: segment.exchange(),
            isin: None,
            instrument_type,
            instrument_key: format!("{segment}|{token}"),
            lot_size: Some(lot),
            freeze_quantity: Some(freeze),
            exchange_token: token,
            tick_size: Some(tick_paise),
            trading_symbol: symbols.0,
            short_name: None,
            security_type: None,
            expiry: Some(record_expiry_ms(expiry)),
            strike_price: Some(strike),
            weekly: Some(weekly),
            minimum_lot: Some(lot),
            underlying_key: Some(underlying_key.to_owned()),
            underlying_type: Some(underlying_type),
            underlying_symbol: Some(root.to_owned()),
            quote_symbol: symbols.1,
            kind,
            expiry_date: Some(expiry),
        });
    }

    #[allow(clippy::too_many_arguments, reason = "mirrors the fields of an option series")]
    fn option_series(
        &mut self,
        segment: Segment,
        root: &str,
        underlying_key: &str,
        underlying_type: &'static str,
        path: u32,
        spot: f64,
        step: f64,
        each_side: u32,
        lot: u32,
        freeze: f64,
        expiry: NaiveDate,
        weekly: bool,
        base_iv: f64,
        vol_from_vix: bool,
        close: NaiveTime,
    ) {
        let atm = (spot / step).round() * step;
        for i in -(each_side as i64)..=(each_side as i64) {
            let strike = atm + i as f64 * step;
            if strike <= 0.0 {
                continue;
            }
            for call in [true, false] {
                let kind = Kind::Option {
                    path,
                    expiry: expiry_epoch(expiry, close),
                    strike,
                    call,
                    base_iv,
                    vol_from_vix,
                };
                let symbols = option_symbols(root, strike, call, expiry, !weekly);
                self.derivative(
                    segment,
                    root,
                    underlying_key,
                    underlying_type,
                    lot,
                    freeze,
                    5.0,
                    expiry,
                    weekly,
                    kind,
                    symbols,
                );
            }
        }
    }
}

impl Universe {
    /// Builds the universe for a market whose current trading day is `today`.
    ///
    /// # Errors
    /// When the market data names a bad weekday or instrument key.
    pub fn build(config: &MarketConfig, calendar: &Calendar, seed: u64, today: NaiveDate) -> Result<Self, SimError> {
        let mut b = Builder {
            out: Vec::with_capacity(110_000),
            paths: Vec::new(),
            seed,
            next_nfo_token: 35_000,
            next_bfo_token: 800_000,
            next_mcx_token: 430_000,
        };
        let close = NaiveTime::from_hms_opt(15, 30, 0).unwrap_or(NaiveTime::MIN);

        // Indices.
        let mut vix_path = None;
        let mut index_paths = Vec::new();
        for (i, idx) in config.indices.iter().enumerate() {
            let key: upstox_types::InstrumentKey = idx
                .key
                .parse()
                .map_err(|e| SimError::Config(format!("market.indices: {e}")))?;
            let is_vix = idx.name.contains("VIX");
            let path = if is_vix {
                b.path(idx.base, 0.06, 14)
            } else {
                b.path(idx.base, config.index_daily_vol, 20)
            };
            if is_vix {
                vix_path = Some(path);
            }
            index_paths.push(path);
            b.out.push(Instrument {
                segment: key.segment(),
                name: idx.name.clone(),
                exchange: key.segment().exchange(),
                isin: None,
                instrument_type: "INDEX",
                instrument_key: idx.key.clone(),
                lot_size: None,
                freeze_quantity: None,
                exchange_token: (26_000 + i).to_string(),
                tick_size: None,
                trading_symbol: idx.symbol.clone(),
                short_name: None,
                security_type: None,
                expiry: None,
                strike_price: None,
                weekly: None,
                minimum_lot: None,
                underlying_key: None,
                underlying_type: None,
                underlying_symbol: None,
                quote_symbol: idx.name.clone(),
                kind: Kind::Spot { path },
                expiry_date: None,
            });
        }
        let vix_path = vix_path.ok_or_else(|| SimError::Config("market.indices must include India VIX".into()))?;
        let vix_level = config
            .indices
            .iter()
            .find(|i| i.name.contains("VIX"))
            .map_or(14.0, |i| i.base)
            / 100.0;

        // Equities: a few real names from the API docs, the rest synthetic, each on NSE and BSE.
        let mut equities = Vec::new();
        for i in 0..config.equities {
            let h = mix(seed ^ 0xE0 ^ mix(i as u64));
            let (symbol, name, isin) = if let Some((s, n, isin)) = REAL_EQUITIES.get(i) {
                ((*s).to_owned(), (*n).to_owned(), (*isin).to_owned())
            } else {
                let a = SYLLABLES[(h % 24) as usize];
                let c = SYLLABLES[((h >> 8) % 24) as usize];
                let suffix = SUFFIXES[((h >> 16) % 8) as usize];
                let symbol = format!("{a}{c}{}{}", &suffix[..3], i);
                (
                    symbol,
                    format!("{a}{c} {suffix} LTD"),
                    format!("INE{:03}S01{:03}", i % 1000, i),
                )
            };
            let base = (20f64.ln() + unit(mix(h ^ 1)) * (5000f64 / 20.0).ln()).exp();
            let vol = config.stock_daily_vol_min
                + unit(mix(h ^ 2)) * (config.stock_daily_vol_max - config.stock_daily_vol_min);
            let path = b.path((base * 20.0).round() / 20.0, vol, 20);
            equities.push((symbol.clone(), isin.clone(), path, base, h));
            for (segment, token) in [(Segment::NseEq, 1_000 + i), (Segment::BseEq, 500_000 + i)] {
                b.out.push(Instrument {
                    segment,
                    name: name.clone(),
                    exchange: segment.exchange(),
                    isin: Some(isin.clone()),
                    instrument_type: if segment == Segment::BseEq { "A" } else { "EQ" },
                    instrument_key: format!("{segment}|{isin}"),
                    lot_size: Some(1),
                    freeze_quantity: Some(100_000.0),
                    exchange_token: token.to_string(),
                    tick_size: Some(5.0),
                    trading_symbol: symbol.clone(),
                    short_name: Some(name.clone()),
                    security_type: Some("NORMAL"),
                    expiry: None,
                    strike_price: None,
                    weekly: None,
                    minimum_lot: None,
                    underlying_key: None,
                    underlying_type: None,
                    underlying_symbol: None,
                    quote_symbol: symbol.clone(),
                    kind: Kind::Spot { path },
                    expiry_date: None,
                });
            }
        }

        // Index derivatives.
        for (idx, &path) in config.indices.iter().zip(&index_paths) {
            let Some(lot) = idx.lot else { continue };
            let key: upstox_types::InstrumentKey = idx
                .key
                .parse()
                .map_err(|e| SimError::Config(format!("market.indices: {e}")))?;
            let segment = if key.segment() == Segment::BseIndex {
                Segment::BseFo
            } else {
                Segment::NseFo
            };
            let freeze = f64::from(idx.freeze_quantity.unwrap_or(lot * 20));
            let step = f64::from(idx.strike_step.unwrap_or(50));
            let monthly_day = weekday(idx.monthly_weekday.as_deref().unwrap_or("Tue"))?;
            let monthlies = calendar.monthly_expiries(monthly_day, today, config.monthly_expiries);
            for &expiry in &monthlies {
                let kind = Kind::Future {
                    path,
                    expiry: expiry_epoch(expiry, close),
                };
                b.derivative(
                    segment,
                    &idx.symbol,
                    &idx.key,
                    "INDEX",
                    lot,
                    freeze,
                    5.0,
                    expiry,
                    false,
                    kind,
                    future_symbols(&idx.symbol, expiry),
                );
            }
            let mut expiries: Vec<(NaiveDate, bool)> = monthlies.iter().map(|d| (*d, false)).collect();
            if let Some(wd) = &idx.weekly_weekday {
                for d in calendar.weekly_expiries(weekday(wd)?, today, config.weekly_expiries) {
                    if !monthlies.contains(&d) {
                        expiries.push((d, true));
                    }
                }
            }
            expiries.sort();
            for (expiry, weekly) in expiries {
                b.option_series(
                    segment,
                    &idx.symbol,
                    &idx.key,
                    "INDEX",
                    path,
                    idx.base,
                    step,
                    config.index_strikes_each_side,
                    lot,
                    freeze,
                    expiry,
                    weekly,
                    vix_level,
                    true,
                    close,
                );
            }
        }

        // Stock derivatives on the first `stock_fo_count` equities.
        let stock_monthlies = calendar.monthly_expiries(chrono::Weekday::Tue, today, config.monthly_expiries);
        for (symbol, isin, path, base, h) in equities.iter().take(config.stock_fo_count) {
            let underlying_key = format!("NSE_EQ|{isin}");
            let lot = (((150_000.0 / base) / 25.0).round() * 25.0).max(25.0) as u32;
            let freeze = f64::from(lot * 24);
            let step = nice_step(*base);
            let iv = 0.22 + unit(mix(h ^ 3)) * 0.25;
            for &expiry in &stock_monthlies {
                let kind = Kind::Future {
                    path: *path,
                    expiry: expiry_epoch(expiry, close),
                };
                b.derivative(
                    Segment::NseFo,
                    symbol,
                    &underlying_key,
                    "EQUITY",
                    lot,
                    freeze,
                    5.0,
                    expiry,
                    false,
                    kind,
                    future_symbols(symbol, expiry),
                );
                b.option_series(
                    Segment::NseFo,
                    symbol,
                    &underlying_key,
                    "EQUITY",
                    *path,
                    *base,
                    step,
                    config.stock_strikes_each_side,
                    lot,
                    freeze,
                    expiry,
                    false,
                    iv,
                    false,
                    close,
                );
            }
        }

        // MCX futures (quantity in lots for commodities).
        let mcx_close = NaiveTime::from_hms_opt(23, 30, 0).unwrap_or(NaiveTime::MIN);
        for c in &config.commodities {
            let path = b.path(c.base, 0.015, 20);
            let key = format!("MCX_FO|{}", c.symbol);
            for expiry in calendar.monthly_expiries(chrono::Weekday::Fri, today, config.monthly_expiries) {
                let kind = Kind::Future {
                    path,
                    expiry: expiry_epoch(expiry, mcx_close),
                };
                b.derivative(
                    Segment::McxFo,
                    &c.symbol,
                    &key,
                    "COM",
                    c.lot,
                    1_000.0,
                    c.tick_paise,
                    expiry,
                    false,
                    kind,
                    future_symbols(&c.symbol, expiry),
                );
            }
        }

        Ok(Universe {
            instruments: b.out,
            paths: b.paths,
            vix_path,
        })
    }
}

/// A strike step that gives a sensible ladder for a stock price.
fn nice_step(price: f64) -> f64 {
    match price {
        p if p < 100.0 => 1.0,
        p if p < 250.0 => 2.5,
        p if p < 500.0 => 5.0,
        p if p < 1000.0 => 10.0,
        p if p < 2500.0 => 20.0,
        _ => 50.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_look_like_the_exchanges() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        assert_eq!(
            option_symbols("NIFTY", 26000.0, true, d, false),
            ("NIFTY 26000 CE 01 DEC 26".into(), "NIFTY26D0126000CE".into())
        );
        assert_eq!(option_symbols("NIFTY", 26000.0, false, d, true).1, "NIFTY26DEC26000PE");
        assert_eq!(future_symbols("NIFTY", d).1, "NIFTY26DECFUT");
    }
}
