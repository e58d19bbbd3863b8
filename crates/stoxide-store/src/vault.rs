//! The vault's tables: `vault_meta`, `apps`, `accounts`. Sealed columns hold opaque bytes.

use sqlx::FromRow;

use crate::error::Result;
use crate::{Store, Tx, with_pool, with_tx};

/// A stored app (its secret sealed).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AppRow {
    pub client_id: String,
    pub secret: Option<Vec<u8>>,
    pub redirect_uri: String,
    pub mode: String,
    pub base_url: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored account (its tokens sealed).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AccountRow {
    pub id: String,
    pub client_id: Option<String>,
    pub user_name: Option<String>,
    pub base_url: String,
    pub access_token: Option<Vec<u8>>,
    pub extended_token: Option<Vec<u8>>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub source: Option<String>,
    pub checked_at: Option<i64>,
    pub check_result: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new token for an account (creating the account); clears the last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub client_id: Option<String>,
    pub user_name: Option<String>,
    pub base_url: String,
    pub access_token: Vec<u8>,
    pub extended_token: Option<Vec<u8>>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub source: String,
    pub now: i64,
}

/// A column that holds a sealed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedField {
    AppSecret,
    AccessToken,
    ExtendedToken,
    /// The secret an external strategy signs its signals with.
    SigningSecret,
    /// A portal person's TOTP (two-factor) secret.
    TotpSecret,
}

impl SealedField {
    /// The table the column is in.
    pub const fn table(self) -> &'static str {
        match self {
            Self::AppSecret => "apps",
            Self::AccessToken | Self::ExtendedToken => "accounts",
            Self::SigningSecret => "signing_secrets",
            Self::TotpSecret => "people",
        }
    }

    /// The column's name.
    pub const fn column(self) -> &'static str {
        match self {
            Self::AppSecret | Self::SigningSecret => "secret",
            Self::AccessToken => "access_token",
            Self::ExtendedToken => "extended_token",
            Self::TotpSecret => "totp_sealed",
        }
    }

    const fn select(self) -> &'static str {
        match self {
            Self::AppSecret => "SELECT secret FROM apps WHERE client_id = $1",
            Self::AccessToken => "SELECT access_token FROM accounts WHERE id = $1",
            Self::ExtendedToken => "SELECT extended_token FROM accounts WHERE id = $1",
            Self::SigningSecret => "SELECT secret FROM signing_secrets WHERE strategy = $1",
            Self::TotpSecret => "SELECT totp_sealed FROM people WHERE id = $1",
        }
    }

    const fn update(self) -> &'static str {
        match self {
            Self::AppSecret => "UPDATE apps SET secret = $1 WHERE client_id = $2",
            Self::AccessToken => "UPDATE accounts SET access_token = $1 WHERE id = $2",
            Self::ExtendedToken => "UPDATE accounts SET extended_token = $1 WHERE id = $2",
            Self::SigningSecret => "UPDATE signing_secrets SET secret = $1 WHERE strategy = $2",
            Self::TotpSecret => "UPDATE people SET totp_sealed = $1 WHERE id = $2",
        }
    }
}

/// One sealed value and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCell {
    pub field: SealedField,
    /// The row's id (client id or account id).
    pub id: String,
    pub blob: Vec<u8>,
}

const ALL_SEALED: &str = "SELECT 'app' AS kind, client_id AS id, secret AS blob FROM apps WHERE secret IS NOT NULL
     UNION ALL SELECT 'access', id, access_token FROM accounts WHERE access_token IS NOT NULL
     UNION ALL SELECT 'extended', id, extended_token FROM accounts WHERE extended_token IS NOT NULL
     UNION ALL SELECT 'signing', strategy, secret FROM signing_secrets
     UNION ALL SELECT 'totp', id, totp_sealed FROM people WHERE totp_sealed IS NOT NULL";

fn cells(rows: Vec<(String, String, Vec<u8>)>) -> Vec<SealedCell> {
    rows.into_iter()
        .filter_map(|(kind, id, blob)| {
            let field = match kind.as_str() {
                "app" => SealedField::AppSecret,
                "access" => SealedField::AccessToken,
                "extended" => SealedField::ExtendedToken,
                "signing" => SealedField::SigningSecret,
                "totp" => SealedField::TotpSecret,
                _ => return None,
            };
            Some(SealedCell { field, id, blob })
        })
        .collect()
}

const UPSERT_APP: &str = "INSERT INTO apps (client_id, secret, redirect_uri, mode, base_url, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (client_id) DO UPDATE SET
       secret = COALESCE(excluded.secret, apps.secret), redirect_uri = excluded.redirect_uri,
       mode = excluded.mode, base_url = excluded.base_url, updated_at = excluded.updated_at";

const UPSERT_TOKEN: &str = "INSERT INTO accounts (id, client_id, user_name, base_url, access_token, extended_token,
                           issued_at, expires_at, source, checked_at, check_result, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $10)
     ON CONFLICT (id) DO UPDATE SET
       client_id = COALESCE(excluded.client_id, accounts.client_id),
       user_name = COALESCE(excluded.user_name, accounts.user_name),
       base_url = excluded.base_url, access_token = excluded.access_token,
       extended_token = excluded.extended_token, issued_at = excluded.issued_at,
       expires_at = excluded.expires_at, source = excluded.source,
       checked_at = NULL, check_result = NULL, updated_at = excluded.updated_at";

impl Store {
    /// A `vault_meta` value.
    ///
    /// # Errors
    /// Database errors.
    pub async fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_scalar("SELECT value FROM vault_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(p)
            .await?),
        )
    }

    /// One app.
    ///
    /// # Errors
    /// Database errors.
    pub async fn app(&self, client_id: &str) -> Result<Option<AppRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// Every app, by client id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn apps(&self) -> Result<Vec<AppRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM apps ORDER BY client_id")
            .fetch_all(p)
            .await?),
        )
    }

    /// One account.
    ///
    /// # Errors
    /// Database errors.
    pub async fn account(&self, id: &str) -> Result<Option<AccountRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?),
        )
    }

    /// Every account, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>> {
        Ok(
            with_pool!(&self.pool, p => sqlx::query_as("SELECT * FROM accounts ORDER BY id")
            .fetch_all(p)
            .await?),
        )
    }

    /// One sealed value: `None` when the row does not exist, `Some(None)` when the column is empty.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sealed(&self, field: SealedField, id: &str) -> Result<Option<Option<Vec<u8>>>> {
        Ok(with_pool!(&self.pool, p => sqlx::query_scalar(field.select())
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// Every sealed value (for counting them by key).
    ///
    /// # Errors
    /// Database errors.
    pub async fn sealed_cells(&self) -> Result<Vec<SealedCell>> {
        Ok(cells(
            with_pool!(&self.pool, p => sqlx::query_as(ALL_SEALED).fetch_all(p).await?),
        ))
    }

    /// Records a token check; false when there is no such account.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_check(&self, id: &str, at: i64, result_json: &str) -> Result<bool> {
        let done = with_pool!(&self.pool, p => sqlx::query("UPDATE accounts SET checked_at = $1, check_result = $2 WHERE id = $3")
            .bind(at)
            .bind(result_json)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        Ok(done > 0)
    }

    /// Wipes an account's tokens (logout); false when there is no such account.
    ///
    /// # Errors
    /// Database errors.
    pub async fn wipe_tokens(&self, id: &str, now: i64) -> Result<bool> {
        let done = with_pool!(&self.pool, p => sqlx::query(
            "UPDATE accounts SET access_token = NULL, extended_token = NULL, issued_at = NULL, expires_at = NULL,
               source = NULL, checked_at = NULL, check_result = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(p)
        .await?
        .rows_affected());
        Ok(done > 0)
    }
}

impl Tx {
    /// A `vault_meta` value, as this transaction sees it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn meta(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(
            with_tx!(&mut self.inner, c => sqlx::query_scalar("SELECT value FROM vault_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(c)
            .await?),
        )
    }

    /// Sets a `vault_meta` value.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_meta(&mut self, name: &str, value: &[u8]) -> Result<()> {
        with_tx!(&mut self.inner, c => sqlx::query(
            "INSERT INTO vault_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(c)
        .await?.rows_affected());
        Ok(())
    }

    /// Inserts or updates an app; an absent secret keeps the stored one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn upsert_app(&mut self, row: &AppRow) -> Result<()> {
        with_tx!(&mut self.inner, c => sqlx::query(UPSERT_APP)
            .bind(&row.client_id)
            .bind(&row.secret)
            .bind(&row.redirect_uri)
            .bind(&row.mode)
            .bind(&row.base_url)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(c)
            .await?.rows_affected());
        Ok(())
    }

    /// Stores (or replaces) the sealed signing secret of a strategy.
    ///
    /// # Errors
    /// Database errors.
    pub async fn upsert_signing_secret(&mut self, strategy: &str, blob: &[u8], now: i64) -> Result<()> {
        with_tx!(&mut self.inner, c => sqlx::query(
            "INSERT INTO signing_secrets (strategy, secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (strategy) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at",
        )
            .bind(strategy)
            .bind(blob)
            .bind(now)
            .execute(c)
            .await?.rows_affected());
        Ok(())
    }

    /// Stores a token for an account, creating the account.
    ///
    /// # Errors
    /// Database errors.
    pub async fn upsert_token(&mut self, row: &TokenRow) -> Result<()> {
        with_tx!(&mut self.inner, c => sqlx::query(UPSERT_TOKEN)
            .bind(&row.id)
            .bind(&row.client_id)
            .bind(&row.user_name)
            .bind(&row.base_url)
            .bind(&row.access_token)
            .bind(&row.extended_token)
            .bind(row.issued_at)
            .bind(row.expires_at)
            .bind(&row.source)
            .bind(row.now)
            .execute(c)
            .await?.rows_affected());
        Ok(())
    }

    /// Every sealed value, as this transaction sees it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sealed_cells(&mut self) -> Result<Vec<SealedCell>> {
        Ok(cells(
            with_tx!(&mut self.inner, c => sqlx::query_as(ALL_SEALED).fetch_all(c).await?),
        ))
    }

    /// Replaces one sealed value.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_sealed(&mut self, cell: &SealedCell) -> Result<()> {
        with_tx!(&mut self.inner, c => sqlx::query(cell.field.update())
            .bind(&cell.blob)
            .bind(&cell.id)
            .execute(c)
            .await?.rows_affected());
        Ok(())
    }
}
