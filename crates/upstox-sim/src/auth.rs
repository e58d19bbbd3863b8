//! Apps, users, authorization codes, access tokens and v3 access-token requests.
//!
//! Rules from api-facts §2: codes are single-use (even when the exchange fails) and live ten
//! minutes; tokens die at the first 03:30 IST after issue by the simulator's clock; a new
//! token for the same app and user revokes the previous one; extended tokens only read.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rand::Rng;
use upstox_types::{error_code, token_expiry};

use crate::config::{AppConfig, SimConfig, UserConfig};
use crate::error::ApiError;

/// Why a token no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// A newer login for the same app and user.
    Superseded,
    LoggedOut,
}

/// What the simulator knows of one issued token.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub user_id: String,
    pub client_id: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked: Option<Revoked>,
    pub extended: bool,
}

#[derive(Debug, Clone)]
struct CodeRecord {
    user_id: String,
    client_id: String,
    redirect_uri: String,
    issued_at: DateTime<Utc>,
}

/// A pending v3 access-token request.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub client_id: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub extended_token: Option<String>,
    pub record: TokenRecord,
}

/// The store.
#[derive(Debug)]
pub struct AuthStore {
    apps: HashMap<String, AppConfig>,
    users: HashMap<String, UserConfig>,
    tokens: HashMap<String, TokenRecord>,
    codes: HashMap<String, CodeRecord>,
    requests: HashMap<String, TokenRequest>,
}

fn random_token(prefix: &str, bytes: usize) -> String {
    let mut rng = rand::rng();
    let body: String = (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect();
    format!("{prefix}{body}")
}

const CODE_TTL_SECS: i64 = 600;

impl AuthStore {
    pub fn new(config: &SimConfig) -> Self {
        Self {
            apps: config.apps.iter().map(|a| (a.client_id.clone(), a.clone())).collect(),
            users: config.users.iter().map(|u| (u.user_id.clone(), u.clone())).collect(),
            tokens: HashMap::new(),
            codes: HashMap::new(),
            requests: HashMap::new(),
        }
    }

    pub fn app(&self, client_id: &str) -> Option<&AppConfig> {
        self.apps.get(client_id)
    }

    pub fn user(&self, user_id: &str) -> Option<&UserConfig> {
        self.users.get(user_id)
    }

    /// Checks the dialog's client_id and redirect_uri (UDAPI100068 when either is wrong).
    ///
    /// # Errors
    /// `UDAPI100068` as the real dialog answers.
    pub fn check_dialog(
        &self,
        client_id: &str,
        redirect_uri: &str,
        response_type: &str,
    ) -> Result<&AppConfig, ApiError> {
        match self.apps.get(client_id) {
            Some(app) if app.redirect_uri == redirect_uri && response_type == "code" => Ok(app),
            _ => Err(ApiError::bad_request(
                error_code::BAD_CLIENT_OR_REDIRECT,
                "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.",
            )),
        }
    }

    /// Checks the user's id and PIN on the dialog form and issues a single-use code.
    ///
    /// # Errors
    /// `UDAPI100016` for a wrong user id or PIN.
    pub fn login(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        user_id: &str,
        pin: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        self.check_dialog(client_id, redirect_uri, "code")?;
        match self.users.get(user_id) {
            Some(u) if u.pin == pin => {}
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    error_code::INVALID_CREDENTIALS,
                    "Invalid Credentials",
                ));
            }
        }
        let code = random_token("", 4);
        self.codes.insert(
            code.clone(),
            CodeRecord {
                user_id: user_id.into(),
                client_id: client_id.into(),
                redirect_uri: redirect_uri.into(),
                issued_at: now,
            },
        );
        Ok(code)
    }

    /// Exchanges a code for tokens. The code is consumed whatever the outcome.
    ///
    /// # Errors
    /// `UDAPI100057` unknown/used/expired code, `UDAPI100069` wrong client or secret,
    /// `UDAPI100070` wrong redirect_uri, `UDAPI100038` bad grant_type.
    pub fn exchange(
        &mut self,
        code: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
        grant_type: &str,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, ApiError> {
        let record = self.codes.remove(code);
        if grant_type != "authorization_code" {
            return Err(
                ApiError::bad_request(error_code::INVALID_INPUT, "grant_type must be authorization_code")
                    .with_property("grant_type", Some(grant_type.into())),
            );
        }
        let record = match record {
            Some(r) if (now - r.issued_at).num_seconds() <= CODE_TTL_SECS => r,
            _ => {
                return Err(
                    ApiError::bad_request(error_code::INVALID_AUTH_CODE, "Invalid Auth code")
                        .with_property("code", None),
                );
            }
        };
        let app_ok = self
            .apps
            .get(client_id)
            .is_some_and(|a| a.client_secret == client_secret);
        if !app_ok || record.client_id != client_id {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                error_code::INVALID_CLIENT_CREDENTIALS,
                "Invalid client credentials",
            ));
        }
        if record.redirect_uri != redirect_uri {
            return Err(
                ApiError::bad_request(error_code::INVALID_REDIRECT_URI, "Invalid redirect_uri")
                    .with_property("redirect_uri", Some(redirect_uri.into())),
            );
        }
        Ok(self.issue(&record.user_id, client_id, now))
    }

    /// Issues a token for a user and app, revoking the previous one of the same pair.
    pub fn issue(&mut self, user_id: &str, client_id: &str, now: DateTime<Utc>) -> IssuedTokens {
        for t in self.tokens.values_mut() {
            if t.user_id == user_id && t.client_id == client_id && t.revoked.is_none() {
                t.revoked = Some(Revoked::Superseded);
            }
        }
        let record = TokenRecord {
            user_id: user_id.into(),
            client_id: client_id.into(),
            issued_at: now,
            expires_at: token_expiry(now),
            revoked: None,
            extended: false,
        };
        let access_token = random_token("sim_at_", 24);
        self.tokens.insert(access_token.clone(), record.clone());
        let extended_token = self.apps.get(client_id).filter(|a| a.extended_token).map(|_| {
            let t = random_token("sim_et_", 24);
            let ext = TokenRecord {
                expires_at: now + chrono::Duration::days(365),
                extended: true,
                ..record.clone()
            };
            self.tokens.insert(t.clone(), ext);
            t
        });
        IssuedTokens {
            access_token,
            extended_token,
            record,
        }
    }

    /// The live record of a bearer token.
    ///
    /// # Errors
    /// 401 `UDAPI100050` for unknown, expired or revoked tokens.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Result<&TokenRecord, ApiError> {
        match self.tokens.get(token) {
            Some(r) if r.revoked.is_none() && now < r.expires_at => Ok(r),
            _ => Err(ApiError::invalid_token()),
        }
    }

    /// Revokes a token (logout).
    pub fn logout(&mut self, token: &str) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.revoked = Some(Revoked::LoggedOut);
        }
    }

    /// Starts a v3 access-token request for the app's user.
    ///
    /// # Errors
    /// `UDAPI100069` for an unknown app or wrong secret; `UDAPI100038` when no user owns the app.
    pub fn request_token(
        &mut self,
        client_id: &str,
        client_secret: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenRequest), ApiError> {
        if self
            .apps
            .get(client_id)
            .is_none_or(|a| a.client_secret != client_secret)
        {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                error_code::INVALID_CLIENT_CREDENTIALS,
                "Invalid client credentials",
            ));
        }
        let mut owners: Vec<&UserConfig> = self
            .users
            .values()
            .filter(|u| u.app.as_deref() == Some(client_id))
            .collect();
        owners.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let user = owners.first().ok_or_else(|| {
            ApiError::bad_request(
                error_code::INVALID_INPUT,
                "No user has this app; set `app` on a user in the simulator config",
            )
        })?;
        let request = TokenRequest {
            client_id: client_id.into(),
            user_id: user.user_id.clone(),
            expires_at: token_expiry(now),
        };
        let id = random_token("req_", 8);
        self.requests.insert(id.clone(), request.clone());
        Ok((id, request))
    }

    /// Takes a pending request out of the store (approve or reject).
    pub fn take_request(&mut self, id: &str) -> Option<TokenRequest> {
        self.requests.remove(id)
    }

    /// Ids of pending requests.
    pub fn pending_requests(&self) -> Vec<String> {
        self.requests.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_and_new_login_revokes_old_token() {
        let config = SimConfig::default();
        let mut store = AuthStore::new(&config);
        let now = Utc::now();
        let app = &config.apps[0];
        let code = store
            .login(&app.client_id, &app.redirect_uri, "SIM001", "123456", now)
            .expect("login");
        let first = store
            .exchange(
                &code,
                &app.client_id,
                &app.client_secret,
                &app.redirect_uri,
                "authorization_code",
                now,
            )
            .expect("exchange");
        let again = store.exchange(
            &code,
            &app.client_id,
            &app.client_secret,
            &app.redirect_uri,
            "authorization_code",
            now,
        );
        assert_eq!(again.expect_err("reused").code, error_code::INVALID_AUTH_CODE);
        assert!(store.check(&first.access_token, now).is_ok());
        let second = store.issue("SIM001", &app.client_id, now);
        assert!(store.check(&first.access_token, now).is_err());
        assert!(store.check(&second.access_token, now).is_ok());
        assert!(store.check(&second.access_token, second.record.expires_at).is_err());
    }

    #[test]
    fn wrong_secret_burns_the_code() {
        let config = SimConfig::default();
        let mut store = AuthStore::new(&config);
        let now = Utc::now();
        let app = &config.apps[0];
        let code = store
            .login(&app.client_id, &app.redirect_uri, "SIM001", "123456", now)
            .expect("login");
        let bad = store.exchange(
            &code,
            &app.client_id,
            "nope",
            &app.redirect_uri,
            "authorization_code",
            now,
        );
        assert_eq!(
            bad.expect_err("bad secret").code,
            error_code::INVALID_CLIENT_CREDENTIALS
        );
        let good = store.exchange(
            &code,
            &app.client_id,
            &app.client_secret,
            &app.redirect_uri,
            "authorization_code",
            now,
        );
        assert!(good.is_err());
    }
}
