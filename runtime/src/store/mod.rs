//! Idempotency stores: remember which events were processed, so each runs once.
//!
//! A store offers one atomic operation, [`claim`](IdempotencyStore::claim): the first
//! caller for a key wins a [`ClaimToken`] and a lease; every other caller learns that
//! the event is [`Done`](Claim::Done) or [`InFlight`](Claim::InFlight). The winner then
//! [`complete`](IdempotencyStore::complete)s the claim (the key is kept as done for a
//! TTL) or [`release`](IdempotencyStore::release)s it (the handler failed: the next
//! delivery may claim it). A claimant that dies holds only its lease: when the lease
//! runs out, the key can be claimed again.
//!
//! | store | feature | for |
//! | --- | --- | --- |
//! | [`MemoryStore`] | | one replica; the default, bounded |
//! | `RedisStore` | `redis` | many replicas sharing a Redis 7+ |
//! | `PostgresStore` | `postgres` | many replicas sharing a PostgreSQL |
//! | `SqliteStore` | `sqlite` | one node, durable across restarts |
//!
//! [`connect`] opens any of them from a URL. Every one passes the conformance suite in
//! `testing::conformance` (feature `testing`), which a store of your own can run too.

use std::time::Duration;

mod connect;
pub(crate) mod error;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use connect::connect;
pub use error::StoreError;
pub use memory::{MemoryStore, DEFAULT_CAPACITY};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder, DEFAULT_TABLE};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub use crate::backend::DEFAULT_STORE_TIMEOUT;

/// How long a completed event is remembered by default: 7 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the claim until its lease runs out.
    Acquired(ClaimToken),
    /// Another caller holds a live claim on the key.
    InFlight,
    /// The event was processed and is remembered as done.
    Done,
}

/// Proof of a claim, required to complete or release it. A claimant whose lease ran
/// out and was taken over cannot touch the newer claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// A token with the given text; each store picks how to make them unique.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An atomic claim/complete/release store of event ids.
///
/// Implement it to keep idempotency records anywhere; `claim` must be atomic across
/// every receiver that shares the store (check-then-set is not).
///
/// ```
/// use std::time::Duration;
/// use hookroute_runtime::store::{Claim, IdempotencyStore, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let lease = Duration::from_secs(60);
/// let Claim::Acquired(token) = store.claim("groq:event:evt_1", lease).await? else { unreachable!() };
/// assert_eq!(store.claim("groq:event:evt_1", lease).await?, Claim::InFlight);
/// store.complete("groq:event:evt_1", &token, Duration::from_secs(3600)).await?;
/// assert_eq!(store.claim("groq:event:evt_1", lease).await?, Claim::Done);
/// # Ok::<(), hookroute_runtime::store::StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for `lease`, unless it is done or held by a live claim.
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError>;

    /// Marks the claimed key done for `ttl`; fails with [`StoreError::ClaimLost`] if
    /// `token` no longer holds the claim.
    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError>;

    /// Gives the claim up so the next delivery can claim the key; fails with
    /// [`StoreError::ClaimLost`] if `token` no longer holds the claim.
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError>;

    /// The backend's name in metrics (`db.system.name`): `redis`, `postgresql`,
    /// `sqlite`, `memory`; `custom` unless a store says otherwise.
    fn backend(&self) -> &'static str {
        "custom"
    }
}

/// A fresh claim token, unique across processes: 64 random bits drawn once per
/// process, then a counter, as 32 hex digits. One system call per process rather than
/// per claim; the token proves which claimant holds a key to the store, which every
/// claimant trusts, so it needs to be unique, not secret.
#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
pub(crate) fn fresh_token() -> Result<ClaimToken, StoreError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PROCESS: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = if let Some(process) = PROCESS.get() {
        *process
    } else {
        let mut bytes = [0_u8; 8];
        getrandom::fill(&mut bytes).map_err(|err| StoreError::Unavailable(err.to_string().into()))?;
        *PROCESS.get_or_init(|| u64::from_le_bytes(bytes))
    };
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(ClaimToken(format!("{process:016x}{count:016x}")))
}

/// An update or delete `WHERE token = $token` touched one row: the claim was held.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn held_if_one_row(key: &str, one_row: bool) -> Result<(), StoreError> {
    if one_row {
        Ok(())
    } else {
        Err(StoreError::ClaimLost { key: key.to_owned() })
    }
}

/// A shared or boxed store is a store: `Arc<RedisStore>` or `Box<dyn IdempotencyStore>`.
macro_rules! forward_store {
    ($($wrapper:ident)::+) => {
        #[async_trait::async_trait]
        impl<S: IdempotencyStore + ?Sized> IdempotencyStore for $($wrapper)::+<S> {
            async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
                (**self).claim(key, lease).await
            }

            async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
                (**self).complete(key, token, ttl).await
            }

            async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
                (**self).release(key, token).await
            }

            fn backend(&self) -> &'static str {
                (**self).backend()
            }
        }
    };
}

forward_store!(std::sync::Arc);
forward_store!(Box);
