//! TLS to managed servers: `rediss://` and `sslmode=require`, against the test Redis's
//! TLS port and the test PostgreSQL with `ssl = on`, both with a certificate for
//! 127.0.0.1 from a CA of `scripts/services` (`HOOKROUTE_TEST_TLS_CA`).
//!
//! One test: it sets `SSL_CERT_FILE`, which the Redis client reads, for the process
//! (no other test speaks TLS).

use std::time::Duration;

use hookroute::store::{Claim, IdempotencyStore};

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run `scripts/test`, which starts the servers with TLS"))
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{nanos:x}", std::process::id())
}

async fn claims(store: &dyn IdempotencyStore) {
    let key = unique("tls:event");
    assert!(matches!(store.claim(&key, Duration::from_secs(60)).await.unwrap(), Claim::Acquired(_)));
    assert_eq!(store.claim(&key, Duration::from_secs(60)).await.unwrap(), Claim::InFlight);
}

#[tokio::test]
async fn stores_and_inboxes_speak_tls_and_check_the_certificate() {
    let (rediss, postgres, ca) =
        (var("HOOKROUTE_TEST_REDISS_URL"), var("HOOKROUTE_TEST_POSTGRES_TLS_URL"), var("HOOKROUTE_TEST_TLS_CA"));

    // A CA nobody trusts: refused, never spoken to in the clear.
    std::env::remove_var("SSL_CERT_FILE");
    let untrusted = hookroute::store::RedisStore::builder(&rediss).timeout(Duration::from_secs(5)).connect().await;
    assert!(untrusted.is_err(), "a server certificate from an unknown CA is refused");
    let without_ca = postgres.split("&sslrootcert=").next().unwrap();
    let store = hookroute::store::PostgresStore::builder(without_ca).timeout(Duration::from_secs(5)).connect().await;
    let error = match store {
        Err(error) => error.to_string(),
        Ok(store) => store.claim("tls:event:x", Duration::from_secs(1)).await.unwrap_err().to_string(),
    };
    assert!(!error.is_empty());

    // Trusted: every store and inbox works over TLS.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let redis = hookroute::store::connect(&rediss).await.unwrap();
    claims(&*redis).await;
    let table = unique("tls_events");
    let pg = hookroute::store::connect(&format!("{postgres}&table={table}")).await.unwrap();
    claims(&*pg).await;
    let inbox = hookroute::inbox::connect(&format!("{rediss}?prefix={}:", unique("tls_inbox"))).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap(), hookroute::inbox::InboxStats::default());
    let inbox = hookroute::inbox::connect(&format!("{postgres}&table={}", unique("tls_inbox"))).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap(), hookroute::inbox::InboxStats::default());

    // The server saw TLS: PostgreSQL says so for the session.
    let pg_tls =
        hookroute::store::PostgresStore::builder(&postgres).table(unique("tls_check")).connect().await.unwrap();
    claims(&pg_tls).await;
    let (client, connection) =
        tokio_postgres::connect(&var("HOOKROUTE_TEST_POSTGRES_URL"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let row = client.query_one("SELECT count(*) FROM pg_stat_ssl WHERE ssl", &[]).await.unwrap();
    assert!(row.get::<_, i64>(0) > 0, "sessions over TLS");
}
