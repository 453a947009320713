//! The `Receiver`: raw request in, typed outcome out.
//!
//! - this file: the type, its settings and the pipeline a delivery goes through
//!   (verify, parse, claim, run or queue, answer), with its spans;
//! - [`builder`]: configuring one, and the checks `build` makes;
//! - [`outcome`]: what a delivery becomes (`Outcome`, `Delivered`, `Rejection`) and
//!   the HTTP answer for each;
//! - [`claim`]: claims in the idempotency store, held, released and completed.
//!
//! Inbox mode's part of the pipeline lives beside the inbox (`inbox/mode.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use tracing::Instrument as _;

use crate::event::EventMeta;
use crate::handler::{Parsed, WebhookHandlers};
use crate::inbox::mode::{enqueue, InboxMode};
use crate::inbox::{Inbox, RetrySchedule};
use crate::observe;
use crate::provider::{ConfigError, Provider, DEFAULT_TOLERANCE};
use crate::run::{run_handler, Ran};
use crate::store::{IdempotencyStore, MemoryStore, StoreError, DEFAULT_TTL};

mod builder;
pub(crate) mod claim;
pub(crate) mod outcome;

pub use builder::ReceiverBuilder;
use claim::{body_key, complete_until, ClaimGuard, NotAcquired};
pub use outcome::{Delivered, DeliveredKind, HandlerFailure, Outcome, Rejection};

/// The largest body accepted by default: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a claim is held by default before another delivery may take it over.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long a handler may run by default before it is stopped and the event released.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// The least time between the handler timeout and the end of the lease (a tenth of
/// the lease if that is more): to release or complete the claim in.
const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// How long an HTTP adapter waits for a whole body by default before answering 408.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many bytes of bodies not yet verified an HTTP adapter holds at once by default,
/// across all requests to one receiver: 64 MiB.
pub const DEFAULT_UNVERIFIED_BYTES: usize = 64 * 1024 * 1024;

/// How long a done delivery's body and headers are kept in the inbox by default: a day
/// (its key stays for the [TTL](ReceiverBuilder::ttl), 7 days).
pub const DEFAULT_PAYLOAD_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How many deliveries may wait in an inbox (queued or retrying) before new ones are
/// answered 503, by default.
pub const DEFAULT_MAX_WAITING: u64 = 100_000;

/// The least a body still arriving must send in each second after its first, by
/// default: 16 KiB.
pub const DEFAULT_MIN_BODY_RATE: u32 = 16 * 1024;

/// Verifies, deduplicates and dispatches deliveries to a set of handlers.
///
/// The order of checks is fixed: body size → signature headers → timestamp window →
/// signature → envelope → event data → claim → handler → complete or release. A
/// delivery that fails verification never reaches the store.
///
/// Cloning is cheap: clones share the handlers and the store. It runs on Tokio with
/// the time driver enabled (as `#[tokio::main]` sets it up): handlers are given a
/// timeout.
///
/// ```
/// use hookroute_runtime::{Groq, Receiver, testing::TestEvent};
/// # use hookroute_runtime::__private as p;
/// # struct App;
/// # impl p::WebhookHandlers for App {
/// #     type Provider = Groq; type Event = ();
/// #     const EVENT_TYPES: &'static [&'static str] = &["ping"];
/// #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Handled(())) }
/// #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
/// # }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let receiver = Receiver::builder(App).secret("s3cret").build()?;
/// let delivery = TestEvent::<Groq>::new("ping", serde_json::json!({})).sign("s3cret");
/// let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
/// assert_eq!(outcome.status(), 200);
/// # Ok::<(), hookroute_runtime::ConfigError>(())
/// # }).unwrap();
/// ```
pub struct Receiver<H: WebhookHandlers, S: IdempotencyStore = MemoryStore> {
    pub(crate) inner: Arc<Inner<H, S>>,
}

pub(crate) struct Inner<H: WebhookHandlers, S> {
    handlers: H,
    provider: H::Provider,
    store: S,
    settings: Settings,
    /// Set in inbox mode: deliveries are stored, and workers run the handlers.
    inbox: Option<InboxMode>,
    /// The bytes of bodies held before verification, across requests.
    unverified: crate::budget::UnverifiedBudget,
    /// Before every key this receiver writes to its store or inbox.
    namespace: String,
    /// The event types answered `ignored` so far, each warned about once.
    ignored: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How many ignored event types a receiver remembers having warned about.
const IGNORED_TYPES_KEPT: usize = 256;

impl<H: WebhookHandlers, S: IdempotencyStore> Inner<H, S> {
    /// Runs one call to the store, timed and counted (feature `metrics`).
    fn store_call<'a, T: 'a>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>> + 'a,
    ) -> impl Future<Output = Result<T, StoreError>> + 'a {
        observe::call(observe::Backend::Store(self.store.backend()), operation, call)
    }
}

impl<H: WebhookHandlers, S> Inner<H, S> {
    /// A delivery no handler takes is answered 200, and the provider never sends it
    /// again: say so, once per type, where an operator looks (a misspelt event name
    /// shows up here).
    fn ignored(&self, meta: EventMeta) -> Delivered {
        let mut warned = self.ignored.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if warned.len() < IGNORED_TYPES_KEPT && !warned.contains(meta.event_type()) {
            warned.insert(meta.event_type().to_owned());
            tracing::warn!(
                provider = meta.provider(),
                event_type = meta.event_type(),
                "no handler takes `{}` events: they are answered 200 `ignored` and the provider will not send them again \
                 (add a handler or a #[fallback]; said once per type)",
                meta.event_type()
            );
        }
        Delivered::new(DeliveredKind::Ignored, meta)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    body_limit: usize,
    pub(crate) lease: Duration,
    /// Whether the lease was set, not left at its default: workers take it then.
    pub(crate) lease_set: bool,
    pub(crate) ttl: Duration,
    pub(crate) handler_timeout: Duration,
    body_timeout: Duration,
    min_body_rate: u32,
    unverified_bytes: usize,
    unverified_per_peer: Option<usize>,
    max_waiting: u64,
    pub(crate) payload_retention: Duration,
}

impl<H: WebhookHandlers, S: IdempotencyStore> Clone for Receiver<H, S> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> std::fmt::Debug for Receiver<H, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("provider", &<H::Provider as Provider>::NAME)
            .field("settings", &self.inner.settings)
            .field("inbox", &self.inner.inbox.is_some())
            .finish_non_exhaustive()
    }
}

impl<H: WebhookHandlers> Receiver<H> {
    /// A receiver with every default: the secret from the provider's environment
    /// variable (`GROQ_WEBHOOK_SECRET`), a [`MemoryStore`], a 300 s window, a 1 MiB
    /// body limit.
    pub fn new(handlers: H) -> Result<Self, ConfigError> {
        Self::builder(handlers).build()
    }

    /// Starts configuring a receiver.
    pub fn builder(handlers: H) -> ReceiverBuilder<H> {
        ReceiverBuilder {
            handlers,
            namespace: None,
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            store: MemoryStore::new(),
            inbox: None,
            schedule: RetrySchedule::standard(),
            settings: Settings {
                body_limit: DEFAULT_BODY_LIMIT,
                lease: DEFAULT_LEASE,
                lease_set: false,
                ttl: DEFAULT_TTL,
                handler_timeout: DEFAULT_HANDLER_TIMEOUT,
                body_timeout: DEFAULT_BODY_TIMEOUT,
                min_body_rate: DEFAULT_MIN_BODY_RATE,
                unverified_bytes: DEFAULT_UNVERIFIED_BYTES,
                unverified_per_peer: None,
                max_waiting: DEFAULT_MAX_WAITING,
                payload_retention: DEFAULT_PAYLOAD_RETENTION,
            },
        }
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Receiver<H, S> {
    /// The handlers.
    pub fn handlers(&self) -> &H {
        &self.inner.handlers
    }

    /// The idempotency store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The largest body accepted, in bytes.
    pub fn body_limit(&self) -> usize {
        self.inner.settings.body_limit
    }

    /// The namespace of this receiver's keys in its store or inbox: the one set with
    /// [`ReceiverBuilder::namespace`], or the fingerprint of its first secret.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// How long an HTTP adapter waits for a whole body.
    pub fn body_timeout(&self) -> Duration {
        self.inner.settings.body_timeout
    }

    /// The least a body must send in each second after its first (bytes); 0 when
    /// there is no floor.
    pub fn min_body_rate(&self) -> u32 {
        self.inner.settings.min_body_rate
    }

    /// The budget of bytes an HTTP adapter may hold in bodies not yet verified, shared
    /// by every request to this receiver (and its clones).
    pub fn unverified_budget(&self) -> &crate::budget::UnverifiedBudget {
        &self.inner.unverified
    }

    /// What the workers and the health check share with the receiver in inbox mode:
    /// the inbox, its retry schedule, the wake-up and the count of taking workers.
    pub(crate) fn inbox_mode(&self) -> Option<&InboxMode> {
        self.inner.inbox.as_ref()
    }

    /// The settings workers inherit (lease, TTL, handler timeout, payload retention).
    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The inbox deliveries are stored in, in inbox mode.
    pub fn inbox(&self) -> Option<&Arc<dyn Inbox>> {
        self.inner.inbox.as_ref().map(|mode| &mode.inbox)
    }

    /// Checks a stored delivery's signature again with this receiver's secrets, as of
    /// when it arrived (its timestamp against its arrival, not against now): what an
    /// operator asks of a delivery that looks wrong, or after a secret was rotated.
    /// Stored headers that no longer read are [`VerifyError::InvalidHeader`].
    ///
    /// [`VerifyError::InvalidHeader`]: crate::VerifyError::InvalidHeader
    pub fn verify_stored(&self, delivery: &crate::inbox::StoredDelivery) -> Result<(), crate::VerifyError> {
        let headers = crate::inbox::decode_headers(&delivery.headers)
            .map_err(|_| crate::VerifyError::InvalidHeader("the stored headers"))?;
        self.inner.provider.verify(&headers, &delivery.body, delivery.received_at).map(|_| ())
    }

    /// Receives one delivery, checked against the clock now.
    pub async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Outcome {
        self.receive_at(headers, body, SystemTime::now()).await
    }

    /// Receives one delivery, with the replay window checked against `now`.
    ///
    /// It runs in a `webhook.receive` span (`webhook.provider`, `webhook.event.type`,
    /// `webhook.event.id`, `hookroute.outcome`, `http.response.status_code`; on a
    /// rejection `error.type`, and `otel.status_code = "ERROR"` when it is a 5xx), the
    /// handler in a `webhook.handler` span inside it; the outcome is logged once, and
    /// counted (feature `metrics`).
    pub async fn receive_at(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Outcome {
        let started = observe::Started::now();
        let span = Self::span();
        let outcome = Outcome(self.run(headers, body, now).instrument(span.clone()).await);
        span.in_scope(|| Self::report(&outcome, started));
        outcome
    }

    /// The span of one delivery; its event fields are filled in once they are known.
    pub(crate) fn span() -> tracing::Span {
        tracing::info_span!(
            "webhook.receive",
            webhook.provider = <H::Provider as Provider>::NAME,
            webhook.event.type = tracing::field::Empty,
            webhook.event.id = tracing::field::Empty,
            hookroute.outcome = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        )
    }

    /// Logs the outcome once, records it on the current span, and counts it.
    pub(crate) fn report(outcome: &Outcome, started: observe::Started) {
        let span = tracing::Span::current();
        span.record("hookroute.outcome", outcome.as_str());
        span.record("http.response.status_code", outcome.status().as_u16());
        if let Some(rejection) = outcome.rejection() {
            span.record("error.type", rejection.kind());
            // As OpenTelemetry's HTTP conventions have it for a server: only a 5xx is
            // the server's error (`tracing-opentelemetry` reads `otel.status_code`).
            if rejection.status().is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        outcome.log();
        observe::delivery::<H>(outcome.meta().map(EventMeta::event_type), outcome.as_str(), started);
    }

    async fn run(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Delivered, Rejection> {
        let inner = &*self.inner;
        let limit = inner.settings.body_limit;
        if body.len() > limit {
            return Err(Rejection::TooLarge { limit });
        }
        let verified = inner.provider.verify(headers, body, now)?;
        let mut envelope = H::Provider::envelope(headers, body)?;
        let challenge = envelope.challenge.take();
        let (meta, data) = envelope.into_meta(&inner.namespace, <H::Provider as Provider>::NAME, verified.timestamp);
        record_event(&tracing::Span::current(), &meta);
        if let Some(challenge) = challenge {
            // The provider checks the endpoint (Slack's Request URL): answered, not run.
            return Ok(Delivered { kind: DeliveredKind::Challenge, meta, challenge: Some(challenge.into()) });
        }
        if !H::handles(&meta) {
            return Ok(inner.ignored(meta));
        }
        if let Some(mode) = &inner.inbox {
            // Boxed: its state would otherwise sit in every delivery's future.
            let rule = H::rule(meta.event_type());
            return Box::pin(enqueue::<H::Provider>(mode, &inner.namespace, headers, body, meta, rule)).await;
        }

        // Claimed before the data is parsed: a duplicate's data is never read.
        let key = meta.store_key();
        let claimed_at = tokio::time::Instant::now();
        let token =
            match NotAcquired::check(inner.store_call("claim", inner.store.claim(key, inner.settings.lease)).await) {
                Ok(token) => token,
                Err(not) => return not.answer(meta),
            };
        // An id the signature does not cover: the signed bytes are claimed too, so the
        // same body under a fresh id is a duplicate.
        let body_key = (!H::Provider::SIGNS_ID).then(|| body_key(&inner.namespace, &meta, body));
        let mut guard = ClaimGuard { inner: &self.inner, held: [Some((key, token)), None] };
        if let Some(body_key) = body_key.as_deref() {
            match NotAcquired::check(inner.store_call("claim", inner.store.claim(body_key, inner.settings.lease)).await)
            {
                Ok(token) => guard.held[1] = Some((body_key, token)),
                Err(not) => {
                    guard.release().await;
                    return not.answer(meta);
                }
            }
        }
        let event = match H::parse(&meta, &data) {
            Ok(Parsed::Handled(event)) => event,
            Ok(Parsed::Ignored) => {
                guard.release().await;
                return Ok(inner.ignored(meta));
            }
            Err(error) => {
                guard.release().await;
                return Err(Rejection::Data { meta: Box::new(meta), error });
            }
        };

        let ran = run_handler(&inner.handlers, event, &meta, None, Some(inner.settings.handler_timeout)).await;
        let failure = match ran {
            Ran::Done => None,
            Ran::Failed(error) => Some(HandlerFailure::Error(error.to_string())),
            Ran::Panicked(message) => Some(HandlerFailure::Panic(message)),
            Ran::TimedOut(after) => Some(HandlerFailure::Timeout(after)),
        };
        match failure {
            None => {
                // The handler ran: the provider is told so whatever the store says, and
                // the completion is retried, past this request, until the lease ends.
                let until = claimed_at + inner.settings.lease;
                for (key, token) in guard.disarm().into_iter().flatten() {
                    if let Err(error) =
                        inner.store_call("complete", inner.store.complete(key, &token, inner.settings.ttl)).await
                    {
                        tracing::warn!(key = %key, error = %error, "event processed; recording it as done failed, retrying");
                        tokio::spawn(complete_until(Arc::clone(&self.inner), key.to_owned(), token, until));
                    }
                }
                Ok(Delivered::new(DeliveredKind::Processed, meta))
            }
            Some(failure) => {
                guard.release().await;
                Err(Rejection::Handler { meta: Box::new(meta), failure })
            }
        }
    }
}

/// Fills in a delivery span's event fields. The id comes from the sender: escaped.
pub(crate) fn record_event(span: &tracing::Span, meta: &EventMeta) {
    span.record("webhook.event.type", meta.event_type());
    span.record("webhook.event.id", tracing::field::display(meta.id().escape_debug()));
}
