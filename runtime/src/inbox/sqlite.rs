//! An inbox in one SQLite file, for a single node.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    from_unix_millis, lease_token, unix_millis, DeliveryState, Enqueued, Inbox, InboxError, InboxStats, Lease, Leased,
    NewDelivery, StoredDelivery,
};
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
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS hookroute_inbox_due ON hookroute_inbox (due_at, seq)
        WHERE state IN ('queued', 'retrying', 'running');
    CREATE INDEX IF NOT EXISTS hookroute_inbox_state ON hookroute_inbox (state, updated_at);
    CREATE TABLE IF NOT EXISTS hookroute_inbox_owner (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        namespace TEXT NOT NULL
    );
";

const COLUMNS: &str = "key, event_id, event_type, headers, body, signed_at, state, attempts, last_error, received_at";

/// The record due longest, `?3` being now. INDEXED BY: left to itself, the planner
/// picked the state index and sorted every waiting record on each take (a drain ran
/// at 219 deliveries/s with 20,000 waiting).
const NEXT_DUE: &str = "SELECT seq FROM hookroute_inbox INDEXED BY hookroute_inbox_due
    WHERE state IN ('queued', 'retrying', 'running') AND due_at <= ?3
    ORDER BY due_at, seq LIMIT 1";

/// Done records past their TTL are swept once every this many enqueues.
const SWEEP_EVERY: u64 = 1024;

/// An inbox in a SQLite file: durable, embedded, for one node.
///
/// The file is in WAL mode. An insert commits with `synchronous = FULL`, so a
/// delivery answered `202` is on disk; leases, retries and done marks commit with
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
}

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox").field("path", &self.file.path).finish_non_exhaustive()
    }
}

impl SqliteInbox {
    /// Opens (or creates) the inbox file at `path` and its table.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        let file = SqliteFile::open(path.as_ref(), SCHEMA).await?;
        Ok(Self { file: Arc::new(file), enqueued: Arc::new(AtomicU64::new(0)) })
    }

    /// Runs `work` with the connection and the time now, on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, i64) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, InboxError> {
        Ok(SqliteFile::run(&self.file, move |connection| work(connection, unix_millis(SystemTime::now()))).await?)
    }

    /// Runs an update `WHERE key = ?1 AND token = ?2 AND state = 'running'` with the
    /// time `at(now)` as `?3`, now as `?4` and the error, if any, as `?5`; fails with
    /// `ClaimLost` when it touched nothing.
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
                connection.execute(sql, params_from_iter(values))
            })
            .await?;
        if updated == 1 {
            Ok(())
        } else {
            Err(InboxError::ClaimLost { key: lease.key().to_owned() })
        }
    }
}

/// The insert-if-absent of `enqueue`, in one `IMMEDIATE` transaction; answers the rows
/// inserted.
fn insert(
    connection: &mut rusqlite::Connection,
    sweep: bool,
    now: i64,
    new: &NewDelivery<'_>,
) -> rusqlite::Result<usize> {
    let signed_at = new.signed_at.and_then(|at| i64::try_from(at).ok());
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if sweep {
        transaction.execute("DELETE FROM hookroute_inbox WHERE state = 'done' AND due_at <= ?1", [now])?;
    }
    // A done record past its TTL is forgotten: the key is new again.
    transaction.execute(
        "DELETE FROM hookroute_inbox WHERE key = ?1 AND state = 'done' AND due_at <= ?2",
        params![new.key, now],
    )?;
    let inserted = transaction.execute(
        "INSERT INTO hookroute_inbox (key, event_id, event_type, headers, body, signed_at, state, attempts,
             due_at, received_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7, ?7)
         ON CONFLICT (key) DO NOTHING",
        params![new.key, new.id, new.event_type, new.headers, new.body, signed_at, now],
    )?;
    transaction.commit()?;
    Ok(inserted)
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
    })
}

#[async_trait::async_trait]
impl Inbox for SqliteInbox {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        let key = delivery.key.to_owned();
        let (id, event_type) = (delivery.id.to_owned(), delivery.event_type.to_owned());
        let (headers, body) = (delivery.headers.to_owned(), delivery.body.to_owned());
        let signed_at = delivery.signed_at;
        let sweep = self.enqueued.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0;
        self.run(move |connection, now| {
            // The insert is what the provider's 2xx promises: synced to disk before the
            // answer. Leases and marks are not (see the type's docs).
            connection.execute_batch("PRAGMA synchronous = FULL")?;
            let delivery =
                NewDelivery { key: &key, id: &id, event_type: &event_type, headers: &headers, body: &body, signed_at };
            let inserted = insert(connection, sweep, now, &delivery);
            connection.execute_batch("PRAGMA synchronous = NORMAL")?;
            let inserted = inserted?;
            Ok(if inserted == 1 { Enqueued::Queued } else { Enqueued::Duplicate })
        })
        .await
    }

    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        let token = lease_token();
        let lease = millis(lease);
        self.run(move |connection, now| {
            let sql = format!(
                "UPDATE hookroute_inbox SET state = 'running', attempts = attempts + 1, token = ?1, due_at = ?2,
                     updated_at = ?3
                 WHERE seq = ({NEXT_DUE})
                 RETURNING {COLUMNS}"
            );
            let delivery =
                connection.query_row(&sql, params![token, now.saturating_add(lease), now], read).optional()?;
            Ok(delivery.map(|delivery| Leased { lease: Lease::new(delivery.key.clone(), token), delivery }))
        })
        .await
    }

    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        let duration = millis(duration);
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET due_at = ?3, updated_at = ?4 WHERE key = ?1 AND token = ?2
                 AND state = 'running'",
            move |now| now.saturating_add(duration),
            None,
        )
        .await
    }

    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        let ttl = millis(ttl);
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET state = 'done', token = NULL, due_at = ?3, updated_at = ?4
             WHERE key = ?1 AND token = ?2 AND state = 'running'",
            move |now| now.saturating_add(ttl),
            None,
        )
        .await
    }

    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        let delay = millis(delay);
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET state = 'retrying', token = NULL, due_at = ?3, updated_at = ?4,
                 last_error = ?5
             WHERE key = ?1 AND token = ?2 AND state = 'running'",
            move |now| now.saturating_add(delay),
            Some(error),
        )
        .await
    }

    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        self.settle(
            lease,
            "UPDATE hookroute_inbox SET state = 'dead', token = NULL, due_at = ?3, updated_at = ?4, last_error = ?5
             WHERE key = ?1 AND token = ?2 AND state = 'running'",
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
             WHERE key = ?1 AND token = ?2 AND state = 'running'",
            |now| now,
            None,
        )
        .await
    }

    async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.run(|connection, now| {
            let mut stats = InboxStats::default();
            let mut counts = connection.prepare(
                "SELECT state, count(*) FROM hookroute_inbox WHERE state != 'done' OR due_at > ?1 GROUP BY state",
            )?;
            let rows = counts.query_map([now], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
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

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
        let key = key.to_owned();
        self.run(move |connection, _| {
            let sql = format!("SELECT {COLUMNS} FROM hookroute_inbox WHERE key = ?1");
            connection.query_row(&sql, [key], read).optional()
        })
        .await
    }

    async fn replay(&self, key: &str) -> Result<bool, InboxError> {
        let key = key.to_owned();
        self.run(move |connection, now| {
            let updated = connection.execute(
                "UPDATE hookroute_inbox SET state = 'queued', attempts = 0, token = NULL, due_at = ?2, updated_at = ?2
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
    use super::{NEXT_DUE, SCHEMA};

    /// A take reads one entry of the due index, whatever the number waiting: no scan
    /// of the state index, no sort.
    #[test]
    fn a_take_finds_the_next_due_record_through_its_index() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {}", NEXT_DUE.replace("?3", "0"));
        let mut statement = connection.prepare(&explain).unwrap();
        let plan: Vec<String> = statement.query_map([], |row| row.get(3)).unwrap().map(Result::unwrap).collect();
        assert_eq!(plan, ["SEARCH hookroute_inbox USING INDEX hookroute_inbox_due (due_at<?)"], "{plan:?}");
    }
}
