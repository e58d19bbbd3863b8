//! An Upstox-compatible simulator: the REST API of api.upstox.com and api-hft.upstox.com under
//! the same paths, JSON shapes and error codes, with a seeded synthetic market (equities,
//! indices, futures, option chains priced by Black–Scholes, MCX futures), a paper-trading
//! engine, per-user rate limits, tokens that die at 03:30 IST, and fault injection.
//!
//! Core types: [`Simulator`] (start one on `127.0.0.1:0` and read [`Simulator::banner`]),
//! [`SimConfig`] (TOML-configurable apps, users, clock, faults, limits and market data).
//! It never depends on the client crate: both sides only share `upstox-types`.
//!
//! Tests: `cargo test -p upstox-sim` (unit tests of the market, calendar, auth and config; the
//! HTTP surface is exercised end to end by `upstox-client`'s tests and the Python SDK test).

pub mod api;
pub mod auth;
pub mod charges;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod feed;
pub mod gtt;
pub mod market;
pub mod server;
pub mod state;

pub use config::SimConfig;
pub use error::SimError;
pub use server::Simulator;
