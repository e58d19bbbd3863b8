//! The store's one error type. Messages name the file or database and the fix; none carries a
//! secret (a database URL is shown without its password).

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file at the database's path is not a stoxide database.
    #[error(
        "{path} is not a stoxide vault ({detail}); it was left untouched: move it away, or use another data directory"
    )]
    NotAVault { path: PathBuf, detail: String },
    /// The database file is damaged.
    #[error(
        "the vault {path} is damaged or not a stoxide vault ({detail}); restore it from a backup, or move it away and log in again. It was left untouched"
    )]
    Corrupt { path: PathBuf, detail: String },
    /// Another process held a lock for too long.
    #[error(
        "the vault is busy: another stoxide process has held {path} for {waited:?} (a key rotation?); try again when it has finished"
    )]
    Locked { path: PathBuf, waited: std::time::Duration },
    /// `STOXIDE_DATABASE_URL` is not a database URL we can use.
    #[error("{0}")]
    BadUrl(String),
    /// The PostgreSQL server cannot be reached or refused us.
    #[error("cannot connect to the database {url}: {detail}; check that PostgreSQL runs there and the URL is right")]
    Connect { url: String, detail: String },
    /// A filesystem problem.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A database problem.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database schema migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Whether trying again later may help (a busy database, a lock held by another process).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) | Self::Locked { .. } | Self::Connect { .. }
        )
    }
}
