//! # hookroute
//!
//! Receive webhooks safely: verify the signature over the raw body in constant time,
//! reject stale and future-dated timestamps, route each event to a typed handler, and
//! process it **exactly once** even when the provider retries or several deliveries
//! arrive at once.
//!
//! One attribute does the wiring. `#[webhook_handlers(provider = "groq")]` on an impl
//! block whose methods carry `#[event("resource.created")]` generates a typed event
//! enum (`AppEvent`), the dispatch, and the impl [`Receiver`] uses:
//!
//! ```
//! use hookroute::{webhook_handlers, EventMeta, HandlerError, Receiver};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Resource {
//!     id: String,
//! }
//!
//! struct App;
//!
//! #[webhook_handlers(provider = "groq")]
//! impl App {
//!     #[event("resource.created")]
//!     async fn created(&self, data: Resource) -> Result<(), HandlerError> {
//!         println!("created {}", data.id);
//!         Ok(())
//!     }
//!
//!     #[event("resource.deleted")]
//!     async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
//!         println!("deleted {} in event {}", data.id, meta.id());
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The secret comes from GROQ_WEBHOOK_SECRET unless given in code.
//! let receiver = Receiver::builder(App).secret("whsec_test").build()?;
//!
//! // In a server: `axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver))`.
//! // Here, a signed delivery from the test kit:
//! use hookroute::testing::TestEvent;
//! let delivery = TestEvent::<hookroute::Groq>::new("resource.created", serde_json::json!({"id": "r1"}))
//!     .id("evt_1")
//!     .sign("whsec_test");
//! let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
//! assert_eq!(outcome.status(), 200);
//! assert_eq!(outcome.body(), r#"{"status":"processed"}"#);
//!
//! // The provider retries: acknowledged, not run again.
//! let again = receiver.receive(&delivery.headers, &delivery.body).await;
//! assert_eq!(again.delivered().unwrap().kind(), hookroute::DeliveredKind::Duplicate);
//!
//! // The generated enum parses a body on its own, too.
//! let event = AppEvent::from_slice(&delivery.body)?;
//! assert_eq!(event.event_type(), "resource.created");
//! assert!(matches!(event, AppEvent::ResourceCreated(Resource { .. })));
//! # Ok(()) }
//! ```
//!
//! ## Handlers
//!
//! A handler is `async fn(&self, data: T) -> Result<(), E>` or
//! `async fn(&self, data: T, meta: &EventMeta) -> Result<(), E>`, where `T` implements
//! `serde::Deserialize` and `E` implements `Display` ([`HandlerError`], `anyhow::Error`,
//! your own error enum). Returning `Err` (or panicking) answers 500 and releases the
//! event, so the provider's retry runs it again.
//!
//! One optional `#[fallback]` handler, `async fn(&self, event: UnknownEvent)`, takes
//! the event types no handler names; without it they are acknowledged as `ignored`.
//!
//! The attribute takes `provider = "groq"` (any built-in scheme: `"coreweave"`,
//! `"standard"`, `"stripe"`, `"github"`, `"slack"`, `"shopify"`; or the path of a type
//! implementing [`Provider`]) and, optionally, `event_enum = pub Name` to name the
//! generated enum and make it visible.
//!
//! ## Stores, the inbox, and features
//!
//! Exactly-once needs a store shared by every replica. [`MemoryStore`] (in-process,
//! bounded) is the default; the others each sit behind a cargo feature. In **inbox
//! mode** (`Receiver::builder(app).inbox(..)`) a verified delivery is stored durably and
//! answered `202`, and a [`Worker`] runs its handler with retries, dead letters and
//! replay: [`inbox::MemoryInbox`], or Redis, PostgreSQL and SQLite inboxes behind the
//! same features:
//!
//! | feature | adds |
//! | --- | --- |
//! | `axum` (default) | `axum::post`: mount a receiver on an axum route; `axum::serve` |
//! | `actix` | `actix::post`: mount a receiver on an actix-web 4 route |
//! | `lambda` | `lambda::run`: the receiver as an AWS Lambda function (API Gateway, function URLs, ALB) |
//! | `metrics` | deliveries, durations, store and inbox calls, inbox depth through the `metrics` facade |
//! | `tower` (with `axum`) | [`Receiver`] is a tower `Service` over any `http_body::Body`: hyper, tonic, Lambda |
//! | `redis` | `store::RedisStore`, `inbox::RedisInbox`: many replicas, one Redis 7+ |
//! | `postgres` | `store::PostgresStore`, `inbox::PostgresInbox`: many replicas, one PostgreSQL |
//! | `sqlite` | `store::SqliteStore`, `inbox::SqliteInbox`: one node, durable across restarts |
//! | `testing` | `testing::conformance`, `store_conformance_tests!` and `inbox_conformance_tests!`: the checks every store and inbox passes |
//!
//! [`store::connect`] opens one from a URL (`memory:`, `redis://…`, `postgres://…`,
//! `sqlite:<path>`), for apps that choose by configuration.
//!
//! ## HTTP statuses
//!
//! | outcome | status |
//! | --- | --- |
//! | processed; duplicate; no handler for the type (`ignored`) | 200 |
//! | body not JSON, envelope fields missing, data not of the handler's type | 400 |
//! | signature header missing or wrong, timestamp outside the window or malformed | 401 |
//! | the same event is being processed right now | 409 |
//! | a method other than `POST` (the receiver's HTTP service) | 405 |
//! | body not received whole within the body timeout | 408 |
//! | body over the limit | 413 |
//! | handler error, panic or timeout (event released) | 500 |
//! | idempotency store unavailable (nothing ran); too many unverified bodies held | 503 |

// docs.rs: each item gated on a feature says which (`doc_cfg` marks them itself).
#![cfg_attr(docsrs, feature(doc_cfg))]
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[doc = include_str!("webhook_handlers.md")]
pub use hookroute_macros::webhook_handlers;
pub use hookroute_runtime::{
    backend, budget, health, inbox, provider, store, testing, ConfigError, Delivered, DeliveredKind, EventMeta,
    HandlerError, HandlerFailure, HandlerOutput, IdempotencyStore, MemoryStore, Outcome, Parsed, Provider, Receiver,
    ReceiverBuilder, Rejection, Secret, SecretError, UnknownEvent, VerifyError, WebhookHandlers, Worker, WorkerHandle,
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_CONCURRENCY, DEFAULT_HANDLER_TIMEOUT, DEFAULT_LEASE,
    DEFAULT_MAX_WAITING, DEFAULT_MIN_BODY_RATE, DEFAULT_PAYLOAD_RETENTION, DEFAULT_STATS_INTERVAL,
    DEFAULT_UNVERIFIED_BYTES, DEFAULT_WORKER_LEASE,
};

/// Every built-in provider's type (`hookroute::GitHub`), from the runtime's one list.
macro_rules! export_built_in {
    ($($name:ident => $ty:ident,)*) => {
        pub use hookroute_runtime::{$($ty),*};
    };
}
hookroute_runtime::__with_built_in_providers!(export_built_in);

/// The [`Receiver`] as a tower `Service` over any `http_body::Body`: hyper, tonic,
/// AWS Lambda, axum's `route_service`.
#[cfg(feature = "tower")]
pub use hookroute_runtime::service;

/// Mount a [`Receiver`] on an axum route: `hookroute::axum::post(receiver)`.
#[cfg(feature = "axum")]
pub use hookroute_runtime::axum_adapter as axum;

/// Mount a [`Receiver`] on an actix-web 4 route: `hookroute::actix::post(receiver)`.
#[cfg(feature = "actix")]
pub use hookroute_runtime::actix_adapter as actix;

/// Run a [`Receiver`] as an AWS Lambda function: `hookroute::lambda::run(receiver)`.
#[cfg(feature = "lambda")]
pub use hookroute_runtime::lambda_adapter as lambda;

/// The metrics a receiver and its workers report, and their names (feature `metrics`).
#[cfg(feature = "metrics")]
pub use hookroute_runtime::metrics;

/// The operator console: see, search, replay and pause an inbox's deliveries in a
/// browser (feature `console`).
#[cfg(feature = "console")]
pub use hookroute_runtime::console;

/// One `#[tokio::test]` per store conformance check (feature `testing`); see
/// [`testing::conformance`].
#[cfg(feature = "testing")]
pub use hookroute_runtime::store_conformance_tests;

/// One `#[tokio::test]` per inbox conformance check (feature `testing`); see
/// [`testing::inbox_conformance`].
#[cfg(feature = "testing")]
pub use hookroute_runtime::inbox_conformance_tests;

#[doc(hidden)]
pub use hookroute_runtime::__private;

#[doc(hidden)]
pub use hookroute_macros::__built_in_providers;
