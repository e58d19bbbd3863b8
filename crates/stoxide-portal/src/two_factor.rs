//! Two-factor sign-in (TOTP, RFC 6238: SHA-1, 6 digits, 30 s, one step either side — what every
//! authenticator app reads). Setting it up is two calls: [`Portal::two_factor_setup`] answers a
//! fresh secret (and its `otpauth://` link for a QR code) without storing anything;
//! [`Portal::enable_two_factor`] takes that secret back with a code from the app and, when the
//! code fits, seals the secret in the vault onto the person's record. From then on a sign-in
//! needs the code, and so may a consent.

use std::net::IpAddr;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use stoxide_people::{Person, Viewer};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{Error, Portal, Result};

/// What the authenticator app needs; shown once.
#[derive(Debug)]
pub struct TwoFactorSetup {
    /// Base32, as the apps take it typed in.
    pub secret: SecretString,
    /// `otpauth://totp/...` for a QR code (it carries the secret).
    pub otpauth_url: SecretString,
}

/// The issuer name authenticator apps show.
pub const ISSUER: &str = "stoxide";

fn totp(secret_b32: &str, account: &str) -> Result<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_owned())
        .to_bytes()
        .map_err(|_| Error::TwoFactor("the two-factor secret is not base32: start the set-up again".into()))?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        Some(ISSUER.to_owned()),
        account.replace(':', "_"),
    )
    .map_err(|e| {
        Error::TwoFactor(format!(
            "the two-factor secret will not do ({e}): start the set-up again"
        ))
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `code` (spaces allowed) is the current code of `secret`.
fn fits(t: &TOTP, code: &str) -> bool {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) && t.check(&code, now_secs())
}

impl Portal {
    /// A fresh TOTP secret for `v`'s person; nothing is stored until
    /// [`Portal::enable_two_factor`].
    ///
    /// # Errors
    /// None in practice (a generated secret always fits).
    pub fn two_factor_setup(&self, v: &Viewer) -> Result<TwoFactorSetup> {
        let mut raw = [0u8; 20];
        rand::rng().fill_bytes(&mut raw);
        let secret = Secret::Raw(raw.to_vec()).to_encoded().to_string();
        let t = totp(&secret, &v.person().email)?;
        Ok(TwoFactorSetup {
            otpauth_url: SecretString::from(t.get_url()),
            secret: SecretString::from(secret),
        })
    }

    /// Turns two-factor sign-in on with the set-up's `secret` and a current `code` from the app.
    ///
    /// # Errors
    /// A code that does not fit ([`Error::TwoFactor`]); vault errors.
    pub async fn enable_two_factor(&self, v: &Viewer, secret: &SecretString, code: &str) -> Result<Person> {
        let person = v.person();
        let t = totp(secret.expose_secret(), &person.email)?;
        if !fits(&t, code) {
            return Err(Error::TwoFactor(
                "that code does not fit the new secret: check the app's clock and type the current code".into(),
            ));
        }
        if !self.vault.put_totp_secret(&person.id, secret).await? {
            return Err(Error::NotFound("person"));
        }
        tracing::info!(person = %person.id, "two-factor sign-in enabled");
        self.people.person(&person.id).await?.ok_or(Error::NotFound("person"))
    }

    /// Whether `code` is `person`'s current TOTP code (false without two-factor).
    ///
    /// # Errors
    /// Vault errors (a secret that does not open).
    pub async fn check_code(&self, person: &Person, code: &str) -> Result<bool> {
        let Some(secret) = self.vault.totp_secret(&person.id).await? else {
            return Ok(false);
        };
        Ok(fits(&totp(secret.expose_secret(), &person.email)?, code))
    }

    /// Signs a person in: password, then — when they have two-factor — the code.
    ///
    /// # Errors
    /// What [`stoxide_people::People::sign_in`] refuses; [`Error::CodeNeeded`] without a
    /// code; [`Error::TwoFactor`] for a wrong one (counted by the throttle).
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
        code: Option<&str>,
        from: IpAddr,
    ) -> Result<Person> {
        let person = self.people.sign_in(email, password, from).await?;
        if !person.two_factor {
            return Ok(person);
        }
        let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
            return Err(Error::CodeNeeded);
        };
        if self.check_code(&person, code).await? {
            Ok(person)
        } else {
            self.people.second_factor_failed(email, from);
            Err(Error::TwoFactor(
                "wrong two-factor code: type the current one from your app".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_6238_sha1_vector_fits() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let b32 = Secret::Raw(b"12345678901234567890".to_vec()).to_encoded().to_string();
        let t = totp(&b32, "a@example.in").expect("totp");
        assert_eq!(t.generate(59), "287082");
        assert!(t.check("287082", 59));
        assert!(!t.check("287083", 59));
    }
}
