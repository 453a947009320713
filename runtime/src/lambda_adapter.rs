//! Run a [`Receiver`] as an AWS Lambda function behind API Gateway (REST or HTTP
//! API), a function URL or an Application Load Balancer.
//!
//! The receiver is a tower `Service`, which is what `lambda_http::run` takes: [`run`]
//! is that call, and [`lambda_http`] is re-exported at the version this feature was
//! built against.
//!
//! ```no_run
//! # use hookroute_runtime::__private as p;
//! # struct App;
//! # impl p::WebhookHandlers for App {
//! #     type Provider = hookroute_runtime::Groq; type Event = ();
//! #     const EVENT_TYPES: &'static [&'static str] = &[];
//! #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Ignored) }
//! #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
//! # }
//! #[tokio::main]
//! async fn main() -> Result<(), hookroute_runtime::lambda_adapter::lambda_http::Error> {
//!     let receiver = hookroute_runtime::Receiver::new(App)?;
//!     hookroute_runtime::lambda_adapter::run(receiver).await
//! }
//! ```
//!
//! What is different on Lambda:
//!
//! - **The body arrives whole**, inside the event. A body the gateway base64-encoded
//!   (`isBase64Encoded`) is decoded first: the signature is checked over the bytes the
//!   provider sent, as on any other stack. The receiver's body limit still applies;
//!   the body timeout and the unverified-bytes budget have nothing to bound.
//! - **Each instance is its own process**: use a shared store (Redis, PostgreSQL), or
//!   each instance remembers only what it processed itself.
//! - **Nothing runs after the answer**: Lambda freezes the instance once a response is
//!   sent. The receiver answers only after the handler ran and the event was recorded
//!   as done; only a done mark the store refused the first time is retried in the
//!   background, and that retry may wait for the next invocation.
//! - **Inbox mode** answers 202 once the delivery is stored; run the [`Worker`](crate::Worker)
//!   elsewhere (a container, a scheduled function), not in the function that receives.

use crate::handler::WebhookHandlers;
use crate::receiver::Receiver;
use crate::store::IdempotencyStore;

pub use lambda_http;

/// Serves `receiver` to the Lambda runtime: each invocation is one delivery.
pub async fn run<H, S>(receiver: Receiver<H, S>) -> Result<(), lambda_http::Error>
where
    H: WebhookHandlers,
    S: IdempotencyStore,
{
    lambda_http::run(receiver).await
}
