//! The inbox conformance suite against every backend: memory, SQLite (a file in a temp
//! dir), PostgreSQL and Redis (the servers `scripts/test` starts). Each check gets an
//! inbox of its own: a fresh file, table or key prefix.

use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other check or run uses.
fn unique(kind: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{kind}_{}_{nanos:x}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

mod memory_inbox {
    hookroute::inbox_conformance_tests!(ordered: hookroute::inbox::MemoryInbox::new());
}

mod sqlite_inbox {
    hookroute::inbox_conformance_tests!(ordered: {
        let dir = tempfile::tempdir().unwrap().keep();
        hookroute::inbox::SqliteInbox::open(dir.join("inbox.db")).await.unwrap()
    });
}

mod postgres_inbox {
    hookroute::inbox_conformance_tests!(ordered: hookroute::inbox::PostgresInbox::builder(crate::support::postgres_url())
        .table(super::unique("inbox"))
        .connect()
        .await
        .unwrap());
}

mod redis_inbox {
    hookroute::inbox_conformance_tests!(ordered: hookroute::inbox::RedisInbox::builder(crate::support::redis_url())
        .prefix(format!("{}:", super::unique("inbox")))
        .connect()
        .await
        .unwrap());
}
