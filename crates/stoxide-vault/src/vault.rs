//! The vault: a SQLite database (sqlx, migrations embedded) in the data directory, with every
//! token and app secret sealed by [`Cipher`]. Only this module ever holds plaintext secrets,
//! and it hands them out as `SecretString`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{Row, Transaction};

use crate::account::{Account, AppMode, AppRecord, Check, NewApp, NewToken, TokenOrigin};
use crate::cipher::{Cipher, Owner};
use crate::error::{Error, Result};
use crate::key::{self, KeySource, VaultKey};
use crate::lock::{self, Mode};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const DB_FILE: &str = "vault.db";
/// A vault being created, until it is complete and renamed to `vault.db`.
const NEW_DB_FILE: &str = "vault.db.new";
/// SQLite's application id in every vault's header ("STXV"), so a database of another program
/// at the vault's path is told apart before anything is written to it.
const APPLICATION_ID: u32 = 0x5354_5856;
const APPLICATION_ID_PRAGMA: &str = "PRAGMA application_id = 1398036566";
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
///
/// Several processes may share one vault: opening and re-reading the key hold the vault's file
/// lock shared, rotation and recovery hold it exclusively (see [`crate::lock`]), and a handle
/// whose key was rotated by another process re-reads it before it reads or writes a secret.
pub struct Vault {
    pool: SqlitePool,
    /// Replaced when another process rotates the key.
    cipher: RwLock<Arc<Cipher>>,
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
        }
        // Shared first: most opens only read. Anything that must be written to settle the vault
        // (creating it, adopting an older one, migrations, finishing or discarding an interrupted
        // rotation) is done only under the exclusive lock, after looking again.
        let mut mode = Mode::Shared;
        loop {
            let guard = lock::lock(data_dir, mode).await?;
            let opened = Self::try_open(data_dir, &db, create, mode).await?;
            drop(guard);
            match opened {
                Opened::Vault(v) => return Ok(Some(*v)),
                Opened::Absent => return Ok(None),
                Opened::NeedsWrite => mode = Mode::Exclusive,
            }
        }
    }

    /// One attempt at opening under the lock held in `mode`.
    async fn try_open(data_dir: &Path, db: &Path, create: bool, mode: Mode) -> Result<Opened> {
        let may_write = mode == Mode::Exclusive;
        if !db.exists() {
            if !create {
                return Ok(Opened::Absent);
            }
            if !may_write {
                return Ok(Opened::NeedsWrite);
            }
            create_database(data_dir, db).await?;
        }
        let identity = identify(db)?;
        if identity == Identity::Legacy && !may_write {
            return Ok(Opened::NeedsWrite);
        }
        make_private(db)?;
        let pool = connect(db).await?;
        let settled = async {
            if identity == Identity::Legacy {
                adopt_legacy(&pool, db).await?;
            }
            if migrations_pending(&pool).await? {
                if !may_write {
                    return Ok(None);
                }
                migrate(&pool, db).await?;
            }
            settle_key(&pool, data_dir, may_write).await
        }
        .await;
        match settled {
            Ok(Some((cipher, key_source))) => Ok(Opened::Vault(Box::new(Self {
                pool,
                cipher: RwLock::new(Arc::new(cipher)),
                data_dir: data_dir.to_owned(),
                key_source,
            }))),
            Ok(None) => {
                pool.close().await;
                Ok(Opened::NeedsWrite)
            }
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    /// The cipher the committed data is sealed under, as this handle last read it.
    fn cipher(&self) -> Arc<Cipher> {
        Arc::clone(&self.cipher.read())
    }

    /// Re-reads the key after another process rotated it (or crashed rotating it).
    async fn refresh_key(&self) -> Result<()> {
        let mut mode = Mode::Shared;
        loop {
            let _guard = lock::lock(&self.data_dir, mode).await?;
            match settle_key(&self.pool, &self.data_dir, mode == Mode::Exclusive).await? {
                Some((cipher, _)) => {
                    *self.cipher.write() = Arc::new(cipher);
                    return Ok(());
                }
                None => mode = Mode::Exclusive,
            }
        }
    }

    /// Whether the key changed under this handle since it last read it; re-reads it if so.
    async fn key_changed(&self) -> Result<bool> {
        let cipher = self.cipher();
        let mut conn = self.pool.acquire().await?;
        if canary_opens(&mut conn, &cipher).await? {
            return Ok(false);
        }
        drop(conn);
        self.refresh_key().await?;
        Ok(true)
    }

    /// Begins a write transaction that holds SQLite's write lock, with the cipher the committed
    /// data is sealed under. Checking the key inside the transaction means a handle that has not
    /// yet seen another process's rotation can never write a value sealed under the old key.
    async fn begin_write(&self) -> Result<(Transaction<'static, Sqlite>, Arc<Cipher>)> {
        for _ in 0..3 {
            let cipher = self.cipher();
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            if canary_opens(&mut tx, &cipher).await? {
                return Ok((tx, cipher));
            }
            tx.rollback().await?;
            self.refresh_key().await?;
        }
        Err(Error::WrongKey {
            db: self.db_path(),
            source_name: format!("{} (it keeps changing while this process writes)", self.key_source),
        })
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

    /// Reads one sealed column of one row (`None`: no such row) and opens it. A value sealed
    /// under a key this handle has not seen yet (another process rotated it) is read again
    /// after re-reading the key; only a value that no current key opens is [`Error::Tampered`].
    async fn read_sealed(&self, sql: &'static str, owner: Owner<'_>) -> Result<Option<Option<SecretString>>> {
        let mut retried = false;
        loop {
            let blob: Option<Option<Vec<u8>>> = sqlx::query_scalar(sql)
                .bind(owner.id)
                .fetch_optional(&self.pool)
                .await?;
            let Some(blob) = blob else { return Ok(None) };
            match self.open_secret(owner, blob) {
                Err(Error::Tampered { .. }) if !retried && self.key_changed().await? => retried = true,
                other => return other.map(Some),
            }
        }
    }

    fn open_secret(&self, owner: Owner<'_>, blob: Option<Vec<u8>>) -> Result<Option<SecretString>> {
        let Some(blob) = blob else { return Ok(None) };
        let plain = self.cipher().open(owner, &blob).ok_or_else(|| Error::Tampered {
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
        let (mut tx, cipher) = self.begin_write().await?;
        let sealed = app.secret.as_ref().map(|s| {
            cipher.seal(
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let owner = Owner {
            table: "apps",
            id: client_id,
            field: "secret",
        };
        Ok(self
            .read_sealed("SELECT secret FROM apps WHERE client_id = ?", owner)
            .await?
            .flatten())
    }

    /// Stores a token for an account (creating the account), replacing any earlier token.
    ///
    /// # Errors
    /// Database errors.
    pub async fn store_token(&self, t: &NewToken) -> Result<Account> {
        let id = t.account_id.as_str();
        // Every token enters here, whatever its channel: one that could not be a header value
        // of a sane size would break every later call.
        for (field, token) in [
            ("access token", Some(&t.access_token)),
            ("extended token", t.extended_token.as_ref()),
        ] {
            let Some(token) = token else { continue };
            let text = token.expose_secret();
            if text.is_empty()
                || text.len() > crate::token_file::MAX_TOKEN_LEN
                || !text.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(Error::BadToken {
                    account: id.to_owned(),
                    field,
                    len: text.len(),
                });
            }
        }
        let (mut tx, cipher) = self.begin_write().await?;
        let access = cipher.seal(
            Owner {
                table: "accounts",
                id,
                field: "access_token",
            },
            t.access_token.expose_secret().as_bytes(),
        );
        let extended = t.extended_token.as_ref().map(|e| {
            cipher.seal(
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let owner = Owner {
            table: "accounts",
            id,
            field,
        };
        self.read_sealed(sql, owner)
            .await?
            .ok_or_else(|| Error::NoSuchAccount(id.to_owned()))
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

    /// Re-encrypts every secret under a new key, crash-safe and safe beside other processes.
    ///
    /// Under the vault's exclusive lock (other opens and rotations wait): the key is re-read
    /// (another process may have rotated it since this handle opened), the new key is written
    /// to `vault.key.next`, every ciphertext and the key check change in one transaction, and
    /// only then is the new key renamed over `vault.key`; the old key stays in place until that
    /// commit. Opening the vault after a crash at any point finds the key that matches the
    /// committed data (see `settle_key`).
    ///
    /// With the key in `STOXIDE_VAULT_KEY`, `new_key` (from `STOXIDE_VAULT_NEW_KEY`) is required
    /// and the caller switches the variable afterwards.
    ///
    /// # Errors
    /// A secret that does not decrypt (nothing changes then), [`Error::Locked`] when another
    /// process holds the vault for over a minute, filesystem and database errors.
    pub async fn rotate_key(&self, new_key: Option<VaultKey>) -> Result<Rotation> {
        let key = match (&self.key_source, new_key) {
            (_, Some(k)) => k,
            (KeySource::Env, None) => {
                return Err(Error::BadKeyEnv {
                    var: key::NEW_KEY_ENV.to_owned(),
                });
            }
            (KeySource::File(_), None) => VaultKey::generate(),
        };
        let _guard = lock::lock(&self.data_dir, Mode::Exclusive).await?;
        let (current, _) = settle_key(&self.pool, &self.data_dir, true).await?.ok_or_else(|| {
            Error::Database(sqlx::Error::Protocol(
                "the key did not settle under the exclusive lock".into(),
            ))
        })?;
        let current = Arc::new(current);
        *self.cipher.write() = Arc::clone(&current);

        let next_file = self.data_dir.join(NEXT_KEY_FILE);
        if let KeySource::File(_) = self.key_source {
            key::write_key_file(&next_file, &key)?;
        }
        let new_cipher = Cipher::new(&key);
        let resealed = self.reseal_all(&current, &new_cipher).await;
        let count = match resealed {
            Ok(n) => n,
            Err(e) => {
                // Nothing was committed: the vault stays under the current key.
                if let KeySource::File(_) = self.key_source {
                    let _ = std::fs::remove_file(&next_file);
                }
                return Err(e);
            }
        };
        if let KeySource::File(key_file) = &self.key_source {
            std::fs::rename(&next_file, key_file)
                .map_err(|e| Error::io("cannot move the new key into place from", &next_file, e))?;
            key::sync_dir(&self.data_dir).map_err(|e| Error::io("cannot sync", &self.data_dir, e))?;
        }
        *self.cipher.write() = Arc::new(new_cipher);
        tracing::info!(secrets = count, "rotated the vault key");
        Ok(Rotation {
            secrets: count,
            key_source: self.key_source.clone(),
        })
    }

    /// Re-seals every secret and the key check from `old` to `new` in one write transaction.
    async fn reseal_all(&self, old: &Cipher, new: &Cipher) -> Result<usize> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if !canary_opens(&mut tx, old).await? {
            return Err(Error::WrongKey {
                db: self.db_path(),
                source_name: self.key_source.to_string(),
            });
        }
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
            let plain = old.open(owner, &blob).ok_or_else(|| Error::Tampered {
                owner: id.clone(),
                field: "secret",
            })?;
            sqlx::query("UPDATE apps SET secret = ? WHERE client_id = ?")
                .bind(new.seal(owner, &plain))
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
                let plain = old.open(owner, &blob).ok_or_else(|| Error::Tampered {
                    owner: id.clone(),
                    field,
                })?;
                count += 1;
                Ok(Some(new.seal(owner, &plain)))
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
            .bind(new.seal(CANARY_OWNER, CANARY))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(count)
    }
}

/// The outcome of one attempt at opening.
enum Opened {
    Vault(Box<Vault>),
    Absent,
    /// Something must be written first: try again under the exclusive lock.
    NeedsWrite,
}

/// What the database file's header says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Marked with our application id.
    Ours,
    /// No application id, in WAL mode: possibly a vault made before the id was set; its tables
    /// decide.
    Legacy,
}

/// Reads the 100-byte SQLite header and refuses a file that is not a vault: empty, not SQLite,
/// or a SQLite database of another program. Nothing is written.
fn identify(db: &Path) -> Result<Identity> {
    use std::io::Read;
    let not_ours = |detail: String| Error::NotAVault {
        path: db.to_owned(),
        detail,
    };
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(db)
        .and_then(|f| f.take(100).read_to_end(&mut head))
        .map_err(|e| Error::io("cannot read the vault", db, e))?;
    if head.is_empty() {
        return Err(not_ours("it is an empty file".into()));
    }
    if head.len() < 100 || !head.starts_with(b"SQLite format 3\0") {
        return Err(Error::Corrupt {
            path: db.to_owned(),
            detail: "it does not start with the SQLite header".into(),
        });
    }
    let app_id = u32::from_be_bytes([head[68], head[69], head[70], head[71]]);
    // Bytes 18 and 19 are the read and write format versions: 2 for WAL, which every vault uses.
    let wal = head[18] == 2 && head[19] == 2;
    match app_id {
        APPLICATION_ID => Ok(Identity::Ours),
        0 if wal => Ok(Identity::Legacy),
        0 => Err(not_ours("it is a SQLite database that stoxide did not create".into())),
        other => Err(not_ours(format!(
            "it is a SQLite database of another program (application id {other:#010x})"
        ))),
    }
}

/// Vault files are the owner's alone: a database adopted with a wider mode is narrowed, with
/// its WAL and shared-memory files.
fn make_private(db: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let path = PathBuf::from(name);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io("cannot make the vault private (chmod 600)", &path, e))?;
                tracing::warn!(path = %path.display(), "the vault file was readable by others; it is mode 0600 now");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

async fn connect(db: &Path) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(Error::Database)?
        .filename(db)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| corrupt_or(db, e))
}

/// Creates a new vault beside its final name and renames it into place once it is complete, so
/// `vault.db` is never an empty or half-made file. Called under the exclusive lock.
async fn create_database(data_dir: &Path, db: &Path) -> Result<()> {
    let tmp = data_dir.join(NEW_DB_FILE);
    for stale in [NEW_DB_FILE, "vault.db.new-wal", "vault.db.new-shm"] {
        let _ = std::fs::remove_file(data_dir.join(stale));
    }
    create_private_file(&tmp)?;
    let pool = connect(&tmp).await?;
    let made = async {
        sqlx::query(APPLICATION_ID_PRAGMA).execute(&pool).await?;
        migrate(&pool, &tmp).await
    }
    .await;
    // Closing the last connection checkpoints the WAL into the file before the rename.
    pool.close().await;
    made?;
    std::fs::rename(&tmp, db).map_err(|e| Error::io("cannot move the new vault into place", db, e))?;
    key::sync_dir(data_dir).map_err(|e| Error::io("cannot sync", data_dir, e))
}

/// A vault made before the application id existed has our tables and its key check; anything
/// else with no application id is another program's database. Called under the exclusive lock.
async fn adopt_legacy(pool: &SqlitePool, db: &Path) -> Result<()> {
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(pool)
        .await
        .map_err(|e| corrupt_or(db, e))?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    let ours = has("_sqlx_migrations") && has("vault_meta") && has("accounts") && has("apps");
    if !ours {
        let shown: Vec<&str> = tables.iter().map(String::as_str).take(8).collect();
        return Err(Error::NotAVault {
            path: db.to_owned(),
            detail: if shown.is_empty() {
                "it is a SQLite database with no tables, not one stoxide created".into()
            } else {
                format!(
                    "it is a SQLite database of another program (tables: {})",
                    shown.join(", ")
                )
            },
        });
    }
    sqlx::query(APPLICATION_ID_PRAGMA).execute(pool).await?;
    tracing::info!(db = %db.display(), "marked a vault made by an earlier version with stoxide's application id");
    Ok(())
}

async fn migrations_pending(pool: &SqlitePool) -> Result<bool> {
    let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
        .fetch_all(pool)
        .await
    {
        Ok(v) => v,
        // No table yet: nothing is applied.
        Err(sqlx::Error::Database(d)) if d.message().contains("no such table") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(MIGRATOR.iter().any(|m| !applied.contains(&m.version)))
}

async fn migrate(pool: &SqlitePool, db: &Path) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) if is_corruption(&inner) => Error::Corrupt {
            path: db.to_owned(),
            detail: inner.to_string(),
        },
        other => Error::Migrate(other),
    })
}

async fn canary_opens(conn: &mut SqliteConnection, cipher: &Cipher) -> Result<bool> {
    let blob: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM vault_meta WHERE name = 'key_check'")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(blob.is_some_and(|b| cipher.open(CANARY_OWNER, &b).is_some()))
}

/// Finds the key that opens the committed data: the environment's or the key file's, or the
/// next key of a rotation that committed but stopped before renaming it into place. Returns
/// `None` when something must be written first (a new key, the key check, finishing or
/// discarding an interrupted rotation) and `may_write` is false; with the exclusive lock held
/// (`may_write`), it writes it. Under the shared lock no rotation is running, so a
/// `vault.key.next` seen then is always a leftover of one that stopped.
async fn settle_key(pool: &SqlitePool, data_dir: &Path, may_write: bool) -> Result<Option<(Cipher, KeySource)>> {
    let db = data_dir.join(DB_FILE);
    let canary: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM vault_meta WHERE name = 'key_check'")
        .fetch_optional(pool)
        .await
        .map_err(|e| corrupt_or(&db, e))?;
    let key_file = data_dir.join(KEY_FILE);
    let next_file = data_dir.join(NEXT_KEY_FILE);

    let (key, key_source) = match key::key_from_env(key::KEY_ENV)? {
        Some(k) => (k, KeySource::Env),
        None if key_file.exists() => (key::read_key_file(&key_file)?, KeySource::File(key_file.clone())),
        None if canary.is_some() => return Err(Error::KeyMissing { db, key_file }),
        None if !may_write => return Ok(None),
        None => {
            let k = VaultKey::generate();
            key::write_key_file(&key_file, &k)?;
            tracing::info!(key_file = %key_file.display(), "created a new vault key");
            (k, KeySource::File(key_file.clone()))
        }
    };
    let cipher = Cipher::new(&key);
    let Some(blob) = canary else {
        if !may_write {
            return Ok(None);
        }
        sqlx::query("INSERT INTO vault_meta (name, value) VALUES ('key_check', ?)")
            .bind(cipher.seal(CANARY_OWNER, CANARY))
            .execute(pool)
            .await?;
        return Ok(Some((cipher, key_source)));
    };
    if cipher.open(CANARY_OWNER, &blob).is_some() {
        if matches!(key_source, KeySource::File(_)) && next_file.exists() {
            if !may_write {
                return Ok(None);
            }
            // A rotation stopped before its commit: the vault is still under this key.
            tracing::warn!("removing {} left by an interrupted key rotation", next_file.display());
            std::fs::remove_file(&next_file).map_err(|e| Error::io("cannot remove", &next_file, e))?;
        }
        return Ok(Some((cipher, key_source)));
    }
    let next = match &key_source {
        KeySource::File(_) if next_file.exists() => Some(key::read_key_file(&next_file)?),
        KeySource::Env => key::key_from_env(key::NEW_KEY_ENV)?,
        KeySource::File(_) => None,
    };
    let next_cipher = next.as_ref().map(Cipher::new);
    match (next_cipher, &key_source) {
        (Some(c), KeySource::File(_)) if c.open(CANARY_OWNER, &blob).is_some() => {
            if !may_write {
                return Ok(None);
            }
            // The rotation committed but stopped before renaming the new key into place.
            std::fs::rename(&next_file, &key_file)
                .map_err(|e| Error::io("cannot finish the key rotation by renaming", &next_file, e))?;
            key::sync_dir(data_dir).map_err(|e| Error::io("cannot sync", data_dir, e))?;
            tracing::warn!(
                "finished an interrupted key rotation: {} is the vault key now",
                key_file.display()
            );
            Ok(Some((c, key_source)))
        }
        (Some(c), KeySource::Env) if c.open(CANARY_OWNER, &blob).is_some() => Err(Error::WrongKey {
            db,
            source_name: format!(
                "{} (the vault was rotated to {}; set {} to that key)",
                key::KEY_ENV,
                key::NEW_KEY_ENV,
                key::KEY_ENV
            ),
        }),
        _ => Err(Error::WrongKey {
            db,
            source_name: key_source.to_string(),
        }),
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
