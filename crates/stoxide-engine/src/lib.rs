//! `stoxide-engine`: the execution engine's decisions, as plain functions over plain state —
//! unit- and property-tested without a network. IO (the broker, the store, the streams) sits at
//! the edges, behind traits, in the modules to come.
//!
//! - [`catalog`]: strategies, their instruments, input bounds and signal sources.
//! - [`signal`]: signals, their parsing, and the HMAC-SHA256 check of external ones (±30 s).
//! - [`subscription`]: one account following one strategy with its own inputs; consent bound
//!   to those exact inputs and the strategy's version by a hash; the state transitions.
//! - [`allocation`]: a signal to an order plan per subscription (whole lots, sliced above the
//!   freeze, exits from the real position) or an explicit skip; the deterministic intent tag.
//! - [`risk`]: the gate every plan passes (trading states, token, session, exchange rate,
//!   loss limit, orders per day, open positions, exposure, margin), each refusal with a reason.
//! - [`audit`]: the hash-chained trail and its verification (edit, delete, reorder, truncate).
//! - [`desk`]: what operators and users do to the records (catalog, subscriptions and their
//!   consents, trading states, intents, the audit trail), with or without an engine running.
//! - [`ownership`]: which accounts an engine node may act for (leases held elsewhere).
//! - [`strategies`]: candles from ticks, and the built-in RSI mean reversion, momentum breakout
//!   and EMA crossover.
//!
//! Tests: `cargo test -p stoxide-engine`.

pub mod allocation;
pub mod audit;
pub mod broker;
pub mod catalog;
pub mod desk;
mod error;
pub mod intent;
mod journal;
pub mod market;
pub mod ownership;
pub mod positions;
pub mod records;
pub mod risk;
mod service;
pub mod signal;
pub mod strategies;
pub mod subscription;

pub use error::{Error, Result};

/// What `stoxide engine run` writes beside the vault so others can reach it: its address
/// (`{"url": …}`) and the control token its `POST /kill` needs (owner-only).
pub mod control_files {
    pub const ENGINE_FILE: &str = "engine.json";
    pub const TOKEN_FILE: &str = "engine.token";
}
pub use service::{
    Engine, EngineConfig, EngineParts, Instrument, IntentSummary, Kill, KillReport, LaneHealth, PriceTick,
    SignalOutcome, SignalProgress, SignalReport, Summary, Timings, built_in,
};
