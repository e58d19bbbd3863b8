//! Errors and the terminal diagnoses of the streamers.

use upstox_types::FeedMode;

/// Why a call on a streamer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error("{0}")]
    InvalidKey(String),
    #[error(
        "subscribing would put {count} keys in mode {mode} on this connection, over Upstox's cap of {cap}{}; the server would drop the excess silently — use a second connection or fewer keys",
        if *.mixed { " when modes are mixed" } else { "" }
    )]
    CapExceeded {
        mode: FeedMode,
        count: usize,
        cap: usize,
        mixed: bool,
    },
    #[error("the streamer has stopped: {0}")]
    Stopped(String),
}

/// Why a streamer stopped for good instead of reconnecting (a reconnect storm would not help).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// No token to connect with.
    NoToken,
    /// 401: the token is invalid, expired (03:30 IST) or revoked, or the authorized URI was stale.
    Unauthorized { detail: String },
    /// 403: feed not enabled for the app, or the per-user connection limit is reached.
    Forbidden { detail: String },
    /// The configured number of reconnect attempts ran out.
    GaveUp { attempts: u32, last: String },
}

impl std::fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diagnosis::NoToken => write!(
                f,
                "no access token: log in (`stoxide login`) or set UPSTOX_ACCESS_TOKEN"
            ),
            Diagnosis::Unauthorized { detail } => write!(
                f,
                "401 Unauthorized ({detail}): the access token is invalid, expired (tokens die at 03:30 IST) or revoked by a newer login; log in again"
            ),
            Diagnosis::Forbidden { detail } => write!(
                f,
                "403 Forbidden ({detail}): the app may not have market-data feed access, or this user already has the maximum number of feed connections open (2 standard, 5 Upstox Plus); close other connections or check the app"
            ),
            Diagnosis::GaveUp { attempts, last } => {
                write!(f, "gave up after {attempts} reconnect attempts; last error: {last}")
            }
        }
    }
}
