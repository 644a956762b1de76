//! `bare-proxy ADDR UPSTREAM`: forwards every request to `UPSTREAM` (an `http://host:port`
//! origin) and streams the answer back, with the HTTP client and server keyward's credential
//! proxy uses (reqwest, axum) and nothing else: no token, policy, audit, credential or scrubbing.
//! `bench/proxy-overhead.sh` measures it beside keyward's proxy, so the share of the loopback
//! upstream's throughput that any proxy keeps on the same cores is visible, and what keyward's
//! own work costs on top of it.
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

#[derive(Clone)]
struct Upstream {
    origin: String,
    client: reqwest::Client,
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let sent = up.client.request(parts.method, format!("{}{path}", up.origin)).body(body).send().await;
    let Ok(answer) = sent else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut out = Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        if k != "transfer-encoding" && k != "connection" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from_stream(answer.bytes_stream())).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(origin)) = (args.next(), args.next()) else {
        return Err(std::io::Error::other("usage: bare-proxy ADDR UPSTREAM_ORIGIN"));
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(std::io::Error::other)?;
    let app = Router::new().fallback(forward).with_state(Upstream { origin, client });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare proxy listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
