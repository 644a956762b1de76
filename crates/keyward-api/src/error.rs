//! The closed set of error codes. Every native error answers `{"error":{"code","message"}}` with
//! the code's one status; the Vault front door answers `{"errors":[…]}` with Vault's status for
//! the same code (see [`ErrorCode::vault_status`]).
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = ($name:literal, $native:literal, $vault:literal),)+) => {
        /// What went wrong, as a stable machine-readable code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ErrorCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant),+];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            /// The HTTP status the native API answers with this code.
            pub fn status(self) -> u16 {
                match self { $(Self::$variant => $native,)+ }
            }

            /// The HTTP status the Vault-compatible API answers with this code (Vault answers an
            /// unknown token with 403 and a check-and-set mismatch with 400).
            pub fn vault_status(self) -> u16 {
                match self { $(Self::$variant => $vault,)+ }
            }

            /// What the code means (its documentation).
            pub fn meaning(self) -> &'static str {
                match self { $(Self::$variant => concat!($($doc),+).trim_start(),)+ }
            }
        }
    };
}

codes! {
    /// The request is malformed or a value is invalid; the message names the field.
    InvalidInput = ("invalid_input", 400, 400),
    /// A credential-proxy call is malformed (method, path, headers or account).
    InvalidProxyRequest = ("invalid_proxy_request", 400, 400),
    /// `sys/init` was called on an initialised database.
    AlreadyInitialized = ("already_initialized", 400, 400),
    /// No token, or a malformed, expired, revoked or unknown one.
    Unauthenticated = ("unauthenticated", 401, 403),
    /// The token's policies do not grant the capability this operation needs (or its CIDR
    /// binding refuses the client address).
    Forbidden = ("forbidden", 403, 403),
    /// The mount, secret, version, policy, token, route or job does not exist.
    NotFound = ("not_found", 404, 404),
    /// The route exists but not with this method.
    MethodNotAllowed = ("method_not_allowed", 405, 405),
    /// The state changed under the request: a check-and-set mismatch, a name taken, a job
    /// already running.
    Conflict = ("conflict", 409, 400),
    /// A proxy route's credential lacks a field its injection needs, or has one that cannot go
    /// into a header.
    CredentialIncomplete = ("credential_incomplete", 409, 409),
    /// The request body is larger than the limit (1 MiB).
    BodyTooLarge = ("body_too_large", 413, 413),
    /// A body was sent without `Content-Type: application/json`.
    UnsupportedMediaType = ("unsupported_media_type", 415, 415),
    /// Too many requests from this token, address or route; `Retry-After` says when to retry.
    RateLimited = ("rate_limited", 429, 429),
    /// The request headers together exceed 32 KiB.
    HeadersTooLarge = ("headers_too_large", 431, 431),
    /// An unexpected server error (logged with the request id).
    Internal = ("internal", 500, 500),
    /// Something keyward does not implement (the OIDC browser flow); the message says what to use.
    NotImplemented = ("not_implemented", 501, 501),
    /// A stored ciphertext or audit entry failed its authentication check.
    IntegrityError = ("integrity_error", 500, 500),
    /// A configured master key does not match the key the database was sealed with.
    KeyMismatch = ("key_mismatch", 500, 500),
    /// Storage holds something keyward did not write (a missing tombstone, a row layout it does
    /// not know); nothing is served from it.
    UntrustedStorage = ("untrusted_storage", 500, 500),
    /// A row failed its MAC: it was changed outside keyward. Logged with the table and key.
    TamperedRow = ("tampered_row", 500, 500),
    /// A stored record cannot be decoded.
    CorruptRecord = ("corrupt_record", 500, 500),
    /// The credential proxy refused an upstream address (not allowed by the egress rules).
    UpstreamForbidden = ("upstream_forbidden", 502, 502),
    /// The credential proxy could not reach the upstream, or an identity provider's key set
    /// could not be fetched.
    UpstreamUnreachable = ("upstream_unreachable", 502, 502),
    /// The upstream answered with a content encoding the proxy cannot scrub.
    UpstreamEncoded = ("upstream_encoded", 502, 502),
    /// The upstream's answer could not be relayed.
    UpstreamInvalid = ("upstream_invalid", 502, 502),
    /// The database has not been initialised (`keyward operator init`).
    NotInitialized = ("not_initialized", 503, 503),
    /// The keys are not loaded; the server cannot serve secrets yet.
    Unavailable = ("unavailable", 503, 503),
    /// The audit log cannot be written, so the request was not served; `Retry-After` applies.
    AuditUnavailable = ("audit_unavailable", 503, 503),
    /// The database cannot be reached.
    StorageUnavailable = ("storage_unavailable", 503, 503),
    /// The request took longer than the server's request timeout.
    Timeout = ("timeout", 503, 503),
    /// The server is at its in-flight limit; `Retry-After` says when to retry.
    Overloaded = ("overloaded", 503, 503),
    /// The audit head could not be anchored (the anchor file cannot be written).
    AnchorFailed = ("anchor_failed", 503, 503),
    /// The audit archive directory cannot be written or read; nothing was deleted.
    ArchiveFailed = ("archive_failed", 503, 503),
    /// The upstream did not answer within the route's timeout.
    UpstreamTimeout = ("upstream_timeout", 504, 504),
}

/// Every native error: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong (never a secret value).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serialises_as_its_name_and_back() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).expect("parse"), code);
            assert!(!code.meaning().is_empty(), "{code:?} is documented");
            assert!((400..600).contains(&code.status()) && (400..600).contains(&code.vault_status()));
        }
    }

    /// The table of codes in docs/http-api.md, between its markers.
    fn table() -> String {
        let mut out = String::from("| code | status | Vault status | meaning |\n|---|---|---|---|\n");
        for &c in ErrorCode::ALL {
            out.push_str(&format!("| `{}` | {} | {} | {} |\n", c.as_str(), c.status(), c.vault_status(), c.meaning()));
        }
        out
    }

    #[test]
    fn the_error_codes_in_the_docs_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http-api.md");
        let doc = std::fs::read_to_string(path).expect("docs/http-api.md");
        let (start, end) = ("-->\n", "<!-- /error-codes -->");
        let open = doc.find("<!-- error-codes").expect("the opening marker");
        let body_start = open + doc[open..].find(start).expect("marker end") + start.len();
        let body_end = doc.find(end).expect("the closing marker");
        let current = &doc[body_start..body_end];
        if std::env::var("KEYWARD_WRITE_DOCS").as_deref() == Ok("1") {
            let new = format!("{}{}{}", &doc[..body_start], table(), &doc[body_end..]);
            std::fs::write(path, new).expect("write docs/http-api.md");
            return;
        }
        assert_eq!(current, table(), "docs/http-api.md's error codes are stale: rerun with KEYWARD_WRITE_DOCS=1");
    }

    #[test]
    fn an_unknown_token_is_403_on_the_vault_side_only() {
        assert_eq!(ErrorCode::Unauthenticated.status(), 401);
        assert_eq!(ErrorCode::Unauthenticated.vault_status(), 403);
        assert_eq!(ErrorCode::Conflict.vault_status(), 400);
    }
}
