//! Signed-in browsers (`web_sessions`), kept so a restart signs nobody out. Rows are keyed by
//! the SHA-256 of the session id, never the id itself.

use sqlx::FromRow;

use crate::error::Result;
use crate::{Store, with_pool};

/// One session.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct SessionRow {
    /// Hex SHA-256 of the session id (the cookie value).
    pub id_hash: String,
    pub username: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub flash: Option<String>,
}

impl Store {
    /// Stores a new session.
    ///
    /// # Errors
    /// Database errors (a duplicate id among them).
    pub async fn put_session(&self, s: &SessionRow) -> Result<()> {
        with_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO web_sessions (id_hash, username, created_at, expires_at, last_seen_at, flash)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.username)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.last_seen_at)
        .bind(&s.flash)
        .execute(p)
        .await?.rows_affected());
        Ok(())
    }

    /// The session, if it has not expired by `now`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM web_sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(p)
            .await?),
        )
    }

    /// A user's live sessions, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sessions_of(&self, username: &str, now: i64) -> Result<Vec<SessionRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM web_sessions WHERE username = $1 AND expires_at > $2 ORDER BY created_at DESC",
        )
        .bind(username)
        .bind(now)
        .fetch_all(p)
        .await?))
    }

    /// Records that the session was used.
    ///
    /// # Errors
    /// Database errors.
    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<()> {
        with_pool!(&self.pool, p => sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(p)
            .await?.rows_affected());
        Ok(())
    }

    /// Ends a session; false when there was none.
    ///
    /// # Errors
    /// Database errors.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let n = with_pool!(&self.pool, p => sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Forgets the sessions that expired by `now`; answers how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_sessions(&self, now: i64) -> Result<u64> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()),
        )
    }

    /// Sets (or clears) the session's message for its next page.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_flash(&self, id_hash: &str, flash: Option<&str>) -> Result<()> {
        with_pool!(&self.pool, p => sqlx::query("UPDATE web_sessions SET flash = $1 WHERE id_hash = $2")
            .bind(flash)
            .bind(id_hash)
            .execute(p)
            .await?.rows_affected());
        Ok(())
    }

    /// The session's message, cleared as it is read.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_flash(&self, id_hash: &str) -> Result<Option<String>> {
        let flash: Option<Option<String>> = with_pool!(&self.pool, p => sqlx::query_scalar(
            "SELECT flash FROM web_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(p)
        .await?);
        let flash = flash.flatten();
        if flash.is_some() {
            self.set_flash(id_hash, None).await?;
        }
        Ok(flash)
    }
}
