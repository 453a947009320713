//! Mount a [`Receiver`] on an axum route, and [`serve`] it with the bounds an
//! endpoint open to anybody needs.
//!
//! ```no_run
//! use hookroute_runtime::{axum_adapter as hookroute_axum, Receiver};
//! # use hookroute_runtime::__private as p;
//! # struct App;
//! # impl p::WebhookHandlers for App {
//! #     type Provider = hookroute_runtime::Groq; type Event = ();
//! #     const EVENT_TYPES: &'static [&'static str] = &[];
//! #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Ignored) }
//! #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
//! # }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::new(App)?;
//! let app = axum::Router::new().route("/webhooks/groq", hookroute_axum::post(receiver));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! hookroute_axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use axum::routing::MethodRouter;

use crate::handler::WebhookHandlers;
use crate::receiver::Receiver;
use crate::store::IdempotencyStore;

mod serve;
pub use serve::{
    default_max_connections, serve, Serve, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_HEADER_BYTES, MAX_CONNECTIONS_CEILING,
};

/// A `POST` route that feeds every request to `receiver`: `axum::routing::post_service`
/// over the receiver's [`Service`](tower_service::Service) impl, which reads the body
/// within the receiver's bounds and answers (see [`crate::service`]). Other methods
/// get 405.
///
/// `Router::route_service("/webhooks/groq", receiver)` mounts it for every method;
/// the receiver then answers 405 itself.
pub fn post<H, S, St>(receiver: Receiver<H, S>) -> MethodRouter<St>
where
    H: WebhookHandlers,
    S: IdempotencyStore,
    St: Clone + Send + Sync + 'static,
{
    axum::routing::post_service(receiver)
}

/// A `GET` route answering the receiver's [health](crate::health) as JSON: 200 when
/// it is ready (in inbox mode: the inbox answers and this process's workers take
/// deliveries), 503 when not. Mount it where your orchestrator looks:
/// `.route("/healthz", hookroute::axum::health(receiver.clone()))`.
pub fn health<H, S, St>(receiver: Receiver<H, S>) -> MethodRouter<St>
where
    H: WebhookHandlers,
    S: IdempotencyStore,
    St: Clone + Send + Sync + 'static,
{
    axum::routing::get(move || {
        let receiver = receiver.clone();
        async move {
            let health = receiver.health().await;
            let status = http::StatusCode::from_u16(health.status()).unwrap_or(http::StatusCode::SERVICE_UNAVAILABLE);
            (status, [(http::header::CONTENT_TYPE, "application/json")], health.to_json())
        }
    })
}
