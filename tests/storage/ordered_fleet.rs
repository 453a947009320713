//! `examples/ordered_receiver` as a black box, as a fleet runs it: HTTP replicas and
//! worker processes sharing one inbox (PostgreSQL, Redis, SQLite; memory in one
//! process). Seeded: 1,000 customers × 10 subscription events and 200 charges,
//! shuffled, one in ten sent twice (to the other replica), with random handler delays
//! and failures. From the processes' own log lines (`started`, `handled`, `failed`):
//! every event runs exactly once; no two runs of one customer overlap; the events
//! queued before the workers started run in creation order per customer; no more than
//! two charges run at once; a worker killed (SIGKILL) mid-handler holds its customer only
//! until its lease ends. And fairness: one customer with 500 queued events does not
//! hold back 200 others.

use crate::support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};

const SECRET: &str = "whsec_ordered_fleet";
const SEED: u64 = 0x0dde_12ed;
const LEASE_MS: u64 = 2_000;

/// A process of the example; killed (SIGKILL) when dropped.
struct Process {
    child: Child,
    name: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line a process wrote, with the process's name.
type Line = (String, String);

/// The example's processes on one inbox, and every line they write.
struct Fleet {
    inbox: String,
    processes: Vec<Process>,
    lines: mpsc::Receiver<Line>,
    send_line: mpsc::Sender<Line>,
    seen: Vec<Line>,
}

impl Fleet {
    fn new(inbox: String) -> Self {
        let (send_line, lines) = mpsc::channel();
        Self { inbox, processes: Vec::new(), lines, send_line, seen: Vec::new() }
    }

    /// Starts a process with `env`; waits for `ready` in its output and answers the
    /// line.
    fn start(&mut self, name: &str, env: &[(&str, &str)], ready: &str) -> String {
        let mut command = Command::new(support::example_path("ordered_receiver"));
        command
            .env("STRIPE_WEBHOOK_SECRET", SECRET)
            .env("HOOKROUTE_INBOX", &self.inbox)
            .env("PORT", "0")
            .env("LEASE_MS", LEASE_MS.to_string())
            .env("RETRY_SCHEDULE_MS", "50,100,200,400,800")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for output in [stdout, stderr] {
            let (send, owner) = (self.send_line.clone(), name.to_owned());
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    if send.send((owner.clone(), line)).is_err() {
                        break;
                    }
                }
            });
        }
        self.processes.push(Process { child, name: name.to_owned() });
        let said = self.wait_for(|(owner, line)| owner == name && line.contains(ready), Duration::from_secs(120));
        said.unwrap_or_else(|| {
            let own: Vec<&str> =
                self.seen.iter().filter(|(owner, _)| owner == name).map(|(_, line)| line.as_str()).collect();
            panic!("{name} did not say `{ready}`; it said:\n{}", own[own.len().saturating_sub(20)..].join("\n"))
        })
        .1
    }

    /// An HTTP replica without workers; answers its URL.
    fn replica(&mut self, name: &str) -> String {
        let line = self.start(name, &[("WORKERS", "0")], "listening on http://");
        let at = line.find("http://").unwrap();
        line[at..].split_whitespace().next().unwrap().to_owned()
    }

    fn worker(&mut self, name: &str, handlers: &str) {
        self.start(name, &[("ROLE", "worker"), ("WORKERS", handlers)], "inbox worker running");
    }

    fn kill(&mut self, name: &str) {
        self.processes.retain(|process| process.name != name);
    }

    /// The first line from now on that `wanted` accepts, waiting up to `within`.
    fn wait_for(&mut self, wanted: impl Fn(&Line) -> bool, within: Duration) -> Option<Line> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if wanted(&line) {
                return Some(line);
            }
        }
    }

    /// Reads lines until `handled` events were handled, or `within` passed.
    fn drain(&mut self, handled: usize, within: Duration) -> Vec<Run> {
        let deadline = Instant::now() + within;
        let mut count = self.seen.iter().filter(|(_, line)| line.contains("handled event=")).count();
        while count < handled && Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                count += usize::from(line.1.contains("handled event="));
                self.seen.push(line);
            }
        }
        // Anything late: a second run of an event would show here.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        runs(&self.seen)
    }
}

/// A `handled` line.
#[derive(Debug, Clone)]
struct Run {
    event: String,
    key: String,
    created: u64,
    attempt: u32,
    start_ms: u64,
    end_ms: u64,
    /// The process that wrote it.
    owner: String,
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {name}=")).map(|at| at + name.len() + 2)?;
    line[at..].split_whitespace().next()
}

fn runs(lines: &[Line]) -> Vec<Run> {
    lines
        .iter()
        .filter_map(|(owner, line)| {
            let line = &line[line.find("handled event=")?..];
            let line = format!(" {line}");
            Some(Run {
                event: field(&line, "event")?.to_owned(),
                key: field(&line, "key")?.to_owned(),
                created: field(&line, "created")?.parse().ok()?,
                attempt: field(&line, "attempt")?.parse().ok()?,
                start_ms: field(&line, "start_ms")?.parse().ok()?,
                end_ms: field(&line, "end_ms")?.parse().ok()?,
                owner: owner.clone(),
            })
        })
        .collect()
}

/// A Stripe event as Stripe sends it: `created` in seconds, the object's metadata.
struct Event {
    id: String,
    body: Vec<u8>,
}

fn event(id: &str, event_type: &str, created: u64, customer: Option<&str>, metadata: &serde_json::Value) -> Event {
    let mut object = serde_json::json!({ "id": format!("obj_{id}"), "object": "subscription", "metadata": metadata });
    if let Some(customer) = customer {
        object["customer"] = customer.into();
    }
    let body = serde_json::json!({
        "id": id, "object": "event", "type": event_type, "created": created, "livemode": false,
        "data": { "object": object },
    });
    Event { id: id.to_owned(), body: serde_json::to_vec(&body).unwrap() }
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Sends each event to its replica, 32 at a time; every answer must be a 2xx.
async fn send(events: &[(String, &Event)]) {
    let client = reqwest::Client::new();
    let answers: Vec<_> = stream::iter(events)
        .map(|(url, event)| {
            let client = client.clone();
            async move {
                let headers = hookroute::testing::sign_raw::<hookroute::Stripe>(SECRET, now_s(), &event.body);
                let mut request = client.post(url).body(event.body.clone()).header("content-type", "application/json");
                for (name, value) in &headers {
                    request = request.header(name.as_str(), value.as_bytes());
                }
                (event.id.clone(), request.send().await.map(|answer| answer.status()))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for (id, answer) in answers {
        let status = answer.unwrap_or_else(|error| panic!("{id}: {error}"));
        assert!(status.is_success(), "{id}: answered {status}");
    }
}

/// The seeded workload: 1,000 customers × 10 subscription events (created one second
/// apart, in a random order of arrival), 200 charges, a few failures; and the victim,
/// customer 0's first event, whose first attempt hangs.
fn workload(rng: &mut fastrand::Rng, customers: usize, charges: usize) -> Vec<Event> {
    let base = now_s() - 3_600;
    let mut events = Vec::new();
    for customer in 0..customers {
        for n in 0..10_u64 {
            let event_type = match n {
                0 => "customer.subscription.created",
                9 => "customer.subscription.deleted",
                _ => "customer.subscription.updated",
            };
            let mut metadata = serde_json::json!({ "delay_ms": rng.u64(0..4).to_string() });
            if rng.u8(0..50) == 0 {
                metadata["fail_times"] = "1".into();
            }
            if customer == 0 && n == 0 {
                metadata["hang_attempts"] = "1".into();
            }
            let id = format!("evt_{customer}_{n}");
            events.push(event(&id, event_type, base + n, Some(&format!("cus_{customer}")), &metadata));
        }
    }
    for n in 0..charges {
        let metadata = serde_json::json!({ "delay_ms": "15" });
        events.push(event(&format!("evt_charge_{n}"), "charge.succeeded", base, None, &metadata));
    }
    rng.shuffle(&mut events);
    events
}

/// Everything a fleet's runs must show; `ordered`: the events were all queued before
/// the workers started. A process `killed` (SIGKILL) may have handled an event without
/// the inbox hearing of it: that event runs once more elsewhere (at least once, never
/// lost), and only that one.
fn check(runs: &[Run], events: &[Event], ordered: bool, killed: Option<&str>) {
    let was_killed = |run: &Run| Some(run.owner.as_str()) == killed;
    let mut by_event: HashMap<&str, (usize, usize)> = HashMap::new();
    for run in runs {
        let counts = by_event.entry(run.event.as_str()).or_default();
        if was_killed(run) {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    let missing: Vec<&str> = events.iter().map(|e| e.id.as_str()).filter(|id| !by_event.contains_key(id)).collect();
    assert!(missing.is_empty(), "{} events never ran, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let twice: Vec<_> = by_event
        .iter()
        .filter(|(_, (in_killed, elsewhere))| in_killed + elsewhere > 1 && *elsewhere > 1 || *in_killed > 1)
        .collect();
    assert!(twice.is_empty(), "events ran more than once (runs in the killed process, elsewhere): {twice:?}");

    let mut by_key: BTreeMap<&str, Vec<&Run>> = BTreeMap::new();
    for run in runs.iter().filter(|run| run.key != "-") {
        by_key.entry(run.key.as_str()).or_default().push(run);
    }
    for (key, lane) in &mut by_key {
        lane.sort_by_key(|run| (run.start_ms, run.end_ms));
        for pair in lane.windows(2) {
            assert!(pair[0].end_ms <= pair[1].start_ms, "two runs of `{key}` overlapped: {pair:?}");
        }
        if ordered {
            // The run that counted of each event: a killed process's run of an event
            // that ran again does not.
            let counted: Vec<&&Run> = lane
                .iter()
                .filter(|run| !(was_killed(run) && by_event.get(run.event.as_str()).is_some_and(|n| n.1 > 0)))
                .collect();
            for pair in counted.windows(2) {
                assert!(pair[0].created < pair[1].created, "`{key}` ran out of creation order: {pair:?}");
            }
        }
    }
    // The most charges running at one moment: a sweep over starts and ends (an end
    // before a start at the same millisecond).
    let mut edges: Vec<(u64, i32)> = runs
        .iter()
        .filter(|run| run.event.starts_with("evt_charge_"))
        .flat_map(|run| [(run.start_ms, 1), (run.end_ms, -1)])
        .collect();
    edges.sort_unstable();
    let (mut running, mut most) = (0, 0);
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    assert!(most <= 2, "{most} charges ran at once; the cap is 2");
    assert!(most >= 1, "no charge ran");
}

/// The property run on one shared inbox: two replicas, two worker processes × 8.
async fn fleet_keeps_order(inbox: String) {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let events = workload(&mut rng, 1_000, 200);
    let mut fleet = Fleet::new(inbox);
    let replicas = [fleet.replica("replica-a"), fleet.replica("replica-b")];
    let mut sends = Vec::new();
    for (n, event) in events.iter().enumerate() {
        sends.push((replicas[n % 2].clone(), event));
        if rng.u8(0..10) == 0 {
            sends.push((replicas[(n + 1) % 2].clone(), event));
        }
    }
    send(&sends).await;

    // Everything is queued: the workers start now.
    fleet.worker("worker-a", "8");
    fleet.worker("worker-b", "8");
    let victim = |(_, line): &Line| line.contains("started event=evt_0_0 ") && line.contains("attempt=1");
    let (holder, _) = fleet.wait_for(victim, Duration::from_secs(60)).expect("the victim never started");
    let killed_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
    fleet.kill(&holder);
    fleet.worker(&format!("{holder}-again"), "8");

    let started = Instant::now();
    let runs = fleet.drain(events.len(), Duration::from_secs(240));
    eprintln!("{} events drained in {:?}", events.len(), started.elapsed());
    if std::env::var_os("ORDERED_FLEET_DEBUG").is_some() {
        let first = runs.iter().map(|run| run.start_ms).min().unwrap_or(0);
        let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
        for run in &runs {
            *per_second.entry((run.start_ms - first) / 1000).or_default() += 1;
        }
        eprintln!("runs per second: {per_second:?}");
        let mut per_process: HashMap<&str, usize> = HashMap::new();
        for (owner, line) in &fleet.seen {
            if line.contains("handled event=") {
                *per_process.entry(owner.as_str()).or_default() += 1;
            }
        }
        eprintln!("per process: {per_process:?}");
    }
    check(&runs, &events, true, Some(&holder));
    let victim = runs.iter().find(|run| run.event == "evt_0_0").unwrap();
    assert_eq!(victim.attempt, 2, "{victim:?}");
    let held = victim.start_ms.saturating_sub(killed_ms);
    assert!(
        held <= LEASE_MS + 10_000,
        "customer 0 was held {held} ms after its worker was killed; the lease is {LEASE_MS} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_on_postgres_keeps_each_customer_in_order() {
    let _alone = support::exclusive().await;
    let table = format!("ordered_fleet_{}_{}", std::process::id(), now_s());
    fleet_keeps_order(format!("{}?table={table}", support::postgres_url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_on_redis_keeps_each_customer_in_order() {
    let _alone = support::exclusive().await;
    let prefix = format!("ordered_fleet:{}:{}:", std::process::id(), now_s());
    fleet_keeps_order(format!("{}?prefix={prefix}", support::redis_url())).await;
}

/// SQLite: a replica and a worker process on one file (one node); memory: one
/// process, workers running while events arrive (no creation-order claim there: an
/// older event may arrive after a newer one ran).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_and_memory_keep_each_customer_one_at_a_time() {
    let _alone = support::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(SEED + 1);
    let events = workload(&mut rng, 200, 40);

    let mut fleet = Fleet::new(format!("sqlite:{}", dir.path().join("inbox.db").display()));
    let replica = fleet.replica("replica");
    send(&events.iter().map(|event| (replica.clone(), event)).collect::<Vec<_>>()).await;
    fleet.worker("worker", "8");
    let (holder, _) = fleet
        .wait_for(
            |(_, line)| line.contains("started event=evt_0_0 ") && line.contains("attempt=1"),
            Duration::from_secs(60),
        )
        .expect("the victim never started");
    fleet.kill(&holder);
    fleet.worker("worker-again", "8");
    check(&fleet.drain(events.len(), Duration::from_secs(120)), &events, true, Some(&holder));

    let mut fleet = Fleet::new("memory:".to_owned());
    let line = fleet.start("both", &[("WORKERS", "8"), ("LEASE_MS", "1000")], "listening on http://");
    let url = line[line.find("http://").unwrap()..].split_whitespace().next().unwrap().to_owned();
    let events: Vec<Event> = events.into_iter().filter(|event| event.id != "evt_0_0").collect();
    send(&events.iter().map(|event| (url.clone(), event)).collect::<Vec<_>>()).await;
    check(&fleet.drain(events.len(), Duration::from_secs(120)), &events, false, None);
}

/// One customer with 500 queued events and 200 customers with one each: every one of
/// the 200 finishes before the busy customer's 20th event starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_customer_does_not_hold_back_the_others() {
    let _alone = support::exclusive().await;
    for inbox in [
        format!("{}?table=ordered_fair_{}_{}", support::postgres_url(), std::process::id(), now_s()),
        format!("{}?prefix=ordered_fair:{}:{}:", support::redis_url(), std::process::id(), now_s()),
    ] {
        let base = now_s() - 3_600;
        let quick = serde_json::json!({ "delay_ms": "2" });
        let busy: Vec<Event> = (0..500)
            .map(|n| {
                event(&format!("evt_busy_{n}"), "customer.subscription.updated", base + n, Some("cus_busy"), &quick)
            })
            .collect();
        let others: Vec<Event> = (0..200)
            .map(|n| {
                let customer = format!("cus_other_{n}");
                event(&format!("evt_other_{n}"), "customer.subscription.updated", base, Some(&customer), &quick)
            })
            .collect();
        let mut fleet = Fleet::new(inbox.clone());
        let replica = fleet.replica("replica");
        // The busy customer's events first: they are the oldest in the inbox.
        send(&busy.iter().map(|event| (replica.clone(), event)).collect::<Vec<_>>()).await;
        send(&others.iter().map(|event| (replica.clone(), event)).collect::<Vec<_>>()).await;
        fleet.worker("worker", "8");
        let runs = fleet.drain(220, Duration::from_secs(120));
        let others_done = runs.iter().filter(|run| run.key.starts_with("cus_other_")).map(|run| run.end_ms);
        let others_done: Vec<u64> = others_done.collect();
        assert_eq!(others_done.len(), 200, "{inbox}: {} of the 200 ran", others_done.len());
        let busy_runs: HashSet<&str> =
            runs.iter().filter(|run| run.key == "cus_busy").map(|run| run.event.as_str()).collect();
        let twentieth = runs.iter().find(|run| run.event == "evt_busy_19").map(|run| run.start_ms);
        if let Some(twentieth) = twentieth {
            let last = others_done.iter().max().copied().unwrap_or(0);
            assert!(last <= twentieth, "{inbox}: the busy customer's 20th event started before the others finished");
        }
        assert!(busy_runs.contains("evt_busy_0"), "{inbox}: the busy customer never ran");
    }
}
