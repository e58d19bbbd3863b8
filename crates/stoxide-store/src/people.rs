//! The portal's people (operators and clients), their single-use invitations, and which linked
//! Upstox accounts belong to whom. Passwords arrive as argon2id PHC strings and TOTP secrets
//! sealed: the store never sees either in clear. Invitation links are kept as the SHA-256 of
//! their secret.

use sqlx::FromRow;

use crate::error::Result;
use crate::{Store, with_pool};

/// One person.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct PersonRow {
    pub id: String,
    /// Unique, compared as given (callers lower-case it).
    pub email: String,
    pub name: String,
    /// `operator` or `client`.
    pub role: String,
    /// argon2id PHC string; `None` until the invitation is accepted.
    pub password_phc: Option<String>,
    /// The TOTP secret, sealed by the vault; `None` without two-factor.
    pub totp_sealed: Option<Vec<u8>>,
    /// 1 when an operator disabled the person (no sign-in, nothing traded for them).
    pub disabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One invitation link.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct InvitationRow {
    /// Hex SHA-256 of the link's secret.
    pub token_hash: String,
    pub person_id: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl Store {
    /// Adds a person; an email already in use is a database error (unique).
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_person(&self, p: &PersonRow) -> Result<()> {
        with_pool!(&self.pool, pool => sqlx::query(
            "INSERT INTO people (id, email, name, role, password_phc, totp_sealed, disabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(&p.email)
        .bind(&p.name)
        .bind(&p.role)
        .bind(&p.password_phc)
        .bind(&p.totp_sealed)
        .bind(p.disabled)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The person with this id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn person(&self, id: &str) -> Result<Option<PersonRow>> {
        Ok(
            with_pool!(&self.pool, pool => sqlx::query_as("SELECT * FROM people WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// The person with this email.
    ///
    /// # Errors
    /// Database errors.
    pub async fn person_by_email(&self, email: &str) -> Result<Option<PersonRow>> {
        Ok(
            with_pool!(&self.pool, pool => sqlx::query_as("SELECT * FROM people WHERE email = $1")
            .bind(email)
            .fetch_optional(pool)
            .await?),
        )
    }

    /// Everyone with `role` (or everyone), by email.
    ///
    /// # Errors
    /// Database errors.
    pub async fn people(&self, role: Option<&str>) -> Result<Vec<PersonRow>> {
        Ok(match role {
            Some(role) => with_pool!(&self.pool, pool => sqlx::query_as(
                "SELECT * FROM people WHERE role = $1 ORDER BY email",
            )
            .bind(role)
            .fetch_all(pool)
            .await?),
            None => with_pool!(&self.pool, pool => sqlx::query_as("SELECT * FROM people ORDER BY email")
                .fetch_all(pool)
                .await?),
        })
    }

    /// Sets a person's password (PHC); false when there is no such person. (The TOTP secret is
    /// the vault's to seal: `SealedField::TotpSecret`.)
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_credentials(&self, id: &str, password_phc: Option<&str>, now: i64) -> Result<bool> {
        let n = with_pool!(&self.pool, pool => sqlx::query(
            "UPDATE people SET password_phc = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(password_phc)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Disables (or enables) a person; false when there is no such person.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_disabled(&self, id: &str, disabled: bool, now: i64) -> Result<bool> {
        let n = with_pool!(&self.pool, pool => sqlx::query(
            "UPDATE people SET disabled = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(i64::from(disabled))
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Stores an invitation.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_invitation(&self, i: &InvitationRow) -> Result<()> {
        with_pool!(&self.pool, pool => sqlx::query(
            "INSERT INTO invitations (token_hash, person_id, created_by, created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&i.token_hash)
        .bind(&i.person_id)
        .bind(&i.created_by)
        .bind(i.created_at)
        .bind(i.expires_at)
        .bind(i.used_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Uses an invitation: marks it used and answers whose it is — once, and only before it
    /// expires (`None` for an unknown, used or expired link; all three look the same).
    ///
    /// # Errors
    /// Database errors.
    pub async fn use_invitation(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        Ok(with_pool!(&self.pool, pool => sqlx::query_scalar(
            "UPDATE invitations SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING person_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?))
    }

    /// Ties a linked Upstox account to a person; false when the account already belongs to
    /// someone (an account has one owner).
    ///
    /// # Errors
    /// Database errors.
    pub async fn link_account(&self, person_id: &str, account: &str, now: i64) -> Result<bool> {
        let n = with_pool!(&self.pool, pool => sqlx::query(
            "INSERT INTO person_accounts (person_id, account, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (account) DO NOTHING",
        )
        .bind(person_id)
        .bind(account)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// The accounts that belong to a person, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn accounts_of_person(&self, person_id: &str) -> Result<Vec<String>> {
        Ok(with_pool!(&self.pool, pool => sqlx::query_scalar(
            "SELECT account FROM person_accounts WHERE person_id = $1 ORDER BY account",
        )
        .bind(person_id)
        .fetch_all(pool)
        .await?))
    }

    /// Who an account belongs to.
    ///
    /// # Errors
    /// Database errors.
    pub async fn owner_of_account(&self, account: &str) -> Result<Option<String>> {
        Ok(with_pool!(&self.pool, pool => sqlx::query_scalar(
            "SELECT person_id FROM person_accounts WHERE account = $1",
        )
        .bind(account)
        .fetch_optional(pool)
        .await?))
    }
}
