//! `bench-engine`: the engine's decision path on one core, with no IO: tick → candle →
//! strategy → signal → one sized, risk-checked intent (with its tag) per subscription. Prints
//! p50/p99 per tick that closed no candle, and per signal (the whole fan-out of decisions).

use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::percentile;

use chrono::Utc;
use rust_decimal::Decimal;
use stoxide_engine::allocation::{InstrumentInfo, allocate_consented, intent_tag};
use stoxide_engine::risk::{self, RiskContext, TradingState};
use stoxide_engine::signal::Signal;
use stoxide_engine::strategies::{CandleBuilder, EmaCrossover, Strategy};
use stoxide_engine::subscription::{Inputs, Sizing, Subscription};
use upstox_types::{InstrumentKey, Product};

/// What one subscription's decision produced.
#[derive(Debug)]
#[allow(dead_code, reason = "kept as a real engine keeps it; read by nobody here")]
struct Decided {
    tag: String,
    outcome: Result<(u64, bool), String>,
}

pub(crate) fn bench_engine(subs: usize, signals_wanted: usize) -> anyhow::Result<()> {
    let key = InstrumentKey::from_str("NSE_EQ|INE002A01018")?;
    let inst = InstrumentInfo {
        key: key.clone(),
        lot_size: 1,
        freeze_quantity: Some(100_000),
    };
    let now = Utc::now();
    let subscriptions: Vec<Subscription> = (0..subs)
        .map(|i| {
            let mut s = Subscription::new(
                format!("ema:U{i:06}"),
                format!("U{i:06}"),
                "ema",
                Inputs {
                    sizing: if i % 2 == 0 {
                        Sizing::FixedLots {
                            lots: 1 + (i % 5) as u32,
                            multiplier: 1,
                        }
                    } else {
                        Sizing::MarginPercent {
                            percent: Decimal::from(5 + i % 20),
                        }
                    },
                    max_exposure: Decimal::from(5_000_000),
                    max_open_positions: 5,
                    max_orders_per_day: 500,
                    daily_max_loss: Decimal::from(50_000),
                    product: Product::Intraday,
                    whitelist: None,
                    paper: false,
                },
            );
            s.activate(1, "bench", now, "127.0.0.1")
                .map(|_| s)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    // Each user's state as the engine holds it in memory: position, margin, counts.
    let mut positions = vec![0i64; subs];
    let available: Vec<Decimal> = (0..subs).map(|i| Decimal::from(200_000 + (i % 97) * 10_000)).collect();

    let mut builder = CandleBuilder::new(1_000);
    let mut strategy = EmaCrossover::new(3, 8);
    let mut tick_times = Vec::new();
    let mut signal_times = Vec::new();
    let mut intents = 0usize;
    let mut refused = 0usize;
    let (mut at_ms, mut step) = (1_764_900_000_000i64, 0u64);
    let started = Instant::now();
    while signal_times.len() < signals_wanted {
        step += 1;
        at_ms += 50;
        // A price that swings slowly: crossovers every few dozen candles.
        let price = 2_500.0 + 40.0 * ((step as f64) / 300.0).sin() + ((step * 7919) % 13) as f64 * 0.05;
        let t = Instant::now();
        let Some(candle) = builder.on_tick(at_ms, price) else {
            tick_times.push(t.elapsed());
            continue;
        };
        let Some(action) = strategy.on_candle(&candle) else {
            tick_times.push(t.elapsed());
            continue;
        };
        let signal = Signal {
            strategy: "ema".into(),
            id: format!("ema-{step}"),
            instrument: key.clone(),
            action,
            reference_price: Decimal::from_f64_retain(candle.close).unwrap_or_default().round_dp(2),
            at: now,
        };
        let per_lot = signal.reference_price / Decimal::from(5);
        let mut decided = Vec::with_capacity(subs);
        for (i, sub) in subscriptions.iter().enumerate() {
            let tag = intent_tag(&signal.strategy, &signal.id, &sub.id);
            let outcome = match allocate_consented(&signal, sub, true, positions[i], &inst, available[i], per_lot) {
                Ok(plan) => {
                    let ctx = RiskContext {
                        global: TradingState::Active,
                        user: TradingState::Active,
                        subscription: TradingState::Active,
                        token_valid: true,
                        market_open: true,
                        margin_required: per_lot * Decimal::from(plan.quantity),
                        margin_available: available[i],
                        margin_unknown: None,
                        exposure_after: signal.reference_price * Decimal::from(plan.target.unsigned_abs()),
                        max_exposure: sub.inputs.max_exposure,
                        open_positions: u32::from(positions[i] != 0),
                        opens_position: positions[i] == 0,
                        max_open_positions: sub.inputs.max_open_positions,
                        orders_today: 0,
                        max_orders_per_day: sub.inputs.max_orders_per_day,
                        day_pnl: Decimal::ZERO,
                        daily_max_loss: sub.inputs.daily_max_loss,
                        orders_last_second: 0,
                        registered_algo: true,
                        forced_exit: false,
                    };
                    match risk::check(&plan, &ctx) {
                        Ok(()) => {
                            positions[i] = plan.target;
                            Ok((plan.quantity, plan.slice))
                        }
                        Err(r) => Err(r.to_string()),
                    }
                }
                Err(skip) => Err(skip.to_string()),
            };
            decided.push(Decided { tag, outcome });
        }
        signal_times.push(t.elapsed());
        intents += decided.iter().filter(|d| d.outcome.is_ok()).count();
        refused += decided.iter().filter(|d| d.outcome.is_err()).count();
        std::hint::black_box(&decided);
    }
    let total = started.elapsed();
    tick_times.sort();
    signal_times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "hot path, {subs} subscriptions, {} signals over {} ticks in {:.1} s ({intents} intents sized and passed, {refused} skipped or refused)",
        signal_times.len(),
        tick_times.len() + signal_times.len(),
        total.as_secs_f64()
    );
    println!("| step | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| tick → candle → strategy (no signal) | {:.2} µs | {:.2} µs | {:.1} µs |",
        us(percentile(&tick_times, 0.5)),
        us(percentile(&tick_times, 0.99)),
        us(tick_times.last().copied().unwrap_or_default())
    );
    println!(
        "| tick → signal → {subs} sized, risk-checked, tagged intents | {:.2} ms | {:.2} ms | {:.2} ms |",
        ms(percentile(&signal_times, 0.5)),
        ms(percentile(&signal_times, 0.99)),
        ms(signal_times.last().copied().unwrap_or_default())
    );
    println!(
        "| per subscription (p50 / {subs}) | {:.0} ns | | |",
        percentile(&signal_times, 0.5).as_secs_f64() * 1e9 / subs.max(1) as f64
    );
    Ok(())
}
