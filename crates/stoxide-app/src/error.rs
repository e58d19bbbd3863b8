//! The use cases' errors: what went wrong, never what to type or press — each front end adds
//! that in its own words.

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The vault holds several accounts and none was chosen.
    #[error("the vault holds {} accounts ({}) and none was chosen", .0.len(), .0.join(", "))]
    AccountAmbiguous(Vec<String>),
    /// The vault holds no account.
    #[error("the vault holds no account")]
    NoAccount,
    /// The account's token was wiped (a logout) or never stored.
    #[error("account {0} has no token (logged out)")]
    LoggedOut(String),
    /// No Upstox app is configured for linking accounts.
    #[error("no Upstox app is configured for linking accounts")]
    NoLinkApp,
    /// An OAuth callback that cannot be believed.
    #[error(transparent)]
    Login(#[from] crate::linking::LoginError),
    /// A person's own Upstox app that cannot be taken.
    #[error(transparent)]
    OwnApp(#[from] crate::linking::OwnAppError),
    /// A token delivery (v3 token request) that cannot be believed.
    #[error(transparent)]
    Delivery(#[from] crate::linking::DeliveryError),
    /// The vault.
    #[error(transparent)]
    Vault(#[from] stoxide_vault::Error),
    /// Upstox (or the simulator).
    #[error(transparent)]
    Upstox(#[from] upstox_client::Error),
}

/// The use cases' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
