//! Claim + complete per store backend, side by side in one run: `scripts/bench`.
//!
//! - `first`: one delivery's round trips, one at a time: claim a fresh key, complete it
//!   (latency; throughput = 1 / latency).
//! - `duplicate`: a retry of a done event: one claim that answers `Done`.
//! - `first x64`: 256 fresh keys claimed and completed 64 at a time, as a busy receiver
//!   does (throughput).
//!
//! Redis and PostgreSQL are the servers `scripts/services` starts (URLs from
//! `HOOKROUTE_TEST_REDIS_URL` and `HOOKROUTE_TEST_POSTGRES_URL`); a backend whose URL is
//! missing is left out, with a note.

// `criterion_group!` defines a public function without docs.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::stream::{self, StreamExt};
use hookroute::store::{Claim, IdempotencyStore, PostgresStore, RedisStore, SqliteStore};
use hookroute::MemoryStore;

const LEASE: Duration = Duration::from_secs(60);
const TTL: Duration = Duration::from_secs(600);
const BATCH: usize = 256;
const CONCURRENCY: usize = 64;

fn key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench:{}:event:{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn claim_and_complete(store: &dyn IdempotencyStore) {
    let key = key();
    let Claim::Acquired(token) = store.claim(&key, LEASE).await.expect("claim") else {
        panic!("fresh key not acquired")
    };
    store.complete(&key, &token, TTL).await.expect("complete");
}

fn stores(runtime: &tokio::runtime::Runtime, dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn IdempotencyStore>)> {
    runtime.block_on(async {
        let mut stores: Vec<(&'static str, Arc<dyn IdempotencyStore>)> =
            vec![("memory", Arc::new(MemoryStore::with_capacity(10_000_000)))];
        stores.push(("sqlite", Arc::new(SqliteStore::open(dir.join("bench.db")).await.expect("sqlite opens"))));
        match std::env::var("HOOKROUTE_TEST_REDIS_URL") {
            Ok(url) => stores.push(("redis", Arc::new(RedisStore::connect(&url).await.expect("redis connects")))),
            Err(_) => eprintln!("HOOKROUTE_TEST_REDIS_URL unset: Redis left out"),
        }
        match std::env::var("HOOKROUTE_TEST_POSTGRES_URL") {
            Ok(url) => {
                let store = PostgresStore::builder(&url).table("hookroute_bench").pool_size(CONCURRENCY).connect();
                stores.push(("postgres", Arc::new(store.await.expect("postgres connects"))));
            }
            Err(_) => eprintln!("HOOKROUTE_TEST_POSTGRES_URL unset: PostgreSQL left out"),
        }
        stores
    })
}

fn claim_complete(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let stores = stores(&runtime, dir.path());

    let mut group = c.benchmark_group("store");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for (name, store) in &stores {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("first", name), store, |b, store| {
            b.to_async(&runtime).iter(|| claim_and_complete(&**store));
        });

        let done = key();
        runtime.block_on(async {
            let Claim::Acquired(token) = store.claim(&done, LEASE).await.expect("claim") else { panic!() };
            store.complete(&done, &token, TTL).await.expect("complete");
        });
        group.bench_with_input(BenchmarkId::new("duplicate", name), store, |b, store| {
            b.to_async(&runtime).iter(|| async {
                assert_eq!(store.claim(&done, LEASE).await.expect("claim"), Claim::Done);
            });
        });

        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_with_input(BenchmarkId::new(format!("first x{CONCURRENCY}"), name), store, |b, store| {
            b.to_async(&runtime).iter(|| async {
                stream::iter(0..BATCH).for_each_concurrent(CONCURRENCY, |_| claim_and_complete(&**store)).await;
            });
        });
    }
    group.finish();
}

criterion_group!(benches, claim_complete);
criterion_main!(benches);
