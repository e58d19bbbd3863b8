//! Linking an Upstox account: the app to link with, the OAuth dialog and its callback (a
//! single-use state tied to whoever started the login), and the v3 token request's delivery,
//! believed only when Upstox accepts the delivered token for the user it names.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use stoxide_vault::{Account, AppMode, CheckOutcome, LoginStates, NewApp, NewToken, StateError, TokenOrigin, Vault};
use upstox_client::login::AppCredentials;
use upstox_client::user::Profile;

use crate::clients::Clients;
use crate::error::Result;

/// An Upstox app that accounts are linked with.
#[derive(Debug, Clone)]
pub struct LinkApp {
    pub creds: AppCredentials,
    pub mode: AppMode,
    /// The API base URL (`https://api.upstox.com`, the simulator's URL, ...).
    pub base_url: String,
}

/// An account just linked.
#[derive(Debug, Clone)]
pub struct Linked {
    pub profile: Profile,
    pub account: Account,
}

/// Stores the app (its secret sealed) so later logins and the dashboard find it.
///
/// # Errors
/// Vault errors.
pub async fn remember(vault: &Vault, app: &LinkApp, keep_secret: bool) -> Result<()> {
    vault
        .put_app(&NewApp {
            client_id: app.creds.client_id.clone(),
            secret: keep_secret.then(|| app.creds.client_secret.clone()),
            redirect_uri: app.creds.redirect_uri.clone(),
            mode: app.mode,
            base_url: app.base_url.clone(),
        })
        .await?;
    Ok(())
}

/// The app to link with: `configured`, else the vault's first app with a secret whose redirect
/// URI ends in `callback_path`.
///
/// # Errors
/// Vault errors.
pub async fn find(vault: &Vault, configured: Option<&LinkApp>, callback_path: &str) -> Result<Option<LinkApp>> {
    if let Some(app) = configured {
        return Ok(Some(app.clone()));
    }
    for app in vault.apps().await? {
        if app.redirect_uri.ends_with(callback_path)
            && let Some(secret) = vault.app_secret(&app.client_id).await?
        {
            return Ok(Some(LinkApp {
                creds: AppCredentials {
                    client_id: app.client_id,
                    client_secret: secret,
                    redirect_uri: app.redirect_uri,
                },
                mode: app.mode,
                base_url: app.base_url,
            }));
        }
    }
    Ok(None)
}

/// Why an OAuth callback is refused. Nothing was exchanged or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    #[error(transparent)]
    State(#[from] StateError),
    /// The state was issued to another browser session (or command).
    #[error("this login was started in another session")]
    OtherSession,
    /// Upstox answered the dialog with an error.
    #[error("Upstox refused the login: {0}")]
    Refused(String),
    /// The callback came without an authorization code.
    #[error("the callback came without an authorization code")]
    NoCode,
    /// The app of this login is no longer the one configured.
    #[error("the app of this login is no longer configured")]
    AppGone,
}

/// The logins this process started and waits for.
#[derive(Debug, Default)]
pub struct Logins {
    states: LoginStates,
}

/// The query of a callback: `code` and `state`, or `error`.
pub type CallbackQuery = HashMap<String, String>;

impl Logins {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a login with `app` for `owner` (a browser session's id, or the command waiting
    /// for it); answers the dialog URL to send the user to.
    ///
    /// # Errors
    /// A malformed base URL.
    pub fn start(&self, clients: &Clients, app: &LinkApp, owner: &str) -> Result<String> {
        let state = self.states.issue(&app.creds.client_id, owner, Utc::now());
        Ok(clients
            .client(&app.base_url)?
            .authorize_url(&app.creds.client_id, &app.creds.redirect_uri, &state))
    }

    /// Finishes a login from its callback: the state must be one this process issued to
    /// `owner`, unused and under ten minutes old; then the code is exchanged and the token
    /// stored (checked: Upstox just issued it).
    ///
    /// # Errors
    /// [`LoginError`] for a callback that cannot be believed; the exchange's and the vault's
    /// errors.
    pub async fn finish(
        &self,
        vault: &Vault,
        clients: &Clients,
        app: &LinkApp,
        query: &CallbackQuery,
        owner: &str,
    ) -> Result<Linked> {
        let pending = self
            .states
            .take(query.get("state").map(String::as_str), Utc::now())
            .map_err(LoginError::from)?;
        if pending.owner != owner {
            return Err(LoginError::OtherSession.into());
        }
        if let Some(err) = query.get("error") {
            return Err(LoginError::Refused(err.clone()).into());
        }
        let code = query.get("code").filter(|c| !c.is_empty()).ok_or(LoginError::NoCode)?;
        if pending.client_id != app.creds.client_id {
            return Err(LoginError::AppGone.into());
        }
        let tokens = clients.client(&app.base_url)?.exchange_code(&app.creds, code).await?;
        let profile = tokens.profile.clone();
        let account = vault
            .store_checked(&NewToken::from_exchange(&tokens, &app.creds.client_id, &app.base_url))
            .await?;
        Ok(Linked { profile, account })
    }
}

/// Why a token delivery is refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    #[error("the delivery is not JSON")]
    NotJson,
    #[error("the delivery is not an access token for this app")]
    OtherApp,
    /// Upstox does not accept the delivered token for the user the delivery names.
    #[error("Upstox does not accept the delivered token for the user it names")]
    NotAccepted,
    /// Upstox could not be asked.
    #[error("the delivered token cannot be checked: {0}")]
    CannotCheck(String),
}

fn epoch_ms(v: &serde_json::Value, key: &str) -> Option<chrono::DateTime<Utc>> {
    let ms = match v.get(key)? {
        serde_json::Value::String(s) => s.parse().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    Utc.timestamp_millis_opt(ms).single()
}

/// Believes and stores a v3 access-token delivery (the notifier webhook's body). Deliveries
/// carry no signature, so the token is stored only when Upstox's profile endpoint accepts it
/// for the user the delivery names.
///
/// # Errors
/// [`DeliveryError`] for a delivery that cannot be believed; vault errors.
pub async fn accept_delivery(vault: &Vault, clients: &Clients, app: &LinkApp, body: &[u8]) -> Result<Linked> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| DeliveryError::NotJson)?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    if field("message_type") != "access_token" || field("client_id") != app.creds.client_id {
        return Err(DeliveryError::OtherApp.into());
    }
    let token = SecretString::from(field("access_token"));
    let user_id = field("user_id").to_owned();
    let client = clients.client(&app.base_url)?.for_user(&user_id, token.clone());
    let (outcome, profile) = stoxide_vault::check::probe_with(&client).await;
    if let CheckOutcome::Unreachable { reason } = &outcome {
        return Err(DeliveryError::CannotCheck(reason.clone()).into());
    }
    let profile = profile
        .filter(|p| outcome == CheckOutcome::Valid && p.user_id == user_id)
        .ok_or(DeliveryError::NotAccepted)?;
    let account = vault
        .store_checked(&NewToken {
            account_id: profile.user_id.clone(),
            client_id: Some(app.creds.client_id.clone()),
            user_name: profile.user_name.clone(),
            base_url: app.base_url.clone(),
            access_token: token,
            extended_token: None,
            issued_at: epoch_ms(&v, "issued_at").unwrap_or_else(Utc::now),
            expires_at: epoch_ms(&v, "expires_at"),
            origin: TokenOrigin::TokenRequest,
        })
        .await?;
    Ok(Linked { profile, account })
}
