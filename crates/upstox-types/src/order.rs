//! Order enums exactly as the wire spells them (api-facts §4.1, §4.10).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? } expected $expected:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.to_ascii_uppercase().as_str() {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(format!("{s:?} is not a valid {}: expected {}", stringify!($name), $expected)),
                }
            }
        }
    };
}

wire_enum!(
    /// Product: intraday, delivery (also F&O carry-forward) or margin trading facility.
    Product { Intraday => "I", Delivery => "D", Mtf => "MTF", CoverOrder => "CO" } expected "I, D or MTF"
);
wire_enum!(
    /// How long an order lives.
    Validity { Day => "DAY", Ioc => "IOC" } expected "DAY or IOC"
);
wire_enum!(
    /// Order type.
    OrderType { Market => "MARKET", Limit => "LIMIT", StopLoss => "SL", StopLossMarket => "SL-M" } expected "MARKET, LIMIT, SL or SL-M"
);
wire_enum!(
    /// Buy or sell.
    TransactionType { Buy => "BUY", Sell => "SELL" } expected "BUY or SELL"
);

impl TransactionType {
    /// +1 for a buy, -1 for a sell.
    pub const fn sign(self) -> i64 {
        match self {
            TransactionType::Buy => 1,
            TransactionType::Sell => -1,
        }
    }

    /// The other side.
    pub const fn opposite(self) -> Self {
        match self {
            TransactionType::Buy => TransactionType::Sell,
            TransactionType::Sell => TransactionType::Buy,
        }
    }
}

/// Order status strings as the real API writes them (lower case, with spaces).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum OrderStatus {
    PutOrderReqReceived,
    ValidationPending,
    OpenPending,
    Open,
    TriggerPending,
    ModifyPending,
    Modified,
    CancelPending,
    Cancelled,
    Complete,
    Rejected,
    AfterMarketOrderReqReceived,
    /// Any status string this crate does not know; kept verbatim.
    Other(String),
}

impl OrderStatus {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::PutOrderReqReceived => "put order req received",
            OrderStatus::ValidationPending => "validation pending",
            OrderStatus::OpenPending => "open pending",
            OrderStatus::Open => "open",
            OrderStatus::TriggerPending => "trigger pending",
            OrderStatus::ModifyPending => "modify pending",
            OrderStatus::Modified => "modified",
            OrderStatus::CancelPending => "cancel pending",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Complete => "complete",
            OrderStatus::Rejected => "rejected",
            OrderStatus::AfterMarketOrderReqReceived => "after market order req received",
            OrderStatus::Other(s) => s,
        }
    }

    /// Complete, rejected and cancelled orders never change again.
    pub fn is_terminal(&self) -> bool {
        match self {
            OrderStatus::Complete | OrderStatus::Rejected | OrderStatus::Cancelled => true,
            OrderStatus::Other(s) => s.starts_with("cancelled"),
            _ => false,
        }
    }
}

impl From<String> for OrderStatus {
    fn from(s: String) -> Self {
        const KNOWN: [OrderStatus; 12] = [
            OrderStatus::PutOrderReqReceived,
            OrderStatus::ValidationPending,
            OrderStatus::OpenPending,
            OrderStatus::Open,
            OrderStatus::TriggerPending,
            OrderStatus::ModifyPending,
            OrderStatus::Modified,
            OrderStatus::CancelPending,
            OrderStatus::Cancelled,
            OrderStatus::Complete,
            OrderStatus::Rejected,
            OrderStatus::AfterMarketOrderReqReceived,
        ];
        KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(OrderStatus::Other(s))
    }
}

impl From<OrderStatus> for String {
    fn from(s: OrderStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_use_wire_spellings() {
        assert_eq!(
            serde_json::to_string(&OrderType::StopLossMarket).expect("ser"),
            "\"SL-M\""
        );
        assert_eq!("sl-m".parse::<OrderType>(), Ok(OrderType::StopLossMarket));
        assert!(
            "STOP"
                .parse::<OrderType>()
                .expect_err("STOP is not an order type")
                .contains("MARKET, LIMIT, SL or SL-M")
        );
        let status: OrderStatus = serde_json::from_str("\"trigger pending\"").expect("de");
        assert_eq!(status, OrderStatus::TriggerPending);
        let odd: OrderStatus = serde_json::from_str("\"not modified\"").expect("de");
        assert_eq!(odd.as_str(), "not modified");
        assert!(OrderStatus::Rejected.is_terminal() && !OrderStatus::Open.is_terminal());
    }
}

wire_enum!(
    /// A GTT order: one rule (`SINGLE`, an entry) or an entry with a target and/or a stop loss (`MULTIPLE`).
    GttType { Single => "SINGLE", Multiple => "MULTIPLE" } expected "SINGLE or MULTIPLE"
);
wire_enum!(
    /// What a GTT rule is for.
    GttStrategy { Entry => "ENTRY", Target => "TARGET", StopLoss => "STOPLOSS" } expected "ENTRY, TARGET or STOPLOSS"
);
wire_enum!(
    /// When a GTT rule fires: the last price at or above, at or below its trigger, or at once.
    GttTriggerType { Above => "ABOVE", Below => "BELOW", Immediate => "IMMEDIATE" } expected "ABOVE, BELOW or IMMEDIATE"
);
wire_enum!(
    /// A GTT rule's state (api-facts §4.11). The simulator uses `SCHEDULED` for exit rules waiting
    /// on their entry, `PENDING` for a rule watching the price, `TRIGGERED` while its order is
    /// working, then `COMPLETED`, `FAILED`, `CANCELLED` or `EXPIRED`.
    GttRuleStatus {
        Pending => "PENDING",
        Scheduled => "SCHEDULED",
        Triggered => "TRIGGERED",
        Completed => "COMPLETED",
        Failed => "FAILED",
        Cancelled => "CANCELLED",
        Expired => "EXPIRED",
        Open => "OPEN",
        Inactive => "INACTIVE"
    } expected "PENDING, SCHEDULED, TRIGGERED, COMPLETED, FAILED, CANCELLED, EXPIRED, OPEN or INACTIVE"
);

impl GttTriggerType {
    /// Whether a rule with this trigger fires at `last`.
    pub fn fires(self, trigger_price: f64, last: f64) -> bool {
        match self {
            GttTriggerType::Above => last >= trigger_price,
            GttTriggerType::Below => last <= trigger_price,
            GttTriggerType::Immediate => true,
        }
    }
}

impl GttRuleStatus {
    /// Completed, failed, cancelled and expired rules never change again.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            GttRuleStatus::Completed | GttRuleStatus::Failed | GttRuleStatus::Cancelled | GttRuleStatus::Expired
        )
    }
}
