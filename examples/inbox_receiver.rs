//! A Groq receiver in inbox mode: a verified delivery is stored and answered
//! `202 {"status":"queued"}` at once; workers run the handlers later, with retries and
//! dead letters.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example inbox_receiver
//! # with a durable inbox shared by replicas and worker processes:
//! HOOKROUTE_INBOX=postgres://app@127.0.0.1/app GROQ_WEBHOOK_SECRET=whsec_dev \
//!     cargo run --example inbox_receiver --features postgres
//! ```
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `PORT` | listen on 127.0.0.1:PORT (0 picks a free one) | 3000 |
//! | `GROQ_WEBHOOK_SECRET` | the signing secret | required |
//! | `HOOKROUTE_INBOX` | `memory:`, `sqlite:PATH`, `redis://…`, `postgres://…`; `inline`: no inbox, handlers run inside the request (to compare) | `memory:` |
//! | `WORKERS` | handlers run at once in this process; `0`: HTTP only | 4 |
//! | `ROLE` | `worker`: workers only, no HTTP | both |
//! | `HANDLER_DELAY_MS` | each handler sleeps this long | 0 |
//! | `RETRY_SCHEDULE_MS` | delays between attempts, e.g. `100,200,400` | Standard Webhooks |
//! | `LEASE_MS` | a worker's lease, renewed while its handler runs | 30000 |
//! | `MAX_WAITING` | deliveries waiting before new ones are refused 503 | 100000 |
//! | `ORDER_KEY` | `1`: each resource's events run one at a time, oldest first (`key = "data.id"`) | unset |
//!
//! A handler fails its first N attempts when the event's `data` holds `"fail_times": N`,
//! and fails permanently (dead letter at once) with `"fail": "permanent"`. The worker
//! logs `handled event=<id> attempt=<n>`, `failed event=<id> attempt=<n>` and
//! `dead-lettered event=<id>`. SIGTERM or Ctrl-C: stop taking deliveries, let running
//! handlers finish (30 s grace), give the rest back.

use std::process::ExitCode;
use std::time::Duration;

use hookroute::inbox::RetrySchedule;
use hookroute::{webhook_handlers, EventMeta, HandlerError, Receiver};
use serde::Deserialize;

/// The `data` of Groq's `resource.*` events, with the knobs of this example.
#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
    /// Fail this many attempts before succeeding.
    #[serde(default)]
    fail_times: u32,
    /// `"permanent"`: fail for good.
    #[serde(default)]
    fail: Option<String>,
}

struct App {
    delay: Duration,
}

impl App {
    async fn handle(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tokio::time::sleep(self.delay).await;
        if data.fail.as_deref() == Some("permanent") {
            return Err(HandlerError::permanent(format!("resource {} cannot be processed", data.id)));
        }
        if meta.attempt().unwrap_or(1) <= data.fail_times {
            return Err(HandlerError::msg(format!("resource {} failed on purpose", data.id)));
        }
        tracing::debug!(event = meta.id(), resource = %data.id, event_type = meta.event_type(), "resource handled");
        Ok(())
    }
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("resource.updated")]
    async fn updated(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }
}

/// The same handlers, with the events of one resource in an ordered lane
/// (`ORDER_KEY=1`; `bench/inbox` compares the two).
struct Ordered(App);

#[webhook_handlers(provider = "groq")]
impl Ordered {
    #[event("resource.created", key = "data.id")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.handle(data, meta).await
    }

    #[event("resource.updated", key = "data.id")]
    async fn updated(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.handle(data, meta).await
    }

    #[event("resource.deleted", key = "data.id")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.handle(data, meta).await
    }
}

/// Reads a variable, or its default when unset; a value that does not parse is an error.
fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text.trim().parse().map_err(|_| format!("{name}=`{text}` is not valid")),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,hookroute=info".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let delay = Duration::from_millis(var("HANDLER_DELAY_MS", 0)?);
    if var("ORDER_KEY", 0_u8)? == 1 {
        serve(Ordered(App { delay })).await
    } else {
        serve(App { delay }).await
    }
}

async fn serve<H: hookroute::WebhookHandlers>(app: H) -> Result<(), String> {
    let port: u16 = var("PORT", 3000)?;
    let workers: usize = var("WORKERS", hookroute::DEFAULT_CONCURRENCY)?;
    let worker_only = match std::env::var("ROLE").unwrap_or_default().as_str() {
        "" | "both" | "http" => false,
        "worker" => true,
        other => return Err(format!("ROLE=`{other}`: use `worker` (workers only) or leave it unset")),
    };
    let lease = Duration::from_millis(var("LEASE_MS", 30_000)?);
    let schedule = match std::env::var("RETRY_SCHEDULE_MS") {
        Ok(list) => RetrySchedule::from_millis_list(&list).map_err(|error| format!("RETRY_SCHEDULE_MS: {error}"))?,
        Err(_) => RetrySchedule::standard(),
    };
    let url = std::env::var("HOOKROUTE_INBOX").unwrap_or_default();
    let inline = url == "inline";
    let mut builder = Receiver::builder(app).max_waiting(var("MAX_WAITING", hookroute::DEFAULT_MAX_WAITING)?);
    if !inline {
        let inbox = hookroute::inbox::connect(&url).await.map_err(|error| format!("HOOKROUTE_INBOX: {error}"))?;
        builder = builder.inbox(inbox).retry_schedule(schedule);
    } else if worker_only {
        return Err("ROLE=worker needs an inbox, not HOOKROUTE_INBOX=inline".to_owned());
    }
    let receiver = builder.build().map_err(|error| error.to_string())?;

    let worker = (!inline && (workers > 0 || worker_only))
        .then(|| receiver.worker().map(|worker| worker.concurrency(workers.max(1)).lease(lease).spawn()))
        .transpose()
        .map_err(|error| error.to_string())?;
    if worker_only {
        tracing::info!(workers = workers.max(1), "inbox worker running");
        stop_signal().await;
    } else {
        let route = "/webhooks/groq";
        let app = axum::Router::new().route(route, hookroute::axum::post(receiver));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
        let address = listener.local_addr().map_or_else(|_| format!("127.0.0.1:{port}"), |a| a.to_string());
        tracing::info!(workers, "listening on http://{address}{route}");
        hookroute::axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|error| format!("server stopped: {error}"))?;
    }
    if let Some(worker) = worker {
        worker.shutdown().await;
    }
    Ok(())
}
