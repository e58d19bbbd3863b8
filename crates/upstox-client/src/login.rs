//! Login: the authorization-dialog URL, code exchange, v3 access-token request, logout.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::client::{Auth, Body, UpstoxClient};
use crate::error::Result;

/// An app's credentials. The secret is never printed.
#[derive(Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// The token-exchange answer (not wrapped in an envelope): the profile's fields plus the
/// tokens. Debug hides the tokens.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(flatten)]
    pub profile: crate::user::Profile,
    pub access_token: SecretString,
    #[serde(default)]
    pub extended_token: Option<SecretString>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("profile", &self.profile)
            .field("access_token", &"<redacted>")
            .field("extended_token", &self.extended_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The v3 access-token request answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRequestResponse {
    /// Epoch ms, as a string.
    pub authorization_expiry: String,
    #[serde(default)]
    pub notifier_url: Option<String>,
}

impl UpstoxClient {
    /// The authorization-dialog URL the user opens in a browser.
    pub fn authorize_url(&self, client_id: &str, redirect_uri: &str, state: &str) -> String {
        let mut url = format!(
            "{}/v2/login/authorization/dialog",
            self.hosts().api.trim_end_matches('/')
        );
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .finish();
        url.push('?');
        url.push_str(&query);
        url
    }

    /// Exchanges an authorization code for tokens. Never retried: a code is single-use.
    ///
    /// # Errors
    /// `UDAPI100057` for a used or unknown code, `UDAPI100069` for wrong credentials.
    pub async fn exchange_code(&self, app: &AppCredentials, code: &str) -> Result<TokenResponse> {
        let form = vec![
            ("code".to_owned(), code.to_owned()),
            ("client_id".to_owned(), app.client_id.clone()),
            ("client_secret".to_owned(), app.client_secret.expose_secret().to_owned()),
            ("redirect_uri".to_owned(), app.redirect_uri.clone()),
            ("grant_type".to_owned(), "authorization_code".to_owned()),
        ];
        self.send(
            Method::POST,
            "/v2/login/authorization/token",
            &[],
            Body::Form(form),
            Auth::Public,
            false,
        )
        .await
    }

    /// Starts a v3 access-token request; the token arrives on the app's notifier webhook.
    ///
    /// # Errors
    /// Wrong app credentials.
    pub async fn request_access_token(
        &self,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<TokenRequestResponse> {
        let body = Body::Json(serde_json::json!({"client_secret": client_secret.expose_secret()}));
        let path = format!("/v3/login/auth/token/request/{}", crate::client::seg(client_id));
        let env: crate::client::Envelope<TokenRequestResponse> =
            self.send(Method::POST, &path, &[], body, Auth::Public, false).await?;
        Ok(env.data)
    }

    /// Logs out: the token stops working.
    ///
    /// # Errors
    /// When Upstox refuses (e.g. the token was already invalid).
    pub async fn logout(&self) -> Result<bool> {
        Ok(self
            .call_data::<bool, ()>(Method::DELETE, "/v2/logout", &[], None)
            .await?
            .data)
    }
}
