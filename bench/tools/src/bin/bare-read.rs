//! `bare-read [ADDR]`: the least an authenticated masked read does, on keyward's HTTP stack and
//! crypto and nothing else: it digests the bearer token (HMAC-SHA256 under a token key) and finds
//! it in a map, opens the path's sealed blob (AES-256-GCM under a data key, keyward's blob
//! format), parses the JSON fields, masks them and answers a JSON body the shape and size of
//! keyward's `GET /api/v1/mounts/{mount}/secrets/{path}` — no middleware, policy, audit, store or
//! tracing. `bench/run.sh` measures it beside the ceiling and keyward's read, so the share of the
//! ceiling that any read on this stack keeps is visible, and what keyward's own work costs on top.
//! It prints the one token it accepts; every path answers the same secret.
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use keyward_crypto::{mask_value, open_secret_blob, seal_secret_blob, BlobContext, Key256, Token, TokenKey};
use serde_json::{json, Map, Value};

struct Vault {
    token_key: TokenKey,
    tokens: HashMap<String, &'static str>,
    dek: Key256,
    ctx: BlobContext,
    blob: Vec<u8>,
}

async fn read(State(v): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let presented =
        headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(|h| h.strip_prefix("Bearer "));
    let Some(accessor) = presented.and_then(Token::parse).and_then(|t| v.tokens.get(&v.token_key.digest(&t).0)) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let Ok(plain) = open_secret_blob(&v.dek, &v.ctx, &v.blob) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(Value::Object(data)) = serde_json::from_slice::<Value>(&plain) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let time = "2026-11-24T18:01:13.186814946Z";
    let fields: Vec<Value> = data
        .iter()
        .map(|(name, value)| {
            let masked = mask_value(value.as_str().unwrap_or_default());
            json!({ "name": name, "value": masked, "version": 1, "updated_time": time })
        })
        .collect();
    Json(json!({
        "mount": "secret", "path": "bench", "version": 1, "current_version": 1, "created_time": time,
        "created_by": accessor, "revealed": false, "fields": fields,
    }))
    .into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18314".into());
    let token_key = TokenKey(Key256::generate());
    let token = Token::generate();
    let tokens = HashMap::from([(token_key.digest(&token).0, "acc_FheeJESMsVvdBYmDsmUi3YBA")]);
    let mut data = Map::new();
    data.insert("STRIPE_KEY".into(), "sk_test_51H8abcdEFGH1234".into());
    data.insert("DATABASE_URL".into(), "postgres://u:p@h/db".into());
    let dek = Key256::generate();
    let ctx = BlobContext { mount: [1; 16], secret: [2; 16], version: 1 };
    let plain = serde_json::to_vec(&data).map_err(std::io::Error::other)?;
    let blob = seal_secret_blob(&dek, 1, &ctx, &plain);
    let vault = Arc::new(Vault { token_key, tokens, dek, ctx, blob });
    let app = Router::new().fallback(read).with_state(vault);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare read listening on {}", listener.local_addr()?);
    println!("token {}", token.expose());
    axum::serve(listener, app).await
}
