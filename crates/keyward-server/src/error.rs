//! One error type for the HTTP edge, with an explicit status for every domain error. Native
//! routes answer `{"error":{"code","message"}}`; Vault routes answer `{"errors":[…]}`. The code
//! decides the status (see `keyward_api::ErrorCode`).
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{CoreError, StoreError};

pub use keyward_api::ErrorCode;
use keyward_api::{ErrorBody, ErrorDetail};

/// Which API shape an error is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/api/v1`.
    Native,
    /// `/v1` (Vault).
    Vault,
    /// A page of the web UI (`/ui`, its script's calls aside): an HTML page.
    Page,
}

/// An error answered to a client. Messages never contain secret values or tokens.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    flavor: Flavor,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// Builds an error; its status is the code's.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), flavor: Flavor::Native, retry_after: None }
    }

    /// A 429 (or 503) that tells the client when to come back.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Renders in the Vault shape, with Vault's status for the code.
    pub fn vault(mut self) -> Self {
        self.flavor = Flavor::Vault;
        self
    }

    /// Renders in the shape of the API `path` belongs to (`/v1/…` is Vault's).
    pub fn for_path(self, path: &str) -> Self {
        if path.starts_with("/v1/") {
            self.vault()
        } else if path.starts_with("/ui") && !path.starts_with("/ui/api/") {
            Self { flavor: Flavor::Page, ..self }
        } else {
            self
        }
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The status code, in the shape the error renders in.
    pub fn status(&self) -> StatusCode {
        let status = match self.flavor {
            Flavor::Native | Flavor::Page => self.code.status(),
            Flavor::Vault => self.code.vault_status(),
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The message (never a secret).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(ErrorCode::Unauthenticated, "missing, malformed, expired or unknown token")
    }

    pub(crate) fn forbidden(capability: &str, path: &str) -> Self {
        Self::new(ErrorCode::Forbidden, format!("permission denied: {capability:?} on {path:?} is not granted"))
    }

    pub(crate) fn too_many(message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self::new(ErrorCode::RateLimited, message).retry_after(wait)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let msg = e.to_string();
        let code = match &e {
            CoreError::InvalidInput(_) => ErrorCode::InvalidInput,
            CoreError::NotFound(_) => ErrorCode::NotFound,
            CoreError::Conflict(_) | CoreError::Store(StoreError::Conflict) => ErrorCode::Conflict,
            CoreError::Forbidden(_) => ErrorCode::Forbidden,
            CoreError::AlreadyInitialized => ErrorCode::AlreadyInitialized,
            CoreError::NotInitialized => ErrorCode::NotInitialized,
            CoreError::Unavailable => ErrorCode::Unavailable,
            CoreError::NotSupported(_) => ErrorCode::NotImplemented,
            CoreError::Upstream(_) => {
                tracing::warn!(error = %msg, "an identity provider could not be used");
                ErrorCode::UpstreamUnreachable
            }
            CoreError::AuditUnavailable(_) => {
                tracing::error!(error = %msg, "audit entry not written: the request was not served");
                return Self::new(
                    ErrorCode::AuditUnavailable,
                    "the audit log cannot be written; the request was not served",
                )
                .retry_after(std::time::Duration::from_secs(5));
            }
            CoreError::Integrity(_) => {
                tracing::error!(error = %msg, "integrity check failed");
                ErrorCode::IntegrityError
            }
            CoreError::KeyMismatch(_) => ErrorCode::KeyMismatch,
            CoreError::Locked(_) => {
                return Self::too_many(msg, std::time::Duration::from_secs(60));
            }
            CoreError::Archive(_) => {
                tracing::error!(error = %msg, "audit archive failed");
                ErrorCode::ArchiveFailed
            }
            CoreError::Untrusted(_) => {
                tracing::error!(target: "security", error = %msg, "untrusted storage");
                ErrorCode::UntrustedStorage
            }
            // Logged by the store, with the table and key.
            CoreError::Store(StoreError::Tampered { .. }) => ErrorCode::TamperedRow,
            CoreError::Store(StoreError::Database(_)) => {
                tracing::error!(error = %msg, "storage failure");
                return Self::new(ErrorCode::StorageUnavailable, "the database is unavailable");
            }
            CoreError::Store(StoreError::Corrupt(_)) => {
                tracing::error!(error = %msg, "corrupt stored record");
                ErrorCode::CorruptRecord
            }
        };
        Self::new(code, msg)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = match self.flavor {
            Flavor::Native => {
                (status, Json(ErrorBody { error: ErrorDetail { code: self.code, message: self.message } }))
                    .into_response()
            }
            Flavor::Vault => {
                let errors = if status == StatusCode::FORBIDDEN {
                    vec!["permission denied".to_owned()]
                } else if self.message.is_empty() {
                    vec![]
                } else {
                    vec![self.message]
                };
                (status, Json(serde_json::json!({ "errors": errors }))).into_response()
            }
            Flavor::Page => {
                let mut r = (status, crate::ui::error_page(status, &self.message)).into_response();
                crate::ui::harden(&mut r);
                r
            }
        };
        resp.extensions_mut().insert(self.code);
        if let Some(wait) = self.retry_after {
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Result alias of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
