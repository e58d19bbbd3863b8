//! The CLI's side of the token vault: where it lives, which account a command acts for, the
//! token check against the profile endpoint (with a short cache), and the token source that
//! long-running streams use to pick up a new login and warn ahead of 03:30 IST.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use parking_lot::RwLock;
use secrecy::ExposeSecret;
use stoxide_vault::{Account, Check, CheckOutcome, TokenStatus, Vault, assess};
use upstox_client::{ClientConfig, UpstoxClient};

use crate::settings::{Globals, hosts_for};

/// A token check younger than this is trusted without asking Upstox again.
const CHECK_CACHE: chrono::Duration = chrono::Duration::seconds(60);

/// An account and its decrypted token, for one command. Debug hides the token.
pub(crate) struct VaultAccount {
    pub account: Account,
    pub token: String,
    pub data_dir: PathBuf,
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

/// Opens (creating on first use) the vault.
pub(crate) async fn open(globals: &Globals) -> anyhow::Result<Vault> {
    let dir = data_dir(globals)?;
    Ok(Vault::open(&dir).await?)
}

/// Opens the vault if there is one; never creates it.
pub(crate) async fn open_existing(globals: &Globals) -> anyhow::Result<Option<Vault>> {
    let dir = data_dir(globals)?;
    Ok(Vault::open_existing(&dir).await?)
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
    let dir = data_dir(globals)?;
    let Some(vault) = Vault::open_existing(&dir).await? else {
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
    let token = token.expose_secret().to_owned();
    vault.close().await;
    Ok(Some(VaultAccount {
        account,
        token,
        data_dir: dir,
    }))
}

/// Asks the profile endpoint whether `token` works.
pub(crate) async fn probe(
    base_url: &str,
    token: &str,
) -> anyhow::Result<(CheckOutcome, Option<upstox_client::user::Profile>)> {
    let mut config = ClientConfig::new(hosts_for(base_url)?);
    config.timeout = Duration::from_secs(10);
    let client = UpstoxClient::new(config)?.with_token(token.to_owned());
    Ok(match client.profile().await {
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
    })
}

/// The account's status, checking with Upstox unless a check younger than a minute exists or
/// the token is already past 03:30 IST.
pub(crate) async fn status(vault: &Vault, account: &Account, force: bool) -> anyhow::Result<TokenStatus> {
    let now = Utc::now();
    let expired = account.expires_at.is_some_and(|e| now >= e);
    let fresh = account.last_check.as_ref().is_some_and(|c| now - c.at < CHECK_CACHE);
    if !account.has_token || expired || (fresh && !force) {
        return Ok(assess(account, now));
    }
    let Some(token) = vault.access_token(&account.id).await? else {
        return Ok(assess(account, now));
    };
    let (outcome, _) = probe(&account.base_url, token.expose_secret()).await?;
    let check = Check { at: now, outcome };
    vault.record_check(&account.id, &check).await?;
    let mut updated = account.clone();
    updated.last_check = Some(check);
    Ok(assess(&updated, now))
}

/// A token source for streams: the vault is re-read every few seconds, so a new login (or
/// token request) is used at the next connect without a restart; ahead of 03:30 IST it warns.
#[derive(Clone)]
pub(crate) struct VaultTokenSource {
    current: Arc<RwLock<Option<String>>>,
}

impl std::fmt::Debug for VaultTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultTokenSource(<redacted>)")
    }
}

impl upstox_feed::TokenSource for VaultTokenSource {
    fn token(&self) -> Option<String> {
        self.current.read().clone()
    }
}

/// Starts watching `account` in the vault at `data_dir`. `notify` receives the warnings (ahead
/// of expiry, a new token picked up, a vault that cannot be read). The task ends with `cancel`.
pub(crate) async fn watch(
    data_dir: PathBuf,
    account_id: String,
    first_token: String,
    cancel: tokio_util::sync::CancellationToken,
    notify: impl Fn(String) + Send + Sync + 'static,
) -> VaultTokenSource {
    watch_every(
        Duration::from_secs(5),
        data_dir,
        account_id,
        first_token,
        cancel,
        notify,
    )
    .await
}

async fn watch_every(
    poll: Duration,
    data_dir: PathBuf,
    account_id: String,
    first_token: String,
    cancel: tokio_util::sync::CancellationToken,
    notify: impl Fn(String) + Send + Sync + 'static,
) -> VaultTokenSource {
    let source = VaultTokenSource {
        current: Arc::new(RwLock::new(Some(first_token))),
    };
    let shared = source.current.clone();
    tokio::spawn(async move {
        let mut last_warned = None;
        let mut interval = tokio::time::interval(poll);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = interval.tick() => {}
            }
            let read = async {
                let vault = Vault::open_existing(&data_dir).await?.context("the vault is gone")?;
                let account = vault.account(&account_id).await?;
                let token = vault.access_token(&account_id).await?;
                vault.close().await;
                anyhow::Ok((account, token))
            };
            match read.await {
                Ok((account, token)) => {
                    let token = token.map(|t| t.expose_secret().to_owned());
                    let changed = *shared.read() != token;
                    if changed {
                        *shared.write() = token.clone();
                        last_warned = None;
                        if token.is_some() {
                            notify(format!("picked up a new token for {account_id} from the vault"));
                        } else {
                            notify(format!("the token of {account_id} was wiped from the vault (logout)"));
                        }
                    }
                    if let Some(exp) = account.and_then(|a| a.expires_at)
                        && let Some(w) = stoxide_vault::status::expiry_warning(exp, Utc::now(), last_warned)
                    {
                        last_warned = Some(w);
                        notify(format!(
                            "the token of {account_id} expires at 03:30 IST, in {}; run `stoxide login --account {account_id}` — this stream picks the new token up by itself",
                            stoxide_vault::status::human(exp - Utc::now())
                        ));
                    }
                }
                Err(e) => notify(format!("cannot read the vault: {e:#}")),
            }
        }
    });
    source
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use stoxide_vault::{NewToken, TokenOrigin};
    use upstox_feed::TokenSource;

    fn token(value: &str, expires_in: chrono::Duration) -> NewToken {
        NewToken {
            account_id: "SIM001".into(),
            client_id: None,
            user_name: None,
            base_url: "http://127.0.0.1:9".into(),
            access_token: SecretString::from(value.to_owned()),
            extended_token: None,
            issued_at: Utc::now(),
            expires_at: Some(Utc::now() + expires_in),
            origin: TokenOrigin::Oauth,
        }
    }

    #[tokio::test]
    async fn a_stream_picks_up_a_new_login_and_warns_ahead_of_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Vault::open(dir.path()).await.expect("vault");
        vault
            .store_token(&token("first-token-0123456789", chrono::Duration::hours(5)))
            .await
            .expect("store");
        let notices = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
        let sink = notices.clone();
        let cancel = tokio_util::sync::CancellationToken::new();
        let source = watch_every(
            Duration::from_millis(20),
            dir.path().to_owned(),
            "SIM001".into(),
            "first-token-0123456789".into(),
            cancel.clone(),
            move |m| sink.lock().push(m),
        )
        .await;
        assert_eq!(source.token().as_deref(), Some("first-token-0123456789"));

        // A new login that expires in ten minutes.
        vault
            .store_token(&token("second-token-0123456789", chrono::Duration::minutes(10)))
            .await
            .expect("store");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while notices.lock().len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(source.token().as_deref(), Some("second-token-0123456789"));
        let seen = notices.lock().clone();
        assert!(
            seen.iter().any(|n| n.contains("picked up a new token for SIM001")),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|n| n.contains("expires at 03:30 IST, in 9m")),
            "{seen:?}"
        );
        assert_eq!(
            seen.iter().filter(|n| n.contains("expires")).count(),
            1,
            "warned once: {seen:?}"
        );
        assert!(
            seen.iter().all(|n| !n.contains("second-token")),
            "no token in a notice: {seen:?}"
        );
        assert!(format!("{source:?}").contains("redacted"));
        cancel.cancel();
    }
}
