//! Keeping a long-running process's token current: the vault is re-read every few seconds, so a
//! new login (or token request) is used at the next connect without a restart, and warnings are
//! given ahead of 03:30 IST. The watcher hands the token out as a plain `String` for the
//! connection only; it never prints it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::status::{expiry_warning, human};
use crate::vault::Vault;

/// The current token of one account. Debug shows nothing of it.
#[derive(Clone)]
pub struct TokenWatch {
    current: Arc<RwLock<Option<String>>>,
}

impl std::fmt::Debug for TokenWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenWatch(<redacted>)")
    }
}

impl TokenWatch {
    /// The token to connect with now (`None` after a logout).
    pub fn current(&self) -> Option<String> {
        self.current.read().ok().and_then(|t| t.clone())
    }
}

/// Starts a task that re-reads `account_id` in the vault at `data_dir` every `poll` until
/// `cancel`. `notify` receives one line per event: a new token picked up, a token wiped, a
/// warning ahead of expiry (1 h, 15 min, 2 min), a vault that cannot be read. Needs a Tokio
/// runtime.
pub fn watch_token(
    data_dir: PathBuf,
    account_id: String,
    first_token: String,
    poll: Duration,
    cancel: CancellationToken,
    notify: impl Fn(String) + Send + Sync + 'static,
) -> TokenWatch {
    let watch = TokenWatch {
        current: Arc::new(RwLock::new(Some(first_token))),
    };
    let shared = watch.current.clone();
    tokio::spawn(async move {
        let mut last_warned = None;
        let mut interval = tokio::time::interval(poll);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = interval.tick() => {}
            }
            let read = async {
                let vault = Vault::open_existing(&data_dir).await?;
                let Some(vault) = vault else {
                    return Ok::<_, crate::Error>(None);
                };
                let account = vault.account(&account_id).await?;
                let token = vault.access_token(&account_id).await?;
                vault.close().await;
                Ok(Some((account, token)))
            };
            match read.await {
                Ok(Some((account, token))) => {
                    let token = token.map(|t| t.expose_secret().to_owned());
                    let changed = shared.read().map(|c| *c != token).unwrap_or(false);
                    if changed {
                        if let Ok(mut c) = shared.write() {
                            *c = token.clone();
                        }
                        last_warned = None;
                        notify(if token.is_some() {
                            format!("picked up a new token for {account_id} from the vault")
                        } else {
                            format!("the token of {account_id} was wiped from the vault (logout)")
                        });
                    }
                    if let Some(exp) = account.and_then(|a| a.expires_at)
                        && let Some(w) = expiry_warning(exp, Utc::now(), last_warned)
                    {
                        last_warned = Some(w);
                        notify(format!(
                            "the token of {account_id} expires at 03:30 IST, in {}; log in again (`stoxide login --account {account_id}`) — the new token is picked up by itself",
                            human(exp - Utc::now())
                        ));
                    }
                }
                Ok(None) => notify(format!("the vault at {} is gone", data_dir.display())),
                Err(e) => notify(format!("cannot read the vault: {e}")),
            }
        }
    });
    watch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewToken, TokenOrigin};
    use secrecy::SecretString;

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
        let notices = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = notices.clone();
        let cancel = CancellationToken::new();
        let source = watch_token(
            dir.path().to_owned(),
            "SIM001".into(),
            "first-token-0123456789".into(),
            Duration::from_millis(20),
            cancel.clone(),
            move |m| sink.lock().expect("lock").push(m),
        );
        assert_eq!(source.current().as_deref(), Some("first-token-0123456789"));

        // A new login that expires in ten minutes.
        vault
            .store_token(&token("second-token-0123456789", chrono::Duration::minutes(10)))
            .await
            .expect("store");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while notices.lock().expect("lock").len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(source.current().as_deref(), Some("second-token-0123456789"));
        let seen = notices.lock().expect("lock").clone();
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
