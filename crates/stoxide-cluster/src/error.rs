//! The cluster's errors.

/// What can go wrong between nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] stoxide_store::Error),
    #[error(transparent)]
    Engine(#[from] stoxide_engine::Error),
    /// NATS could not be reached or refused a request.
    #[error("NATS at {url}: {detail}; check that nats-server runs there with JetStream (-js)")]
    Nats { url: String, detail: String },
    /// A message on the bus is not a signal.
    #[error("a message on {subject} is not a signal: {detail}")]
    NotASignal { subject: String, detail: String },
}

/// The cluster's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
