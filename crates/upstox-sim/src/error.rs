//! The simulator's errors: start-up errors (`SimError`) and API errors rendered exactly as
//! Upstox renders them (`ApiError`: the envelope with both snake_case and camelCase keys).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use upstox_types::error_code;

/// Errors starting or configuring the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub property_path: Option<String>,
    /// Boxed: a JSON value is large, and this error travels in every handler's `Result`.
    pub invalid_value: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            property_path: None,
            invalid_value: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_property(mut self, path: impl Into<String>, value: Option<Value>) -> Self {
        self.property_path = Some(path.into());
        self.invalid_value = value.map(Box::new);
        self
    }

    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            error_code::INVALID_TOKEN,
            "Invalid token used to access API",
        )
    }

    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            error_code::RATE_LIMITED,
            "Too Many Request Sent",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_code::INTERNAL,
            "Something went wrong",
        )
    }

    pub fn not_found_path() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            error_code::NOT_SUPPORTED,
            "Request not supported",
        )
    }

    /// One item of an `errors` array, with both key spellings.
    pub fn item(&self) -> Value {
        json!({
            "errorCode": self.code,
            "message": self.message,
            "propertyPath": self.property_path,
            "invalidValue": self.invalid_value,
            "error_code": self.code,
            "property_path": self.property_path,
            "invalid_value": self.invalid_value,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errors": [self.item()]});
        (self.status, Json(body)).into_response()
    }
}

/// The success envelope.
pub fn success(data: impl serde::Serialize) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

pub type ApiResult<T = Json<Value>> = Result<T, ApiError>;
