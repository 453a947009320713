//! One application receiving from two providers, GitHub and Stripe, with everything
//! written out here: two receivers, each with its own inbox and workers, one server,
//! and a shutdown that stops the server first and the workers after.
//!
//! ```sh
//! GITHUB_WEBHOOK_SECRET=gh_dev STRIPE_WEBHOOK_SECRET=whsec_dev cargo run --example two_providers
//! # from a second terminal (the routes are the CLI's default URLs):
//! GITHUB_WEBHOOK_SECRET=gh_dev cargo run -p hookroute-cli -- trigger --provider github issues.opened
//! STRIPE_WEBHOOK_SECRET=whsec_dev cargo run -p hookroute-cli -- trigger --provider stripe customer.subscription.updated
//! ```
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `PORT` | listen on 127.0.0.1:PORT (0 picks a free one) | 3000 |
//! | `GITHUB_WEBHOOK_SECRET`, `STRIPE_WEBHOOK_SECRET` | the signing secrets | required |
//! | `GITHUB_INBOX`, `STRIPE_INBOX` | each receiver's inbox: `memory:`, `sqlite:PATH`, `redis://…?prefix=github:`, `postgres://…?table=github_inbox` | `memory:` |
//!
//! Each receiver needs an inbox of its own: workers take whatever is in their inbox,
//! and a GitHub worker cannot run a Stripe delivery. On one Redis or PostgreSQL server,
//! give them one `?prefix=` or `?table=` each; operate each with the same URL
//! (`hookroute inbox --url 'redis://127.0.0.1/?prefix=github:' stats`).

use std::process::ExitCode;

use hookroute::{webhook_handlers, EventMeta, HandlerError, Receiver};
use serde::Deserialize;

/// GitHub's side of the application.
struct GitHubApp;

#[derive(Deserialize)]
struct IssueEvent {
    issue: Issue,
    repository: Repository,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    title: String,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[webhook_handlers(provider = "github")]
impl GitHubApp {
    #[event("issues.opened")]
    async fn issue_opened(&self, event: IssueEvent, meta: &EventMeta) -> Result<(), HandlerError> {
        let (repository, issue) = (event.repository.full_name, event.issue);
        tracing::info!(delivery = meta.id(), %repository, number = issue.number, title = %issue.title, "issue opened");
        Ok(())
    }

    #[event("ping")]
    async fn ping(&self, _ping: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(delivery = meta.id(), "GitHub says hello");
        Ok(())
    }
}

/// Stripe's side.
struct StripeApp;

/// A Stripe snapshot event's data: `{"object": {..}}`.
#[derive(Deserialize)]
struct Data<T> {
    object: T,
}

#[derive(Deserialize)]
struct Subscription {
    id: String,
    customer: String,
    status: String,
}

#[derive(Deserialize)]
struct Invoice {
    id: String,
    customer: String,
}

#[webhook_handlers(provider = "stripe")]
impl StripeApp {
    #[event("customer.subscription.updated")]
    async fn subscription_updated(&self, data: Data<Subscription>, meta: &EventMeta) -> Result<(), HandlerError> {
        let subscription = data.object;
        tracing::info!(
            event = meta.id(),
            subscription = %subscription.id,
            customer = %subscription.customer,
            status = %subscription.status,
            "subscription updated"
        );
        Ok(())
    }

    #[event("invoice.paid")]
    async fn invoice_paid(&self, data: Data<Invoice>, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(event = meta.id(), invoice = %data.object.id, customer = %data.object.customer, "invoice paid");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let github_inbox = std::env::var("GITHUB_INBOX").unwrap_or_else(|_| "memory:".to_owned());
    let stripe_inbox = std::env::var("STRIPE_INBOX").unwrap_or_else(|_| "memory:".to_owned());

    // One receiver per provider: its secret (from GITHUB_WEBHOOK_SECRET and
    // STRIPE_WEBHOOK_SECRET), its inbox, its workers.
    let github = Receiver::builder(GitHubApp)
        .inbox(hookroute::inbox::connect(&github_inbox).await.map_err(|e| format!("GITHUB_INBOX: {e}"))?)
        .build()?;
    let stripe = Receiver::builder(StripeApp)
        .inbox(hookroute::inbox::connect(&stripe_inbox).await.map_err(|e| format!("STRIPE_INBOX: {e}"))?)
        .build()?;
    let github_workers = github.worker()?.concurrency(4).spawn();
    let stripe_workers = stripe.worker()?.concurrency(4).spawn();

    // One server, a route per provider.
    let app = axum::Router::new()
        .route("/webhooks/github", hookroute::axum::post(github))
        .route("/webhooks/stripe", hookroute::axum::post(stripe));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    tracing::info!("listening on http://{address}/webhooks/github and http://{address}/webhooks/stripe");
    hookroute::axum::serve(listener, app).with_graceful_shutdown(stop_signal()).await?;

    // The server has stopped taking deliveries: let running handlers finish, and give
    // back what is not done (it stays queued in the inbox for the next start).
    tokio::join!(github_workers.shutdown(), stripe_workers.shutdown());
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
