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

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::handler::WebhookHandlers;
use crate::receiver::{Outcome, Receiver, Rejection};
use crate::store::IdempotencyStore;

mod serve;
pub use serve::{serve, Serve, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES};

/// After a 413, at most this many more bytes of the body are read and dropped, so a
/// client that writes its whole body before reading gets the answer, not a reset.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// ... and for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// A `POST` route that feeds every request to `receiver`.
///
/// The body is read raw, up to the receiver's body limit: a larger body (by its
/// `Content-Length` or as it streams in) is answered 413 before it is buffered
/// whole. A body not read whole within the receiver's body timeout is answered 408;
/// one that would take the bodies held unverified past the receiver's budget, 503.
/// Other methods get 405.
///
/// Once its body is read, a delivery runs to its end in a task of its own: a client
/// that hangs up does not cancel a handler that has started.
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
    let (parts, mut body) = request.into_parts();
    let limit = receiver.body_limit();
    let deadline = Instant::now() + receiver.body_timeout();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return too_large(body, limit).await;
    }

    // The bytes of bodies not yet verified are counted against the receiver's budget
    // while they are held.
    let budget = receiver.unverified_budget();
    let mut held = None::<tokio::sync::SemaphorePermit<'_>>;
    let mut first = None::<Bytes>;
    let mut rest = Vec::new();
    let mut read = 0_usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_elapsed) => return reject(Rejection::BodyTimeout { after: receiver.body_timeout() }, true),
            Ok(None) => break,
            Ok(Some(Err(error))) => return reject(Rejection::BodyRead(error.to_string()), true),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        read += data.len();
        if read > limit {
            return too_large(body, limit).await;
        }
        let permit = u32::try_from(data.len()).ok().and_then(|bytes| budget.try_acquire_many(bytes).ok());
        let Some(permit) = permit else {
            return reject(Rejection::Overloaded, true);
        };
        match &mut held {
            Some(held) => held.merge(permit),
            None => held = Some(permit),
        }
        match &first {
            None => first = Some(data),
            Some(first) => {
                if rest.is_empty() {
                    rest.reserve(declared.and_then(|len| usize::try_from(len).ok()).unwrap_or(2 * first.len()));
                    rest.extend_from_slice(first);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    let bytes = if rest.is_empty() { first.unwrap_or_default() } else { Bytes::from(rest) };

    // Run to the end even if the client hangs up: a started handler is not cut off,
    // and its completion is recorded.
    let receiver = receiver.clone();
    let run = tokio::spawn(async move {
        let outcome = receiver.receive(&parts.headers, &bytes).await;
        respond(&outcome)
    });
    let response = run.await.unwrap_or_else(|error| {
        tracing::error!(error = %error, "a delivery's task failed");
        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"internal error"}"#).into_response()
    });
    drop(held);
    response
}

/// Answers 413 after reading and dropping a bounded part of the rest of the body
/// (nginx's lingering close): a client that writes its whole body before it reads
/// would otherwise see the connection reset instead of the answer.
async fn too_large(mut body: Body, limit: usize) -> Response {
    let until = Instant::now() + DRAIN_TIME;
    let mut drained = 0_usize;
    while drained < DRAIN_BYTES {
        match tokio::time::timeout_at(until, body.frame()).await {
            Ok(Some(Ok(frame))) => drained += frame.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
    reject(Rejection::TooLarge { limit }, true)
}

/// Answers a request rejected before the receiver saw it, logged like the receiver's.
/// `close`: the connection is not kept alive (its body was not read whole).
fn reject(rejection: Rejection, close: bool) -> Response {
    let outcome = Outcome::new(Err(rejection));
    outcome.log();
    let mut response = respond(&outcome);
    if close {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn respond(outcome: &Outcome) -> Response {
    let mut response = (outcome.status(), Body::from(outcome.body())).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
