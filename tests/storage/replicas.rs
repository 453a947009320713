//! Exactly once across replicas: several receivers (separate axum servers on
//! 127.0.0.1, each with its own connection) share one Redis or one PostgreSQL, started
//! by `scripts/test`. Deliveries are retried the way a provider retries: on anything
//! but a 2xx, until it is answered 2xx.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use hookroute::store::{PostgresStore, RedisStore};
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, IdempotencyStore, Receiver};
use serde::Deserialize;

const SECRET: &str = "whsec_replicas";

#[derive(Debug, Deserialize)]
struct Order {
    #[allow(dead_code)]
    sku: String,
}

/// The handlers every replica runs. One `App` is shared by the replicas of a test so
/// it can count, per event id, how often a handler ran anywhere: the side effect that
/// must happen exactly once.
#[derive(Default)]
struct App {
    runs: support::Runs,
    /// Events whose next run fails.
    fail_once: Mutex<HashSet<String>>,
    /// Whether `order.hangs` hangs (only in the replica that is killed).
    hang: bool,
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("order.created", unlisted)]
    async fn created(&self, _order: Order, meta: &EventMeta) -> Result<(), HandlerError> {
        // Long enough for copies on other replicas to arrive while this one runs.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.runs.record(meta.id());
        Ok(())
    }

    #[event("order.flaky", unlisted)]
    async fn flaky(&self, _order: Order, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        if self.fail_once.lock().unwrap().remove(meta.id()) {
            return Err(HandlerError::msg("payment service unavailable"));
        }
        Ok(())
    }

    #[event("order.hangs", unlisted)]
    async fn hangs(&self, _order: Order, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        if self.hang {
            println!("HANDLER STARTED {}", meta.id());
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// Receivers on their own ports, one store connection each, one shared `App`.
struct Replicas {
    urls: Vec<String>,
    app: Arc<App>,
    client: reqwest::Client,
}

impl Replicas {
    async fn start<S: IdempotencyStore>(app: Arc<App>, stores: Vec<S>, lease: Duration) -> Self {
        let mut urls = Vec::new();
        for store in stores {
            let receiver = Receiver::builder(Arc::clone(&app))
                .secret(SECRET)
                .lease(lease)
                .handler_timeout(lease / 2)
                .store(store)
                .build()
                .unwrap();
            urls.push(serve(receiver).await);
        }
        Self { urls, app, client: reqwest::Client::new() }
    }

    async fn send(&self, replica: usize, delivery: &SignedDelivery) -> (u16, serde_json::Value) {
        send(&self.client, &self.urls[replica % self.urls.len()], delivery).await
    }

    /// Delivers like a provider: again (to `replica`, then the next) after anything but
    /// a 2xx, until a 2xx. Answers the final body and how many attempts it took.
    async fn deliver(&self, replica: usize, event_type: &str, id: &str) -> (serde_json::Value, usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for attempt in 0.. {
            let (status, body) = self.send(replica + attempt, &delivery(event_type, id)).await;
            match status {
                200 => return (body, attempt + 1),
                409 | 500 | 503 => {
                    assert!(Instant::now() < deadline, "{id} still answered {status} {body} after 60 s");
                    tokio::time::sleep(Duration::from_millis(if status == 409 { 10 } else { 50 })).await;
                }
                other => panic!("{id}: unexpected {other} {body}"),
            }
        }
        unreachable!()
    }
}

async fn serve<S: IdempotencyStore>(receiver: Receiver<Arc<App>, S>) -> String {
    let router = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/groq", listener.local_addr().unwrap());
    tokio::spawn(async move { hookroute::axum::serve(listener, router).await.unwrap() });
    url
}

async fn send(client: &reqwest::Client, url: &str, delivery: &SignedDelivery) -> (u16, serde_json::Value) {
    let response = client.post(url).headers(delivery.headers.clone()).body(delivery.body.clone()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

/// Each delivery is signed afresh, as a provider's retry is.
fn delivery(event_type: &str, id: &str) -> SignedDelivery {
    TestEvent::<Groq>::new(event_type, serde_json::json!({"sku": "A-1"})).id(id).sign(SECRET)
}

/// Event ids no earlier run against the same server used.
fn run_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{nanos:x}", std::process::id())
}

async fn redis_stores(url: &str, n: usize) -> Vec<RedisStore> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(RedisStore::connect(url).await.unwrap());
    }
    stores
}

async fn postgres_stores(url: &str, n: usize) -> Vec<PostgresStore> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(PostgresStore::connect(url).await.unwrap());
    }
    stores
}

const EVENTS: usize = 1_000;
const COPIES: usize = 5;
const REPLICAS: usize = 3;

/// 1,000 events, each delivered 5 times, shuffled, 64 at a time, spread at random over
/// the replicas: every handler runs exactly once per event.
async fn every_event_runs_exactly_once<S: IdempotencyStore>(stores: Vec<S>) {
    assert!(stores.len() >= REPLICAS);
    let replicas = Arc::new(Replicas::start(Arc::new(App::default()), stores, Duration::from_secs(30)).await);
    let run = run_id();
    let seed = fastrand::u64(..);
    println!("shuffle seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut deliveries: Vec<(usize, usize)> =
        (0..EVENTS).flat_map(|event| (0..COPIES).map(move |copy| (event, copy))).collect();
    // Shuffled in blocks of 40 events, so the copies of an event are close enough
    // together to race each other, not only to find the event done.
    for block in deliveries.chunks_mut(40 * COPIES) {
        rng.shuffle(block);
    }
    let placement: Vec<usize> = deliveries.iter().map(|_| rng.usize(..REPLICAS)).collect();

    let answers: Vec<(String, usize)> = stream::iter(deliveries.iter().zip(placement))
        .map(|(&(event, _), replica)| {
            let (replicas, id) = (Arc::clone(&replicas), format!("evt_{run}_{event}"));
            async move {
                let (body, attempts) = replicas.deliver(replica, "order.created", &id).await;
                (body["status"].as_str().unwrap().to_owned(), attempts)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    let mut statuses: HashMap<&str, usize> = HashMap::new();
    for (status, _) in &answers {
        *statuses.entry(status.as_str()).or_default() += 1;
    }
    let retried = answers.iter().filter(|(_, attempts)| *attempts > 1).count();
    println!("answers {statuses:?}; {retried} deliveries met a copy in flight (409) and were retried");
    let wrong = replicas.app.runs.not_exactly_once();
    assert!(wrong.is_empty(), "events not run exactly once: {wrong:?}");
    assert_eq!(replicas.app.runs.events(), EVENTS, "events that ran");
    assert_eq!(statuses.get("processed"), Some(&EVENTS), "{statuses:?}");
    assert_eq!(statuses.get("duplicate"), Some(&(EVENTS * (COPIES - 1))), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_sharing_redis_run_each_event_exactly_once() {
    every_event_runs_exactly_once(redis_stores(&support::redis_url(), REPLICAS).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_sharing_postgres_run_each_event_exactly_once() {
    every_event_runs_exactly_once(postgres_stores(&support::postgres_url(), REPLICAS).await).await;
}

/// A failing handler releases the claim, so the provider's retry, landing on another
/// replica, processes the event.
async fn a_failed_handler_is_retried_on_another_replica<S: IdempotencyStore>(stores: Vec<S>) {
    let replicas = Replicas::start(Arc::new(App::default()), stores, Duration::from_secs(30)).await;
    let id = format!("evt_{}_flaky", run_id());
    replicas.app.fail_once.lock().unwrap().insert(id.clone());

    let (status, body) = replicas.send(0, &delivery("order.flaky", &id)).await;
    assert_eq!(status, 500, "{body}");
    let (status, body) = replicas.send(1, &delivery("order.flaky", &id)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("processed")), "{body}");
    let (status, body) = replicas.send(2, &delivery("order.flaky", &id)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    assert_eq!(replicas.app.runs.count(&id), 2, "one failed run, one successful run");
}

#[tokio::test]
async fn redis_a_failed_handler_is_retried_on_another_replica() {
    a_failed_handler_is_retried_on_another_replica(redis_stores(&support::redis_url(), REPLICAS).await).await;
}

#[tokio::test]
async fn postgres_a_failed_handler_is_retried_on_another_replica() {
    a_failed_handler_is_retried_on_another_replica(postgres_stores(&support::postgres_url(), REPLICAS).await).await;
}

/// The lease of the replica that is killed in [`a_replica_killed_mid_handler_holds_only_a_lease`].
const CHILD_LEASE: Duration = Duration::from_secs(3);

/// Not a test on its own: the replica process that the crash test starts and kills.
/// It serves one receiver whose `order.hangs` handler never finishes.
#[tokio::test]
#[ignore = "run by the crash tests as a separate process"]
async fn replica_process() {
    let (Ok(kind), Ok(url)) = (std::env::var("REPLICA_STORE"), std::env::var("REPLICA_STORE_URL")) else {
        panic!("the crash tests start this with REPLICA_STORE and REPLICA_STORE_URL set");
    };
    let app = Arc::new(App { hang: true, ..App::default() });
    let url = match kind.as_str() {
        "redis" => serve_child(app, RedisStore::connect(&url).await.unwrap()).await,
        "postgres" => serve_child(app, PostgresStore::connect(&url).await.unwrap()).await,
        other => panic!("unknown store {other}"),
    };
    println!("REPLICA LISTENING {url}");
    std::future::pending::<()>().await;
}

async fn serve_child<S: IdempotencyStore>(app: Arc<App>, store: S) -> String {
    let receiver = Receiver::builder(app)
        .secret(SECRET)
        .lease(CHILD_LEASE)
        .handler_timeout(CHILD_LEASE / 2)
        .store(store)
        .build()
        .unwrap();
    serve(receiver).await
}

/// A replica that dies (SIGKILL) while its handler runs cannot release its claim; it
/// holds only a lease. Until the lease ends the other replicas answer 409 (in flight);
/// after it, a redelivery is processed.
async fn a_replica_killed_mid_handler_holds_only_a_lease<S: IdempotencyStore>(kind: &str, url: &str, store: S) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &support::test_name(module_path!(), "replica_process"),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("REPLICA_STORE", kind)
        .env("REPLICA_STORE_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let child_url = wait_for(&mut lines, "REPLICA LISTENING");

    let id = format!("evt_{}_crash", run_id());
    let client = reqwest::Client::new();
    // The claim is made after this, so its lease runs out no earlier than `sent + lease`.
    let sent = Instant::now();
    let doomed = tokio::spawn({
        let (client, id) = (client.clone(), id.clone());
        async move {
            client
                .post(&child_url)
                .headers(delivery("order.hangs", &id).headers)
                .body(delivery("order.hangs", &id).body)
                .send()
                .await
        }
    });
    let started_line = tokio::task::spawn_blocking(move || wait_for(&mut lines, "HANDLER STARTED")).await.unwrap();
    assert_eq!(started_line, id);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(doomed.await.unwrap().is_err(), "the killed replica never answered");

    let survivor = Replicas::start(Arc::new(App::default()), vec![store], Duration::from_secs(30)).await;
    let (status, body) = survivor.send(0, &delivery("order.hangs", &id)).await;
    if sent.elapsed() < CHILD_LEASE {
        assert_eq!(status, 409, "the dead replica's lease still holds the event: {body}");
    }
    let (body, _) = survivor.deliver(0, "order.hangs", &id).await;
    assert_eq!(body["status"], "processed", "{body}");
    assert!(sent.elapsed() >= CHILD_LEASE, "processed before the dead replica's lease ran out");
    assert_eq!(survivor.app.runs.count(&id), 1);
}

/// What follows `prefix` on the first line of the replica's output that starts with it.
fn wait_for(lines: &mut impl Iterator<Item = std::io::Result<String>>, prefix: &str) -> String {
    loop {
        let line = lines.next().unwrap_or_else(|| panic!("the replica exited before printing {prefix:?}")).unwrap();
        // libtest may have written `test replica_process ... ` before it on the line.
        if let Some((_, rest)) = line.split_once(prefix) {
            return rest.trim().to_owned();
        }
    }
}

#[tokio::test]
async fn redis_a_replica_killed_mid_handler_holds_only_a_lease() {
    let url = support::redis_url();
    let store = RedisStore::connect(&url).await.unwrap();
    a_replica_killed_mid_handler_holds_only_a_lease("redis", &url, store).await;
}

#[tokio::test]
async fn postgres_a_replica_killed_mid_handler_holds_only_a_lease() {
    let url = support::postgres_url();
    let store = PostgresStore::connect(&url).await.unwrap();
    a_replica_killed_mid_handler_holds_only_a_lease("postgres", &url, store).await;
}

/// The store goes away while idle and again in the middle of a run: receivers answer
/// 503 at once and run no handler while it is away (fail closed); once it is back,
/// the provider's retries are processed; every event runs exactly once.
async fn an_outage_fails_closed_and_loses_nothing<S: IdempotencyStore>(
    mut outage: impl support::Outage,
    stores: Vec<S>,
) {
    let replicas = Arc::new(Replicas::start(Arc::new(App::default()), stores, Duration::from_secs(2)).await);
    let run = run_id();
    let id = move |n: usize| format!("evt_{run}_outage_{n}");

    // Up: processed.
    for n in 0..50 {
        let (body, _) = replicas.deliver(n, "order.created", &id(n)).await;
        assert_eq!(body["status"], "processed");
    }

    // Down: every delivery, new or already done, is 503, and no handler runs.
    outage.down();
    let mut slowest = Duration::ZERO;
    for n in 40..100 {
        let started = Instant::now();
        let (status, body) = replicas.send(n, &delivery("order.created", &id(n))).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(status, 503, "{body}");
        assert!(body["error"].as_str().unwrap().contains("unavailable"), "{body}");
    }
    println!("while the store was down, the slowest 503 took {slowest:?}");
    assert_eq!(replicas.app.runs.events(), 50, "a handler ran while the store was down");

    // Back: the retries are processed, what was done before stays done.
    outage.up();
    for n in 0..100 {
        let (body, _) = replicas.deliver(n, "order.created", &id(n)).await;
        assert_eq!(body["status"], if n < 50 { "duplicate" } else { "processed" }, "{n}: {body}");
    }

    // Gone in the middle of a run of 200 events, back a second later.
    let app = Arc::clone(&replicas.app);
    let fault = tokio::spawn(async move {
        while app.runs.events() < 150 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        outage.down();
        tokio::time::sleep(Duration::from_secs(1)).await;
        outage.up();
        outage
    });
    let attempts: Vec<usize> = stream::iter(100..300)
        .map(|n| {
            let (replicas, id) = (Arc::clone(&replicas), id(n));
            async move { replicas.deliver(n, "order.created", &id).await.1 }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let _outage = fault.await.unwrap();
    let retried = attempts.iter().filter(|&&attempts| attempts > 1).count();
    println!("{retried} of 200 deliveries were retried across the outage");
    let wrong = replicas.app.runs.not_exactly_once();
    assert!(wrong.is_empty(), "events not run exactly once: {wrong:?}");
    assert_eq!(replicas.app.runs.events(), 300, "events lost");
}

/// Redis killed with SIGKILL and restarted on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_fails_closed_and_loses_nothing() {
    let redis = support::OwnRedis::start();
    let mut stores = Vec::new();
    for _ in 0..2 {
        stores.push(RedisStore::builder(redis.url()).timeout(Duration::from_millis(500)).connect().await.unwrap());
    }
    an_outage_fails_closed_and_loses_nothing(redis, stores).await;
}

/// PostgreSQL cut off: every connection dropped, new ones refused, then restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_fails_closed_and_loses_nothing() {
    let _alone = support::exclusive().await;
    let (proxy, url) = support::Proxy::postgres();
    let mut stores = Vec::new();
    for _ in 0..2 {
        stores.push(PostgresStore::builder(&url).timeout(Duration::from_millis(500)).connect().await.unwrap());
    }
    an_outage_fails_closed_and_loses_nothing(proxy, stores).await;
}
