//! The vault key: 32 random bytes from `STOXIDE_VAULT_KEY` (64 hex digits) or from a key file
//! created on first use with mode 0600 (`<data dir>/vault.key`).

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The environment variable that holds the key (64 hex digits); it wins over the key file.
pub const KEY_ENV: &str = "STOXIDE_VAULT_KEY";
/// During `vault rotate-key` with an environment key: the key to rotate to.
pub const NEW_KEY_ENV: &str = "STOXIDE_VAULT_NEW_KEY";

/// A key's public name: the first 8 bytes of SHA-256 over a label and the key. It tells keys
/// apart (which key sealed a value) and reveals nothing of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A 256-bit key, wiped from memory when dropped. Debug shows nothing.
#[derive(Clone)]
pub struct VaultKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultKey(<redacted>)")
    }
}

impl VaultKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(k.as_mut());
        Self(k)
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut k = Zeroizing::new([0u8; 32]);
        for (i, byte) in k.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(k))
    }

    /// The key as 64 lower-case hex digits.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(64));
        for b in self.0.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's id (see [`KeyId`]).
    pub fn id(&self) -> KeyId {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"stoxide-vault key id\0");
        h.update(self.0.as_ref());
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }
}

/// Where the key of an open vault came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `STOXIDE_VAULT_KEY`.
    Env,
    /// A key file.
    File(PathBuf),
    /// Handed over by the embedding program.
    Given,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str(KEY_ENV),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Given => f.write_str("the keys given to this process"),
        }
    }
}

/// Reads a key from the environment variable `var`, if set.
///
/// # Errors
/// [`Error::BadKeyEnv`] when it is set but not 64 hex digits.
pub fn key_from_env(var: &str) -> Result<Option<VaultKey>> {
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => VaultKey::from_hex(&v)
            .map(Some)
            .ok_or_else(|| Error::BadKeyEnv { var: var.to_owned() }),
        Err(_) => Ok(None),
    }
}

/// Reads a key file; refuses one that others can read.
///
/// # Errors
/// A missing, unreadable, malformed or too-open file.
pub fn read_key_file(path: &Path) -> Result<VaultKey> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read the vault key file", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyFileTooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| Error::io("cannot read the vault key file", path, e))?,
    );
    VaultKey::from_hex(&text).ok_or_else(|| Error::BadKeyFile {
        path: path.to_owned(),
        problem: "does not hold 64 hex digits (it is truncated or was edited); restore it from your backup".into(),
    })
}

/// Writes a key file atomically with mode 0600 (see [`write_private_file`]).
///
/// # Errors
/// Filesystem errors.
pub fn write_key_file(path: &Path, key: &VaultKey) -> Result<()> {
    let mut text = key.to_hex();
    text.push('\n');
    write_private_file(path, text.as_bytes()).map_err(|e| Error::io("cannot write the vault key file", path, e))
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file, fsync, rename, fsync of
/// the directory. An existing file is replaced only by the rename, so a crash leaves the old or
/// the new content, never half of one.
///
/// # Errors
/// Filesystem errors.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        stoxide_store::sync_dir(dir)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let k = VaultKey::generate();
        let back = VaultKey::from_hex(&k.to_hex()).expect("parses");
        assert_eq!(back.bytes(), k.bytes());
        assert!(VaultKey::from_hex("abc").is_none());
        assert!(VaultKey::from_hex(&"g".repeat(64)).is_none());
        assert!(VaultKey::from_hex(&"é".repeat(32)).is_none());
        assert_eq!(format!("{k:?}"), "VaultKey(<redacted>)");
        assert_eq!(k.id(), back.id(), "the id is a function of the key");
        assert_ne!(k.id(), VaultKey::generate().id());
        assert_eq!(k.id().to_string().len(), 16);
        assert!(
            !k.to_hex().contains(&k.id().to_string()),
            "the id is not a piece of the key"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault.key");
        let k = VaultKey::generate();
        write_key_file(&path, &k).expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_key_file(&path).expect("read").bytes(), k.bytes());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = read_key_file(&path).expect_err("too open");
        assert!(e.to_string().contains("chmod 600"), "{e}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "0123").expect("truncate");
        let e = read_key_file(&path).expect_err("truncated");
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }
}
