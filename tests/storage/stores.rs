//! Every store runs the public conformance suite, against real servers for Redis and
//! PostgreSQL (started by `scripts/test`), plus what is particular to each backend.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookroute::store::{Claim, IdempotencyStore, PostgresStore, RedisStore, SqliteStore, StoreError, DEFAULT_TABLE};
use hookroute::testing::conformance;
use hookroute::MemoryStore;

const MINUTE: Duration = Duration::from_secs(60);

mod memory_store {
    hookroute::store_conformance_tests!(hookroute::MemoryStore::new());
}

mod redis_store {
    hookroute::store_conformance_tests!(hookroute::store::RedisStore::connect(&super::support::redis_url())
        .await
        .expect("the test Redis answers"));
}

mod postgres_store {
    hookroute::store_conformance_tests!(hookroute::store::PostgresStore::connect(&super::support::postgres_url())
        .await
        .expect("the test PostgreSQL answers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("events.db")).await.unwrap());
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_custom_store_via_box_dyn_passes_the_conformance_suite() {
    // What a config-driven app holds: the trait object.
    let store: Arc<Box<dyn IdempotencyStore>> = Arc::new(Box::new(MemoryStore::new()));
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn sqlite_remembers_what_was_done_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        let Claim::Acquired(token) = store.claim("groq:event:evt_1", MINUTE).await.unwrap() else { panic!() };
        store.complete("groq:event:evt_1", &token, MINUTE).await.unwrap();
        let Claim::Acquired(_) = store.claim("groq:event:evt_2", MINUTE).await.unwrap() else { panic!() };
    }
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.claim("groq:event:evt_1", MINUTE).await.unwrap(), Claim::Done);
    // A claim held when the process stopped is still leased.
    assert_eq!(reopened.claim("groq:event:evt_2", MINUTE).await.unwrap(), Claim::InFlight);
}

#[tokio::test]
async fn sqlite_purges_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("events.db")).await.unwrap();
    for key in ["a", "b"] {
        let Claim::Acquired(token) = store.claim(key, MINUTE).await.unwrap() else { panic!() };
        store.complete(key, &token, Duration::from_millis(1)).await.unwrap();
    }
    let Claim::Acquired(_) = store.claim("live", MINUTE).await.unwrap() else { panic!() };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 2);
    assert_eq!(store.claim("live", MINUTE).await.unwrap(), Claim::InFlight);
}

#[tokio::test]
async fn sqlite_reports_a_path_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(dir.path().join("missing").join("events.db")).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { store: "SQLite", .. }), "{err:?}");
    assert!(err.to_string().contains("events.db"), "{err}");
}

#[tokio::test]
async fn redis_prefixes_keys_and_expires_done_keys_after_the_ttl() {
    let url = support::redis_url();
    let prefix = format!("prefix-test-{}:", std::process::id());
    let store = RedisStore::builder(&url).prefix(&prefix).connect().await.unwrap();
    let Claim::Acquired(token) = store.claim("groq:event:evt_1", MINUTE).await.unwrap() else { panic!() };
    store.complete("groq:event:evt_1", &token, Duration::from_secs(3600)).await.unwrap();

    // Look at the server directly: one key, under the prefix, done, with the TTL set.
    let client = redis::Client::open(url).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let full = format!("{prefix}groq:event:evt_1");
    let value: Option<String> = redis::cmd("GET").arg(&full).query_async(&mut raw).await.unwrap();
    assert_eq!(value.as_deref(), Some("done"));
    let ttl: i64 = redis::cmd("PTTL").arg(&full).query_async(&mut raw).await.unwrap();
    assert!((3_500_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    let bare: Option<String> = redis::cmd("GET").arg("groq:event:evt_1").query_async(&mut raw).await.unwrap();
    assert_eq!(bare, None, "the key is stored only under the prefix");
}

#[tokio::test]
async fn postgres_migration_is_idempotent_and_table_is_configurable() {
    let url = support::postgres_url();
    let table = format!("events_{}", std::process::id());
    // Several replicas starting at once all run the migration.
    let connects: Vec<_> = (0..4).map(|_| PostgresStore::builder(&url).table(&table).connect()).collect();
    let stores: Vec<PostgresStore> =
        futures_util::future::join_all(connects).await.into_iter().collect::<Result<_, _>>().unwrap();
    let Claim::Acquired(token) = stores[0].claim("k", MINUTE).await.unwrap() else { panic!() };
    assert_eq!(stores[3].claim("k", MINUTE).await.unwrap(), Claim::InFlight);
    stores[1].complete("k", &token, MINUTE).await.unwrap();
    assert_eq!(stores[2].claim("k", MINUTE).await.unwrap(), Claim::Done);

    // The default table is untouched by a store with its own.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client.query(&format!("SELECT key, done FROM {table}"), &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].get::<_, bool>("done"));
    client.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn postgres_purges_expired_rows() {
    let url = support::postgres_url();
    let table = format!("purge_{}", std::process::id());
    let store = PostgresStore::builder(&url).table(&table).sweep_every(None).connect().await.unwrap();
    for key in ["a", "b"] {
        let Claim::Acquired(token) = store.claim(key, MINUTE).await.unwrap() else { panic!() };
        store.complete(key, &token, Duration::from_millis(1)).await.unwrap();
    }
    let Claim::Acquired(_) = store.claim("short lease", Duration::from_millis(1)).await.unwrap() else { panic!() };
    let Claim::Acquired(_) = store.claim("live", MINUTE).await.unwrap() else { panic!() };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 3);
    assert_eq!(store.claim("live", MINUTE).await.unwrap(), Claim::InFlight);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn postgres_rejects_a_table_name_that_is_not_an_identifier() {
    let err =
        PostgresStore::builder(support::postgres_url()).table("events; DROP TABLE x").connect().await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidConfig(_)), "{err:?}");
    assert_eq!(DEFAULT_TABLE, "hookroute_events");
}

/// What concurrent deliveries ask of a Redis store goes in one round trip: 64 claims
/// are one pipeline of plain `SET … NX` commands, and their 64 completions one script
/// call.
#[tokio::test]
async fn redis_sends_concurrent_operations_together() {
    let redis = support::OwnRedis::start();
    let store = Arc::new(RedisStore::connect(&redis.url()).await.unwrap());
    let before = support::redis_calls(&redis.url()).await;
    let claims: Vec<_> = (0..64)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim(&format!("groq:event:evt_{n}"), MINUTE).await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for (n, claim) in claims.into_iter().enumerate() {
        let Claim::Acquired(token) = claim.await.unwrap() else { panic!("evt_{n} not acquired") };
        tokens.push(token);
    }
    let completions: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(n, token)| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.complete(&format!("groq:event:evt_{n}"), &token, MINUTE).await })
        })
        .collect();
    for completion in completions {
        completion.await.unwrap().unwrap();
    }
    assert_eq!(store.claim("groq:event:evt_7", MINUTE).await.unwrap(), Claim::Done);

    let after = support::redis_calls(&redis.url()).await;
    let calls = |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // 64 completions in one script call; the claims run no script.
    assert_eq!(calls("evalsha") + calls("eval"), 1, "{after:?}");
    assert_eq!(calls("set"), 64 + 64 + 1, "every operation ran: {after:?}");
    // 64 claims, 64 completions and the last claim in 3 round trips, plus this
    // function's own connection (its greeting and its `INFO`): a few reads, where one
    // round trip per operation would be 129 or more.
    assert!(calls("reads") <= 10, "{} reads: {after:?}", calls("reads"));
}

/// One operation Redis refuses (its key holds a hash) fails alone, not its batch; a
/// script the server forgot is sent again whole.
#[tokio::test]
async fn redis_fails_one_refused_operation_alone_and_survives_a_script_flush() {
    let url = support::redis_url();
    let prefix = format!("refused-test-{}:", std::process::id());
    let store = Arc::new(RedisStore::builder(&url).prefix(&prefix).connect().await.unwrap());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("HSET")
        .arg(format!("{prefix}groq:event:a-hash"))
        .arg("f")
        .arg("v")
        .query_async(&mut raw)
        .await
        .unwrap();

    let (hash, fresh) = tokio::join!(store.claim("groq:event:a-hash", MINUTE), store.claim("groq:event:fresh", MINUTE));
    let error = hash.expect_err("a key of another type cannot be claimed");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("another type"), "{error}");
    let Claim::Acquired(token) = fresh.unwrap() else { panic!("the other operation of the batch failed too") };

    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    store.complete("groq:event:fresh", &token, MINUTE).await.unwrap();
    assert_eq!(store.claim("groq:event:fresh", MINUTE).await.unwrap(), Claim::Done);
}

/// Operations queued behind a batch the server never answers fail with it, within the
/// timeout, rather than waiting for a second timeout of their own.
#[tokio::test]
async fn redis_operations_queued_behind_a_silent_batch_fail_with_it() {
    let redis = support::OwnRedis::start();
    let timeout = Duration::from_secs(1);
    let store = Arc::new(RedisStore::builder(redis.url()).timeout(timeout).connect().await.unwrap());
    redis.pause(true);
    let started = Instant::now();
    let first = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.claim("groq:event:first", MINUTE).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = store.claim("groq:event:queued", MINUTE).await;
    let waited = started.elapsed();
    redis.pause(false);
    assert!(matches!(first.await.unwrap(), Err(StoreError::Unavailable(_))));
    assert!(matches!(queued, Err(StoreError::Unavailable(_))), "{queued:?}");
    // Its own timeout would end at 1.1 s after the start at the earliest, a second
    // batch's at 2 s; failing with the first batch, it ends near 1 s.
    assert!(waited < Duration::from_millis(1_900), "the queued claim waited {waited:?}");
}

/// A store that cannot be reached at start-up says where it looked, without the
/// password, and gives up within its timeout instead of hanging.
#[tokio::test]
async fn unreachable_stores_fail_fast_with_a_clear_error() {
    let port = support::closed_port();
    let timeout = Duration::from_millis(500);

    let started = Instant::now();
    let err = RedisStore::builder(format!("redis://:hunter2@127.0.0.1:{port}/")).timeout(timeout).connect().await;
    let err = err.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { store: "Redis", .. }), "{err:?}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());

    let started = Instant::now();
    let err = PostgresStore::builder(format!("postgres://app:hunter2@127.0.0.1:{port}/app"))
        .timeout(timeout)
        .connect()
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { store: "PostgreSQL", .. }), "{err:?}");
    assert!(message.contains(&format!("127.0.0.1:{port}/app")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());

    // A URL that does not parse is not echoed either: it may hold the password.
    for url in ["redis://:hunter2@127.0.0.1:notaport/", "redis://user:hunter2@[::1/"] {
        let err = RedisStore::connect(url).await.unwrap_err();
        assert!(matches!(err, StoreError::Connect { store: "Redis", .. }), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err} {err:?}");
    }
    for url in ["postgres://app:hunter2@127.0.0.1:notaport/app", "host=x password=hunter2 port=notaport"] {
        let err = PostgresStore::connect(url).await.unwrap_err();
        assert!(matches!(err, StoreError::Connect { store: "PostgreSQL", .. }), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err} {err:?}");
    }
    let builders = format!(
        "{:?} {:?}",
        RedisStore::builder("redis://:hunter2@127.0.0.1/"),
        PostgresStore::builder("postgres://app:hunter2@127.0.0.1/app")
    );
    assert!(!builders.contains("hunter2"), "{builders}");

    let err = RedisStore::connect("not a url").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let err = PostgresStore::connect("postgres://[bad").await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
}

/// A server that accepts the connection and then says nothing: the timeout, not a hang.
#[tokio::test]
async fn a_silent_server_times_out_instead_of_hanging() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (socket, _) = silent.accept().await.unwrap();
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = RedisStore::builder(format!("redis://{address}/")).timeout(timeout).connect().await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let err =
        PostgresStore::builder(format!("postgres://app@{address}/app")).timeout(timeout).connect().await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    hold.abort();
}

#[tokio::test]
async fn connect_opens_the_store_a_url_names() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("events.db").display());
    for url in [support::redis_url(), support::postgres_url(), sqlite, "memory:".to_owned(), String::new()] {
        let store = hookroute::store::connect(&url).await.unwrap_or_else(|err| panic!("{url}: {err}"));
        let key = format!("connect-test:{}:{url}", std::process::id());
        let Claim::Acquired(token) = store.claim(&key, MINUTE).await.unwrap() else { panic!("{url}: not acquired") };
        assert_eq!(store.claim(&key, MINUTE).await.unwrap(), Claim::InFlight, "{url}");
        // "Forever" must not overflow anyone's clock arithmetic.
        store.complete(&key, &token, Duration::MAX).await.unwrap_or_else(|err| panic!("{url}: {err}"));
        assert_eq!(store.claim(&key, Duration::MAX).await.unwrap(), Claim::Done, "{url}");
    }
    assert!(dir.path().join("events.db").exists(), "the sqlite: URL names the file");
    for url in ["sqlite:", "mongodb://127.0.0.1/", "localhost"] {
        let err = hookroute::store::connect(url).await.err().unwrap_or_else(|| panic!("{url} opened a store"));
        assert!(matches!(err, StoreError::InvalidConfig(_)), "{url}: {err:?}");
    }
}
