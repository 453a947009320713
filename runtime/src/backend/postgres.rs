//! PostgreSQL: a pool of connections every wait of which is bounded, TLS as the URL
//! asks, migrations under an advisory lock, and the sweeper of expired rows.

use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::within;
use crate::store::error::StoreError;

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
    pub(crate) async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
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

/// TLS to PostgreSQL (`sslmode=require`): the server's certificate is verified against
/// the system's roots (and `SSL_CERT_FILE`), or the `sslrootcert` file.
#[cfg(feature = "postgres-tls")]
mod tls {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;

    use crate::store::error::StoreError;

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
    use crate::store::error::StoreError;

    pub(super) fn connector(_root_cert: Option<&str>) -> Result<tokio_postgres::NoTls, StoreError> {
        Err(StoreError::InvalidConfig(
            "`sslmode=require` needs hookroute's `postgres-tls` feature, which this build lacks".to_owned(),
        ))
    }
}

/// Sets up a PostgreSQL store or inbox: [`PostgresStoreBuilder`](crate::store::PostgresStoreBuilder)
/// (from [`PostgresStore::builder`](crate::store::PostgresStore::builder)) and
/// [`PostgresInboxBuilder`](crate::inbox::PostgresInboxBuilder) (from
/// [`PostgresInbox::builder`](crate::inbox::PostgresInbox::builder)) are this type, so
/// a database's settings are named and checked once for both.
pub struct PostgresBuilder<T> {
    pub(crate) url: String,
    pub(crate) table: String,
    pub(crate) timeout: Duration,
    pub(crate) pool_size: usize,
    pub(crate) sweep_every: Option<Duration>,
    /// Open only a table that exists (an inbox for operators' tools).
    pub(crate) existing: bool,
    of: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for PostgresBuilder<T> {
    fn clone(&self) -> Self {
        Self { url: self.url.clone(), table: self.table.clone(), of: std::marker::PhantomData, ..*self }
    }
}

impl<T> std::fmt::Debug for PostgresBuilder<T> {
    // The URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBuilder")
            .field("table", &self.table)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("sweep_every", &self.sweep_every)
            .finish_non_exhaustive()
    }
}

impl<T> PostgresBuilder<T> {
    /// The defaults: `table`, [`DEFAULT_STORE_TIMEOUT`](crate::store::DEFAULT_STORE_TIMEOUT),
    /// a pool of 16, a sweep every five minutes.
    pub(crate) fn new(url: String, table: &str) -> Self {
        Self {
            url,
            table: table.to_owned(),
            timeout: super::DEFAULT_STORE_TIMEOUT,
            pool_size: 16,
            sweep_every: Some(Duration::from_secs(300)),
            existing: false,
            of: std::marker::PhantomData,
        }
    }

    /// The table to keep records in: a plain identifier (letters, digits, `_`), at most
    /// 48 characters. `hookroute_events` for a store and `hookroute_inbox` for an inbox
    /// by default.
    #[must_use]
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How long to wait for a connection or for one statement before giving up:
    /// [`DEFAULT_STORE_TIMEOUT`](crate::store::DEFAULT_STORE_TIMEOUT) by default. An
    /// inbox insert that does not commit within it is answered 503.
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

    /// How often a background task deletes expired rows (done events past their TTL,
    /// claims past their lease), or `None` for never (then call the store's
    /// [`purge_expired`](crate::store::PostgresStore::purge_expired) yourself). Every five
    /// minutes by default.
    #[must_use]
    pub fn sweep_every(mut self, every: Option<Duration>) -> Self {
        self.sweep_every = every;
        self
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
