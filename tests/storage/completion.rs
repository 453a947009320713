//! Inline mode: a handler that succeeded is recorded as done even when the store is
//! away at that moment, as long as it is back before the claim's lease ends. Before,
//! the failed completion was only logged: the claim ran out, and the provider's retry
//! ran the event a second time.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use hookroute::testing::TestEvent;
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, IdempotencyStore, Receiver};
use tokio::sync::{Notify, Semaphore};

const SECRET: &str = "whsec_completion";
const LEASE: Duration = Duration::from_secs(4);

/// Says when it started, then waits at the gate, so that the test can take the store
/// away between the claim and the completion.
struct App {
    runs: support::Runs,
    started: Notify,
    gate: Semaphore,
}

impl Default for App {
    fn default() -> Self {
        Self { runs: support::Runs::default(), started: Notify::new(), gate: Semaphore::new(0) }
    }
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.started.notify_one();
        self.gate.acquire().await.expect("the gate stays open").forget();
        self.runs.record(meta.id());
        Ok(())
    }
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{nanos:x}", std::process::id())
}

async fn a_store_outage_while_completing(mut outage: impl support::Outage, store: impl IdempotencyStore) {
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app))
        .secret(SECRET)
        .store(store)
        .lease(LEASE)
        .handler_timeout(LEASE / 2)
        .build()
        .unwrap();
    let id = unique("evt_completion");
    let signed = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).id(&id).sign(SECRET);

    let running = tokio::spawn({
        let receiver = receiver.clone();
        let signed = signed.clone();
        async move { receiver.receive(&signed.headers, &signed.body).await }
    });
    app.started.notified().await;
    outage.down();
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.gate.add_permits(1);
    let outcome = running.await.unwrap();
    assert_eq!((outcome.status().as_u16(), &*outcome.body()), (200, r#"{"status":"processed"}"#));
    // Back well within the lease.
    tokio::time::sleep(Duration::from_secs(1)).await;
    outage.up();

    // The provider's retry, once the claim would have run out.
    tokio::time::sleep(LEASE + Duration::from_millis(500)).await;
    app.gate.add_permits(1); // a second run, if there were one, would not wait
    let retry = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).id(&id).sign(SECRET);
    let outcome = receiver.receive(&retry.headers, &retry.body).await;
    assert_eq!((outcome.status().as_u16(), &*outcome.body()), (200, r#"{"status":"duplicate"}"#));
    assert_eq!(app.runs.count(&id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_store_outage_while_completing() {
    let _alone = support::exclusive().await;
    let (proxy, url) = support::Proxy::postgres();
    let store = hookroute::store::PostgresStore::builder(&url)
        .table(unique("completion"))
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    a_store_outage_while_completing(proxy, store).await;
}

/// Redis killed (SIGKILL) and restarted; it keeps what it acknowledged (AOF, fsync always).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_store_outage_while_completing() {
    let redis = support::OwnRedis::start();
    let store =
        hookroute::store::RedisStore::builder(redis.url()).timeout(Duration::from_secs(1)).connect().await.unwrap();
    a_store_outage_while_completing(redis, store).await;
}
