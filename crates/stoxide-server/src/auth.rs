//! The dashboard's own access: one local admin account (password hashed with argon2id, kept in
//! `<data dir>/dashboard-admin.json`, mode 0600), session cookies (HttpOnly, SameSite=Lax, random
//! 256-bit ids, 12 h), and a CSRF token per session that every form must carry. The login form
//! itself uses a double-submit cookie.

use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use parking_lot::RwLock;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{Error, Result};

pub(crate) const SESSION_COOKIE: &str = "stoxide_session";
pub(crate) const LOGIN_CSRF_COOKIE: &str = "stoxide_login_csrf";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// 32 random bytes as hex.
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares without stopping at the first difference.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value from the request headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (the OAuth callback is a top-level navigation
/// from Upstox and must carry the session), Path=/.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<Duration>) -> HeaderValue {
    let age = max_age
        .map(|d| format!("; Max-Age={}", d.as_secs()))
        .unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[derive(Serialize, Deserialize)]
struct AdminRecord {
    username: String,
    /// PHC string, argon2id.
    password_hash: String,
}

/// The local admin account.
#[derive(Debug)]
pub struct AdminStore {
    path: PathBuf,
    record: RwLock<Option<(String, String)>>,
}

impl AdminStore {
    /// Reads `<data_dir>/dashboard-admin.json` if it exists.
    ///
    /// # Errors
    /// A file that is not an admin record.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("dashboard-admin.json");
        let record = match std::fs::read(&path) {
            Ok(bytes) => {
                let r: AdminRecord = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::BadRequest(format!(
                        "{} is not a dashboard admin file ({e}); remove it and set the password again",
                        path.display()
                    ))
                })?;
                Some((r.username, r.password_hash))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Internal(format!("cannot read {}: {e}", path.display()))),
        };
        Ok(Self {
            path,
            record: RwLock::new(record),
        })
    }

    /// Whether an admin account exists.
    pub fn exists(&self) -> bool {
        self.record.read().is_some()
    }

    /// Sets (or replaces) the admin account.
    ///
    /// # Errors
    /// A password shorter than 12 characters; filesystem errors.
    pub fn set(&self, username: &str, password: &str) -> Result<()> {
        if password.chars().count() < 12 {
            return Err(Error::BadRequest(
                "the admin password needs at least 12 characters".into(),
            ));
        }
        if username.trim().is_empty() {
            return Err(Error::BadRequest("the admin user name is empty".into()));
        }
        if username.starts_with(PERSON_PREFIX) {
            return Err(Error::BadRequest(format!(
                "the admin user name may not start with {PERSON_PREFIX:?}"
            )));
        }
        let hash = Argon2::default()
            .hash_password(password.as_bytes())
            .map_err(|e| Error::Internal(format!("argon2: {e}")))?
            .to_string();
        let record = AdminRecord {
            username: username.to_owned(),
            password_hash: hash.clone(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?;
        write_private(&self.path, &json)?;
        *self.record.write() = Some((username.to_owned(), hash));
        Ok(())
    }

    /// Checks a login. Always runs argon2 (against a dummy hash for an unknown user) so the time
    /// taken does not tell which part was wrong.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        let record = self.record.read().clone();
        let (user_ok, hash) = match &record {
            Some((u, h)) => (same(u, username), h.clone()),
            None => (false, String::new()),
        };
        let parsed = PasswordHash::new(&hash).ok();
        let password_ok = match parsed {
            Some(p) => Argon2::default().verify_password(password.as_bytes(), &p).is_ok(),
            None => {
                let _ = Argon2::default().hash_password(password.as_bytes());
                false
            }
        };
        user_ok && password_ok
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    stoxide_vault::key::write_private_file(path, bytes)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: String,
    pub csrf: String,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The store's key for a session id: its SHA-256, so the store never holds a usable cookie.
fn id_hash(id: &str) -> String {
    sha256_hex(&[b"stoxide session\0", id.as_bytes()])
}

/// The session's CSRF token: derived from its id, so it needs no storing and no other session
/// can have it.
fn csrf_of(id: &str) -> String {
    sha256_hex(&[b"stoxide csrf\0", id.as_bytes()])
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

const PUBLIC_ID_LEN: usize = 16;

/// One live session as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Session users that are portal people (`person:<id>`), not the dashboard's admin.
pub const PERSON_PREFIX: &str = "person:";

/// Signed-in browsers, in the store (they survive a restart). Only hashes of the session ids
/// are stored.
#[derive(Debug, Clone)]
pub struct Sessions {
    store: stoxide_store::Store,
}

impl Sessions {
    /// Sessions kept in `store`.
    pub fn new(store: stoxide_store::Store) -> Self {
        Self { store }
    }

    /// Starts a session; answers its id (the cookie value). Expired sessions are forgotten.
    ///
    /// # Errors
    /// Store errors.
    pub async fn create(&self, user: &str) -> Result<String> {
        self.create_for(user, SESSION_TTL).await
    }

    /// Starts a session that lasts `ttl`; answers its id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn create_for(&self, user: &str, ttl: Duration) -> Result<String> {
        let id = random_hex();
        let now = now_ms();
        self.store.prune_sessions(now).await.map_err(store_error)?;
        self.store
            .put_session(&stoxide_store::SessionRow {
                id_hash: id_hash(&id),
                username: user.to_owned(),
                created_at: now,
                expires_at: now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2),
                last_seen_at: now,
                flash: None,
            })
            .await
            .map_err(store_error)?;
        Ok(id)
    }

    /// The live session with this id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn get(&self, id: &str) -> Result<Option<WebSession>> {
        let row = self.store.session(&id_hash(id), now_ms()).await.map_err(store_error)?;
        Ok(row.map(|r| WebSession {
            user: r.username,
            csrf: csrf_of(id),
        }))
    }

    /// Ends a session.
    ///
    /// # Errors
    /// Store errors.
    pub async fn remove(&self, id: &str) -> Result<()> {
        self.store.delete_session(&id_hash(id)).await.map_err(store_error)?;
        Ok(())
    }

    /// `user`'s live sessions, newest first: (public id, created, last seen, expires), the
    /// public id being a prefix of the stored hash (it cannot be turned back into a session).
    ///
    /// # Errors
    /// Store errors.
    pub async fn list(&self, user: &str) -> Result<Vec<SessionInfo>> {
        let rows = self.store.sessions_of(user, now_ms()).await.map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| SessionInfo {
                id: r.id_hash[..PUBLIC_ID_LEN].to_owned(),
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
            })
            .collect())
    }

    /// The public id of the session with this (secret) id.
    pub fn public_id(id: &str) -> String {
        id_hash(id)[..PUBLIC_ID_LEN].to_owned()
    }

    /// Ends `user`'s session with this public id; false when `user` has none such.
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke(&self, user: &str, public_id: &str) -> Result<bool> {
        let rows = self.store.sessions_of(user, now_ms()).await.map_err(store_error)?;
        match rows
            .iter()
            .find(|r| r.id_hash.starts_with(public_id) && public_id.len() == PUBLIC_ID_LEN)
        {
            Some(r) => self.store.delete_session(&r.id_hash).await.map_err(store_error),
            None => Ok(false),
        }
    }

    /// Leaves a message for the session's next page.
    ///
    /// # Errors
    /// Store errors.
    pub async fn flash(&self, id: &str, message: &str) -> Result<()> {
        self.store
            .set_flash(&id_hash(id), Some(message))
            .await
            .map_err(store_error)
    }

    /// The session's message, once.
    ///
    /// # Errors
    /// Store errors.
    pub async fn take_flash(&self, id: &str) -> Result<Option<String>> {
        self.store.take_flash(&id_hash(id)).await.map_err(store_error)
    }
}

fn store_error(e: stoxide_store::Error) -> Error {
    Error::Internal(format!("session store: {e}"))
}

/// A request from a signed-in browser. Pages redirect to `/login` without one.
#[derive(Debug, Clone)]
pub struct Signed {
    pub id: String,
    pub session: WebSession,
}

impl Signed {
    /// Checks a form's CSRF field against the session's.
    ///
    /// # Errors
    /// [`Error::Csrf`].
    pub fn check_csrf(&self, field: Option<&str>) -> Result<()> {
        match field {
            Some(f) if same(f, &self.session.csrf) => Ok(()),
            _ => Err(Error::Csrf),
        }
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers, SESSION_COOKIE);
        let found = match id {
            Some(id) => match state.sessions.get(&id).await {
                // A portal person's session never opens the admin dashboard.
                Ok(s) => s.filter(|s| !s.user.starts_with(PERSON_PREFIX)).map(|s| (id, s)),
                Err(e) => return Err(e.into_response()),
            },
            None => None,
        };
        match found {
            Some((id, session)) => Ok(Self { id, session }),
            None => {
                // Pages redirect to the sign-in; data endpoints (JSON, the event stream) answer 401.
                let data = parts
                    .headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|a| a.contains("application/json") || a.contains("text/event-stream"));
                if !data && parts.method == axum::http::Method::GET {
                    Err(Redirect::to("/login").into_response())
                } else {
                    Err((axum::http::StatusCode::UNAUTHORIZED, "sign in first").into_response())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_password_is_hashed_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AdminStore::open(dir.path()).expect("open");
        assert!(!store.exists());
        assert!(store.set("admin", "short").is_err());
        store.set("admin", "correct horse battery").expect("set");
        let text = std::fs::read_to_string(dir.path().join("dashboard-admin.json")).expect("read");
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"), "{text}");
        assert!(store.verify("admin", "correct horse battery"));
        assert!(!store.verify("admin", "correct horse batterx"));
        assert!(!store.verify("root", "correct horse battery"));
        let again = AdminStore::open(dir.path()).expect("reopen");
        assert!(again.verify("admin", "correct horse battery"));
    }

    #[test]
    fn cookies_and_sessions() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; stoxide_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "zzz"), None);
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_ne!(id_hash("a"), csrf_of("a"));
        let v = set_cookie(SESSION_COOKIE, "x", None);
        assert!(
            v.to_str()
                .is_ok_and(|v| v.contains("HttpOnly") && v.contains("SameSite=Lax"))
        );
    }
}
