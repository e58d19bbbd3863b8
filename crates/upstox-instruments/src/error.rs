//! The instrument master's error type.

/// Why an instrument file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not gzip, not UTF-8, not a JSON array of records, or a record without a key.
    #[error("instrument master: {0}")]
    Malformed(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
