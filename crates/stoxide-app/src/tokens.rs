//! A token's status, asked of Upstox through the process's shared client.

use stoxide_vault::{Account, TokenStatus, Vault};

use crate::clients::Clients;
use crate::error::Result;

/// The account's status: asks Upstox's profile endpoint unless a check younger than a minute
/// exists (or `force`), or the token is already past 03:30 IST; records what Upstox said.
///
/// # Errors
/// A malformed base URL; vault errors.
pub async fn status(vault: &Vault, clients: &Clients, account: &Account, force: bool) -> Result<TokenStatus> {
    let client = clients.client(&account.base_url)?;
    Ok(stoxide_vault::check::status(vault, account, force, &client).await?)
}
