//! The PostgreSQL backend: a database several machines share. Migrations run under sqlx's
//! advisory lock, so nodes starting together apply each one once.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Error, Result};
use crate::location::redact;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connects to `url`; `None` when the database holds no stoxide schema yet and `create` is false.
pub(crate) async fn open(url: &SecretString, create: bool) -> Result<Option<PgPool>> {
    let shown = redact(url.expose_secret());
    let options: PgConnectOptions = url
        .expose_secret()
        .parse()
        .map_err(|e: sqlx::Error| Error::BadUrl(format!("{shown} is not a usable PostgreSQL URL: {e}")))?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| Error::Connect {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
    if !create {
        let present: Option<String> = sqlx::query_scalar("SELECT to_regclass('vault_meta')::text")
            .fetch_one(&pool)
            .await?;
        if present.is_none() {
            pool.close().await;
            return Ok(None);
        }
    }
    MIGRATOR.run(&pool).await?;
    Ok(Some(pool))
}
