//! A store in Redis, shared by every replica that points at the same server.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script, Value};

use super::{
    connect_error, millis, random_token, within, Claim, ClaimToken, IdempotencyStore, StoreError, DEFAULT_STORE_TIMEOUT,
};

/// What a completed key holds. Claim tokens are 32 hex digits, so never this.
const DONE: &str = "done";

/// Marks the key done for the TTL, if `ARGV[1]` still holds the claim.
const COMPLETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
";

/// Deletes the key, if `ARGV[1]` still holds the claim.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// An idempotency store in Redis (7.0 or newer), for receivers on several replicas.
///
/// - **claim** is one atomic command, `SET key token NX PX lease GET`: it sets the key
///   only if absent and answers what was there (`done`, someone's token, or nothing).
///   A claimant that dies holds the key only until the lease expires.
/// - **complete** and **release** run a small Lua script that acts only if the key
///   still holds the caller's token, so a claimant whose lease ran out cannot touch
///   the claim that replaced it. A completed key holds `done` and expires after the TTL.
///
/// Keys are the receiver's (`<namespace>:<provider>:event:<id>`) behind an optional prefix. The
/// connection is a [`ConnectionManager`], which reconnects after the server comes back;
/// every operation has a deadline ([`DEFAULT_STORE_TIMEOUT`] unless set), so an outage
/// makes the receiver answer 503 at once instead of hanging.
///
/// ```no_run
/// use hookroute_runtime::store::RedisStore;
///
/// # async fn run() -> Result<(), hookroute_runtime::store::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/").prefix("billing:").connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    complete: Script,
    release: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Sets up a [`RedisStore`]; from [`RedisStore::builder`].
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    allow_eviction: bool,
}

impl fmt::Debug for RedisStoreBuilder {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[:password@]host[:port][/db]`)
    /// with the default settings.
    ///
    /// Fails with [`StoreError::Connect`] if the URL is invalid or the server does not
    /// answer within the timeout.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store for the server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: String::new(),
            timeout: DEFAULT_STORE_TIMEOUT,
            allow_eviction: false,
        }
    }

    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }
}

impl RedisStoreBuilder {
    /// A prefix put before every key, e.g. `"billing:"` when several services share
    /// one server. Empty by default, so keys are the receiver's as they are.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for the server to connect or to answer one operation before
    /// giving up: [`DEFAULT_STORE_TIMEOUT`] by default.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Accepts a server whose `maxmemory-policy` may evict keys (anything but
    /// `noeviction`), which [`connect`](Self::connect) refuses by default: an evicted
    /// done mark is an event processed again, silently.
    #[must_use]
    pub fn allow_eviction(mut self) -> Self {
        self.allow_eviction = true;
        self
    }

    /// Connects, failing with [`StoreError::Connect`] rather than waiting forever, and
    /// with [`StoreError::InvalidConfig`] when the server may evict keys.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let Self { url, prefix, timeout, allow_eviction } = self;
        let (connection, _target) = connection(&url, timeout, allow_eviction).await?;
        Ok(RedisStore { connection, prefix, timeout, complete: Script::new(COMPLETE), release: Script::new(RELEASE) })
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = random_token()?;
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("SET");
        command.arg(self.key(key)).arg(token.as_str()).arg("NX").arg("PX").arg(millis(lease)).arg("GET");
        let previous: Option<String> = within(self.timeout, "Redis", command.query_async(&mut connection)).await?;
        Ok(match previous.as_deref() {
            None => Claim::Acquired(token),
            Some(DONE) => Claim::Done,
            Some(_) => Claim::InFlight,
        })
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.complete.key(self.key(key));
        invocation.arg(token.as_str()).arg(millis(ttl));
        let done: Value = within(self.timeout, "Redis", invocation.invoke_async(&mut connection)).await?;
        held(key, &done)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.release.key(self.key(key));
        invocation.arg(token.as_str());
        let released: Value = within(self.timeout, "Redis", invocation.invoke_async(&mut connection)).await?;
        held(key, &released)
    }
}

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
    let client = Client::open(url).map_err(|err| StoreError::Connect {
        store: "Redis",
        target: "the configured URL".to_owned(),
        source: Box::new(err),
    })?;
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

/// The scripts answer 1 when the token held the claim, 0 when it did not.
fn held(key: &str, answer: &Value) -> Result<(), StoreError> {
    match answer {
        Value::Int(1) => Ok(()),
        _ => Err(StoreError::ClaimLost { key: key.to_owned() }),
    }
}
