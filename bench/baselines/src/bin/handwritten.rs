//! The end-to-end benchmark's hand-written baseline served over HTTP: see
//! `hookroute_bench_baselines::handwritten`.
//!
//! `GROQ_WEBHOOK_SECRET=… PORT=3000 cargo run --release -p hookroute-bench-baselines --bin handwritten`

use std::process::ExitCode;
use std::sync::Arc;

use hookroute_bench_baselines::handwritten::{receive, receive_json, App};

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(secret) = std::env::var("GROQ_WEBHOOK_SECRET") else {
        eprintln!("error: set GROQ_WEBHOOK_SECRET");
        return ExitCode::FAILURE;
    };
    let json = std::env::var_os("HANDWRITTEN_JSON").is_some();
    let route = if json { axum::routing::post(receive_json) } else { axum::routing::post(receive) };
    let router = axum::Router::new().route("/webhooks/groq", route).with_state(Arc::new(App::new(secret)));
    hookroute_bench_baselines::serve(router).await
}
