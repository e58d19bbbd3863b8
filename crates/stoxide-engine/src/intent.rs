//! Intents: what the engine means to do for one subscription on one signal, written before any
//! order is sent and driven to a terminal state by what the broker's order book says. Plain
//! types and a plain function ([`settle`]).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::OrderStatus;

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentState {
    /// Written; its order may or may not have been sent (a restart reconciles it by tag).
    Pending,
    /// Upstox acknowledged its order(s); waiting for them to end.
    Placed,
    /// The answer to its order was lost and the order book could not yet tell; reconciled again.
    Unknown,
    Filled,
    /// Its orders ended with part of the quantity filled.
    PartiallyFilled,
    /// Upstox (or the exchange) refused its order; the reason holds Upstox's message.
    Rejected,
    Cancelled,
    /// Allocation gave it nothing to do (the reason says why).
    Skipped,
    /// The risk gate (or a missing login) stopped it before anything was sent.
    Refused,
}

impl IntentState {
    pub const ALL: [IntentState; 9] = [
        Self::Pending,
        Self::Placed,
        Self::Unknown,
        Self::Filled,
        Self::PartiallyFilled,
        Self::Rejected,
        Self::Cancelled,
        Self::Skipped,
        Self::Refused,
    ];

    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Placed => "placed",
            Self::Unknown => "unknown",
            Self::Filled => "filled",
            Self::PartiallyFilled => "partially_filled",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
            Self::Refused => "refused",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether it will never change again.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Placed | Self::Unknown)
    }
}

impl std::fmt::Display for IntentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of an intent's orders as the order book shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub order_id: String,
    /// The tag it carries (the intent's, for the engine's orders).
    pub tag: Option<String>,
    pub status: OrderStatus,
    pub quantity: u64,
    pub filled: u64,
    pub average_price: Decimal,
    /// Upstox's status message (a rejection's reason).
    pub message: Option<String>,
}

/// How an intent ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub state: IntentState,
    pub filled: u64,
    /// The quantity-weighted average price of the fills.
    pub average_price: Option<Decimal>,
    pub reason: Option<String>,
}

/// How an intent for `planned` units ended, once every one of its orders has (`None` while any
/// is still working): filled, partially filled, rejected (with Upstox's message) or cancelled.
pub fn settle(planned: u64, orders: &[OrderView]) -> Option<Settled> {
    if orders.is_empty() || orders.iter().any(|o| !o.status.is_terminal()) {
        return None;
    }
    let filled: u64 = orders.iter().map(|o| o.filled).sum();
    let value: Decimal = orders.iter().map(|o| o.average_price * Decimal::from(o.filled)).sum();
    let average_price = (filled > 0).then(|| (value / Decimal::from(filled)).round_dp(4));
    let rejected: Vec<&OrderView> = orders.iter().filter(|o| o.status == OrderStatus::Rejected).collect();
    // A rejection's message says most; else any order's (a cancellation's).
    let message = |o: &&OrderView| o.message.clone().filter(|m| !m.is_empty());
    let reason = rejected
        .iter()
        .find_map(message)
        .or_else(|| orders.iter().find_map(|o| message(&o)));
    let state = if filled >= planned {
        IntentState::Filled
    } else if filled > 0 {
        IntentState::PartiallyFilled
    } else if !rejected.is_empty() {
        IntentState::Rejected
    } else {
        IntentState::Cancelled
    };
    Some(Settled {
        state,
        filled,
        average_price,
        reason: if state == IntentState::Filled { None } else { reason },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: OrderStatus, quantity: u64, filled: u64, price: i64, message: Option<&str>) -> OrderView {
        OrderView {
            order_id: format!("o{quantity}{filled}"),
            tag: None,
            status,
            quantity,
            filled,
            average_price: Decimal::from(price),
            message: message.map(Into::into),
        }
    }

    #[test]
    fn an_intent_settles_only_when_every_order_has() {
        let open = order(OrderStatus::Open, 10, 0, 0, None);
        let done = order(OrderStatus::Complete, 10, 10, 100, None);
        assert_eq!(settle(20, &[done.clone(), open]), None);
        assert_eq!(settle(10, &[]), None, "no orders yet");
        let s = settle(20, &[done.clone(), order(OrderStatus::Complete, 10, 10, 102, None)]).expect("settled");
        assert_eq!(s.state, IntentState::Filled);
        assert_eq!((s.filled, s.average_price), (20, Some(Decimal::from(101))));
    }

    #[test]
    fn rejections_carry_upstox_message_and_partial_fills_are_named() {
        let rejected = order(OrderStatus::Rejected, 10, 0, 0, Some("You need to add Rs. 10.00"));
        let s = settle(10, std::slice::from_ref(&rejected)).expect("settled");
        assert_eq!(s.state, IntentState::Rejected);
        assert_eq!(s.reason.as_deref(), Some("You need to add Rs. 10.00"));
        let part = order(OrderStatus::Cancelled, 10, 4, 100, Some("cancelled by user"));
        let s = settle(10, &[part]).expect("settled");
        assert_eq!((s.state, s.filled), (IntentState::PartiallyFilled, 4));
        let none = order(OrderStatus::Cancelled, 10, 0, 0, None);
        assert_eq!(settle(10, &[none]).map(|s| s.state), Some(IntentState::Cancelled));
    }

    #[test]
    fn states_round_trip_and_only_three_are_unfinished() {
        for s in IntentState::ALL {
            assert_eq!(IntentState::parse(s.as_str()), Some(s));
        }
        let unfinished: Vec<_> = IntentState::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        assert_eq!(
            unfinished,
            [IntentState::Pending, IntentState::Placed, IntentState::Unknown]
        );
    }
}
