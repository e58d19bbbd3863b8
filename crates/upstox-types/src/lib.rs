//! Domain types of the Upstox API with no IO: instrument keys and segments, order enums,
//! IST time and the 03:30 token-expiry rule, the published rate limits and a sliding-window
//! counter, and Upstox's error codes.
//!
//! Both sides of the wire use this crate: the REST client (`upstox-client`) and the simulator
//! (`upstox-sim`), which never depend on each other. Everything here is pure, so it is tested
//! with unit tests and proptest: `cargo test -p upstox-types`.

mod change;
pub mod error_code;
pub mod feed;
pub mod fill;
pub mod instrument_key;
pub mod ist;
pub mod order;
pub mod rate_limit;

pub use change::PriceChange;
pub use feed::{FeedCaps, FeedMode};
pub use instrument_key::{InstrumentKey, InstrumentKeyError, Segment};
pub use ist::{IST, token_expiry};
pub use order::{
    GttRuleStatus, GttStrategy, GttTriggerType, GttType, OrderStatus, OrderType, Product, TransactionType, Validity,
};
pub use rate_limit::{ApiCategory, RateLimits, SlidingWindow, WindowLimit};
