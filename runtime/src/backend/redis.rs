//! Redis: a connection manager that reconnects, bounded by a deadline, to a server
//! checked at connect (an evicting one is refused).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo as _};

use super::{connect_error, within};
use crate::store::error::StoreError;

/// A connection to the server at `url` that reconnects after an outage, with every
/// wait bounded by `timeout`, and where it points (without the password). A server
/// whose `maxmemory-policy` evicts keys is refused unless `allow_eviction`.
pub(crate) async fn connection(
    url: &str,
    timeout: Duration,
    allow_eviction: bool,
) -> Result<(ConnectionManager, String), StoreError> {
    if cfg!(not(feature = "redis-tls")) && url.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss:")) {
        return Err(StoreError::InvalidConfig(
            "a `rediss://` URL (TLS) needs hookroute's `redis-tls` feature, which this build lacks".to_owned(),
        ));
    }
    let invalid = |err: redis::RedisError| StoreError::Connect {
        store: "Redis",
        target: "the configured URL".to_owned(),
        source: Box::new(err),
    };
    // `TCP_NODELAY`, as node-redis, go-redis and Jedis set it: the redis crate leaves
    // Nagle's algorithm on, under which a command written while an earlier one awaits
    // its answer may wait for that answer's ACK. (No change measured on loopback.)
    let info = url.into_connection_info().map_err(invalid)?;
    let info = info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = Client::open(info).map_err(invalid)?;
    let target = client.get_connection_info().addr().to_string();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(200));
    let mut connection = within(timeout, "Redis", ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|err| connect_error("Redis", target.clone(), err))?;
    if !allow_eviction {
        check_eviction(&mut connection, &target, timeout).await?;
    }
    Ok((connection, target))
}

/// Refuses a server that may evict keys, where it lets us ask (managed services often
/// disable `CONFIG`; then nothing can be known, and the documentation has to do).
async fn check_eviction(connection: &mut ConnectionManager, target: &str, timeout: Duration) -> Result<(), StoreError> {
    let mut command = redis::cmd("CONFIG");
    command.arg("GET").arg("maxmemory-policy");
    let Ok(answer) = within::<Vec<String>, _>(timeout, "Redis", command.query_async(connection)).await else {
        tracing::debug!(target = %target, "cannot read Redis's maxmemory-policy; make sure it is noeviction");
        return Ok(());
    };
    match answer.get(1).map(String::as_str) {
        None | Some("noeviction") => Ok(()),
        Some(policy) => Err(StoreError::InvalidConfig(format!(
            "Redis at {target} evicts keys when full (maxmemory-policy {policy}): an evicted done mark or queued \
             delivery is lost silently. Set `maxmemory-policy noeviction`, or call `.allow_eviction()` to accept it"
        ))),
    }
}

/// Sets up a Redis store or inbox: [`RedisStoreBuilder`](crate::store::RedisStoreBuilder)
/// (from [`RedisStore::builder`](crate::store::RedisStore::builder)) and
/// [`RedisInboxBuilder`](crate::inbox::RedisInboxBuilder) (from
/// [`RedisInbox::builder`](crate::inbox::RedisInbox::builder)) are this type, so a
/// server's settings are named and checked once for both.
pub struct RedisBuilder<T> {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
    pub(crate) allow_eviction: bool,
    /// Open only an inbox that exists (operators' tools).
    pub(crate) existing: bool,
    of: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for RedisBuilder<T> {
    fn clone(&self) -> Self {
        Self { url: self.url.clone(), prefix: self.prefix.clone(), of: std::marker::PhantomData, ..*self }
    }
}

impl<T> std::fmt::Debug for RedisBuilder<T> {
    // The URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<T> RedisBuilder<T> {
    /// The defaults: `prefix`, [`DEFAULT_STORE_TIMEOUT`](crate::store::DEFAULT_STORE_TIMEOUT),
    /// no eviction.
    pub(crate) fn new(url: String, prefix: &str) -> Self {
        Self {
            url,
            prefix: prefix.to_owned(),
            timeout: super::DEFAULT_STORE_TIMEOUT,
            allow_eviction: false,
            existing: false,
            of: std::marker::PhantomData,
        }
    }

    /// What every key starts with, e.g. `"billing:"` when several services share one
    /// server: empty for a store (its keys are the receiver's as they are) and
    /// `hookroute:inbox:` for an inbox by default.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for the server to connect or to answer one operation before
    /// giving up: [`DEFAULT_STORE_TIMEOUT`](crate::store::DEFAULT_STORE_TIMEOUT) by default.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Accepts a server whose `maxmemory-policy` may evict keys (anything but
    /// `noeviction`), which `connect` refuses by default: an evicted done mark is an
    /// event processed again, an evicted delivery is lost, silently.
    #[must_use]
    pub fn allow_eviction(mut self) -> Self {
        self.allow_eviction = true;
        self
    }
}
