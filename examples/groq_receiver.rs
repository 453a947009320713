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

use hookroute::{webhook_handlers, EventMeta, HandlerError};
use serde::Deserialize;

mod support;

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
    support::serve(App::default()).await
}
