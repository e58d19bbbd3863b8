//! The CLI's side of the token vault: where it lives and which account a command acts for (the
//! choices themselves are `stoxide-app`'s).

use std::path::PathBuf;

use anyhow::Context;
use secrecy::SecretString;
use stoxide_app::clients::Clients;
use stoxide_vault::{Account, CheckOutcome, TokenStatus, Vault, VaultConfig};

use crate::settings::Globals;

/// An account and its decrypted token, for one command, with the vault handle it came from.
/// Debug hides the token.
pub(crate) struct VaultAccount {
    pub account: Account,
    pub token: SecretString,
    pub vault: Vault,
}

impl std::fmt::Debug for VaultAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultAccount")
            .field("account", &self.account)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `--data-dir`, `STOXIDE_DATA_DIR`, or the XDG default.
pub(crate) fn data_dir(globals: &Globals) -> anyhow::Result<PathBuf> {
    globals
        .data_dir
        .clone()
        .or_else(stoxide_vault::default_data_dir)
        .context("no data directory: set --data-dir or STOXIDE_DATA_DIR (HOME is not set)")
}

/// Where the vault lives: the data directory, and `STOXIDE_DATABASE_URL` when set.
pub(crate) fn config(globals: &Globals) -> anyhow::Result<VaultConfig> {
    Ok(VaultConfig::new(data_dir(globals)?))
}

/// Opens (creating on first use) the vault.
pub(crate) async fn open(globals: &Globals) -> anyhow::Result<Vault> {
    Ok(Vault::open(&config(globals)?).await?)
}

/// Opens the vault if there is one; never creates it.
pub(crate) async fn open_existing(globals: &Globals) -> anyhow::Result<Option<Vault>> {
    Ok(Vault::open_existing(&config(globals)?).await?)
}

/// The account a command acts for: `--account`, else the vault's only account.
pub(crate) async fn select(vault: &Vault, globals: &Globals) -> anyhow::Result<Option<Account>> {
    Ok(stoxide_app::accounts::select(vault, globals.account.as_deref()).await?)
}

/// Like [`select`], but an empty vault is an error that says how to fill it.
pub(crate) async fn require(vault: &Vault, globals: &Globals) -> anyhow::Result<Account> {
    Ok(stoxide_app::accounts::require(vault, globals.account.as_deref()).await?)
}

/// The vault account for a REST or feed command, if the vault is to be used: a chosen account,
/// or the only one in an existing vault.
pub(crate) async fn session_account(globals: &Globals) -> anyhow::Result<Option<VaultAccount>> {
    let config = config(globals)?;
    let Some(vault) = Vault::open_existing(&config).await? else {
        if let Some(id) = &globals.account {
            anyhow::bail!(
                "--account {id}: there is no vault at {}; run `stoxide login` first (or set --data-dir)",
                config.data_dir.display()
            );
        }
        return Ok(None);
    };
    let Some(account) = select(&vault, globals).await? else {
        vault.close().await;
        return Ok(None);
    };
    let token = stoxide_app::accounts::token_of(&vault, &account).await?;
    Ok(Some(VaultAccount { account, token, vault }))
}

/// Asks the profile endpoint whether `token` works.
pub(crate) async fn probe(
    clients: &Clients,
    base_url: &str,
    token: &SecretString,
) -> anyhow::Result<(CheckOutcome, Option<upstox_client::user::Profile>)> {
    let client = clients.client(base_url)?;
    Ok(stoxide_vault::check::probe(&client, token).await)
}

/// The account's status, checked with Upstox unless a recent check exists.
pub(crate) async fn status(
    vault: &Vault,
    clients: &Clients,
    account: &Account,
    force: bool,
) -> anyhow::Result<TokenStatus> {
    Ok(stoxide_app::tokens::status(vault, clients, account, force).await?)
}
