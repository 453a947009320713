//! An inbox in Redis Streams, shared by every replica and worker that points at it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation, Value};

use super::{
    batch_answer, batch_failed, from_unix_millis, lease_token, unix_millis, Activity, Cursor, DeliveryState, Enqueued,
    Filter, History, HistoryLine, Inbox, InboxAdmin, InboxError, InboxStats, Lease, Leased, NewDelivery, Page,
    StoredDelivery, TypeCounts,
};
use crate::backend::batch::Batcher;
use crate::backend::redis::RedisBuilder;
use crate::backend::{connect_error, millis, nearest_first, within};
use crate::store::StoreError;

mod scripts;
mod search;
use scripts::Scripts;

/// What every key of a [`RedisInbox`] starts with unless told otherwise.
pub const DEFAULT_INBOX_PREFIX: &str = "hookroute:inbox:";

/// The consumer group every worker reads the stream in.
const GROUP: &str = "hookroute";

/// An inbox in Redis Streams (Redis 7.0 or newer), for any number of HTTP replicas and
/// worker processes.
///
/// Each delivery is a hash (`<prefix>d:<key>`) holding the raw body and headers, its
/// state and attempts. Its life runs through:
///
/// - a **stream** (`<prefix>stream`) read by the **consumer group** `hookroute`:
///   `enqueue` appends, `take` reads new entries with `XREADGROUP`, and entries are
///   acknowledged (`XACK`) and deleted when their attempt ends;
/// - a sorted set of **leases** (`<prefix>leases`, by when each runs out): a lease is
///   per delivery and renewed by its worker, so an expired one is found there and
///   taken over with `XCLAIM`. (`XAUTOCLAIM` knows one idle time for the whole group
///   and cannot tell a renewed lease from an expired one.)
/// - a sorted set of **delayed retries** (`<prefix>delayed`, by due time), moved back
///   into the stream when due;
/// - a **dead-letter stream** (`<prefix>dead`) with each dead delivery's last error;
/// - a sorted set of **done** keys (`<prefix>done`, by expiry); done hashes expire
///   after the TTL on their own;
/// - a sorted set of done keys by completion (`<prefix>payloads`), whose bodies and
///   headers go after the payload retention;
/// - the namespace the inbox belongs to (`<prefix>owner`).
///
/// Every operation is one Lua script, atomic on the server; a worker's batch of takes
/// is one script call, and the completions that arrive together are one more. The
/// server's clock decides every time. Not for Redis Cluster (the scripts touch keys they compute).
///
/// **Durability is the server's**: run Redis with `appendonly yes` and `appendfsync
/// always` (or `everysec`, accepting up to a second of acknowledged deliveries lost
/// in a crash), and `maxmemory-policy noeviction`, or an evicted record is a lost
/// delivery.
///
/// ```no_run
/// use hookroute_runtime::inbox::RedisInbox;
///
/// # async fn run() -> Result<(), hookroute_runtime::inbox::InboxError> {
/// let inbox = RedisInbox::builder("redis://127.0.0.1:6379/").prefix("billing:inbox:").connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisInbox {
    connection: ConnectionManager,
    // Shared, not copied: a batch's writer holds a clone of the inbox.
    prefix: Arc<str>,
    /// What every record's key starts with: `<prefix>d:`.
    records: Arc<str>,
    keys: Arc<[String; 6]>,
    consumer: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
    /// The completions that arrive while one batch is sent go in the next, one script
    /// call for all of them.
    completes: Arc<Batcher<(Lease, i64), Result<(), InboxError>>>,
}

/// The most completions, and deliveries taken, in one script call: the server runs
/// nothing else meanwhile.
const COMPLETE_BATCH: usize = 64;
const TAKE_BATCH: usize = 64;
/// The most done records one call of an operator's purge reads (about 2–3 ms of the
/// server's time): the purge goes on in further calls, and other clients' commands run
/// between them.
const PURGE_BATCH: usize = 250;

impl fmt::Debug for RedisInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInbox")
            .field("prefix", &self.prefix)
            .field("consumer", &self.consumer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Sets up a [`RedisInbox`]; from [`RedisInbox::builder`].
pub type RedisInboxBuilder = RedisBuilder<RedisInbox>;

impl RedisInbox {
    /// Connects to the server at `url` with the default settings.
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring an inbox for the server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisInboxBuilder {
        RedisBuilder::new(url.into(), DEFAULT_INBOX_PREFIX)
    }

    /// An invocation of `script` with the inbox's keys and the record prefix as
    /// `ARGV[1]`; the caller adds the rest.
    fn script<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.keys.iter() {
            invocation.key(key);
        }
        invocation.arg(&*self.records);
        invocation
    }

    async fn run<T: redis::FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> Result<T, InboxError> {
        let mut connection = self.connection.clone();
        Ok(within(self.timeout, "Redis", invocation.invoke_async(&mut connection)).await?)
    }

    /// Runs a lease script: `ARGV[2..3]` are the lease's key and token, `more` adds
    /// the script's own arguments.
    async fn held(
        &self,
        script: &Script,
        lease: &Lease,
        more: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> Result<(), InboxError> {
        let mut invocation = self.script(script);
        invocation.arg(&lease.key).arg(&lease.token);
        more(&mut invocation);
        let held: i64 = self.run(&invocation).await?;
        if held == 1 {
            Ok(())
        } else {
            Err(InboxError::ClaimLost { key: lease.key().to_owned() })
        }
    }
}

impl RedisInboxBuilder {
    /// Opens only an inbox that exists: [`connect`](Self::connect) creates nothing,
    /// and a prefix with no inbox stream is an error naming the prefixes that have one
    /// (an operator's tool looking at a misspelt prefix must not make an empty inbox).
    #[must_use]
    pub fn existing_only(mut self) -> Self {
        self.existing = true;
        self
    }

    /// Connects and creates the stream and its consumer group if they are missing
    /// (unless [`existing_only`](Self::existing_only)). A server whose
    /// `maxmemory-policy` may evict keys is refused.
    pub async fn connect(self) -> Result<RedisInbox, InboxError> {
        let RedisBuilder { url, prefix, timeout, allow_eviction, existing, .. } = self;
        let (mut connection, target) = crate::backend::redis::connection(&url, timeout, allow_eviction).await?;
        let keys = ["stream", "delayed", "dead", "done", "leases", "payloads"].map(|name| format!("{prefix}{name}"));
        let ready = if existing {
            check_exists(&mut connection, &prefix, &keys[0], timeout).await
        } else {
            create_group(&mut connection, &keys[0], timeout).await
        };
        if let Err(err) = ready {
            return Err(connect_error("Redis", target, err));
        }
        warn_without_persistence(&mut connection, &target, timeout).await;
        Ok(RedisInbox {
            connection,
            records: format!("{prefix}d:").into(),
            prefix: prefix.into(),
            keys: Arc::new(keys),
            consumer: format!("worker-{}", lease_token()).into(),
            timeout,
            scripts: Arc::new(Scripts::new()),
            completes: Arc::new(Batcher::new(COMPLETE_BATCH, 1)),
        })
    }
}

/// Creates the stream and its consumer group where they are missing.
async fn create_group(
    connection: &mut redis::aio::ConnectionManager,
    stream: &str,
    timeout: Duration,
) -> Result<(), InboxError> {
    let mut create = redis::cmd("XGROUP");
    create.arg("CREATE").arg(stream).arg(GROUP).arg("0").arg("MKSTREAM");
    match within(timeout, "Redis", create.query_async::<()>(connection)).await {
        Ok(()) => Ok(()),
        Err(StoreError::Unavailable(err)) if err.to_string().contains("BUSYGROUP") => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Fails unless `stream` exists, naming the prefixes whose inbox stream does.
async fn check_exists(
    connection: &mut redis::aio::ConnectionManager,
    prefix: &str,
    stream: &str,
    timeout: Duration,
) -> Result<(), InboxError> {
    let mut exists = redis::cmd("EXISTS");
    exists.arg(stream);
    if within(timeout, "Redis", exists.query_async::<u64>(connection)).await? == 1 {
        return Ok(());
    }
    let mut prefixes = Vec::new();
    let (mut cursor, mut scans) = (0_u64, 0_u32);
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor).arg("MATCH").arg("*stream").arg("COUNT").arg(1000).arg("TYPE").arg("stream");
        let (next, keys): (u64, Vec<String>) = within(timeout, "Redis", scan.query_async(connection)).await?;
        prefixes.extend(keys.into_iter().filter_map(|key| key.strip_suffix("stream").map(str::to_owned)));
        // Bounded, however many keys the server holds: a hundred scans of a thousand.
        if next == 0 || prefixes.len() > 10_000 || scans > 100 {
            break;
        }
        scans += 1;
        cursor = next;
    }
    Err(InboxError::InvalidConfig(format!(
        "there is no inbox under the prefix `{prefix}`; {}",
        if prefixes.is_empty() {
            "this server holds none".to_owned()
        } else {
            format!("the inbox prefixes here, nearest first: {}", nearest_first(prefix, prefixes))
        }
    )))
}

/// Says, loudly, when the server keeps no append-only file: a restart (or a failover
/// to a replica that had not caught up) loses every delivery that was answered 202.
async fn warn_without_persistence(connection: &mut redis::aio::ConnectionManager, target: &str, timeout: Duration) {
    let mut get = redis::cmd("CONFIG");
    get.arg("GET").arg("appendonly");
    let answer = within(timeout, "Redis", get.query_async::<Vec<String>>(connection)).await;
    match answer.as_deref() {
        Ok([_, value]) if value == "no" => tracing::warn!(
            target = %target,
            "Redis at {target} keeps no append-only file (appendonly no): a restart loses every queued delivery \
             that was already answered 202, and the provider will not send them again. \
             Run it with `appendonly yes` (and `appendfsync everysec` or `always`)"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::debug!(target = %target, %error, "cannot read Redis's appendonly setting; make sure it is yes");
        }
    }
}

/// A bulk string as bytes (nil as empty).
fn bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes.clone(),
        Value::SimpleString(text) => text.clone().into_bytes(),
        Value::Int(n) => n.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn text(value: &Value) -> String {
    String::from_utf8_lossy(&bytes(value)).into_owned()
}

fn number(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        other => text(other).parse().unwrap_or(0),
    }
}

fn signed_at(value: &Value) -> Option<u64> {
    text(value).parse().ok()
}

fn corrupt(what: &str) -> InboxError {
    InboxError::Unavailable(format!("the Redis inbox answered an unexpected {what}").into())
}

impl RedisInbox {
    /// Completes a batch of leases in one script call, answering each in order: a lease
    /// the script found lost is [`InboxError::ClaimLost`].
    async fn complete_many(&self, batch: Vec<(Lease, i64)>) -> Vec<Result<(), InboxError>> {
        let mut invocation = self.script(&self.scripts.complete);
        for (lease, ttl) in &batch {
            invocation.arg(&lease.key).arg(&lease.token).arg(*ttl);
        }
        let done = match self.run::<Vec<i64>>(&invocation).await {
            Ok(done) if done.len() == batch.len() => done,
            Ok(_) => return batch_failed(batch.len(), &corrupt("answer to a completion")),
            Err(error) => return batch_failed(batch.len(), &error),
        };
        batch
            .iter()
            .zip(done)
            .map(
                |((lease, _), done)| {
                    if done == 1 {
                        Ok(())
                    } else {
                        Err(InboxError::ClaimLost { key: lease.key().to_owned() })
                    }
                },
            )
            .collect()
    }

    /// One take script for up to `most` deliveries: `None` when it parked deliveries
    /// and took none (look again).
    async fn take_batch(&self, lease: Duration, most: usize) -> Result<Option<Vec<Leased>>, InboxError> {
        let tokens: Vec<String> = (0..most.max(1)).map(|_| lease_token()).collect();
        let mut invocation = self.script(&self.scripts.take);
        invocation.arg(&*self.consumer).arg(millis(lease));
        for token in &tokens {
            invocation.arg(token);
        }
        let answer: Value = match self.run(&invocation).await {
            // The stream's consumer group is gone: the server restarted without
            // persistence, was flushed, or failed over to an empty replica. Create it
            // again, or no worker ever takes another delivery.
            Err(InboxError::Unavailable(error)) if error.to_string().contains("NOGROUP") => {
                tracing::warn!(
                    stream = %self.keys[0],
                    "the inbox's consumer group was gone (Redis restarted without persistence, or was flushed): \
                     created it again; deliveries queued before are lost"
                );
                create_group(&mut self.connection.clone(), &self.keys[0], self.timeout).await?;
                self.run(&invocation).await?
            }
            answer => answer?,
        };
        let taken = match answer {
            Value::Array(taken) if taken.len() <= tokens.len() => taken,
            Value::Nil | Value::Boolean(false) => return Ok(Some(Vec::new())),
            ref again if text(again) == "again" => return Ok(None),
            _ => return Err(corrupt("answer to a take")),
        };
        taken.into_iter().zip(tokens).map(|(fields, token)| leased(fields, token)).collect::<Result<_, _>>().map(Some)
    }
}

/// A delivery as the take script answers it (13 fields), under the lease `token`.
fn leased(fields: Value, token: String) -> Result<Leased, InboxError> {
    let fields = match fields {
        Value::Array(fields) if fields.len() == 13 => fields,
        _ => return Err(corrupt("answer to a take")),
    };
    let key = text(&fields[0]);
    let delivery = StoredDelivery {
        key: key.clone(),
        id: text(&fields[1]),
        event_type: text(&fields[2]),
        headers: bytes(&fields[3]),
        body: bytes(&fields[4]),
        signed_at: signed_at(&fields[5]),
        state: DeliveryState::Running,
        attempts: u32::try_from(number(&fields[6])).unwrap_or(0),
        last_error: (number(&fields[9]) == 1).then(|| text(&fields[7])),
        received_at: from_unix_millis(number(&fields[8])),
        order_key: Some(text(&fields[10])).filter(|lane| !lane.is_empty()),
        created_at: from_unix_millis(number(&fields[11])),
    };
    Ok(Leased { delivery, lease: Lease::new(key, token), superseded: number(&fields[12]) == 1 })
}

#[async_trait::async_trait]
impl Inbox for RedisInbox {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn orders(&self) -> bool {
        true
    }

    async fn forget_payloads(&self, older_than: Duration) -> Result<u64, InboxError> {
        let mut forgotten = 0;
        loop {
            let mut invocation = self.script(&self.scripts.forget_payloads);
            invocation.arg(millis(older_than));
            let (batch, looked_at): (u64, u64) = self.run(&invocation).await?;
            forgotten += batch;
            if looked_at < 1000 {
                return Ok(forgotten);
            }
        }
    }

    async fn owner(&self) -> Result<Option<String>, InboxError> {
        let mut get = redis::cmd("GET");
        get.arg(format!("{}owner", self.prefix));
        Ok(within(self.timeout, "Redis", get.query_async(&mut self.connection.clone())).await?)
    }

    async fn bind(&self, namespace: &str, also: &[String]) -> Result<(), InboxError> {
        let key = format!("{}owner", self.prefix);
        let mut connection = self.connection.clone();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(namespace).arg("NX").arg("GET");
        // SET .. NX GET answers the value that was there (nil when it set it).
        let owner: Option<String> = within(self.timeout, "Redis", set.query_async(&mut connection)).await?;
        let Some(owner) = owner else { return Ok(()) };
        if let Some(new) = super::bind_owner(&owner, namespace, also, "`?prefix=` another prefix")? {
            let mut take_over = redis::cmd("SET");
            take_over.arg(&key).arg(new);
            within(self.timeout, "Redis", take_over.query_async::<()>(&mut connection)).await?;
        }
        Ok(())
    }

    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
        let signed_at = delivery.signed_at.map(|at| at.to_string()).unwrap_or_default();
        let mut invocation = self.script(&self.scripts.enqueue);
        invocation.arg(delivery.key).arg(delivery.id).arg(delivery.event_type);
        invocation.arg(delivery.headers).arg(delivery.body).arg(signed_at);
        let order = &delivery.order;
        let text = |value: Option<u64>| value.map(|value| value.to_string()).unwrap_or_default();
        invocation.arg(order.key.unwrap_or("")).arg(text(order.created_ms));
        invocation.arg(order.limits.in_flight.max(1));
        invocation.arg(text(order.limits.type_concurrency.map(|cap| u64::from(cap.max(1)))));
        invocation.arg(text(order.limits.key_interval_ms));
        let queued: i64 = self.run(&invocation).await?;
        Ok(if queued == 1 { Enqueued::Queued } else { Enqueued::Duplicate })
    }

    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        Ok(self.take_many(lease, 1).await?.into_iter().next())
    }

    /// One script takes them all, in turn on the server, so each decides on what the
    /// one before it leased (a key's order and limits hold across the batch).
    async fn take_many(&self, lease: Duration, most: usize) -> Result<Vec<Leased>, InboxError> {
        // A take that parked deliveries whose order does not let them run yet (at most
        // 64 more entries read than deliveries sought, so that no script holds the server
        // long), and found none that could, looks again: the stream may hold more. Each round parks at
        // least one, so this ends; answering none early would idle the worker for a
        // poll while deliveries that may run wait behind a busy key's backlog.
        loop {
            if let Some(taken) = self.take_batch(lease, most.clamp(1, TAKE_BATCH)).await? {
                return Ok(taken);
            }
        }
    }

    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        self.held(&self.scripts.renew, lease, |script| {
            script.arg(millis(duration));
        })
        .await
    }

    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        let inbox = self.clone();
        let write = move |batch| {
            let inbox = inbox.clone();
            async move { inbox.complete_many(batch).await }
        };
        batch_answer(self.completes.submit((lease.clone(), millis(ttl)), write).await, "completion")
    }

    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.held(&self.scripts.retry, lease, |script| {
            script.arg(millis(delay)).arg(error).arg(0);
        })
        .await
    }

    async fn retry_releasing(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.held(&self.scripts.retry, lease, |script| {
            script.arg(millis(delay)).arg(error).arg(1);
        })
        .await
    }

    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        self.held(&self.scripts.dead, lease, |script| {
            script.arg(error);
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
        self.held(&self.scripts.release, lease, |_| {}).await
    }

    async fn stats(&self) -> Result<InboxStats, InboxError> {
        let counts: Vec<i64> = self.run(&self.script(&self.scripts.stats)).await?;
        let [queued, running, retrying, done, dead, oldest] = counts[..] else {
            return Err(corrupt("answer to stats"));
        };
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(InboxStats {
            queued: count(queued),
            running: count(running),
            retrying: count(retrying),
            done: count(done),
            dead: count(dead),
            oldest_due_age: u64::try_from(oldest).ok().map(Duration::from_millis),
        })
    }
}

#[async_trait::async_trait]
impl InboxAdmin for RedisInbox {
    async fn list(&self, state: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let limit = limit.min(100_000);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.script(&self.scripts.list);
        invocation.arg(state.as_str()).arg(limit);
        let keys: Vec<String> = self.run(&invocation).await?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(delivery) = self.get(&key).await? {
                found.push(delivery);
            }
        }
        Ok(found)
    }

    /// Reads every record's searched fields (see the `search` module): linear in the
    /// records held, whatever the filter.
    async fn search(&self, filter: &Filter, after: Option<&Cursor>, limit: usize) -> Result<Page, InboxError> {
        let keep = limit.saturating_add(1);
        let mut found = Vec::new();
        self.scan_matching(filter, after, |delivery| {
            found.push(delivery);
            if found.len() >= keep.saturating_mul(4).max(1024) {
                found.sort_unstable_by(Page::newest_first);
                found.truncate(keep);
            }
        })
        .await?;
        found.sort_unstable_by(Page::newest_first);
        found.truncate(keep);
        // The page's records whole (one may have expired since: left out).
        let mut page = Vec::with_capacity(found.len());
        for summary in found {
            if let Some(delivery) = self.get(&summary.key).await? {
                page.push(delivery);
            }
        }
        Ok(Page::of(page, limit))
    }

    /// One read of every record's searched fields, as a search does.
    async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
        let mut rows = Vec::new();
        self.scan_matching(&Filter::default(), None, |delivery| {
            if delivery.state != DeliveryState::Done {
                rows.push((delivery.event_type, delivery.state, 1));
            }
        })
        .await?;
        Ok(TypeCounts::from_rows(rows))
    }

    async fn count(&self, filter: &Filter) -> Result<u64, InboxError> {
        let mut counted = 0;
        self.scan_matching(filter, None, |_| counted += 1).await?;
        Ok(counted)
    }

    async fn pause(&self, event_type: &str) -> Result<bool, InboxError> {
        let mut add = redis::cmd("SADD");
        add.arg(format!("{}paused", self.prefix)).arg(event_type);
        let added: i64 = within(self.timeout, "Redis", add.query_async(&mut self.connection.clone())).await?;
        Ok(added == 1)
    }

    async fn resume(&self, event_type: &str) -> Result<bool, InboxError> {
        // A thousand parked deliveries put back a call, so that a long pause's backlog
        // does not hold the server in one script.
        const BATCH: usize = 1000;
        let mut resumed = None;
        loop {
            let mut invocation = self.script(&self.scripts.resume);
            invocation.arg(event_type).arg(BATCH);
            let (was_paused, back): (i64, usize) = self.run(&invocation).await?;
            let resumed = *resumed.get_or_insert(was_paused == 1);
            if back < BATCH {
                return Ok(resumed);
            }
        }
    }

    async fn paused(&self) -> Result<Vec<String>, InboxError> {
        let mut members = redis::cmd("SMEMBERS");
        members.arg(format!("{}paused", self.prefix));
        let mut paused: Vec<String> =
            within(self.timeout, "Redis", members.query_async(&mut self.connection.clone())).await?;
        paused.sort();
        Ok(paused)
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("HGETALL");
        command.arg(format!("{}{key}", self.records));
        let fields: HashMap<String, Value> =
            within(self.timeout, "Redis", command.query_async(&mut connection)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let field = |name: &str| fields.get(name).unwrap_or(&Value::Nil);
        Ok(Some(StoredDelivery {
            key: key.to_owned(),
            id: text(field("id")),
            event_type: text(field("type")),
            headers: bytes(field("headers")),
            body: bytes(field("body")),
            signed_at: signed_at(field("signed_at")),
            state: text(field("state")).parse().map_err(|_| corrupt("state"))?,
            attempts: u32::try_from(number(field("attempts"))).unwrap_or(0),
            last_error: fields.get("last_error").map(text),
            received_at: from_unix_millis(number(field("received_at"))),
            order_key: fields.get("lane").map(text),
            created_at: from_unix_millis(number(fields.get("created").unwrap_or(field("received_at")))),
        }))
    }

    /// From the counters of completions and failed attempts the scripts keep a minute
    /// each for 25 hours (`<prefix>done:<unix minute>`, `<prefix>failed:<unix minute>`).
    async fn activity(
        &self,
        start: SystemTime,
        period: Duration,
        periods: usize,
    ) -> Result<Option<Activity>, InboxError> {
        let mut activity = Activity::new(start, period, periods);
        let from = unix_millis(start).div_euclid(60_000);
        let span = activity.period.as_millis().saturating_mul(periods as u128) / 60_000;
        let until = from.saturating_add(i64::try_from(span.min(25 * 60)).unwrap_or(0)).saturating_add(1);
        if until <= from {
            return Ok(Some(activity));
        }
        let mut command = redis::cmd("MGET");
        for minute in from..until {
            command.arg(format!("{}done:{minute}", self.prefix)).arg(format!("{}failed:{minute}", self.prefix));
        }
        let counts: Vec<Option<u64>> =
            within(self.timeout, "Redis", command.query_async(&mut self.connection.clone())).await?;
        for (minute, pair) in (from..until).zip(counts.chunks(2)) {
            let at = minute * 60_000;
            activity.add_done(at, pair.first().copied().flatten().unwrap_or(0));
            activity.add_failed(at, pair.get(1).copied().flatten().unwrap_or(0));
        }
        Ok(Some(activity))
    }

    async fn history(&self, key: &str) -> Result<Option<History>, InboxError> {
        let mut command = redis::cmd("HMGET");
        command.arg(format!("{}{key}", self.records)).arg("history").arg("updated_at");
        let (text, changed): (Option<String>, Option<i64>) =
            within(self.timeout, "Redis", command.query_async(&mut self.connection.clone())).await?;
        Ok(Some(HistoryLine::read(text.as_deref().unwrap_or_default(), changed)))
    }

    async fn list_key(&self, order_key: &str, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let limit = limit.min(100_000);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut range = redis::cmd("ZRANGE");
        range.arg(format!("{}lp:{order_key}", self.prefix)).arg(0).arg(limit - 1);
        let members: Vec<String> =
            within(self.timeout, "Redis", range.query_async(&mut self.connection.clone())).await?;
        let mut found = Vec::with_capacity(members.len());
        // A member is `<16-digit arrival>:<record key>`.
        for member in members {
            if let Some(delivery) = self.get(member.get(17..).unwrap_or_default()).await? {
                found.push(delivery);
            }
        }
        Ok(found)
    }

    async fn replay(&self, key: &str) -> Result<bool, InboxError> {
        let mut invocation = self.script(&self.scripts.replay);
        invocation.arg(key);
        let replayed: i64 = self.run(&invocation).await?;
        Ok(replayed == 1)
    }

    async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError> {
        let older_than = if older_than.is_zero() { 0 } else { millis(older_than) };
        let (mut purged, mut from, mut kept) = (0, "-inf".to_owned(), 0);
        loop {
            let mut invocation = self.script(&self.scripts.purge_done);
            invocation.arg(older_than).arg(PURGE_BATCH).arg(&from).arg(kept);
            let (batch, read, last, kept_at_last): (u64, usize, String, u64) = self.run(&invocation).await?;
            purged += batch;
            if read < PURGE_BATCH {
                return Ok(purged);
            }
            (from, kept) = (last, kept_at_last);
        }
    }
}
