//! Asking Upstox whether a stored token works: the profile endpoint, with the result recorded
//! in the vault and trusted for a minute.

use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use upstox_client::user::Profile;
use upstox_client::{ClientConfig, Hosts, UpstoxClient};

use crate::account::{Account, Check, CheckOutcome};
use crate::error::{Error, Result};
use crate::status::{TokenStatus, assess};
use crate::vault::Vault;

/// A check younger than this is trusted without asking Upstox again.
pub const CHECK_CACHE: chrono::Duration = chrono::Duration::seconds(60);

/// A token-less client for an account's base URL (10 s timeout).
///
/// # Errors
/// A malformed base URL.
pub fn client_for(base_url: &str) -> Result<UpstoxClient> {
    let hosts = Hosts::from_base_url(base_url).map_err(|e| Error::BadBaseUrl(e.to_string()))?;
    let mut config = ClientConfig::new(hosts);
    config.timeout = Duration::from_secs(10);
    UpstoxClient::new(config).map_err(|e| Error::BadBaseUrl(e.to_string()))
}

/// Asks the profile endpoint whether `token` works, through `client` (token-less; its hosts are
/// the account's).
pub async fn probe(client: &UpstoxClient, token: &SecretString) -> (CheckOutcome, Option<Profile>) {
    probe_with(&client.with_token(token.clone())).await
}

/// Asks the profile endpoint whether the token `client` carries works.
pub async fn probe_with(client: &UpstoxClient) -> (CheckOutcome, Option<Profile>) {
    match client.profile().await {
        Ok(p) => (CheckOutcome::Valid, Some(p)),
        Err(e) => match e.status() {
            Some(status) => (
                CheckOutcome::Rejected {
                    status,
                    code: e.codes().first().map(|c| (*c).to_owned()),
                    message: e.to_string(),
                },
                None,
            ),
            None => (CheckOutcome::Unreachable { reason: e.to_string() }, None),
        },
    }
}

/// The account's status: asks Upstox (through `client`, made for the account's base URL) unless
/// a check younger than [`CHECK_CACHE`] exists (or `force`), or the token is already past 03:30
/// IST; records what Upstox said.
///
/// # Errors
/// Vault errors.
pub async fn status(vault: &Vault, account: &Account, force: bool, client: &UpstoxClient) -> Result<TokenStatus> {
    let now = Utc::now();
    let expired = account.expires_at.is_some_and(|e| now >= e);
    let fresh = account.last_check.as_ref().is_some_and(|c| now - c.at < CHECK_CACHE);
    if !account.has_token || expired || (fresh && !force) {
        return Ok(assess(account, now));
    }
    let Some(token) = vault.access_token(&account.id).await? else {
        return Ok(assess(account, now));
    };
    let (outcome, _) = probe_with(&client.for_user(&account.id, token)).await;
    let check = Check { at: now, outcome };
    vault.record_check(&account.id, &check).await?;
    let mut updated = account.clone();
    updated.last_check = Some(check);
    Ok(assess(&updated, now))
}
