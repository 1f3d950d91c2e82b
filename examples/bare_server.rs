//! The intake's ceiling on this machine: a bare axum/hyper server (the same stack and runtime as
//! `paiid-alerts serve`) that reads each request's body and answers 200 with no checking,
//! parsing or storing. `scripts/bench-intake.sh` runs it beside Alertmanager and paiid-alerts and
//! reports paiid-alerts' req/s as a fraction of this one's (issue 10, target 1).
//!
//! `cargo run --release --example bare_server -- 127.0.0.1:PORT`

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let app = Router::new()
        .route("/readyz", get(|| async { "ready" }))
        .route(
            "/webhooks/sentry",
            post(|body: Bytes| async move { format!("{{\"read\":{}}}", body.len()) }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("bare server on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
