//! `keyward-bench-ceiling [ADDR] [DELAY_MS]`: answers every request with a small constant JSON body,
//! using the same axum, hyper and tokio as keyward. Benchmarks report keyward's endpoints as ratios
//! of its requests/s, and use it as the loopback upstream of the credential proxy; `DELAY_MS` makes
//! it answer like a remote API, after that many milliseconds (default 0).
use std::time::Duration;

use axum::routing::any;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18300".into());
    let delay = match std::env::args().nth(2) {
        Some(ms) => Duration::from_millis(ms.parse().map_err(|_| std::io::Error::other("DELAY_MS: a whole number"))?),
        None => Duration::ZERO,
    };
    let app = Router::new().fallback(any(move || async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        ([("content-type", "application/json")], "{\"ok\":true}")
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ceiling listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
