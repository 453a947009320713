//! A store in PostgreSQL, shared by every replica that points at the same database.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    connect_error, fresh_token, held_if_one_row, millis, within, Claim, ClaimToken, IdempotencyStore, StoreError,
    DEFAULT_STORE_TIMEOUT,
};

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
/// ([`DEFAULT_STORE_TIMEOUT`] unless set), so an outage makes the receiver answer 503.
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
#[derive(Clone)]
pub struct PostgresStoreBuilder {
    url: String,
    table: String,
    timeout: Duration,
    pool_size: usize,
    sweep_every: Option<Duration>,
}

impl fmt::Debug for PostgresStoreBuilder {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("sweep_every", &self.sweep_every)
            .finish_non_exhaustive()
    }
}

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
        PostgresStoreBuilder {
            url: url.into(),
            table: DEFAULT_TABLE.to_owned(),
            timeout: DEFAULT_STORE_TIMEOUT,
            pool_size: 16,
            sweep_every: Some(Duration::from_secs(300)),
        }
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

/// A pool of connections to one database, every wait bounded by `timeout`: what the
/// store and the inbox share.
pub(crate) struct Database {
    pub(crate) pool: Pool,
    pub(crate) timeout: Duration,
}

impl Database {
    /// A pool for the database at `url`, and where it points (without the password),
    /// for error messages. Connects lazily.
    pub(crate) fn new(url: &str, timeout: Duration, pool_size: usize) -> Result<(Self, String), StoreError> {
        Self::with_options(url, timeout, pool_size, None)
    }

    /// As [`new`](Self::new), each session started with `-c <setting>`s (`options`).
    pub(crate) fn with_options(
        url: &str,
        timeout: Duration,
        pool_size: usize,
        options: Option<&str>,
    ) -> Result<(Self, String), StoreError> {
        super::Location::of(url).plain_postgres()?;
        refuse_prefer(url)?;
        // libpq's `sslrootcert`, which the driver does not read: the CA file to trust.
        let (url, root_cert) = super::take_param(url, "sslrootcert");
        let mut config: tokio_postgres::Config = url.parse().map_err(|err| StoreError::Connect {
            store: "PostgreSQL",
            target: "the configured URL".to_owned(),
            source: Box::new(err),
        })?;
        let target = describe(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        if let Some(options) = options {
            let given = config.get_options().map(|given| format!("{given} ")).unwrap_or_default();
            config.options(format!("{given}{options}"));
        }
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            Manager::from_config(config, tls::connector(root_cert.as_deref())?, recycling)
        } else if root_cert.is_some() {
            return Err(StoreError::InvalidConfig(
                "`sslrootcert` is read with `sslmode=require`; add it to the URL".to_owned(),
            ));
        } else {
            Manager::from_config(config, NoTls, recycling)
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|err| StoreError::InvalidConfig(err.to_string()))?;
        Ok((Self { pool, timeout }, target))
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        within(self.timeout, "PostgreSQL", self.pool.get()).await
    }

    /// Runs a statement, prepared once per connection, within the deadline.
    pub(crate) async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        within(self.timeout, "PostgreSQL", async {
            let statement = client.prepare_cached(sql).await?;
            client.execute(&statement, params).await
        })
        .await
    }

    /// Runs a query, prepared once per connection, within the deadline.
    pub(crate) async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        within(self.timeout, "PostgreSQL", async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        })
        .await
    }

    /// Runs a query that answers one row, prepared once per connection, within the deadline.
    async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
        let client = self.client().await?;
        within(self.timeout, "PostgreSQL", async {
            let statement = client.prepare_cached(sql).await?;
            client.query_one(&statement, params).await
        })
        .await
    }

    /// Runs a migration batch (one transaction) within the deadline. The server's
    /// notices (`relation ... already exists, skipping`, at every start) are not sent:
    /// the driver would log each one at INFO.
    pub(crate) async fn migrate(&self, batch: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let quiet = format!("SET client_min_messages = warning; {batch}");
        within(self.timeout, "PostgreSQL", client.batch_execute(&quiet)).await
    }
}

/// `sslmode=prefer` written in the URL: libpq tries TLS first, but the driver here
/// would connect in plain text without a word. Refused, saying what to write instead.
fn refuse_prefer(url: &str) -> Result<(), StoreError> {
    let prefer = url.split(['?', '&', ' ']).any(|part| part.trim().eq_ignore_ascii_case("sslmode=prefer"));
    if prefer {
        return Err(StoreError::InvalidConfig(
            "`sslmode=prefer` would connect in plain text here, without a word (libpq tries TLS first; this driver does not): write \
             `sslmode=require` for TLS (feature `postgres-tls`, `sslrootcert=` for a private CA), or \
             `sslmode=disable` for plain text on a trusted network"
                .to_owned(),
        ));
    }
    Ok(())
}

/// A table name must be a plain identifier: it is written into the statements.
pub(crate) fn check_table(table: &str) -> Result<(), StoreError> {
    if is_identifier(table) {
        Ok(())
    } else {
        Err(StoreError::InvalidConfig(format!(
            "table name `{table}` is not a plain identifier (letters, digits and `_`, at most 48)"
        )))
    }
}

impl PostgresStoreBuilder {
    /// The table to keep records in: a plain identifier (letters, digits, `_`), at most
    /// 48 characters. `hookroute_events` by default.
    #[must_use]
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How long to wait for a connection or for one statement before giving up:
    /// [`DEFAULT_STORE_TIMEOUT`] by default.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many connections the pool may open: 16 by default.
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How often the background task deletes expired rows, or `None` for never (call
    /// [`PostgresStore::purge_expired`] yourself). Every five minutes by default.
    #[must_use]
    pub fn sweep_every(mut self, every: Option<Duration>) -> Self {
        self.sweep_every = every;
        self
    }

    /// Connects, creates the table if it is missing, and starts the sweeper.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        let Self { url, table, timeout, pool_size, sweep_every } = self;
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

/// Deletes expired rows every `every` while the store lives.
/// Calls `sweep` with `owner` every `every`, from one `every` after now, for as long
/// as `owner` lives: the background task of a table whose expired rows must go.
pub(crate) async fn sweep_while_alive<T, F, Fut>(owner: Weak<T>, every: Duration, sweep: F)
where
    F: Fn(Arc<T>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(owner) = owner.upgrade() else { return };
        sweep(owner).await;
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 48
}

/// Where the config points, without user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
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

/// TLS to PostgreSQL (`sslmode=require`): the server's certificate is verified against
/// the system's roots (and `SSL_CERT_FILE`), or the `sslrootcert` file.
#[cfg(feature = "postgres-tls")]
mod tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;

    use crate::store::StoreError;

    pub(super) fn connector(root_cert: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
        let invalid = |what: String| StoreError::InvalidConfig(what);
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = root_cert {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|err| invalid(format!("cannot read the certificates in sslrootcert {path}: {err}")))?;
            let (added, _ignored) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(invalid(format!("sslrootcert {path} holds no certificate")));
            }
        } else {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|err| invalid(format!("TLS: {err}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// Without the `postgres-tls` feature, a URL that requires TLS is refused.
#[cfg(not(feature = "postgres-tls"))]
mod tls {
    use crate::store::StoreError;

    pub(super) fn connector(_root_cert: Option<&str>) -> Result<tokio_postgres::NoTls, StoreError> {
        Err(StoreError::InvalidConfig(
            "`sslmode=require` needs hookroute's `postgres-tls` feature, which this build lacks".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_prefer_is_refused_with_what_to_write() {
        for url in
            ["postgres://app@db/x?sslmode=prefer", "postgres://app@db/x?a=1&sslmode=PREFER", "host=db sslmode=prefer"]
        {
            let error = Database::new(url, Duration::from_secs(1), 1).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("sslmode=require"), "{url}: {error}");
        }
        assert!(Database::new("postgres://app@db/x?sslmode=disable", Duration::from_secs(1), 1).is_ok());
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(is_identifier("hookroute_events"));
        assert!(is_identifier("_t1"));
        for bad in ["", "1t", "events; DROP TABLE x", "a.b", "\"q\"", "é", &"t".repeat(49)] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_target_never_shows_the_password() {
        let config: tokio_postgres::Config = "postgres://app:hunter2@db.internal:6543/events".parse().unwrap();
        assert_eq!(describe(&config), "db.internal:6543/events");
        let config: tokio_postgres::Config = "host=/run/pg user=app password=hunter2 dbname=x".parse().unwrap();
        assert_eq!(describe(&config), "/run/pg:5432/x");
    }
}
