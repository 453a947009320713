//! A Groq webhook receiver on actix-web: the same handlers as `groq_receiver`, on
//! another HTTP stack.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example actix_receiver --features actix
//! # in a second terminal:
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example send_event -- resource.created
//! ```
//!
//! Listens on 127.0.0.1:$PORT (default 3000; 0 picks a free port) at `/webhooks/groq`;
//! remembers processed events in the store `HOOKROUTE_STORE` names, as `groq_receiver`.

use std::process::ExitCode;

use actix_web::{App, HttpServer};
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

#[actix_web::main]
async fn main() -> ExitCode {
    // Logs, the store `HOOKROUTE_STORE` names and the secret from GROQ_WEBHOOK_SECRET,
    // as in every example (`examples/support`).
    support::init_logs();
    let receiver = match support::receiver(Handlers).await {
        Ok(receiver) => receiver,
        Err(exit) => return exit,
    };
    let port = match support::port() {
        Ok(port) => port,
        Err(exit) => return exit,
    };
    // One receiver, cloned into each worker's app: the clones share handlers and store.
    let app = move || App::new().route("/webhooks/groq", hookroute::actix::post(receiver.clone()));
    let server = match HttpServer::new(app).bind(("127.0.0.1", port)) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    for address in server.addrs() {
        tracing::info!("listening on http://{address}/webhooks/groq");
    }
    // actix-web stops gracefully on Ctrl-C by itself.
    if let Err(error) = server.run().await {
        eprintln!("error: server stopped: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
