//! Extractors that turn axum's rejections into JSON errors (never plain text).
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// A JSON body; a bad or oversized body becomes a JSON error (400 / 413 / 415).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(r: &JsonRejection) -> ApiError {
    let status = r.status();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::BodyTooLarge, "request body is larger than the 1 MiB limit")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::new(ErrorCode::UnsupportedMediaType, "expected a JSON body with Content-Type: application/json")
        }
        // The body text of a JSON rejection can quote input; say only where it failed.
        _ => ApiError::bad_request(format!("invalid JSON body: {}", serde_position(&r.body_text()))),
    }
}

/// Keeps serde's "at line L column C" and field-type hints, dropping any quoted input.
fn serde_position(text: &str) -> String {
    let tail = text.rsplit_once(": ").map_or(text, |(_, t)| t);
    let cut = tail.find(['`', '"', '\'']).map_or(tail, |i| &tail[..i]);
    let mut s = cut.trim().trim_end_matches(',').to_owned();
    if let Some(i) = tail.find(" at line ") {
        if !s.contains(" at line ") {
            s.push_str(&tail[i..]);
        }
    }
    s
}

/// Decodes a request's JSON body (see [`ApiJson`]).
pub(crate) async fn json_body<T: DeserializeOwned>(req: Request) -> Result<T, ApiError> {
    Ok(ApiJson::<T>::from_request(req, &()).await?.0)
}

/// Decodes a request's query string; a bad one becomes a 400 JSON error.
pub(crate) fn query_of<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    match axum::extract::Query::<T>::try_from_uri(req.uri()) {
        Ok(axum::extract::Query(v)) => Ok(v),
        Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
            Err(ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
        }
        Err(_) => Err(ApiError::bad_request("invalid query string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_quoted_input() {
        let m = serde_position("Failed to deserialize the JSON body into the target type: set.A: invalid type: string \"sk_live_secret\", expected a map at line 1 column 30");
        assert!(!m.contains("sk_live_secret"), "{m}");
        assert!(m.contains("line 1 column 30"), "{m}");
    }
}
