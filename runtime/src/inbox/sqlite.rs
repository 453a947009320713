//! An inbox in one SQLite file, for a single node.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use super::admin::{sql_search, SqlDialect, SqlValue};
use super::{batch_answer, batch_failed};
use super::{
    from_unix_millis, lease_token, unix_millis, Activity, Cursor, DeliveryState, Enqueued, Filter, History,
    HistoryLine, Inbox, InboxAdmin, InboxError, InboxStats, KeyStats, Lease, Leased, NewDelivery, OwnedDelivery, Page,
    StoredDelivery, TypeCounts,
};
use crate::backend::batch::Batcher;
use crate::backend::millis;
use crate::backend::sqlite::SqliteFile;

/// The one table. `due_at` is when something next happens to a record: a queued or
/// retrying one runs, a running one's lease ends, a done one expires. `seq` keeps
/// arrival order among records due in the same millisecond.
const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS hookroute_inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        headers BLOB NOT NULL,
        body BLOB NOT NULL,
        signed_at INTEGER,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        due_at INTEGER NOT NULL,
        token TEXT,
        last_error TEXT,
        received_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        order_key TEXT,
        created_ms INTEGER NOT NULL DEFAULT 0,
        in_flight INTEGER NOT NULL DEFAULT 1,
        type_cap INTEGER,
        key_interval INTEGER,
        started_at INTEGER,
        releases INTEGER NOT NULL DEFAULT 0,
        history TEXT
    );
    CREATE INDEX IF NOT EXISTS hookroute_inbox_due ON hookroute_inbox (due_at, seq)
        WHERE state IN ('queued', 'retrying', 'running');
    CREATE INDEX IF NOT EXISTS hookroute_inbox_state ON hookroute_inbox (state, updated_at);
    CREATE TABLE IF NOT EXISTS hookroute_inbox_paused (event_type TEXT PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS hookroute_inbox_owner (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        namespace TEXT NOT NULL
    );
";

/// The columns an inbox made before ordered lanes lacks, added when it opens.
const ORDER_COLUMNS: [(&str, &str); 8] = [
    ("order_key", "TEXT"),
    ("created_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("in_flight", "INTEGER NOT NULL DEFAULT 1"),
    ("type_cap", "INTEGER"),
    ("key_interval", "INTEGER"),
    ("started_at", "INTEGER"),
    ("releases", "INTEGER NOT NULL DEFAULT 0"),
    ("history", "TEXT"),
];

/// The indexes added after the first schema: ordered lanes, type caps, searches
/// newest first (after [`ORDER_COLUMNS`]).
const ORDER_INDEXES: &str = "
    CREATE INDEX IF NOT EXISTS hookroute_inbox_lane ON hookroute_inbox (order_key, created_ms, seq)
        WHERE order_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS hookroute_inbox_running_type ON hookroute_inbox (event_type)
        WHERE state = 'running' AND type_cap IS NOT NULL;
    CREATE INDEX IF NOT EXISTS hookroute_inbox_lease ON hookroute_inbox (due_at, seq) WHERE state = 'running';
    CREATE INDEX IF NOT EXISTS hookroute_inbox_received ON hookroute_inbox (received_at, key);
    CREATE INDEX IF NOT EXISTS hookroute_inbox_history ON hookroute_inbox (updated_at) WHERE history IS NOT NULL;
";

const COLUMNS: &str = "key, event_id, event_type, headers, body, signed_at, state, attempts, last_error, received_at, \
                       order_key, created_ms";

/// Whether the record `r` may run now (`?3`) under its ordering key and limits (see
/// [`Order`]): no more than `in_flight` older deliveries of its key pending (a retry
/// that releases its key does not count until it is due), nor running; the last start
/// of its key's rate-limited deliveries `key_interval` ago; fewer than `type_cap` of its
/// type running.
const MAY_RUN: &str = "(r.order_key IS NULL OR (
        (SELECT count(*) FROM hookroute_inbox o WHERE o.order_key = r.order_key
            AND o.state IN ('queued', 'retrying', 'running') AND (o.created_ms, o.seq) < (r.created_ms, r.seq)
            AND NOT (o.state = 'retrying' AND o.releases = 1 AND o.due_at > ?3)) < r.in_flight
        AND (SELECT count(*) FROM hookroute_inbox o WHERE o.order_key = r.order_key
            AND o.state = 'running' AND o.due_at > ?3 AND o.seq <> r.seq) < r.in_flight
        AND (r.key_interval IS NULL OR NOT EXISTS (SELECT 1 FROM hookroute_inbox o
            WHERE o.order_key = r.order_key AND o.key_interval IS NOT NULL AND o.started_at > ?3 - r.key_interval))))
    AND (r.type_cap IS NULL OR (SELECT count(*) FROM hookroute_inbox o
        WHERE o.event_type = r.event_type AND o.state = 'running' AND o.type_cap IS NOT NULL AND o.due_at > ?3
            AND o.seq <> r.seq) < r.type_cap)";

/// The record due longest among those their ordering key and limits let run and whose
/// type is not paused, `?3` being now. INDEXED BY: left to itself, the planner picked
/// the state index and sorted every waiting record on each take (a drain ran at 219 deliveries/s with
/// 20,000 waiting).
fn next_allowed() -> String {
    format!(
        "SELECT seq FROM hookroute_inbox r INDEXED BY hookroute_inbox_due
         WHERE state IN ('queued', 'retrying', 'running') AND state <> 'running' AND due_at <= ?3
           AND r.event_type NOT IN (SELECT event_type FROM hookroute_inbox_paused) AND {MAY_RUN}
         ORDER BY due_at, seq LIMIT 1"
    )
}

/// The expired lease held longest, among those their ordering key and limits let run:
/// taken before anything queued (its delivery is the oldest, and with an ordering key
/// it holds the key until taken again).
fn next_expired() -> String {
    format!(
        "SELECT seq FROM hookroute_inbox r INDEXED BY hookroute_inbox_lease
         WHERE state = 'running' AND due_at <= ?3 AND {MAY_RUN}
         ORDER BY due_at, seq LIMIT 1"
    )
}

/// After a delivery of the key `?1` (record `?2`) finished an attempt, the key's next
/// delivery is due no earlier than now (`?3`): the key goes to the back of the line.
const BEHIND: &str = "UPDATE hookroute_inbox SET due_at = CASE WHEN due_at = 9223372036854775807 THEN ?3
                                                       ELSE max(due_at, ?3) END
    WHERE seq = (SELECT seq FROM hookroute_inbox WHERE order_key = ?1 AND state IN ('queued', 'retrying')
                 AND seq <> ?2 ORDER BY created_ms, seq LIMIT 1)";

/// Done records past their TTL are swept once every this many enqueues.
const SWEEP_EVERY: u64 = 1024;

/// An inbox in a SQLite file: durable, embedded, for one node.
///
/// The file is in WAL mode. An insert commits with `synchronous = FULL`, so a
/// delivery answered `202` is on disk; the inserts that arrive while one commits are
/// written together in the next transaction, one sync for all (group commit). Leases, retries and done marks commit with
/// `synchronous = NORMAL` (the next insert's sync, or a checkpoint, writes them),
/// which a process crash never loses but a power loss can: the delivery then runs
/// again, as README's at-least-once case says, and is never lost. That keeps a worker
/// from paying two disk syncs per delivery.
///
/// Each operation is one statement or one `IMMEDIATE` transaction, so several
/// processes on the node (an HTTP server and separate workers) may share the file. Times come from this machine's clock: replicas on several machines want
/// `PostgresInbox` or `RedisInbox`.
///
/// ```
/// use hookroute_runtime::inbox::SqliteInbox;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("hookroute-inbox-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let inbox = SqliteInbox::open(dir.join("inbox.db")).await?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), hookroute_runtime::inbox::InboxError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteInbox {
    file: Arc<SqliteFile>,
    enqueued: Arc<AtomicU64>,
    /// Enqueues that arrive together share one transaction and one sync (group commit).
    enqueues: Arc<Batcher<Fresh, Result<Enqueued, InboxError>>>,
    /// Completions that arrive together share one transaction.
    completes: Arc<Batcher<(Lease, i64), Result<(), InboxError>>>,
}

/// The most deliveries one transaction of enqueues or completions writes.
const ENQUEUE_BATCH: usize = 256;

/// A delivery waiting for a batched enqueue, and whether done records past their TTL
/// are swept first.
type Fresh = (OwnedDelivery, bool);

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox").field("path", &self.file.path).finish_non_exhaustive()
    }
}

impl SqliteInbox {
    /// Opens (or creates) the inbox file at `path` and its table.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        let file = SqliteFile::open(path.as_ref(), SCHEMA).await?;
        let enqueues = Arc::new(Batcher::new(ENQUEUE_BATCH, 1));
        let completes = Arc::new(Batcher::new(ENQUEUE_BATCH, 1));
        let inbox = Self { file: Arc::new(file), enqueued: Arc::new(AtomicU64::new(0)), enqueues, completes };
        inbox.run(|connection, _| upgrade(connection)).await?;
        Ok(inbox)
    }

    /// Runs `work` with the connection and the time now, on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, i64) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, InboxError> {
        Ok(SqliteFile::run(&self.file, move |connection| work(connection, unix_millis(SystemTime::now()))).await?)
    }

    /// The counts by state that `counts` (`state, count` rows, the time now as `?1` if
    /// it has a parameter) answers, and the oldest due age.
    async fn counted(&self, counts: &'static str) -> Result<InboxStats, InboxError> {
        self.run(move |connection, now| {
            let mut stats = InboxStats::default();
            let mut counts = connection.prepare(counts)?;
            let now_if_used: &[i64] = if counts.parameter_count() == 1 { &[now] } else { &[] };
            let rows = counts.query_map(rusqlite::params_from_iter(now_if_used), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (name, count) = row?;
                stats.add(name.parse().unwrap_or(DeliveryState::Dead), count.unsigned_abs());
            }
            let oldest: Option<i64> = connection.query_row(
                "SELECT min(due_at) FROM hookroute_inbox WHERE state IN ('queued', 'retrying') AND due_at <= ?1",
                [now],
                |row| row.get(0),
            )?;
            stats.oldest_due_age = oldest.map(|due| Duration::from_millis((now - due).unsigned_abs()));
            Ok(stats)
        })
        .await
    }

    /// Runs an update `WHERE key = ?1 AND token = ?2 AND state = 'running' RETURNING
    /// seq, order_key` with the time `at(now)` as `?3`, now as `?4` and the error, if
    /// any, as `?5`; fails with `ClaimLost` when it touched nothing. A delivery with an
    /// ordering key sends its key to the back of the line ([`BEHIND`]).
    async fn settle(
        &self,
        lease: &Lease,
        sql: &'static str,
        at: impl FnOnce(i64) -> i64 + Send + 'static,
        error: Option<&str>,
    ) -> Result<(), InboxError> {
        let mut values: Vec<Value> = vec![lease.key().to_owned().into(), lease.token().to_owned().into()];
        let error = error.map(str::to_owned);
        let updated = self
            .run(move |connection, now| {
                values.extend([at(now).into(), now.into()]);
                values.extend(error.map(Value::from));
                let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let settled = settle_in(&transaction, sql, values, now)?;
                transaction.commit()?;
                Ok(settled)
            })
            .await?;
        if updated {
            Ok(())
        } else {
            Err(InboxError::ClaimLost { key: lease.key().to_owned() })
        }
    }
}

/// The insert-if-absent of `enqueue`, in one `IMMEDIATE` transaction; answers the rows
/// inserted.
/// Stores the deliveries of a batch in one transaction, each as it would be alone (a
/// key met earlier in the batch is a duplicate of it), synced to disk before the
/// answers: what the provider's 2xx promises. Leases and marks are not synced (see the
/// type's docs).
fn insert_all(connection: &mut rusqlite::Connection, now: i64, batch: &[Fresh]) -> rusqlite::Result<Vec<Enqueued>> {
    connection.execute_batch("PRAGMA synchronous = FULL")?;
    let inserted = insert(connection, now, batch);
    connection.execute_batch("PRAGMA synchronous = NORMAL")?;
    inserted
}

fn insert(connection: &mut rusqlite::Connection, now: i64, batch: &[Fresh]) -> rusqlite::Result<Vec<Enqueued>> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if batch.iter().any(|(_, sweep)| *sweep) {
        transaction.execute("DELETE FROM hookroute_inbox WHERE state = 'done' AND due_at <= ?1", [now])?;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for (fresh, _) in batch {
        let new = fresh.new_delivery();
        let signed_at = new.signed_at.and_then(|at| i64::try_from(at).ok());
        // A done record past its TTL is forgotten: the key is new again.
        transaction.execute(
            "DELETE FROM hookroute_inbox WHERE key = ?1 AND state = 'done' AND due_at <= ?2",
            params![new.key, now],
        )?;
        let inserted = transaction.execute(
            "INSERT INTO hookroute_inbox (key, event_id, event_type, headers, body, signed_at, state, attempts,
                 due_at, received_at, updated_at, order_key, created_ms, in_flight, type_cap, key_interval)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (key) DO NOTHING",
            params![
                new.key,
                new.id,
                new.event_type,
                new.headers,
                new.body,
                signed_at,
                now,
                new.order.key,
                new.order.created_ms.map_or(now, |at| i64::try_from(at).unwrap_or(i64::MAX)),
                new.order.limits.in_flight.max(1),
                new.order.limits.type_concurrency.map(|cap| cap.max(1)),
                new.order.limits.key_interval_ms.map(|every| i64::try_from(every).unwrap_or(i64::MAX)),
            ],
        )?;
        answers.push(if inserted == 1 { Enqueued::Queued } else { Enqueued::Duplicate });
    }
    transaction.commit()?;
    Ok(answers)
}

/// Marks a leased delivery done (`?1` key, `?2` token, `?3` until when it is
/// remembered, `?4` now).
const COMPLETE: &str = "UPDATE hookroute_inbox SET state = 'done', token = NULL, due_at = ?3, updated_at = ?4
     WHERE key = ?1 AND token = ?2 AND state = 'running' RETURNING seq, order_key";

/// Runs a settle's update (see [`SqliteInbox::settle`]) in `transaction`, sending a
/// key's next delivery behind; whether the lease still held the delivery.
fn settle_in(
    transaction: &rusqlite::Transaction<'_>,
    sql: &str,
    values: Vec<Value>,
    now: i64,
) -> rusqlite::Result<bool> {
    // Prepared each time, not from the statement cache: with the take and this update
    // cached (`UPDATE … RETURNING`, stepped once by `query_row`), the fleet test
    // `sqlite_and_memory_keep_each_customer_one_at_a_time` ran events twice, every run.
    let settled: Option<(i64, Option<String>)> = transaction
        .prepare(sql)?
        .query_row(params_from_iter(values), |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((seq, Some(lane))) = &settled {
        transaction.execute(BEHIND, params![lane, seq, now])?;
    }
    Ok(settled.is_some())
}

/// The take: an expired lease first, then the delivery due longest that its order
/// lets run.
static TAKE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE hookroute_inbox SET state = 'running', attempts = attempts + 1, token = ?1, due_at = ?2,
             updated_at = ?3, started_at = ?3, releases = 0
         WHERE seq = coalesce(({}), ({}))
         RETURNING {COLUMNS}",
        next_expired(),
        next_allowed()
    )
});

/// Leases the next delivery until `until`, in `transaction`.
fn take_one(transaction: &rusqlite::Transaction<'_>, now: i64, until: i64) -> rusqlite::Result<Option<Leased>> {
    let token = lease_token();
    // Not from the statement cache: see `settle_in`.
    let delivery = transaction.prepare(&TAKE)?.query_row(params![token, until, now], read).optional()?;
    let Some(delivery) = delivery else { return Ok(None) };
    // Taking a delivery of a key (one at a time) parks the key's other queued
    // ones (due at the end of time: no take reads them) until it is settled,
    // which makes the next one due (BEHIND): a take never walks past a busy
    // key's backlog.
    if let Some(lane) = &delivery.order_key {
        transaction.execute(
            "UPDATE hookroute_inbox SET due_at = 9223372036854775807
             WHERE order_key = ?1 AND state = 'queued' AND key <> ?2 AND due_at <> 9223372036854775807
               AND (SELECT in_flight FROM hookroute_inbox WHERE key = ?2) = 1",
            params![lane, delivery.key],
        )?;
    }
    // Stale: a delivery of its key created after it is already done.
    let superseded = match &delivery.order_key {
        Some(lane) => transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM hookroute_inbox WHERE order_key = ?1 AND state = 'done'
                 AND due_at > ?2 AND created_ms > ?3)",
            params![lane, now, unix_millis(delivery.created_at)],
            |row| row.get(0),
        )?,
        None => false,
    };
    Ok(Some(Leased { lease: Lease::new(delivery.key.clone(), token), delivery, superseded }))
}

/// Adds the columns of ordered lanes to an inbox made before them, and their indexes.
fn upgrade(connection: &mut Connection) -> rusqlite::Result<()> {
    let mut columns = connection.prepare("SELECT name FROM pragma_table_info('hookroute_inbox')")?;
    let have: Vec<String> = columns.query_map([], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
    drop(columns);
    for (name, kind) in ORDER_COLUMNS {
        if !have.iter().any(|column| column == name) {
            connection.execute_batch(&format!("ALTER TABLE hookroute_inbox ADD COLUMN {name} {kind}"))?;
        }
    }
    connection.execute_batch(ORDER_INDEXES)
}

/// A search: `select` from the deliveries `filter` matches, newest first through the
/// index of the time received whatever the filter (the planner would rather read a
/// whole state through its index and sort it), a page of `limit` or all of them.
/// `?1` is now ([`bound`]).
fn search_sql(select: &str, filter: &Filter, after: Option<&Cursor>, limit: Option<usize>) -> (String, Vec<SqlValue>) {
    let dialect = SqlDialect {
        head: format!(
            "{select} FROM hookroute_inbox INDEXED BY hookroute_inbox_received WHERE (state != 'done' OR due_at > ?1)"
        ),
        first: 2,
        like: "LIKE",
        param: |n| format!("?{n}"),
        millis: str::to_owned,
    };
    sql_search(&dialect, filter, after, limit)
}

/// The values of a search's placeholders, now first.
fn bound(now: i64, values: Vec<SqlValue>) -> Vec<Value> {
    let mut bound: Vec<Value> = vec![now.into()];
    bound.extend(values.into_iter().map(|value| match value {
        SqlValue::Text(text) => Value::from(text),
        SqlValue::Millis(ms) => Value::from(ms),
    }));
    bound
}

fn read(row: &Row<'_>) -> rusqlite::Result<StoredDelivery> {
    let state: String = row.get(6)?;
    let signed_at: Option<i64> = row.get(5)?;
    Ok(StoredDelivery {
        key: row.get(0)?,
        id: row.get(1)?,
        event_type: row.get(2)?,
        headers: row.get(3)?,
        body: row.get(4)?,
        signed_at: signed_at.and_then(|at| u64::try_from(at).ok()),
        state: state.parse().unwrap_or(DeliveryState::Dead),
        attempts: row.get(7)?,
        last_error: row.get(8)?,
        received_at: from_unix_millis(row.get(9)?),
        order_key: row.get(10)?,
        created_at: from_unix_millis(row.get(11)?),
    })
}

#[async_trait::async_trait]
impl Inbox for SqliteInbox {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn orders(&self) -> bool {
        true
    }

    async fn forget_payloads(&self, older_than: Duration) -> Result<u64, InboxError> {
        let age = millis(older_than);
        let forgotten = self
            .run(move |connection, now| {
                connection.execute(
                    "UPDATE hookroute_inbox SET body = x'', headers = x''
                     WHERE state = 'done' AND updated_at <= ?1 AND length(body) > 0",
                    [now.saturating_sub(age)],
                )
            })
            .await?;
        Ok(forgotten as u64)
    }

    async fn owner(&self) -> Result<Option<String>, InboxError> {
        self.run(|connection, _now| {
            use rusqlite::OptionalExtension as _;
            connection
                .query_row("SELECT namespace FROM hookroute_inbox_owner WHERE id = 1", [], |row| row.get(0))
                .optional()
        })
        .await
    }

    async fn bind(&self, namespace: &str, also: &[String]) -> Result<(), InboxError> {
        let (namespace, also) = (namespace.to_owned(), also.to_vec());
        self.run(move |connection, _now| {
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            transaction
                .execute("INSERT OR IGNORE INTO hookroute_inbox_owner (id, namespace) VALUES (1, ?1)", [&namespace])?;
            let owner: String =
                transaction
                    .query_row("SELECT namespace FROM hookroute_inbox_owner WHERE id = 1", [], |row| row.get(0))?;
            let decided =
                super::bind_owner(&owner, &namespace, &also, "another file").map(|new| new.map(str::to_owned));
            if let Ok(Some(new)) = &decided {
                transaction.execute("UPDATE hookroute_inbox_owner SET namespace = ?1 WHERE id = 1", [new])?;
            }
            transaction.commit()?;
            Ok(decided.map(|_| ()))
        })
        .await?
    }

    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
        let sweep = self.enqueued.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0;
        let fresh = (OwnedDelivery::of(delivery), sweep);
        let inbox = self.clone();
        let write = move |batch: Vec<Fresh>| {
            let inbox = inbox.clone();
            async move {
                let count = batch.len();
                match inbox.run(move |connection, now| insert_all(connection, now, &batch)).await {
                    Ok(answers) => answers.into_iter().map(Ok).collect(),
                    Err(error) => batch_failed(count, &error),
                }
            }
        };
        batch_answer(self.enqueues.submit(fresh, write).await, "enqueue")
    }

    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        Ok(self.take_many(lease, 1).await?.pop())
    }

    /// Up to `most` takes in one write transaction, each deciding on what the ones
    /// before it leased (a key's order and limits hold across the batch).
    async fn take_many(&self, lease: Duration, most: usize) -> Result<Vec<Leased>, InboxError> {
        let lease = millis(lease);
        self.run(move |connection, now| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut taken = Vec::new();
            while taken.len() < most.max(1) {
                let Some(leased) = take_one(&transaction, now, now.saturating_add(lease))? else { break };
                taken.push(leased);
            }
            transaction.commit()?;
            Ok(taken)
        })
        .await
    }

    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        let duration = millis(duration);
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET due_at = ?3, updated_at = ?4 WHERE key = ?1 AND token = ?2
                 AND state = 'running' RETURNING seq, NULL",
            move |now| now.saturating_add(duration),
            None,
        )
        .await
    }

    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        let inbox = self.clone();
        let write = move |batch: Vec<(Lease, i64)>| {
            let inbox = inbox.clone();
            async move {
                let count = batch.len();
                let settled = inbox
                    .run(move |connection, now| {
                        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                        let mut settled = Vec::with_capacity(batch.len());
                        for (lease, ttl) in batch {
                            let values: Vec<Value> = vec![
                                lease.key().to_owned().into(),
                                lease.token().to_owned().into(),
                                now.saturating_add(ttl).into(),
                                now.into(),
                            ];
                            let done = settle_in(&transaction, COMPLETE, values, now)?;
                            settled.push(if done {
                                Ok(())
                            } else {
                                Err(InboxError::ClaimLost { key: lease.key().to_owned() })
                            });
                        }
                        transaction.commit()?;
                        Ok(settled)
                    })
                    .await;
                settled.unwrap_or_else(|error| batch_failed(count, &error))
            }
        };
        batch_answer(self.completes.submit((lease.clone(), millis(ttl)), write).await, "completion")
    }

    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        let delay = millis(delay);
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET state = 'retrying', token = NULL, due_at = ?3, updated_at = ?4,
                 last_error = ?5, history = coalesce(history, '') || json_object('n', attempts, 'at', ?4, 'o', 'retry',
                     'error', substr(?5, 1, 1000)) || char(10)
             WHERE key = ?1 AND token = ?2 AND state = 'running' RETURNING seq, order_key",
            move |now| now.saturating_add(delay),
            Some(error),
        )
        .await
    }

    async fn retry_releasing(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        let delay = millis(delay);
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET state = 'retrying', releases = 1, token = NULL, due_at = ?3, updated_at = ?4,
                 last_error = ?5, history = coalesce(history, '') || json_object('n', attempts, 'at', ?4, 'o', 'retry',
                     'error', substr(?5, 1, 1000)) || char(10)
             WHERE key = ?1 AND token = ?2 AND state = 'running' RETURNING seq, order_key",
            move |now| now.saturating_add(delay),
            Some(error),
        )
        .await
    }

    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET state = 'dead', token = NULL, due_at = ?3, updated_at = ?4, last_error = ?5,
                 history = coalesce(history, '') || json_object('n', attempts, 'at', ?4, 'o', 'dead', 'error', substr(?5, 1, 1000))
                     || char(10)
             WHERE key = ?1 AND token = ?2 AND state = 'running' RETURNING seq, order_key",
            |_| i64::MAX,
            Some(error),
        )
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET attempts = attempts - 1, token = NULL, due_at = ?3, updated_at = ?4,
                 state = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'queued' END
             WHERE key = ?1 AND token = ?2 AND state = 'running' RETURNING seq, order_key",
            |now| now,
            None,
        )
        .await
    }

    async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.counted("SELECT state, count(*) FROM hookroute_inbox WHERE state != 'done' OR due_at > ?1 GROUP BY state")
            .await
    }

    async fn stats_without_done(&self) -> Result<InboxStats, InboxError> {
        // From the state index, the rows that are not done alone.
        self.counted(
            "SELECT state, count(*) FROM hookroute_inbox WHERE state IN ('queued', 'running', 'retrying', 'dead') GROUP BY state",
        )
        .await
    }

    async fn waiting(&self, up_to: u64) -> Result<u64, InboxError> {
        let limit = i64::try_from(up_to).unwrap_or(i64::MAX);
        self.run(move |connection, _| {
            // From the state index, the waiting rows alone and no more than asked for
            // (`stats` reads the done ones too).
            let count: i64 = connection.query_row(
                "SELECT count(*) FROM (SELECT 1 FROM hookroute_inbox WHERE state IN ('queued', 'retrying') LIMIT ?1)",
                [limit],
                |row| row.get(0),
            )?;
            Ok(count.unsigned_abs())
        })
        .await
    }

    async fn key_stats(&self) -> Result<Option<KeyStats>, InboxError> {
        self.run(|connection, _| {
            let (waiting, held): (i64, i64) = connection.query_row(
                "SELECT count(*) FILTER (WHERE pending > in_flight), count(*) FILTER (WHERE held > 0) FROM (
                     SELECT count(*) AS pending, max(in_flight) AS in_flight,
                            sum(state = 'retrying' AND releases = 0) AS held
                     FROM hookroute_inbox WHERE order_key IS NOT NULL AND state IN ('queued', 'retrying', 'running')
                     GROUP BY order_key)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            Ok(Some(KeyStats { waiting: waiting.unsigned_abs(), held_by_retry: held.unsigned_abs() }))
        })
        .await
    }
}

#[async_trait::async_trait]
impl InboxAdmin for SqliteInbox {
    async fn list(&self, state: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |connection, now| {
            let sql = format!(
                "SELECT {COLUMNS} FROM hookroute_inbox WHERE state = ?1 AND (state != 'done' OR due_at > ?2)
                 ORDER BY updated_at, seq LIMIT ?3"
            );
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(params![state.as_str(), now, limit], read)?;
            rows.collect()
        })
        .await
    }

    async fn search(&self, filter: &Filter, after: Option<&Cursor>, limit: usize) -> Result<Page, InboxError> {
        let (sql, values) = search_sql(&format!("SELECT {COLUMNS}"), filter, after, Some(limit));
        let found = self
            .run(move |connection, now| {
                let mut statement = connection.prepare(&sql)?;
                let rows = statement.query_map(params_from_iter(bound(now, values)), read)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        Ok(Page::of(found, limit))
    }

    async fn count(&self, filter: &Filter) -> Result<u64, InboxError> {
        let (sql, values) = search_sql("SELECT count(*)", filter, None, None);
        let count: i64 = self
            .run(move |connection, now| {
                connection.query_row(&sql, params_from_iter(bound(now, values)), |row| row.get(0))
            })
            .await?;
        Ok(count.unsigned_abs())
    }

    async fn pause(&self, event_type: &str) -> Result<bool, InboxError> {
        let event_type = event_type.to_owned();
        self.run(move |connection, _| {
            connection.execute("INSERT OR IGNORE INTO hookroute_inbox_paused (event_type) VALUES (?1)", [&event_type])
        })
        .await
        .map(|inserted| inserted == 1)
    }

    async fn resume(&self, event_type: &str) -> Result<bool, InboxError> {
        let event_type = event_type.to_owned();
        self.run(move |connection, _| {
            connection.execute("DELETE FROM hookroute_inbox_paused WHERE event_type = ?1", [&event_type])
        })
        .await
        .map(|deleted| deleted == 1)
    }

    async fn paused(&self) -> Result<Vec<String>, InboxError> {
        self.run(|connection, _| {
            let mut statement = connection.prepare("SELECT event_type FROM hookroute_inbox_paused ORDER BY 1")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
        let key = key.to_owned();
        self.run(move |connection, _| {
            let sql = format!("SELECT {COLUMNS} FROM hookroute_inbox WHERE key = ?1");
            connection.query_row(&sql, [key], read).optional()
        })
        .await
    }

    async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
        let rows: Vec<(String, String, i64)> = self
            .run(|connection, _| {
                let mut statement = connection.prepare(
                    "SELECT event_type, state, count(*) FROM hookroute_inbox
                     WHERE state IN ('queued', 'running', 'retrying', 'dead') GROUP BY 1, 2",
                )?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                rows.collect()
            })
            .await?;
        TypeCounts::from_named_rows(rows)
    }

    async fn activity(
        &self,
        start: SystemTime,
        period: Duration,
        periods: usize,
    ) -> Result<Option<Activity>, InboxError> {
        let mut activity = Activity::new(start, period, periods);
        let (from, period_ms, until) = activity.span_ms();
        let (done, histories): (Vec<(i64, i64)>, Vec<String>) = self
            .run(move |connection, _| {
                let mut statement = connection.prepare(
                    "SELECT (updated_at - ?1) / ?3, count(*) FROM hookroute_inbox
                     WHERE state = 'done' AND updated_at >= ?1 AND updated_at < ?2 GROUP BY 1",
                )?;
                let done =
                    statement.query_map(params![from, until, period_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
                let done = done.collect::<rusqlite::Result<_>>()?;
                let mut statement = connection
                    .prepare("SELECT history FROM hookroute_inbox WHERE history IS NOT NULL AND updated_at >= ?1")?;
                let histories = statement.query_map([from], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
                Ok((done, histories))
            })
            .await?;
        for (period, count) in done {
            activity.add_done(from + period * period_ms, count.unsigned_abs());
        }
        for history in &histories {
            activity.add_history(history);
        }
        Ok(Some(activity))
    }

    async fn history(&self, key: &str) -> Result<Option<History>, InboxError> {
        let key = key.to_owned();
        let found: Option<(Option<String>, i64)> = self
            .run(move |connection, _| {
                connection
                    .query_row("SELECT history, updated_at FROM hookroute_inbox WHERE key = ?1", [key], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
            })
            .await?;
        Ok(Some(found.map_or_else(History::default, |(text, changed)| {
            HistoryLine::read(text.as_deref().unwrap_or_default(), Some(changed))
        })))
    }

    async fn list_key(&self, order_key: &str, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let (order_key, limit) = (order_key.to_owned(), i64::try_from(limit).unwrap_or(i64::MAX));
        self.run(move |connection, _| {
            let sql = format!(
                "SELECT {COLUMNS} FROM hookroute_inbox WHERE order_key = ?1
                   AND state IN ('queued', 'retrying', 'running') ORDER BY created_ms, seq LIMIT ?2"
            );
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(params![order_key, limit], read)?;
            rows.collect()
        })
        .await
    }

    async fn replay(&self, key: &str) -> Result<bool, InboxError> {
        let key = key.to_owned();
        self.run(move |connection, now| {
            let updated = connection.execute(
                "UPDATE hookroute_inbox SET state = 'queued', attempts = 0, token = NULL, due_at = ?2, updated_at = ?2,
                     history = coalesce(history, '') || json_object('replayed', attempts, 'at', ?2, 'from', state) || char(10)
                 WHERE key = ?1 AND state IN ('dead', 'retrying', 'queued', 'done')",
                params![key, now],
            )?;
            Ok(updated == 1)
        })
        .await
    }

    async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError> {
        let older_than = millis(older_than).min(i64::MAX / 2);
        let older_than = if older_than <= 1 { 0 } else { older_than };
        self.run(move |connection, now| {
            let deleted = connection.execute(
                "DELETE FROM hookroute_inbox WHERE state = 'done' AND (updated_at <= ?1 OR due_at <= ?2)",
                params![now - older_than, now],
            )?;
            Ok(deleted as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{next_allowed, SCHEMA};

    /// A take reads one entry of the due index, whatever the number waiting: no scan
    /// of the state index, no sort.
    #[test]
    fn a_take_finds_the_next_due_record_through_its_index() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {}", next_allowed().replace("?3", "0"));
        let mut statement = connection.prepare(&explain).unwrap();
        let plan: Vec<String> = statement.query_map([], |row| row.get(3)).unwrap().map(Result::unwrap).collect();
        assert_eq!(plan[0], "SEARCH r USING INDEX hookroute_inbox_due (due_at<?)", "{plan:?}");
        assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "{plan:?}");
    }
}
