//! `upstox-instruments`: Upstox's instrument master — download ([`download()`], bounded, with
//! progress), gunzip and parse ([`InstrumentMaster::from_gzip`]: zero-copy spans over the text,
//! libdeflate, a two-thread parse), and index (by key, by trading symbol, option chains by
//! underlying, expiry, strike and type; [`InstrumentMaster::search`] for people;
//! [`InstrumentMaster::suggest`] from a wrong key to the right one). Used by the
//! REST client, the dashboard and the engine to come; it knows nothing of tokens or users.
//!
//! Tests: `cargo test -p upstox-instruments`.

pub mod download;
mod error;
mod master;
mod suggest;

pub use download::{DownloadError, MAX_INSTRUMENT_FILE, download};
pub use error::{Error, Result};
pub use master::{Instrument, InstrumentMaster, InstrumentRecord, OptionKind};
pub use suggest::{Suggestion, Why};
