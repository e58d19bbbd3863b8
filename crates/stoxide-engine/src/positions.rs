//! The position book: each subscription's position per instrument, moved by its own fills, with
//! realised P&L for the day and mark-to-market against the last price. Money in `rust_decimal`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::TransactionType;

/// One subscription's position in one instrument.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Signed units (lots for MCX).
    pub quantity: i64,
    /// The average price of the open quantity.
    pub avg_price: Decimal,
    /// P&L realised on `day` (IST).
    pub realised: Decimal,
    pub day: Option<NaiveDate>,
}

impl Position {
    /// The realised P&L of `today` (a position carried from an earlier day realised nothing yet).
    pub fn realised_on(&self, today: NaiveDate) -> Decimal {
        if self.day == Some(today) {
            self.realised
        } else {
            Decimal::ZERO
        }
    }

    /// Mark-to-market of the open quantity at `last` (`multiplier`: the lot size for MCX).
    pub fn unrealised(&self, last: Decimal, multiplier: u32) -> Decimal {
        (last - self.avg_price) * Decimal::from(self.quantity) * Decimal::from(multiplier)
    }

    /// The day's P&L: realised today plus mark-to-market.
    pub fn day_pnl(&self, today: NaiveDate, last: Option<Decimal>, multiplier: u32) -> Decimal {
        self.realised_on(today) + last.map_or(Decimal::ZERO, |l| self.unrealised(l, multiplier))
    }

    /// Notional exposure at `price`.
    pub fn exposure(&self, price: Decimal, multiplier: u32) -> Decimal {
        Decimal::from(self.quantity.unsigned_abs()) * price * Decimal::from(multiplier)
    }
}

/// The position after a fill of `quantity` at `price` on `today`: increases move the average,
/// reductions realise P&L against it, and a fill through zero opens the rest at the fill price.
pub fn apply_fill(
    pos: &Position,
    side: TransactionType,
    quantity: u64,
    price: Decimal,
    multiplier: u32,
    today: NaiveDate,
) -> Position {
    let signed = side.sign() * i64::try_from(quantity).unwrap_or(i64::MAX);
    let mut realised = pos.realised_on(today);
    let old = pos.quantity;
    let new = old.saturating_add(signed);
    let avg_price = if old == 0 || old.signum() == signed.signum() {
        // Opening or adding: the weighted average.
        let total = Decimal::from(old.unsigned_abs()) * pos.avg_price + Decimal::from(quantity) * price;
        let units = Decimal::from(new.unsigned_abs());
        if units.is_zero() {
            Decimal::ZERO
        } else {
            (total / units).round_dp(4)
        }
    } else {
        // Reducing: realise on the closed part at the old average.
        let closed = signed.unsigned_abs().min(old.unsigned_abs());
        realised +=
            (price - pos.avg_price) * Decimal::from(closed) * Decimal::from(old.signum()) * Decimal::from(multiplier);
        if new == 0 {
            Decimal::ZERO
        } else if new.signum() == old.signum() {
            pos.avg_price
        } else {
            price
        }
    };
    Position {
        quantity: new,
        avg_price,
        realised,
        day: Some(today),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")
    }

    fn d(x: i64) -> Decimal {
        Decimal::from(x)
    }

    #[test]
    fn a_round_trip_realises_its_difference() {
        let p = apply_fill(&Position::default(), TransactionType::Buy, 10, d(100), 1, day());
        assert_eq!((p.quantity, p.avg_price), (10, d(100)));
        let p = apply_fill(&p, TransactionType::Buy, 10, d(110), 1, day());
        assert_eq!((p.quantity, p.avg_price), (20, d(105)));
        let p = apply_fill(&p, TransactionType::Sell, 20, d(100), 1, day());
        assert_eq!((p.quantity, p.realised), (0, d(-100)));
    }

    #[test]
    fn a_fill_through_zero_opens_the_rest_at_its_price() {
        let p = apply_fill(&Position::default(), TransactionType::Sell, 5, d(200), 1, day());
        let p = apply_fill(&p, TransactionType::Buy, 8, d(190), 1, day());
        assert_eq!((p.quantity, p.avg_price, p.realised), (3, d(190), d(50)));
        assert_eq!(p.unrealised(d(200), 1), d(30));
        assert_eq!(p.day_pnl(day(), Some(d(200)), 1), d(80));
        let tomorrow = day().succ_opt().expect("date");
        assert_eq!(p.realised_on(tomorrow), Decimal::ZERO, "a new day starts at zero");
    }

    proptest! {
        #[test]
        fn buying_and_selling_the_same_quantity_flattens_and_realises_exactly(
            q in 1u64..10_000, buy in 1i64..100_000, sell in 1i64..100_000, lot in 1u32..100,
        ) {
            let p = apply_fill(&Position::default(), TransactionType::Buy, q, d(buy), lot, day());
            let p = apply_fill(&p, TransactionType::Sell, q, d(sell), lot, day());
            prop_assert_eq!(p.quantity, 0);
            prop_assert_eq!(p.realised, d(sell - buy) * Decimal::from(q) * Decimal::from(lot));
        }
    }
}
