//! Opening an inbox from a URL: the scheme picks the backend (`backend::KINDS`).

#[cfg(feature = "postgres")]
use super::PostgresInbox;
#[cfg(feature = "redis")]
use super::RedisInbox;
#[cfg(feature = "sqlite")]
use super::SqliteInbox;
use super::{InboxAdmin, InboxError, MemoryInbox};
use crate::backend::{Backend, Location};

/// Opens the inbox a URL names, for apps that pick their backend by configuration:
///
/// | URL | inbox | feature |
/// | --- | --- | --- |
/// | `memory:` (or empty) | [`MemoryInbox`] (not durable) | |
/// | `redis://…`, `rediss://…` | `RedisInbox` | `redis` |
/// | `postgres://…`, `postgresql://…` | `PostgresInbox` | `postgres` |
/// | `sqlite:path/to/inbox.db` | `SqliteInbox` | `sqlite` |
///
/// An inbox belongs to one receiver: its workers take every delivery in it. Give each
/// app its own, with `?prefix=billing:` on a Redis URL or `?table=billing_inbox` on a
/// PostgreSQL URL (or its own SQLite file).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let inbox = hookroute_runtime::inbox::connect("memory:").await?;
/// assert!(hookroute_runtime::inbox::connect("kafka://x").await.is_err());
/// # Ok::<(), hookroute_runtime::inbox::InboxError>(())
/// # }).unwrap();
/// ```
#[allow(clippy::unused_async)] // awaits only with a shared-backend feature on
pub async fn connect(url: &str) -> Result<Box<dyn InboxAdmin>, InboxError> {
    open(url, false).await
}

/// The inbox `url` names, as [`connect`] opens it, but only if it exists: nothing is
/// created, and a missing one is an error that names those that exist (PostgreSQL
/// tables, Redis prefixes) or the missing file (SQLite). For operators' tools.
pub async fn connect_existing(url: &str) -> Result<Box<dyn InboxAdmin>, InboxError> {
    open(url, true).await
}

async fn open(url: &str, existing: bool) -> Result<Box<dyn InboxAdmin>, InboxError> {
    let location = Location::of(url);
    match Backend::of(&location.url, "inbox", "inbox.db")? {
        Backend::Memory => {
            location.plain("inbox")?;
            if existing {
                return Err(InboxError::InvalidConfig(
                    "a memory inbox lives inside its receiver's process; give the URL of a durable one".to_owned(),
                ));
            }
            Ok(Box::new(MemoryInbox::new()))
        }
        #[cfg(feature = "redis")]
        Backend::Redis => {
            let builder = location.redis("inbox", RedisInbox::builder(&location.url))?;
            let builder = if existing { builder.existing_only() } else { builder };
            Ok(Box::new(builder.connect().await?))
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let builder = location.postgres("inbox", PostgresInbox::builder(&location.url))?;
            let builder = if existing { builder.existing_only().sweep_every(None) } else { builder };
            Ok(Box::new(builder.connect().await?))
        }
        #[cfg(feature = "sqlite")]
        Backend::Sqlite(path) => {
            location.plain("inbox")?;
            if existing && !std::path::Path::new(&path).exists() {
                return Err(InboxError::InvalidConfig(format!(
                    "{path}: no such file; give the path the receiver uses"
                )));
            }
            Ok(Box::new(SqliteInbox::open(path).await?))
        }
    }
}
