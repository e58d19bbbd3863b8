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

impl LinkApp {
    /// An app as the vault keeps it, with its opened secret.
    fn stored(app: stoxide_vault::AppRecord, secret: SecretString) -> Self {
        Self {
            creds: AppCredentials {
                client_id: app.client_id,
                client_secret: secret,
                redirect_uri: app.redirect_uri,
            },
            mode: app.mode,
            base_url: app.base_url,
        }
    }
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
            return Ok(Some(LinkApp::stored(app, secret)));
        }
    }
    Ok(None)
}

/// The app `client_id` names: `configured` when it is that one, else an app in the vault with
/// its secret (a client's own app, or one linked before).
///
/// # Errors
/// Vault errors.
pub async fn app_by_id(vault: &Vault, configured: Option<&LinkApp>, client_id: &str) -> Result<Option<LinkApp>> {
    if let Some(app) = configured.filter(|a| a.creds.client_id == client_id) {
        return Ok(Some(app.clone()));
    }
    let Some(app) = vault.apps().await?.into_iter().find(|a| a.client_id == client_id) else {
        return Ok(None);
    };
    Ok(vault
        .app_secret(client_id)
        .await?
        .map(|secret| LinkApp::stored(app, secret)))
}

/// Why a person's own Upstox app (individual mode) is not taken. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnAppError {
    #[error("the API key (client id) is missing or has spaces in it")]
    ClientId,
    #[error("the API secret is missing")]
    Secret,
    #[error("the redirect URI {0:?} is not this server's callback: set it to {1} in your Upstox app, and here")]
    RedirectUri(String, String),
    #[error("that app is already registered here with another secret: check the secret, or ask the operator")]
    Taken,
}

/// Takes a person's own Upstox app (individual mode): its secret sealed in the vault, its
/// redirect URI this server's `callback` (the URL Upstox sends the browser back to). An app
/// already registered here is reused only with the same secret, so nobody replaces another's.
///
/// # Errors
/// [`OwnAppError`] in [`crate::Error::OwnApp`]; vault errors.
pub async fn own_app(vault: &Vault, creds: AppCredentials, callback: &str, base_url: &str) -> Result<LinkApp> {
    use secrecy::ExposeSecret;
    let id = creds.client_id.trim();
    if id.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(OwnAppError::ClientId.into());
    }
    if creds.client_secret.expose_secret().trim().is_empty() {
        return Err(OwnAppError::Secret.into());
    }
    let redirect = creds.redirect_uri.trim();
    if redirect != callback {
        return Err(OwnAppError::RedirectUri(redirect.to_owned(), callback.to_owned()).into());
    }
    if let Some(existing) = vault.app_secret(id).await? {
        let same: bool = sha2_eq(existing.expose_secret(), creds.client_secret.expose_secret().trim());
        if !same {
            return Err(OwnAppError::Taken.into());
        }
    }
    let app = LinkApp {
        creds: AppCredentials {
            client_id: id.to_owned(),
            client_secret: SecretString::from(creds.client_secret.expose_secret().trim().to_owned()),
            redirect_uri: redirect.to_owned(),
        },
        mode: AppMode::Individual,
        base_url: base_url.to_owned(),
    };
    remember(vault, &app, true).await?;
    Ok(app)
}

/// Whether two secrets are equal, compared as digests (the time taken says nothing of them).
fn sha2_eq(a: &str, b: &str) -> bool {
    use sha2::Digest;
    sha2::Sha256::digest(a.as_bytes()) == sha2::Sha256::digest(b.as_bytes())
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

    /// The app (client id) the callback's `state` was issued for, if this process issued it.
    pub fn app_of(&self, query: &CallbackQuery) -> Option<String> {
        query.get("state").and_then(|s| self.states.client_of(s))
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
