//! The paper-trading fill rule, shared by the simulator's matching engine and the engine's
//! in-process paper broker, so a forward test fills exactly as the simulator does.
//!
//! A MARKET (or triggered SL-M) order fills at the touch: the ask for a buy, the bid for a sell.
//! A LIMIT (or triggered SL) order fills at the touch once the touch crosses its price.
//! SL and SL-M wait until the last price crosses the trigger.

use crate::order::{OrderType, TransactionType};

/// The best prices an order can meet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    pub last: f64,
    pub bid: f64,
    pub ask: f64,
}

impl Touch {
    /// A touch one tick either side of the last price (when no depth is known).
    pub fn around(last: f64, tick: f64) -> Self {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        Self {
            last,
            bid: r((last - tick).max(tick)),
            ask: r(last + tick),
        }
    }
}

/// Whether a stop order's trigger is hit at `last`.
pub fn triggered(side: TransactionType, trigger_price: f64, last: f64) -> bool {
    match side {
        TransactionType::Buy => last >= trigger_price,
        TransactionType::Sell => last <= trigger_price,
    }
}

/// The price an order (already triggered, for stop orders) fills at now, if it fills.
pub fn fill_price(order_type: OrderType, side: TransactionType, limit_price: f64, touch: Touch) -> Option<f64> {
    let market_like = matches!(order_type, OrderType::Market | OrderType::StopLossMarket);
    match side {
        TransactionType::Buy => (market_like || limit_price >= touch.ask).then_some(touch.ask),
        TransactionType::Sell => (market_like || limit_price <= touch.bid).then_some(touch.bid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn market_orders_fill_at_the_touch_and_limits_only_when_crossed() {
        let t = Touch {
            last: 100.0,
            bid: 99.95,
            ask: 100.05,
        };
        assert_eq!(
            fill_price(OrderType::Market, TransactionType::Buy, 0.0, t),
            Some(100.05)
        );
        assert_eq!(
            fill_price(OrderType::Market, TransactionType::Sell, 0.0, t),
            Some(99.95)
        );
        assert_eq!(fill_price(OrderType::Limit, TransactionType::Buy, 100.0, t), None);
        assert_eq!(
            fill_price(OrderType::Limit, TransactionType::Buy, 100.05, t),
            Some(100.05)
        );
        assert_eq!(
            fill_price(OrderType::Limit, TransactionType::Sell, 99.95, t),
            Some(99.95)
        );
        assert_eq!(fill_price(OrderType::Limit, TransactionType::Sell, 100.0, t), None);
    }

    #[test]
    fn stops_trigger_when_the_last_price_crosses() {
        assert!(triggered(TransactionType::Buy, 100.0, 100.0));
        assert!(!triggered(TransactionType::Buy, 100.0, 99.9));
        assert!(triggered(TransactionType::Sell, 100.0, 99.0));
        assert!(!triggered(TransactionType::Sell, 100.0, 100.5));
        let t = Touch::around(0.05, 0.05);
        assert!(t.bid >= 0.05, "never a bid of zero: {t:?}");
    }
}
