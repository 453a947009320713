//! Mount a [`Receiver`] on an axum route.
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
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::handler::WebhookHandlers;
use crate::receiver::{Outcome, Receiver, Rejection};
use crate::store::IdempotencyStore;

/// A `POST` route that feeds every request to `receiver`.
///
/// The body is read raw, up to the receiver's body limit: a larger body (by its
/// `Content-Length` or as it streams in) is answered 413 before it is buffered
/// whole. Other methods get 405.
pub fn post<H, S, St>(receiver: Receiver<H, S>) -> MethodRouter<St>
where
    H: WebhookHandlers,
    S: IdempotencyStore,
    St: Clone + Send + Sync + 'static,
{
    axum::routing::post(move |request: Request| async move { handle(&receiver, request).await })
}

/// Receives one axum request: what [`post`] runs for each delivery.
pub async fn handle<H: WebhookHandlers, S: IdempotencyStore>(receiver: &Receiver<H, S>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let limit = receiver.body_limit();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return reject(Rejection::TooLarge { limit });
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return reject(Rejection::TooLarge { limit }),
        Err(error) => return reject(Rejection::BodyRead(error.to_string())),
    };
    respond(&receiver.receive(&parts.headers, &bytes).await)
}

/// Answers a request rejected before the receiver saw it, logged like the receiver's.
fn reject(rejection: Rejection) -> Response {
    let outcome = Outcome::new(Err(rejection));
    outcome.log();
    respond(&outcome)
}

fn respond(outcome: &Outcome) -> Response {
    let mut response = (outcome.status(), Body::from(outcome.body())).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
