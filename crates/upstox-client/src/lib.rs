//! A typed, async client for the Upstox REST API.
//!
//! Core types: [`UpstoxClient`] (one per access token; cheap clones share the connection pool
//! and the client-side rate limiter), [`ClientConfig`] and [`Hosts`] (production, sandbox, or
//! one base URL such as the simulator's), [`Error`] (HTTP status + Upstox `UDAPI...` codes),
//! and the request/response models of every endpoint, grouped by concept: [`login`], [`user`],
//! [`orders`], [`gtt`], [`portfolio`], [`market`], [`instruments`].
//!
//! Behaviour worth knowing:
//! - Every call has a timeout; idempotent calls (GETs) are retried with exponential backoff and
//!   jitter on timeouts, transport errors, 5xx and 429 (`UDAPI10005`).
//! - Place/modify/cancel are never retried blindly; a place whose outcome is unknown is looked
//!   up in the order book by its `tag` (generated when absent) before anything is re-sent.
//! - A client-side sliding-window limiter keeps a caller under the published per-user limits.
//! - Tokens and secrets are [`secrecy::SecretString`]s: never in `Debug`, errors or logs.
//!
//! The caller installs a rustls crypto provider once (`rustls::crypto::ring::default_provider()
//! .install_default()`) before building a client that talks HTTPS.
//!
//! Tests: `cargo test -p upstox-client` runs the client against an in-process simulator.

pub mod charges;
pub mod client;
pub mod error;
pub mod feed_auth;
pub mod gtt;
pub mod instruments;
pub mod limiter;
pub mod login;
pub mod market;
pub mod orders;
pub mod pnl;
pub mod portfolio;
pub mod user;
pub mod wire;

pub use client::{CallObserver, CallRecord, ClientConfig, Hosts, RetryPolicy, UpstoxClient};
pub use error::{ApiErrorItem, Error, Result};
pub use instruments::{Instrument, InstrumentMaster, InstrumentRecord, OptionKind};
pub use limiter::{Admission, LimitKey, RateLimiter, SharedBudgetError, SharedBudgets};
