//! Sealing and opening one secret: XChaCha20-Poly1305 with a fresh random 24-byte nonce per
//! write and the owner (table, row id, column) bound as associated data, so a ciphertext copied
//! to another account or column no longer opens.
//!
//! Format 2 (every write): `[2][8-byte key id][24-byte nonce][ciphertext + tag]`. The key id
//! names the key that sealed the value, so a vault whose values sit under several keys (during a
//! rotation, or across machines sharing one database) opens each with the right one, and a
//! missing key is told from a damaged value. Format 1 (vaults before key ids):
//! `[1][nonce][ciphertext + tag]`, opened by trying the keys held; rotation rewrites it as 2.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::key::{KeyId, VaultKey};

const V1: u8 = 1;
const V2: u8 = 2;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const ID_LEN: usize = 8;

/// Where a ciphertext belongs; bound as associated data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub table: &'static str,
    pub id: &'a str,
    pub field: &'static str,
}

impl Owner<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("stoxide-vault/v1\0{}\0{}\0{}", self.table, self.id, self.field).into_bytes()
    }
}

/// The AEAD keyed with one vault key. Debug shows nothing of the key.
pub(crate) struct Cipher {
    id: KeyId,
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cipher(key {}, <redacted>)", self.id)
    }
}

impl Cipher {
    pub(crate) fn new(key: &VaultKey) -> Self {
        let aead = XChaCha20Poly1305::new(&(*key.bytes()).into());
        Self { id: key.id(), aead }
    }

    pub(crate) fn id(&self) -> KeyId {
        self.id
    }

    /// Encrypts `plaintext` for `owner` under a fresh nonce (format 2).
    pub(crate) fn seal(&self, owner: Owner<'_>, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = owner.associated_data();
        // Encryption into a Vec cannot fail for inputs far below the 256 GiB limit.
        let ct = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + ID_LEN + NONCE_LEN + ct.len());
        out.push(V2);
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts nonce + ciphertext for `owner`; `None` when the key, owner or bytes differ.
    fn open_body(&self, owner: Owner<'_>, body: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if body.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = owner.associated_data();
        self.aead
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &aad })
            .ok()
            .map(Zeroizing::new)
    }
}

/// Which key sealed a value, as far as its bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealedBy {
    /// Format 2: this key.
    Key(KeyId),
    /// Format 1: unknown until a key opens it.
    Unrecorded,
    /// Not a sealed value at all.
    Garbage,
}

pub(crate) fn sealed_by(blob: &[u8]) -> SealedBy {
    match blob.split_first() {
        Some((&V2, rest)) if rest.len() >= ID_LEN + NONCE_LEN + TAG_LEN => {
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(&rest[..ID_LEN]);
            SealedBy::Key(KeyId(id))
        }
        Some((&V1, rest)) if rest.len() >= NONCE_LEN + TAG_LEN => SealedBy::Unrecorded,
        _ => SealedBy::Garbage,
    }
}

/// Why a value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// It was sealed under a key the ring does not hold.
    KeyNotHeld(KeyId),
    /// The ring holds its key (or it records none), and it still does not open: altered,
    /// moved from another row, or not a sealed value.
    Refused,
}

/// The keys a process holds: the one the vault's data is sealed under now (`current`), and
/// others it can open (a rotation's next key, the previous key during a rotation across machines).
#[derive(Debug)]
pub(crate) struct KeyRing {
    ciphers: Vec<Cipher>,
    current: usize,
}

impl KeyRing {
    /// A ring whose current key is `current`, also holding `others`.
    pub(crate) fn new(current: &VaultKey, others: &[&VaultKey]) -> Self {
        let mut ciphers = vec![Cipher::new(current)];
        for k in others {
            if !ciphers.iter().any(|c| c.id == k.id()) {
                ciphers.push(Cipher::new(k));
            }
        }
        Self { ciphers, current: 0 }
    }

    /// The same keys with `id` as the current one; `None` when the ring does not hold it.
    pub(crate) fn with_current(mut self, id: KeyId) -> Option<Self> {
        self.current = self.ciphers.iter().position(|c| c.id == id)?;
        Some(self)
    }

    pub(crate) fn current(&self) -> &Cipher {
        &self.ciphers[self.current]
    }

    pub(crate) fn get(&self, id: KeyId) -> Option<&Cipher> {
        self.ciphers.iter().find(|c| c.id == id)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.ciphers.iter().map(|c| c.id)
    }

    /// Seals under the current key.
    pub(crate) fn seal(&self, owner: Owner<'_>, plaintext: &[u8]) -> Vec<u8> {
        self.current().seal(owner, plaintext)
    }

    /// Opens a value with the key it names (format 2) or with any key held, current first
    /// (format 1). Answers the plaintext and the key that opened it.
    pub(crate) fn open(&self, owner: Owner<'_>, blob: &[u8]) -> Result<(Zeroizing<Vec<u8>>, KeyId), OpenError> {
        match sealed_by(blob) {
            SealedBy::Key(id) => {
                let c = self.get(id).ok_or(OpenError::KeyNotHeld(id))?;
                c.open_body(owner, &blob[1 + ID_LEN..])
                    .map(|p| (p, id))
                    .ok_or(OpenError::Refused)
            }
            SealedBy::Unrecorded => {
                let body = &blob[1..];
                std::iter::once(self.current())
                    .chain(self.ciphers.iter())
                    .find_map(|c| c.open_body(owner, body).map(|p| (p, c.id)))
                    .ok_or(OpenError::Refused)
            }
            SealedBy::Garbage => Err(OpenError::Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owner(id: &str) -> Owner<'_> {
        Owner {
            table: "accounts",
            id,
            field: "access_token",
        }
    }

    /// A format-1 blob, as vaults before key ids wrote them.
    fn seal_v1(c: &Cipher, owner: Owner<'_>, plain: &[u8]) -> Vec<u8> {
        let v2 = c.seal(owner, plain);
        let mut v1 = vec![V1];
        v1.extend_from_slice(&v2[1 + ID_LEN..]);
        v1
    }

    proptest! {
        #[test]
        fn round_trips_and_binds_the_owner(secret in proptest::collection::vec(any::<u8>(), 0..300), id in "[A-Z0-9]{1,8}") {
            let key = VaultKey::generate();
            let ring = KeyRing::new(&key, &[]);
            let blob = ring.seal(owner(&id), &secret);
            prop_assert_eq!(sealed_by(&blob), SealedBy::Key(key.id()));
            prop_assert_eq!(ring.open(owner(&id), &blob).map(|(p, k)| (p.to_vec(), k)), Ok((secret.clone(), key.id())));
            let other = format!("{id}X");
            prop_assert_eq!(ring.open(owner(&other), &blob).map(|_| ()), Err(OpenError::Refused));
            let field = Owner { field: "extended_token", ..owner(&id) };
            prop_assert!(ring.open(field, &blob).is_err());
            let stranger = VaultKey::generate();
            prop_assert_eq!(KeyRing::new(&stranger, &[]).open(owner(&id), &blob).map(|_| ()), Err(OpenError::KeyNotHeld(key.id())));
        }

        #[test]
        fn any_flipped_bit_is_refused(secret in proptest::collection::vec(any::<u8>(), 1..64), bit in 0usize..8 * 100) {
            let ring = KeyRing::new(&VaultKey::generate(), &[]);
            let mut blob = ring.seal(owner("A"), &secret);
            let bit = bit % (blob.len() * 8);
            blob[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(ring.open(owner("A"), &blob).is_err());
        }

        #[test]
        fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..100)) {
            let ring = KeyRing::new(&VaultKey::generate(), &[]);
            prop_assert!(ring.open(owner("A"), &blob).is_err());
        }
    }

    #[test]
    fn each_value_opens_with_the_key_it_names_and_old_values_still_open() {
        let (old, new) = (VaultKey::generate(), VaultKey::generate());
        let both = KeyRing::new(&new, &[&old]);
        let under_old = KeyRing::new(&old, &[]).seal(owner("A"), b"old secret");
        let under_new = both.seal(owner("A"), b"new secret");
        assert_eq!(
            both.open(owner("A"), &under_old).map(|(p, k)| (p.to_vec(), k)),
            Ok((b"old secret".to_vec(), old.id()))
        );
        assert_eq!(both.open(owner("A"), &under_new).map(|(_, k)| k), Ok(new.id()));
        let v1 = seal_v1(&Cipher::new(&old), owner("A"), b"legacy");
        assert_eq!(sealed_by(&v1), SealedBy::Unrecorded);
        assert_eq!(
            both.open(owner("A"), &v1).map(|(p, k)| (p.to_vec(), k)),
            Ok((b"legacy".to_vec(), old.id()))
        );
        assert_eq!(
            KeyRing::new(&new, &[]).open(owner("A"), &v1).map(|_| ()),
            Err(OpenError::Refused)
        );
        let switched = KeyRing::new(&new, &[&old]).with_current(old.id()).expect("held");
        assert_eq!(sealed_by(&switched.seal(owner("A"), b"x")), SealedBy::Key(old.id()));
        assert!(KeyRing::new(&new, &[]).with_current(old.id()).is_none());
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let c = Cipher::new(&VaultKey::generate());
        assert_ne!(c.seal(owner("A"), b"token"), c.seal(owner("A"), b"token"));
    }
}
