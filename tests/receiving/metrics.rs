//! What a receiver and its workers record through the `metrics` facade, read back
//! from a Prometheus recorder installed for this test's thread only.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookroute::inbox::{Inbox, MemoryInbox};
use hookroute::testing::TestEvent;
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const SECRET: &str = "whsec_metrics";

#[derive(Default)]
struct App {
    ran: AtomicUsize,
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        self.ran.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Fails for good: dead-lettered on its first attempt.
    #[event("resource.deleted")]
    async fn deleted(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        self.ran.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::permanent("no such resource"))
    }
}

/// Runs `test` on a current-thread runtime with a Prometheus recorder of its own, and
/// answers what the recorder renders afterwards.
fn recorded<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle: PrometheusHandle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test());
    });
    handle.render()
}

#[test]
fn inbox_mode_counts_queued_deliveries_attempts_dead_letters_and_depth() {
    let text = recorded(|| async {
        let app = Arc::new(App::default());
        let inbox = Arc::new(MemoryInbox::new());
        let receiver = Receiver::builder(Arc::clone(&app)).secret(SECRET).inbox(Arc::clone(&inbox)).build().unwrap();
        for (event_type, id) in [("resource.created", "evt_ok"), ("resource.deleted", "evt_dead")] {
            let delivery = TestEvent::<Groq>::new(event_type, serde_json::json!({})).id(id).sign(SECRET);
            assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
        }
        let workers = receiver.worker().unwrap().stats_interval(Duration::from_millis(100)).spawn();
        while app.ran.load(Ordering::SeqCst) < 2 || inbox.stats().await.unwrap().dead == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Past the next reading that counts the done ones too (one in 20).
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        workers.shutdown().await;
    });
    let queued = |event_type| {
        let labels = [("webhook_event_type", event_type), ("hookroute_outcome", "queued")];
        support::prometheus_sample(&text, "hookroute_deliveries", &labels)
    };
    assert_eq!(queued("resource.created"), Some(1.0), "{text}");
    assert_eq!(queued("resource.deleted"), Some(1.0), "{text}");
    let attempts = |event_type, result| {
        let labels = [("webhook_event_type", event_type), ("hookroute_attempt_result", result)];
        support::prometheus_sample(&text, "hookroute_inbox_attempts", &labels)
    };
    assert_eq!(attempts("resource.created", "done"), Some(1.0), "{text}");
    assert_eq!(attempts("resource.deleted", "dead"), Some(1.0), "{text}");
    assert_eq!(
        support::prometheus_sample(
            &text,
            "hookroute_inbox_dead_letters",
            &[("webhook_event_type", "resource.deleted")]
        ),
        Some(1.0)
    );
    let depth = |state| {
        support::prometheus_sample(
            &text,
            "hookroute_inbox_depth",
            &[("db_system_name", "memory"), ("hookroute_inbox_state", state)],
        )
    };
    assert_eq!((depth("done"), depth("dead"), depth("queued")), (Some(1.0), Some(1.0), Some(0.0)), "{text}");
    assert_eq!(
        support::prometheus_sample(&text, "hookroute_inbox_oldest_age", &[("db_system_name", "memory")]),
        Some(0.0),
        "{text}"
    );
    let enqueues = [("db_system_name", "memory"), ("db_operation_name", "enqueue")];
    assert_eq!(
        support::prometheus_sample(&text, "hookroute_inbox_operation_duration_count", &enqueues),
        Some(2.0),
        "{text}"
    );
    let failed = [("webhook_event_type", "resource.deleted"), ("hookroute_handler_result", "error")];
    assert_eq!(support::prometheus_sample(&text, "hookroute_handler_duration_count", &failed), Some(1.0), "{text}");
}

/// A sender cannot grow the label sets: undeclared event types are all `unknown`.
#[test]
fn event_types_no_handler_declares_share_one_label() {
    let text = recorded(|| async {
        let receiver = Receiver::builder(App::default()).secret(SECRET).build().unwrap();
        for n in 0..20 {
            let delivery = TestEvent::<Groq>::new(format!("made.up.{n}"), serde_json::json!({})).sign(SECRET);
            assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 200);
        }
    });
    let labels = [("webhook_event_type", "unknown"), ("hookroute_outcome", "ignored")];
    assert_eq!(support::prometheus_sample(&text, "hookroute_deliveries", &labels), Some(20.0), "{text}");
    assert!(!text.contains("made.up"), "{text}");
}

/// A store that fails is counted by backend and operation; the delivery is a 503.
#[test]
fn store_calls_are_timed_and_their_failures_counted() {
    let text = recorded(|| async {
        let receiver = Receiver::builder(App::default()).secret(SECRET).build().unwrap();
        let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 200);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 200);
    });
    let op = |name| [("db_system_name", "memory"), ("db_operation_name", name)];
    assert_eq!(
        support::prometheus_sample(&text, "hookroute_store_operation_duration_count", &op("claim")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        support::prometheus_sample(&text, "hookroute_store_operation_duration_count", &op("complete")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(support::prometheus_sample(&text, "hookroute_store_errors", &op("claim")), None, "{text}");
    let receive = [("webhook_provider", "groq"), ("hookroute_outcome", "processed")];
    assert_eq!(support::prometheus_sample(&text, "hookroute_receive_duration_count", &receive), Some(1.0), "{text}");

    let text = recorded(|| async {
        let receiver = Receiver::builder(App::default()).secret(SECRET).store(support::DownStore).build().unwrap();
        let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 503);
    });
    let down = [("db_system_name", "down"), ("db_operation_name", "claim")];
    assert_eq!(support::prometheus_sample(&text, "hookroute_store_errors", &down), Some(1.0), "{text}");
    let unavailable = [("webhook_event_type", "unknown"), ("hookroute_outcome", "store_unavailable")];
    assert_eq!(support::prometheus_sample(&text, "hookroute_deliveries", &unavailable), Some(1.0), "{text}");
}

/// Two inboxes in one process (two providers, say) are two series of the inbox gauges,
/// labelled by their receivers' namespaces: one inbox's dead letter never shows as the
/// other's.
#[test]
fn two_inboxes_in_one_process_are_two_series() {
    let text = recorded(|| async {
        let mut workers = Vec::new();
        for (namespace, event_type) in [("billing", "resource.deleted"), ("repos", "resource.created")] {
            let inbox = Arc::new(MemoryInbox::new());
            let receiver = Receiver::builder(App::default())
                .secret(SECRET)
                .namespace(namespace)
                .inbox(Arc::clone(&inbox))
                .build()
                .unwrap();
            let delivery = TestEvent::<Groq>::new(event_type, serde_json::json!({})).id("evt_1").sign(SECRET);
            assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
            workers.push((inbox, receiver.worker().unwrap().stats_interval(Duration::from_millis(100)).spawn()));
        }
        for (inbox, _) in &workers {
            while inbox.stats().await.unwrap().queued + inbox.stats().await.unwrap().running > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        for (_, handle) in workers {
            handle.shutdown().await;
        }
    });
    let depth = |inbox, state| {
        support::prometheus_sample(
            &text,
            "hookroute_inbox_depth",
            &[("hookroute_inbox", inbox), ("hookroute_inbox_state", state)],
        )
    };
    assert_eq!((depth("billing", "dead"), depth("billing", "done")), (Some(1.0), Some(0.0)), "{text}");
    assert_eq!((depth("repos", "dead"), depth("repos", "done")), (Some(0.0), Some(1.0)), "{text}");
}
