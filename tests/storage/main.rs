//! Keeping deliveries: the idempotency stores and the inbox on every backend against
//! real Redis and PostgreSQL servers (`scripts/services` starts them on loopback),
//! replicas, outages, restarts and kills, TLS. One test binary, a module per concern
//! (see ARCHITECTURE.md); modules that need a feature are compiled with it
//! (`scripts/test` turns on all).

#[path = "../support/mod.rs"]
mod support;

#[cfg(all(feature = "redis", feature = "postgres"))]
mod completion;
#[cfg(feature = "console")]
mod console;
#[cfg(all(feature = "console", feature = "sqlite"))]
mod console_browser;
#[cfg(all(feature = "redis", feature = "postgres", feature = "sqlite", feature = "axum"))]
mod inbox;
#[cfg(all(feature = "redis", feature = "postgres", feature = "sqlite", feature = "testing"))]
mod inbox_backends;
#[cfg(all(feature = "redis", feature = "postgres", feature = "axum"))]
mod inbox_processes;
#[cfg(all(feature = "redis", feature = "postgres", feature = "sqlite", feature = "axum", feature = "testing"))]
mod ordered_fleet;
#[cfg(feature = "testing")]
mod ordering;
#[cfg(all(feature = "redis", feature = "postgres", feature = "axum"))]
mod replicas;
#[cfg(all(feature = "redis", feature = "postgres", feature = "sqlite"))]
mod shared_stores;
#[cfg(all(feature = "redis", feature = "postgres", feature = "sqlite", feature = "testing"))]
mod stores;
#[cfg(all(feature = "redis-tls", feature = "postgres-tls", feature = "testing"))]
mod tls;
