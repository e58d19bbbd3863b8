//! Where a vault's keys come from — the key provider, apart from the store: the environment
//! (`STOXIDE_VAULT_KEY`, and during a rotation `STOXIDE_VAULT_NEW_KEY`), or key files in the
//! data directory (`vault.key`, and during a rotation `vault.key.next`). Key files are read
//! under the shared `vault.lock` and only created, removed or renamed under the exclusive one.

use std::path::{Path, PathBuf};

use stoxide_store::lock::{self, LockGuard, Mode};

use crate::error::Result;
use crate::key::{self, KeySource, VaultKey};

pub(crate) const KEY_FILE: &str = "vault.key";
/// The key being rotated to, until the rotation's last step renames it over `vault.key`.
pub(crate) const NEXT_KEY_FILE: &str = "vault.key.next";
const KEY_LOCK: &str = "vault.lock";

/// The key provider a vault was opened with.
#[derive(Debug, Clone)]
pub(crate) enum KeyProvider {
    Env,
    Files {
        dir: PathBuf,
    },
    /// Keys handed over by the embedding program (a secrets manager, a test).
    Given {
        primary: VaultKey,
        next: Option<VaultKey>,
    },
}

/// The keys a provider holds now.
pub(crate) struct Keys {
    /// `STOXIDE_VAULT_KEY` or `vault.key` (`None`: no key file yet).
    pub primary: Option<VaultKey>,
    /// `STOXIDE_VAULT_NEW_KEY` or `vault.key.next`.
    pub next: Option<VaultKey>,
}

impl KeyProvider {
    /// The environment when `STOXIDE_VAULT_KEY` is set, else the key files in `dir`.
    ///
    /// # Errors
    /// A malformed `STOXIDE_VAULT_KEY`.
    pub(crate) fn detect(dir: &Path) -> Result<Self> {
        Ok(match key::key_from_env(key::KEY_ENV)? {
            Some(_) => Self::Env,
            None => Self::Files { dir: dir.to_owned() },
        })
    }

    pub(crate) fn source(&self) -> KeySource {
        match self {
            Self::Env => KeySource::Env,
            Self::Files { dir } => KeySource::File(dir.join(KEY_FILE)),
            Self::Given { .. } => KeySource::Given,
        }
    }

    pub(crate) fn key_file(&self) -> Option<PathBuf> {
        match self {
            Self::Files { dir } => Some(dir.join(KEY_FILE)),
            Self::Env | Self::Given { .. } => None,
        }
    }

    pub(crate) fn next_file(&self) -> Option<PathBuf> {
        match self {
            Self::Files { dir } => Some(dir.join(NEXT_KEY_FILE)),
            Self::Env | Self::Given { .. } => None,
        }
    }

    /// Reads the keys.
    ///
    /// # Errors
    /// A malformed variable, or a key file that is unreadable, malformed or readable by others.
    pub(crate) fn load(&self) -> Result<Keys> {
        match self {
            Self::Env => Ok(Keys {
                primary: key::key_from_env(key::KEY_ENV)?,
                next: key::key_from_env(key::NEW_KEY_ENV)?,
            }),
            Self::Given { primary, next } => Ok(Keys {
                primary: Some(primary.clone()),
                next: next.clone(),
            }),
            Self::Files { dir } => {
                let read = |name: &str| -> Result<Option<VaultKey>> {
                    let path = dir.join(name);
                    if path.exists() {
                        key::read_key_file(&path).map(Some)
                    } else {
                        Ok(None)
                    }
                };
                Ok(Keys {
                    primary: read(KEY_FILE)?,
                    next: read(NEXT_KEY_FILE)?,
                })
            }
        }
    }

    /// The key files' lock (none for keys in the environment).
    ///
    /// # Errors
    /// As [`lock::lock`].
    pub(crate) async fn lock(&self, mode: Mode) -> Result<Option<LockGuard>> {
        match self {
            Self::Env | Self::Given { .. } => Ok(None),
            Self::Files { dir } => {
                stoxide_store::create_private_dir(dir)?;
                Ok(Some(lock::lock(dir, KEY_LOCK, mode).await?))
            }
        }
    }
}
