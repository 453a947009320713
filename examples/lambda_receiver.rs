//! A Groq webhook receiver as an AWS Lambda function, behind API Gateway (REST or
//! HTTP API), a function URL or an Application Load Balancer.
//!
//! ```sh
//! cargo lambda build --release --example lambda_receiver --features lambda,redis
//! ```
//!
//! Set `GROQ_WEBHOOK_SECRET` in the function's environment, and `HOOKROUTE_STORE` to a
//! Redis or PostgreSQL URL that every instance reaches: each instance is a process of
//! its own, and without a shared store each one remembers only what it processed.
//! Outside Lambda it has no runtime API to ask for events (`AWS_LAMBDA_RUNTIME_API`);
//! `tests/example_receivers.rs` runs it against one on 127.0.0.1.

use std::process::ExitCode;

use hookroute::{webhook_handlers, EventMeta, HandlerError};
use serde::Deserialize;

mod support;

/// The `data` of Groq's `resource.*` events.
#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
}

struct Handlers;

#[webhook_handlers(provider = "groq")]
impl Handlers {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(event = meta.id(), resource = %data.id, "resource created");
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(event = meta.id(), resource = %data.id, "resource deleted");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // CloudWatch shows each line as it is: no colours, no timestamps of our own.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(false)
        .without_time()
        .init();
    // The store `HOOKROUTE_STORE` names and the secret from GROQ_WEBHOOK_SECRET, as in
    // every example (`examples/support`).
    let receiver = match support::receiver(Handlers).await {
        Ok(receiver) => receiver,
        Err(exit) => return exit,
    };
    if let Err(error) = hookroute::lambda::run(receiver).await {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
