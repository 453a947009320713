//! SQLite: one file, its connection on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use crate::store::error::StoreError;

/// One SQLite file and its connection, used from Tokio's blocking pool: what the
/// store and the inbox share.
pub(crate) struct SqliteFile {
    connection: Mutex<Connection>,
    pub(crate) path: PathBuf,
}

impl SqliteFile {
    /// Opens (or creates) the file at `path` and runs `schema` on it.
    pub(crate) async fn open(path: &Path, schema: &'static str) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let target = path.display().to_string();
        let opened = tokio::task::spawn_blocking(move || {
            let connection = Connection::open(&path)?;
            connection.busy_timeout(Duration::from_secs(5))?;
            connection.execute_batch(schema)?;
            Ok::<_, rusqlite::Error>(Self { connection: Mutex::new(connection), path })
        })
        .await;
        match opened {
            Ok(Ok(file)) => Ok(file),
            Ok(Err(err)) => Err(StoreError::Connect { store: "SQLite", target, source: Box::new(err) }),
            Err(join) => Err(StoreError::Connect { store: "SQLite", target, source: Box::new(join) }),
        }
    }

    /// Runs `work` with the connection on the blocking pool.
    pub(crate) async fn run<T: Send + 'static>(
        file: &Arc<Self>,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let file = Arc::clone(file);
        let done = tokio::task::spawn_blocking(move || {
            // Every statement leaves the file consistent, so a panic elsewhere while the
            // lock was held leaves nothing half-done.
            let mut connection = file.connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut connection)
        })
        .await;
        match done {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(StoreError::Unavailable(Box::new(err))),
            Err(join) => Err(StoreError::Unavailable(Box::new(join))),
        }
    }
}
