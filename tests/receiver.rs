//! The `Receiver` called directly, as a user's own HTTP layer would.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookroute::testing::TestEvent;
use hookroute::{
    webhook_handlers, ConfigError, Coreweave, DeliveredKind, EventMeta, Groq, HandlerError, MemoryStore, Receiver,
    Rejection, SecretError, UnknownEvent,
};

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[webhook_handlers(provider = "coreweave")]
impl Recorder {
    #[event("job.finished")]
    async fn finished(&self, data: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        let line = format!(
            "finished {} {} {:?} {:?} {}",
            meta.provider(),
            meta.id(),
            meta.created(),
            meta.timestamp(),
            data["job"]
        );
        self.seen.lock().unwrap().push(line);
        Ok(())
    }

    #[fallback]
    async fn other(&self, event: UnknownEvent) -> Result<(), HandlerError> {
        let line = format!("other {} {}", event.event_type(), event.data().get());
        self.seen.lock().unwrap().push(line);
        Ok(())
    }
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[tokio::test]
async fn the_handler_sees_the_events_facts() {
    let receiver = Receiver::builder(Recorder::default()).secret("s").build().unwrap();
    let delivery = TestEvent::<Coreweave>::new("job.finished", serde_json::json!({"job": 7}))
        .id("evt_facts")
        .timestamp(1_800_000_000)
        .sign("s");
    let outcome = receiver.receive_at(&delivery.headers, &delivery.body, at(1_800_000_010)).await;
    assert_eq!(outcome.delivered().unwrap().kind(), DeliveredKind::Processed);
    assert_eq!(receiver.handlers().seen(), ["finished coreweave evt_facts Some(\"1800000000\") Some(1800000000) 7"]);
}

#[tokio::test]
async fn a_fallback_processes_unknown_types_exactly_once() {
    let receiver = Receiver::builder(Recorder::default()).secret("s").build().unwrap();
    let delivery = TestEvent::<Coreweave>::new("job.queued", serde_json::json!([1, 2])).id("evt_other").sign("s");
    for expected in [DeliveredKind::Processed, DeliveredKind::Duplicate] {
        let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
        assert_eq!(outcome.delivered().unwrap().kind(), expected);
    }
    assert_eq!(receiver.handlers().seen(), ["other job.queued [1,2]"]);
}

#[tokio::test]
async fn rotated_secrets_are_all_accepted() {
    let receiver = Receiver::builder(Recorder::default()).secret("new").secret("old").build().unwrap();
    for (i, secret) in ["new", "old"].into_iter().enumerate() {
        let delivery =
            TestEvent::<Coreweave>::new("job.finished", serde_json::json!({})).id(format!("e{i}")).sign(secret);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 200, "{secret}");
    }
    let delivery = TestEvent::<Coreweave>::new("job.finished", serde_json::json!({})).sign("retired");
    let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
    assert_eq!(outcome.status(), 401);
}

#[tokio::test]
async fn a_groq_delivery_is_not_a_coreweave_delivery() {
    let receiver = Receiver::builder(Recorder::default()).secret("s").build().unwrap();
    let delivery = TestEvent::<Groq>::new("job.finished", serde_json::json!({})).sign("s");
    let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
    assert!(matches!(outcome.rejection(), Some(Rejection::Verify(_))));
    assert_eq!(outcome.body(), r#"{"error":"missing header `x-coreweave-timestamp`"}"#);
}

#[tokio::test]
async fn a_full_store_of_live_claims_fails_closed() {
    struct Slow;
    #[webhook_handlers(provider = "groq")]
    impl Slow {
        #[event("slow")]
        async fn slow(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        }
    }
    let receiver = Receiver::builder(Slow).secret("s").store(MemoryStore::with_capacity(1)).build().unwrap();
    let first = TestEvent::<Groq>::new("slow", serde_json::json!({})).sign("s");
    let second = TestEvent::<Groq>::new("slow", serde_json::json!({})).sign("s");
    let (a, b) = tokio::join!(receiver.receive(&first.headers, &first.body), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        receiver.receive(&second.headers, &second.body).await
    });
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 503);
    assert!(b.body().contains("nothing was processed"));
    // Once the first completed, its record may be evicted for the next event.
    assert_eq!(receiver.receive(&second.headers, &second.body).await.status(), 200);
}

#[test]
fn a_missing_secret_names_the_variable() {
    // Only this test reads COREWEAVE_WEBHOOK_SECRET.
    std::env::remove_var("COREWEAVE_WEBHOOK_SECRET");
    let error = Receiver::new(Recorder::default()).unwrap_err();
    assert_eq!(error, ConfigError::Secret(SecretError::NotSet { var: "COREWEAVE_WEBHOOK_SECRET".into() }));
    assert!(error.to_string().starts_with("COREWEAVE_WEBHOOK_SECRET is not set"));

    std::env::set_var("COREWEAVE_WEBHOOK_SECRET", "from-env");
    let receiver = Receiver::new(Recorder::default());
    std::env::remove_var("COREWEAVE_WEBHOOK_SECRET");
    assert!(receiver.is_ok());
}

#[test]
fn a_handler_timeout_not_shorter_than_the_lease_is_refused() {
    let error = Receiver::builder(Recorder::default())
        .secret("s")
        .lease(Duration::from_secs(10))
        .handler_timeout(Duration::from_secs(10))
        .build()
        .unwrap_err();
    assert!(matches!(error, ConfigError::Invalid(message) if message.contains("shorter than the lease")));
    let empty = Receiver::builder(Recorder::default()).secret("").build().unwrap_err();
    assert_eq!(empty, ConfigError::EmptySecret { provider: "coreweave" });
}

#[test]
fn debug_output_never_shows_secrets() {
    let builder = Receiver::builder(Recorder::default()).secret("hunter2-secret");
    assert!(!format!("{builder:?}").contains("hunter2"));
    let receiver = builder.build().unwrap();
    assert!(!format!("{receiver:?}").contains("hunter2"));
}

#[tokio::test]
async fn the_body_limit_holds_without_an_http_adapter() {
    let receiver = Receiver::builder(Recorder::default()).secret("s").body_limit(100).build().unwrap();
    let delivery = TestEvent::<Coreweave>::new("job.finished", serde_json::json!({"pad": "x".repeat(200)})).sign("s");
    let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
    assert!(matches!(outcome.rejection(), Some(Rejection::TooLarge { limit: 100 })));
    assert_eq!(outcome.status(), 413);
    assert!(receiver.handlers().seen().is_empty());
}
