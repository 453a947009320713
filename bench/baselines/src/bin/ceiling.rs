//! The end-to-end benchmark's ceiling: axum answering 200 to every POST with no work at
//! all (hyper still reads the body), served plainly (no graceful shutdown). What the
//! HTTP stack alone costs on this machine.
//!
//! `PORT=3000 cargo run --release -p hookroute-bench-baselines --bin ceiling`

use std::process::ExitCode;

use axum::http::StatusCode;

#[tokio::main]
async fn main() -> ExitCode {
    let router = axum::Router::new().route("/webhooks/groq", axum::routing::post(|| async { StatusCode::OK }));
    hookroute_bench_baselines::serve_plainly(router).await
}
