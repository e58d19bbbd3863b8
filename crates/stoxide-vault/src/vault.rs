//! The vault: a SQLite database (sqlx, migrations embedded) in the data directory, with every
//! token and app secret sealed by [`Cipher`]. Only this module ever holds plaintext secrets,
//! and it hands them out as `SecretString`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Acquire, Row};

use crate::account::{Account, AppMode, AppRecord, Check, NewApp, NewToken, TokenOrigin};
use crate::cipher::{Cipher, Owner};
use crate::error::{Error, Result};
use crate::key::{self, KeySource, VaultKey};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const DB_FILE: &str = "vault.db";
const KEY_FILE: &str = "vault.key";
/// The key being rotated to, until the rotation's last step renames it over `vault.key`.
const NEXT_KEY_FILE: &str = "vault.key.next";
const CANARY: &[u8] = b"stoxide vault key check";
const CANARY_OWNER: Owner<'static> = Owner {
    table: "vault_meta",
    id: "key_check",
    field: "value",
};

/// The default data directory: `STOXIDE_DATA_DIR`, else `$XDG_DATA_HOME/stoxide`, else
/// `~/.local/share/stoxide`.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("STOXIDE_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))?;
    Some(base.join("stoxide"))
}

/// An account id with its sealed access and extended tokens.
type AccountSecrets = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets re-encrypted.
    pub secrets: usize,
    /// Where the new key lives.
    pub key_source: KeySource,
}

/// An open vault.
pub struct Vault {
    pool: SqlitePool,
    cipher: Cipher,
    data_dir: PathBuf,
    key_source: KeySource,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("data_dir", &self.data_dir)
            .field("key_source", &self.key_source)
            .finish_non_exhaustive()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn is_corruption(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("26" | "11")),
        _ => false,
    }
}

impl Vault {
    /// Opens the vault in `data_dir`, creating the directory (0700), the database and the key
    /// file (0600) on first use.
    ///
    /// # Errors
    /// A damaged database, a missing or wrong key, filesystem errors.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_inner(data_dir, true)
            .await?
            .ok_or_else(|| Error::KeyMissing {
                db: data_dir.join(DB_FILE),
                key_file: data_dir.join(KEY_FILE),
            })
    }

    /// Opens the vault only if it exists (commands that read must not create one).
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub async fn open_existing(data_dir: &Path) -> Result<Option<Self>> {
        Self::open_inner(data_dir, false).await
    }

    /// Whether a vault database exists in `data_dir`.
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join(DB_FILE).exists()
    }

    async fn open_inner(data_dir: &Path, create: bool) -> Result<Option<Self>> {
        let db = data_dir.join(DB_FILE);
        if !db.exists() {
            if !create {
                return Ok(None);
            }
            create_private_dir(data_dir)?;
            create_private_file(&db)?;
        } else {
            check_sqlite_header(&db)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(Error::Database)?
            .filename(&db)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| corrupt_or(&db, e))?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) if is_corruption(&inner) => Error::Corrupt {
                path: db.clone(),
                detail: inner.to_string(),
            },
            other => Error::Migrate(other),
        })?;

        let canary: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM vault_meta WHERE name = 'key_check'")
            .fetch_optional(&pool)
            .await
            .map_err(|e| corrupt_or(&db, e))?;
        let key_file = data_dir.join(KEY_FILE);
        let next_file = data_dir.join(NEXT_KEY_FILE);

        let (key, key_source) = match key::key_from_env(key::KEY_ENV)? {
            Some(k) => (k, KeySource::Env),
            None if key_file.exists() => (key::read_key_file(&key_file)?, KeySource::File(key_file.clone())),
            None if canary.is_some() => return Err(Error::KeyMissing { db, key_file }),
            None => {
                create_private_dir(data_dir)?;
                let k = VaultKey::generate();
                key::write_key_file(&key_file, &k)?;
                tracing::info!(key_file = %key_file.display(), "created a new vault key");
                (k, KeySource::File(key_file.clone()))
            }
        };
        let mut cipher = Cipher::new(&key);
        match canary {
            None => {
                let sealed = cipher.seal(CANARY_OWNER, CANARY);
                sqlx::query("INSERT INTO vault_meta (name, value) VALUES ('key_check', ?)")
                    .bind(sealed)
                    .execute(&pool)
                    .await?;
            }
            Some(blob) if cipher.open(CANARY_OWNER, &blob).is_some() => {
                if next_file.exists() {
                    // A rotation stopped before its commit: the vault is still under this key.
                    tracing::warn!("removing {} left by an interrupted key rotation", next_file.display());
                    std::fs::remove_file(&next_file).map_err(|e| Error::io("cannot remove", &next_file, e))?;
                }
            }
            Some(blob) => {
                let next = match &key_source {
                    KeySource::File(_) if next_file.exists() => Some(key::read_key_file(&next_file)?),
                    KeySource::Env => key::key_from_env(key::NEW_KEY_ENV)?,
                    KeySource::File(_) => None,
                };
                let next_cipher = next.as_ref().map(Cipher::new);
                match (next_cipher, &key_source) {
                    (Some(c), KeySource::File(_)) if c.open(CANARY_OWNER, &blob).is_some() => {
                        // The rotation committed but stopped before renaming the new key into place.
                        std::fs::rename(&next_file, &key_file)
                            .map_err(|e| Error::io("cannot finish the key rotation by renaming", &next_file, e))?;
                        key::sync_dir(data_dir).map_err(|e| Error::io("cannot sync", data_dir, e))?;
                        tracing::warn!(
                            "finished an interrupted key rotation: {} is the vault key now",
                            key_file.display()
                        );
                        cipher = c;
                    }
                    (Some(c), KeySource::Env) if c.open(CANARY_OWNER, &blob).is_some() => {
                        return Err(Error::WrongKey {
                            db,
                            source_name: format!(
                                "{} (the vault was rotated to {}; set {} to that key)",
                                key::KEY_ENV,
                                key::NEW_KEY_ENV,
                                key::KEY_ENV
                            ),
                        });
                    }
                    _ => {
                        return Err(Error::WrongKey {
                            db,
                            source_name: key_source.to_string(),
                        });
                    }
                }
            }
        }
        Ok(Some(Self {
            pool,
            cipher,
            data_dir: data_dir.to_owned(),
            key_source,
        }))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    /// Where the key came from.
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// Closes the pool (flushes the WAL).
    pub async fn close(self) {
        self.pool.close().await;
    }

    fn open_secret(&self, owner: Owner<'_>, blob: Option<Vec<u8>>) -> Result<Option<SecretString>> {
        let Some(blob) = blob else { return Ok(None) };
        let plain = self.cipher.open(owner, &blob).ok_or_else(|| Error::Tampered {
            owner: owner.id.to_owned(),
            field: owner.field,
        })?;
        let text = std::str::from_utf8(&plain).map_err(|_| Error::Tampered {
            owner: owner.id.to_owned(),
            field: owner.field,
        })?;
        Ok(Some(SecretString::from(text.to_owned())))
    }

    /// Stores (or replaces) an app's credentials.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_app(&self, app: &NewApp) -> Result<AppRecord> {
        let sealed = app.secret.as_ref().map(|s| {
            self.cipher.seal(
                Owner {
                    table: "apps",
                    id: &app.client_id,
                    field: "secret",
                },
                s.expose_secret().as_bytes(),
            )
        });
        let now = ms(Utc::now());
        sqlx::query(
            "INSERT INTO apps (client_id, secret, redirect_uri, mode, base_url, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (client_id) DO UPDATE SET
               secret = COALESCE(excluded.secret, apps.secret), redirect_uri = excluded.redirect_uri,
               mode = excluded.mode, base_url = excluded.base_url, updated_at = excluded.updated_at",
        )
        .bind(&app.client_id)
        .bind(sealed)
        .bind(&app.redirect_uri)
        .bind(app.mode.as_str())
        .bind(&app.base_url)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.app(&app.client_id)
            .await?
            .ok_or_else(|| Error::Database(sqlx::Error::RowNotFound))
    }

    fn app_row(row: &SqliteRow) -> Result<AppRecord> {
        Ok(AppRecord {
            client_id: row.try_get("client_id")?,
            redirect_uri: row.try_get("redirect_uri")?,
            mode: AppMode::parse(row.try_get::<&str, _>("mode")?),
            base_url: row.try_get("base_url")?,
            has_secret: row.try_get::<Option<Vec<u8>>, _>("secret")?.is_some(),
        })
    }

    /// A stored app, without its secret.
    ///
    /// # Errors
    /// Database errors.
    pub async fn app(&self, client_id: &str) -> Result<Option<AppRecord>> {
        let row = sqlx::query("SELECT * FROM apps WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::app_row).transpose()
    }

    /// Every stored app.
    ///
    /// # Errors
    /// Database errors.
    pub async fn apps(&self) -> Result<Vec<AppRecord>> {
        let rows = sqlx::query("SELECT * FROM apps ORDER BY client_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::app_row).collect()
    }

    /// An app's secret, decrypted.
    ///
    /// # Errors
    /// [`Error::Tampered`] when it does not decrypt.
    pub async fn app_secret(&self, client_id: &str) -> Result<Option<SecretString>> {
        let blob: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT secret FROM apps WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        self.open_secret(
            Owner {
                table: "apps",
                id: client_id,
                field: "secret",
            },
            blob.flatten(),
        )
    }

    /// Stores a token for an account (creating the account), replacing any earlier token.
    ///
    /// # Errors
    /// Database errors.
    pub async fn store_token(&self, t: &NewToken) -> Result<Account> {
        let id = t.account_id.as_str();
        let access = self.cipher.seal(
            Owner {
                table: "accounts",
                id,
                field: "access_token",
            },
            t.access_token.expose_secret().as_bytes(),
        );
        let extended = t.extended_token.as_ref().map(|e| {
            self.cipher.seal(
                Owner {
                    table: "accounts",
                    id,
                    field: "extended_token",
                },
                e.expose_secret().as_bytes(),
            )
        });
        let expires = t.expires_at.unwrap_or_else(|| upstox_types::token_expiry(t.issued_at));
        let now = ms(Utc::now());
        sqlx::query(
            "INSERT INTO accounts (id, client_id, user_name, base_url, access_token, extended_token, issued_at,
                                   expires_at, source, checked_at, check_result, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
               client_id = COALESCE(excluded.client_id, accounts.client_id),
               user_name = COALESCE(excluded.user_name, accounts.user_name),
               base_url = excluded.base_url, access_token = excluded.access_token,
               extended_token = excluded.extended_token, issued_at = excluded.issued_at,
               expires_at = excluded.expires_at, source = excluded.source,
               checked_at = NULL, check_result = NULL, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(&t.client_id)
        .bind(&t.user_name)
        .bind(&t.base_url)
        .bind(access)
        .bind(extended)
        .bind(ms(t.issued_at))
        .bind(ms(expires))
        .bind(t.origin.as_str())
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        tracing::info!(account = id, origin = t.origin.as_str(), "stored a token");
        self.account(id)
            .await?
            .ok_or_else(|| Error::NoSuchAccount(id.to_owned()))
    }

    /// Stores a token that Upstox has just issued or accepted, with a valid check dated now.
    ///
    /// # Errors
    /// Database errors.
    pub async fn store_checked(&self, t: &NewToken) -> Result<Account> {
        let mut account = self.store_token(t).await?;
        let check = Check {
            at: Utc::now(),
            outcome: crate::account::CheckOutcome::Valid,
        };
        self.record_check(&account.id, &check).await?;
        account.last_check = Some(check);
        Ok(account)
    }

    fn account_row(row: &SqliteRow) -> Result<Account> {
        let check_at = from_ms(row.try_get("checked_at")?);
        let check_json: Option<String> = row.try_get("check_result")?;
        let last_check = match (check_at, check_json) {
            (Some(at), Some(json)) => serde_json::from_str(&json).ok().map(|outcome| Check { at, outcome }),
            _ => None,
        };
        Ok(Account {
            id: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            user_name: row.try_get("user_name")?,
            base_url: row.try_get("base_url")?,
            has_token: row.try_get::<Option<Vec<u8>>, _>("access_token")?.is_some(),
            has_extended_token: row.try_get::<Option<Vec<u8>>, _>("extended_token")?.is_some(),
            issued_at: from_ms(row.try_get("issued_at")?),
            expires_at: from_ms(row.try_get("expires_at")?),
            origin: row.try_get::<Option<&str>, _>("source")?.and_then(TokenOrigin::parse),
            last_check,
        })
    }

    /// One account, without secrets.
    ///
    /// # Errors
    /// Database errors.
    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::account_row).transpose()
    }

    /// Every account, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query("SELECT * FROM accounts ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::account_row).collect()
    }

    /// The account's access token, decrypted.
    ///
    /// # Errors
    /// [`Error::NoSuchAccount`], [`Error::Tampered`].
    pub async fn access_token(&self, id: &str) -> Result<Option<SecretString>> {
        self.token_column(id, "access_token").await
    }

    /// The account's extended token, decrypted.
    ///
    /// # Errors
    /// [`Error::NoSuchAccount`], [`Error::Tampered`].
    pub async fn extended_token(&self, id: &str) -> Result<Option<SecretString>> {
        self.token_column(id, "extended_token").await
    }

    async fn token_column(&self, id: &str, field: &'static str) -> Result<Option<SecretString>> {
        let sql = if field == "extended_token" {
            "SELECT extended_token FROM accounts WHERE id = ?"
        } else {
            "SELECT access_token FROM accounts WHERE id = ?"
        };
        let blob: Option<Option<Vec<u8>>> = sqlx::query_scalar(sql).bind(id).fetch_optional(&self.pool).await?;
        let blob = blob.ok_or_else(|| Error::NoSuchAccount(id.to_owned()))?;
        self.open_secret(
            Owner {
                table: "accounts",
                id,
                field,
            },
            blob,
        )
    }

    /// Records the result of checking the token with Upstox.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_check(&self, id: &str, check: &Check) -> Result<()> {
        let json = serde_json::to_string(&check.outcome).unwrap_or_default();
        sqlx::query("UPDATE accounts SET checked_at = ?, check_result = ? WHERE id = ?")
            .bind(ms(check.at))
            .bind(json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Wipes the account's tokens (logout); the account and its app stay.
    ///
    /// # Errors
    /// [`Error::NoSuchAccount`].
    pub async fn wipe_token(&self, id: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE accounts SET access_token = NULL, extended_token = NULL, issued_at = NULL, expires_at = NULL,
               source = NULL, checked_at = NULL, check_result = NULL, updated_at = ? WHERE id = ?",
        )
        .bind(ms(Utc::now()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NoSuchAccount(id.to_owned()));
        }
        tracing::info!(account = id, "wiped the account's tokens");
        Ok(())
    }

    /// Re-encrypts every secret under a new key, crash-safe: the new key is written to
    /// `vault.key.next` first, every ciphertext and the key check change in one transaction, and
    /// only then is the new key renamed over `vault.key`. Opening the vault after a crash at any
    /// point finds the key that matches the committed data (see `open`).
    ///
    /// With the key in `STOXIDE_VAULT_KEY`, `new_key` (from `STOXIDE_VAULT_NEW_KEY`) is required
    /// and the caller switches the variable afterwards.
    ///
    /// # Errors
    /// A secret that does not decrypt (nothing changes then), filesystem and database errors.
    pub async fn rotate_key(&mut self, new_key: Option<VaultKey>) -> Result<Rotation> {
        let next_file = self.data_dir.join(NEXT_KEY_FILE);
        let key = match (&self.key_source, new_key) {
            (_, Some(k)) => k,
            (KeySource::Env, None) => {
                return Err(Error::BadKeyEnv {
                    var: key::NEW_KEY_ENV.to_owned(),
                });
            }
            (KeySource::File(_), None) => VaultKey::generate(),
        };
        if let KeySource::File(_) = self.key_source {
            key::write_key_file(&next_file, &key)?;
        }
        let new_cipher = Cipher::new(&key);
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut count = 0usize;

        let apps: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as("SELECT client_id, secret FROM apps")
            .fetch_all(&mut *tx)
            .await?;
        for (id, blob) in apps {
            let Some(blob) = blob else { continue };
            let owner = Owner {
                table: "apps",
                id: &id,
                field: "secret",
            };
            let plain = self.cipher.open(owner, &blob).ok_or_else(|| Error::Tampered {
                owner: id.clone(),
                field: "secret",
            })?;
            sqlx::query("UPDATE apps SET secret = ? WHERE client_id = ?")
                .bind(new_cipher.seal(owner, &plain))
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            count += 1;
        }
        let accounts: Vec<AccountSecrets> = sqlx::query_as("SELECT id, access_token, extended_token FROM accounts")
            .fetch_all(&mut *tx)
            .await?;
        for (id, access, extended) in accounts {
            let mut reseal = |field: &'static str, blob: Option<Vec<u8>>| -> Result<Option<Vec<u8>>> {
                let Some(blob) = blob else { return Ok(None) };
                let owner = Owner {
                    table: "accounts",
                    id: &id,
                    field,
                };
                let plain = self.cipher.open(owner, &blob).ok_or_else(|| Error::Tampered {
                    owner: id.clone(),
                    field,
                })?;
                count += 1;
                Ok(Some(new_cipher.seal(owner, &plain)))
            };
            let access = reseal("access_token", access)?;
            let extended = reseal("extended_token", extended)?;
            sqlx::query("UPDATE accounts SET access_token = ?, extended_token = ? WHERE id = ?")
                .bind(access)
                .bind(extended)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE vault_meta SET value = ? WHERE name = 'key_check'")
            .bind(new_cipher.seal(CANARY_OWNER, CANARY))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        drop(conn);

        if let KeySource::File(key_file) = &self.key_source {
            std::fs::rename(&next_file, key_file)
                .map_err(|e| Error::io("cannot move the new key into place from", &next_file, e))?;
            key::sync_dir(&self.data_dir).map_err(|e| Error::io("cannot sync", &self.data_dir, e))?;
        }
        self.cipher = new_cipher;
        tracing::info!(secrets = count, "rotated the vault key");
        Ok(Rotation {
            secrets: count,
            key_source: self.key_source.clone(),
        })
    }
}

fn corrupt_or(db: &Path, e: sqlx::Error) -> Error {
    if is_corruption(&e) {
        Error::Corrupt {
            path: db.to_owned(),
            detail: e.to_string(),
        }
    } else {
        Error::Database(e)
    }
}

/// A non-empty file that does not start with SQLite's header is not ours: refuse before
/// SQLite touches it.
fn check_sqlite_header(db: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(db).map_err(|e| Error::io("cannot open the vault", db, e))?;
    let n = f
        .read(&mut head)
        .map_err(|e| Error::io("cannot read the vault", db, e))?;
    if n == 0 {
        return Ok(());
    }
    if n < 16 || &head != b"SQLite format 3\0" {
        return Err(Error::Corrupt {
            path: db.to_owned(),
            detail: "it does not start with the SQLite header".into(),
        });
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io("cannot create the data directory", dir, e))
}

fn create_private_file(path: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map(drop)
        .map_err(|e| Error::io("cannot create the vault", path, e))
}
