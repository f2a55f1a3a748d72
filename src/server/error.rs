//! The one place where errors become HTTP statuses and bodies: Ollama's
//! `{"error": "…"}` on `/api/*`, OpenAI's `{"error": {"message", "type", …}}` on `/v1/*`,
//! Anthropic's `{"type": "error", "error": {"type", "message"}}` on `/v1/messages*`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::scheduler::SchedError;

/// An error with its status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's machine-readable `code` (e.g. `invalid_api_key`), when there is one.
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            code: None,
        }
    }

    /// A request without a valid API key (OpenAI's `invalid_api_key`).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            code: Some("invalid_api_key"),
            ..ApiError::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Ollama's message for a model that is not in the store.
    pub fn model_not_found(name: &str) -> ApiError {
        ApiError::not_found(format!("model '{name}' not found"))
    }

    /// The body OpenAI's clients parse.
    pub fn openai(self) -> Response {
        let kind = match self.status {
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "api_error",
        };
        let body = json!({"error": {"message": self.message, "type": kind, "param": null,
                                    "code": self.code}});
        (self.status, Json(body)).into_response()
    }

    /// The body Anthropic's clients parse.
    pub fn anthropic(self) -> Response {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
            StatusCode::SERVICE_UNAVAILABLE => "overloaded_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "api_error",
        };
        let body = json!({"type": "error", "error": {"type": kind, "message": self.message}});
        (self.status, Json(body)).into_response()
    }

    /// The error in the shape of the API `path` belongs to (for answers given before a
    /// handler runs: refused hosts, origins and keys).
    pub fn for_path(self, path: &str) -> Response {
        if path.starts_with("/v1/messages") {
            self.anthropic()
        } else if path.starts_with("/v1/") || path == "/v1" {
            self.openai()
        } else {
            self.into_response()
        }
    }
}

impl From<SchedError> for ApiError {
    fn from(e: SchedError) -> ApiError {
        let status = match e {
            SchedError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            SchedError::Load(_) | SchedError::Closed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

/// Parses a JSON request body with Ollama's errors: an empty body is
/// `missing request body`, anything that is not the expected JSON a 400 naming why.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("missing request body"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))
}
