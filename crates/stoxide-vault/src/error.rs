//! The vault's one error type. Messages name the file and the fix; none ever carries a secret.

use std::path::PathBuf;

/// Everything that can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key in the environment variable is not 64 hex digits.
    #[error("{var} must hold 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`")]
    BadKeyEnv { var: String },
    /// The key file is unreadable or malformed.
    #[error("the vault key file {path} {problem}")]
    BadKeyFile { path: PathBuf, problem: String },
    /// The key file is readable by others.
    #[error("the vault key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    /// The vault exists but its key is gone.
    #[error(
        "the vault {db} exists but its key is missing: restore {key_file} from your backup or set STOXIDE_VAULT_KEY; without the key the tokens in it cannot be read (log in again after moving the vault away)"
    )]
    KeyMissing { db: String, key_file: PathBuf },
    /// The key does not open this vault.
    #[error(
        "the vault key from {source_name} does not open {db}: it was created with another key; use the key it was created with"
    )]
    WrongKey { db: String, source_name: String },
    /// A value sealed under a key this process does not hold.
    #[error(
        "the stored {field} of {owner} is sealed under key {key_id}, which {source_name} does not hold: give this machine the vault's current key"
    )]
    KeyNotHeld {
        owner: String,
        field: &'static str,
        key_id: crate::key::KeyId,
        source_name: String,
    },
    /// A stored ciphertext did not decrypt (tampered with, or moved from another row).
    #[error(
        "the stored {field} of {owner} does not decrypt: it was altered or copied from another account; log in again for {owner}"
    )]
    Tampered { owner: String, field: &'static str },
    /// A token that cannot be one: empty, longer than any Upstox token, or with spaces or
    /// control characters. Nothing was stored.
    #[error(
        "refusing to store the {field} of {account}: {len} characters, with at most 4096 printable characters allowed; this is not an Upstox token"
    )]
    BadToken {
        account: String,
        field: &'static str,
        len: usize,
    },
    /// No such app.
    #[error("no app {0:?} in the vault")]
    NoSuchApp(String),
    /// No such account.
    #[error("no account {0:?} in the vault")]
    NoSuchAccount(String),
    /// A filesystem problem.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The store (SQLite or PostgreSQL): a foreign or damaged file, an unreachable database, a
    /// lock held too long.
    #[error(transparent)]
    Store(#[from] stoxide_store::Error),
    /// An account's base URL the client cannot use.
    #[error("{0}")]
    BadBaseUrl(String),
    /// A token file that cannot be read as a token.
    #[error("{path}: {problem}")]
    BadTokenFile { path: PathBuf, problem: String },
}

/// The vault's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Whether trying again later may help (a locked database), as opposed to a fix by the user.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}
