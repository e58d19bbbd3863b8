//! The OAuth `state` parameter: random, single-use, valid ten minutes. A callback whose state
//! was never issued, was already used, or is too old is refused before any code is exchanged.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// How long a login link stays usable.
pub const STATE_TTL: Duration = Duration::minutes(10);

/// What a state stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub client_id: String,
    /// Who started the login (a browser session's id, or the command that waits for it): the
    /// callback is believed only for the same owner.
    pub owner: String,
    pub created_at: DateTime<Utc>,
}

/// Why a callback's state is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the login's state is missing")]
    Missing,
    #[error("the login's state is unknown: this callback did not come from a login started here")]
    Unknown,
    #[error("the login's state was already used: a replayed callback is refused")]
    Replayed,
    #[error("the login link expired (10 minutes); start the login again")]
    Expired,
}

/// The states issued by one process. Both maps forget entries older than twice the TTL, so
/// memory stays bounded by the logins of the last twenty minutes.
#[derive(Debug, Default)]
pub struct LoginStates {
    pending: Mutex<HashMap<String, PendingLogin>>,
    used: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl LoginStates {
    /// A new, empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Issues a fresh random state (32 bytes, hex) for a login with `client_id` started by
    /// `owner`.
    pub fn issue(&self, client_id: &str, owner: &str, now: DateTime<Utc>) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let state: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|_, v| now - v.created_at < STATE_TTL * 2);
            p.insert(
                state.clone(),
                PendingLogin {
                    client_id: client_id.to_owned(),
                    owner: owner.to_owned(),
                    created_at: now,
                },
            );
        }
        state
    }

    /// The app (client id) a pending `state` was issued for, without consuming it: the callback
    /// learns which app to finish the login with.
    pub fn client_of(&self, state: &str) -> Option<String> {
        self.pending
            .lock()
            .ok()
            .and_then(|p| p.get(state).map(|l| l.client_id.clone()))
    }

    /// Consumes a state; it can be taken once.
    ///
    /// # Errors
    /// [`StateError`] for a missing, unknown, replayed or expired state.
    pub fn take(&self, state: Option<&str>, now: DateTime<Utc>) -> Result<PendingLogin, StateError> {
        let state = state.filter(|s| !s.is_empty()).ok_or(StateError::Missing)?;
        let taken = self.pending.lock().ok().and_then(|mut p| p.remove(state));
        let mut used = self.used.lock().map_err(|_| StateError::Unknown)?;
        used.retain(|_, at| now - *at < STATE_TTL * 2);
        match taken {
            Some(p) => {
                used.insert(state.to_owned(), now);
                if now - p.created_at >= STATE_TTL {
                    Err(StateError::Expired)
                } else {
                    Ok(p)
                }
            }
            None if used.contains_key(state) => Err(StateError::Replayed),
            None => Err(StateError::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_unknown_and_expiry() {
        let states = LoginStates::new();
        let now = Utc::now();
        let s = states.issue("app", "browser-1", now);
        assert_eq!(s.len(), 64);
        assert_eq!(states.client_of(&s).as_deref(), Some("app"));
        assert_eq!(states.client_of("nope"), None);
        assert_eq!(
            states.take(Some(&s), now).map(|p| (p.client_id, p.owner)),
            Ok(("app".to_owned(), "browser-1".to_owned()))
        );
        assert_eq!(states.take(Some(&s), now), Err(StateError::Replayed));
        assert_eq!(states.take(Some("nope"), now), Err(StateError::Unknown));
        assert_eq!(states.take(None, now), Err(StateError::Missing));
        let old = states.issue("app", "o", now);
        assert_eq!(
            states.take(Some(&old), now + Duration::minutes(11)),
            Err(StateError::Expired)
        );
        assert_ne!(states.issue("app", "o", now), states.issue("app", "o", now));
        // Old entries are forgotten as new logins come and go.
        let later = now + Duration::minutes(40);
        let fresh = states.issue("app", "o", later);
        assert!(states.take(Some(&fresh), later).is_ok());
        assert_eq!(states.pending.lock().map(|p| p.len()).unwrap_or(99), 0);
        assert_eq!(states.used.lock().map(|u| u.len()).unwrap_or(99), 1);
    }
}
