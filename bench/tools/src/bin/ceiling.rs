//! `keyward-bench-ceiling [ADDR]`: answers every request with a small constant JSON body, using the
//! same axum, hyper and tokio as keyward. Benchmarks report keyward's endpoints as ratios of its
//! requests/s, and use it as the loopback upstream of the credential proxy.
use axum::routing::any;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18300".into());
    let app = Router::new().fallback(any(|| async { ([("content-type", "application/json")], "{\"ok\":true}") }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ceiling listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
