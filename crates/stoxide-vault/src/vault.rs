//! The vault: apps and accounts in the store (SQLite or PostgreSQL), every token and app secret
//! sealed by the key ring. Only this module ever holds plaintext secrets, and it hands them out
//! as `SecretString`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use stoxide_store::lock::Mode;
use stoxide_store::{AccountRow, AppRow, Location, SealedCell, SealedField, Store, TokenRow, Tx, TxMode};
use zeroize::Zeroizing;

use crate::account::{Account, AppMode, AppRecord, Check, NewApp, NewToken, TokenOrigin};
use crate::cipher::{Cipher, KeyRing, OpenError, Owner, SealedBy, sealed_by};
use crate::error::{Error, Result};
use crate::key::{self, KeyId, KeySource, VaultKey};
use crate::keys::KeyProvider;

/// The key check: a known text sealed under the vault's current key. Its key id names the key
/// every new value is sealed under; a key that does not open it is the wrong key.
const CANARY_NAME: &str = "key_check";
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

/// Where a vault lives: the data directory (key files, and the SQLite store unless a database
/// URL is given) and an optional PostgreSQL URL. Debug never shows the URL's password.
#[derive(Clone)]
pub struct VaultConfig {
    pub data_dir: PathBuf,
    pub database_url: Option<SecretString>,
    /// Keys handed over instead of the environment or the key files.
    keys: Option<(VaultKey, Option<VaultKey>)>,
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("data_dir", &self.data_dir)
            .field("database", &self.location().map(|l| l.describe()).unwrap_or_default())
            .finish()
    }
}

impl VaultConfig {
    /// The vault in `data_dir`, on the PostgreSQL database named by `STOXIDE_DATABASE_URL` if
    /// that is set.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: std::env::var(stoxide_store::DATABASE_URL_ENV)
                .ok()
                .filter(|u| !u.trim().is_empty())
                .map(SecretString::from),
            keys: None,
        }
    }

    /// On the PostgreSQL database at `url` instead.
    #[must_use]
    pub fn with_database(mut self, url: SecretString) -> Self {
        self.database_url = Some(url);
        self
    }

    /// With these keys instead of `STOXIDE_VAULT_KEY` or the key files: `primary` seals, `next`
    /// also opens (the key a rotation moves to, or came from).
    #[must_use]
    pub fn with_keys(mut self, primary: VaultKey, next: Option<VaultKey>) -> Self {
        self.keys = Some((primary, next));
        self
    }

    /// The vault in `data_dir` on SQLite, whatever the environment says.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            keys: None,
        }
    }

    /// Where the store lives.
    ///
    /// # Errors
    /// A database URL that is not `postgres://`.
    pub fn location(&self) -> Result<Location> {
        Ok(Location::choose(
            self.database_url.as_ref().map(ExposeSecret::expose_secret),
            &self.data_dir,
        )?)
    }
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets re-encrypted.
    pub secrets: usize,
    /// Where the new key lives.
    pub key_source: KeySource,
    /// The new key's id.
    pub key_id: KeyId,
}

/// Which keys the vault's values are sealed under.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyReport {
    /// The key new values are sealed under.
    pub current: KeyId,
    /// The keys this process holds.
    pub held: Vec<KeyId>,
    /// Sealed values per key (`None`: written before key ids, by a key held).
    pub sealed: Vec<(Option<KeyId>, usize)>,
}

/// An open vault. Cheap to clone: clones share the store's pool and the key ring, so one handle
/// serves every handler, stream and watcher of a process.
///
/// Several processes (and machines sharing a PostgreSQL store) may use one vault at once:
/// opening and re-reading the key hold the key files' lock shared, rotation and recovery hold it
/// exclusively, every sealing write checks the vault's current key inside its transaction, and
/// a value sealed under a key this handle has not seen makes it re-read its keys.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    data_dir: PathBuf,
    keys: KeyProvider,
    /// Replaced when the vault's current key changes (a rotation here or elsewhere).
    ring: RwLock<Arc<KeyRing>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("store", &self.inner.store.location())
            .field("key_source", &self.inner.keys.source())
            .finish_non_exhaustive()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn owner_of(field: SealedField, id: &str) -> Owner<'_> {
    Owner {
        table: field.table(),
        id,
        field: field.column(),
    }
}

fn to_secret(owner: Owner<'_>, plain: &Zeroizing<Vec<u8>>) -> Result<SecretString> {
    let text = std::str::from_utf8(plain).map_err(|_| Error::Tampered {
        owner: owner.id.to_owned(),
        field: owner.field,
    })?;
    Ok(SecretString::from(text.to_owned()))
}

/// How many times a read re-reads the keys before a value that does not open is an error: one
/// for a rotation by another process, more for rotations that follow each other while it reads.
const MAX_KEY_REFRESHES: u32 = 5;

impl Vault {
    /// Opens the vault, creating it (the data directory 0700, the key file and a SQLite file
    /// 0600, or the schema in PostgreSQL) on first use.
    ///
    /// # Errors
    /// A damaged or foreign database, a missing or wrong key, filesystem and database errors.
    pub async fn open(config: &VaultConfig) -> Result<Self> {
        Self::open_inner(config, true).await?.ok_or_else(|| Error::KeyMissing {
            db: config.location().map(|l| l.describe()).unwrap_or_default(),
            key_file: config.data_dir.join(crate::keys::KEY_FILE),
        })
    }

    /// Opens the vault only if it exists (commands that read must not create one).
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub async fn open_existing(config: &VaultConfig) -> Result<Option<Self>> {
        Self::open_inner(config, false).await
    }

    async fn open_inner(config: &VaultConfig, create: bool) -> Result<Option<Self>> {
        let location = config.location()?;
        let keys = match &config.keys {
            Some((primary, next)) => KeyProvider::Given {
                primary: primary.clone(),
                next: next.clone(),
            },
            None => KeyProvider::detect(&config.data_dir)?,
        };
        let Some(store) = stoxide_store::Store::open(&location, create).await? else {
            return Ok(None);
        };
        let ring = match settle(&store, &keys).await {
            Ok(ring) => ring,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        Ok(Some(Self {
            inner: Arc::new(Inner {
                store,
                data_dir: config.data_dir.clone(),
                keys,
                ring: RwLock::new(Arc::new(ring)),
            }),
        }))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Where the store lives.
    pub fn location(&self) -> &Location {
        self.inner.store.location()
    }

    /// The store, for the rest of what the process keeps (sessions, …).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Where the key comes from.
    pub fn key_source(&self) -> KeySource {
        self.inner.keys.source()
    }

    /// Closes the store's pool (SQLite: flushes the WAL). Every clone of this handle is closed.
    pub async fn close(&self) {
        self.inner.store.close().await;
    }

    fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.inner.ring.read())
    }

    /// Re-reads the keys after another process rotated them (or crashed rotating them).
    async fn refresh_key(&self) -> Result<()> {
        let ring = settle(&self.inner.store, &self.inner.keys).await?;
        *self.inner.ring.write() = Arc::new(ring);
        Ok(())
    }

    /// Begins a sealing write: a transaction that excludes a rotation, with the key ring whose
    /// current key is the one the vault's key check names. Checking it inside the transaction
    /// means no handle ever writes a value under a key the vault has moved past.
    async fn begin_write(&self) -> Result<(Tx, Arc<KeyRing>)> {
        for _ in 0..3 {
            let ring = self.ring();
            let mut tx = self.inner.store.begin(TxMode::Write).await?;
            let canary = tx.meta(CANARY_NAME).await?;
            let current = canary.as_deref().map(|b| ring.open(CANARY_OWNER, b).map(|(_, id)| id));
            if current == Some(Ok(ring.current().id())) {
                return Ok((tx, ring));
            }
            tx.rollback().await?;
            self.refresh_key().await?;
        }
        Err(Error::WrongKey {
            db: self.location().describe(),
            source_name: format!("{} (it keeps changing while this process writes)", self.key_source()),
        })
    }

    /// Reads one sealed column of one row (`None`: no such row) and opens it. A value that does
    /// not open makes the handle re-read its keys and the value (another process may have
    /// rotated them — several times while this one re-read, as concurrent rotations do), up to
    /// [`MAX_KEY_REFRESHES`] times before the value is called unopenable.
    async fn read_sealed(&self, field: SealedField, id: &str) -> Result<Option<Option<SecretString>>> {
        let owner = owner_of(field, id);
        let mut refreshes = 0;
        loop {
            let Some(blob) = self.inner.store.sealed(field, id).await? else {
                return Ok(None);
            };
            let Some(blob) = blob else { return Ok(Some(None)) };
            match self.ring().open(owner, &blob) {
                Ok((plain, _)) => return to_secret(owner, &plain).map(|s| Some(Some(s))),
                Err(_) if refreshes < MAX_KEY_REFRESHES => {
                    refreshes += 1;
                    self.refresh_key().await?;
                }
                Err(OpenError::KeyNotHeld(key_id)) => {
                    return Err(Error::KeyNotHeld {
                        owner: id.to_owned(),
                        field: owner.field,
                        key_id,
                        source_name: self.key_source().to_string(),
                    });
                }
                Err(OpenError::Refused) => {
                    return Err(Error::Tampered {
                        owner: id.to_owned(),
                        field: owner.field,
                    });
                }
            }
        }
    }

    /// Stores (or replaces) an app's credentials.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_app(&self, app: &NewApp) -> Result<AppRecord> {
        let (mut tx, ring) = self.begin_write().await?;
        let now = ms(Utc::now());
        let secret = app.secret.as_ref().map(|s| {
            ring.seal(
                owner_of(SealedField::AppSecret, &app.client_id),
                s.expose_secret().as_bytes(),
            )
        });
        tx.upsert_app(&AppRow {
            client_id: app.client_id.clone(),
            secret,
            redirect_uri: app.redirect_uri.clone(),
            mode: app.mode.as_str().to_owned(),
            base_url: app.base_url.clone(),
            created_at: now,
            updated_at: now,
        })
        .await?;
        tx.commit().await?;
        self.app(&app.client_id)
            .await?
            .ok_or_else(|| Error::NoSuchApp(app.client_id.clone()))
    }

    fn app_record(row: AppRow) -> AppRecord {
        AppRecord {
            client_id: row.client_id,
            redirect_uri: row.redirect_uri,
            mode: AppMode::parse(&row.mode),
            base_url: row.base_url,
            has_secret: row.secret.is_some(),
        }
    }

    /// A stored app, without its secret.
    ///
    /// # Errors
    /// Database errors.
    pub async fn app(&self, client_id: &str) -> Result<Option<AppRecord>> {
        Ok(self.inner.store.app(client_id).await?.map(Self::app_record))
    }

    /// Every stored app.
    ///
    /// # Errors
    /// Database errors.
    pub async fn apps(&self) -> Result<Vec<AppRecord>> {
        Ok(self
            .inner
            .store
            .apps()
            .await?
            .into_iter()
            .map(Self::app_record)
            .collect())
    }

    /// An app's secret, decrypted.
    ///
    /// # Errors
    /// [`Error::Tampered`] when it does not decrypt.
    pub async fn app_secret(&self, client_id: &str) -> Result<Option<SecretString>> {
        Ok(self.read_sealed(SealedField::AppSecret, client_id).await?.flatten())
    }

    /// Stores (or replaces) the secret an external strategy signs its signals with, sealed like
    /// every other secret.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_signing_secret(&self, strategy: &str, secret: &SecretString) -> Result<()> {
        let (mut tx, ring) = self.begin_write().await?;
        let blob = ring.seal(
            owner_of(SealedField::SigningSecret, strategy),
            secret.expose_secret().as_bytes(),
        );
        tx.upsert_signing_secret(strategy, &blob, ms(Utc::now())).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A strategy's signing secret, decrypted.
    ///
    /// # Errors
    /// [`Error::Tampered`] when it does not decrypt.
    pub async fn signing_secret(&self, strategy: &str) -> Result<Option<SecretString>> {
        Ok(self.read_sealed(SealedField::SigningSecret, strategy).await?.flatten())
    }

    /// Seals a portal person's TOTP secret onto their record; false when there is no such
    /// person.
    ///
    /// # Errors
    /// Database errors.
    pub async fn put_totp_secret(&self, person: &str, secret: &SecretString) -> Result<bool> {
        if self
            .inner
            .store
            .sealed(SealedField::TotpSecret, person)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let (mut tx, ring) = self.begin_write().await?;
        let blob = ring.seal(
            owner_of(SealedField::TotpSecret, person),
            secret.expose_secret().as_bytes(),
        );
        tx.set_sealed(&SealedCell {
            field: SealedField::TotpSecret,
            id: person.to_owned(),
            blob,
        })
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A person's TOTP secret, decrypted (`None`: no such person or no two-factor).
    ///
    /// # Errors
    /// [`Error::Tampered`] when it does not decrypt.
    pub async fn totp_secret(&self, person: &str) -> Result<Option<SecretString>> {
        Ok(self.read_sealed(SealedField::TotpSecret, person).await?.flatten())
    }

    /// Stores a token for an account (creating the account), replacing any earlier token.
    ///
    /// # Errors
    /// [`Error::BadToken`] for a value that cannot be a token; database errors.
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
        let (mut tx, ring) = self.begin_write().await?;
        let access = ring.seal(
            owner_of(SealedField::AccessToken, id),
            t.access_token.expose_secret().as_bytes(),
        );
        let extended = t
            .extended_token
            .as_ref()
            .map(|e| ring.seal(owner_of(SealedField::ExtendedToken, id), e.expose_secret().as_bytes()));
        let expires = t.expires_at.unwrap_or_else(|| upstox_types::token_expiry(t.issued_at));
        tx.upsert_token(&TokenRow {
            id: id.to_owned(),
            client_id: t.client_id.clone(),
            user_name: t.user_name.clone(),
            base_url: t.base_url.clone(),
            access_token: access,
            extended_token: extended,
            issued_at: ms(t.issued_at),
            expires_at: ms(expires),
            source: t.origin.as_str().to_owned(),
            now: ms(Utc::now()),
        })
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
    /// As [`Vault::store_token`].
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

    fn account_record(row: AccountRow) -> Account {
        let check_at = from_ms(row.checked_at);
        let last_check = match (check_at, row.check_result) {
            (Some(at), Some(json)) => serde_json::from_str(&json).ok().map(|outcome| Check { at, outcome }),
            _ => None,
        };
        Account {
            id: row.id,
            client_id: row.client_id,
            user_name: row.user_name,
            base_url: row.base_url,
            has_token: row.access_token.is_some(),
            has_extended_token: row.extended_token.is_some(),
            issued_at: from_ms(row.issued_at),
            expires_at: from_ms(row.expires_at),
            origin: row.source.as_deref().and_then(TokenOrigin::parse),
            last_check,
        }
    }

    /// One account, without secrets.
    ///
    /// # Errors
    /// Database errors.
    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        Ok(self.inner.store.account(id).await?.map(Self::account_record))
    }

    /// Every account, by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        Ok(self
            .inner
            .store
            .accounts()
            .await?
            .into_iter()
            .map(Self::account_record)
            .collect())
    }

    /// The account's access token, decrypted.
    ///
    /// # Errors
    /// [`Error::NoSuchAccount`], [`Error::Tampered`], [`Error::KeyNotHeld`].
    pub async fn access_token(&self, id: &str) -> Result<Option<SecretString>> {
        self.read_sealed(SealedField::AccessToken, id)
            .await?
            .ok_or_else(|| Error::NoSuchAccount(id.to_owned()))
    }

    /// The account's extended token, decrypted.
    ///
    /// # Errors
    /// As [`Vault::access_token`].
    pub async fn extended_token(&self, id: &str) -> Result<Option<SecretString>> {
        self.read_sealed(SealedField::ExtendedToken, id)
            .await?
            .ok_or_else(|| Error::NoSuchAccount(id.to_owned()))
    }

    /// Records the result of checking the token with Upstox.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_check(&self, id: &str, check: &Check) -> Result<()> {
        let json = serde_json::to_string(&check.outcome).unwrap_or_default();
        self.inner.store.record_check(id, ms(check.at), &json).await?;
        Ok(())
    }

    /// Wipes the account's tokens (logout); the account and its app stay.
    ///
    /// # Errors
    /// [`Error::NoSuchAccount`].
    pub async fn wipe_token(&self, id: &str) -> Result<()> {
        if !self.inner.store.wipe_tokens(id, ms(Utc::now())).await? {
            return Err(Error::NoSuchAccount(id.to_owned()));
        }
        tracing::info!(account = id, "wiped the account's tokens");
        Ok(())
    }

    /// Which keys the vault's values are sealed under, and which this process holds: after a
    /// rotation across machines, no value should be left under the old key before it is removed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn key_report(&self) -> Result<KeyReport> {
        let ring = self.ring();
        let mut sealed: Vec<(Option<KeyId>, usize)> = Vec::new();
        for cell in self.inner.store.sealed_cells().await? {
            let by = match sealed_by(&cell.blob) {
                SealedBy::Key(id) => Some(id),
                SealedBy::Unrecorded | SealedBy::Garbage => None,
            };
            match sealed.iter_mut().find(|(k, _)| *k == by) {
                Some((_, n)) => *n += 1,
                None => sealed.push((by, 1)),
            }
        }
        sealed.sort();
        Ok(KeyReport {
            current: ring.current().id(),
            held: ring.ids().collect(),
            sealed,
        })
    }

    /// Re-encrypts every secret under a new key, crash-safe and safe beside other processes.
    ///
    /// Under the key files' exclusive lock (other opens and rotations on this machine wait) and
    /// in a transaction that excludes every sealing write (on PostgreSQL, on every machine): the
    /// keys are re-read (another process may have rotated since this handle opened), the new key
    /// is written to `vault.key.next`, every value and the key check are re-sealed, the
    /// transaction commits, and only then is the new key renamed over `vault.key`; the old key
    /// stays in place until that commit. Opening the vault after a crash at any point finds the
    /// key that matches the committed data (see `settle`).
    ///
    /// With the key in `STOXIDE_VAULT_KEY`, `new_key` (from `STOXIDE_VAULT_NEW_KEY`) is required
    /// and the caller switches the variable afterwards. Other machines that already hold the new
    /// key in `STOXIDE_VAULT_NEW_KEY` follow at once: they seal under whichever key the vault's
    /// key check names.
    ///
    /// # Errors
    /// A secret that does not decrypt (nothing changes then), [`Error::Store`] with a lock held
    /// for over a minute by another process, filesystem and database errors.
    pub async fn rotate_key(&self, new_key: Option<VaultKey>) -> Result<Rotation> {
        let keys = &self.inner.keys;
        let key = match (keys, new_key) {
            (_, Some(k)) => k,
            (KeyProvider::Env | KeyProvider::Given { .. }, None) => {
                return Err(Error::BadKeyEnv {
                    var: key::NEW_KEY_ENV.to_owned(),
                });
            }
            (KeyProvider::Files { .. }, None) => VaultKey::generate(),
        };
        let _guard = keys.lock(Mode::Exclusive).await?;
        let ring = settle_as(&self.inner.store, keys, true)
            .await?
            .ok_or_else(|| Error::WrongKey {
                db: self.location().describe(),
                source_name: self.key_source().to_string(),
            })?;
        *self.inner.ring.write() = Arc::new(ring);
        let ring = self.ring();

        let next_file = keys.next_file();
        if let Some(next) = &next_file {
            key::write_key_file(next, &key)?;
        }
        let new = Cipher::new(&key);
        let count = match self.reseal_all(&ring, &new).await {
            Ok(n) => n,
            Err(e) => {
                // Nothing was committed: the vault stays under the current key.
                if let Some(next) = &next_file {
                    let _ = std::fs::remove_file(next);
                }
                return Err(e);
            }
        };
        if let (Some(next), Some(key_file)) = (&next_file, keys.key_file()) {
            std::fs::rename(next, &key_file)
                .map_err(|e| Error::io("cannot move the new key into place from", next, e))?;
            stoxide_store::sync_dir(&self.inner.data_dir)
                .map_err(|e| Error::io("cannot sync", &self.inner.data_dir, e))?;
        }
        *self.inner.ring.write() = Arc::new(KeyRing::new(&key, &[]));
        tracing::info!(secrets = count, key = %key.id(), "rotated the vault key");
        Ok(Rotation {
            secrets: count,
            key_source: self.key_source(),
            key_id: key.id(),
        })
    }

    /// Re-seals every secret and the key check from the keys in `ring` to `new`, in one
    /// transaction that runs alone.
    async fn reseal_all(&self, ring: &KeyRing, new: &Cipher) -> Result<usize> {
        let mut tx = self.inner.store.begin(TxMode::Rekey).await?;
        let canary = tx.meta(CANARY_NAME).await?;
        if canary.is_none_or(|b| ring.open(CANARY_OWNER, &b).is_err()) {
            return Err(Error::WrongKey {
                db: self.location().describe(),
                source_name: self.key_source().to_string(),
            });
        }
        let cells = tx.sealed_cells().await?;
        for cell in &cells {
            let owner = owner_of(cell.field, &cell.id);
            let (plain, _) = ring.open(owner, &cell.blob).map_err(|e| match e {
                OpenError::KeyNotHeld(key_id) => Error::KeyNotHeld {
                    owner: cell.id.clone(),
                    field: owner.field,
                    key_id,
                    source_name: self.key_source().to_string(),
                },
                OpenError::Refused => Error::Tampered {
                    owner: cell.id.clone(),
                    field: owner.field,
                },
            })?;
            tx.set_sealed(&SealedCell {
                field: cell.field,
                id: cell.id.clone(),
                blob: new.seal(owner, &plain),
            })
            .await?;
        }
        tx.put_meta(CANARY_NAME, &new.seal(CANARY_OWNER, CANARY)).await?;
        tx.commit().await?;
        Ok(cells.len())
    }
}

/// Finds the keys that open the committed data, under the key files' lock: shared first, and
/// exclusive when something must be written to settle them (a first key, the key check,
/// finishing or discarding an interrupted rotation).
async fn settle(store: &Store, keys: &KeyProvider) -> Result<KeyRing> {
    let mut may_write = false;
    for _ in 0..4 {
        let _guard = keys
            .lock(if may_write { Mode::Exclusive } else { Mode::Shared })
            .await?;
        if let Some(ring) = settle_as(store, keys, may_write).await? {
            return Ok(ring);
        }
        may_write = true;
    }
    Err(Error::WrongKey {
        db: store.location().describe(),
        source_name: format!("{} (the keys keep changing)", keys.source()),
    })
}

/// One look at the keys and the key check, with the key files' lock held in the mode
/// `may_write` says. Answers `None` when something must be written and `may_write` is false.
/// Under the shared lock no rotation is running on this machine, so a `vault.key.next` seen then
/// is always a leftover of one that stopped.
async fn settle_as(store: &Store, keys: &KeyProvider, may_write: bool) -> Result<Option<KeyRing>> {
    let db = store.location().describe();
    let canary = store.meta(CANARY_NAME).await?;
    let loaded = keys.load()?;
    let primary = match (loaded.primary, keys.key_file()) {
        (Some(k), _) => k,
        (None, Some(key_file)) if canary.is_some() => return Err(Error::KeyMissing { db, key_file }),
        (None, _) if !may_write => return Ok(None),
        (None, Some(key_file)) => {
            let k = VaultKey::generate();
            key::write_key_file(&key_file, &k)?;
            tracing::info!(key_file = %key_file.display(), "created a new vault key");
            k
        }
        // An environment provider always has its primary key (it was detected by it).
        (None, None) => {
            return Err(Error::BadKeyEnv {
                var: key::KEY_ENV.to_owned(),
            });
        }
    };
    let next_id = loaded.next.as_ref().map(VaultKey::id);
    let others: Vec<&VaultKey> = loaded.next.iter().collect();
    let ring = KeyRing::new(&primary, &others);
    let Some(blob) = canary else {
        if !may_write {
            return Ok(None);
        }
        // A new vault: its key check under the primary key, unless another process wrote one
        // meanwhile (then look again).
        let mut tx = store.begin(TxMode::Write).await?;
        if tx.meta(CANARY_NAME).await?.is_some() {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.put_meta(CANARY_NAME, &ring.seal(CANARY_OWNER, CANARY)).await?;
        tx.commit().await?;
        return Ok(Some(ring));
    };
    let stray_next = keys.next_file().filter(|p| p.exists());
    match ring.open(CANARY_OWNER, &blob) {
        Ok((_, id)) if id == primary.id() => {
            if let Some(next) = stray_next {
                if !may_write {
                    return Ok(None);
                }
                // A rotation stopped before its commit: the vault is still under this key.
                tracing::warn!("removing {} left by an interrupted key rotation", next.display());
                std::fs::remove_file(&next).map_err(|e| Error::io("cannot remove", &next, e))?;
            }
            Ok(Some(ring))
        }
        Ok((_, id)) if Some(id) == next_id => match (keys, stray_next, keys.key_file()) {
            (KeyProvider::Files { dir }, Some(next), Some(key_file)) => {
                if !may_write {
                    return Ok(None);
                }
                // The rotation committed but stopped before renaming the new key into place.
                std::fs::rename(&next, &key_file)
                    .map_err(|e| Error::io("cannot finish the key rotation by renaming", &next, e))?;
                stoxide_store::sync_dir(dir).map_err(|e| Error::io("cannot sync", dir, e))?;
                tracing::warn!(
                    "finished an interrupted key rotation: {} is the vault key now",
                    key_file.display()
                );
                Ok(ring.with_current(id))
            }
            _ => {
                tracing::warn!(
                    "the vault was rotated to {}: set {} to that key and unset {} wherever the vault is used",
                    key::NEW_KEY_ENV,
                    key::KEY_ENV,
                    key::NEW_KEY_ENV
                );
                Ok(ring.with_current(id))
            }
        },
        Ok(_) => Ok(None),
        Err(OpenError::KeyNotHeld(id)) => Err(Error::WrongKey {
            db,
            source_name: format!(
                "{} (the vault is sealed under key {id}, which is not held here)",
                keys.source()
            ),
        }),
        Err(OpenError::Refused) => Err(Error::WrongKey {
            db,
            source_name: keys.source().to_string(),
        }),
    }
}
