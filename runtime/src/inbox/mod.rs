//! The durable inbox: verify, persist, answer `202`, process later.
//!
//! Providers do not wait for slow handlers (Slack hangs up after 3 s, Shopify after
//! 5 s, GitHub after 10 s, Svix after 15 s), and GitHub never retries by itself. A
//! receiver built with [`ReceiverBuilder::inbox`](crate::ReceiverBuilder::inbox)
//! therefore answers as soon as the delivery is stored, and [`Worker`](crate::Worker)s
//! (in the same process or in others) run the handlers later, with a lease that is
//! renewed while they run, retries on a [`RetrySchedule`], dead letters and replay.
//!
//! An [`Inbox`] keeps one record per event key. Its life:
//!
//! ```text
//! enqueue ──► queued ──take──► running ──complete──► done (kept for the TTL, then purged)
//!               ▲  ▲              │  │
//!               │  └───retry──────┘  └──dead_letter──► dead ──replay──► queued
//!               └──── lease ran out (the worker died): taken again
//! ```
//!
//! | inbox | feature | for |
//! | --- | --- | --- |
//! | [`MemoryInbox`] | | tests and demos: **not durable**, lost with the process |
//! | `SqliteInbox` | `sqlite` | one node, durable (WAL, `synchronous = FULL`) |
//! | `PostgresInbox` | `postgres` | many replicas: `FOR UPDATE SKIP LOCKED` |
//! | `RedisInbox` | `redis` | many replicas: Redis Streams, a consumer group, a sorted set of leases (`XCLAIM`) |
//!
//! [`connect`] opens any of them from a URL. Every one passes the conformance suite in
//! `testing::inbox_conformance` (feature `testing`), which a backend of your own (SQS,
//! NATS, Kafka) can run too.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

mod admin;
mod connect;
mod error;
mod memory;
pub(crate) mod mode;
mod order;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod schedule;
#[cfg(feature = "sqlite")]
mod sqlite;
pub(crate) mod taking;

pub(crate) use admin::HistoryLine;
pub use admin::{Activity, Cursor, Filter, History, InboxAdmin, Page, QueueOnly, Step, StepKind, TypeCounts};
pub use connect::{connect, connect_existing};
pub use error::InboxError;
pub use memory::MemoryInbox;
pub(crate) use order::created_ms;
pub use order::{Limits, Order, Rule};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresInbox, PostgresInboxBuilder, DEFAULT_INBOX_TABLE};
#[cfg(feature = "redis")]
pub use redis::{RedisInbox, RedisInboxBuilder, DEFAULT_INBOX_PREFIX};
pub use schedule::RetrySchedule;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteInbox;

/// A verified delivery to store: the event's key and facts, and the raw request as
/// received, so it can be parsed (and its signature checked again) later.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    /// The deduplication key: `<namespace>:<provider>:event:<id>`.
    pub key: &'a str,
    /// The event id.
    pub id: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// The request's headers, as [`encode_headers`] wrote them.
    pub headers: &'a [u8],
    /// The raw body.
    pub body: &'a [u8],
    /// The signed timestamp of the delivery, for schemes that sign one.
    pub signed_at: Option<u64>,
    /// Its ordering key, creation time and limits ([`Order::NONE`] when its handler
    /// declared none).
    pub order: Order<'a>,
}

/// A [`NewDelivery`]'s values, owned: what waits for a batched enqueue.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) struct OwnedDelivery {
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) headers: Vec<u8>,
    pub(crate) body: Vec<u8>,
    pub(crate) signed_at: Option<u64>,
    pub(crate) order_key: Option<String>,
    pub(crate) created_ms: Option<u64>,
    pub(crate) limits: Limits,
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl OwnedDelivery {
    pub(crate) fn of(delivery: &NewDelivery<'_>) -> Self {
        Self {
            key: delivery.key.to_owned(),
            id: delivery.id.to_owned(),
            event_type: delivery.event_type.to_owned(),
            headers: delivery.headers.to_owned(),
            body: delivery.body.to_owned(),
            signed_at: delivery.signed_at,
            order_key: delivery.order.key.map(str::to_owned),
            created_ms: delivery.order.created_ms,
            limits: delivery.order.limits,
        }
    }

    pub(crate) fn new_delivery(&self) -> NewDelivery<'_> {
        NewDelivery {
            key: &self.key,
            id: &self.id,
            event_type: &self.event_type,
            headers: &self.headers,
            body: &self.body,
            signed_at: self.signed_at,
            order: Order { key: self.order_key.as_deref(), created_ms: self.created_ms, limits: self.limits },
        }
    }
}

/// The answers of a batch that failed as a whole: each of its `count` calls gets the
/// error.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
pub(crate) fn batch_failed<T>(count: usize, error: &dyn fmt::Display) -> Vec<Result<T, InboxError>> {
    let message = error.to_string();
    (0..count).map(|_| Err(InboxError::Unavailable(message.clone().into()))).collect()
}

/// A batched call's answer; `None` (its batch's writer stopped without answering) is
/// an error naming `what` was batched.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
pub(crate) fn batch_answer<T>(answer: Option<Result<T, InboxError>>, what: &str) -> Result<T, InboxError> {
    answer
        .unwrap_or_else(|| Err(InboxError::Unavailable(format!("the batched {what} stopped without an answer").into())))
}

/// The answer to [`Inbox::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new record, queued to run now.
    Queued,
    /// The key is known (queued, running, retrying, done or dead): nothing was stored.
    Duplicate,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for its first attempt.
    Queued,
    /// Held by a worker under a lease.
    Running,
    /// Failed, waiting for its next attempt.
    Retrying,
    /// Handled; remembered for the TTL so that redeliveries are duplicates.
    Done,
    /// Failed for good (a permanent error, or every attempt of the schedule).
    Dead,
}

impl DeliveryState {
    /// Every state, in the order of a delivery's life.
    pub const ALL: [Self; 5] = [Self::Queued, Self::Running, Self::Retrying, Self::Done, Self::Dead];

    /// `queued`, `running`, `retrying`, `done` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown state `{text}`: use queued, running, retrying, done or dead"))
    }
}

/// A stored delivery, as an operator or a worker sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    /// The deduplication key: `<namespace>:<provider>:event:<id>`.
    pub key: String,
    /// The event id.
    pub id: String,
    /// The event type.
    pub event_type: String,
    /// The headers as received ([`decode_headers`] reads them).
    pub headers: Vec<u8>,
    /// The raw body as received.
    pub body: Vec<u8>,
    /// The signed timestamp of the delivery, for schemes that sign one.
    pub signed_at: Option<u64>,
    /// Where it is in its life.
    pub state: DeliveryState,
    /// How many attempts were started (the running one included).
    pub attempts: u32,
    /// The last handler error, for the operator; never sent to the provider.
    pub last_error: Option<String>,
    /// When it was received, to the millisecond.
    pub received_at: SystemTime,
    /// Its ordering key, if its handler declared one.
    pub order_key: Option<String>,
    /// When the provider created it (its place in its key's order), else when it was
    /// received; to the millisecond.
    pub created_at: SystemTime,
}

// The body may hold personal data; show its size, not its bytes.
impl fmt::Debug for StoredDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredDelivery")
            .field("key", &self.key)
            .field("event_type", &self.event_type)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("order_key", &self.order_key)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A delivery a worker took, with the lease that lets it finish it.
#[derive(Debug, Clone)]
pub struct Leased {
    /// The delivery; `attempts` counts this attempt.
    pub delivery: StoredDelivery,
    /// Proof of the lease, required to renew, complete, retry, dead-letter or release.
    pub lease: Lease,
    /// A delivery of the same ordering key created after this one was already handled
    /// (done): this one is stale. Always `false` without a key.
    pub superseded: bool,
}

/// Proof that a worker holds a delivery. A worker whose lease ran out and whose
/// delivery another worker took cannot touch it any more.
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    key: String,
    token: String,
}

impl Lease {
    /// A lease on `key` with a backend's token.
    pub fn new(key: impl Into<String>, token: impl Into<String>) -> Self {
        Self { key: key.into(), token: token.into() }
    }

    /// The key of the delivery held.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The backend's token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("key", &self.key).finish_non_exhaustive()
    }
}

/// How many deliveries are in each state, and how late the oldest due one is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxStats {
    /// Waiting for their first attempt.
    pub queued: u64,
    /// Held by a worker.
    pub running: u64,
    /// Failed, waiting for their next attempt.
    pub retrying: u64,
    /// Remembered as done.
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
    /// How long the delivery that has been due longest has waited for a worker.
    pub oldest_due_age: Option<Duration>,
}

/// How many ordering keys have deliveries waiting behind others of the key, from
/// [`Inbox::key_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Keys with more deliveries pending than their `in_flight`.
    pub waiting: u64,
    /// Keys held by a delivery waiting for its retry (a failing head: the key's later
    /// deliveries wait behind it).
    pub held_by_retry: u64,
}

impl InboxStats {
    /// Counts `count` more deliveries in `state` (for backends that count by state).
    pub fn add(&mut self, state: DeliveryState, count: u64) {
        let field = match state {
            DeliveryState::Queued => &mut self.queued,
            DeliveryState::Running => &mut self.running,
            DeliveryState::Retrying => &mut self.retrying,
            DeliveryState::Done => &mut self.done,
            DeliveryState::Dead => &mut self.dead,
        };
        *field += count;
    }
}

/// A durable queue of verified deliveries with leases, retries and dead letters.
///
/// Every method must be atomic across every process that shares the backend:
/// two `enqueue`s of one key store one record, two `take`s never lease one delivery
/// to two live workers. Methods that take a [`Lease`] act only if it still holds the
/// delivery and fail with [`InboxError::ClaimLost`] otherwise.
///
/// ```
/// use std::time::Duration;
/// use hookroute_runtime::inbox::{Enqueued, Inbox, MemoryInbox, NewDelivery, Order};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let inbox = MemoryInbox::new();
/// let delivery = NewDelivery {
///     key: "groq:event:evt_1", id: "evt_1", event_type: "resource.created",
///     headers: b"x-groq-timestamp: 1700000000\r\n", body: b"{}", signed_at: Some(1_700_000_000),
///     order: Order::NONE,
/// };
/// assert_eq!(inbox.enqueue(&delivery).await?, Enqueued::Queued);
/// assert_eq!(inbox.enqueue(&delivery).await?, Enqueued::Duplicate);
/// let taken = inbox.take(Duration::from_secs(30)).await?.expect("one is due");
/// assert_eq!(taken.delivery.attempts, 1);
/// inbox.complete(&taken.lease, Duration::from_secs(3600)).await?;
/// assert_eq!(inbox.enqueue(&delivery).await?, Enqueued::Duplicate);
/// # Ok::<(), hookroute_runtime::inbox::InboxError>(())
/// # }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Stores the delivery as queued, unless its key is known. Answers once the record
    /// is durable (committed, acknowledged by the server).
    ///
    /// A key that is done and past its TTL is not known any more.
    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError>;

    /// Leases the delivery that has been due longest (queued, retrying and due, or
    /// running with a lease that ran out) for `lease`, counting one more attempt.
    ///
    /// An inbox that [orders](Self::orders) takes only a delivery its [`Order`]
    /// allows.
    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError>;

    /// Leases up to `most` deliveries at once, as [`take`](Self::take) would one after
    /// another, due longest first: a worker with `most` handlers free asks for that
    /// many in one round trip. The default takes one.
    ///
    /// An inbox that [orders](Self::orders) keeps each delivery's [`Order`] across the
    /// batch too: never two of one key beyond its `in_flight` (the conformance check
    /// `a_batched_take_keeps_each_key_in_order` proves it).
    async fn take_many(&self, lease: Duration, most: usize) -> Result<Vec<Leased>, InboxError> {
        let _ = most;
        Ok(self.take(lease).await?.into_iter().collect())
    }

    /// Extends the lease to `lease` from now.
    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError>;

    /// Marks the delivery done, remembered for `ttl`.
    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError>;

    /// Schedules the next attempt `delay` from now, keeping `error` for the operator.
    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError>;

    /// [`retry`](Self::retry), and while the delivery waits for its retry it does not
    /// hold its ordering key: the key's later deliveries may run; once due, it takes its
    /// place in the key's order again. The handler asked for it
    /// ([`HandlerError::releasing_key`](crate::HandlerError::releasing_key)).
    ///
    /// The default holds the key, as `retry` does: an inbox that
    /// [orders](Self::orders) overrides it (the conformance check
    /// `a_retry_releasing_its_key_lets_later_ones_run` proves it).
    async fn retry_releasing(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.retry(lease, delay, error).await
    }

    /// Moves the delivery to the dead letters with its last `error`.
    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError>;

    /// Gives the delivery back, due now, without counting the attempt (a worker that
    /// stops before its handler finished).
    async fn release(&self, lease: &Lease) -> Result<(), InboxError>;

    /// How many deliveries are in each state.
    async fn stats(&self) -> Result<InboxStats, InboxError>;

    /// [`stats`](Self::stats) without the done deliveries (`done` is 0): what a
    /// readiness check and the metrics gauges read every few seconds. Done records are
    /// kept for their TTL, days of traffic; an inbox whose `stats` reads each one
    /// should answer this from the others alone. By default, `stats` with `done` set to 0.
    async fn stats_without_done(&self) -> Result<InboxStats, InboxError> {
        Ok(InboxStats { done: 0, ..self.stats().await? })
    }

    /// How many deliveries wait (queued or retrying), counted up to `up_to`: what a
    /// receiver checks its room against, often under load (every second past half its
    /// limit). An inbox whose [`stats`](Self::stats) reads every record (done ones
    /// too) should answer this from the waiting ones alone. By default, from `stats`.
    async fn waiting(&self, up_to: u64) -> Result<u64, InboxError> {
        let stats = self.stats().await?;
        Ok((stats.queued + stats.retrying).min(up_to))
    }

    /// How many ordering keys wait, for operators and the metrics; `None` (the
    /// default) when the inbox does not count them. Apart from [`stats`](Self::stats),
    /// which a receiver reads often to check its room: counting keys reads every
    /// pending delivery of a key.
    async fn key_stats(&self) -> Result<Option<KeyStats>, InboxError> {
        Ok(None)
    }

    /// The backend's name in metrics (`db.system.name`): `redis`, `postgresql`,
    /// `sqlite`, `memory`; `custom` unless an inbox says otherwise.
    fn backend(&self) -> &'static str {
        "custom"
    }

    /// Whether [`take`](Self::take) keeps each delivery's [`Order`]: its ordering key
    /// and limits (the ordering checks of `testing::inbox_conformance` prove it). A
    /// receiver whose handlers declare a key or a limit refuses, at `build()`, an
    /// inbox that does not. `false` unless an inbox says otherwise; every built-in one
    /// orders.
    fn orders(&self) -> bool {
        false
    }

    /// Records whose deliveries this inbox holds: those of the receiver whose
    /// [namespace](crate::Receiver::namespace) is `namespace`. A receiver calls it
    /// before its first enqueue and its workers before their first take. An inbox
    /// that holds another namespace's deliveries refuses ([`InboxError::InvalidConfig`]):
    /// two apps on one inbox would run each other's events. One of `also` (the
    /// namespaces the receiver answered to before, from its other secrets) is taken
    /// over: a key rotation keeps its inbox.
    ///
    /// The default accepts every namespace; the built-in backends keep the owner
    /// ([`bind_owner`] decides).
    async fn bind(&self, namespace: &str, also: &[String]) -> Result<(), InboxError> {
        let _ = (namespace, also);
        Ok(())
    }

    /// Drops the body and headers of the done deliveries completed at least
    /// `older_than` ago, keeping their records (a redelivery stays a duplicate for the
    /// TTL); answers how many. Workers call it with the receiver's
    /// [payload retention](crate::ReceiverBuilder::payload_retention). A replay of such a
    /// delivery is dead-lettered at once: there is nothing left to run. The default
    /// keeps payloads for the whole TTL and answers 0.
    async fn forget_payloads(&self, older_than: Duration) -> Result<u64, InboxError> {
        let _ = older_than;
        Ok(0)
    }

    /// The namespace this inbox was [bound](Self::bind) to, if any: where an operator
    /// looks an event id up. `None` by default.
    async fn owner(&self) -> Result<Option<String>, InboxError> {
        Ok(None)
    }
}

/// What an inbox whose recorded owner is `owner` does when the receiver of `namespace`
/// (which answered to `also` before) binds it: `Ok(None)` to keep the owner,
/// `Ok(Some(namespace))` to record `namespace` instead (one of `also` is taken over),
/// or the error to answer. `where_` says how to give an app its own inbox.
pub fn bind_owner<'a>(
    owner: &str,
    namespace: &'a str,
    also: &[String],
    where_: &str,
) -> Result<Option<&'a str>, InboxError> {
    if owner == namespace {
        return Ok(None);
    }
    if also.iter().any(|earlier| earlier == owner) {
        return Ok(Some(namespace));
    }
    Err(InboxError::InvalidConfig(format!(
        "this inbox holds the deliveries of another receiver (namespace `{owner}`), not of this one \
         (namespace `{namespace}`): two apps on one inbox would run each other's events. Give each app an inbox \
         of its own ({where_}), or, if this is the same app under a new first secret, name its namespace with \
         `.namespace(\"{owner}\")`"
    )))
}

/// A shared or boxed inbox is an inbox: `Arc<PostgresInbox>`, `Box<dyn Inbox>`.
macro_rules! forward_inbox {
    ($($wrapper:ident)::+) => {
        #[async_trait::async_trait]
        impl<I: Inbox + ?Sized> Inbox for $($wrapper)::+<I> {
            async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
                (**self).enqueue(delivery).await
            }
            async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
                (**self).take(lease).await
            }
            async fn take_many(&self, lease: Duration, most: usize) -> Result<Vec<Leased>, InboxError> {
                (**self).take_many(lease, most).await
            }
            async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
                (**self).renew(lease, duration).await
            }
            async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
                (**self).complete(lease, ttl).await
            }
            async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
                (**self).retry(lease, delay, error).await
            }
            async fn retry_releasing(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
                (**self).retry_releasing(lease, delay, error).await
            }
            async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
                (**self).dead_letter(lease, error).await
            }
            async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
                (**self).release(lease).await
            }
            async fn stats(&self) -> Result<InboxStats, InboxError> {
                (**self).stats().await
            }
            async fn stats_without_done(&self) -> Result<InboxStats, InboxError> {
                (**self).stats_without_done().await
            }
            async fn waiting(&self, up_to: u64) -> Result<u64, InboxError> {
                (**self).waiting(up_to).await
            }
            async fn key_stats(&self) -> Result<Option<KeyStats>, InboxError> {
                (**self).key_stats().await
            }
            async fn bind(&self, namespace: &str, also: &[String]) -> Result<(), InboxError> {
                (**self).bind(namespace, also).await
            }
            async fn owner(&self) -> Result<Option<String>, InboxError> {
                (**self).owner().await
            }
            async fn forget_payloads(&self, older_than: Duration) -> Result<u64, InboxError> {
                (**self).forget_payloads(older_than).await
            }
            fn backend(&self) -> &'static str {
                (**self).backend()
            }
            fn orders(&self) -> bool {
                (**self).orders()
            }
        }
    };
}

forward_inbox!(std::sync::Arc);
forward_inbox!(Box);
forward_inbox!(QueueOnly);

/// Headers never stored: credentials of the hop in front of the receiver, and
/// headers that describe the connection rather than the delivery.
const NOT_STORED: [&str; 9] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
];

/// Writes a request's headers as HTTP does, `name: value\r\n` each, byte for byte:
/// a header value cannot hold a line break, so the text reads back exactly. Leaves
/// out credentials (`Authorization`, `Cookie`) and connection headers.
pub fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.len() * 48);
    for (name, value) in headers {
        if NOT_STORED.contains(&name.as_str()) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads headers [`encode_headers`] wrote. A line that is not a valid header is an
/// error naming it.
pub fn decode_headers(text: &[u8]) -> Result<HeaderMap, InboxError> {
    let mut headers = HeaderMap::new();
    for line in text.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let invalid =
            || InboxError::InvalidConfig(format!("stored header `{}` is invalid", String::from_utf8_lossy(line)));
        let colon = line.iter().position(|&byte| byte == b':').ok_or_else(invalid)?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| invalid())?;
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        headers.append(name, HeaderValue::from_bytes(value).map_err(|_| invalid())?);
    }
    Ok(headers)
}

/// Milliseconds since the Unix epoch, as the embedded backends keep times.
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// The time `millis` after the Unix epoch.
pub(crate) fn from_unix_millis(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// A lease token no other take used: 128 random bits as hex.
pub(crate) fn lease_token() -> String {
    let mut bytes = [0_u8; 16];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&fastrand::u64(..).to_le_bytes());
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_back_exactly_without_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert("x-groq-signature", HeaderValue::from_static("ab12"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two: with colon"));
        headers.insert("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("cookie", HeaderValue::from_static("session=1"));
        let encoded = encode_headers(&headers);
        let decoded = decode_headers(&encoded).unwrap();
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded["x-groq-signature"], "ab12");
        assert_eq!(decoded.get_all("x-multi").iter().collect::<Vec<_>>(), ["one", "two: with colon"]);
        assert_eq!(decoded["x-raw"].as_bytes(), b"caf\xe9");
        assert!(!decoded.contains_key("authorization") && !decoded.contains_key("cookie"));
        assert!(decode_headers(b"no colon here\r\n").is_err());
    }

    #[test]
    fn states_read_back_from_their_names() {
        for state in DeliveryState::ALL {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(state));
        }
        assert!("lost".parse::<DeliveryState>().unwrap_err().contains("queued, running"));
    }
}
