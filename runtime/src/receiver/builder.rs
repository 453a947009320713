//! Configuring a [`Receiver`]: the builder, and the checks `build` makes.

use std::sync::Arc;
use std::time::Duration;

use crate::handler::WebhookHandlers;
use crate::inbox::mode::InboxMode;
use crate::inbox::{Inbox, RetrySchedule};
use crate::provider::{ConfigError, Provider, ProviderConfig};
use crate::secret::Secret;
use crate::store::{IdempotencyStore, MemoryStore};

use super::{Inner, Receiver, Settings, LEASE_MARGIN};

/// Configures a [`Receiver`].
#[must_use = "call .build() to get the receiver"]
pub struct ReceiverBuilder<H: WebhookHandlers, S: IdempotencyStore = MemoryStore> {
    pub(super) handlers: H,
    pub(super) namespace: Option<String>,
    pub(super) secrets: Vec<Secret>,
    pub(super) tolerance: Duration,
    pub(super) store: S,
    pub(super) inbox: Option<Arc<dyn Inbox>>,
    pub(super) schedule: RetrySchedule,
    pub(super) settings: Settings,
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
    /// growing without bound (default [`DEFAULT_MAX_WAITING`](crate::DEFAULT_MAX_WAITING), 100,000; `u64::MAX` for
    /// no bound). Counted ([`Inbox::waiting`](crate::inbox::Inbox::waiting)) at most 5 s before, 1 s
    /// once past half of it: a burst may go a little past it. With 1 MiB bodies, 100,000 waiting
    /// deliveries are up to 100 GiB: size it to the backend's room.
    pub fn max_waiting(mut self, deliveries: u64) -> Self {
        self.settings.max_waiting = deliveries;
        self
    }

    /// Inbox mode: how long a done delivery's body and headers are kept (default
    /// [`DEFAULT_PAYLOAD_RETENTION`](crate::DEFAULT_PAYLOAD_RETENTION), a day); its key stays for the [TTL](Self::ttl), so
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
        check_rules::<H>(self.inbox.as_deref())?;
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
            taking: crate::inbox::taking::Taking::default(),
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

/// Ordering keys and limits hold across requests only in an inbox that orders: a
/// receiver whose handlers declare them refuses inline mode and other inboxes.
fn check_rules<H: WebhookHandlers>(inbox: Option<&dyn crate::inbox::Inbox>) -> Result<(), ConfigError> {
    let Some(rule) = H::RULES.first() else { return Ok(()) };
    let declared = if rule.key.is_empty() {
        format!("a limit (`concurrency = ..`) on `{}`", rule.event_type)
    } else {
        format!("an ordering key (`key = \"{}\"`) on `{}`", rule.key_path(), rule.event_type)
    };
    match inbox {
        None => Err(ConfigError::Invalid(format!(
            "the handlers declare {declared}, which needs an inbox: inline mode runs each event inside its \
             request and cannot order or limit across requests. Add one with `.inbox(..)` \
             (`hookroute::inbox::connect(\"postgres://..\")`, `redis://..`, `sqlite:..`), or remove the declaration"
        ))),
        Some(inbox) if !inbox.orders() => Err(ConfigError::Invalid(format!(
            "the handlers declare {declared}, but this inbox (`{}`) does not order deliveries (`Inbox::orders` is \
             false): use a built-in inbox, or implement ordering in it and pass the ordering checks of \
             `testing::inbox_conformance`",
            inbox.backend()
        ))),
        Some(_) => Ok(()),
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
