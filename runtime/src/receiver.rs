//! The `Receiver`: raw request in, typed outcome out.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use http::{HeaderMap, StatusCode};
use tokio::time::error::Elapsed;
use tracing::Instrument as _;

use crate::event::EventMeta;
use crate::handler::{Parsed, WebhookHandlers};
use crate::inbox::{encode_headers, Enqueued, Inbox, NewDelivery, RetrySchedule};
use crate::observe;
use crate::provider::{ConfigError, EnvelopeError, Provider, ProviderConfig, VerifyError, DEFAULT_TOLERANCE};
use crate::secret::Secret;
use crate::store::{Claim, ClaimToken, IdempotencyStore, MemoryStore, StoreError, DEFAULT_TTL};

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
    pub(crate) handlers: H,
    pub(crate) provider: H::Provider,
    store: S,
    pub(crate) settings: Settings,
    /// Set in inbox mode: deliveries are stored, and workers run the handlers.
    pub(crate) inbox: Option<InboxMode>,
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

/// What a receiver in inbox mode shares with its workers.
pub(crate) struct InboxMode {
    pub(crate) inbox: Arc<dyn Inbox>,
    pub(crate) schedule: RetrySchedule,
    /// Wakes this process's workers when a delivery was queued here.
    pub(crate) wake: tokio::sync::Notify,
    /// Whether this process's workers can take deliveries.
    pub(crate) taking: crate::health::Taking,
    /// Set once the inbox accepted this receiver's namespace ([`Inbox::bind`]).
    bound: tokio::sync::OnceCell<()>,
    /// The most deliveries waiting (queued or retrying) before new ones are refused.
    max_waiting: u64,
    /// How many were waiting when last counted, and when.
    waiting: std::sync::Mutex<Option<(tokio::time::Instant, u64)>>,
    /// Set while one request counts them again.
    counting: std::sync::atomic::AtomicBool,
    /// The namespaces this receiver answered to under its other secrets.
    also: Vec<String>,
}

impl InboxMode {
    /// Refuses a new delivery while the inbox holds `max_waiting` deliveries waiting,
    /// counted from its stats at most 5 s before (250 ms once past half the limit). A
    /// stats call that fails refuses nothing: the enqueue says whether the inbox is up.
    async fn room(&self) -> Result<(), Rejection> {
        use std::sync::atomic::Ordering;
        if self.max_waiting == u64::MAX {
            return Ok(());
        }
        let last = *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh_for = match last {
            Some((_, waiting)) if waiting < self.max_waiting / 2 => Duration::from_secs(5),
            _ => Duration::from_millis(250),
        };
        let stale = last.is_none_or(|(at, _)| at.elapsed() >= fresh_for);
        let mut counted = last;
        if stale && !self.counting.swap(true, Ordering::AcqRel) {
            match self.call("stats", self.inbox.stats()).await {
                Ok(stats) => {
                    counted = Some((tokio::time::Instant::now(), stats.queued + stats.retrying));
                    *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = counted;
                }
                Err(error) => tracing::debug!(%error, "could not count the deliveries waiting in the inbox"),
            }
            self.counting.store(false, Ordering::Release);
        }
        match counted {
            Some((_, waiting)) if waiting >= self.max_waiting => {
                Err(Rejection::InboxFull { waiting, limit: self.max_waiting })
            }
            _ => Ok(()),
        }
    }

    /// Counts one more delivery waiting, until the next count.
    fn queued_one(&self) {
        if let Some((_, waiting)) = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
            *waiting += 1;
        }
    }

    /// Binds the inbox to `namespace` once (see [`Inbox::bind`]); a refusal is logged
    /// each time it is met and answered again on the next call.
    pub(crate) async fn bound(&self, namespace: &str) -> Result<(), StoreError> {
        let bound = self.bound.get_or_try_init(|| self.call("bind", self.inbox.bind(namespace, &self.also))).await;
        if let Err(error @ StoreError::InvalidConfig(_)) = &bound {
            tracing::error!(%error, "the inbox refused this receiver");
        }
        bound.map(|&()| ())
    }

    /// Runs one call to the inbox, timed and counted (feature `metrics`).
    pub(crate) fn call<'a, T: 'a>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>> + 'a,
    ) -> impl Future<Output = Result<T, StoreError>> + 'a {
        observe::call(observe::Backend::Inbox(self.inbox.backend()), operation, call)
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

    /// The inbox deliveries are stored in, in inbox mode.
    pub fn inbox(&self) -> Option<&Arc<dyn Inbox>> {
        self.inner.inbox.as_ref().map(|mode| &mode.inbox)
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
            // Boxed: its 560 bytes would otherwise sit in every delivery's future.
            return Box::pin(enqueue::<H::Provider>(mode, &inner.namespace, headers, body, meta)).await;
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

        let handler = AssertUnwindSafe(inner.handlers.dispatch(event, &meta)).catch_unwind();
        let handler = handler.instrument(handler_span(&meta, None));
        let started = observe::Started::now();
        let failure = match with_deadline(inner.settings.handler_timeout, handler).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => Some(HandlerFailure::Error(error.to_string())),
            Ok(Err(panic)) => Some(HandlerFailure::Panic(panic_message(panic.as_ref()))),
            Err(_elapsed) => Some(HandlerFailure::Timeout(inner.settings.handler_timeout)),
        };
        observe::handler::<H>(meta.event_type(), failure.as_ref().map_or("ok", HandlerFailure::as_str), started);
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

/// The span a handler runs in, inside its delivery's.
pub(crate) fn handler_span(meta: &EventMeta, attempt: Option<u32>) -> tracing::Span {
    tracing::info_span!("webhook.handler", webhook.event.type = meta.event_type(), webhook.attempt = attempt)
}

/// Why a claim was not acquired: the answer the delivery gets.
enum NotAcquired {
    Done,
    InFlight,
    Store(StoreError),
}

impl NotAcquired {
    /// The claim's token, or why there is none.
    fn check(claim: Result<Claim, StoreError>) -> Result<ClaimToken, Self> {
        match claim {
            Ok(Claim::Acquired(token)) => Ok(token),
            Ok(Claim::Done) => Err(Self::Done),
            Ok(Claim::InFlight) => Err(Self::InFlight),
            Err(error) => Err(Self::Store(error)),
        }
    }

    /// A duplicate (200), in flight elsewhere (409), or the store failed (503).
    fn answer(self, meta: EventMeta) -> Result<Delivered, Rejection> {
        match self {
            Self::Done => Ok(Delivered::new(DeliveredKind::Duplicate, meta)),
            Self::InFlight => Err(Rejection::InFlight { meta: Box::new(meta) }),
            Self::Store(error) => Err(Rejection::Store(error)),
        }
    }
}

/// The key of a delivery's signed bytes, for schemes that do not sign the id:
/// `<namespace>:<provider>:body:<hex SHA-256 of the type, a NUL and the body>`.
fn body_key(namespace: &str, meta: &EventMeta, body: &[u8]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    digest.update(meta.event_type().as_bytes());
    digest.update([0]);
    digest.update(body);
    format!("{namespace}:{}:body:{}", meta.provider(), hex::encode(digest.finalize()))
}

/// Records a processed event as done after a first try failed: again and again, backing
/// off up to a second, until the store takes it or the claim's lease is over (then a
/// retry of the delivery can run the event again, and the log says so).
async fn complete_until<H: WebhookHandlers, S: IdempotencyStore>(
    inner: Arc<Inner<H, S>>,
    key: String,
    token: ClaimToken,
    until: tokio::time::Instant,
) {
    let mut pause = Duration::from_millis(25);
    let mut tries = 1_u32;
    loop {
        if tokio::time::Instant::now() + pause >= until {
            tracing::error!(
                key = %key,
                tries,
                "event processed but not recorded as done before its lease ended; a retry of it may run it again"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
        tries += 1;
        let complete = inner.store_call("complete", inner.store.complete(&key, &token, inner.settings.ttl));
        match tokio::time::timeout_at(until, complete).await {
            Ok(Ok(())) => {
                tracing::info!(key = %key, tries, "event recorded as done");
                return;
            }
            Ok(Err(error)) => tracing::debug!(key = %key, error = %error, "recording the event as done failed again"),
            Err(_) => {}
        }
    }
}

/// Inbox mode: stores the delivery, raw, unless its key is known (for schemes that do
/// not sign the id, the key of its signed bytes); the answer waits for the store to
/// make it durable, never for a handler.
async fn enqueue<P: Provider>(
    mode: &InboxMode,
    namespace: &str,
    headers: &HeaderMap,
    body: &[u8],
    meta: EventMeta,
) -> Result<Delivered, Rejection> {
    let headers = encode_headers(headers);
    // An id the signature does not cover cannot tell a replay from a new event: the
    // signed bytes can.
    let body_key = (!P::SIGNS_ID).then(|| body_key(namespace, &meta, body));
    let delivery = NewDelivery {
        key: body_key.as_deref().unwrap_or(meta.store_key()),
        id: meta.id(),
        event_type: meta.event_type(),
        headers: &headers,
        body,
        signed_at: meta.timestamp(),
    };
    if let Err(error) = mode.bound(namespace).await {
        return Err(Rejection::Inbox(error));
    }
    mode.room().await?;
    match mode.call("enqueue", mode.inbox.enqueue(&delivery)).await {
        Ok(Enqueued::Queued) => {
            mode.queued_one();
            mode.wake.notify_one();
            Ok(Delivered::new(DeliveredKind::Queued, meta))
        }
        Ok(Enqueued::Duplicate) => Ok(Delivered::new(DeliveredKind::Duplicate, meta)),
        Err(error) => Err(Rejection::Inbox(error)),
    }
}

/// Runs `future` for at most `limit`. One that finishes when first polled (a handler
/// that never waits) sets no timer; the deadline counts from the start either way.
pub(crate) async fn with_deadline<F: Future>(limit: Duration, future: F) -> Result<F::Output, Elapsed> {
    by_deadline(tokio::time::Instant::now().checked_add(limit), future).await
}

/// Runs `future` until `deadline` (`None`: past what the clock can hold, no deadline, as
/// `tokio::time::timeout` does). One that finishes when first polled (a handler that
/// never waits, a body frame already read) sets no timer: making and dropping one is
/// a thread-local lookup and a trip to the timer wheel.
pub(crate) async fn by_deadline<F: Future>(
    deadline: Option<tokio::time::Instant>,
    future: F,
) -> Result<F::Output, Elapsed> {
    let mut future = std::pin::pin!(future);
    if let Poll::Ready(output) = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        return Ok(output);
    }
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await,
        None => Ok(future.await),
    }
}

/// Releases the claims of a delivery whose handler future was dropped mid-way (the
/// client hung up), so the provider's retry need not wait for the lease.
struct ClaimGuard<'a, H: WebhookHandlers, S: IdempotencyStore> {
    inner: &'a Arc<Inner<H, S>>,
    /// The event's key, and its body's for schemes that do not sign the id.
    held: [Option<(&'a str, ClaimToken)>; 2],
}

impl<'a, H: WebhookHandlers, S: IdempotencyStore> ClaimGuard<'a, H, S> {
    /// Hands the claims back to the caller, who completes them.
    fn disarm(mut self) -> [Option<(&'a str, ClaimToken)>; 2] {
        std::mem::take(&mut self.held)
    }

    /// Gives the claims back unprocessed, so the provider's retry can run the event.
    /// Armed until the store answers: dropped mid-way, it still releases.
    ///
    /// Boxed: only a failed delivery releases, and unboxed, its 320 bytes would sit in
    /// every delivery's future.
    fn release(self) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.release_in_place())
    }

    async fn release_in_place(mut self) {
        for (key, token) in self.held.iter().flatten() {
            if let Err(error) = self.inner.store_call("release", self.inner.store.release(key, token)).await {
                tracing::warn!(key = %key, error = %error, "could not release the claim; it frees when its lease ends");
            }
        }
        self.held = [None, None];
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Drop for ClaimGuard<'_, H, S> {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.held);
        if held.iter().all(Option::is_none) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(self.inner);
        let held = held.map(|claim| claim.map(|(key, token)| (key.to_owned(), token)));
        runtime.spawn(async move {
            // Released only if these tokens still hold the claims.
            for (key, token) in held.into_iter().flatten() {
                let _ = inner.store_call("release", inner.store.release(&key, &token)).await;
            }
        });
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned())
}

/// The result of receiving one delivery: acknowledged or rejected, with the HTTP
/// status and JSON body that say so.
#[derive(Debug)]
#[must_use]
pub struct Outcome(Result<Delivered, Rejection>);

// Moved from the delivery to its report and its answer: kept to a few vector moves, as
// `EventMeta` is.
const _: () = assert!(std::mem::size_of::<Outcome>() <= 128);

impl Outcome {
    /// Wraps a result, for adapters that reject before the receiver runs.
    pub fn new(result: Result<Delivered, Rejection>) -> Self {
        Self(result)
    }

    /// The HTTP status: 202 when queued in the inbox, 200 when otherwise
    /// acknowledged, else the rejection's.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Ok(delivered) if delivered.kind == DeliveredKind::Queued => StatusCode::ACCEPTED,
            Ok(_) => StatusCode::OK,
            Err(rejection) => rejection.status(),
        }
    }

    /// The JSON body: `{"status":"processed"}` (or `queued`, `duplicate`, `ignored`) when
    /// acknowledged, a fixed text that costs no allocation; `{"challenge":".."}` for a
    /// provider's check of the endpoint; `{"error":".."}` otherwise.
    /// Never holds a secret or a handler's error text.
    pub fn body(&self) -> Cow<'static, str> {
        match &self.0 {
            Ok(delivered) => Cow::Borrowed(match delivered.kind {
                DeliveredKind::Processed => r#"{"status":"processed"}"#,
                DeliveredKind::Queued => r#"{"status":"queued"}"#,
                DeliveredKind::Duplicate => r#"{"status":"duplicate"}"#,
                DeliveredKind::Ignored => r#"{"status":"ignored"}"#,
                DeliveredKind::Challenge => {
                    let challenge = delivered.challenge.as_deref().unwrap_or_default();
                    // A string: serializing cannot fail.
                    let challenge = serde_json::to_string(challenge).unwrap_or_default();
                    return Cow::Owned(format!(r#"{{"challenge":{challenge}}}"#));
                }
            }),
            Err(rejection) => {
                // A string: serializing cannot fail.
                let error = serde_json::to_string(&rejection.public_message()).unwrap_or_default();
                Cow::Owned(format!(r#"{{"error":{error}}}"#))
            }
        }
    }

    /// The acknowledged delivery, if it was one.
    pub fn delivered(&self) -> Option<&Delivered> {
        self.0.as_ref().ok()
    }

    /// The rejection, if it was one.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.0.as_ref().err()
    }

    /// The outcome as a `Result`.
    pub fn into_result(self) -> Result<Delivered, Rejection> {
        self.0
    }

    /// `processed`, `queued`, `duplicate`, `ignored`, or the rejection's
    /// [`kind`](Rejection::kind): the `hookroute.outcome` of metrics and spans.
    pub fn as_str(&self) -> &'static str {
        match &self.0 {
            Ok(delivered) => delivered.kind.as_str(),
            Err(rejection) => rejection.kind(),
        }
    }

    /// The event's facts, when the delivery got as far as naming its event.
    fn meta(&self) -> Option<&EventMeta> {
        match &self.0 {
            Ok(delivered) => Some(&delivered.meta),
            Err(Rejection::Data { meta, .. } | Rejection::InFlight { meta } | Rejection::Handler { meta, .. }) => {
                Some(meta)
            }
            Err(_) => None,
        }
    }

    /// Logs the outcome, once, at the level it deserves: what an operator must act on
    /// (a failed handler, a store or inbox down) as an error; what a sender got wrong
    /// or the server refused to hold as a warning; the rest as information.
    pub(crate) fn log(&self) {
        match &self.0 {
            Ok(delivered) => tracing::info!(
                outcome = delivered.kind().as_str(),
                id = %delivered.meta().id().escape_debug(),
                event_type = delivered.meta().event_type(),
                "webhook delivered"
            ),
            Err(rejection @ (Rejection::Handler { .. } | Rejection::Store(_) | Rejection::Inbox(_))) => {
                tracing::error!(status = rejection.status().as_u16(), "{rejection}");
            }
            Err(rejection @ Rejection::InFlight { .. }) => {
                tracing::info!(status = rejection.status().as_u16(), "{rejection}");
            }
            Err(rejection) => tracing::warn!(status = rejection.status().as_u16(), "{rejection}"),
        }
    }
}

/// How a delivery was acknowledged (2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveredKind {
    /// A handler ran and succeeded.
    Processed,
    /// Inbox mode: stored durably; a worker will run the handler (202).
    Queued,
    /// The event was processed before; nothing ran.
    Duplicate,
    /// No handler takes this event type; nothing ran.
    Ignored,
    /// The provider checked the endpoint (Slack's `url_verification`): answered
    /// `{"challenge": ..}`; nothing ran, nothing was stored.
    Challenge,
}

impl DeliveredKind {
    /// `processed`, `queued`, `duplicate`, `ignored` or `challenge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Queued => "queued",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Challenge => "challenge",
        }
    }
}

/// An acknowledged delivery.
#[derive(Debug, Clone)]
pub struct Delivered {
    kind: DeliveredKind,
    meta: EventMeta,
    /// The challenge to echo, for [`DeliveredKind::Challenge`].
    challenge: Option<Box<str>>,
}

impl Delivered {
    fn new(kind: DeliveredKind, meta: EventMeta) -> Self {
        Self { kind, meta, challenge: None }
    }

    /// Processed, queued, duplicate, ignored, or a challenge answered.
    pub fn kind(&self) -> DeliveredKind {
        self.kind
    }

    /// The event's facts.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }
}

/// Why a handler did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerFailure {
    /// It returned an error, with its message.
    Error(String),
    /// It panicked, with the panic's message.
    Panic(String),
    /// It ran longer than the handler timeout.
    Timeout(Duration),
}

impl HandlerFailure {
    /// `error`, `panic` or `timeout`: the `hookroute.handler.result` of metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Error(_) => "error",
            Self::Panic(_) => "panic",
            Self::Timeout(_) => "timeout",
        }
    }
}

impl std::fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(message) => write!(f, "returned an error: {message}"),
            Self::Panic(message) => write!(f, "panicked: {message}"),
            Self::Timeout(after) => write!(f, "did not finish within {after:?}"),
        }
    }
}

/// Why a delivery was not acknowledged. [`status`](Self::status) says which HTTP
/// status tells the provider whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The body is over the size limit (413).
    #[error("body is larger than the {limit} byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The signature or timestamp did not verify (401).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The body is not a valid event envelope (400).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The event's data does not fit its handler's type (400).
    #[error("data of `{}` event `{}` does not fit its handler's type: {error}", meta.event_type(), meta.id())]
    Data {
        /// The event's facts.
        meta: Box<EventMeta>,
        /// What serde said.
        error: serde_json::Error,
    },
    /// Another worker is processing this event right now (409: retry later).
    #[error("event `{}` is being processed by another worker; retry later", meta.id())]
    InFlight {
        /// The event's facts.
        meta: Box<EventMeta>,
    },
    /// The handler failed; the event was released for the retry (500).
    #[error("handler for `{}` event `{}` {failure}; the event was released for a retry", meta.event_type(), meta.id())]
    Handler {
        /// The event's facts.
        meta: Box<EventMeta>,
        /// What went wrong.
        failure: HandlerFailure,
    },
    /// The idempotency store failed; nothing ran (503).
    #[error(transparent)]
    Store(StoreError),
    /// Inbox mode: the inbox could not store the delivery; nothing was acknowledged (503).
    #[error("could not store the delivery in the inbox: {0}")]
    Inbox(StoreError),
    /// The body could not be read from the connection (400).
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The body did not arrive whole within the body timeout (408).
    #[error("the request body did not arrive within {after:?}")]
    BodyTimeout {
        /// The body timeout.
        after: Duration,
    },
    /// Inbox mode: the inbox holds as many deliveries waiting as it may; nothing was
    /// stored (503).
    #[error("the inbox holds {waiting} deliveries waiting, its limit is {limit}; retry later")]
    InboxFull {
        /// Deliveries queued or retrying when last counted.
        waiting: u64,
        /// The receiver's [`max_waiting`](ReceiverBuilder::max_waiting).
        limit: u64,
    },
    /// The body arrived slower than the floor rate (408).
    #[error("the request body arrived slower than {rate} bytes a second")]
    BodyTooSlow {
        /// The floor rate, bytes a second.
        rate: u32,
    },
    /// Too many bytes of unverified bodies are held already; nothing was read (503).
    #[error("too many request bodies are being received at once; retry later")]
    Overloaded,
}

impl Rejection {
    /// A short fixed name for the cause, for metrics, spans and dashboards:
    /// `too_large`, `unverified`, `bad_envelope`, `bad_data`, `in_flight`,
    /// `handler_failed`, `store_unavailable`, `inbox_unavailable`, `body_read_failed`,
    /// `body_timeout`, `body_too_slow`, `inbox_full` or `overloaded`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Verify(_) => "unverified",
            Self::Envelope(_) => "bad_envelope",
            Self::Data { .. } => "bad_data",
            Self::InFlight { .. } => "in_flight",
            Self::Handler { .. } => "handler_failed",
            Self::Store(_) => "store_unavailable",
            Self::Inbox(_) => "inbox_unavailable",
            Self::BodyRead(_) => "body_read_failed",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::BodyTooSlow { .. } => "body_too_slow",
            Self::InboxFull { .. } => "inbox_full",
            Self::Overloaded => "overloaded",
        }
    }

    /// The HTTP status for this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::Envelope(_) | Self::Data { .. } | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::InFlight { .. } => StatusCode::CONFLICT,
            Self::Handler { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Store(_) | Self::Inbox(_) | Self::InboxFull { .. } | Self::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The message sent to the provider. Handler details stay in the server's log.
    fn public_message(&self) -> String {
        match self {
            Self::Handler { meta, .. } => {
                format!("handler for event `{}` failed; the event was released for a retry", meta.id())
            }
            Self::Store(_) => "idempotency store unavailable; nothing was processed, retry later".to_owned(),
            Self::Inbox(_) => "inbox unavailable; nothing was queued, retry later".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Configures a [`Receiver`].
#[must_use = "call .build() to get the receiver"]
pub struct ReceiverBuilder<H: WebhookHandlers, S: IdempotencyStore = MemoryStore> {
    handlers: H,
    namespace: Option<String>,
    secrets: Vec<Secret>,
    tolerance: Duration,
    store: S,
    inbox: Option<Arc<dyn Inbox>>,
    schedule: RetrySchedule,
    settings: Settings,
}

impl<H: WebhookHandlers, S: IdempotencyStore> std::fmt::Debug for ReceiverBuilder<H, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("provider", &<H::Provider as Provider>::NAME)
            .field("namespace", &self.namespace)
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .field("settings", &self.settings)
            .field("inbox", &self.inbox.is_some())
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> ReceiverBuilder<H, S> {
    /// Adds a secret a delivery may be signed with. Call it again to accept several
    /// (key rotation). Without any, `build` reads the provider's environment variable.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Sets the namespace before every key this receiver writes to its store or inbox:
    /// `billing:stripe:event:evt_1`. Two endpoints that share a store need two
    /// namespaces: providers send the same event id to every endpoint (Stripe, Svix).
    ///
    /// By default it is a fingerprint of the first secret (12 hex digits of an HMAC of
    /// a fixed text under it): endpoints with their own secrets never share keys, and
    /// replicas of one endpoint do. It reveals no more of the secret than any signed
    /// delivery does, but it changes with the first secret: when a rotation drops that
    /// one, the events remembered under the old namespace are forgotten. Name the
    /// namespace yourself to keep it. Letters, digits and `_-.:/` only, up to 64.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets how far a delivery's timestamp may be from now, in either direction
    /// (default 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Sets the largest body accepted, in bytes (default 1 MiB); larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// Sets how long an HTTP adapter waits for a whole body (default 10 s); a body
    /// still arriving then is answered 408.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.settings.body_timeout = timeout;
        self
    }

    /// Sets the floor rate of a body: after its first second, a body still arriving
    /// must send at least `bytes_per_second` in each second, or it is answered 408 and
    /// its bytes are let go (default 16 KiB/s; 0 for no floor). A stalled upload holds
    /// its bytes for a second or two, not the whole [body timeout](Self::body_timeout);
    /// any server sending webhooks is many times faster.
    pub fn min_body_rate(mut self, bytes_per_second: u32) -> Self {
        self.settings.min_body_rate = bytes_per_second;
        self
    }

    /// Sets how many bytes of bodies not yet verified an HTTP adapter holds at once,
    /// across all requests (default 64 MiB). A request whose body would go past it is
    /// answered 503 at once: stalled uploads cannot pin the process's memory. A quarter
    /// of it is kept for bodies of at most 64 KiB, so large uploads cannot keep
    /// ordinary deliveries out; see [`budget`](crate::budget).
    pub fn unverified_bytes(mut self, bytes: usize) -> Self {
        self.settings.unverified_bytes = bytes;
        self
    }

    /// Sets how many [unverified bytes](Self::unverified_bytes) one client (an address,
    /// or an IPv6 /64) may hold at once (default an eighth of the budget, at least the
    /// [body limit](Self::body_limit)), so that one sender cannot take the whole
    /// budget. Counted where the server puts the client's
    /// [`ClientAddr`](crate::budget::ClientAddr) in the request (as
    /// `hookroute::axum::serve` does).
    pub fn unverified_bytes_per_peer(mut self, bytes: usize) -> Self {
        self.settings.unverified_per_peer = Some(bytes);
        self
    }

    /// Sets how long a claim holds before another delivery may take over (default 60 s).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self.settings.lease_set = true;
        self
    }

    /// Sets how long a processed event is remembered (default 7 days); at least twice
    /// the [tolerance](Self::tolerance), the window a signed delivery is accepted in.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// Sets how long a handler may run (default 30 s); it must be shorter than the
    /// lease by a second or a tenth of the lease, whichever is more, so that no claim
    /// is taken over while its handler still runs.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handler_timeout = timeout;
        self
    }

    /// Uses another idempotency store (default: a [`MemoryStore`]). In inbox mode the
    /// inbox deduplicates and the store is not used.
    pub fn store<T: IdempotencyStore>(self, store: T) -> ReceiverBuilder<H, T> {
        ReceiverBuilder {
            handlers: self.handlers,
            namespace: self.namespace,
            secrets: self.secrets,
            tolerance: self.tolerance,
            store,
            inbox: self.inbox,
            schedule: self.schedule,
            settings: self.settings,
        }
    }

    /// Inbox mode: a verified delivery is stored in `inbox` (unless its key is known:
    /// a duplicate) and answered `202 {"status":"queued"}` once it is durable; a
    /// [`Worker`](crate::Worker) from [`Receiver::worker`] runs the handler later,
    /// with retries on the [`retry_schedule`](Self::retry_schedule) and dead letters.
    ///
    /// ```
    /// use hookroute_runtime::{inbox::MemoryInbox, Receiver};
    /// # use hookroute_runtime::__private as p;
    /// # struct App;
    /// # impl p::WebhookHandlers for App {
    /// #     type Provider = hookroute_runtime::Groq; type Event = ();
    /// #     const EVENT_TYPES: &'static [&'static str] = &["ping"];
    /// #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Handled(())) }
    /// #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let receiver = Receiver::builder(App).secret("s3cret").inbox(MemoryInbox::new()).build()?;
    /// let delivery = hookroute_runtime::testing::TestEvent::<hookroute_runtime::Groq>::new("ping", serde_json::json!({}))
    ///     .sign("s3cret");
    /// let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
    /// assert_eq!((outcome.status().as_u16(), &*outcome.body()), (202, r#"{"status":"queued"}"#));
    /// # Ok::<(), hookroute_runtime::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub fn inbox(mut self, inbox: impl Inbox) -> Self {
        self.inbox = Some(Arc::new(inbox));
        self
    }

    /// Inbox mode: how many deliveries may wait (queued or retrying) before new ones are
    /// answered 503 `inbox_full`, so the provider retries later instead of the inbox
    /// growing without bound (default [`DEFAULT_MAX_WAITING`], 100,000; `u64::MAX` for
    /// no bound). Counted from the inbox's stats at most 5 s before, 250 ms once past
    /// half of it: a burst may go a little past it. With 1 MiB bodies, 100,000 waiting
    /// deliveries are up to 100 GiB: size it to the backend's room.
    pub fn max_waiting(mut self, deliveries: u64) -> Self {
        self.settings.max_waiting = deliveries;
        self
    }

    /// Inbox mode: how long a done delivery's body and headers are kept (default
    /// [`DEFAULT_PAYLOAD_RETENTION`], a day); its key stays for the [TTL](Self::ttl), so
    /// a redelivery is still a duplicate. Workers drop older payloads as they run
    /// ([`Inbox::forget_payloads`]); a done delivery replayed after that is
    /// dead-lettered at once, with nothing to run. Payloads hold personal data: keep
    /// them no longer than you need to replay.
    pub fn payload_retention(mut self, retention: Duration) -> Self {
        self.settings.payload_retention = retention;
        self
    }

    /// Inbox mode: when failed deliveries run again, and how many attempts they get
    /// before the dead letters. [`RetrySchedule::standard`] by default.
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Checks the configuration and builds the receiver.
    pub fn build(self) -> Result<Receiver<H, S>, ConfigError> {
        let Settings { lease, handler_timeout, ttl, .. } = self.settings;
        // A handler stopped at its timeout still has to give its claim back, or have it
        // marked done, before the lease lets another delivery take it over.
        let margin = (lease / 10).max(LEASE_MARGIN);
        if handler_timeout.saturating_add(margin) > lease {
            return Err(ConfigError::Invalid(format!(
                "handler timeout ({handler_timeout:?}) must be shorter than the lease ({lease:?}) by at least \
                 {margin:?}, or a slow handler's event could be claimed and run a second time while it runs"
            )));
        }
        // A delivery is accepted for `tolerance` either side of its timestamp: one
        // processed early in that window can be replayed until its end.
        let window = self.tolerance.saturating_mul(2);
        if ttl < window {
            return Err(ConfigError::Invalid(format!(
                "the TTL ({ttl:?}) must be at least the replay window, twice the tolerance ({window:?}), \
                 or a delivery replayed inside its signature's window would run again"
            )));
        }
        let mut secrets = self.secrets;
        if secrets.is_empty() {
            secrets.push(Secret::from_env(<H::Provider as Provider>::SECRET_ENV)?);
        }
        let namespace = match self.namespace {
            Some(namespace) => check_namespace(namespace)?,
            None => secrets[0].fingerprint(),
        };
        let fingerprints: Vec<String> = secrets.iter().map(Secret::fingerprint).collect();
        let provider = H::Provider::from_config(ProviderConfig { secrets, tolerance: self.tolerance })?;
        #[cfg(feature = "metrics")]
        crate::metrics::describe();
        let inbox = self.inbox.map(|inbox| InboxMode {
            inbox,
            schedule: self.schedule,
            wake: tokio::sync::Notify::new(),
            taking: crate::health::Taking::default(),
            bound: tokio::sync::OnceCell::new(),
            also: fingerprints.into_iter().filter(|earlier| *earlier != namespace).collect(),
            max_waiting: self.settings.max_waiting,
            waiting: std::sync::Mutex::new(None),
            counting: std::sync::atomic::AtomicBool::new(false),
        });
        Ok(Receiver {
            inner: Arc::new(Inner {
                handlers: self.handlers,
                provider,
                store: self.store,
                settings: self.settings,
                inbox,
                namespace,
                ignored: std::sync::Mutex::default(),
                unverified: crate::budget::UnverifiedBudget::new(
                    self.settings.unverified_bytes,
                    self.settings
                        .unverified_per_peer
                        .unwrap_or((self.settings.unverified_bytes / 8).max(self.settings.body_limit)),
                ),
            }),
        })
    }
}

/// A namespace is part of every key: plain, short, and never empty.
fn check_namespace(namespace: String) -> Result<String, ConfigError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
    if namespace.is_empty() || namespace.len() > 64 || !namespace.chars().all(plain) {
        return Err(ConfigError::Invalid(format!(
            "namespace {namespace:?} must be 1 to 64 letters, digits or `_-.:/`"
        )));
    }
    Ok(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_counts_from_the_start_and_holds_for_futures_that_wait() {
        // Pending forever: elapses at the limit.
        let pending = with_deadline(Duration::from_secs(5), std::future::pending::<()>());
        let started = tokio::time::Instant::now();
        assert!(pending.await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(5));

        // Waits once, then finishes in time.
        let mut waited = false;
        let once = std::future::poll_fn(|cx| {
            if waited {
                Poll::Ready(7)
            } else {
                waited = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        assert_eq!(with_deadline(Duration::from_secs(5), once).await, Ok(7));
    }

    #[tokio::test]
    async fn a_limit_past_what_the_clock_holds_means_no_deadline() {
        assert_eq!(with_deadline(Duration::MAX, async { 1 }).await, Ok(1));
        let later = async {
            tokio::task::yield_now().await;
            2
        };
        assert_eq!(with_deadline(Duration::MAX, later).await, Ok(2));
    }
}
