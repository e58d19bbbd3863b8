//! Keeping a long-running process's token current: the process's vault handle is asked every few
//! seconds, so a new login (or token request) is used at the next connect without a restart, and
//! events are raised ahead of 03:30 IST. The token stays a `SecretString`; events carry none.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::status::expiry_warning;
use crate::vault::Vault;

/// The current token of one account. Debug shows nothing of it.
#[derive(Clone)]
pub struct TokenWatch {
    current: Arc<RwLock<Option<SecretString>>>,
}

impl std::fmt::Debug for TokenWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenWatch(<redacted>)")
    }
}

impl TokenWatch {
    /// The token to connect with now (`None` after a logout).
    pub fn current(&self) -> Option<SecretString> {
        self.current.read().clone()
    }
}

/// What the watcher noticed; front ends put it in their own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEvent {
    /// A new login's token replaced the one in use.
    Replaced { account: String },
    /// The token was wiped (a logout).
    Wiped { account: String },
    /// The token dies at `expires_at` (03:30 IST): raised 1 h, 15 min and 2 min ahead.
    ExpiresSoon { account: String, expires_at: DateTime<Utc> },
    /// The vault could not be read (the error, in words without secrets).
    Unreadable { account: String, error: String },
    /// The account is no longer in the vault.
    Gone { account: String },
}

/// Starts a task that reads `account_id` from `vault` every `poll` until `cancel`, raising a
/// [`TokenEvent`] for each change and warning. Needs a Tokio runtime; the task ends with
/// `cancel` (its owner's shutdown path).
pub fn watch_token(
    vault: Vault,
    account_id: String,
    first_token: SecretString,
    poll: Duration,
    cancel: CancellationToken,
    notify: impl Fn(TokenEvent) + Send + Sync + 'static,
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
                let account = vault.account(&account_id).await?;
                let token = match account {
                    Some(_) => vault.access_token(&account_id).await?,
                    None => None,
                };
                Ok::<_, crate::Error>((account, token))
            };
            let account = account_id.clone();
            match read.await {
                Ok((None, _)) => notify(TokenEvent::Gone { account }),
                Ok((Some(record), token)) => {
                    let changed = {
                        let current = shared.read();
                        current.as_ref().map(|t| t.expose_secret().to_owned())
                            != token.as_ref().map(|t| t.expose_secret().to_owned())
                    };
                    if changed {
                        let wiped = token.is_none();
                        *shared.write() = token;
                        last_warned = None;
                        notify(if wiped {
                            TokenEvent::Wiped {
                                account: account.clone(),
                            }
                        } else {
                            TokenEvent::Replaced {
                                account: account.clone(),
                            }
                        });
                    }
                    if let Some(exp) = record.expires_at
                        && let Some(w) = expiry_warning(exp, Utc::now(), last_warned)
                    {
                        last_warned = Some(w);
                        notify(TokenEvent::ExpiresSoon {
                            account,
                            expires_at: exp,
                        });
                    }
                }
                Err(e) => notify(TokenEvent::Unreadable {
                    account,
                    error: e.to_string(),
                }),
            }
        }
    });
    watch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewToken, TokenOrigin, VaultConfig};

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
        let vault = Vault::open(&VaultConfig::sqlite(dir.path())).await.expect("vault");
        vault
            .store_token(&token("first-token-0123456789", chrono::Duration::hours(5)))
            .await
            .expect("store");
        let events = Arc::new(std::sync::Mutex::new(Vec::<TokenEvent>::new()));
        let sink = events.clone();
        let cancel = CancellationToken::new();
        let source = watch_token(
            vault.clone(),
            "SIM001".into(),
            SecretString::from("first-token-0123456789"),
            Duration::from_millis(20),
            cancel.clone(),
            move |e| sink.lock().expect("lock").push(e),
        );
        assert_eq!(
            source.current().map(|t| t.expose_secret().to_owned()).as_deref(),
            Some("first-token-0123456789")
        );

        // A new login that expires in ten minutes.
        vault
            .store_token(&token("second-token-0123456789", chrono::Duration::minutes(10)))
            .await
            .expect("store");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while events.lock().expect("lock").len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            source.current().map(|t| t.expose_secret().to_owned()).as_deref(),
            Some("second-token-0123456789")
        );
        let seen = events.lock().expect("lock").clone();
        assert!(
            seen.contains(&TokenEvent::Replaced {
                account: "SIM001".into()
            }),
            "{seen:?}"
        );
        assert_eq!(
            seen.iter()
                .filter(|e| matches!(e, TokenEvent::ExpiresSoon { .. }))
                .count(),
            1,
            "warned once: {seen:?}"
        );
        assert!(!format!("{seen:?}").contains("second-token"), "no token in an event");
        assert!(format!("{source:?}").contains("redacted"));

        vault.wipe_token("SIM001").await.expect("logout");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while source.current().is_some() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(source.current().is_none());
        assert!(events.lock().expect("lock").contains(&TokenEvent::Wiped {
            account: "SIM001".into()
        }));
        cancel.cancel();
    }
}
