//! Charges of one order as `GET /v2/charges/brokerage` reports them: brokerage, STT/CTT, the
//! exchange's transaction charge, SEBI's turnover fee, stamp duty and GST, summed in
//! `rust_decimal` and rounded to paise.
//!
//! The rates are Upstox's published schedule at the time of writing (brokerage the lower of a
//! flat ₹20 and a percentage of turnover; options a flat ₹20). They change from time to time, so
//! every rate is configurable under `[market.charges]`.

use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde::{Deserialize, Serialize};
use upstox_types::{Product, Segment, TransactionType};

use crate::market::universe::{Instrument, Kind};

/// The rates of one kind of trade, percentages of turnover (premium turnover for options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Brokerage per executed order in rupees, or this percentage of turnover when lower.
    pub brokerage_flat: Decimal,
    #[serde(default)]
    pub brokerage_pct: Option<Decimal>,
    pub stt_buy_pct: Decimal,
    pub stt_sell_pct: Decimal,
    pub transaction_pct: Decimal,
    pub stamp_buy_pct: Decimal,
}

/// The whole schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargesConfig {
    pub delivery: Rates,
    pub intraday: Rates,
    pub futures: Rates,
    pub options: Rates,
    pub commodity: Rates,
    pub gst_pct: Decimal,
    pub sebi_pct: Decimal,
    /// The depository plan named in every answer; its charge applies once per scrip per day
    /// on delivery sells, so it is reported beside the total, not in it.
    pub dp_plan_name: String,
    pub dp_min_expense: Decimal,
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

fn rates(flat: &str, pct: Option<&str>, stt_buy: &str, stt_sell: &str, txn: &str, stamp: &str) -> Rates {
    Rates {
        brokerage_flat: d(flat),
        brokerage_pct: pct.map(d),
        stt_buy_pct: d(stt_buy),
        stt_sell_pct: d(stt_sell),
        transaction_pct: d(txn),
        stamp_buy_pct: d(stamp),
    }
}

impl Default for ChargesConfig {
    fn default() -> Self {
        Self {
            delivery: rates("20", Some("2.5"), "0.1", "0.1", "0.00297", "0.015"),
            intraday: rates("20", Some("0.05"), "0", "0.025", "0.00297", "0.003"),
            futures: rates("20", Some("0.05"), "0", "0.02", "0.00173", "0.002"),
            options: rates("20", None, "0", "0.1", "0.03503", "0.003"),
            commodity: rates("20", Some("0.05"), "0", "0.01", "0.0021", "0.002"),
            gst_pct: d("18"),
            sebi_pct: d("0.0001"),
            dp_plan_name: "Basic".into(),
            dp_min_expense: d("18.5"),
        }
    }
}

/// What kind of trade an order is, for the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeKind {
    Equity,
    Future,
    Option,
    Commodity,
}

impl TradeKind {
    /// The kind of trades in `inst`: MCX futures are commodity trades, options are options
    /// wherever they trade.
    pub fn of(inst: &Instrument) -> Self {
        match inst.kind {
            Kind::Spot { .. } => Self::Equity,
            Kind::Future { .. } if inst.segment == Segment::McxFo => Self::Commodity,
            Kind::Option { .. } => Self::Option,
            Kind::Future { .. } => Self::Future,
        }
    }
}

/// The charges of one order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Charges {
    pub total: Decimal,
    pub brokerage: Decimal,
    pub gst: Decimal,
    pub stt: Decimal,
    pub stamp_duty: Decimal,
    pub transaction: Decimal,
    pub clearing: Decimal,
    pub sebi_turnover: Decimal,
}

impl std::ops::AddAssign<&Charges> for Charges {
    fn add_assign(&mut self, c: &Charges) {
        self.total += c.total;
        self.brokerage += c.brokerage;
        self.gst += c.gst;
        self.stt += c.stt;
        self.stamp_duty += c.stamp_duty;
        self.transaction += c.transaction;
        self.clearing += c.clearing;
        self.sebi_turnover += c.sebi_turnover;
    }
}

fn pct(amount: Decimal, p: Decimal) -> Decimal {
    amount * p / Decimal::ONE_HUNDRED
}

fn paise(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

impl ChargesConfig {
    fn rates(&self, kind: TradeKind, product: Product) -> &Rates {
        match kind {
            TradeKind::Equity if product == Product::Delivery => &self.delivery,
            TradeKind::Equity => &self.intraday,
            TradeKind::Future => &self.futures,
            TradeKind::Option => &self.options,
            TradeKind::Commodity => &self.commodity,
        }
    }

    /// The charges of an order of `quantity` in `inst` filled at `price` (MCX quantities are
    /// lots: their turnover counts the lot's units).
    pub fn charges_of(
        &self,
        inst: &Instrument,
        product: Product,
        side: TransactionType,
        quantity: u64,
        price: f64,
    ) -> Charges {
        let units = if inst.segment == Segment::McxFo {
            quantity * u64::from(inst.lot())
        } else {
            quantity
        };
        self.charges(TradeKind::of(inst), product, side, units, price)
    }

    /// The charges of trading `units` at `price` (units × price is the turnover).
    pub fn charges(&self, kind: TradeKind, product: Product, side: TransactionType, units: u64, price: f64) -> Charges {
        let r = self.rates(kind, product);
        let turnover = Decimal::from(units) * Decimal::from_f64(price).unwrap_or_default();
        let brokerage = match r.brokerage_pct {
            Some(p) => r.brokerage_flat.min(pct(turnover, p)),
            None => r.brokerage_flat,
        };
        let buy = side == TransactionType::Buy;
        let stt = pct(turnover, if buy { r.stt_buy_pct } else { r.stt_sell_pct });
        let stamp_duty = if buy {
            pct(turnover, r.stamp_buy_pct)
        } else {
            Decimal::ZERO
        };
        let transaction = pct(turnover, r.transaction_pct);
        let sebi_turnover = pct(turnover, self.sebi_pct);
        let clearing = Decimal::ZERO;
        let gst = pct(brokerage + transaction + sebi_turnover + clearing, self.gst_pct);
        let (brokerage, gst, stt, stamp_duty, transaction, sebi_turnover) = (
            paise(brokerage),
            paise(gst),
            paise(stt),
            paise(stamp_duty),
            paise(transaction),
            paise(sebi_turnover),
        );
        Charges {
            total: brokerage + gst + stt + stamp_duty + transaction + clearing + sebi_turnover,
            brokerage,
            gst,
            stt,
            stamp_duty,
            transaction,
            clearing,
            sebi_turnover,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intraday_brokerage_is_the_lower_of_flat_and_percentage() {
        let c = ChargesConfig::default();
        // ₹10,000 turnover: 0.05% is ₹5, below ₹20.
        let small = c.charges(TradeKind::Equity, Product::Intraday, TransactionType::Buy, 10, 1000.0);
        assert_eq!(small.brokerage, d("5"));
        // ₹1,000,000: 0.05% is ₹500, so ₹20.
        let big = c.charges(TradeKind::Equity, Product::Intraday, TransactionType::Buy, 1000, 1000.0);
        assert_eq!(big.brokerage, d("20"));
        assert_eq!(big.stt, Decimal::ZERO, "intraday STT is on the sell side only");
        assert_eq!(big.stamp_duty, d("30"), "0.003% of ₹1,000,000");
    }

    #[test]
    fn the_total_is_the_sum_of_its_parts_and_gst_is_on_brokerage_and_fees() {
        let c = ChargesConfig::default();
        let x = c.charges(TradeKind::Option, Product::Intraday, TransactionType::Sell, 75, 123.45);
        assert_eq!(x.brokerage, d("20"));
        assert_eq!(
            x.total,
            x.brokerage + x.gst + x.stt + x.stamp_duty + x.transaction + x.clearing + x.sebi_turnover
        );
        assert_eq!(x.stamp_duty, Decimal::ZERO, "no stamp duty on a sell");
        // GST 18% of (20 + 0.03503% × 9258.75 + 0.0001% × 9258.75) ≈ 18% of 23.25.
        assert_eq!(x.gst, d("4.19"));
    }

    #[test]
    fn delivery_pays_stt_on_both_sides() {
        let c = ChargesConfig::default();
        let buy = c.charges(TradeKind::Equity, Product::Delivery, TransactionType::Buy, 100, 2500.0);
        let sell = c.charges(TradeKind::Equity, Product::Delivery, TransactionType::Sell, 100, 2500.0);
        assert_eq!(buy.stt, d("250"));
        assert_eq!(sell.stt, d("250"));
    }
}
