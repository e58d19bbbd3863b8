//! The catalog: what each strategy is, what it trades, what a subscriber must give (with
//! bounds) and where its signals come from.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use upstox_types::InstrumentKey;

use crate::subscription::{Inputs, Sizing};

/// Where a strategy's signals come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SignalSource {
    /// RSI mean reversion in our process.
    Rsi {
        period: usize,
        oversold: u32,
        overbought: u32,
        interval_secs: u32,
    },
    /// Momentum breakout in our process.
    Breakout { lookback: usize, interval_secs: u32 },
    /// EMA crossover in our process.
    EmaCrossover {
        fast: usize,
        slow: usize,
        interval_secs: u32,
    },
    /// The vendor's own servers POST signed signals; the secret lives in the vault.
    External,
}

/// A catalog file: `[[strategy]]` tables (TOML, as `examples/strategies.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub strategy: Vec<Strategy>,
}

/// Bounds on what a subscriber may set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputBounds {
    pub max_lots: u32,
    pub max_multiplier: u32,
    pub max_margin_percent: Decimal,
    pub max_exposure: Decimal,
    pub max_orders_per_day: u32,
    pub max_open_positions: u32,
}

/// One strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Bumped when the logic or the parameters change: subscribers consent again.
    pub version: u32,
    /// The exchange-registered algo name (`X-Algo-Name` on every order).
    pub algo_name: String,
    /// Whether the exchange registered this algo for more than 10 orders a second per user.
    #[serde(default)]
    pub registered: bool,
    pub instruments: Vec<InstrumentKey>,
    pub bounds: InputBounds,
    pub source: SignalSource,
}

/// A subscriber's input outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct InputError {
    pub field: &'static str,
    pub message: String,
}

impl Strategy {
    /// Checks a subscriber's inputs against the bounds; answers every problem at once.
    ///
    /// # Errors
    /// Each field out of bounds, with what is allowed.
    pub fn check_inputs(&self, i: &Inputs) -> Result<(), Vec<InputError>> {
        let b = &self.bounds;
        let mut errors = Vec::new();
        let mut bad = |field, message: String| errors.push(InputError { field, message });
        match &i.sizing {
            Sizing::FixedLots { lots, multiplier } => {
                if *lots == 0 || *lots > b.max_lots {
                    bad("lots", format!("must be 1 to {}", b.max_lots));
                }
                if *multiplier == 0 || *multiplier > b.max_multiplier {
                    bad("multiplier", format!("must be 1 to {}", b.max_multiplier));
                }
            }
            Sizing::MarginPercent { percent } => {
                if *percent <= Decimal::ZERO || *percent > b.max_margin_percent {
                    bad(
                        "margin_percent",
                        format!("must be above 0 and at most {}", b.max_margin_percent),
                    );
                }
            }
        }
        if i.max_exposure <= Decimal::ZERO || i.max_exposure > b.max_exposure {
            bad(
                "max_exposure",
                format!("must be above ₹0 and at most ₹{}", b.max_exposure),
            );
        }
        if i.max_orders_per_day == 0 || i.max_orders_per_day > b.max_orders_per_day {
            bad("max_orders_per_day", format!("must be 1 to {}", b.max_orders_per_day));
        }
        if i.max_open_positions == 0 || i.max_open_positions > b.max_open_positions {
            bad("max_open_positions", format!("must be 1 to {}", b.max_open_positions));
        }
        if i.daily_max_loss <= Decimal::ZERO {
            bad("daily_max_loss", "must be above ₹0".into());
        }
        if let Some(w) = &i.whitelist
            && let Some(k) = w.iter().find(|k| !self.instruments.contains(k))
        {
            bad("whitelist", format!("{k} is not an instrument of this strategy"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upstox_types::Product;

    #[test]
    fn inputs_outside_the_bounds_are_all_named() {
        let s = Strategy {
            id: "ema".into(),
            name: "EMA crossover".into(),
            description: "".into(),
            version: 1,
            algo_name: "STXEMA".into(),
            registered: false,
            instruments: vec!["NSE_EQ|INE002A01018".parse().expect("key")],
            bounds: InputBounds {
                max_lots: 10,
                max_multiplier: 5,
                max_margin_percent: Decimal::from(50),
                max_exposure: Decimal::from(1_000_000),
                max_orders_per_day: 50,
                max_open_positions: 5,
            },
            source: SignalSource::EmaCrossover {
                fast: 5,
                slow: 20,
                interval_secs: 60,
            },
        };
        let good = Inputs {
            sizing: Sizing::FixedLots { lots: 2, multiplier: 1 },
            max_exposure: Decimal::from(100_000),
            max_open_positions: 2,
            max_orders_per_day: 10,
            daily_max_loss: Decimal::from(5_000),
            product: Product::Intraday,
            whitelist: None,
            paper: true,
        };
        assert_eq!(s.check_inputs(&good), Ok(()));
        let bad = Inputs {
            sizing: Sizing::FixedLots {
                lots: 11,
                multiplier: 0,
            },
            max_exposure: Decimal::from(2_000_000),
            whitelist: Some(vec!["NSE_EQ|INE009A01021".parse().expect("key")]),
            ..good
        };
        let errors = s.check_inputs(&bad).expect_err("bad");
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["lots", "multiplier", "max_exposure", "whitelist"]);
    }
}
