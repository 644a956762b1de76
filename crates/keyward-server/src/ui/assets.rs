//! The UI's stylesheet and script, served by keyward itself (no build step, no other origin).
use axum::extract::Request;
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::ApiResult;
use crate::pipeline::Ctx;

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    resp
}

/// `GET /ui/assets/ui.css`.
pub(crate) async fn css(_ctx: Ctx, _req: Request) -> ApiResult<Response> {
    Ok(asset(CSS, "text/css; charset=utf-8"))
}

/// `GET /ui/assets/ui.js`.
pub(crate) async fn js(_ctx: Ctx, _req: Request) -> ApiResult<Response> {
    Ok(asset(JS, "text/javascript; charset=utf-8"))
}
