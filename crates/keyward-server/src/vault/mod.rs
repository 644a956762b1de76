//! The Vault-compatible API under `/v1`: Vault's shapes (`{"errors": […]}`, the response
//! envelope, 403 for an unknown token) over the same operations as the native API. Its routes are
//! rows of the operation table, matched by the pipeline (`pipeline/vault_paths.rs`), since Vault
//! routes by mount and uses a `LIST` method; the handlers here are given the parsed request.
pub(crate) mod auth;
pub(crate) mod jwt;
pub(crate) mod kv;
pub(crate) mod probes;
pub(crate) mod sys;
pub(crate) mod token;
pub(crate) mod transit;
pub(crate) mod wrapping;

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::Query;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::AuditEntry;
use serde_json::{json, Map, Value};

use crate::app::MAX_BODY;
use crate::error::{ApiError, ApiResult, ErrorCode};
pub(crate) use crate::pipeline::VaultOp as Op;

/// A parsed Vault request.
#[derive(Debug)]
pub(crate) struct VaultReq {
    pub op: Op,
    /// The path after `/v1/`, without a trailing `/`.
    pub path: String,
    pub query: HashMap<String, String>,
    /// The JSON body (an object; empty when there was none).
    pub body: Map<String, Value>,
    /// Whether the body was sent as `application/merge-patch+json`.
    pub merge_patch: bool,
    pub request_id: String,
    /// What the request itself tells an audit entry (id, client address, user agent).
    pub entry: AuditEntry,
    /// Vault's login MFA header (`X-Vault-MFA: totp:<code>`), if given.
    pub mfa: Option<zeroize::Zeroizing<String>>,
    /// The token the request presented (`lookup-self` shows it back, as Vault does).
    pub presented: Option<keyward_crypto::Token>,
}

impl VaultReq {
    /// A body field as a string.
    pub fn str(&self, key: &str) -> ApiResult<Option<&str>> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request(format!("{key:?} must be a string"))),
        }
    }

    /// A body field as a boolean (accepting Vault's "true"/"false" strings).
    pub fn bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(ApiError::bad_request(format!("{key:?} must be a boolean"))),
        }
    }

    /// A body field as a non-negative integer (accepting numeric strings, as Vault does).
    pub fn uint(&self, key: &str) -> ApiResult<Option<u64>> {
        uint_of(key, self.body.get(key))
    }

    /// A duration field: seconds as a number, or a Go-style string (`30m`, `1h0m0s`, `0`).
    pub fn duration(&self, key: &str) -> ApiResult<Option<u64>> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map(Some).map_err(|_| ApiError::bad_request(format!("{key:?} is out of range")))
            }
            Some(Value::String(s)) => Ok(Some(keyward_core::parse_duration(s)?)),
            other => uint_of(key, other),
        }
    }

    /// A list of strings, or one comma-separated string (Vault accepts both).
    pub fn strings(&self, key: &str) -> ApiResult<Vec<String>> {
        match self.body.get(key) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::String(s)) => {
                Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Into::into).collect())
            }
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::bad_request(format!("{key:?} must be a list of strings"))),
            Some(_) => Err(ApiError::bad_request(format!("{key:?} must be a list of strings"))),
        }
    }
}

pub(crate) fn uint_of(key: &str, v: Option<&Value>) -> ApiResult<Option<u64>> {
    let bad = || ApiError::bad_request(format!("{key:?} must be a non-negative integer"));
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A 200 response in Vault's envelope.
pub(crate) fn envelope(req: &VaultReq, data: Value, warnings: Vec<String>) -> Response {
    envelope_with(req, data, warnings, Map::new())
}

/// A 200 envelope that also puts `top`'s fields at the top level (legacy clients' repeated maps,
/// or an envelope field of its own).
pub(crate) fn envelope_with(req: &VaultReq, data: Value, warnings: Vec<String>, top: Map<String, Value>) -> Response {
    let warnings = if warnings.is_empty() { Value::Null } else { json!(warnings) };
    let mut body = top;
    for (k, v) in [
        ("request_id", json!(req.request_id)),
        ("lease_id", json!("")),
        ("renewable", json!(false)),
        ("lease_duration", json!(0)),
        ("data", data),
        ("wrap_info", Value::Null),
        ("warnings", warnings),
        ("auth", Value::Null),
    ] {
        // A field given at the top level wins (a KV version 1 read's lease).
        body.entry(k.to_owned()).or_insert(v);
    }
    Json(Value::Object(body)).into_response()
}

/// A 200 response carrying `auth` (token create and renew).
pub(crate) fn auth_envelope(req: &VaultReq, auth: Value, warnings: Vec<String>) -> Response {
    let warnings = if warnings.is_empty() { Value::Null } else { json!(warnings) };
    Json(json!({
        "request_id": req.request_id, "lease_id": "", "renewable": false, "lease_duration": 0,
        "data": null, "wrap_info": null, "warnings": warnings, "auth": auth,
    }))
    .into_response()
}

/// 204, or 200 with warnings when there are some (as Vault).
pub(crate) fn done(req: &VaultReq, warnings: Vec<String>) -> Response {
    if warnings.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        envelope(req, Value::Null, warnings)
    }
}

/// A LIST answer: `{"keys": […]}`, or Vault's 404 when there are none.
pub(crate) fn keys_answer<T: serde::Serialize>(req: &VaultReq, keys: Vec<T>) -> ApiResult<Response> {
    if keys.is_empty() {
        return Err(not_found());
    }
    Ok(envelope(req, json!({ "keys": keys }), vec![]))
}

/// A 404 with an empty error list (Vault's "nothing here", e.g. an empty LIST).
pub(crate) fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "").vault()
}

/// Vault's "permission denied" (403), also for an unknown or missing token.
pub(crate) fn denied() -> ApiError {
    ApiError::new(ErrorCode::Forbidden, "permission denied").vault()
}

/// Parses a Vault request's query and JSON body (the pipeline has found its operation and path).
pub(crate) async fn parse(parts: &Parts, body: Body, op: Op, path: String) -> ApiResult<VaultReq> {
    let query: HashMap<String, String> =
        Query::try_from_uri(&parts.uri).map(|q: Query<HashMap<String, String>>| q.0).unwrap_or_default();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::new(ErrorCode::BodyTooLarge, format!("request body exceeds {MAX_BODY} bytes")))?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(ApiError::bad_request("the request body must be a JSON object")),
            Err(e) => return Err(ApiError::bad_request(format!("failed to parse JSON input: {e}"))),
        }
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let entry = crate::audit::request_entry(&parts.headers, crate::auth::client_ip(parts));
    Ok(VaultReq {
        op,
        path,
        query,
        body,
        merge_patch: content_type.starts_with("application/merge-patch+json"),
        request_id,
        entry,
        mfa: parts
            .headers
            .get("x-vault-mfa")
            .and_then(|v| v.to_str().ok())
            .map(|v| zeroize::Zeroizing::new(v.to_owned())),
        presented: crate::auth::presented_token(parts),
    })
}
