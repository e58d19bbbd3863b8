//! The client's one error type, carrying Upstox's codes.

use serde::Deserialize;

/// One item of Upstox's `errors` array. Upstox sends both snake_case and the deprecated
/// camelCase keys; either (or both) is accepted, snake_case winning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(from = "RawErrorItem")]
pub struct ApiErrorItem {
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub property_path: Option<String>,
    pub invalid_value: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawErrorItem {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default, rename = "errorCode")]
    error_code_camel: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    property_path: Option<String>,
    #[serde(default, rename = "propertyPath")]
    property_path_camel: Option<String>,
    #[serde(default)]
    invalid_value: Option<serde_json::Value>,
    #[serde(default, rename = "invalidValue")]
    invalid_value_camel: Option<serde_json::Value>,
}

impl From<RawErrorItem> for ApiErrorItem {
    fn from(r: RawErrorItem) -> Self {
        Self {
            error_code: r.error_code.or(r.error_code_camel),
            message: r.message,
            property_path: r.property_path.or(r.property_path_camel),
            invalid_value: r
                .invalid_value
                .filter(|v| !v.is_null())
                .or(r.invalid_value_camel.filter(|v| !v.is_null())),
        }
    }
}

/// Everything that can go wrong talking to Upstox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Upstox answered with an error status.
    #[error("{endpoint}: HTTP {status}{}", describe(.errors))]
    Api {
        endpoint: String,
        status: u16,
        errors: Vec<ApiErrorItem>,
    },
    /// No answer within the timeout.
    #[error("{endpoint}: no answer within {timeout_ms} ms")]
    Timeout { endpoint: String, timeout_ms: u64 },
    /// Could not connect, or the connection broke.
    #[error("{endpoint}: {message}")]
    Transport {
        endpoint: String,
        message: String,
        connect: bool,
    },
    /// The answer was not the JSON we expected.
    #[error("{endpoint}: unexpected response: {message}")]
    Decode { endpoint: String, message: String },
    /// A call that needs an access token was made without one.
    #[error("no access token was given for this call")]
    NoToken,
    /// A place-order failed in a way that leaves its outcome unknown, and the order book did
    /// not show it either; nothing was re-sent.
    #[error(
        "order with tag {tag:?}: outcome unknown after {attempts} attempt(s) ({last}); check the order book before placing it again"
    )]
    OrderOutcomeUnknown { tag: String, attempts: u32, last: String },
    /// The caller's tag is already on an order of today's: nothing was sent, since a lost
    /// answer could not be told from that order.
    #[error(
        "tag {tag:?} is already on order {order_id} in today's order book; nothing was sent: give each order its own tag, or none to get a unique one"
    )]
    TagInUse { tag: String, order_id: String },
    /// The caller passed something invalid before anything was sent.
    #[error("{0}")]
    InvalidInput(String),
    /// Reading or parsing the instrument master failed.
    #[error("instrument master: {0}")]
    Instruments(String),
}

fn describe(errors: &[ApiErrorItem]) -> String {
    let mut s = String::new();
    for e in errors {
        s.push_str(&format!(
            " {}: {}",
            e.error_code.as_deref().unwrap_or("?"),
            e.message.as_deref().unwrap_or("(no message)")
        ));
        if let Some(p) = &e.property_path {
            s.push_str(&format!(" (at {p})"));
        }
    }
    s
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status, when Upstox answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Upstox error codes of the answer (`UDAPI...`).
    pub fn codes(&self) -> Vec<&str> {
        match self {
            Error::Api { errors, .. } => errors.iter().filter_map(|e| e.error_code.as_deref()).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the answer carries `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.codes().contains(&code)
    }

    /// 429 / UDAPI10005.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429) || self.has_code(upstox_types::error_code::RATE_LIMITED)
    }

    /// 401: the token is missing, invalid, expired or revoked.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::NoToken) || self.status() == Some(401)
    }

    /// Whether sending the same idempotent request again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status == 429 || *status >= 500,
            Error::Timeout { .. } | Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether a non-idempotent request (a place order) may have taken effect.
    /// A connection that never opened did not; a timeout or a 5xx might have.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Error::Api { status, .. } => *status >= 500,
            Error::Timeout { .. } => true,
            Error::Transport { connect, .. } => !connect,
            _ => false,
        }
    }

    /// Whether no retry can help (bad input, bad token, not found, ...).
    pub fn is_terminal(&self) -> bool {
        !self.is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_key_spellings_parse() {
        let snake: ApiErrorItem =
            serde_json::from_str(r#"{"error_code":"UDAPI100050","message":"Invalid token","property_path":null}"#)
                .expect("snake");
        let camel: ApiErrorItem =
            serde_json::from_str(r#"{"errorCode":"UDAPI100050","message":"Invalid token","propertyPath":"x"}"#)
                .expect("camel");
        assert_eq!(snake.error_code, camel.error_code);
        assert_eq!(camel.property_path.as_deref(), Some("x"));
        let e = Error::Api {
            endpoint: "GET /v2/user/profile".into(),
            status: 401,
            errors: vec![camel],
        };
        assert_eq!(
            e.to_string(),
            "GET /v2/user/profile: HTTP 401 UDAPI100050: Invalid token (at x)"
        );
        assert!(e.is_unauthorized() && e.is_terminal());
        let both: ApiErrorItem = serde_json::from_str(
            r#"{"errorCode":"UDAPI10005","error_code":"UDAPI10005","message":"Too Many Request Sent","propertyPath":null,"property_path":null,"invalidValue":null,"invalid_value":null}"#,
        )
        .expect("both spellings at once");
        assert_eq!(both.error_code.as_deref(), Some("UDAPI10005"));
    }
}
