//! What goes into a shared store. Two apps (two endpoints, two secrets) sharing one
//! store: Stripe and Svix send the same event id to every endpoint, so each receiver
//! keeps its keys in a namespace of its own, and the second app runs its handler
//! instead of answering `duplicate`.

use crate::support;

use std::sync::Arc;

use hookroute::testing::TestEvent;
use hookroute::{webhook_handlers, EventMeta, HandlerError, IdempotencyStore, Receiver, Stripe};

#[derive(Default)]
struct App {
    runs: support::Runs,
}

#[webhook_handlers(provider = "stripe")]
impl App {
    #[event("invoice.paid")]
    async fn paid(&self, _data: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        Ok(())
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{nanos:x}", std::process::id())
}

/// Sends event `id`, signed with `secret`, to `receiver`; answers the status word.
async fn deliver<S: IdempotencyStore>(receiver: &Receiver<Arc<App>, S>, secret: &str, id: &str) -> String {
    let signed = TestEvent::<Stripe>::new("invoice.paid", serde_json::json!({})).id(id).sign(secret);
    let outcome = receiver.receive(&signed.headers, &signed.body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    outcome.delivered().unwrap().kind().as_str().to_owned()
}

/// Two apps with their own secrets, and a replica of the first, on one shared store.
async fn two_apps_share_a_store<S: IdempotencyStore + Clone>(store: S) {
    let (billing, shipping) = (Arc::new(App::default()), Arc::new(App::default()));
    let build = |app: &Arc<App>, secret: &str| {
        Receiver::builder(Arc::clone(app)).secret(secret).store(store.clone()).build().unwrap()
    };
    let billing_a = build(&billing, "whsec_billing");
    let billing_b = build(&billing, "whsec_billing"); // a replica: same secret, same namespace
    let shipping_a = build(&shipping, "whsec_shipping");
    assert_ne!(billing_a.namespace(), shipping_a.namespace());
    assert_eq!(billing_a.namespace(), billing_b.namespace());

    let id = unique("evt_shared");
    assert_eq!(deliver(&billing_a, "whsec_billing", &id).await, "processed");
    assert_eq!(deliver(&shipping_a, "whsec_shipping", &id).await, "processed", "the second app runs it too");
    assert_eq!(deliver(&billing_b, "whsec_billing", &id).await, "duplicate", "a replica shares the first app's keys");
    assert_eq!(deliver(&shipping_a, "whsec_shipping", &id).await, "duplicate");
    assert_eq!((billing.runs.count(&id), shipping.runs.count(&id)), (1, 1));

    // Named namespaces: the same secret in two apps still keeps them apart.
    let (one, two) = (Arc::new(App::default()), Arc::new(App::default()));
    let named = |app: &Arc<App>, namespace: &str| {
        Receiver::builder(Arc::clone(app))
            .secret("whsec_reused")
            .namespace(namespace)
            .store(store.clone())
            .build()
            .unwrap()
    };
    let id = unique("evt_named");
    assert_eq!(deliver(&named(&one, "one"), "whsec_reused", &id).await, "processed");
    assert_eq!(deliver(&named(&two, "two"), "whsec_reused", &id).await, "processed");
    assert_eq!(deliver(&named(&one, "one"), "whsec_reused", &id).await, "duplicate");
}

#[tokio::test]
async fn two_apps_share_a_redis_store() {
    let store = hookroute::store::RedisStore::connect(&support::redis_url()).await.unwrap();
    two_apps_share_a_store(store).await;
}

#[tokio::test]
async fn two_apps_share_a_postgres_store() {
    let store = hookroute::store::PostgresStore::builder(support::postgres_url())
        .table(unique("namespaces"))
        .connect()
        .await
        .unwrap();
    two_apps_share_a_store(store).await;
}

#[test]
fn a_namespace_that_cannot_be_part_of_a_key_is_refused() {
    for bad in ["", "has space", "new\nline", &"x".repeat(65)] {
        let built = Receiver::builder(App::default()).secret("s").namespace(bad).build();
        let error = built.expect_err(bad).to_string();
        assert!(error.contains("namespace"), "{error}");
    }
    let built = Receiver::builder(App::default()).secret("s").namespace("billing/eu-1").build().unwrap();
    assert_eq!(built.namespace(), "billing/eu-1");
}

/// `?prefix=` and `?table=` in a store or inbox URL, as `HOOKROUTE_STORE` and
/// `HOOKROUTE_INBOX` carry them; other parameters stay for the driver.
#[tokio::test]
async fn store_and_inbox_urls_carry_a_prefix_or_a_table() {
    let prefix = format!("{}:", unique("url_prefix"));
    let redis_url = support::redis_url();
    let store = hookroute::store::connect(&format!("{redis_url}?prefix={prefix}")).await.unwrap();
    let hookroute::store::Claim::Acquired(_) =
        store.claim("groq:event:evt_1", std::time::Duration::from_secs(60)).await.unwrap()
    else {
        panic!("a fresh key is acquired");
    };
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool =
        redis::cmd("EXISTS").arg(format!("{prefix}groq:event:evt_1")).query_async(&mut raw).await.unwrap();
    assert!(exists, "the key is under the URL's prefix");

    let table = unique("url_table");
    let postgres_url = support::postgres_url();
    let separator = if postgres_url.contains('?') { '&' } else { '?' };
    let store =
        hookroute::store::connect(&format!("{postgres_url}{separator}table={table}&connect_timeout=5")).await.unwrap();
    let _ = store.claim("groq:event:evt_1", std::time::Duration::from_secs(60)).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&postgres_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client.query(&format!("SELECT key FROM {table}"), &[]).await.unwrap();
    assert_eq!(rows.len(), 1, "the claim is in the URL's table");

    let inbox_table = unique("url_inbox");
    let inbox = hookroute::inbox::connect(&format!("{postgres_url}{separator}table={inbox_table}")).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap(), hookroute::inbox::InboxStats::default());
    client.query(&format!("SELECT 1 FROM {inbox_table}"), &[]).await.expect("the inbox made the URL's table");
    let inbox_prefix = format!("{}:", unique("url_inbox"));
    let inbox = hookroute::inbox::connect(&format!("{redis_url}?prefix={inbox_prefix}")).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap(), hookroute::inbox::InboxStats::default());

    // The wrong parameter for the backend is an error that says which one it takes.
    let error = hookroute::store::connect(&format!("{redis_url}?table=t")).await.err().unwrap().to_string();
    assert!(error.contains("?prefix="), "{error}");
    let error =
        hookroute::inbox::connect(&format!("{postgres_url}{separator}prefix=p")).await.err().unwrap().to_string();
    assert!(error.contains("?table="), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}?table=t", dir.path().join("events.db").display());
    let error = hookroute::store::connect(&sqlite).await.err().unwrap().to_string();
    assert!(error.contains("its own store file"), "{error}");
}

/// An id no provider sends: a NUL (PostgreSQL text cannot hold one) or a line break (it
/// would forge a log line) is a 400 that says why, not a 503 "store unavailable" on
/// every retry for ever, and the store is never asked.
#[tokio::test]
async fn an_id_with_a_control_character_is_a_400_before_the_store() {
    let store = hookroute::store::PostgresStore::builder(support::postgres_url())
        .table(unique("control_ids"))
        .connect()
        .await
        .unwrap();
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app)).secret("whsec_ids").store(store).build().unwrap();
    for id in ["evt_\u{0}nul", "evt_1\nWARN forged line"] {
        let signed = TestEvent::<Stripe>::new("invoice.paid", serde_json::json!({})).id(id).sign("whsec_ids");
        let outcome = receiver.receive(&signed.headers, &signed.body).await;
        assert_eq!(outcome.status(), 400, "{id:?}: {}", outcome.body());
        assert!(outcome.body().contains("control character"), "{}", outcome.body());
    }
    assert_eq!(app.runs.events(), 0);
}

/// A Redis that evicts keys when full forgot 27k done marks under load, and 200
/// redeliveries ran again. Such a server is refused at connect, saying why, unless the
/// app accepts it.
#[tokio::test]
async fn a_redis_that_evicts_keys_is_refused_at_connect() {
    let redis = support::OwnRedis::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let () =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lru").query_async(&mut raw).await.unwrap();

    let error = hookroute::store::RedisStore::connect(&redis.url()).await.expect_err("refused").to_string();
    assert!(error.contains("maxmemory-policy allkeys-lru"), "{error}");
    let error = hookroute::inbox::RedisInbox::connect(&redis.url()).await.expect_err("refused").to_string();
    assert!(error.contains("noeviction"), "{error}");
    let error = hookroute::store::connect(&redis.url()).await.err().expect("refused").to_string();
    assert!(error.contains("evicts keys"), "{error}");
    assert!(hookroute::store::RedisStore::builder(redis.url()).allow_eviction().connect().await.is_ok());
    assert!(hookroute::inbox::RedisInbox::builder(redis.url()).allow_eviction().connect().await.is_ok());

    let () =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction").query_async(&mut raw).await.unwrap();
    assert!(hookroute::store::RedisStore::connect(&redis.url()).await.is_ok());
}
