//! The metrics a receiver and its workers report, through the [`metrics`] facade
//! (feature `metrics`): the library records, the application installs the exporter
//! (`metrics-exporter-prometheus`, `metrics-exporter-otel`, …). With no exporter
//! installed, recording does nothing.
//!
//! Names and attributes follow the OpenTelemetry semantic conventions: dotted names,
//! durations in seconds, `db.system.name` and `db.operation.name` for stores. A
//! Prometheus exporter writes the dots as underscores (`hookroute_deliveries`).
//! Every label takes a bounded set of values: event types are the ones the handlers
//! declare; any other is `unknown`, as is the type of a delivery rejected before its
//! event was read (a bad signature, a body over the limit) or when the store failed.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | [`hookroute.deliveries`](DELIVERIES) | counter | `webhook.provider`, `webhook.event.type`, `hookroute.outcome` |
//! | [`hookroute.receive.duration`](RECEIVE_DURATION) | histogram, s | `webhook.provider`, `hookroute.outcome` |
//! | [`hookroute.handler.duration`](HANDLER_DURATION) | histogram, s | `webhook.provider`, `webhook.event.type`, `hookroute.handler.result` |
//! | [`hookroute.store.operation.duration`](STORE_DURATION) | histogram, s | `db.system.name`, `db.operation.name` |
//! | [`hookroute.store.errors`](STORE_ERRORS) | counter | `db.system.name`, `db.operation.name` |
//! | [`hookroute.inbox.operation.duration`](INBOX_DURATION) | histogram, s | `db.system.name`, `db.operation.name` |
//! | [`hookroute.inbox.errors`](INBOX_ERRORS) | counter | `db.system.name`, `db.operation.name` |
//! | [`hookroute.inbox.depth`](INBOX_DEPTH) | gauge | `db.system.name`, `hookroute.inbox`, `hookroute.inbox.state` |
//! | [`hookroute.inbox.oldest_age`](INBOX_OLDEST_AGE) | gauge, s | `db.system.name`, `hookroute.inbox` |
//! | [`hookroute.inbox.keys_waiting`](INBOX_KEYS_WAITING) | gauge | `db.system.name`, `hookroute.inbox`, `hookroute.inbox.held_by` |
//! | [`hookroute.inbox.workers_stalled`](WORKERS_STALLED) | gauge | `webhook.provider`, `hookroute.inbox` |
//! | [`hookroute.inbox.attempts`](INBOX_ATTEMPTS) | counter | `webhook.provider`, `webhook.event.type`, `hookroute.attempt.result` |
//! | [`hookroute.inbox.dead_letters`](INBOX_DEAD_LETTERS) | counter | `webhook.provider`, `webhook.event.type` |
//!
//! `hookroute.outcome` is `processed`, `queued`, `duplicate`, `ignored`, or the
//! rejection's [`kind`](crate::Rejection::kind) (`unverified`, `too_large`,
//! `handler_failed`, …). `hookroute.handler.result` is `ok`, `error`, `panic` or
//! `timeout`; `hookroute.attempt.result` is `done`, `retry`, `dead`, `stopped` (given back
//! at shutdown) or `lost` (the lease ran out before the attempt was recorded).
//! `hookroute.inbox` is the receiver's [namespace](crate::Receiver::namespace), so two
//! inboxes in one process are two series. The inbox gauges are read from
//! [`Inbox::stats_without_done`](crate::inbox::Inbox::stats_without_done) by every
//! [`Worker`](crate::Worker), each [`stats_interval`](crate::Worker::stats_interval);
//! the `done` depth from [`Inbox::stats`](crate::inbox::Inbox::stats), one read in 20.

/// Deliveries answered, by provider, event type and outcome.
pub const DELIVERIES: &str = "hookroute.deliveries";
/// From a delivery's bytes to its answer, in seconds, by provider and outcome; for a
/// request refused while its body was read (413, 408, 503), from the request's start.
pub const RECEIVE_DURATION: &str = "hookroute.receive.duration";
/// How long handlers ran, in seconds, by provider, event type and result.
pub const HANDLER_DURATION: &str = "hookroute.handler.duration";
/// Idempotency store calls (`claim`, `complete`, `release`), in seconds, by backend.
pub const STORE_DURATION: &str = "hookroute.store.operation.duration";
/// Idempotency store calls that failed, by backend and operation.
pub const STORE_ERRORS: &str = "hookroute.store.errors";
/// Inbox calls (`enqueue`, `take`, `renew`, `complete`, `retry`, `dead_letter`,
/// `release`, `stats`, `stats_without_done`, `waiting`), in seconds, by backend.
pub const INBOX_DURATION: &str = "hookroute.inbox.operation.duration";
/// Inbox calls that failed, by backend and operation.
pub const INBOX_ERRORS: &str = "hookroute.inbox.errors";
/// Deliveries in the inbox, by state (`queued`, `running`, `retrying`, `done`, `dead`).
pub const INBOX_DEPTH: &str = "hookroute.inbox.depth";
/// How long the delivery due longest has waited for a worker, in seconds (0 when none).
pub const INBOX_OLDEST_AGE: &str = "hookroute.inbox.oldest_age";
/// Ordering keys whose deliveries wait behind others of the key: `hookroute.inbox.held_by`
/// `any` (more pending than the key's `in_flight`) and `retry` (held by a delivery
/// waiting for its retry: a failing head). Not set by inboxes that do not count them.
pub const INBOX_KEYS_WAITING: &str = "hookroute.inbox.keys_waiting";
/// 1 while a receiver's workers in this process have failed to take deliveries for
/// longer than a few polls (see [`Receiver::health`](crate::Receiver::health)), else 0.
pub const WORKERS_STALLED: &str = "hookroute.inbox.workers_stalled";
/// Handler attempts the workers made, by provider, event type and result.
pub const INBOX_ATTEMPTS: &str = "hookroute.inbox.attempts";
/// Deliveries moved to the dead letters, by provider and event type.
pub const INBOX_DEAD_LETTERS: &str = "hookroute.inbox.dead_letters";

/// Gives every metric above its description and unit, for exporters that show them
/// (Prometheus' `# HELP`). Building a receiver calls it; call it yourself if the
/// exporter is installed later.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(DELIVERIES, Unit::Count, "Webhook deliveries answered, by provider, event type and outcome");
    describe_histogram!(RECEIVE_DURATION, Unit::Seconds, "Time from a delivery's bytes to its answer");
    describe_histogram!(HANDLER_DURATION, Unit::Seconds, "Time webhook handlers ran");
    describe_histogram!(STORE_DURATION, Unit::Seconds, "Idempotency store call durations");
    describe_counter!(STORE_ERRORS, Unit::Count, "Idempotency store calls that failed");
    describe_histogram!(INBOX_DURATION, Unit::Seconds, "Inbox call durations");
    describe_counter!(INBOX_ERRORS, Unit::Count, "Inbox calls that failed");
    describe_gauge!(INBOX_DEPTH, Unit::Count, "Deliveries in the inbox, by state");
    describe_gauge!(INBOX_OLDEST_AGE, Unit::Seconds, "How long the delivery due longest has waited for a worker");
    describe_gauge!(INBOX_KEYS_WAITING, Unit::Count, "Ordering keys with deliveries waiting behind others of the key");
    describe_gauge!(WORKERS_STALLED, Unit::Count, "1 while the inbox workers cannot take deliveries");
    describe_counter!(INBOX_ATTEMPTS, Unit::Count, "Handler attempts made by inbox workers");
    describe_counter!(INBOX_DEAD_LETTERS, Unit::Count, "Deliveries moved to the dead letters");
}
