//! A token's status in words a user acts on: valid (and for how long), expired at 03:30 IST,
//! revoked before its expiry, rejected, or not checked — each with the next step.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::account::{Account, CheckOutcome};

/// Where a token stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TokenState {
    /// No token stored (never logged in, or logged out).
    NoToken,
    /// Upstox accepted it at the last check and 03:30 IST has not passed.
    Valid { expires_in_secs: i64 },
    /// Past its 03:30 IST expiry.
    Expired { expired_secs_ago: i64 },
    /// Refused with 401 before its expiry: a newer login for the same app, a logout elsewhere, or
    /// a static-IP change at Upstox revoked it.
    Revoked,
    /// Refused for another reason.
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Not expired, but Upstox could not be asked.
    Unchecked { reason: String },
}

/// Why an account needs a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginReason {
    /// No token stored (never logged in, or logged out).
    NoToken,
    /// Tokens die at 03:30 IST every day.
    Expired,
    /// Upstox keeps one live token per app and user: a login elsewhere or a logout revoked it.
    Revoked,
}

/// What to do about a token that does not work. Each front end says it in its own words (a
/// command to run, a button to press).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NextStep {
    /// Log in (again) for the account.
    LogIn { account: String, reason: LoginReason },
    /// Upstox refused the token for another reason: diagnose, and log in again if the app's
    /// permissions changed.
    Diagnose { account: String },
    /// Upstox could not be asked: check the network and this base URL.
    CheckNetwork { base_url: String },
}

/// A status line and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenStatus {
    pub account: String,
    #[serde(flatten)]
    pub state: TokenState,
    pub expires_at: Option<DateTime<Utc>>,
    /// What to do now, when the token does not work.
    pub next_step: Option<NextStep>,
}

impl TokenStatus {
    /// Whether calls with this token should work.
    pub fn is_valid(&self) -> bool {
        matches!(self.state, TokenState::Valid { .. })
    }

    /// The one-phrase summary: `valid, expires in 5h 12m`, `expired 2h 3m ago`, ...
    pub fn summary(&self) -> String {
        match &self.state {
            TokenState::NoToken => "no token".into(),
            TokenState::Valid { expires_in_secs } => {
                format!("valid, expires in {}", human(Duration::seconds(*expires_in_secs)))
            }
            TokenState::Expired { expired_secs_ago } => {
                format!(
                    "expired {} ago (03:30 IST)",
                    human(Duration::seconds(*expired_secs_ago))
                )
            }
            TokenState::Revoked => "revoked by a newer login (or a logout elsewhere)".into(),
            TokenState::Rejected { status, code, message } => format!(
                "rejected: HTTP {status}{} {message}",
                code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
            ),
            TokenState::Unchecked { reason } => format!("not checked ({reason})"),
        }
    }
}

/// `5h 12m`, `3m 4s`, `2d 1h`.
pub fn human(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins, secs) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

/// Judges an account's token at `now` from what the vault knows (expiry, last check).
pub fn assess(account: &Account, now: DateTime<Utc>) -> TokenStatus {
    let login = |reason| NextStep::LogIn {
        account: account.id.clone(),
        reason,
    };
    let (state, next_step) = if !account.has_token {
        (TokenState::NoToken, Some(login(LoginReason::NoToken)))
    } else if let Some(exp) = account.expires_at.filter(|e| now >= *e) {
        (
            TokenState::Expired {
                expired_secs_ago: (now - exp).num_seconds(),
            },
            Some(login(LoginReason::Expired)),
        )
    } else {
        match account.last_check.as_ref().map(|c| &c.outcome) {
            Some(CheckOutcome::Valid) => (
                TokenState::Valid {
                    expires_in_secs: account.expires_at.map_or(0, |e| (e - now).num_seconds()),
                },
                None,
            ),
            Some(CheckOutcome::Rejected { status: 401, .. }) => {
                (TokenState::Revoked, Some(login(LoginReason::Revoked)))
            }
            Some(CheckOutcome::Rejected { status, code, message }) => (
                TokenState::Rejected {
                    status: *status,
                    code: code.clone(),
                    message: message.clone(),
                },
                Some(NextStep::Diagnose {
                    account: account.id.clone(),
                }),
            ),
            Some(CheckOutcome::Unreachable { reason }) => (
                TokenState::Unchecked { reason: reason.clone() },
                Some(NextStep::CheckNetwork {
                    base_url: account.base_url.clone(),
                }),
            ),
            None => (
                TokenState::Unchecked {
                    reason: "never checked".into(),
                },
                None,
            ),
        }
    };
    TokenStatus {
        account: account.id.clone(),
        state,
        expires_at: account.expires_at,
        next_step,
    }
}

/// How far ahead of expiry long-running processes warn.
pub const EXPIRY_WARNINGS: [Duration; 3] = [Duration::hours(1), Duration::minutes(15), Duration::minutes(2)];

/// The warning threshold `now` has just crossed for a token expiring at `expires_at`, given the
/// last threshold already warned about (so each warning is given once).
pub fn expiry_warning(
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    last_warned: Option<Duration>,
) -> Option<Duration> {
    let left = expires_at - now;
    EXPIRY_WARNINGS
        .iter()
        .copied()
        .filter(|t| left <= *t && left > Duration::zero())
        .min()
        .filter(|t| last_warned.is_none_or(|w| *t < w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Check;

    fn account(has_token: bool, expires_at: DateTime<Utc>, check: Option<CheckOutcome>) -> Account {
        Account {
            id: "SIM001".into(),
            client_id: Some("app".into()),
            user_name: None,
            base_url: "http://127.0.0.1:1".into(),
            has_token,
            has_extended_token: false,
            issued_at: None,
            expires_at: Some(expires_at),
            origin: None,
            last_check: check.map(|outcome| Check {
                at: expires_at,
                outcome,
            }),
        }
    }

    #[test]
    fn states_and_next_steps() {
        let now = Utc::now();
        let later = now + Duration::seconds(5 * 3600 + 12 * 60 + 30);
        let s = assess(&account(true, later, Some(CheckOutcome::Valid)), now);
        assert_eq!(s.summary(), "valid, expires in 5h 12m");
        assert!(s.is_valid() && s.next_step.is_none());

        let s = assess(
            &account(true, now - Duration::minutes(90), Some(CheckOutcome::Valid)),
            now,
        );
        assert_eq!(s.summary(), "expired 1h 30m ago (03:30 IST)");
        assert_eq!(
            s.next_step,
            Some(NextStep::LogIn {
                account: "SIM001".into(),
                reason: LoginReason::Expired
            })
        );

        let rejected = CheckOutcome::Rejected {
            status: 401,
            code: Some("UDAPI100050".into()),
            message: "Invalid token".into(),
        };
        let s = assess(&account(true, later, Some(rejected)), now);
        assert_eq!(s.state, TokenState::Revoked);
        assert!(matches!(
            s.next_step,
            Some(NextStep::LogIn {
                reason: LoginReason::Revoked,
                ..
            })
        ));

        let s = assess(&account(false, later, None), now);
        assert_eq!(s.state, TokenState::NoToken);
    }

    #[test]
    fn each_warning_is_given_once() {
        let now = Utc::now();
        let exp = now + Duration::minutes(50);
        let w = expiry_warning(exp, now, None);
        assert_eq!(w, Some(Duration::hours(1)));
        assert_eq!(expiry_warning(exp, now, w), None);
        let w2 = expiry_warning(exp, exp - Duration::minutes(10), w);
        assert_eq!(w2, Some(Duration::minutes(15)));
        assert_eq!(expiry_warning(exp, now - Duration::hours(2), None), None);
        assert_eq!(expiry_warning(exp, exp, None), None);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::seconds(59)), "59s");
        assert_eq!(human(Duration::seconds(3 * 60 + 4)), "3m 4s");
        assert_eq!(human(Duration::seconds(49 * 3600)), "2d 1h");
    }
}
