//! The CLI's side of the token vault: where it lives, which account a command acts for, the
//! token check against the profile endpoint (with a short cache), and the token source that
//! long-running streams use to pick up a new login and warn ahead of 03:30 IST.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
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
    if let Some(id) = &globals.account {
        return match vault.account(id).await? {
            Some(a) => Ok(Some(a)),
            None => Err(stoxide_vault::Error::NoSuchAccount(id.clone()).into()),
        };
    }
    let mut all = vault.accounts().await?;
    match all.len() {
        0 => Ok(None),
        1 => Ok(all.pop()),
        _ => anyhow::bail!(
            "the vault holds {} accounts ({}); choose one with --account ID or STOXIDE_ACCOUNT",
            all.len(),
            all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Like [`select`], but an empty vault is an error that says how to fill it.
pub(crate) async fn require(vault: &Vault, globals: &Globals) -> anyhow::Result<Account> {
    select(vault, globals).await?.with_context(|| {
        format!(
            "the vault at {} holds no account; run `stoxide login` (or `stoxide token import FILE`) first",
            vault.data_dir().display()
        )
    })
}

/// The vault account for a REST or feed command, if the vault is to be used: a chosen account,
/// or the only one in an existing vault.
pub(crate) async fn session_account(globals: &Globals) -> anyhow::Result<Option<VaultAccount>> {
    let config = config(globals)?;
    let dir = config.data_dir.clone();
    let Some(vault) = Vault::open_existing(&config).await? else {
        if let Some(id) = &globals.account {
            anyhow::bail!(
                "--account {id}: there is no vault at {}; run `stoxide login` first (or set --data-dir)",
                dir.display()
            );
        }
        return Ok(None);
    };
    let Some(account) = select(&vault, globals).await? else {
        vault.close().await;
        return Ok(None);
    };
    let token = vault.access_token(&account.id).await?.with_context(|| {
        format!(
            "account {} has no token (logged out); run `stoxide login --account {}`",
            account.id, account.id
        )
    })?;
    Ok(Some(VaultAccount { account, token, vault }))
}

/// Asks the profile endpoint whether `token` works.
pub(crate) async fn probe(
    base_url: &str,
    token: &SecretString,
) -> anyhow::Result<(CheckOutcome, Option<upstox_client::user::Profile>)> {
    let client = stoxide_vault::check::client_for(base_url)?;
    Ok(stoxide_vault::check::probe(&client, token).await)
}

/// The account's status, checked with Upstox unless a recent check exists.
pub(crate) async fn status(vault: &Vault, account: &Account, force: bool) -> anyhow::Result<TokenStatus> {
    let client = stoxide_vault::check::client_for(&account.base_url)?;
    Ok(stoxide_vault::check::status(vault, account, force, &client).await?)
}

/// Starts watching `account_id` in `vault` for a stream (see [`stoxide_vault::watch_token`]);
/// the watcher is the stream's token source, `notify` gets its events in words.
pub(crate) fn watch(
    vault: Vault,
    account_id: String,
    first_token: SecretString,
    cancel: tokio_util::sync::CancellationToken,
    notify: impl Fn(String) + Send + Sync + 'static,
) -> impl upstox_feed::TokenSource {
    let watch = stoxide_vault::watch_token(
        vault,
        account_id,
        first_token,
        Duration::from_secs(5),
        cancel,
        move |event| notify(crate::words::token_event(&event)),
    );
    move || watch.current()
}
