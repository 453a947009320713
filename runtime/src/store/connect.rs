//! Opening a store from a URL: the scheme picks the backend (`backend::KINDS`).

#[cfg(feature = "postgres")]
use super::PostgresStore;
#[cfg(feature = "redis")]
use super::RedisStore;
#[cfg(feature = "sqlite")]
use super::SqliteStore;
use super::{IdempotencyStore, MemoryStore, StoreError};
use crate::backend::{Backend, Location};

/// Opens the store a URL names, for apps that pick their backend by configuration:
///
/// | URL | store | feature |
/// | --- | --- | --- |
/// | `memory:` (or empty) | [`MemoryStore`] | |
/// | `redis://…`, `rediss://…` | `RedisStore` | `redis` |
/// | `postgres://…`, `postgresql://…` | `PostgresStore` | `postgres` |
/// | `sqlite:path/to/events.db` | `SqliteStore` | `sqlite` |
///
/// `?prefix=billing:` on a Redis URL and `?table=billing_events` on a PostgreSQL URL
/// keep one app's keys apart from another's on a shared server (on top of the
/// receiver's [namespace](crate::ReceiverBuilder::namespace)).
///
/// A URL for a backend whose feature is off, or of no known kind, is
/// [`StoreError::InvalidConfig`] saying which; a server that cannot be reached is
/// [`StoreError::Connect`]. Typed code can call each store's own `connect` instead.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = hookroute_runtime::store::connect("memory:").await?;
/// let receiver_store: Box<dyn hookroute_runtime::IdempotencyStore> = store;
/// assert!(hookroute_runtime::store::connect("mongodb://x").await.is_err());
/// # Ok::<(), hookroute_runtime::store::StoreError>(())
/// # }).unwrap();
/// ```
#[allow(clippy::unused_async)] // awaits only with a shared-store feature on
pub async fn connect(url: &str) -> Result<Box<dyn IdempotencyStore>, StoreError> {
    let location = Location::of(url);
    match Backend::of(&location.url, "store", "events.db")? {
        Backend::Memory => location.plain("store").map(|()| Box::new(MemoryStore::new()) as Box<dyn IdempotencyStore>),
        #[cfg(feature = "redis")]
        Backend::Redis => Ok(Box::new(location.redis("store", RedisStore::builder(&location.url))?.connect().await?)),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            Ok(Box::new(location.postgres("store", PostgresStore::builder(&location.url))?.connect().await?))
        }
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(path) => {
            location.plain("store")?;
            Ok(Box::new(SqliteStore::open(path).await?))
        }
    }
}
