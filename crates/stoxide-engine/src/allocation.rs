//! Allocation: one signal becomes, for each subscription, an order plan sized by that user's own
//! inputs — whole lots, sliced above the freeze quantity — or an explicit "skipped" with the
//! reason. Exits are sized from the user's actual open position in that strategy, never from the
//! signal alone. A plain function of its inputs.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::{InstrumentKey, Product, Segment, TransactionType};

use crate::signal::{Action, Signal};
use crate::subscription::{Sizing, SubState, Subscription};

/// What allocation needs to know of an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentInfo {
    pub key: InstrumentKey,
    pub lot_size: u32,
    /// The most units one order may carry (above it, v3 slicing splits the order).
    pub freeze_quantity: Option<u64>,
}

/// An order to place for one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlan {
    pub side: TransactionType,
    /// Units (lots × lot size), or lots for MCX.
    pub quantity: u64,
    /// Above the freeze quantity: placed with v3 `slice`.
    pub slice: bool,
    /// Whether it only brings the position towards flat (an exit passes a reducing-only gate).
    pub reduces: bool,
    /// The position the order aims at (signed units).
    pub target: i64,
}

impl OrderPlan {
    /// The units it moves the position by (signed: a sell is negative).
    pub fn signed_units(&self) -> i64 {
        self.side.sign() * i64::try_from(self.quantity).unwrap_or(i64::MAX)
    }
}

/// Why a subscription does nothing for a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "skipped", rename_all = "snake_case")]
pub enum Skip {
    #[error("the subscription is {}, not active", state.words())]
    NotActive { state: SubState },
    #[error("the subscription's consent does not cover its current inputs or the strategy's version")]
    NoConsent,
    #[error("the instrument is not in the subscription's whitelist")]
    NotWhitelisted,
    #[error("the position is already at the target")]
    AtTarget,
    #[error("nothing to exit: no open position in this strategy")]
    NothingToExit,
    #[error("{percent}% of the available margin (₹{available}) covers no whole lot at ₹{per_lot} a lot")]
    TooSmall {
        percent: Decimal,
        available: Decimal,
        per_lot: Decimal,
    },
    #[error("delivery (product D) cannot go short on an equity")]
    NoShortDelivery,
    /// A cluster's node took the account over after its previous node stopped without
    /// deciding this signal, and the signal was by then older than the catch-up window.
    #[error(
        "not traded: the signal was accepted {age_secs} s before this node took the account over (its previous node stopped before deciding it), past the {window_secs} s catch-up window; an old signal is not traded on a stale price"
    )]
    Late { age_secs: i64, window_secs: u64 },
}

/// The outcome for one subscription.
pub type Allocation = Result<OrderPlan, Skip>;

/// The size (signed units) `subscription` takes for `action`, from its sizing.
fn target_units(
    action: Action,
    sizing: &Sizing,
    inst: &InstrumentInfo,
    available: Decimal,
    per_lot: Decimal,
) -> Result<i64, Skip> {
    let lot = i64::from(inst.lot_size.max(1));
    let one = match sizing {
        Sizing::FixedLots { lots, multiplier } => i64::from(*lots) * i64::from((*multiplier).max(1)) * lot,
        Sizing::MarginPercent { percent } => {
            let budget = available * *percent / Decimal::ONE_HUNDRED;
            let lots = if per_lot > Decimal::ZERO {
                (budget / per_lot).floor()
            } else {
                Decimal::ZERO
            };
            let lots: i64 = lots.try_into().unwrap_or(0);
            if lots < 1 {
                return Err(Skip::TooSmall {
                    percent: *percent,
                    available,
                    per_lot,
                });
            }
            lots * lot
        }
    };
    let multiplier = match sizing {
        Sizing::FixedLots { multiplier, .. } => i64::from((*multiplier).max(1)),
        Sizing::MarginPercent { .. } => 1,
    };
    Ok(match action {
        Action::EnterLong => one,
        Action::EnterShort => -one,
        Action::Exit => 0,
        Action::Target { lots } => lots.saturating_mul(multiplier).saturating_mul(lot),
    })
}

/// Allocates `signal` to `subscription`: `position` is its open position in this strategy and
/// instrument (signed units), `available` the account's available margin (₹) and `per_lot` the
/// margin one lot needs (₹; for margin-percent sizing).
pub fn allocate(
    signal: &Signal,
    subscription: &Subscription,
    strategy_version: u32,
    position: i64,
    inst: &InstrumentInfo,
    available: Decimal,
    per_lot: Decimal,
) -> Allocation {
    let consented = subscription.may_trade(strategy_version);
    allocate_consented(signal, subscription, consented, position, inst, available, per_lot)
}

/// [`allocate`] with the consent check already made (`consented`: [`Subscription::may_trade`]
/// for the strategy's current version), for callers that remember it per subscription.
pub fn allocate_consented(
    signal: &Signal,
    subscription: &Subscription,
    consented: bool,
    position: i64,
    inst: &InstrumentInfo,
    available: Decimal,
    per_lot: Decimal,
) -> Allocation {
    if subscription.state != SubState::Active {
        return Err(Skip::NotActive {
            state: subscription.state,
        });
    }
    if !consented {
        return Err(Skip::NoConsent);
    }
    if subscription
        .inputs
        .whitelist
        .as_ref()
        .is_some_and(|w| !w.contains(&signal.instrument))
    {
        return Err(Skip::NotWhitelisted);
    }
    if signal.action == Action::Exit && position == 0 {
        return Err(Skip::NothingToExit);
    }
    let target = target_units(signal.action, &subscription.inputs.sizing, inst, available, per_lot)?;
    if target < 0
        && subscription.inputs.product == Product::Delivery
        && matches!(inst.key.segment(), Segment::NseEq | Segment::BseEq)
    {
        return Err(Skip::NoShortDelivery);
    }
    let delta = target - position;
    if delta == 0 {
        return Err(Skip::AtTarget);
    }
    let quantity = delta.unsigned_abs();
    let reduces = target.signum() * position.signum() >= 0 && target.abs() < position.abs();
    Ok(OrderPlan {
        side: if delta > 0 {
            TransactionType::Buy
        } else {
            TransactionType::Sell
        },
        quantity,
        slice: inst.freeze_quantity.is_some_and(|f| quantity > f),
        reduces,
        target,
    })
}

/// The tag an intent's order carries: the same for the same (signal, subscription), so a restart
/// that sends it again finds the first order by its tag instead of placing a second. 23
/// characters, within Upstox's 40.
pub fn intent_tag(strategy: &str, signal_id: &str, subscription: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [strategy, signal_id, subscription] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tag = String::with_capacity(23);
    tag.push_str("stx");
    for b in h.finalize().iter().take(10) {
        tag.push(char::from(HEX[usize::from(b >> 4)]));
        tag.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::Inputs;
    use chrono::Utc;
    use proptest::prelude::*;

    fn inst(lot: u32, freeze: Option<u64>) -> InstrumentInfo {
        InstrumentInfo {
            key: "NSE_FO|43919".parse().expect("key"),
            lot_size: lot,
            freeze_quantity: freeze,
        }
    }

    fn sub(sizing: Sizing) -> Subscription {
        let mut s = Subscription::new(
            "sub-1",
            "SIM001",
            "ema",
            Inputs {
                sizing,
                max_exposure: Decimal::from(1_000_000),
                max_open_positions: 3,
                max_orders_per_day: 20,
                daily_max_loss: Decimal::from(10_000),
                product: Product::Intraday,
                whitelist: None,
                paper: false,
            },
        );
        s.activate(1, "client", Utc::now(), "127.0.0.1").expect("activate");
        s
    }

    fn signal(action: Action) -> Signal {
        Signal {
            strategy: "ema".into(),
            id: "sig-1".into(),
            instrument: "NSE_FO|43919".parse().expect("key"),
            action,
            reference_price: Decimal::from(100),
            at: Utc::now(),
        }
    }

    #[test]
    fn fixed_lots_enter_reverse_and_exit_from_the_real_position() {
        let s = sub(Sizing::FixedLots { lots: 2, multiplier: 3 });
        let i = inst(65, Some(1755));
        let z = Decimal::ZERO;
        let p = allocate(&signal(Action::EnterLong), &s, 1, 0, &i, z, z).expect("enter");
        assert_eq!(
            (p.side, p.quantity, p.target, p.slice, p.reduces),
            (TransactionType::Buy, 390, 390, false, false)
        );
        // From long to short: one sell for both legs.
        let p = allocate(&signal(Action::EnterShort), &s, 1, 390, &i, z, z).expect("reverse");
        assert_eq!((p.side, p.quantity, p.target), (TransactionType::Sell, 780, -390));
        // The exit is the user's actual position, whatever the signal thinks.
        let p = allocate(&signal(Action::Exit), &s, 1, 130, &i, z, z).expect("exit");
        assert_eq!(
            (p.side, p.quantity, p.target, p.reduces),
            (TransactionType::Sell, 130, 0, true)
        );
        assert_eq!(
            allocate(&signal(Action::Exit), &s, 1, 0, &i, z, z),
            Err(Skip::NothingToExit)
        );
        assert_eq!(
            allocate(&signal(Action::EnterLong), &s, 1, 390, &i, z, z),
            Err(Skip::AtTarget)
        );
        let p = allocate(&signal(Action::Target { lots: 10 }), &s, 1, 0, &i, z, z).expect("target");
        assert_eq!(
            (p.quantity, p.slice),
            (1950, true),
            "10 lots × 3 × 65 is above the freeze"
        );
    }

    #[test]
    fn margin_percent_sizes_whole_lots_or_says_why_not() {
        let s = sub(Sizing::MarginPercent {
            percent: Decimal::from(10),
        });
        let i = inst(65, None);
        let p = allocate(
            &signal(Action::EnterLong),
            &s,
            1,
            0,
            &i,
            Decimal::from(500_000),
            Decimal::from(12_000),
        )
        .expect("sized");
        assert_eq!(p.quantity, 4 * 65, "10% of 5 lakh buys 4 lots at 12,000");
        let e = allocate(
            &signal(Action::EnterLong),
            &s,
            1,
            0,
            &i,
            Decimal::from(50_000),
            Decimal::from(12_000),
        );
        assert!(matches!(e, Err(Skip::TooSmall { .. })), "{e:?}");
        assert!(e.expect_err("small").to_string().contains("covers no whole lot"));
    }

    #[test]
    fn without_consent_or_outside_the_whitelist_nothing_is_planned() {
        let mut s = sub(Sizing::FixedLots { lots: 1, multiplier: 1 });
        let i = inst(65, None);
        let z = Decimal::ZERO;
        assert_eq!(
            allocate(&signal(Action::EnterLong), &s, 2, 0, &i, z, z),
            Err(Skip::NoConsent),
            "new version"
        );
        s.pause().expect("pause");
        assert!(matches!(
            allocate(&signal(Action::EnterLong), &s, 1, 0, &i, z, z),
            Err(Skip::NotActive { .. })
        ));
        let mut s = sub(Sizing::FixedLots { lots: 1, multiplier: 1 });
        s.inputs.whitelist = Some(vec!["NSE_EQ|INE002A01018".parse().expect("key")]);
        s.activate(1, "client", Utc::now(), "x").expect("re-consent");
        assert_eq!(
            allocate(&signal(Action::EnterLong), &s, 1, 0, &i, z, z),
            Err(Skip::NotWhitelisted)
        );
    }

    #[test]
    fn tags_are_deterministic_and_fit_upstox() {
        let a = intent_tag("ema", "sig-1", "sub-1");
        assert_eq!(a, intent_tag("ema", "sig-1", "sub-1"));
        assert_ne!(a, intent_tag("ema", "sig-1", "sub-2"));
        assert_ne!(a, intent_tag("ema", "sig-2", "sub-1"));
        assert!(a.len() <= 40 && a.starts_with("stx"));
    }

    proptest! {
        /// Orders are whole lots, reach the target exactly, and slice only above the freeze.
        #[test]
        fn plans_reach_the_target_in_whole_lots(lots in 1u32..20, mult in 1u32..5, lot in 1u32..200, pos_lots in -30i64..30, target in -30i64..30, freeze in 1u64..5000) {
            let s = sub(Sizing::FixedLots { lots, multiplier: mult });
            let i = inst(lot, Some(freeze));
            let position = pos_lots * i64::from(lot);
            let z = Decimal::ZERO;
            match allocate(&signal(Action::Target { lots: target }), &s, 1, position, &i, z, z) {
                Ok(p) => {
                    let signed = if p.side == TransactionType::Buy { p.quantity as i64 } else { -(p.quantity as i64) };
                    prop_assert_eq!(position + signed, p.target);
                    prop_assert_eq!(p.target % i64::from(lot), 0);
                    prop_assert_eq!(p.quantity % u64::from(lot), 0);
                    prop_assert_eq!(p.slice, p.quantity > freeze);
                    if p.reduces { prop_assert!(p.target.abs() < position.abs()); }
                }
                Err(Skip::AtTarget) => prop_assert_eq!(target * i64::from(mult) * i64::from(lot), position),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}
