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
    KeyMissing { db: PathBuf, key_file: PathBuf },
    /// The key does not open this vault.
    #[error(
        "the vault key from {source_name} does not open {db}: it was created with another key; use the key it was created with"
    )]
    WrongKey { db: PathBuf, source_name: String },
    /// The database file is not a vault (or is damaged).
    #[error(
        "the vault {path} is damaged or not a stoxide vault ({detail}); restore it from a backup, or move it away and log in again. It was left untouched"
    )]
    Corrupt { path: PathBuf, detail: String },
    /// The file at the vault's path is not a stoxide vault.
    #[error(
        "{path} is not a stoxide vault ({detail}); it was left untouched: move it away, or point --data-dir / STOXIDE_DATA_DIR elsewhere"
    )]
    NotAVault { path: PathBuf, detail: String },
    /// Another process held the vault's lock for too long.
    #[error(
        "the vault is busy: another stoxide process has held {path} for {waited:?} (a key rotation?); try again when it has finished"
    )]
    Locked { path: PathBuf, waited: std::time::Duration },
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
    /// No such account.
    #[error("no account {0:?} in the vault; `stoxide token status --all` lists them, `stoxide login` adds one")]
    NoSuchAccount(String),
    /// A filesystem problem.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A database problem.
    #[error("vault database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("vault schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
        matches!(
            self,
            Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) | Self::Locked { .. }
        )
    }
}
