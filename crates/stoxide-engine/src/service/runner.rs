//! The in-process strategies of the catalog, run on live ticks: candles built per strategy and
//! instrument, each closed candle shown to the strategy, its actions submitted as signals like
//! any other. A signal's id is the strategy, the instrument and the candle's start, so a candle
//! seen again (a restart, a replay) is the same signal and is refused as a duplicate.

use std::collections::HashMap;

use chrono::Utc;
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use upstox_types::InstrumentKey;

use super::Engine;
use crate::catalog::{SignalSource, Strategy};
use crate::signal::Signal;
use crate::strategies::{self, CandleBuilder, EmaCrossover, MomentumBreakout, RsiMeanReversion};

/// One price as the runner takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTick {
    pub key: InstrumentKey,
    /// Epoch ms of the trade (or of the frame).
    pub at_ms: i64,
    pub price: f64,
}

/// A built-in strategy for `source`, with its candle interval (ms); `None` for external ones.
pub fn built_in(source: &SignalSource) -> Option<(Box<dyn strategies::Strategy>, i64)> {
    let secs = |s: u32| i64::from(s.max(1)) * 1000;
    match source {
        SignalSource::Rsi {
            period,
            oversold,
            overbought,
            interval_secs,
        } => Some((
            Box::new(RsiMeanReversion::new(
                *period,
                f64::from(*oversold),
                f64::from(*overbought),
            )),
            secs(*interval_secs),
        )),
        SignalSource::Breakout {
            lookback,
            interval_secs,
        } => Some((Box::new(MomentumBreakout::new(*lookback)), secs(*interval_secs))),
        SignalSource::EmaCrossover {
            fast,
            slow,
            interval_secs,
        } => Some((Box::new(EmaCrossover::new(*fast, *slow)), secs(*interval_secs))),
        SignalSource::External => None,
    }
}

struct Running {
    strategy: String,
    candles: CandleBuilder,
    logic: Box<dyn strategies::Strategy>,
}

impl Engine {
    /// Runs every in-process strategy of `catalog` on `ticks` until the channel closes; answers
    /// how many signals they submitted.
    pub async fn run_strategies(&self, catalog: &[Strategy], mut ticks: mpsc::Receiver<PriceTick>) -> u64 {
        let mut by_key: HashMap<InstrumentKey, Vec<Running>> = HashMap::new();
        for s in catalog {
            for key in &s.instruments {
                if let Some((logic, interval)) = built_in(&s.source) {
                    by_key.entry(key.clone()).or_default().push(Running {
                        strategy: s.id.clone(),
                        candles: CandleBuilder::new(interval),
                        logic,
                    });
                }
            }
        }
        let mut sent = 0;
        while let Some(t) = ticks.recv().await {
            let Some(runs) = by_key.get_mut(&t.key) else { continue };
            for r in runs {
                let Some(candle) = r.candles.on_tick(t.at_ms, t.price) else {
                    continue;
                };
                let Some(action) = r.logic.on_candle(&candle) else {
                    continue;
                };
                let Ok(reference_price) = Decimal::try_from(candle.close) else {
                    continue;
                };
                let signal = Signal {
                    strategy: r.strategy.clone(),
                    id: format!("{}-{}-{}", r.strategy, t.key, candle.start_ms),
                    instrument: t.key.clone(),
                    action,
                    reference_price,
                    at: Utc::now(),
                };
                match self.submit(signal, "in-process").await {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        tracing::error!(strategy = %r.strategy, error = %e, "a strategy's signal could not be taken")
                    }
                }
            }
        }
        sent
    }
}
