//! Ordered lanes end to end: the attribute's `key = ..` is read from the signed body
//! at receive time and stored with the delivery; workers run a key's deliveries one
//! at a time, oldest first; without an inbox the declaration is refused at `build()`.
//! The backends' own ordering rules are in the conformance suite (`inbox_backends`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookroute::inbox::{DeliveryState, Inbox, InboxAdmin, MemoryInbox};
use hookroute::testing::sign_as;
use hookroute::{webhook_handlers, EventMeta, Receiver};
use serde::Deserialize;
use serde_json::value::RawValue;

const SECRET: &str = "whsec_ordering";

#[derive(Debug, Deserialize)]
struct Subscription {
    object: SubscriptionObject,
}

#[derive(Debug, Deserialize)]
struct SubscriptionObject {
    #[serde(default)]
    customer: Option<String>,
}

/// A handler's run: the event id, its ordering key, when it started and ended.
type Run = (String, Option<String>, Instant, Instant);

#[derive(Default)]
struct Billing {
    runs: Mutex<Vec<Run>>,
}

#[webhook_handlers(provider = "stripe")]
impl Billing {
    #[event("customer.subscription.updated", key = "data.object.customer", stale = "skip")]
    async fn updated(&self, data: Subscription, meta: &EventMeta) -> Result<(), hookroute::HandlerError> {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(data.object.customer.as_deref(), meta.order_key());
        let key = meta.order_key().map(str::to_owned);
        self.runs.lock().unwrap().push((meta.id().to_owned(), key, start, Instant::now()));
        Ok(())
    }
}

fn stripe() -> &'static hookroute::provider::BuiltIn {
    hookroute::provider::built_in("stripe").expect("stripe is built in")
}

fn subscription(customer: Option<&str>) -> Box<RawValue> {
    let object = match customer {
        Some(customer) => serde_json::json!({ "object": { "id": "sub_1", "customer": customer } }),
        None => serde_json::json!({ "object": { "id": "sub_1" } }),
    };
    RawValue::from_string(object.to_string()).unwrap()
}

#[test]
fn an_ordering_key_without_an_inbox_is_refused_at_build() {
    let error = Receiver::builder(Billing::default()).secret(SECRET).build().map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("ordering key (`key = \"data.object.customer\"`)"), "{error}");
    assert!(error.contains("needs an inbox") && error.contains(".inbox("), "{error}");
}

#[tokio::test]
async fn the_key_is_read_from_the_signed_body_and_stored() {
    let inbox = Arc::new(MemoryInbox::new());
    let receiver = Receiver::builder(Billing::default()).secret(SECRET).inbox(inbox.clone()).build().unwrap();
    for (id, customer) in [("evt_keyed", Some("cus_1")), ("evt_unkeyed", None)] {
        let data = subscription(customer);
        let signed = sign_as(stripe(), SECRET, "customer.subscription.updated", Some(id), &data);
        let outcome = receiver.receive(&signed.headers, &signed.body).await;
        assert_eq!(outcome.status(), http::StatusCode::ACCEPTED, "{outcome:?}");
    }
    let queued = inbox.list(DeliveryState::Queued, 10).await.unwrap();
    let key_of = |id: &str| queued.iter().find(|d| d.id == id).map(|d| d.order_key.clone());
    assert_eq!(key_of("evt_keyed"), Some(Some("cus_1".to_owned())));
    // No key at the path: stored unordered (and a WARN says so), never refused.
    assert_eq!(key_of("evt_unkeyed"), Some(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_run_a_keys_deliveries_one_at_a_time_in_order() {
    let app = Arc::new(Billing::default());
    let inbox = Arc::new(MemoryInbox::new());
    let receiver = Receiver::builder(Arc::clone(&app)).secret(SECRET).inbox(inbox).build().unwrap();
    let mut sent = Vec::new();
    for n in 0..6 {
        let (id, customer) = (format!("evt_{n}"), if n % 2 == 0 { "cus_even" } else { "cus_odd" });
        let signed =
            sign_as(stripe(), SECRET, "customer.subscription.updated", Some(&id), &subscription(Some(customer)));
        assert_eq!(receiver.receive(&signed.headers, &signed.body).await.status(), http::StatusCode::ACCEPTED);
        sent.push(id);
    }
    let workers = receiver.worker().unwrap().concurrency(8).poll_interval(Duration::from_millis(10)).spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.runs.lock().unwrap().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.shutdown().await;
    let runs = app.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 6, "{runs:?}");
    for customer in ["cus_even", "cus_odd"] {
        let lane: Vec<_> = runs.iter().filter(|run| run.1.as_deref() == Some(customer)).collect();
        let ids: Vec<&str> = lane.iter().map(|run| run.0.as_str()).collect();
        let expected: Vec<&str> = sent
            .iter()
            .map(String::as_str)
            .filter(|id| (id.as_bytes()[4] - b'0') % 2 == u8::from(customer == "cus_odd"))
            .collect();
        assert_eq!(ids, expected, "`{customer}` ran out of order");
        for pair in lane.windows(2) {
            assert!(pair[0].3 <= pair[1].2, "two runs of `{customer}` overlapped: {pair:?}");
        }
    }
    // The two keys ran side by side: some run of one overlapped a run of the other.
    let overlapped = runs.iter().any(|a| runs.iter().any(|b| a.1 != b.1 && a.2 < b.3 && b.2 < a.3));
    assert!(overlapped, "the two keys never ran at once: {runs:?}");
}

/// An inbox table made before ordered lanes (its columns as they were) gains them when
/// a receiver of this version connects, and what it held still runs.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_postgres_inbox_made_before_ordering_is_upgraded() {
    let url = crate::support::postgres_url();
    let table = format!("old_inbox_{}_{}", std::process::id(), fastrand::u32(..));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE TABLE {table} (key text PRIMARY KEY, event_id text NOT NULL, event_type text NOT NULL,
                 headers bytea NOT NULL, body bytea NOT NULL, signed_at bigint, state text NOT NULL,
                 attempts integer NOT NULL, due_at timestamptz NOT NULL, token text, last_error text,
                 received_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO {table} VALUES ('groq:event:old', 'old', 'resource.created', '', '{{}}', NULL, 'queued', 0,
                 now(), NULL, NULL, now(), now());"
        ))
        .await
        .unwrap();
    let inbox = hookroute::inbox::PostgresInbox::builder(&url).table(&table).connect().await.unwrap();
    let taken = inbox.take(Duration::from_secs(30)).await.unwrap().expect("the old row is due");
    assert_eq!((taken.delivery.key.as_str(), taken.delivery.order_key.as_deref()), ("groq:event:old", None));
    inbox.complete(&taken.lease, Duration::from_secs(60)).await.unwrap();
    // Connecting again changes nothing (no ALTER on a table that has the columns).
    hookroute::inbox::PostgresInbox::builder(&url).table(&table).connect().await.unwrap();
    assert_eq!(inbox.stats().await.unwrap().done, 1);
}

/// Deliveries of one key that arrive together are stored in one PostgreSQL batch (one
/// statement, its rows inserted in key order); with equal creation times they still
/// run in the order they arrived, not in their keys' order.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_a_keys_deliveries_stored_in_one_batch_run_in_arrival_order() {
    use hookroute::inbox::{Enqueued, Limits, NewDelivery, Order};
    let url = crate::support::postgres_url();
    let table = format!("batch_order_{}_{}", std::process::id(), fastrand::u32(..));
    let inbox = hookroute::inbox::PostgresInbox::builder(&url).table(&table).connect().await.unwrap();
    // They arrive k7, k6, ..., k0: the reverse of their keys' order. On this
    // one-thread runtime the batch's writer starts only once all eight are waiting.
    let keys: Vec<String> = (0..8).rev().map(|n| format!("groq:event:k{n}")).collect();
    let deliveries: Vec<NewDelivery<'_>> = keys
        .iter()
        .map(|key| NewDelivery {
            key,
            id: key,
            event_type: "customer.subscription.updated",
            headers: b"",
            body: b"{}",
            signed_at: None,
            order: Order { key: Some("cus_1"), created_ms: Some(1_000), limits: Limits::NONE },
        })
        .collect();
    let enqueued = futures_util::future::join_all(deliveries.iter().map(|new| inbox.enqueue(new))).await;
    assert!(enqueued.iter().all(|answer| matches!(answer, Ok(Enqueued::Queued))), "{enqueued:?}");
    let mut ran = Vec::new();
    while let Some(taken) = inbox.take(Duration::from_secs(60)).await.unwrap() {
        ran.push(taken.delivery.key.clone());
        inbox.complete(&taken.lease, Duration::from_secs(60)).await.unwrap();
    }
    assert_eq!(ran, keys, "not in the order they arrived");
}

/// The planner's sample of an inbox table is soon out of date: a backlog is sampled
/// all queued and is soon mostly done; a table sampled all done gets a new backlog.
/// Keyed takes and completions must still read their keys' rows, never every key's.
/// With a sample of `state`, the first made each take's stale guard read every done
/// row through the state index, and the second each key's lookup of its next row
/// read every queued one: the reads grew with the square of the deliveries, and a
/// drain of a fresh table stalled for a minute, until the next sample.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_keyed_takes_read_their_keys_rows_whatever_the_planner_sampled() {
    use hookroute::inbox::{Enqueued, Limits, NewDelivery, Order, PostgresInbox};
    const KEYS: usize = 40;
    const BACKLOG: usize = 400;
    let url = crate::support::postgres_url();
    let table = format!("sampled_{}_{}", std::process::id(), fastrand::u32(..));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let inbox = PostgresInbox::builder(&url).table(&table).connect().await.unwrap();
    let enqueue = |inbox: &PostgresInbox, round: usize| {
        let inbox = inbox.clone();
        async move {
            for n in 0..BACKLOG {
                let key = format!("groq:event:r{round}e{n}");
                let created_ms = Some(u64::try_from(round * BACKLOG + n).unwrap());
                let order = Order { key: Some(&format!("cus_{}", n % KEYS)), created_ms, limits: Limits::NONE };
                let new = NewDelivery {
                    key: &key,
                    id: &key,
                    event_type: "invoice.paid",
                    headers: b"",
                    body: b"{}",
                    signed_at: None,
                    order,
                };
                assert!(matches!(inbox.enqueue(&new).await, Ok(Enqueued::Queued)));
            }
        }
    };
    let run = |inbox: &PostgresInbox, count: usize| {
        let inbox = inbox.clone();
        async move {
            for _ in 0..count {
                let taken = inbox.take(Duration::from_secs(60)).await.unwrap().expect("a due delivery");
                inbox.complete(&taken.lease, Duration::from_secs(60)).await.unwrap();
            }
        }
    };
    let analyze = format!("ANALYZE {table}");
    // Sampled all queued, then run to the last.
    enqueue(&inbox, 0).await;
    client.batch_execute(&analyze).await.unwrap();
    run(&inbox, BACKLOG).await;
    // Sampled all done, then a new backlog, half of it run.
    client.batch_execute(&analyze).await.unwrap();
    enqueue(&inbox, 1).await;
    run(&inbox, BACKLOG / 2).await;
    // Each session sends its counts when it ends: wait until every update is
    // counted, and with it the reads of the session that made it.
    drop(inbox);
    let writes = i64::try_from(2 * (BACKLOG + BACKLOG / 2)).unwrap();
    let counted = format!(
        "SELECT t.n_tup_upd, i.idx_tup_read FROM pg_stat_user_tables t
         JOIN pg_stat_user_indexes i ON i.relid = t.relid AND i.indexrelname = '{table}_state'
         WHERE t.relid = '{table}'::regclass"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let read = loop {
        let row = client.query_one(&counted, &[]).await.unwrap();
        let (updated, read): (i64, i64) = (row.get(0), row.get(1));
        if updated >= writes {
            break read;
        }
        assert!(Instant::now() < deadline, "PostgreSQL counted {updated} updates of {writes}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The state index holds every key's rows; a take or completion that reads it
    // reads other keys' rows.
    assert!(read < i64::try_from(KEYS).unwrap(), "takes and completions read {read} rows of every key");
}
