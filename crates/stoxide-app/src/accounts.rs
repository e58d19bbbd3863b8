//! Which account a command or a page acts for.

use secrecy::SecretString;
use stoxide_vault::{Account, Vault};

use crate::error::{Error, Result};

/// The account `wanted` names, else the vault's only account; `None` for an empty vault.
///
/// # Errors
/// [`stoxide_vault::Error::NoSuchAccount`] for a name the vault does not hold,
/// [`Error::AccountAmbiguous`] when several accounts are there and none was named.
pub async fn select(vault: &Vault, wanted: Option<&str>) -> Result<Option<Account>> {
    if let Some(id) = wanted {
        return match vault.account(id).await? {
            Some(a) => Ok(Some(a)),
            None => Err(stoxide_vault::Error::NoSuchAccount(id.to_owned()).into()),
        };
    }
    let mut all = vault.accounts().await?;
    match all.len() {
        0 => Ok(None),
        1 => Ok(all.pop()),
        _ => Err(Error::AccountAmbiguous(all.into_iter().map(|a| a.id).collect())),
    }
}

/// Like [`select`], but an empty vault is [`Error::NoAccount`].
///
/// # Errors
/// As [`select`], and [`Error::NoAccount`].
pub async fn require(vault: &Vault, wanted: Option<&str>) -> Result<Account> {
    select(vault, wanted).await?.ok_or(Error::NoAccount)
}

/// The account's access token.
///
/// # Errors
/// [`Error::LoggedOut`] when it has none; vault errors.
pub async fn token_of(vault: &Vault, account: &Account) -> Result<SecretString> {
    vault
        .access_token(&account.id)
        .await?
        .ok_or_else(|| Error::LoggedOut(account.id.clone()))
}
