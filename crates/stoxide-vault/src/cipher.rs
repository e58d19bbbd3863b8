//! Sealing and opening one secret: XChaCha20-Poly1305 with a fresh random 24-byte nonce per
//! write and the owner (table, row id, column) bound as associated data, so a ciphertext copied
//! to another account or column no longer opens.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::key::VaultKey;

/// The format byte in front of every ciphertext, so the format can change later.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

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

/// The AEAD keyed with the vault key. Debug shows nothing of the key.
pub(crate) struct Cipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<key redacted>)")
    }
}

impl Cipher {
    pub(crate) fn new(key: &VaultKey) -> Self {
        let aead = XChaCha20Poly1305::new(&(*key.bytes()).into());
        Self { aead }
    }

    /// Encrypts `plaintext` for `owner` under a fresh nonce.
    pub(crate) fn seal(&self, owner: Owner<'_>, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = owner.associated_data();
        let nonce_arr = XNonce::from(nonce);
        // Encryption into a Vec cannot fail for inputs far below the 256 GiB limit.
        let ct = self
            .aead
            .encrypt(
                &nonce_arr,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a blob sealed for `owner`; `None` when the key, the owner or the bytes differ.
    pub(crate) fn open(&self, owner: Owner<'_>, blob: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (&version, rest) = blob.split_first()?;
        if version != VERSION || rest.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let aad = owner.associated_data();
        self.aead
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &aad })
            .ok()
            .map(Zeroizing::new)
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

    proptest! {
        #[test]
        fn round_trips_and_binds_the_owner(secret in proptest::collection::vec(any::<u8>(), 0..300), id in "[A-Z0-9]{1,8}") {
            let c = Cipher::new(&VaultKey::generate());
            let blob = c.seal(owner(&id), &secret);
            prop_assert_eq!(c.open(owner(&id), &blob).map(|p| p.to_vec()), Some(secret.clone()));
            let other = format!("{id}X");
            prop_assert!(c.open(owner(&other), &blob).is_none());
            let field = Owner { field: "extended_token", ..owner(&id) };
            prop_assert!(c.open(field, &blob).is_none());
            prop_assert!(Cipher::new(&VaultKey::generate()).open(owner(&id), &blob).is_none());
        }

        #[test]
        fn any_flipped_bit_is_refused(secret in proptest::collection::vec(any::<u8>(), 1..64), bit in 0usize..8 * 100) {
            let c = Cipher::new(&VaultKey::generate());
            let mut blob = c.seal(owner("A"), &secret);
            let bit = bit % (blob.len() * 8);
            blob[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(c.open(owner("A"), &blob).is_none());
        }

        #[test]
        fn garbage_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..100)) {
            let c = Cipher::new(&VaultKey::generate());
            prop_assert!(c.open(owner("A"), &blob).is_none());
        }
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let c = Cipher::new(&VaultKey::generate());
        assert_ne!(c.seal(owner("A"), b"token"), c.seal(owner("A"), b"token"));
    }
}
