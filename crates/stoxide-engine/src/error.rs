//! The engine's errors. Refusals of signals and intents are not errors: they are outcomes,
//! recorded with their reasons. These are what stops an operation itself.

/// Everything that can stop an engine operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] stoxide_store::Error),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] stoxide_vault::Error),
    /// No such strategy in the catalog.
    #[error("there is no strategy {0:?} in the catalog (see `stoxide strategy list`)")]
    UnknownStrategy(String),
    /// No such subscription.
    #[error("there is no subscription {0:?} (see `stoxide subscriptions`)")]
    UnknownSubscription(String),
    /// No such account in the vault.
    #[error("there is no account {0:?} in the vault (log it in first: `stoxide login --account {0}`)")]
    UnknownAccount(String),
    /// A subscriber's inputs are outside the strategy's bounds.
    #[error("the inputs are outside the strategy's bounds: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Inputs(Vec<crate::catalog::InputError>),
    /// A state change the subscription's state does not allow.
    #[error(transparent)]
    Transition(#[from] crate::subscription::TransitionError),
    /// A catalog file or a stored record is not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// An instrument the catalog names is not in the instrument master.
    #[error("strategy {strategy} trades {instrument}, which is not in the instrument master")]
    UnknownInstrument { strategy: String, instrument: String },
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    Stopped,
}

impl Error {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
