//! What the vault says about accounts and apps without opening any secret: these types carry
//! no token and no app secret, so they can be printed, logged and serialized freely.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// How an app is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppMode {
    /// A user's own app (one account).
    Individual,
    /// One app that many users log in to.
    Vendor,
}

impl AppMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Vendor => "vendor",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        if s == "vendor" { Self::Vendor } else { Self::Individual }
    }
}

/// How a token reached the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenOrigin {
    /// The OAuth authorization-code flow (`stoxide login`).
    Oauth,
    /// The v3 access-token request (`stoxide login --request`).
    TokenRequest,
    /// A plain token file (`stoxide token import`).
    Imported,
}

impl TokenOrigin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Oauth => "oauth",
            Self::TokenRequest => "token-request",
            Self::Imported => "imported",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "oauth" => Some(Self::Oauth),
            "token-request" => Some(Self::TokenRequest),
            "imported" => Some(Self::Imported),
            _ => None,
        }
    }
}

/// An app's credentials to store. Debug hides the secret.
#[derive(Clone)]
pub struct NewApp {
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub redirect_uri: String,
    pub mode: AppMode,
    /// The API base URL the app is used against.
    pub base_url: String,
}

impl std::fmt::Debug for NewApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApp")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("redirect_uri", &self.redirect_uri)
            .field("mode", &self.mode)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// A stored app, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub mode: AppMode,
    pub base_url: String,
    pub has_secret: bool,
}

/// A token to store. Debug hides the tokens.
#[derive(Clone)]
pub struct NewToken {
    /// The Upstox user id.
    pub account_id: String,
    pub client_id: Option<String>,
    pub user_name: Option<String>,
    pub base_url: String,
    pub access_token: SecretString,
    pub extended_token: Option<SecretString>,
    pub issued_at: DateTime<Utc>,
    /// `None`: the first 03:30 IST after `issued_at`.
    pub expires_at: Option<DateTime<Utc>>,
    pub origin: TokenOrigin,
}

impl NewToken {
    /// A token given to us as it is (a token file, a simulator's seeded user), issued now.
    pub fn imported(account_id: impl Into<String>, base_url: impl Into<String>, access_token: SecretString) -> Self {
        Self {
            account_id: account_id.into(),
            client_id: None,
            user_name: None,
            base_url: base_url.into(),
            access_token,
            extended_token: None,
            issued_at: Utc::now(),
            expires_at: None,
            origin: TokenOrigin::Imported,
        }
    }

    /// The tokens of an OAuth code exchange, issued now, for the user the answer names.
    pub fn from_exchange(tokens: &upstox_client::login::TokenResponse, client_id: &str, base_url: &str) -> Self {
        Self {
            account_id: tokens.profile.user_id.clone(),
            client_id: Some(client_id.to_owned()),
            user_name: tokens.profile.user_name.clone(),
            base_url: base_url.to_owned(),
            access_token: tokens.access_token.clone(),
            extended_token: tokens.extended_token.clone(),
            issued_at: chrono::Utc::now(),
            expires_at: None,
            origin: TokenOrigin::Oauth,
        }
    }
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .field("access_token", &"<redacted>")
            .field("extended_token", &self.extended_token.as_ref().map(|_| "<redacted>"))
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The outcome of asking Upstox whether a token works (the profile endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// The profile answered.
    Valid,
    /// Upstox refused the token.
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Upstox could not be asked.
    Unreachable { reason: String },
}

/// A check and when it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub outcome: CheckOutcome,
}

/// An account as the vault describes it: no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The Upstox user id.
    pub id: String,
    pub client_id: Option<String>,
    pub user_name: Option<String>,
    pub base_url: String,
    pub has_token: bool,
    pub has_extended_token: bool,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub origin: Option<TokenOrigin>,
    pub last_check: Option<Check>,
}
