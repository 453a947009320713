//! A durable store in one SQLite file, for a single node.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{fresh_token, held_if_one_row, Claim, ClaimToken, IdempotencyStore, StoreError};
use crate::backend::millis;
use crate::backend::sqlite::SqliteFile;

/// Expired rows are deleted once every this many claims.
const SWEEP_EVERY: u32 = 1024;

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS hookroute_events (
        key TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        done INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS hookroute_events_expires_at ON hookroute_events (expires_at);
";

/// An idempotency store in a SQLite file: durable, embedded, for one node.
///
/// What was done survives a restart (unlike [`MemoryStore`](super::MemoryStore)), with
/// no server to run. The file is in WAL mode; each claim is one `IMMEDIATE`
/// transaction, so it stays atomic even when two processes open the same file (a
/// restart that overlaps the old process, say). Work runs on Tokio's blocking pool.
/// Times come from this machine's clock, which is why it is for a single node: replicas
/// on several machines want [`RedisStore`](super::RedisStore) or
/// [`PostgresStore`](super::PostgresStore).
///
/// Expired rows are deleted every 1,024 claims and by [`purge_expired`](Self::purge_expired).
///
/// ```
/// use hookroute_runtime::store::SqliteStore;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("hookroute-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::open(dir.join("events.db")).await?;
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), hookroute_runtime::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    file: Arc<SqliteFile>,
    claims: Arc<AtomicU32>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.file.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` and its table.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let file = SqliteFile::open(path.as_ref(), SCHEMA).await?;
        Ok(Self { file: Arc::new(file), claims: Arc::new(AtomicU32::new(0)) })
    }

    /// Deletes every expired row and answers how many there were.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.run(|connection| purge(connection, now_millis())).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        SqliteFile::run(&self.file, work).await
    }
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
}

fn purge(connection: &Connection, now: i64) -> rusqlite::Result<u64> {
    let deleted = connection.execute("DELETE FROM hookroute_events WHERE expires_at <= ?1", params![now])?;
    Ok(deleted as u64)
}

#[async_trait::async_trait]
impl IdempotencyStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = fresh_token()?;
        let key = key.to_owned();
        let sweep = self.claims.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1;
        self.run(move |connection| {
            let now = now_millis();
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<(bool, i64)> = transaction
                .query_row("SELECT done, expires_at FROM hookroute_events WHERE key = ?1", params![key], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let claim = match current {
                Some((true, expires_at)) if expires_at > now => Claim::Done,
                Some((false, expires_at)) if expires_at > now => Claim::InFlight,
                _ => {
                    transaction.execute(
                        "INSERT OR REPLACE INTO hookroute_events (key, token, done, expires_at) VALUES (?1, ?2, 0, ?3)",
                        params![key, token.as_str(), now.saturating_add(millis(lease))],
                    )?;
                    Claim::Acquired(token)
                }
            };
            if sweep {
                purge(&transaction, now)?;
            }
            transaction.commit()?;
            Ok(claim)
        })
        .await
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let (owned_key, token) = (key.to_owned(), token.clone());
        let updated = self
            .run(move |connection| {
                connection.execute(
                    "UPDATE hookroute_events SET done = 1, expires_at = ?3 WHERE key = ?1 AND token = ?2 AND done = 0",
                    params![owned_key, token.as_str(), now_millis().saturating_add(millis(ttl))],
                )
            })
            .await?;
        held_if_one_row(key, updated == 1)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let (owned_key, token) = (key.to_owned(), token.clone());
        let deleted = self
            .run(move |connection| {
                connection.execute(
                    "DELETE FROM hookroute_events WHERE key = ?1 AND token = ?2 AND done = 0",
                    params![owned_key, token.as_str()],
                )
            })
            .await?;
        held_if_one_row(key, deleted == 1)
    }
}
