//! The synthetic market: the instrument universe, its seeded price paths, Black–Scholes option
//! prices and greeks, sessions, and snapshots (LTP, OHLC, depth, volume) at any instant.

pub mod black_scholes;
pub mod calendar;
pub mod candles;
pub mod price_path;
pub mod universe;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use upstox_types::Segment;

use self::black_scholes::{Greeks, black_scholes};
use self::calendar::Calendar;
use self::price_path::{mix, unit};
use self::universe::{Instrument, Kind, Universe};
use crate::config::MarketConfig;
use crate::error::SimError;

const SECS_PER_YEAR: f64 = 365.0 * 86_400.0;

/// One level of market depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthLevel {
    pub quantity: u64,
    pub price: f64,
    pub orders: u32,
}

/// A side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Bid = 0,
    Ask = 1,
}

/// Everything a quote needs about one instrument at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub ltp: f64,
    /// Previous session's close.
    pub cp: f64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub volume: u64,
    pub ltq: u64,
    pub ltt_ms: i64,
    pub atp: f64,
    pub oi: f64,
    pub buy: [DepthLevel; 5],
    pub sell: [DepthLevel; 5],
    pub greeks: Option<Greeks>,
    pub iv: f64,
    pub lower_circuit: f64,
    pub upper_circuit: f64,
    /// The instant the prices belong to (the last close when the market is shut).
    pub market_time: DateTime<Utc>,
}

impl Snapshot {
    pub fn total_buy_quantity(&self) -> u64 {
        self.buy.iter().map(|l| l.quantity).sum()
    }

    pub fn total_sell_quantity(&self) -> u64 {
        self.sell.iter().map(|l| l.quantity).sum()
    }
}

/// The market.
#[derive(Debug)]
pub struct Market {
    pub config: MarketConfig,
    pub calendar: Calendar,
    pub universe: Universe,
    by_key: HashMap<String, u32>,
    /// Options by underlying key, expiry, then (strike, call) → instrument index.
    chains: HashMap<String, BTreeMap<NaiveDate, Vec<u32>>>,
    seed: u64,
    /// Each minute's (high, low) over the price grid, by (instrument, minute start).
    minutes: parking_lot::Mutex<HashMap<(u32, i64), (f64, f64)>>,
    /// Each instrument's day candle as last read.
    days: parking_lot::Mutex<HashMap<u32, candles::RunningCandle>>,
}

fn round_to_tick(price: f64, tick: f64) -> f64 {
    let p = (price / tick).round() * tick;
    // Keep two decimals exact in JSON (0.05 steps print as 12.35, not 12.350000000000001).
    (p * 100.0).round() / 100.0
}

impl Market {
    /// Builds the market for the trading day current at `now`.
    ///
    /// # Errors
    /// When the market data is inconsistent.
    pub fn new(config: MarketConfig, seed: u64, now: DateTime<Utc>) -> Result<Self, SimError> {
        let calendar = Calendar::new(&config)?;
        let today = calendar.session_day(Segment::NseEq, now);
        let universe = Universe::build(&config, &calendar, seed, today)?;
        let mut by_key = HashMap::with_capacity(universe.instruments.len());
        let mut chains: HashMap<String, BTreeMap<NaiveDate, Vec<u32>>> = HashMap::new();
        for (i, inst) in universe.instruments.iter().enumerate() {
            by_key.insert(inst.instrument_key.clone(), i as u32);
            if let (true, Some(u), Some(e)) = (inst.is_option(), &inst.underlying_key, inst.expiry_date) {
                chains
                    .entry(u.clone())
                    .or_default()
                    .entry(e)
                    .or_default()
                    .push(i as u32);
            }
        }
        Ok(Self {
            config,
            calendar,
            universe,
            by_key,
            chains,
            seed,
            minutes: parking_lot::Mutex::new(HashMap::new()),
            days: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    pub fn instruments(&self) -> &[Instrument] {
        &self.universe.instruments
    }

    pub fn get(&self, idx: u32) -> &Instrument {
        &self.universe.instruments[idx as usize]
    }

    /// Index of an instrument by key.
    pub fn lookup(&self, key: &str) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// Option instruments of an underlying, by expiry.
    pub fn chain(&self, underlying_key: &str) -> Option<&BTreeMap<NaiveDate, Vec<u32>>> {
        self.chains.get(underlying_key)
    }

    fn spot(&self, path: u32, t: f64) -> f64 {
        self.universe.paths[path as usize].price(t)
    }

    /// Implied volatility of an option at `t`.
    fn option_iv(&self, kind: &Kind, t: f64) -> f64 {
        let Kind::Option {
            path,
            strike,
            base_iv,
            vol_from_vix,
            ..
        } = *kind
        else {
            return 0.0;
        };
        let base = if vol_from_vix {
            self.spot(self.universe.vix_path, t) / 100.0
        } else {
            base_iv
        };
        let m = (strike / self.spot(path, t)).ln();
        (base + self.config.smile_curvature * m * m + self.config.smile_skew * m).max(0.05)
    }

    /// Theoretical (unrounded) price and greeks at market instant `t` (epoch seconds).
    fn theoretical(&self, inst: &Instrument, t: f64) -> (f64, Option<Greeks>, f64) {
        match inst.kind {
            Kind::Spot { path } => (self.spot(path, t), None, 0.0),
            Kind::Future { path, expiry } => {
                let years = ((expiry as f64 - t) / SECS_PER_YEAR).max(0.0);
                (
                    self.spot(path, t) * (self.config.risk_free_rate * years).exp(),
                    None,
                    0.0,
                )
            }
            Kind::Option {
                path,
                expiry,
                strike,
                call,
                ..
            } => {
                let years = ((expiry as f64 - t) / SECS_PER_YEAR).max(0.0);
                let iv = self.option_iv(&inst.kind, t);
                let g = black_scholes(call, self.spot(path, t), strike, years, self.config.risk_free_rate, iv);
                (g.price, Some(g), iv)
            }
        }
    }

    /// Greeks and implied volatility of an option at market instant `t` (`None` for non-options).
    pub fn option_greeks(&self, idx: u32, t: DateTime<Utc>) -> Option<(Greeks, f64)> {
        let inst = self.get(idx);
        match self.theoretical(inst, t.timestamp_micros() as f64 / 1e6) {
            (_, Some(g), iv) => Some((g, iv)),
            _ => None,
        }
    }

    /// The model's price of `idx` at market instant `t`, on the tick grid (at least one tick),
    /// before any circuit limit.
    fn model_price(&self, inst: &Instrument, t: DateTime<Utc>) -> f64 {
        let raw = self.theoretical(inst, t.timestamp_micros() as f64 / 1e6).0;
        round_to_tick(raw, inst.tick()).max(inst.tick())
    }

    /// The traded price of `idx` at market instant `t`, on the tick grid (at least one tick).
    /// Equities stop at their circuit limits, as trading on the exchange does (derivatives' wide
    /// bands and indices are not limited).
    pub fn price_at(&self, idx: u32, t: DateTime<Utc>) -> f64 {
        let inst = self.get(idx);
        let price = self.model_price(inst, t);
        if inst.segment.is_index() || inst.segment.is_derivative() {
            return price;
        }
        let (lo, hi) = self.circuit(idx, t);
        price.clamp(lo, hi)
    }

    /// The previous session's close of `idx` as of market instant `t` (the circuit limits'
    /// reference price).
    pub fn previous_close(&self, idx: u32, t: DateTime<Utc>) -> f64 {
        let inst = self.get(idx);
        self.model_price(inst, self.calendar.previous_close(inst.segment, t))
    }

    /// The fraction either side of the previous close inside which `idx` may trade: 40% for
    /// derivatives; 5%, 10% or 20% for the rest, fixed per instrument.
    pub fn circuit_band(&self, idx: u32) -> f64 {
        if self.get(idx).segment.is_derivative() {
            0.4
        } else {
            [0.05_f64, 0.1, 0.2][(mix(self.seed ^ mix(u64::from(idx)) ^ 0xC1C0) % 3) as usize]
        }
    }

    /// The day's (lower, upper) circuit limits of `idx` at market instant `t`.
    pub fn circuit(&self, idx: u32, t: DateTime<Utc>) -> (f64, f64) {
        let tick = self.get(idx).tick();
        let (cp, band) = (self.previous_close(idx, t), self.circuit_band(idx));
        (
            round_to_tick(cp * (1.0 - band), tick),
            round_to_tick(cp * (1.0 + band), tick),
        )
    }

    /// Last traded price now (the last close when the segment is shut).
    pub fn ltp(&self, idx: u32, now: DateTime<Utc>) -> f64 {
        let inst = self.get(idx);
        self.price_at(idx, self.calendar.market_time(inst.segment, now))
    }

    /// Cumulative traded volume of the session up to market instant `t`.
    pub fn volume_at(&self, idx: u32, t: DateTime<Utc>) -> u64 {
        let inst = self.get(idx);
        if inst.segment.is_index() {
            return 0;
        }
        let day = self.calendar.session_day(inst.segment, t);
        let (open, _) = self.calendar.session(inst.segment, day);
        let secs = (t - open).num_milliseconds().max(0) as f64 / 1000.0;
        let h = mix(self.seed ^ mix(u64::from(idx) ^ 0x5601));
        let per_sec = if inst.is_option() {
            let m = match inst.kind {
                Kind::Option { path, strike, .. } => (strike / self.spot(path, t.timestamp() as f64)).ln(),
                _ => 0.0,
            };
            f64::from(inst.lot()) * (0.2 + 5.0 * unit(h)) * (-m * m / 0.002).exp()
        } else {
            f64::from(inst.lot()) * (1.0 + 400.0 * unit(h))
        };
        let lots = (per_sec * secs / f64::from(inst.lot())).floor() as u64;
        lots * u64::from(inst.lot())
    }

    /// The cheap part of a quote at market instant `t`: (ltp, ltq, volume, previous close, oi).
    pub fn snapshot_light(&self, idx: u32, t: DateTime<Utc>) -> (f64, u64, u64, f64, f64) {
        let inst = self.get(idx);
        let ltp = self.price_at(idx, t);
        let cp = self.previous_close(idx, t);
        let lot = u64::from(inst.lot());
        let h = mix(self.seed ^ mix(u64::from(idx)) ^ mix(t.timestamp() as u64));
        let ltq = if inst.segment.is_index() {
            0
        } else {
            lot * (1 + (h >> 40) % 10)
        };
        let oi = match inst.kind {
            Kind::Spot { .. } => 0.0,
            Kind::Future { .. } => (lot * (20_000 + mix(self.seed ^ u64::from(idx)) % 80_000)) as f64,
            Kind::Option { path, strike, .. } => {
                let m = (strike / self.spot(path, t.timestamp() as f64)).ln();
                ((lot as f64) * 5_000.0 * (0.3 + unit(mix(self.seed ^ u64::from(idx)))) * (-m * m / 0.003).exp())
                    .round()
            }
        };
        (ltp, ltq, self.volume_at(idx, t), cp, oi)
    }

    /// `levels` of market depth on one side around `ltp` at market instant `t` (zeros for indices).
    pub fn depth(&self, idx: u32, ltp: f64, t: DateTime<Utc>, side: Side, levels: usize) -> Vec<DepthLevel> {
        let inst = self.get(idx);
        let tick = inst.tick();
        let lot = u64::from(inst.lot());
        let h = mix(self.seed ^ mix(u64::from(idx)) ^ mix(t.timestamp() as u64));
        (0..levels)
            .map(|i| {
                if inst.segment.is_index() {
                    return DepthLevel {
                        quantity: 0,
                        price: 0.0,
                        orders: 0,
                    };
                }
                let hh = mix(h ^ ((side as u64) << 8) ^ i as u64);
                let offset = (i as f64 + 1.0) * tick;
                let price = match side {
                    Side::Bid => (ltp - offset).max(tick),
                    Side::Ask => ltp + offset,
                };
                DepthLevel {
                    quantity: lot * (1 + hh % 60),
                    price: round_to_tick(price, tick),
                    orders: 1 + (hh >> 20) as u32 % 25,
                }
            })
            .collect()
    }

    /// A full snapshot of `idx` as of `now`.
    pub fn snapshot(&self, idx: u32, now: DateTime<Utc>) -> Snapshot {
        let inst = self.get(idx);
        let seg = inst.segment;
        let t = self.calendar.market_time(seg, now);
        let ts = t.timestamp_micros() as f64 / 1e6;
        let (_, greeks, iv) = self.theoretical(inst, ts);
        let ltp = self.price_at(idx, t);
        let cp = self.previous_close(idx, t);
        // The day's OHLC as every other view has it (see `candles`).
        let candles::Ohlcv { open, high, low, .. } = self.day_candle(idx, t);
        let second = t.timestamp() as u64;
        let h = mix(self.seed ^ mix(u64::from(idx)) ^ mix(second));
        let depth = |side| {
            let v = self.depth(idx, ltp, t, side, 5);
            [v[0], v[1], v[2], v[3], v[4]]
        };
        let (buy, sell) = (depth(Side::Bid), depth(Side::Ask));
        let (_, ltq, volume, _, oi) = self.snapshot_light(idx, t);
        let (lower_circuit, upper_circuit) = self.circuit(idx, t);
        Snapshot {
            ltp,
            cp,
            open,
            high,
            low,
            volume,
            ltq,
            ltt_ms: t.timestamp_millis() - (h % 1000) as i64 % (t.timestamp_millis() % 1000 + 1),
            atp: round_to_tick((open + high + low + ltp) / 4.0, 0.01),
            oi,
            buy,
            sell,
            greeks,
            iv,
            lower_circuit,
            upper_circuit,
            market_time: t,
        }
    }

    /// Whether orders in `segment` can trade at `now`.
    pub fn is_open(&self, segment: Segment, now: DateTime<Utc>) -> bool {
        self.calendar.is_open(segment, now)
    }

    /// Spot price of an option's or future's underlying (or the instrument itself) at market instant `t`.
    pub fn underlying_price(&self, idx: u32, t: DateTime<Utc>) -> f64 {
        let inst = self.get(idx);
        let path = match inst.kind {
            Kind::Spot { path } | Kind::Future { path, .. } | Kind::Option { path, .. } => path,
        };
        round_to_tick(self.spot(path, t.timestamp_micros() as f64 / 1e6), 0.05)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimClock;
    use crate::config::ClockConfig;

    fn market() -> (Market, DateTime<Utc>) {
        let now = SimClock::new(&ClockConfig::default()).expect("clock").now();
        (Market::new(MarketConfig::default(), 42, now).expect("market"), now)
    }

    #[test]
    fn universe_is_full_size_and_has_the_documented_keys() {
        let (m, now) = market();
        assert!(m.instruments().len() >= 100_000, "{}", m.instruments().len());
        let nifty = m.lookup("NSE_INDEX|Nifty 50").expect("nifty");
        let p = m.ltp(nifty, now);
        assert!(p > 20_000.0 && p < 32_000.0, "nifty {p}");
        assert!(m.lookup("NSE_EQ|INE848E01016").is_some());
        assert!(m.chain("NSE_INDEX|Nifty 50").is_some_and(|c| c.len() >= 8));
    }

    #[test]
    fn same_seed_same_prices_other_seed_other_prices() {
        let (m, now) = market();
        let m2 = Market::new(MarketConfig::default(), 42, now).expect("market");
        let m3 = Market::new(MarketConfig::default(), 43, now).expect("market");
        let k = m.lookup("NSE_EQ|INE002A01018").expect("reliance");
        assert_eq!(m.ltp(k, now), m2.ltp(k, now));
        assert_ne!(m.ltp(k, now), m3.ltp(k, now));
    }

    /// Orders outside the day's circuit limits are rejected, so a last price outside them would
    /// leave a market nobody can trade at; the price model keeps equities inside on every day.
    #[test]
    fn equities_trade_inside_their_circuit_limits_day_after_day() {
        let (m, now) = market();
        let equities: Vec<&str> = m
            .instruments()
            .iter()
            .filter(|i| i.segment == Segment::NseEq)
            .take(12)
            .map(|i| i.instrument_key.as_str())
            .collect();
        assert_eq!(equities.len(), 12);
        for key in equities {
            let k = m.lookup(key).expect("instrument");
            for d in 0..250 {
                let at = now - chrono::Duration::days(d);
                let s = m.snapshot(k, at);
                let later = m.snapshot(k, at + chrono::Duration::seconds(1 + d % 7));
                assert_eq!(
                    (s.lower_circuit, s.upper_circuit),
                    (later.lower_circuit, later.upper_circuit),
                    "{key}: the day's circuit limits changed within the session"
                );
                assert!(
                    s.lower_circuit <= s.ltp && s.ltp <= s.upper_circuit,
                    "{key} {d} days ago: {} outside {}..{}",
                    s.ltp,
                    s.lower_circuit,
                    s.upper_circuit
                );
            }
        }
    }

    #[test]
    fn options_are_priced_from_the_underlying() {
        let (m, now) = market();
        let chain = m.chain("NSE_INDEX|Nifty 50").expect("chain");
        let (_, opts) = chain.iter().next().expect("expiry");
        let spot = m.ltp(m.lookup("NSE_INDEX|Nifty 50").expect("nifty"), now);
        for &o in opts {
            let inst = m.get(o);
            let Kind::Option { strike, call, .. } = inst.kind else {
                panic!("not an option")
            };
            let snap = m.snapshot(o, now);
            let intrinsic = if call { spot - strike } else { strike - spot };
            assert!(
                snap.ltp + 1.0 >= intrinsic.max(0.0) * 0.97,
                "{} {} < intrinsic {}",
                inst.trading_symbol,
                snap.ltp,
                intrinsic
            );
            assert!(snap.greeks.is_some());
        }
    }
}
