//! A store in PostgreSQL, shared by every replica that points at the same database.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{fresh_token, held_if_one_row, Claim, ClaimToken, IdempotencyStore, StoreError};
use crate::backend::postgres::{check_table, sweep_while_alive, Database, PostgresBuilder};
use crate::backend::{connect_error, millis};

/// The table a [`PostgresStore`] keeps its records in unless told otherwise.
pub const DEFAULT_TABLE: &str = "hookroute_events";

/// A key of PostgreSQL's advisory locks, so replicas starting together migrate in turn.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_726f_7574; // "hookrout"

/// An idempotency store in PostgreSQL, for receivers on several replicas.
///
/// One table (`hookroute_events` unless set) holds one row per event: its claim token,
/// whether it is done, and when the row expires (the lease, then the TTL). The store
/// creates the table itself, idempotently and under an advisory lock, when it connects.
///
/// - **claim** is one statement: `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
///   expires_at <= now() RETURNING`, so the first caller, or the first after the lease
///   or TTL ran out, wins; the database's clock decides, the same for every replica.
///   A key that is live (done, or claimed) is answered without writing.
/// - **complete** and **release** update or delete the row only `WHERE token = $token`,
///   so a claimant whose lease ran out cannot touch the claim that replaced it.
/// - Expired rows are deleted by a background task every [`sweep_every`] (five
///   minutes by default) while the store lives, or by [`purge_expired`].
///
/// Connections come from a pool (16 unless set); every operation has a deadline
/// ([`DEFAULT_STORE_TIMEOUT`](super::DEFAULT_STORE_TIMEOUT) unless set), so an outage makes the receiver answer 503.
///
/// ```no_run
/// use hookroute_runtime::store::PostgresStore;
///
/// # async fn run() -> Result<(), hookroute_runtime::store::StoreError> {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1:5432/app").await?;
/// # Ok(()) }
/// ```
///
/// [`sweep_every`]: PostgresStoreBuilder::sweep_every
/// [`purge_expired`]: PostgresStore::purge_expired
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    table: String,
    claim: String,
    complete: String,
    release: String,
    purge: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.table)
            .field("timeout", &self.inner.db.timeout)
            .field("pool", &self.inner.db.pool.status())
            .finish_non_exhaustive()
    }
}

/// Sets up a [`PostgresStore`]; from [`PostgresStore::builder`].
pub type PostgresStoreBuilder = PostgresBuilder<PostgresStore>;

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`
    /// or `host=... user=...`) with the default settings, creating the table if needed.
    ///
    /// Fails with [`StoreError::Connect`] if the URL is invalid or the server does not
    /// answer within the timeout.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store for the database at `url`.
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresBuilder::new(url.into(), DEFAULT_TABLE)
    }

    /// Deletes every expired row (done events past their TTL, claims past their lease)
    /// and answers how many there were.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.inner.purge_expired().await
    }
}

impl Inner {
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.db.execute(&self.purge, &[]).await
    }
}

impl PostgresStoreBuilder {
    /// Connects, creates the table if it is missing, and starts the sweeper.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let PostgresBuilder { url, table, timeout, pool_size, sweep_every, .. } = self;
        check_table(&table)?;
        let (db, target) = Database::new(&url, timeout, pool_size)?;
        let failed = |err: StoreError| connect_error("PostgreSQL", target.clone(), err);
        let inner = Arc::new(Inner {
            db,
            // A live row (done or in flight) is answered from the snapshot without
            // writing, so a duplicate costs a read, not a locked row and a WAL flush.
            // Otherwise the upsert decides, atomically: a row that appeared since the
            // snapshot is taken over only if it has expired.
            claim: format!(
                "WITH current AS (
                   SELECT done FROM {table} WHERE key = $1 AND expires_at > now()
                 ), claimed AS (
                   INSERT INTO {table} (key, token, done, expires_at)
                   SELECT $1, $2, false, now() + $3::bigint * interval '1 millisecond'
                   WHERE NOT EXISTS (SELECT 1 FROM current)
                   ON CONFLICT (key) DO UPDATE
                     SET token = excluded.token, done = false, expires_at = excluded.expires_at
                     WHERE {table}.expires_at <= now()
                   RETURNING 1
                 )
                 SELECT EXISTS (SELECT 1 FROM claimed), (SELECT done FROM current)"
            ),
            complete: format!(
                "UPDATE {table} SET done = true, expires_at = now() + $3::bigint * interval '1 millisecond'
                 WHERE key = $1 AND token = $2 AND NOT done"
            ),
            release: format!("DELETE FROM {table} WHERE key = $1 AND token = $2 AND NOT done"),
            purge: format!("DELETE FROM {table} WHERE expires_at <= now()"),
            table,
        });
        let migration = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS {table} (
               key text PRIMARY KEY,
               token text NOT NULL,
               done boolean NOT NULL,
               expires_at timestamptz NOT NULL
             );
             CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at);
             COMMIT;",
            table = inner.table
        );
        inner.db.migrate(&migration).await.map_err(failed)?;
        if let Some(every) = sweep_every {
            tokio::spawn(sweep_while_alive(Arc::downgrade(&inner), every, |inner| async move {
                match inner.purge_expired().await {
                    Ok(purged) => tracing::debug!(purged, table = %inner.table, "expired idempotency records deleted"),
                    Err(err) => {
                        tracing::warn!(error = %err, table = %inner.table, "could not delete expired idempotency records");
                    }
                }
            }));
        }
        Ok(PostgresStore { inner })
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = fresh_token()?;
        let row = self.inner.db.query_one(&self.inner.claim, &[&key, &token.as_str(), &millis(lease)]).await?;
        let acquired: bool = row.try_get(0).map_err(|err| StoreError::Unavailable(Box::new(err)))?;
        let done: Option<bool> = row.try_get(1).map_err(|err| StoreError::Unavailable(Box::new(err)))?;
        Ok(match (acquired, done) {
            (true, _) => Claim::Acquired(token),
            (false, Some(true)) => Claim::Done,
            // Held by a live claim, or claimed by a statement that committed after this
            // one began (so its row is not visible here): in flight either way.
            (false, _) => Claim::InFlight,
        })
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let updated = self.inner.db.execute(&self.inner.complete, &[&key, &token.as_str(), &millis(ttl)]).await?;
        held_if_one_row(key, updated == 1)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let deleted = self.inner.db.execute(&self.inner.release, &[&key, &token.as_str()]).await?;
        held_if_one_row(key, deleted == 1)
    }
}
