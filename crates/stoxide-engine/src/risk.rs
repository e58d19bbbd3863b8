//! The risk gate: every order plan is checked against what is known of its user at that moment,
//! and refused with the reason when it must not go. A plain function of the plan and the context
//! (which the engine gathers: states, kill switches, the token, the session, margin, exposure,
//! counts, the day's P&L).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocation::OrderPlan;

/// Trading state at one level (the whole engine, a user, a subscription).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradingState {
    #[default]
    Active,
    /// Only orders that bring positions towards flat.
    Reducing,
    /// Nothing.
    Halted,
}

/// Where a state or a kill switch was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Global,
    User,
    Subscription,
}

/// The exchange's threshold of orders per second per user above which an algo must be
/// registered (SEBI retail-algo framework).
pub const UNREGISTERED_ORDERS_PER_SECOND: u32 = 10;

/// What the gate knows of one user and subscription when a plan is checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskContext {
    pub global: TradingState,
    pub user: TradingState,
    pub subscription: TradingState,
    /// A token is stored and not past 03:30 IST.
    pub token_valid: bool,
    /// The segment is open for orders.
    pub market_open: bool,
    /// Margin the plan needs (₹, from the margin API) and the account's available margin.
    pub margin_required: Decimal,
    pub margin_available: Decimal,
    /// Why the margin (or the funds) could not be read, when they could not: nothing that
    /// needs margin is sent on a guess.
    pub margin_unknown: Option<String>,
    /// The subscription's notional exposure (₹) now and after the plan.
    pub exposure_after: Decimal,
    pub max_exposure: Decimal,
    /// Open positions of the subscription, and whether the plan opens a new one.
    pub open_positions: u32,
    pub opens_position: bool,
    pub max_open_positions: u32,
    pub orders_today: u32,
    pub max_orders_per_day: u32,
    /// The day's P&L (₹, realised + mark-to-market; negative is a loss) and the loss limit.
    pub day_pnl: Decimal,
    pub daily_max_loss: Decimal,
    /// The user's orders in the last second, and whether the strategy's algo is registered.
    pub orders_last_second: u32,
    pub registered_algo: bool,
    /// A kill switch's own exit: it passes halted and reducing states (which the kill set).
    pub forced_exit: bool,
}

/// Why the gate refused a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum Refusal {
    #[error("trading is halted at the {level:?} level")]
    Halted { level: Level },
    #[error("only reducing orders are allowed at the {level:?} level")]
    ReducingOnly { level: Level },
    #[error("the account has no valid token (log in again; tokens die at 03:30 IST)")]
    NoToken,
    #[error("the market is closed for this segment")]
    MarketClosed,
    #[error("not enough margin: ₹{required} needed, ₹{available} available")]
    Margin { required: Decimal, available: Decimal },
    #[error("the margin needed or available could not be read ({why}); nothing is sent on a guess")]
    MarginUnknown { why: String },
    #[error("exposure would be ₹{after}, over the ₹{max} allowed")]
    Exposure { after: Decimal, max: Decimal },
    #[error("{open} open positions already, the most allowed")]
    OpenPositions { open: u32 },
    #[error("{today} orders today already, the most allowed")]
    OrdersPerDay { today: u32 },
    #[error("the day's loss ₹{loss} has reached the limit of ₹{max}: exits only")]
    DailyLoss { loss: Decimal, max: Decimal },
    #[error(
        "{in_last_second} orders in the last second: an unregistered algo stays under {UNREGISTERED_ORDERS_PER_SECOND} a second"
    )]
    ExchangeRate { in_last_second: u32 },
}

/// Whether the day's P&L has reached the loss limit.
pub fn loss_breached(day_pnl: Decimal, daily_max_loss: Decimal) -> bool {
    daily_max_loss > Decimal::ZERO && -day_pnl >= daily_max_loss
}

/// Checks `plan` against `ctx`. Exits (plans that only reduce) pass a Reducing state, the
/// loss limit and the limits on size; nothing passes a Halted state (but a kill switch's own
/// exit), a missing token or a closed market.
///
/// # Errors
/// The first [`Refusal`] that applies, in the order of the checks.
pub fn check(plan: &OrderPlan, ctx: &RiskContext) -> Result<(), Refusal> {
    let states = [
        (Level::Global, ctx.global),
        (Level::User, ctx.user),
        (Level::Subscription, ctx.subscription),
    ];
    // A kill switch's own exit passes the states the kill set.
    let states = if ctx.forced_exit && plan.reduces {
        &states[..0]
    } else {
        &states[..]
    };
    for &(level, state) in states {
        match state {
            TradingState::Halted => return Err(Refusal::Halted { level }),
            TradingState::Reducing if !plan.reduces => return Err(Refusal::ReducingOnly { level }),
            _ => {}
        }
    }
    if !ctx.token_valid {
        return Err(Refusal::NoToken);
    }
    if !ctx.market_open {
        return Err(Refusal::MarketClosed);
    }
    if !ctx.registered_algo && ctx.orders_last_second >= UNREGISTERED_ORDERS_PER_SECOND {
        return Err(Refusal::ExchangeRate {
            in_last_second: ctx.orders_last_second,
        });
    }
    if plan.reduces {
        return Ok(());
    }
    if loss_breached(ctx.day_pnl, ctx.daily_max_loss) {
        return Err(Refusal::DailyLoss {
            loss: -ctx.day_pnl,
            max: ctx.daily_max_loss,
        });
    }
    if ctx.orders_today >= ctx.max_orders_per_day {
        return Err(Refusal::OrdersPerDay {
            today: ctx.orders_today,
        });
    }
    if ctx.opens_position && ctx.open_positions >= ctx.max_open_positions {
        return Err(Refusal::OpenPositions {
            open: ctx.open_positions,
        });
    }
    if ctx.exposure_after > ctx.max_exposure {
        return Err(Refusal::Exposure {
            after: ctx.exposure_after,
            max: ctx.max_exposure,
        });
    }
    if !plan.reduces
        && let Some(why) = &ctx.margin_unknown
    {
        return Err(Refusal::MarginUnknown { why: why.clone() });
    }
    if ctx.margin_required > ctx.margin_available {
        return Err(Refusal::Margin {
            required: ctx.margin_required,
            available: ctx.margin_available,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use upstox_types::TransactionType;

    fn plan(reduces: bool) -> OrderPlan {
        OrderPlan {
            side: TransactionType::Buy,
            quantity: 65,
            slice: false,
            reduces,
            target: if reduces { 0 } else { 65 },
        }
    }

    fn ok_ctx() -> RiskContext {
        RiskContext {
            token_valid: true,
            market_open: true,
            margin_required: Decimal::from(10_000),
            margin_available: Decimal::from(100_000),
            margin_unknown: None,
            exposure_after: Decimal::from(200_000),
            max_exposure: Decimal::from(500_000),
            open_positions: 1,
            opens_position: true,
            max_open_positions: 3,
            orders_today: 2,
            max_orders_per_day: 20,
            day_pnl: Decimal::from(-500),
            daily_max_loss: Decimal::from(5_000),
            orders_last_second: 0,
            registered_algo: false,
            ..RiskContext::default()
        }
    }

    #[test]
    fn each_limit_refuses_with_its_reason_and_exits_still_go() {
        assert_eq!(check(&plan(false), &ok_ctx()), Ok(()));
        type Change = Box<dyn Fn(&mut RiskContext)>;
        let cases: Vec<(Change, Refusal)> = vec![
            (
                Box::new(|c| c.user = TradingState::Halted),
                Refusal::Halted { level: Level::User },
            ),
            (
                Box::new(|c| c.global = TradingState::Reducing),
                Refusal::ReducingOnly { level: Level::Global },
            ),
            (Box::new(|c| c.token_valid = false), Refusal::NoToken),
            (Box::new(|c| c.market_open = false), Refusal::MarketClosed),
            (
                Box::new(|c| c.orders_last_second = 10),
                Refusal::ExchangeRate { in_last_second: 10 },
            ),
            (
                Box::new(|c| c.day_pnl = Decimal::from(-5_000)),
                Refusal::DailyLoss {
                    loss: Decimal::from(5_000),
                    max: Decimal::from(5_000),
                },
            ),
            (Box::new(|c| c.orders_today = 20), Refusal::OrdersPerDay { today: 20 }),
            (Box::new(|c| c.open_positions = 3), Refusal::OpenPositions { open: 3 }),
            (
                Box::new(|c| c.exposure_after = Decimal::from(600_000)),
                Refusal::Exposure {
                    after: Decimal::from(600_000),
                    max: Decimal::from(500_000),
                },
            ),
            (
                Box::new(|c| c.margin_available = Decimal::from(5_000)),
                Refusal::Margin {
                    required: Decimal::from(10_000),
                    available: Decimal::from(5_000),
                },
            ),
        ];
        for (change, expected) in cases {
            let mut c = ok_ctx();
            change(&mut c);
            assert_eq!(check(&plan(false), &c), Err(expected.clone()), "{expected}");
        }
        // An exit passes Reducing, the loss limit and the size limits.
        let mut c = ok_ctx();
        c.user = TradingState::Reducing;
        c.day_pnl = Decimal::from(-9_000);
        c.margin_available = Decimal::ZERO;
        c.orders_today = 99;
        assert_eq!(check(&plan(true), &c), Ok(()));
        c.subscription = TradingState::Halted;
        assert_eq!(
            check(&plan(true), &c),
            Err(Refusal::Halted {
                level: Level::Subscription
            })
        );
        let mut c = ok_ctx();
        c.registered_algo = true;
        c.orders_last_second = 50;
        assert_eq!(check(&plan(false), &c), Ok(()), "a registered algo may go faster");
        let mut c = ok_ctx();
        c.global = TradingState::Halted;
        c.forced_exit = true;
        assert_eq!(check(&plan(true), &c), Ok(()), "a kill switch's exit passes its halt");
        assert_eq!(
            check(&plan(false), &c),
            Err(Refusal::Halted { level: Level::Global }),
            "but nothing that adds"
        );
        c.token_valid = false;
        assert_eq!(check(&plan(true), &c), Err(Refusal::NoToken));
        assert!(loss_breached(Decimal::from(-100), Decimal::from(100)));
        assert!(!loss_breached(Decimal::from(-99), Decimal::from(100)));
        assert!(!loss_breached(Decimal::from(-1_000_000), Decimal::ZERO), "no limit set");
    }
}
