//! Inbox mode over a real socket on 127.0.0.1: the answer does not wait for the
//! handler, retries follow the schedule, dead letters wait for a replay, an inbox
//! outage is a 503 with nothing acknowledged, and an answer lost after the insert
//! makes the provider's retry a duplicate. Run against every backend.

use crate::support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookroute::inbox::{
    DeliveryState, Enqueued, Inbox, InboxAdmin, InboxError, InboxStats, Lease, Leased, MemoryInbox, NewDelivery,
    RetrySchedule,
};
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, Receiver, WorkerHandle};
use serde::Deserialize;

const SECRET: &str = "whsec_inbox";

/// The key the receiver stores event `id` under: in the namespace its secret names.
fn key(id: &str) -> String {
    format!("{}:groq:event:{id}", hookroute::Secret::new(SECRET).fingerprint())
}

/// Stores a `job.run` delivery of event `id` as the receiver would, signed at
/// `signed_at`: queued. Answers its key.
async fn stored_as_received(
    inbox: &dyn InboxAdmin,
    delivery: &SignedDelivery,
    id: &str,
    signed_at: Option<u64>,
) -> String {
    let (headers, key) = (hookroute::inbox::encode_headers(&delivery.headers), key(id));
    let new = NewDelivery {
        key: &key,
        id,
        event_type: "job.run",
        headers: &headers,
        body: &delivery.body,
        signed_at,
        order: hookroute::inbox::Order::NONE,
    };
    assert_eq!(inbox.enqueue(&new).await.unwrap(), Enqueued::Queued);
    key
}

#[derive(Debug, Deserialize)]
struct Job {
    #[serde(default)]
    fail_times: u32,
    #[serde(default)]
    permanent: bool,
    #[serde(default)]
    wait_for_gate: bool,
}

struct App {
    runs: support::Runs,
    /// Handlers that wait for the gate block until the test adds a permit.
    gate: tokio::sync::Semaphore,
    started: tokio::sync::Notify,
}

impl Default for App {
    fn default() -> Self {
        Self {
            runs: support::Runs::default(),
            gate: tokio::sync::Semaphore::new(0),
            started: tokio::sync::Notify::new(),
        }
    }
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("job.run", unlisted)]
    async fn run(&self, job: Job, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        if job.wait_for_gate {
            self.started.notify_one();
            // One permit lets one handler through.
            self.gate.acquire().await.map_err(HandlerError::msg)?.forget();
        }
        if job.permanent {
            return Err(HandlerError::permanent("no such account"));
        }
        let attempt = meta.attempt().expect("inbox mode numbers attempts");
        if attempt <= job.fail_times {
            return Err(HandlerError::msg(format!("attempt {attempt} failed")));
        }
        Ok(())
    }
}

struct Served {
    url: String,
    app: Arc<App>,
    inbox: Arc<dyn InboxAdmin>,
    workers: Option<WorkerHandle>,
    client: reqwest::Client,
}

impl Served {
    async fn start(inbox: Arc<dyn InboxAdmin>, workers: usize) -> Self {
        let app = Arc::new(App::default());
        let receiver = Receiver::builder(Arc::clone(&app))
            .secret(SECRET)
            .inbox(Arc::clone(&inbox))
            .retry_schedule(RetrySchedule::new([100, 200, 300].map(Duration::from_millis)).jitter(0.0))
            .build()
            .unwrap();
        let workers = (workers > 0).then(|| {
            receiver
                .worker()
                .unwrap()
                .concurrency(workers)
                .lease(Duration::from_secs(2))
                .poll_interval(Duration::from_millis(20))
                .spawn()
        });
        let router = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/groq", listener.local_addr().unwrap());
        tokio::spawn(async move { hookroute::axum::serve(listener, router).await.unwrap() });
        Self { url, app, inbox, workers, client: reqwest::Client::new() }
    }

    async fn send(&self, id: &str, data: serde_json::Value) -> (u16, String) {
        let delivery = TestEvent::<Groq>::new("job.run", data).id(id).sign(SECRET);
        let response = self.client.post(&self.url).headers(delivery.headers).body(delivery.body).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Waits until the delivery of `id` is in `state`, for at most 10 s.
    async fn until(&self, id: &str, state: DeliveryState) -> hookroute::inbox::StoredDelivery {
        let key = key(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // An error is a backend still reconnecting after an outage: look again.
            let stored = self.inbox.get(&key).await.ok().flatten();
            if let Some(stored) = stored.as_ref().filter(|stored| stored.state == state) {
                return stored.clone();
            }
            assert!(Instant::now() < deadline, "{id} never reached {state}: {stored:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown().await;
        }
    }
}

fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{nanos:x}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The answer comes while the handler is still blocked; the event is done once the
/// handler is let go. A redelivery meanwhile is a duplicate and runs nothing.
async fn answers_before_the_handler_finishes(inbox: Arc<dyn InboxAdmin>) {
    let served = Served::start(inbox, 2).await;
    let id = unique("evt_blocked");
    let (status, body) = served.send(&id, serde_json::json!({"wait_for_gate": true})).await;
    assert_eq!((status, body.as_str()), (202, r#"{"status":"queued"}"#));
    tokio::time::timeout(Duration::from_secs(10), served.app.started.notified()).await.expect("the handler started");
    served.until(&id, DeliveryState::Running).await;
    let (status, body) = served.send(&id, serde_json::json!({"wait_for_gate": true})).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"duplicate"}"#));
    served.app.gate.add_permits(1);
    let done = served.until(&id, DeliveryState::Done).await;
    assert_eq!(done.attempts, 1);
    assert_eq!(served.app.runs.count(&id), 1);
    served.stop().await;
}

/// Fails twice then succeeds: 3 attempts, done. Permanent: dead at once. Every attempt
/// failing: dead after the schedule with the last error. Replayed: runs and is done.
async fn retries_then_dead_letters_then_replays(inbox: Arc<dyn InboxAdmin>) {
    let served = Served::start(inbox, 4).await;
    let (flaky, permanent, hopeless) = (unique("evt_flaky"), unique("evt_permanent"), unique("evt_hopeless"));
    assert_eq!(served.send(&flaky, serde_json::json!({"fail_times": 2})).await.0, 202);
    assert_eq!(served.send(&permanent, serde_json::json!({"permanent": true})).await.0, 202);
    assert_eq!(served.send(&hopeless, serde_json::json!({"fail_times": 99})).await.0, 202);

    let done = served.until(&flaky, DeliveryState::Done).await;
    assert_eq!((done.attempts, served.app.runs.count(&flaky)), (3, 3));
    assert_eq!(done.last_error.as_deref(), Some("attempt 2 failed"));

    let dead = served.until(&permanent, DeliveryState::Dead).await;
    assert_eq!((dead.attempts, served.app.runs.count(&permanent)), (1, 1), "dead at once");
    assert_eq!(dead.last_error.as_deref(), Some("no such account"));

    // Schedule of 3 delays: 4 attempts, then dead with the last error.
    let dead = served.until(&hopeless, DeliveryState::Dead).await;
    assert_eq!((dead.attempts, served.app.runs.count(&hopeless)), (4, 4));
    assert_eq!(dead.last_error.as_deref(), Some("attempt 4 failed"));

    // A provider's retry of a dead letter is a duplicate: it stays for the operator.
    assert_eq!(served.send(&hopeless, serde_json::json!({"fail_times": 99})).await.0, 200);
    // Replayed, it gets a fresh schedule (its stored data still fails every time).
    assert!(served.inbox.replay(&key(&hopeless)).await.unwrap());
    let dead_again = served.until(&hopeless, DeliveryState::Dead).await;
    assert_eq!(served.app.runs.count(&hopeless), 8, "the replay ran a fresh schedule of 4 attempts");
    assert_eq!(dead_again.attempts, 4);
    served.stop().await;
}

/// A dead letter whose cause went away: replayed, it runs and is done.
async fn a_replayed_dead_letter_is_done(inbox: Arc<dyn InboxAdmin>) {
    // Fails its first attempt; with no retries in this receiver's schedule it dies...
    let id = unique("evt_replay");
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app))
        .secret(SECRET)
        .inbox(Arc::clone(&inbox))
        .retry_schedule(RetrySchedule::new([]))
        .build()
        .unwrap();
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({"fail_times": 1})).id(&id).sign(SECRET);
    assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    let workers = receiver.worker().unwrap().poll_interval(Duration::from_millis(20)).spawn();
    let key = key(&id);
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.get(&key).await.unwrap().map(|d| d.state) != Some(DeliveryState::Dead) {
        assert!(Instant::now() < deadline, "never dead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and replayed, its first attempt is numbered 1 again and fails again; the
    // cause "went away" once attempts count from a fresh schedule that allows one retry.
    workers.shutdown().await;
    let receiver = Receiver::builder(Arc::clone(&app))
        .secret(SECRET)
        .inbox(Arc::clone(&inbox))
        .retry_schedule(RetrySchedule::new([Duration::from_millis(50)]).jitter(0.0))
        .build()
        .unwrap();
    assert!(inbox.replay(&key).await.unwrap());
    let workers = receiver.worker().unwrap().poll_interval(Duration::from_millis(20)).spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.get(&key).await.unwrap().map(|d| d.state) != Some(DeliveryState::Done) {
        assert!(Instant::now() < deadline, "the replayed dead letter never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.runs.count(&id), 3, "one dead attempt, then two after the replay");
    workers.shutdown().await;
}

/// An answer lost after the insert (the process died, the connection dropped): the
/// provider's retry is a duplicate and there is one record.
async fn a_lost_answer_makes_the_retry_a_duplicate(inbox: Arc<dyn InboxAdmin>) {
    let served = Served::start(Arc::clone(&inbox), 0).await;
    let id = unique("evt_lost_answer");
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).id(&id).sign(SECRET);
    // What the receiver inserts for this delivery, as if it had crashed before answering.
    let key = stored_as_received(&*inbox, &delivery, &id, None).await;
    let (status, body) = served.send(&id, serde_json::json!({})).await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"duplicate"}"#));
    let queued = inbox.list(DeliveryState::Queued, 1000).await.unwrap();
    assert_eq!(queued.iter().filter(|d| d.key == key).count(), 1, "one record");
    served.stop().await;
}

/// A delivery whose every attempt kills its worker (or hangs it past its lease) is not
/// taken for ever: once its attempts are used up, the next worker dead-letters it
/// without running it.
async fn a_delivery_that_kills_its_workers_is_dead_lettered(inbox: Arc<dyn InboxAdmin>) {
    let receiving = Served::start(Arc::clone(&inbox), 0).await;
    let id = unique("evt_poison");
    assert_eq!(receiving.send(&id, serde_json::json!({})).await.0, 202);
    // The schedule allows 4 attempts; 4 workers take the delivery and die holding it.
    for _ in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while inbox.take(Duration::from_millis(50)).await.unwrap().is_none() {
            assert!(Instant::now() < deadline, "the delivery was not given out again after its lease");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let working = Served::start(Arc::clone(&inbox), 1).await;
    let dead = working.until(&id, DeliveryState::Dead).await;
    assert!(dead.last_error.as_deref().unwrap_or_default().contains("all 4 attempts were used"), "{dead:?}");
    assert_eq!(working.app.runs.count(&id), 0, "run a fifth time");
    working.stop().await;
    receiving.stop().await;
}

/// A replay does not check the timestamp window again: the delivery was verified when
/// it arrived. Here its dead letter is replayed an hour after it was signed, far past
/// the 300 s window a fresh delivery must meet, and it runs.
async fn a_replay_runs_past_the_timestamp_window(inbox: Arc<dyn InboxAdmin>) {
    let served = Served::start(Arc::clone(&inbox), 0).await;
    let id = unique("evt_old");
    let an_hour_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3600;
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).id(&id).timestamp(an_hour_ago).sign(SECRET);
    // Sent now, it is refused...
    let response =
        served.client.post(&served.url).headers(delivery.headers.clone()).body(delivery.body.clone()).send().await;
    assert_eq!(response.unwrap().status(), 401);
    // ... but stored when it was fresh, dead-lettered, and replayed an hour later, it runs.
    let key = stored_as_received(&*inbox, &delivery, &id, Some(an_hour_ago)).await;
    let taken = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    inbox.dead_letter(&taken.lease, "the ledger was down").await.unwrap();
    assert!(inbox.replay(&key).await.unwrap());
    let working = Served::start(Arc::clone(&inbox), 1).await;
    working.until(&id, DeliveryState::Done).await;
    assert_eq!(working.app.runs.count(&id), 1);
    working.stop().await;
    served.stop().await;
}

/// Two apps on one inbox (the default prefix or table): the inbox belongs to the first
/// receiver's namespace, so a second app (another secret) is refused, 503 on every delivery, its workers take
/// nothing, and every event of the first runs in the first's handlers. A key rotation
/// (the new secret first, the old beside it) keeps the inbox.
async fn a_second_app_on_one_inbox_is_refused(inbox: Arc<dyn InboxAdmin>) {
    let first = Served::start(Arc::clone(&inbox), 1).await;
    // The first delivery binds the inbox to the first app (an inbox belongs to the
    // receiver that uses it first): before the other app's workers could.
    let bound = unique("first_app");
    assert_eq!(first.send(&bound, serde_json::json!({})).await.0, 202);
    let other_app = Arc::new(App::default());
    let other = Receiver::builder(Arc::clone(&other_app))
        .secret("whsec_another_app")
        .inbox(Arc::clone(&inbox))
        .build()
        .unwrap();
    let other_workers = other.worker().unwrap().poll_interval(Duration::from_millis(20)).spawn();
    let ids: Vec<String> = (0..10).map(|_| unique("first_app")).collect();
    for id in &ids {
        assert_eq!(first.send(id, serde_json::json!({})).await.0, 202);
        let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).id(id).sign("whsec_another_app");
        let outcome = other.receive(&delivery.headers, &delivery.body).await;
        assert_eq!(outcome.status(), 503, "{}", outcome.body());
    }
    for id in ids.iter().chain([&bound]) {
        first.until(id, DeliveryState::Done).await;
        assert_eq!(first.app.runs.count(id), 1);
    }
    assert_eq!(other_app.runs.events(), 0, "the other app ran none of the first's events");
    let health = other.health().await;
    assert!(health.take_error.as_deref().is_some_and(|error| error.contains("another receiver")), "{health:?}");
    other_workers.shutdown().await;

    // The first app rotates its secret: the new one first, the old one beside it.
    let rotated = Receiver::builder(Arc::new(App::default()))
        .secret("whsec_rotated")
        .secret(SECRET)
        .inbox(Arc::clone(&inbox))
        .build()
        .unwrap();
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).id(unique("rotated")).sign("whsec_rotated");
    assert_eq!(rotated.receive(&delivery.headers, &delivery.body).await.status(), 202);
    first.stop().await;
}

/// An inbox with no workers does not take deliveries without end: past `max_waiting`
/// deliveries waiting, a new one is 503
/// `inbox_full` (the provider retries later); once workers drain it, 202 again.
async fn a_full_inbox_answers_503_until_it_drains(inbox: Arc<dyn InboxAdmin>) {
    let app = Arc::new(App::default());
    let receiver =
        Receiver::builder(Arc::clone(&app)).secret(SECRET).inbox(Arc::clone(&inbox)).max_waiting(5).build().unwrap();
    let send = |id: String| {
        let receiver = receiver.clone();
        async move {
            let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).id(id).sign(SECRET);
            let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
            (outcome.status().as_u16(), outcome.body().into_owned())
        }
    };
    for _ in 0..5 {
        assert_eq!(send(unique("fill")).await.0, 202);
    }
    for _ in 0..3 {
        let (status, body) = send(unique("past")).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("5 deliveries waiting, its limit is 5"), "{body}");
    }
    let workers = receiver.worker().unwrap().poll_interval(Duration::from_millis(20)).spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = send(unique("after")).await;
        if status == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "the drained inbox never took deliveries again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    workers.shutdown().await;
}

/// A done record does not keep its body and headers for the whole TTL: the payload goes
/// after its own
/// retention (1 s here, a day by default); the key stays, so a redelivery is still a
/// duplicate; a replay past it is dead-lettered, saying why.
async fn a_done_payload_goes_after_its_retention_and_its_key_stays(inbox: Arc<dyn InboxAdmin>) {
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app))
        .secret(SECRET)
        .inbox(Arc::clone(&inbox))
        .payload_retention(Duration::from_secs(1))
        .build()
        .unwrap();
    let workers = receiver.worker().unwrap().poll_interval(Duration::from_millis(20)).spawn();
    let id = unique("retained");
    let delivery =
        TestEvent::<Groq>::new("job.run", serde_json::json!({"padding": "x".repeat(10_000)})).id(&id).sign(SECRET);
    assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stored = inbox.get(&key(&id)).await.unwrap().expect("the record stays");
        if stored.state == DeliveryState::Done && stored.body.is_empty() && stored.headers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the payload was kept past its retention: {stored:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = receiver.receive(&delivery.headers, &delivery.body).await;
    assert_eq!((again.status().as_u16(), again.body().into_owned()), (200, r#"{"status":"duplicate"}"#.to_owned()));
    assert!(inbox.replay(&key(&id)).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let stored = inbox.get(&key(&id)).await.unwrap().unwrap();
        if stored.state == DeliveryState::Dead {
            break stored;
        }
        assert!(Instant::now() < deadline, "{stored:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(dead.last_error.as_deref().is_some_and(|error| error.contains("payload was dropped")), "{dead:?}");
    assert_eq!(app.runs.count(&id), 1);
    workers.shutdown().await;
}

/// The tests above, each a `#[tokio::test]` in module `$module` on the inbox `$make`.
macro_rules! on_backend {
    ($module:ident, $make:expr) => {
        on_backend!(@tests $module, $make,
            answers_before_the_handler_finishes retries_then_dead_letters_then_replays a_replayed_dead_letter_is_done
            a_lost_answer_makes_the_retry_a_duplicate a_replay_runs_past_the_timestamp_window
            a_delivery_that_kills_its_workers_is_dead_lettered a_second_app_on_one_inbox_is_refused
            a_full_inbox_answers_503_until_it_drains a_done_payload_goes_after_its_retention_and_its_key_stays);
    };
    (@tests $module:ident, $make:expr, $($test:ident)+) => {
        mod $module {
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(Arc::new($make)).await;
                }
            )+
        }
    };
}

on_backend!(memory, MemoryInbox::new());
on_backend!(sqlite, {
    let dir = tempfile::tempdir().unwrap().keep();
    hookroute::inbox::SqliteInbox::open(dir.join("inbox.db")).await.unwrap()
});
on_backend!(
    postgres,
    hookroute::inbox::PostgresInbox::builder(support::postgres_url()).table(unique("inbox")).connect().await.unwrap()
);
on_backend!(
    redis,
    hookroute::inbox::RedisInbox::builder(support::redis_url())
        .prefix(format!("{}:", unique("inbox")))
        .connect()
        .await
        .unwrap()
);

/// The inbox is down: every delivery is 503 and nothing is acknowledged; once it is
/// back, the provider's retries are queued once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_outage_is_a_503_and_the_retries_queue_once() {
    let _alone = support::exclusive().await;
    let (mut proxy, url) = support::Proxy::postgres();
    let inbox = hookroute::inbox::PostgresInbox::builder(&url)
        .table(unique("inbox_outage"))
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let inbox: Arc<dyn InboxAdmin> = Arc::new(inbox);
    let served = Served::start(Arc::clone(&inbox), 0).await;
    let ids: Vec<String> = (0..20).map(|n| unique(&format!("evt_outage_{n}"))).collect();
    proxy.cut();
    for id in &ids {
        let (status, body) = served.send(id, serde_json::json!({})).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("inbox unavailable"), "{body}");
    }
    proxy.resume();
    for id in &ids {
        // The pool reconnects; a provider retries on 503 until it gets a 2xx.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = served.send(id, serde_json::json!({})).await;
            if status == 202 {
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(Instant::now() < deadline, "still 503 after the inbox came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(served.send(id, serde_json::json!({})).await.0, 200, "the next retry is a duplicate");
    }
    let stats = inbox.stats().await.unwrap();
    assert_eq!(stats.queued, 20, "{stats:?}");
    served.stop().await;
}

/// What `InboxError` a backend that cannot be reached gives at connect time.
#[tokio::test]
async fn a_backend_that_cannot_be_reached_says_where() {
    let url = format!("redis://127.0.0.1:{}/", support::closed_port());
    let error = hookroute::inbox::connect(&url).await.err().expect("nothing listens there");
    assert!(matches!(error, InboxError::Connect { .. }), "{error}");
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
    // An inbox's errors say "inbox", never a store's words.
    assert!(error.to_string().starts_with("cannot reach the Redis inbox at "), "{error}");
    let error = hookroute::inbox::connect(&format!("{url}?table=x")).await.err().expect("a Redis URL has no table");
    assert!(error.to_string().starts_with("invalid inbox configuration: a Redis inbox takes"), "{error}");
    let error = InboxError::from(hookroute::store::StoreError::Unavailable("timed out".into()));
    assert_eq!(error.to_string(), "inbox unavailable: timed out");
}

/// The inbox goes away after a handler succeeded, while its delivery is being marked
/// done. Back within the lease (2 s here): the worker's repeated attempt to mark it
/// lands and the handler ran once. Away for longer than the lease: the mark is given
/// up, the lease runs out and the delivery runs again: at-least-once, never lost, as
/// README's inbox section says handlers must allow for.
async fn an_outage_while_marking_done(mut outage: impl support::Outage, inbox: Arc<dyn InboxAdmin>) {
    const LEASE: Duration = Duration::from_secs(2);
    let served = Served::start(Arc::clone(&inbox), 1).await;
    for (away, runs) in [(LEASE / 3, 1), (LEASE * 2, 2)] {
        let id = unique("evt_marking");
        let started = served.app.started.notified();
        assert_eq!(served.send(&id, serde_json::json!({"wait_for_gate": true})).await.0, 202);
        started.await;
        outage.down();
        // Until the cut has reached the connections, a mark could still get through.
        tokio::time::sleep(Duration::from_millis(100)).await;
        served.app.gate.add_permits(1);
        tokio::time::sleep(away).await;
        outage.up();
        // The run again, when there is one, waits at the gate too.
        served.app.gate.add_permits(runs - 1);
        let done = served.until(&id, DeliveryState::Done).await;
        assert_eq!(served.app.runs.count(&id), runs, "away {away:?}");
        // A take whose answer the outage lost also counts an attempt, without a run.
        assert!(done.attempts as usize >= runs, "away {away:?}: {done:?}");
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_outage_while_marking_done() {
    let _alone = support::exclusive().await;
    let (proxy, url) = support::Proxy::postgres();
    let inbox = hookroute::inbox::PostgresInbox::builder(&url)
        .table(unique("inbox_marking"))
        .timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    an_outage_while_marking_done(proxy, Arc::new(inbox)).await;
}

/// Redis killed (SIGKILL) and restarted; it keeps what it acknowledged (AOF, fsync always).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_an_outage_while_marking_done() {
    let redis = support::OwnRedis::start();
    let inbox =
        hookroute::inbox::RedisInbox::builder(redis.url()).timeout(Duration::from_secs(1)).connect().await.unwrap();
    an_outage_while_marking_done(redis, Arc::new(inbox)).await;
}

/// Deliveries processed with a 1 ms TTL.
const PROCESSED: usize = 2_500;

/// Processes [`PROCESSED`] deliveries through `inbox` (insert, take, mark done with a
/// 1 ms TTL), then one more after the TTLs ran out, so that the sweeps have run.
async fn process_many(inbox: &dyn InboxAdmin) {
    let run = unique("evt_bounded");
    for n in 0..=PROCESSED {
        if n == PROCESSED {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        process_one(inbox, &run, n, Duration::from_millis(1)).await;
    }
}

/// Inserts delivery `<run>_<n>` (body `{}`), takes it, and marks it done for `ttl`.
async fn process_one(inbox: &dyn InboxAdmin, run: &str, n: usize, ttl: Duration) {
    let (id, key) = (format!("{run}_{n}"), format!("groq:event:{run}_{n}"));
    let new = NewDelivery {
        key: &key,
        id: &id,
        event_type: "job.run",
        headers: b"",
        body: b"{}",
        signed_at: None,
        order: hookroute::inbox::Order::NONE,
    };
    assert_eq!(inbox.enqueue(&new).await.unwrap(), Enqueued::Queued);
    let leased = inbox.take(Duration::from_secs(30)).await.unwrap().expect("the delivery just queued");
    inbox.complete(&leased.lease, ttl).await.unwrap();
}

/// Done records are purged after their TTL: what the inbox holds does not grow with
/// the number of deliveries processed (SQLite sweeps every 1,024 insertions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_storage_does_not_grow_with_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    process_many(&hookroute::inbox::SqliteInbox::open(&path).await.unwrap()).await;
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM hookroute_inbox", [], |row| row.get(0))
        .unwrap();
    assert!(rows <= 1_100, "{rows} rows kept after {PROCESSED} deliveries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_storage_does_not_grow_with_deliveries() {
    let table = unique("inbox_bounded");
    let inbox = hookroute::inbox::PostgresInbox::builder(support::postgres_url())
        .table(&table)
        .sweep_every(Some(Duration::from_millis(100)))
        .connect()
        .await
        .unwrap();
    process_many(&inbox).await;
    let client = postgres_client().await;
    let rows: i64 = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
    assert!(rows <= 10, "{rows} rows kept after {PROCESSED} deliveries");
}

/// A PostgreSQL inbox on `table` whose done rows go only when a test says so.
async fn unswept_postgres_inbox(table: &str) -> hookroute::inbox::PostgresInbox {
    hookroute::inbox::PostgresInbox::builder(support::postgres_url())
        .table(table)
        .sweep_every(None)
        .connect()
        .await
        .unwrap()
}

/// A client of the tests' PostgreSQL, to look at an inbox's table.
async fn postgres_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&support::postgres_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A pass over payloads past their retention deletes the done rows already past their
/// TTL, as the sweep would, rather than rewriting each one empty just before the sweep
/// deletes it (with a retention as long as the TTL, every done row was written twice
/// more); a row within its TTL keeps its record and loses its payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forgetting_payloads_deletes_expired_rows_instead_of_rewriting_them() {
    let table = unique("inbox_forget");
    let inbox = unswept_postgres_inbox(&table).await;
    let run = unique("evt_forget");
    for (n, ttl) in [Duration::from_millis(1), Duration::from_secs(600)].into_iter().enumerate() {
        process_one(&inbox, &run, n, ttl).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(inbox.forget_payloads(Duration::ZERO).await.unwrap(), 2);
    let client = postgres_client().await;
    let rows: Vec<(String, i32)> = client
        .query(&format!("SELECT key, octet_length(body) FROM {table} ORDER BY key"), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(rows, [(format!("groq:event:{run}_1"), 0)], "the expired row goes, the other is emptied");
}

/// The payload pass goes in batches (5,000 rows a statement): with more rows than one
/// batch to delete and to empty, it goes on until none is left, and touches nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forgetting_payloads_goes_on_past_one_batch() {
    let table = unique("inbox_batches");
    let inbox = unswept_postgres_inbox(&table).await;
    let client = postgres_client().await;
    // 12,000 done rows past their TTL, 6,000 done within it, 3 still queued: each past
    // its payload's retention.
    let fill = |from: u32, to: u32, state: &str, due: &str| {
        format!(
            "INSERT INTO {table} (key, event_id, event_type, headers, body, state, attempts, due_at, received_at,
                 updated_at)
             SELECT 'groq:event:' || n, 'evt_' || n, 'resource.created', 'h'::bytea, 'body'::bytea, '{state}', 1,
                 {due}, now() - interval '1 hour', now() - interval '1 hour'
             FROM generate_series({from}, {to}) AS n"
        )
    };
    client.batch_execute(&fill(1, 12_000, "done", "now() - interval '1 minute'")).await.unwrap();
    client.batch_execute(&fill(12_001, 18_000, "done", "now() + interval '1 hour'")).await.unwrap();
    client.batch_execute(&fill(18_001, 18_003, "queued", "now()")).await.unwrap();
    assert_eq!(inbox.forget_payloads(Duration::from_secs(60)).await.unwrap(), 18_000);
    let left: Vec<(String, i64, i64)> = client
        .query(
            &format!(
                "SELECT state, count(*), sum(octet_length(body))::bigint FROM {table} GROUP BY state ORDER BY state"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(
        left,
        [("done".to_owned(), 6_000, 0), ("queued".to_owned(), 3, 12)],
        "the expired rows gone, the others emptied, the queued ones untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_storage_does_not_grow_with_deliveries() {
    let prefix = format!("{}:", unique("inbox_bounded"));
    let inbox = hookroute::inbox::RedisInbox::builder(support::redis_url()).prefix(&prefix).connect().await.unwrap();
    process_many(&inbox).await;
    // Every key under the prefix, and every entry of its streams and sorted sets.
    let mut redis =
        ::redis::Client::open(support::redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut redis).await.unwrap();
    let mut entries = 0;
    for key in &keys {
        let kind: String = ::redis::cmd("TYPE").arg(key).query_async(&mut redis).await.unwrap();
        entries += match kind.as_str() {
            "stream" => ::redis::cmd("XLEN").arg(key).query_async::<usize>(&mut redis).await.unwrap(),
            "zset" => ::redis::cmd("ZCARD").arg(key).query_async::<usize>(&mut redis).await.unwrap(),
            _ => 1,
        };
    }
    assert!(entries <= 10, "{entries} entries kept after {PROCESSED} deliveries, in {keys:?}");
}

/// Hung handlers: 2 deliveries whose handler never returns, on a worker
/// running 2 at once, then 20 ordinary ones. Workers take the receiver's handler
/// timeout (1 s here, 30 s by default): the hung ones fail their attempt and are
/// retried, and the ordinary ones all run: two hung handlers do not hold both slots
/// for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_handlers_time_out_under_the_receivers_handler_timeout() {
    let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app))
        .secret(SECRET)
        .inbox(Arc::clone(&inbox))
        .handler_timeout(Duration::from_secs(1))
        .lease(Duration::from_secs(3))
        .retry_schedule(RetrySchedule::new([100, 200, 300].map(Duration::from_millis)).jitter(0.0))
        .build()
        .unwrap();
    let workers = receiver.worker().unwrap().concurrency(2).poll_interval(Duration::from_millis(20)).spawn();
    let hung = [unique("hung"), unique("hung")];
    let ordinary: Vec<String> = (0..20).map(|_| unique("ordinary")).collect();
    for (id, gate) in hung.iter().map(|id| (id, true)).chain(ordinary.iter().map(|id| (id, false))) {
        let delivery =
            TestEvent::<Groq>::new("job.run", serde_json::json!({ "wait_for_gate": gate })).id(id).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in &ordinary {
        while app.runs.count(id) == 0 {
            assert!(Instant::now() < deadline, "{id} never ran behind the hung handlers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for id in &hung {
        let stored = inbox.get(&key(id)).await.unwrap().unwrap();
        assert!(
            stored.state == DeliveryState::Retrying || stored.attempts >= 2,
            "a hung handler's attempt timed out and is retried: {stored:?}"
        );
        assert!(
            stored.last_error.as_deref().is_some_and(|error| error.contains("did not finish within 1s")),
            "{stored:?}"
        );
    }
    app.gate.add_permits(100);
    workers.shutdown().await;
}

/// Redis loses the stream's consumer group (a restart
/// without persistence, FLUSHALL, a failover to an empty replica). Workers create it
/// again when a take meets it missing, and the deliveries sent afterwards are handled:
/// a take does not keep failing with NOGROUP while HTTP answers 202.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_workers_recreate_a_lost_consumer_group() {
    let own = support::OwnRedis::start();
    let inbox: Arc<dyn InboxAdmin> =
        Arc::new(hookroute::inbox::RedisInbox::builder(own.url()).connect().await.unwrap());
    let served = Served::start(Arc::clone(&inbox), 2).await;
    let before = unique("before_flush");
    assert_eq!(served.send(&before, serde_json::json!({})).await.0, 202);
    served.until(&before, DeliveryState::Done).await;

    let client = ::redis::Client::open(own.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    ::redis::cmd("FLUSHALL").query_async::<()>(&mut connection).await.unwrap();

    let after: Vec<String> = (0..3).map(|_| unique("after_flush")).collect();
    for id in &after {
        assert_eq!(served.send(id, serde_json::json!({})).await.0, 202);
    }
    for id in &after {
        served.until(id, DeliveryState::Done).await;
        assert_eq!(served.app.runs.count(id), 1);
    }
    served.stop().await;
}

/// A worker that cannot take (the inbox cut off) is a stall that HTTP never shows:
/// after a few polls the receiver's health says so, and `/healthz` answers 503 with the
/// reason, until the inbox answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_when_workers_cannot_take() {
    let _alone = support::exclusive().await;
    let (mut proxy, url) = support::Proxy::postgres();
    let inbox = hookroute::inbox::PostgresInbox::builder(&url)
        .table(unique("inbox_health"))
        .timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let receiver = Receiver::builder(Arc::new(App::default())).secret(SECRET).inbox(inbox).build().unwrap();
    let workers = receiver.worker().unwrap().poll_interval(Duration::from_millis(20)).spawn();
    let router = axum::Router::new().route("/healthz", hookroute::axum::health(receiver.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthz = format!("http://{}/healthz", listener.local_addr().unwrap());
    tokio::spawn(async move { hookroute::axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();
    let check = || async {
        let response = client.get(&healthz).send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).unwrap())
    };

    let health = receiver.health().await;
    assert!(health.is_ready(), "{health:?}");
    assert_eq!((health.workers, health.inbox_reachable), (1, Some(true)));
    assert_eq!(check().await.0, 200);

    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (status, body) = loop {
        let (status, body) = check().await;
        if status == 503 && body["workers_taking"] == false {
            break (status, body);
        }
        assert!(Instant::now() < deadline, "the stall never showed: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503);
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["inbox"], "unreachable", "{body}");
    assert!(body["take_error"].as_str().is_some_and(|error| !error.is_empty()), "{body}");

    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    while check().await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    workers.shutdown().await;
}

/// An inbox whose full `stats` never answer in time, as a PostgreSQL table holding
/// days of done records does not (each read to be counted: 440 ms for 2,000,000),
/// while its stats without the done ones answer at once.
struct SlowToCountDone(MemoryInbox);

#[async_trait::async_trait]
impl Inbox for SlowToCountDone {
    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
        self.0.enqueue(delivery).await
    }
    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        self.0.take(lease).await
    }
    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        self.0.renew(lease, duration).await
    }
    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        self.0.complete(lease, ttl).await
    }
    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.0.retry(lease, delay, error).await
    }
    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        self.0.dead_letter(lease, error).await
    }
    async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
        self.0.release(lease).await
    }
    async fn stats(&self) -> Result<InboxStats, InboxError> {
        std::future::pending().await
    }
    async fn stats_without_done(&self) -> Result<InboxStats, InboxError> {
        self.0.stats_without_done().await
    }
    async fn waiting(&self, up_to: u64) -> Result<u64, InboxError> {
        self.0.waiting(up_to).await
    }
}

/// A readiness probe does not count the done deliveries: with a table of days of them
/// it would pass its 2 s and call the inbox unreachable, taking every replica out of
/// service at once. It reads the stats without them and answers what waits.
#[tokio::test(start_paused = true)]
async fn health_answers_without_counting_done_deliveries() {
    let receiver = Receiver::builder(Arc::new(App::default()))
        .secret(SECRET)
        .inbox(SlowToCountDone(MemoryInbox::new()))
        .build()
        .unwrap();
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).id("evt_waits").sign(SECRET);
    assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);

    let health = receiver.health().await;
    assert_eq!((health.inbox_reachable, health.inbox_error.as_deref()), (Some(true), None), "{health:?}");
    assert!(health.is_ready(), "{health:?}");
    assert_eq!((health.queued, health.retrying), (1, 0), "{health:?}");
}

/// A Redis worker's batch costs one script call each way: 40 takes in one call, and
/// 40 concurrent completions in a few (the script's own cost, paid per call, was
/// about half of what Redis spent on a delivery). A lease completed twice in one
/// batch is done once; the second answer says the lease is lost.
#[tokio::test]
async fn redis_takes_and_completes_a_batch_in_few_script_calls() {
    let redis = support::OwnRedis::start();
    let inbox = Arc::new(hookroute::inbox::RedisInbox::connect(&redis.url()).await.unwrap());
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).sign(SECRET);
    for n in 0..40 {
        stored_as_received(&*inbox, &delivery, &format!("evt_batch_{n}"), None).await;
    }
    let before = support::redis_calls(&redis.url()).await;
    let taken = inbox.take_many(Duration::from_secs(60), 40).await.unwrap();
    assert_eq!(taken.len(), 40);
    let mut ids: Vec<&str> = taken.iter().map(|leased| leased.delivery.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "each delivery taken once");
    let after_take = support::redis_calls(&redis.url()).await;

    let twice = taken[0].lease.clone();
    let completions: Vec<_> = taken
        .iter()
        .map(|leased| leased.lease.clone())
        .chain([twice])
        .map(|lease| {
            let inbox = Arc::clone(&inbox);
            tokio::spawn(async move { inbox.complete(&lease, Duration::from_secs(60)).await })
        })
        .collect();
    let mut lost = 0;
    for completion in completions {
        match completion.await.unwrap() {
            Ok(()) => {}
            Err(InboxError::ClaimLost { .. }) => lost += 1,
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(lost, 1, "the lease given twice is completed once");
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.done, stats.queued, stats.running), (40, 0, 0), "{stats:?}");

    let after = support::redis_calls(&redis.url()).await;
    let scripts = |from: &std::collections::HashMap<String, u64>, to: &std::collections::HashMap<String, u64>| {
        ["evalsha", "eval"].iter().map(|name| to.get(*name).unwrap_or(&0) - from.get(*name).unwrap_or(&0)).sum::<u64>()
    };
    // A script's first call is refused (`NOSCRIPT`, counted) and sent again with it.
    let taking = scripts(&before, &after_take);
    assert!(taking <= 2, "{taking} script calls took the batch: {after_take:?}");
    // 41 completions (and the stats above): one call for the first, one or two for
    // those that arrived while it ran.
    let completing = scripts(&after_take, &after);
    assert!(completing <= 6, "{completing} script calls for 41 completions: {after:?}");
}

/// An inbox on a redis-server of its own whose expiry cycle is stopped (`DEBUG
/// SET-ACTIVE-EXPIRE 0`): an expired key goes only when something reads it.
async fn redis_inbox_without_expiry_cycle() -> (support::OwnRedis, hookroute::inbox::RedisInbox) {
    let redis = support::OwnRedis::start();
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let () = ::redis::cmd("DEBUG").arg("SET-ACTIVE-EXPIRE").arg(0).query_async(&mut raw).await.unwrap();
    let inbox = hookroute::inbox::RedisInbox::connect(&redis.url()).await.unwrap();
    (redis, inbox)
}

/// Done records past their TTL go with the completions that follow, a few with each,
/// not in the bursts of Redis's expiry cycle (which stalled every request for up to
/// 25 ms at a time in `bench/soak`). With that cycle stopped, 30 records done with a
/// 50 ms TTL are deleted by the 30 completions after it; the script before left them
/// to the cycle, and none was.
#[tokio::test]
async fn redis_completions_delete_the_records_past_their_ttl() {
    let (redis, inbox) = redis_inbox_without_expiry_cycle().await;
    let inbox = Arc::new(inbox);
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).sign(SECRET);
    let run = |round: &'static str, ttl: Duration| {
        let (inbox, delivery) = (Arc::clone(&inbox), delivery.clone());
        async move {
            for n in 0..30 {
                stored_as_received(&*inbox, &delivery, &format!("evt_{round}_{n}"), None).await;
            }
            let taken = inbox.take_many(Duration::from_secs(60), 30).await.unwrap();
            assert_eq!(taken.len(), 30);
            for leased in taken {
                inbox.complete(&leased.lease, ttl).await.unwrap();
            }
        }
    };
    run("short", Duration::from_millis(50)).await;
    let expired = || async { support::redis_calls(&redis.url()).await.get("expired_keys").copied().unwrap_or(0) };
    let before = expired().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    run("long", Duration::from_secs(60)).await;
    let gone = expired().await - before;
    assert_eq!(gone, 30, "the 30 records past their TTL deleted by the completions after them");
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.done, stats.queued, stats.running), (30, 0, 0), "{stats:?}");
}

/// An operator's purge of done records (the console's button, `hookroute inbox
/// purge`) was one script over the whole done set: 1.95 s of the server's time at
/// 300,000 records, every receiver and worker waiting behind it. It now reads the set
/// a bounded slice a call (so 600 done records take several calls), and the records
/// past their TTL it meets are read once, for Redis to delete, not left to the bursts
/// of its expiry cycle. The script before: one call, and no expired record deleted.
#[tokio::test]
async fn redis_purges_done_records_a_slice_a_call() {
    let (redis, inbox) = redis_inbox_without_expiry_cycle().await;
    let delivery = TestEvent::<Groq>::new("job.run", serde_json::json!({})).sign(SECRET);
    for (round, count, ttl) in [("kept", 600, Duration::from_secs(60)), ("expiring", 20, Duration::from_millis(50))] {
        for n in 0..count {
            stored_as_received(&inbox, &delivery, &format!("evt_{round}_{n}"), None).await;
        }
        let mut done = 0;
        while done < count {
            let taken = inbox.take_many(Duration::from_secs(60), 100).await.unwrap();
            assert!(!taken.is_empty(), "{done} of {count} taken");
            for leased in taken {
                inbox.complete(&leased.lease, ttl).await.unwrap();
                done += 1;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let calls = |stats: &std::collections::HashMap<String, u64>| {
        ["evalsha", "eval"].iter().map(|name| stats.get(*name).copied().unwrap_or(0)).sum::<u64>()
    };
    let before = support::redis_calls(&redis.url()).await;
    assert_eq!(inbox.purge_done(Duration::from_secs(3600)).await.unwrap(), 0, "nothing done an hour ago");
    let after = support::redis_calls(&redis.url()).await;
    let expired = after["expired_keys"] - before.get("expired_keys").copied().unwrap_or(0);
    assert_eq!(expired, 20, "the records past their TTL deleted as the purge read them");
    assert!(calls(&after) - calls(&before) >= 3, "620 done records read in one call");
    let stats = inbox.stats().await.unwrap();
    assert_eq!(stats.done, 600, "{stats:?}");
    assert_eq!(inbox.purge_done(Duration::ZERO).await.unwrap(), 600);
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.done, stats.queued, stats.running), (0, 0, 0), "{stats:?}");
}

/// Waits until `check` holds of the inbox's stats (10 s at most).
async fn until_stats(inbox: &dyn InboxAdmin, what: &str, check: impl Fn(&InboxStats) -> bool) -> InboxStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = inbox.stats().await.unwrap();
        if check(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "never {what}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A SQLite inbox (it takes several in one call; the memory inbox takes one at a
/// time) holding `count` `job.run` deliveries whose handlers wait for the gate, and a
/// receiver on it.
struct Gated {
    _dir: tempfile::TempDir,
    inbox: Arc<hookroute::inbox::SqliteInbox>,
    ids: Vec<String>,
    app: Arc<App>,
    receiver: Receiver<Arc<App>>,
}

impl Gated {
    async fn new(prefix: &str, count: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Arc::new(hookroute::inbox::SqliteInbox::open(dir.path().join("inbox.db")).await.unwrap());
        let mut ids = Vec::new();
        for n in 0..count {
            let id = format!("{prefix}_{n}");
            let delivery =
                TestEvent::<Groq>::new("job.run", serde_json::json!({ "wait_for_gate": true })).id(&id).sign(SECRET);
            stored_as_received(&*inbox, &delivery, &id, None).await;
            ids.push(id);
        }
        let app = Arc::new(App::default());
        let receiver = Receiver::builder(Arc::clone(&app)).secret(SECRET).inbox(Arc::clone(&inbox)).build().unwrap();
        Self { _dir: dir, inbox, ids, app, receiver }
    }
}

/// While the inbox has a backlog, a worker takes as many deliveries ahead as it runs
/// at once (one round trip then serves the handlers that free up next); when it stops,
/// what it took ahead goes back unattempted, not left leased until the lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_takes_ahead_on_a_backlog_and_gives_it_back_when_it_stops() {
    let Gated { _dir, inbox, ids, app, receiver } = Gated::new("evt_ahead", 12).await;
    let workers = receiver
        .worker()
        .unwrap()
        .concurrency(2)
        .lease(Duration::from_secs(60))
        .grace(Duration::from_millis(50))
        .spawn();
    until_stats(&*inbox, "2 running", |stats| stats.running == 2).await;
    // One handler finishes: its slot gets one delivery, and two more wait taken ahead.
    app.gate.add_permits(1);
    let stats = until_stats(&*inbox, "2 running and 2 taken ahead", |stats| stats.running == 4).await;
    assert_eq!((stats.done, stats.queued), (1, 7), "{stats:?}");
    let ran = || ids.iter().map(|id| app.runs.count(id)).sum::<usize>();
    // The inbox counts a delivery running once it is leased; its handler's task may
    // start a moment later.
    let deadline = Instant::now() + Duration::from_secs(5);
    while ran() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ran(), 3, "those taken ahead wait for a free handler");

    workers.shutdown().await;
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.running, stats.done, stats.queued), (0, 1, 11), "{stats:?}");
    assert_eq!(ran(), 3);
    for id in ids.iter().filter(|id| app.runs.count(id) == 0) {
        let stored = inbox.get(&key(id)).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.attempts), (DeliveryState::Queued, 0), "{id} never ran: {stored:?}");
    }
}

/// A delivery taken ahead whose lease ran out while it waited, and that another worker
/// took meanwhile, is not run again: its lease is renewed before it starts, and a
/// renewal that fails drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_taken_ahead_whose_lease_another_worker_took_is_not_run_twice() {
    let Gated { _dir, inbox, ids, app, receiver } = Gated::new("evt_expired_ahead", 3).await;
    let worker = |receiver: &Receiver<Arc<App>>| {
        receiver
            .worker()
            .unwrap()
            .concurrency(1)
            .lease(Duration::from_millis(300))
            .poll_interval(Duration::from_millis(20))
            .grace(Duration::from_millis(50))
            .spawn()
    };
    let first = worker(&receiver);
    until_stats(&*inbox, "1 running", |stats| stats.running == 1).await;
    // The first finishes: the worker starts the second and takes the third ahead.
    app.gate.add_permits(1);
    until_stats(&*inbox, "1 running and 1 taken ahead", |stats| stats.running == 2 && stats.done == 1).await;
    let ahead = ids.iter().find(|id| app.runs.count(id) == 0).expect("one not started").clone();

    // Its lease is not renewed while it waits: another worker takes it once it ends.
    let second = worker(&receiver);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.runs.count(&ahead) == 0 {
        assert!(Instant::now() < deadline, "the other worker never took {ahead}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.gate.add_permits(2);
    until_stats(&*inbox, "all 3 done", |stats| stats.done == 3).await;
    // The first worker's slot is free again: what it took ahead would start now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.runs.count(&ahead), 1, "{ahead} ran twice");
    app.gate.add_permits(10);
    first.shutdown().await;
    second.shutdown().await;
}

/// `take_ahead(0)`: a worker takes only for its free handlers, backlog or not (for slow
/// handlers shared by several workers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_told_to_take_none_ahead_takes_only_for_free_handlers() {
    let Gated { _dir, inbox, app, receiver, .. } = Gated::new("evt_none_ahead", 12).await;
    let workers = receiver.worker().unwrap().concurrency(2).take_ahead(0).grace(Duration::from_millis(50)).spawn();
    until_stats(&*inbox, "2 running", |stats| stats.running == 2).await;
    app.gate.add_permits(1);
    until_stats(&*inbox, "1 done", |stats| stats.done == 1 && stats.running == 2).await;
    // Time for a take ahead, had there been one (it follows the take for the free slot).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.running, stats.queued), (2, 9), "{stats:?}");
    workers.shutdown().await;
}
