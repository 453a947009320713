//! The inbox across processes, on PostgreSQL and on Redis (started by `scripts/test`):
//! a worker process killed mid-handler holds its delivery only for its lease; a long
//! handler whose lease is renewed is never run twice at once; HTTP replicas and worker
//! processes sharing one inbox run every event exactly once.
//!
//! Worker processes are this test binary run again (the ignored test
//! `worker_process`); each prints `HANDLED <id> <attempt>` when its handler finishes,
//! which is the side effect counted here.

use crate::support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use hookroute::inbox::{
    DeliveryState, Inbox, InboxAdmin, InboxStats, PostgresInbox, RedisInbox, RetrySchedule, StoredDelivery,
};
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, Receiver};
use serde::Deserialize;

const SECRET: &str = "whsec_inbox_processes";

/// The key the receiver stores event `id` under: in the namespace its secret names.
fn key(id: &str) -> String {
    format!("{}:groq:event:{id}", hookroute::Secret::new(SECRET).fingerprint())
}

#[derive(Debug, Deserialize)]
struct Job {}

#[derive(Default)]
struct App {
    /// In a worker process: print what ran, for the test that started it.
    print: bool,
    /// Whether `job.hangs` hangs (in the worker process that is killed).
    hang: bool,
    runs: support::Runs,
    /// Per event of `job.slow`: its handlers running right now, and the most ever at once.
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("job.run", unlisted)]
    async fn run(&self, _job: Job, meta: &EventMeta) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.done(meta);
        Ok(())
    }

    #[event("job.hangs", unlisted)]
    async fn hangs(&self, _job: Job, meta: &EventMeta) -> Result<(), HandlerError> {
        if self.hang {
            println!("STARTED {}", meta.id());
            std::future::pending::<()>().await;
        }
        self.done(meta);
        Ok(())
    }

    /// Runs for 7 s, 3.5 times the 2 s lease of the test that sends it.
    #[event("job.slow", unlisted)]
    async fn slow(&self, _job: Job, meta: &EventMeta) -> Result<(), HandlerError> {
        let count = |change: fn(usize) -> usize| {
            let mut in_flight = self.in_flight.lock().unwrap();
            let (now, most) = in_flight.entry(meta.id().to_owned()).or_default();
            *now = change(*now);
            *most = (*most).max(*now);
        };
        count(|now| now + 1);
        tokio::time::sleep(Duration::from_secs(7)).await;
        count(|now| now - 1);
        self.done(meta);
        Ok(())
    }
}

impl App {
    fn done(&self, meta: &EventMeta) {
        self.runs.record(meta.id());
        if self.print {
            println!("HANDLED {} {}", meta.id(), meta.attempt().unwrap_or(0));
        }
    }
}

/// Which backend, where, and under which table or key prefix: what a worker process
/// needs to share the test's inbox.
#[derive(Clone)]
struct Backend {
    kind: &'static str,
    url: String,
    name: String,
}

impl Backend {
    fn postgres() -> Self {
        Self { kind: "postgres", url: support::postgres_url(), name: unique("inbox_procs") }
    }

    fn redis() -> Self {
        Self { kind: "redis", url: support::redis_url(), name: format!("{}:", unique("inbox_procs")) }
    }

    /// A connection of its own, as a separate replica has.
    async fn connect(&self) -> Arc<dyn InboxAdmin> {
        match self.kind {
            "postgres" => Arc::new(PostgresInbox::builder(&self.url).table(&self.name).connect().await.unwrap()),
            "redis" => Arc::new(RedisInbox::builder(&self.url).prefix(&self.name).connect().await.unwrap()),
            other => panic!("unknown backend {other}"),
        }
    }

    /// Starts a worker process on this inbox; its output lines arrive on `lines`.
    fn spawn_worker(&self, lease: Duration, hang: bool, lines: mpsc::Sender<String>) -> WorkerProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                &support::test_name(module_path!(), "worker_process"),
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WORKER_INBOX", self.kind)
            .env("WORKER_INBOX_URL", &self.url)
            .env("WORKER_INBOX_NAME", &self.name)
            .env("WORKER_LEASE_MS", lease.as_millis().to_string())
            .env("WORKER_HANG", if hang { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                // libtest may have written `test worker_process ... ` before it.
                let line = ["HANDLED ", "STARTED ", "WORKING"]
                    .iter()
                    .find_map(|mark| line.find(mark).map(|at| line[at..].to_owned()));
                if line.is_some_and(|line| lines.send(line).is_err()) {
                    break;
                }
            }
        });
        WorkerProcess(child)
    }
}

/// A worker process, killed (SIGKILL) when dropped, so that a failing test leaves none
/// behind.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A name no other test, in this process or an earlier run, uses: tests running at
/// once read the same clock, so a counter tells them apart (two once shared a table,
/// and one's worker took the other's delivery).
fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{nanos:x}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn receiver(app: Arc<App>, inbox: Arc<dyn InboxAdmin>) -> Receiver<Arc<App>> {
    Receiver::builder(app)
        .secret(SECRET)
        .inbox(inbox)
        .retry_schedule(RetrySchedule::new([100, 200].map(Duration::from_millis)).jitter(0.0))
        .build()
        .unwrap()
}

/// Serves `receiver` on a free port of 127.0.0.1; answers its URL.
async fn serve(receiver: Receiver<Arc<App>>) -> String {
    let router = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/groq", listener.local_addr().unwrap());
    tokio::spawn(async move { hookroute::axum::serve(listener, router).await.unwrap() });
    url
}

/// Each delivery is signed afresh, as a provider's retry is.
fn delivery(event_type: &str, id: &str) -> SignedDelivery {
    TestEvent::<Groq>::new(event_type, serde_json::json!({})).id(id).sign(SECRET)
}

/// Delivers like a provider: again after anything but a 2xx, for up to 60 s. Answers
/// the status of the 2xx.
async fn deliver(client: &reqwest::Client, url: &str, event_type: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let signed = delivery(event_type, id);
        let response = client.post(url).headers(signed.headers).body(signed.body).send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        match status {
            200 | 202 => return body["status"].as_str().unwrap().to_owned(),
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("{id}: unexpected {other} {body}"),
        }
    }
}

/// Waits up to `within` until `key` is in `state`.
async fn until(inbox: &dyn InboxAdmin, key: &str, state: DeliveryState, within: Duration) -> StoredDelivery {
    let deadline = Instant::now() + within;
    loop {
        let stored = inbox.get(key).await.unwrap();
        if let Some(stored) = stored.as_ref().filter(|stored| stored.state == state) {
            return stored.clone();
        }
        assert!(Instant::now() < deadline, "{key} never reached {state}: {stored:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Not a test on its own: a worker process the tests start, on the inbox the
/// environment names. It runs until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the tests below as a separate process"]
async fn worker_process() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("the tests start this with {name} set"));
    let backend = Backend {
        kind: match var("WORKER_INBOX").as_str() {
            "postgres" => "postgres",
            "redis" => "redis",
            other => panic!("unknown backend {other}"),
        },
        url: var("WORKER_INBOX_URL"),
        name: var("WORKER_INBOX_NAME"),
    };
    let lease = Duration::from_millis(var("WORKER_LEASE_MS").parse().unwrap());
    let app = Arc::new(App { print: true, hang: var("WORKER_HANG") == "1", ..App::default() });
    let worker = receiver(app, backend.connect().await)
        .worker()
        .unwrap()
        .concurrency(4)
        .lease(lease)
        .poll_interval(Duration::from_millis(20));
    println!("WORKING");
    worker.run(std::future::pending()).await;
}

/// A worker process killed (SIGKILL) while its handler runs cannot give its delivery
/// back: it holds it only for its lease. After the lease another worker takes it and
/// completes it, as the second attempt.
async fn a_worker_killed_mid_handler_holds_only_a_lease(backend: Backend) {
    const LEASE: Duration = Duration::from_secs(2);
    let inbox = backend.connect().await;
    let url = serve(receiver(Arc::new(App::default()), Arc::clone(&inbox))).await;
    let client = reqwest::Client::new();
    let id = unique("evt_killed");
    let key = key(&id);

    let (tx, lines) = mpsc::channel();
    let mut doomed = backend.spawn_worker(LEASE, true, tx);
    let sent = Instant::now();
    assert_eq!(deliver(&client, &url, "job.hangs", &id).await, "queued");
    let started = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with("STARTED") => break line,
                Ok(_) => {}
                Err(error) => panic!("the worker process never started the handler: {error}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(started, format!("STARTED {id}"));
    doomed.kill();
    assert_eq!(inbox.get(&key).await.unwrap().unwrap().state, DeliveryState::Running);

    // Another worker, here in the test's process, watching from the moment of the kill.
    let app = Arc::new(App::default());
    let survivor = receiver(Arc::clone(&app), Arc::clone(&inbox))
        .worker()
        .unwrap()
        .lease(LEASE)
        .poll_interval(Duration::from_millis(20))
        .spawn();
    let done = until(&*inbox, &key, DeliveryState::Done, LEASE * 5).await;
    assert!(sent.elapsed() >= LEASE, "taken over after {:?}, before the dead worker's lease ran out", sent.elapsed());
    assert_eq!(done.attempts, 2, "the killed attempt and the one that finished");
    assert_eq!(app.runs.count(&id), 1);
    survivor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_worker_killed_mid_handler_holds_only_a_lease() {
    a_worker_killed_mid_handler_holds_only_a_lease(Backend::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_worker_killed_mid_handler_holds_only_a_lease() {
    a_worker_killed_mid_handler_holds_only_a_lease(Backend::redis()).await;
}

/// A handler that runs 3.5 times its 2 s lease, with a second worker (its own
/// connection) polling all the while: the running worker renews its lease, so the
/// other never takes the delivery over and the handler runs once, in one attempt.
async fn a_renewed_lease_is_never_taken_over(backend: Backend) {
    // Renewed every third of it: a renewal may be late by 1.3 s on a loaded machine.
    const LEASE: Duration = Duration::from_secs(2);
    let app = Arc::new(App::default());
    let first = backend.connect().await;
    let url = serve(receiver(Arc::clone(&app), Arc::clone(&first))).await;
    let mut workers = Vec::new();
    for inbox in [Arc::clone(&first), backend.connect().await] {
        let worker = receiver(Arc::clone(&app), inbox).worker().unwrap();
        workers.push(worker.lease(LEASE).poll_interval(Duration::from_millis(20)).spawn());
    }
    let ids: Vec<String> = (0..3).map(|n| unique(&format!("evt_slow{n}"))).collect();
    let client = reqwest::Client::new();
    for id in &ids {
        assert_eq!(deliver(&client, &url, "job.slow", id).await, "queued");
    }
    for id in &ids {
        let done = until(&*first, &key(id), DeliveryState::Done, Duration::from_secs(30)).await;
        assert_eq!(done.attempts, 1, "{id} was taken over while its handler ran");
        assert_eq!(app.runs.count(id), 1, "{id}");
    }
    let in_flight = app.in_flight.lock().unwrap().clone();
    assert!(in_flight.values().all(|&(_, most)| most == 1), "a delivery ran twice at once: {in_flight:?}");
    for worker in workers {
        worker.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_renewed_lease_is_never_taken_over() {
    a_renewed_lease_is_never_taken_over(Backend::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_renewed_lease_is_never_taken_over() {
    a_renewed_lease_is_never_taken_over(Backend::redis()).await;
}

const EVENTS: usize = 1_000;
const COPIES: usize = 5;
const REPLICAS: usize = 3;
const WORKER_PROCESSES: usize = 3;

/// 3 HTTP replicas (each with its own connection, no workers) and 3 worker processes
/// share one inbox. 1,000 events × 5 deliveries, shuffled, spread at random over the
/// replicas: each event is queued once, its other deliveries are duplicates, and each
/// runs exactly once; nothing is left queued, running, retrying or dead.
async fn replicas_and_worker_processes_run_each_event_exactly_once(backend: Backend) {
    let mut urls = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..REPLICAS {
        let inbox = backend.connect().await;
        urls.push(serve(receiver(Arc::new(App::default()), Arc::clone(&inbox))).await);
        inboxes.push(inbox);
    }
    let (tx, lines) = mpsc::channel();
    let mut workers: Vec<WorkerProcess> =
        (0..WORKER_PROCESSES).map(|_| backend.spawn_worker(Duration::from_secs(30), false, tx.clone())).collect();
    drop(tx);
    let urls = Arc::new(urls);

    let run = unique("evt");
    let seed = fastrand::u64(..);
    println!("shuffle seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut deliveries: Vec<usize> = (0..EVENTS).flat_map(|event| [event; COPIES]).collect();
    // In blocks of 40 events, so copies race each other, not only find the event queued.
    for block in deliveries.chunks_mut(40 * COPIES) {
        rng.shuffle(block);
    }
    let placement: Vec<usize> = deliveries.iter().map(|_| rng.usize(..REPLICAS)).collect();
    let client = reqwest::Client::new();
    let answers: Vec<String> = stream::iter(deliveries.into_iter().zip(placement))
        .map(|(event, replica)| {
            let (client, urls, id) = (client.clone(), Arc::clone(&urls), format!("{run}_{event}"));
            async move { deliver(&client, &urls[replica], "job.run", &id).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for status in answers {
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(statuses.get("queued"), Some(&EVENTS), "{statuses:?}");
    assert_eq!(statuses.get("duplicate"), Some(&(EVENTS * (COPIES - 1))), "{statuses:?}");

    // Every event done, per the inbox; then every handler run the workers printed.
    let deadline = Instant::now() + Duration::from_secs(120);
    let stats = loop {
        let stats: InboxStats = inboxes[0].stats().await.unwrap();
        if stats.done >= EVENTS as u64 || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A handler prints before its delivery is marked done, so every line is out now;
    // stop the workers to close their output.
    for worker in &mut workers {
        worker.kill();
    }
    let mut runs: HashMap<String, Vec<u32>> = HashMap::new();
    for line in &lines {
        if let Some(rest) = line.strip_prefix("HANDLED ") {
            let (id, attempt) = rest.split_once(' ').unwrap();
            runs.entry(id.to_owned()).or_default().push(attempt.parse().unwrap());
        }
    }
    println!("inbox after the run: {stats:?}");
    assert_eq!(
        (stats.queued, stats.running, stats.retrying, stats.dead, stats.done),
        (0, 0, 0, 0, EVENTS as u64),
        "{stats:?}"
    );
    let wrong: Vec<_> = runs.iter().filter(|(_, attempts)| attempts.as_slice() != [1]).collect();
    assert!(wrong.is_empty(), "events not run exactly once, in one attempt: {wrong:?}");
    assert_eq!(runs.len(), EVENTS, "events that ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_and_worker_processes_run_each_event_exactly_once() {
    replicas_and_worker_processes_run_each_event_exactly_once(Backend::postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replicas_and_worker_processes_run_each_event_exactly_once() {
    replicas_and_worker_processes_run_each_event_exactly_once(Backend::redis()).await;
}
