//! Errors to HTTP in one place: a user's mistake keeps its status and message; anything internal
//! becomes a generic page and is logged, never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request the user can fix (bad form field, unknown instrument, ...).
    #[error("{0}")]
    BadRequest(String),
    /// A missing or wrong CSRF token.
    #[error("the form expired or did not come from this dashboard; reload the page and try again")]
    Csrf,
    /// The vault refused.
    #[error("vault: {0}")]
    Vault(#[from] stoxide_vault::Error),
    /// Upstox (or the simulator) refused or failed.
    #[error("Upstox: {0}")]
    Upstox(#[from] upstox_client::Error),
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<stoxide_app::Error> for Error {
    fn from(e: stoxide_app::Error) -> Self {
        match e {
            stoxide_app::Error::Vault(v) => Self::Vault(v),
            stoxide_app::Error::Upstox(u) => Self::Upstox(u),
            stoxide_app::Error::Login(l) => Self::BadRequest(crate::words::login_error(&l)),
            other => Self::BadRequest(other.to_string()),
        }
    }
}

/// The server's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Error::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Error::Csrf => (StatusCode::FORBIDDEN, self.to_string()),
            Error::Upstox(e) => (StatusCode::BAD_GATEWAY, format!("Upstox answered: {e}")),
            Error::Vault(_) | Error::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on the server; the log has the details".to_owned(),
                )
            }
        };
        let body = crate::pages::error_page(status, &message);
        (status, body).into_response()
    }
}
