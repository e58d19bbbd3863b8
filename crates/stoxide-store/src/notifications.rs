//! What each portal person wants to be told and how (`notification_settings`), and which
//! notifications went out (`notifications_sent`, so each is sent once).

use sqlx::FromRow;

use crate::error::Result;
use crate::{Store, with_pool};

/// One person's notification settings.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct NotificationSettingsRow {
    pub person_id: String,
    /// 1: by email to their sign-in address.
    pub email: i64,
    pub webhook_url: Option<String>,
    /// JSON array of event kinds.
    pub events: String,
    pub updated_at: i64,
}

impl Store {
    /// Sets (or replaces) a person's notification settings.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_notification_settings(&self, r: &NotificationSettingsRow) -> Result<()> {
        with_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO notification_settings (person_id, email, webhook_url, events, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (person_id) DO UPDATE SET email = excluded.email,
               webhook_url = excluded.webhook_url, events = excluded.events, updated_at = excluded.updated_at",
        )
        .bind(&r.person_id)
        .bind(r.email)
        .bind(&r.webhook_url)
        .bind(&r.events)
        .bind(r.updated_at)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A person's notification settings.
    ///
    /// # Errors
    /// Database errors.
    pub async fn notification_settings(&self, person_id: &str) -> Result<Option<NotificationSettingsRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM notification_settings WHERE person_id = $1",
        )
        .bind(person_id)
        .fetch_optional(p)
        .await?))
    }

    /// Everyone's notification settings.
    ///
    /// # Errors
    /// Database errors.
    pub async fn all_notification_settings(&self) -> Result<Vec<NotificationSettingsRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM notification_settings ORDER BY person_id",
        )
        .fetch_all(p)
        .await?))
    }

    /// Claims the notification `about` for `person_id`: true the first time (send it), false
    /// when it was claimed before (already sent, by this process or another).
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_notification(&self, person_id: &str, about: &str, now: i64) -> Result<bool> {
        let n = with_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO notifications_sent (person_id, about, sent_at) VALUES ($1, $2, $3)
             ON CONFLICT (person_id, about) DO NOTHING",
        )
        .bind(person_id)
        .bind(about)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Intents that changed at or after `since_ms`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn intents_changed_since(&self, since_ms: i64, limit: i64) -> Result<Vec<crate::IntentRow>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_as(
            "SELECT * FROM intents WHERE updated_at >= $1 ORDER BY updated_at, tag LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }
}
