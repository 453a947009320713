//! A Groq webhook receiver: verified, deduplicated, routed to typed handlers.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example groq_receiver
//! # in a second terminal:
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example send_event -- resource.created
//! ```
//!
//! Listens on 127.0.0.1:$PORT (default 3000) at `/webhooks/groq`.
//!
//! Remembers processed events in memory, or in the store `HOOKROUTE_STORE` names
//! (`redis://…`, `postgres://…`, `sqlite:events.db`), which needs the matching feature:
//!
//! ```sh
//! HOOKROUTE_STORE=redis://127.0.0.1:6379/ GROQ_WEBHOOK_SECRET=whsec_dev \
//!     cargo run --example groq_receiver --features redis
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Mutex;

use hookroute::{webhook_handlers, EventMeta, HandlerError, Receiver};
use serde::Deserialize;

/// The `data` of Groq's `resource.*` events.
#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// The application's state: here, the resources the events told us about.
#[derive(Default)]
struct App {
    resources: Mutex<HashMap<String, Option<String>>>,
}

impl App {
    fn resources(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.resources.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(event = meta.id(), resource = %data.id, name = ?data.name, "resource created");
        self.resources().insert(data.id, data.name);
        Ok(())
    }

    #[event("resource.updated")]
    async fn updated(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(event = meta.id(), resource = %data.id, name = ?data.name, "resource updated");
        self.resources().insert(data.id, data.name);
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        let known = self.resources().remove(&data.id).is_some();
        tracing::info!(event = meta.id(), resource = %data.id, known, "resource deleted");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,hookroute=info".into()),
        )
        .init();

    // Swapping the backend is this one line: any `IdempotencyStore` will do.
    let store = match hookroute::store::connect(&std::env::var("HOOKROUTE_STORE").unwrap_or_default()).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("error: HOOKROUTE_STORE: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The secret comes from GROQ_WEBHOOK_SECRET; a missing one is a clear error.
    let receiver = match Receiver::builder(App::default()).store(store).build() {
        Ok(receiver) => receiver,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let port = match std::env::var("PORT").map(|port| port.parse::<u16>()) {
        Err(_) => 3000,
        Ok(Ok(port)) => port,
        Ok(Err(_)) => {
            eprintln!("error: PORT must be a port number (0-65535)");
            return ExitCode::FAILURE;
        }
    };
    let app = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map_or_else(|_| format!("127.0.0.1:{port}"), |a| a.to_string());
    tracing::info!("listening on http://{address}/webhooks/groq");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        eprintln!("error: server stopped: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
