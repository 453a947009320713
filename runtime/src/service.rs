//! A [`Receiver`] as an HTTP service: `http::Request` in, `http::Response` out, for
//! any [`http_body::Body`].
//!
//! [`Receiver`] implements [`tower_service::Service`], so anything that serves a tower
//! service serves it with no adapter code: axum (`route_service`), hyper (through
//! `hyper_util::service::TowerToHyperService`), tonic, and AWS Lambda
//! (`lambda_http::run`). Stacks whose bodies are not `Send` (actix-web) call
//! [`Receiver::handle`] directly.
//!
//! What the service does for each request, beside what [`Receiver::receive`] does:
//!
//! - reads the body raw, up to the receiver's [body limit](crate::ReceiverBuilder::body_limit):
//!   a larger one, by its `Content-Length` or as it streams in, is answered 413 before it
//!   is held whole;
//! - answers 408 to a body not read whole within the [body timeout](crate::ReceiverBuilder::body_timeout)
//!   or arriving below the [floor rate](crate::ReceiverBuilder::min_body_rate), and 503 to
//!   one that would take the bytes of bodies held unverified past the
//!   [budget](crate::ReceiverBuilder::unverified_bytes) or its client's share of it
//!   (see [`budget`](crate::budget));
//! - answers 405 to any method but `POST`;
//! - runs the request to its end even if the client hangs up: the `Service` runs the
//!   body's reading and the delivery as one future, in the caller's task until it first
//!   waits and in a task of its own from then on ([`ResponseFuture`]);
//!   [`Receiver::handle`] reads the body, then runs the delivery the same way. A
//!   handler that has started is not cancelled;
//! - answers JSON (`{"status":"processed"}`, `{"error":"…"}`) with the status of
//!   [`Outcome::status`], and logs every rejection once.
//!
//! ```
//! use hookroute_runtime::{testing::TestEvent, Groq, Receiver};
//! use tower_service::Service as _;
//! # use hookroute_runtime::__private as p;
//! # struct App;
//! # impl p::WebhookHandlers for App {
//! #     type Provider = Groq; type Event = ();
//! #     const EVENT_TYPES: &'static [&'static str] = &["ping"];
//! #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Handled(())) }
//! #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let mut receiver = Receiver::builder(App).secret("s3cret").build()?;
//! let delivery = TestEvent::<Groq>::new("ping", serde_json::json!({})).sign("s3cret");
//! let mut request = http::Request::post("/webhooks/groq")
//!     .body(http_body_util::Full::new(bytes::Bytes::from(delivery.body)))
//!     .unwrap();
//! *request.headers_mut() = delivery.headers;
//! let response = receiver.call(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # Ok::<(), hookroute_runtime::ConfigError>(())
//! # }).unwrap();
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt as _;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::future::by_deadline;
use crate::handler::WebhookHandlers;
use crate::receiver::{Outcome, Receiver, Rejection};
use crate::store::IdempotencyStore;

/// The body of every response: the JSON of [`Outcome::body`], in one piece.
pub type ResponseBody = http_body_util::Full<Bytes>;

/// The error type bodies convert their errors into, as in tower and hyper.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// After a 413, at most this many more bytes of the body are read and dropped, so a
/// client that writes its whole body before reading gets the answer, not a reset.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// ... and for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(2);

impl<H: WebhookHandlers, S: IdempotencyStore> Receiver<H, S> {
    /// Answers one HTTP request as the [`Service`](tower_service::Service) impl does,
    /// for stacks whose bodies are not `Send`: the body is read in this future, the
    /// delivery here too until it first waits, then in a task of its own (the
    /// `Service` runs both as one future, see [`ResponseFuture`]). See the
    /// [module](crate::service) for what it checks beyond [`receive`](Self::receive).
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        self.answer(request).await.map(ResponseBody::new)
    }

    /// [`handle`](Self::handle), with the body as plain bytes: the body is read here,
    /// the delivery runs to its end even if this future is dropped.
    pub(crate) async fn answer<B>(&self, request: Request<B>) -> Response<Bytes>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let (bytes, held) = match self.read(&parts, body).await {
            Ok(read) => read,
            Err(response) => return response,
        };
        // Run to the end even if the client hangs up: a started handler is not cut off,
        // and its completion is recorded. It carries the caller's span: the delivery's
        // span is a child of the HTTP request's (tower-http's `TraceLayer`, say).
        let receiver = self.clone();
        let run = RunToEnd::new(
            async move {
                let outcome = receiver.receive(&parts.headers, &bytes).await;
                respond(&outcome)
            }
            .in_current_span(),
        );
        let response = run.await;
        drop(held);
        response
    }

    /// What the [`Service`](tower_service::Service) impl runs (see [`ResponseFuture`]):
    /// reads the body, then receives the delivery, as one future that owns what it
    /// needs (a task may take it over).
    ///
    /// The request is split before the future is made: an `async fn` would keep the
    /// whole request in every state beside the parts taken out of it.
    fn answer_owned<B>(self, request: Request<B>) -> impl Future<Output = Response<Bytes>> + Send + 'static
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        async move {
            let (bytes, held) = match self.read(&parts, body).await {
                Ok(read) => read,
                Err(response) => return response,
            };
            let outcome = self.receive(&parts.headers, &bytes).await;
            drop(held);
            respond(&outcome)
        }
    }

    /// Reads a `POST`'s body whole within the receiver's bounds (size, time, the budget
    /// of unverified bytes, whose permit is held until the delivery is answered), or
    /// answers the request.
    async fn read<B>(
        &self,
        parts: &http::request::Parts,
        body: B,
    ) -> Result<(Bytes, crate::budget::Held<'_>), Response<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let started = crate::observe::Started::now();
        let mut body = pin!(body);
        if parts.method != Method::POST {
            let mut response = json(StatusCode::METHOD_NOT_ALLOWED, r#"{"error":"only POST is accepted"}"#.into());
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Err(response);
        }
        let limit = self.body_limit();
        let deadline = Instant::now().checked_add(self.body_timeout());
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            // A client that waits for `100 Continue` has not sent its body: reading it
            // would ask for it (hyper answers `100 Continue` on the first read). Answer
            // at once; the drain is for bodies already on their way.
            if expects_continue(&parts.headers) {
                return Err(Self::reject(Rejection::TooLarge { limit }, started));
            }
            return Err(self.too_large(body, started).await);
        }

        // The bytes of bodies not yet verified are counted against the receiver's
        // budget while they are held, and against the client's share of it.
        let mut held = self.unverified_budget().hold(parts.extensions.get::<crate::budget::ClientAddr>());
        let mut pace = Pace::new(self.min_body_rate(), deadline, self.body_timeout());
        let mut first = None::<Bytes>;
        let mut rest = Vec::new();
        let mut read = 0_usize;
        loop {
            let frame = match by_deadline(pace.wait_until(), body.frame()).await {
                Err(_elapsed) => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return Err(Self::reject(Rejection::BodyTimeout { after: self.body_timeout() }, started));
                    }
                    if let Some(rate) = pace.behind() {
                        return Err(Self::reject(Rejection::BodyTooSlow { rate }, started));
                    }
                    continue; // a second that brought enough has ended
                }
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    return Err(Self::reject(Rejection::BodyRead(error.into().to_string()), started))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(mut data) = frame.into_data() else { continue };
            let data = data.copy_to_bytes(data.remaining());
            if data.is_empty() {
                continue;
            }
            read += data.len();
            if read > limit {
                return Err(self.too_large(body, started).await);
            }
            // A body whole in hand (most webhooks, in their first frame) is not waited
            // for again: neither its pace nor its client's share needs counting.
            let whole = declared.is_some_and(|len| len == read as u64);
            if !whole {
                if let Some(rate) = pace.arrived(data.len()) {
                    return Err(Self::reject(Rejection::BodyTooSlow { rate }, started));
                }
            }
            if !held.take(data.len(), read, whole) {
                return Err(Self::reject(Rejection::Overloaded, started));
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
        Ok((bytes, held))
    }
}

/// The floor rate of a body: after its first second, each second must bring at least
/// `rate` bytes (or the end of the body).
struct Pace {
    rate: u32,
    /// The body timeout's deadline.
    deadline: Option<Instant>,
    /// When the current second ends, and what it has brought so far.
    second_ends: Instant,
    this_second: u64,
}

impl Pace {
    const SECOND: Duration = Duration::from_secs(1);

    /// The body's pace, its timeout ending at `deadline`: it started `timeout` before
    /// (no clock read for it).
    fn new(rate: u32, deadline: Option<Instant>, timeout: Duration) -> Self {
        let started = deadline.and_then(|deadline| deadline.checked_sub(timeout)).unwrap_or_else(Instant::now);
        // The first second is free.
        Self { rate, deadline, second_ends: started + Self::SECOND, this_second: u64::from(rate) }
    }

    /// Until when to wait for the next frame.
    fn wait_until(&self) -> Option<Instant> {
        if self.rate == 0 {
            return self.deadline;
        }
        Some(self.deadline.map_or(self.second_ends, |deadline| deadline.min(self.second_ends)))
    }

    /// Rolls past every second that has ended; the floor rate when one of them brought
    /// less than it.
    fn behind(&mut self) -> Option<u32> {
        if self.rate == 0 {
            return None;
        }
        let now = Instant::now();
        while now >= self.second_ends {
            if self.this_second < u64::from(self.rate) {
                return Some(self.rate);
            }
            self.this_second = 0;
            self.second_ends += Self::SECOND;
        }
        None
    }

    /// Counts `bytes` that just arrived; the floor rate when a second that ended
    /// before them brought less than it.
    fn arrived(&mut self, bytes: usize) -> Option<u32> {
        let behind = self.behind();
        self.this_second = self.this_second.saturating_add(bytes as u64);
        behind
    }
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers.get(header::EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The answer when a delivery's task panicked or was cancelled (the runtime shutting
/// down).
#[allow(clippy::needless_pass_by_value)] // the shape `unwrap_or_else` calls
fn task_failed(error: tokio::task::JoinError) -> Response<Bytes> {
    tracing::error!(error = %error, "a delivery's task failed");
    internal_error()
}

fn internal_error() -> Response<Bytes> {
    json(StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"internal error"}"#.into())
}

/// The [`Service`](tower_service::Service) impl's future: reads the request's body and
/// receives the delivery. Its first poll runs the handling in the caller's task; a
/// delivery that finishes there (a duplicate, a rejection, a fast handler on an
/// in-memory store) costs no task. One that has to wait (a body still streaming in, a
/// store's round trip, a slow handler) moves into a task of its own, so that dropping
/// this future (the client hung up) leaves it to run to its end; a request dropped
/// before its first poll has not started.
#[derive(Debug)]
pub struct ResponseFuture(RunToEnd);

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|response| Ok(response.map(ResponseBody::new)))
    }
}

/// Work that runs in the caller's task until it first waits, then in a task of its own
/// that dropping this future does not cancel ([`ResponseFuture`], [`Receiver::handle`]).
enum RunToEnd {
    Start(Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>),
    Task(tokio::task::JoinHandle<Response<Bytes>>),
    Done,
}

impl RunToEnd {
    fn new(work: impl Future<Output = Response<Bytes>> + Send + 'static) -> Self {
        Self::Start(Box::pin(work))
    }
}

impl std::fmt::Debug for RunToEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Start(_) => "Start",
            Self::Task(_) => "Task",
            Self::Done => "Done",
        })
    }
}

impl Future for RunToEnd {
    type Output = Response<Bytes>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Self::Start(work) = &mut *self {
            // A panic (in a store, say: handlers' are caught where they run) answers
            // 500 here as it would in a task, not tear down the caller's connection.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.as_mut().poll(cx))) {
                Ok(Poll::Ready(response)) => {
                    *self = Self::Done;
                    return Poll::Ready(response);
                }
                Ok(Poll::Pending) => {
                    // The task's first poll registers its own waker wherever this one
                    // was left.
                    let Self::Start(work) = std::mem::replace(&mut *self, Self::Done) else {
                        unreachable!("matched above")
                    };
                    *self = Self::Task(tokio::spawn(work));
                }
                Err(panic) => {
                    *self = Self::Done;
                    tracing::error!(panic = %crate::future::panic_message(panic.as_ref()), "a delivery panicked");
                    return Poll::Ready(internal_error());
                }
            }
        }
        match &mut *self {
            Self::Task(task) => Pin::new(task).poll(cx).map(|joined| joined.unwrap_or_else(task_failed)),
            Self::Start(_) | Self::Done => panic!("polled after it answered"),
        }
    }
}

impl<H, S, B> tower_service::Service<Request<B>> for Receiver<H, S>
where
    H: WebhookHandlers,
    S: IdempotencyStore,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    /// Always ready: the receiver bounds its own work (body budget, store, inbox).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    /// Boxes the request's whole handling, body and delivery, as one future: run in
    /// the caller's task until it first waits, then in a task of its own (see
    /// [`ResponseFuture`]), so a client that hangs up does not cut off a handler that has
    /// started. It carries the caller's span: the delivery's span is a child of the
    /// HTTP request's (tower-http's `TraceLayer`, say).
    fn call(&mut self, request: Request<B>) -> Self::Future {
        ResponseFuture(RunToEnd::new(self.clone().answer_owned(request).in_current_span()))
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Receiver<H, S> {
    /// Answers 413 after reading and dropping a bounded part of the rest of the body
    /// (nginx's lingering close): a client that writes its whole body before it reads
    /// would otherwise see the connection reset instead of the answer.
    async fn too_large<B: Body>(&self, mut body: Pin<&mut B>, started: crate::observe::Started) -> Response<Bytes> {
        let until = Instant::now() + DRAIN_TIME;
        let mut drained = 0_usize;
        while drained < DRAIN_BYTES {
            match tokio::time::timeout_at(until, body.frame()).await {
                Ok(Some(Ok(frame))) => drained += frame.data_ref().map_or(0, bytes::Buf::remaining),
                _ => break,
            }
        }
        Self::reject(Rejection::TooLarge { limit: self.body_limit() }, started)
    }

    /// Answers a request rejected before the receiver saw it, reported (span, log,
    /// metrics) as the receiver reports its own. The connection is not kept alive:
    /// its body was not read whole.
    fn reject(rejection: Rejection, started: crate::observe::Started) -> Response<Bytes> {
        let outcome = Outcome::new(Err(rejection));
        Self::span().in_scope(|| Self::report(&outcome, started));
        let mut response = respond(&outcome);
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

fn respond(outcome: &Outcome) -> Response<Bytes> {
    let body = match outcome.body() {
        std::borrow::Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
        std::borrow::Cow::Owned(text) => Bytes::from(text),
    };
    json(outcome.status(), body)
}

fn json(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
