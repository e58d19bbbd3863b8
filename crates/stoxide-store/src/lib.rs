//! `stoxide-store`: the one interface to what stoxide keeps — apps, accounts and their sealed
//! tokens, dashboard sessions, the portal's people and invitations, and the engine's
//! strategies, subscriptions, intents, positions and audit — over two
//! real backends: SQLite in the data directory (the embedded default) and PostgreSQL
//! (`STOXIDE_DATABASE_URL=postgres://…`) for nodes that share one database.
//!
//! - [`Store`]: cheap to clone (a pool inside), opened from a [`Location`]. Every query is
//!   written once, with `$1` parameters both dialects accept, and run on whichever pool the
//!   store holds; each backend has its own migrations folder (`migrations/sqlite`,
//!   `migrations/postgres`).
//! - [`Tx`]: a write transaction. [`TxMode::Write`] for values sealed under the current key,
//!   [`TxMode::Rekey`] for re-sealing everything: a rekey excludes every write (SQLite's write
//!   lock; a PostgreSQL advisory lock, shared by writes and exclusive for a rekey).
//! - The store keeps bytes: it never sees a plaintext secret. Sealing (cipher and keys) is
//!   `stoxide-vault`'s.
//! - [`lock`]: named OS file locks on a data directory.
//!
//! Tests: `cargo test -p stoxide-store` runs the contract suite against SQLite and against the
//! PostgreSQL at `STOXIDE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`;
//! each test creates and drops its own database). `scripts/test.sh` starts PostgreSQL first.

mod cluster;
mod engine;
mod error;
mod location;
pub mod lock;
mod notifications;
mod people;
mod postgres;
mod sessions;
mod sqlite;
mod vault;

use sqlx::postgres::{PgPool, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool};

pub use cluster::{EgressRow, LeaseRow, NodeRow};
pub use engine::{
    AuditDraft, AuditHead, AuditRow, Chain, EngineWrite, IntentRow, IntentUpdate, PositionRow, SignalRow, StateChange,
    StrategyRow, SubscriptionRow, TERMINAL_INTENT_STATES, TradingStateRow, WriteOutcome,
};
pub use error::{Error, Result};
pub use location::{DATABASE_URL_ENV, Location, SQLITE_FILE};
pub use notifications::NotificationSettingsRow;
pub use people::{InvitationRow, PersonRow};
pub use sessions::SessionRow;
pub use sqlite::{create_private_dir, sync_dir};
pub use vault::{AccountRow, AppRow, SealedCell, SealedField, TokenRow};

/// The pool of whichever backend the store uses.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the pool, whichever backend it is: the body is compiled once
/// per backend, so one query text serves both.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs `$body` with `$c` bound to the transaction's connection, whichever backend it is.
macro_rules! with_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use with_tx;

/// The store. Clones share one pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    location: Location,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// What a write transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Writes values sealed under the current key; runs beside other writes (serialised by
    /// SQLite), never beside a rekey.
    Write,
    /// Re-seals every value under a new key; runs alone.
    Rekey,
    /// Appends to a chain (the audit trail): one append at a time.
    Append,
}

/// The advisory lock id that PostgreSQL writes share and a rekey holds alone
/// (`"stoxvalt"` as a big-endian integer).
const PG_KEY_LOCK: i64 = 0x7374_6f78_7661_6c74;
/// The advisory lock id audit appends hold alone (`"stoxaudt"`).
const PG_AUDIT_LOCK: i64 = 0x7374_6f78_6175_6474;

enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A write transaction; dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: TxInner,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

impl Store {
    /// Opens the store at `location`, creating it (directory 0700, file 0600, schema) with
    /// `create`; `None` when there is none and `create` is false. Opening never writes over a
    /// file that is not a stoxide database.
    ///
    /// # Errors
    /// A foreign or damaged file, an unreachable database, a failed migration, a lock held too
    /// long by another process.
    pub async fn open(location: &Location, create: bool) -> Result<Option<Self>> {
        let pool = match location {
            Location::Sqlite { dir } => sqlite::open(dir, create).await?.map(Pool::Sqlite),
            Location::Postgres { url } => postgres::open(url, create).await?.map(Pool::Postgres),
        };
        Ok(pool.map(|pool| Self {
            pool,
            location: location.clone(),
        }))
    }

    /// Where the store lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Closes the pool (SQLite: flushes the WAL). Other clones see a closed pool.
    pub async fn close(&self) {
        with_pool!(&self.pool, p => p.close().await);
    }

    /// Begins a write transaction (see [`TxMode`]).
    ///
    /// # Errors
    /// Database errors (SQLite: busy for over 5 s).
    pub async fn begin(&self, mode: TxMode) -> Result<Tx> {
        let inner = match &self.pool {
            // BEGIN IMMEDIATE takes SQLite's write lock now, so what the transaction reads
            // cannot change before it writes.
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                let (lock, id) = match mode {
                    TxMode::Write => ("SELECT pg_advisory_xact_lock_shared($1)", PG_KEY_LOCK),
                    TxMode::Rekey => ("SELECT pg_advisory_xact_lock($1)", PG_KEY_LOCK),
                    TxMode::Append => ("SELECT pg_advisory_xact_lock($1)", PG_AUDIT_LOCK),
                };
                sqlx::query(lock).bind(id).execute(&mut *tx).await?;
                TxInner::Postgres(tx)
            }
        };
        Ok(Tx { inner })
    }
}

impl Tx {
    /// Commits.
    ///
    /// # Errors
    /// Database errors; nothing is committed then.
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Rolls back.
    ///
    /// # Errors
    /// Database errors.
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
