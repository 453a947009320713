//! The runtime of [hookroute](https://docs.rs/hookroute): signature schemes, the
//! [`Receiver`], idempotency stores, the durable inbox and its workers, and HTTP
//! adapters.
//!
//! Most users depend on the `hookroute` crate, which re-exports this one beside the
//! `#[webhook_handlers]` attribute that writes the [`WebhookHandlers`] impl.
//!
//! - [`provider`]: verify a delivery's signature and timestamp over its raw bytes.
//! - [`store`]: the atomic claim/complete/release store that makes processing
//!   exactly-once: [`MemoryStore`], the embedded default, and behind features
//!   `RedisStore` (`redis`), `PostgresStore` (`postgres`), `SqliteStore` (`sqlite`).
//! - [`Receiver`]: body limit → headers → timestamp → signature → envelope → claim →
//!   handler → complete or release, with an [`Outcome`] mapped to HTTP statuses; in
//!   inbox mode, verify → store durably → `202`.
//! - [`inbox`]: the durable queue of inbox mode ([`inbox::Inbox`]): `MemoryInbox`, and
//!   behind features `RedisInbox`, `PostgresInbox`, `SqliteInbox`; retries on a
//!   [`inbox::RetrySchedule`], dead letters, replay. A [`Worker`] runs its handlers.
//! - [`health`]: whether a receiver can do its work now, for a readiness route.
//! - [`budget`]: the bytes held in bodies not yet verified, shared per client.
//! - `service` (feature `tower`, on with `axum`): the receiver as a tower `Service`
//!   over any `http_body::Body`: axum, hyper, tonic, AWS Lambda.
//! - `axum_adapter` (feature `axum`): mount a receiver on a route, and serve it.
//! - `actix_adapter` (feature `actix`): mount a receiver on an actix-web route.
//! - `lambda_adapter` (feature `lambda`): run a receiver as an AWS Lambda function.
//! - `metrics` (feature `metrics`): what a receiver and its workers report through
//!   the `metrics` facade, and under which names.
//! - [`testing`]: build correctly signed deliveries in tests; with the `testing`
//!   feature, the conformance suites every store and every inbox passes.

#![warn(clippy::unwrap_used)]
// docs.rs: each item gated on a feature says which (`doc_cfg` marks them itself).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod budget;
mod event;
mod future;
mod handler;
pub mod health;
pub mod inbox;
#[cfg(feature = "metrics")]
pub mod metrics;
mod observe;
pub mod provider;
mod receiver;
mod retry;
mod run;
mod secret;
pub mod store;
pub mod testing;
mod worker;

#[cfg(feature = "actix")]
pub mod actix_adapter;
#[cfg(feature = "axum")]
pub mod axum_adapter;
#[cfg(feature = "console")]
pub mod console;
#[cfg(feature = "lambda")]
pub mod lambda_adapter;
#[cfg(feature = "tower")]
pub mod service;

pub use event::{EventMeta, UnknownEvent};
pub use handler::{HandlerError, HandlerOutput, Parsed, WebhookHandlers};
pub use provider::{ConfigError, Provider, VerifyError};

/// Every built-in provider's type at the crate's root (`hookroute_runtime::GitHub`)
/// and in `__private`, from the one list in `provider/mod.rs`.
macro_rules! export_built_in {
    ($($name:ident => $ty:ident,)*) => {
        pub use crate::provider::{$($ty),*};
    };
}
__with_built_in_providers!(export_built_in);
pub use receiver::{
    Delivered, DeliveredKind, HandlerFailure, Outcome, Receiver, ReceiverBuilder, Rejection, DEFAULT_BODY_LIMIT,
    DEFAULT_BODY_TIMEOUT, DEFAULT_HANDLER_TIMEOUT, DEFAULT_LEASE, DEFAULT_MAX_WAITING, DEFAULT_MIN_BODY_RATE,
    DEFAULT_PAYLOAD_RETENTION, DEFAULT_UNVERIFIED_BYTES,
};
pub use secret::{Secret, SecretError};
pub use store::{IdempotencyStore, MemoryStore};
pub use worker::{Worker, WorkerHandle, DEFAULT_CONCURRENCY, DEFAULT_STATS_INTERVAL, DEFAULT_WORKER_LEASE};

/// What the code `#[webhook_handlers]` generates refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::event::{EventMeta, UnknownEvent};
    pub use crate::handler::{
        EventData, HandlerError, HandlerOutput, IsEventMeta, IsUnknownEvent, Parsed, WebhookHandlers,
    };
    pub use crate::inbox::{Limits, Rule};
    pub use crate::provider::{EnvelopeError, Provider};
    // Every built-in provider's type, which `provider = "github"` names.
    crate::__with_built_in_providers!(export_built_in);
    pub use core::future::Future;
    pub use core::marker::Send;
    pub use core::matches;
    pub use core::option::Option::{None, Some};
    pub use core::result::Result::{self, Err, Ok};
    pub use http::HeaderMap;
    pub use serde_json;
    pub use serde_json::value::RawValue;

    /// A handler's future behind a box: one type whatever the handlers do (see the
    /// generated `dispatch`).
    pub fn boxed<'a, F>(future: F) -> core::pin::Pin<Box<dyn Future<Output = F::Output> + Send + 'a>>
    where
        F: Future + Send + 'a,
    {
        Box::pin(future)
    }

    /// Deserializes an event's data into the handler's type.
    pub fn from_raw<T: EventData>(data: &RawValue) -> Result<T, serde_json::Error> {
        serde_json::from_str(data.get())
    }

    /// Turns a handler's return value into the receiver's result.
    pub fn into_result<R: HandlerOutput>(output: R) -> Result<(), HandlerError> {
        output.into_result()
    }

    /// An event no handler names, with its data copied out of the body.
    pub fn unknown_event(meta: &EventMeta, data: &RawValue) -> UnknownEvent {
        UnknownEvent::new(meta.clone(), data.to_owned())
    }

    /// Parses a delivery with provider `P`'s envelope into an event enum.
    pub fn parse_event<P: Provider, E>(
        headers: &HeaderMap,
        body: &[u8],
        from_parts: fn(&EventMeta, &RawValue) -> Result<E, serde_json::Error>,
    ) -> Result<E, EnvelopeError> {
        let (meta, data) = P::envelope(headers, body)?.into_meta("", P::NAME, None);
        Ok(from_parts(&meta, &data)?)
    }
}
