//! One error type for the HTTP edge, with an explicit status for every domain error. Native
//! routes answer `{"error":{"code","message"}}`; Vault routes answer `{"errors":[…]}`.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{CoreError, StoreError};

use crate::wire::{ErrorBody, ErrorDetail};

/// Which API shape an error is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/api/v1`.
    Native,
    /// `/v1` (Vault).
    Vault,
}

/// An error answered to a client. Messages never contain secret values or tokens.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    flavor: Flavor,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), flavor: Flavor::Native, retry_after: None }
    }

    /// A 429 (or 503) that tells the client when to come back.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Renders in the Vault shape (where a conflict, such as a check-and-set mismatch, is 400).
    pub fn vault(mut self) -> Self {
        self.flavor = Flavor::Vault;
        if self.status == StatusCode::CONFLICT {
            self.status = StatusCode::BAD_REQUEST;
        }
        self
    }

    /// Renders in the shape of the API `path` belongs to (`/v1/…` is Vault's).
    pub fn for_path(self, path: &str) -> Self {
        if path.starts_with("/v1/") {
            self.vault()
        } else {
            self
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message (never a secret).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "missing, malformed, expired or unknown token")
    }

    pub(crate) fn forbidden(capability: &str, path: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("permission denied: {capability:?} on {path:?} is not granted"),
        )
    }

    pub(crate) fn too_many(message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).retry_after(wait)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let msg = e.to_string();
        let (status, code) = match &e {
            CoreError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            CoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            CoreError::Conflict(_) | CoreError::Store(StoreError::Conflict) => (StatusCode::CONFLICT, "conflict"),
            CoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            CoreError::AlreadyInitialized => (StatusCode::BAD_REQUEST, "already_initialized"),
            CoreError::NotInitialized => (StatusCode::SERVICE_UNAVAILABLE, "not_initialized"),
            CoreError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            CoreError::AuditUnavailable(_) => {
                tracing::error!(error = %msg, "audit entry not written: the request was not served");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "audit_unavailable",
                    "the audit log cannot be written; the request was not served",
                )
                .retry_after(std::time::Duration::from_secs(5));
            }
            CoreError::Integrity(_) => {
                tracing::error!(error = %msg, "integrity check failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error")
            }
            CoreError::KeyMismatch(_) => (StatusCode::INTERNAL_SERVER_ERROR, "key_mismatch"),
            CoreError::Untrusted(_) => {
                tracing::error!(target: "security", error = %msg, "untrusted storage");
                (StatusCode::INTERNAL_SERVER_ERROR, "untrusted_storage")
            }
            CoreError::Store(StoreError::Tampered { .. }) => {
                // Logged by the store, with the table and key.
                (StatusCode::INTERNAL_SERVER_ERROR, "tampered_row")
            }
            CoreError::Store(StoreError::Database(_)) => {
                tracing::error!(error = %msg, "storage failure");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database is unavailable",
                );
            }
            CoreError::Store(StoreError::Corrupt(_)) => {
                tracing::error!(error = %msg, "corrupt stored record");
                (StatusCode::INTERNAL_SERVER_ERROR, "corrupt_record")
            }
        };
        Self::new(status, code, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = match self.flavor {
            Flavor::Native => (
                self.status,
                Json(ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } }),
            )
                .into_response(),
            Flavor::Vault => {
                let errors = if self.status == StatusCode::FORBIDDEN {
                    vec!["permission denied".to_owned()]
                } else if self.message.is_empty() {
                    vec![]
                } else {
                    vec![self.message]
                };
                (self.status, Json(serde_json::json!({ "errors": errors }))).into_response()
            }
        };
        resp.extensions_mut().insert(ErrorCode(self.code));
        if let Some(wait) = self.retry_after {
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// The error code of a response, for its audit entry.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// Result alias of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
