//! Upstox's WebSocket feeds in Rust: the Market Data Feed v3 streamer (protobuf decoded into
//! typed ticks) and the portfolio streamer, both built to never die silently.
//!
//! Core types: [`MarketStreamer`] (subscribe / unsubscribe / change_mode at any time; fresh
//! authorize per connect; reconnect with backoff and jitter; subscriptions restored; stall
//! detection; [`Diagnosis`] instead of a reconnect storm on 401/403), [`EventStream`] (bounded
//! memory: latest tick per instrument for a slow consumer), [`Tick`] and friends, [`decode()`],
//! [`recording`] (the record/replay file format), [`TokenSource`] (a token replaced while
//! running is used on the next connect).
//!
//! Tests: `cargo test -p upstox-feed` runs the streamer against an in-process simulator with
//! injected faults.

mod connection;
pub mod decode;
pub mod error;
pub mod events;
mod fast;
pub use fast::{Decoded, FrameDecoder};
pub mod market;
pub mod portfolio;
pub mod recording;
pub mod state;
pub mod tick;
pub mod token;

pub use decode::{DecodeError, Frame, decode};
pub use error::{Diagnosis, FeedError, HandshakeRefusal};
pub use events::{EventStream, FeedEvent, Policy};
pub use market::{MarketStreamer, StreamerConfig};
pub use portfolio::{PortfolioStreamer, PortfolioUpdate, UpdateTypes};
pub use state::StreamState;
pub use tick::{Tick, TickData};
pub use token::{FileToken, StaticToken, TokenSource};
