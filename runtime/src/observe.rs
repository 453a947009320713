//! What the receiver and its workers report as they work: the metrics of
//! [`crate::metrics`] (recorded only with feature `metrics`; without it these calls
//! compile to nothing but the work they wrap).

use std::future::Future;

use crate::handler::WebhookHandlers;
#[cfg(feature = "metrics")]
use crate::provider::Provider;

/// When something being timed started; without feature `metrics`, nothing (no clock
/// is read).
#[derive(Clone, Copy)]
pub(crate) struct Started(#[cfg(feature = "metrics")] std::time::Instant);

impl Started {
    pub(crate) fn now() -> Self {
        Self(
            #[cfg(feature = "metrics")]
            std::time::Instant::now(),
        )
    }
}

/// The label for an event type: one the handlers declare, else `unknown`, so that a
/// sender cannot grow the label set.
#[cfg(feature = "metrics")]
fn event_type_label<H: WebhookHandlers>(event_type: Option<&str>) -> &'static str {
    event_type
        .and_then(|event_type| H::EVENT_TYPES.iter().copied().find(|declared| *declared == event_type))
        .unwrap_or("unknown")
}

/// A delivery was answered with `outcome`; `event_type` when it got that far.
#[cfg_attr(not(feature = "metrics"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn delivery<H: WebhookHandlers>(event_type: Option<&str>, outcome: &'static str, started: Started) {
    #[cfg(feature = "metrics")]
    {
        use crate::metrics::{DELIVERIES, RECEIVE_DURATION};
        let provider = <H::Provider as Provider>::NAME;
        let event_type = event_type_label::<H>(event_type);
        metrics::counter!(DELIVERIES, "webhook.provider" => provider, "webhook.event.type" => event_type, "hookroute.outcome" => outcome)
            .increment(1);
        metrics::histogram!(RECEIVE_DURATION, "webhook.provider" => provider, "hookroute.outcome" => outcome)
            .record(started.0.elapsed());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (event_type, outcome, started);
}

/// A handler ended with `result` (`ok`, `error`, `panic`, `timeout`).
#[cfg_attr(not(feature = "metrics"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn handler<H: WebhookHandlers>(event_type: &str, result: &'static str, started: Started) {
    #[cfg(feature = "metrics")]
    {
        let provider = <H::Provider as Provider>::NAME;
        let event_type = event_type_label::<H>(Some(event_type));
        metrics::histogram!(crate::metrics::HANDLER_DURATION, "webhook.provider" => provider, "webhook.event.type" => event_type, "hookroute.handler.result" => result)
            .record(started.0.elapsed());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (event_type, result, started);
}

/// A worker's attempt ended with `result` (`done`, `retry`, `dead`, `stopped`, `lost`).
#[cfg_attr(not(feature = "metrics"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn attempt<H: WebhookHandlers>(event_type: &str, result: &'static str) {
    #[cfg(feature = "metrics")]
    {
        use crate::metrics::{INBOX_ATTEMPTS, INBOX_DEAD_LETTERS};
        let provider = <H::Provider as Provider>::NAME;
        let event_type = event_type_label::<H>(Some(event_type));
        metrics::counter!(INBOX_ATTEMPTS, "webhook.provider" => provider, "webhook.event.type" => event_type, "hookroute.attempt.result" => result)
            .increment(1);
        if result == "dead" {
            metrics::counter!(INBOX_DEAD_LETTERS, "webhook.provider" => provider, "webhook.event.type" => event_type)
                .increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (event_type, result);
}

/// Which calls are timed: the store's or the inbox's.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Backend {
    Store(&'static str),
    Inbox(&'static str),
}

/// Runs one store or inbox call, timing it and counting its failure.
pub(crate) async fn call<T, E>(
    backend: Backend,
    operation: &'static str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    #[cfg(feature = "metrics")]
    {
        use crate::metrics::{INBOX_DURATION, INBOX_ERRORS, STORE_DURATION, STORE_ERRORS};
        let started = std::time::Instant::now();
        let result = future.await;
        let (duration, errors, system) = match backend {
            Backend::Store(system) => (STORE_DURATION, STORE_ERRORS, system),
            Backend::Inbox(system) => (INBOX_DURATION, INBOX_ERRORS, system),
        };
        metrics::histogram!(duration, "db.system.name" => system, "db.operation.name" => operation)
            .record(started.elapsed());
        if result.is_err() {
            metrics::counter!(errors, "db.system.name" => system, "db.operation.name" => operation).increment(1);
        }
        result
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (backend, operation);
        future.await
    }
}

/// The inbox's depth by state and the age of its oldest due delivery, as gauges, by
/// backend and the namespace of the receiver whose worker read them (two inboxes in
/// one process are two series); the done ones only when `done_counted`.
#[cfg(feature = "metrics")]
pub(crate) fn inbox_stats(system: &'static str, namespace: &str, stats: &crate::inbox::InboxStats, done_counted: bool) {
    use crate::metrics::{INBOX_DEPTH, INBOX_OLDEST_AGE};
    let done = done_counted.then_some(("done", stats.done));
    for (state, count) in
        [("queued", stats.queued), ("running", stats.running), ("retrying", stats.retrying), ("dead", stats.dead)]
            .into_iter()
            .chain(done)
    {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        metrics::gauge!(INBOX_DEPTH, "db.system.name" => system, "hookroute.inbox" => namespace.to_owned(), "hookroute.inbox.state" => state)
            .set(count as f64);
    }
    metrics::gauge!(INBOX_OLDEST_AGE, "db.system.name" => system, "hookroute.inbox" => namespace.to_owned())
        .set(stats.oldest_due_age.unwrap_or_default());
}

/// The ordering keys waiting, as gauges, by backend and namespace.
#[cfg(feature = "metrics")]
pub(crate) fn inbox_key_stats(system: &'static str, namespace: &str, keys: crate::inbox::KeyStats) {
    for (held_by, count) in [("any", keys.waiting), ("retry", keys.held_by_retry)] {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        metrics::gauge!(crate::metrics::INBOX_KEYS_WAITING, "db.system.name" => system, "hookroute.inbox" => namespace.to_owned(), "hookroute.inbox.held_by" => held_by)
            .set(count as f64);
    }
}

/// Whether a receiver's workers in this process are stalled (1) or taking (0).
#[cfg_attr(not(feature = "metrics"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn workers_stalled<H: WebhookHandlers>(namespace: &str, stalled: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(
        crate::metrics::WORKERS_STALLED,
        "webhook.provider" => <H::Provider as Provider>::NAME,
        "hookroute.inbox" => namespace.to_owned()
    )
    .set(if stalled { 1.0 } else { 0.0 });
    #[cfg(not(feature = "metrics"))]
    let _ = (namespace, stalled);
}
