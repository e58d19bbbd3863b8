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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "diagnosis", rename_all = "snake_case")]
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
            Diagnosis::NoToken => f.write_str("no access token to connect with"),
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

/// A WebSocket handshake the server refused: its HTTP status and what its body said.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HandshakeRefusal {
    pub status: u16,
    pub body: String,
}

impl HandshakeRefusal {
    /// The refusal in a handshake's error answer.
    pub fn from_response(resp: &tokio_tungstenite::tungstenite::handshake::client::Response) -> Self {
        let body = resp
            .body()
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).trim().to_owned())
            .unwrap_or_default();
        Self {
            status: resp.status().as_u16(),
            body,
        }
    }
}

impl std::fmt::Display for HandshakeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status.to_string();
        match self.body.as_str() {
            "" => write!(f, "HTTP {status}"),
            // A body that starts with the status ("403 Forbidden: …") is not said twice.
            b if b.starts_with(&status) => write!(f, "HTTP {b}"),
            b => write!(f, "HTTP {status}: {b}"),
        }
    }
}
