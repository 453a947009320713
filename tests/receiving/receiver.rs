//! The `Receiver` called directly, as a user's own HTTP layer would.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookroute::testing::TestEvent;
use hookroute::{
    webhook_handlers, ConfigError, Coreweave, DeliveredKind, EventMeta, Groq, HandlerError, MemoryStore, Parsed,
    Receiver, Rejection, SecretError, UnknownEvent, WebhookHandlers,
};
use serde_json::value::RawValue;

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
    #[event("job.finished", unlisted)]
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

/// A Groq receiver with one typed handler and no fallback.
#[derive(Default)]
struct Names {
    seen: Mutex<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
}

#[webhook_handlers(provider = "groq")]
impl Names {
    #[event("name.set", unlisted)]
    async fn set(&self, data: Named) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(data.name);
        Ok(())
    }
}

#[tokio::test]
async fn a_duplicate_is_acknowledged_without_reading_its_data() {
    let receiver = Receiver::builder(Names::default()).secret("s").build().unwrap();
    let first = TestEvent::<Groq>::new("name.set", serde_json::json!({"name": "a"})).id("evt_d").sign("s");
    assert_eq!(
        receiver.receive(&first.headers, &first.body).await.delivered().unwrap().kind(),
        DeliveredKind::Processed
    );
    // The same event id again, with data its handler's type cannot take: the store
    // answers first, so the data is not parsed.
    let retry = TestEvent::<Groq>::new("name.set", serde_json::json!({"name": 5})).id("evt_d").sign("s");
    let outcome = receiver.receive(&retry.headers, &retry.body).await;
    assert_eq!(outcome.delivered().unwrap().kind(), DeliveredKind::Duplicate);
    assert_eq!(*receiver.handlers().seen.lock().unwrap(), ["a"]);
}

#[tokio::test]
async fn data_that_does_not_fit_releases_the_claim() {
    let receiver = Receiver::builder(Names::default()).secret("s").build().unwrap();
    let bad = TestEvent::<Groq>::new("name.set", serde_json::json!({"name": 5})).id("evt_b").sign("s");
    let outcome = receiver.receive(&bad.headers, &bad.body).await;
    assert!(matches!(outcome.rejection(), Some(Rejection::Data { .. })), "{outcome:?}");
    assert_eq!(outcome.status(), 400);
    assert!(receiver.store().is_empty(), "the claim was released");
    // A corrected delivery of the same event runs at once, not after a lease.
    let good = TestEvent::<Groq>::new("name.set", serde_json::json!({"name": "b"})).id("evt_b").sign("s");
    assert_eq!(receiver.receive(&good.headers, &good.body).await.delivered().unwrap().kind(), DeliveredKind::Processed);
    assert_eq!(*receiver.handlers().seen.lock().unwrap(), ["b"]);
}

#[tokio::test]
async fn types_no_handler_takes_never_reach_the_store() {
    let receiver = Receiver::builder(Names::default()).secret("s").build().unwrap();
    let delivery = TestEvent::<Groq>::new("name.cleared", serde_json::json!({})).id("evt_i").sign("s");
    for _ in 0..2 {
        let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
        assert_eq!(outcome.delivered().unwrap().kind(), DeliveredKind::Ignored);
    }
    assert!(receiver.store().is_empty());
    // Decided from the type alone (no claim and release in between): exactly the
    // handlers' types, or every type with a fallback.
    assert!(<Names as WebhookHandlers>::handles(&EventMeta::new("groq", "e", "name.set")));
    assert!(!<Names as WebhookHandlers>::handles(&EventMeta::new("groq", "e", "name.cleared")));
    assert!(<Recorder as WebhookHandlers>::handles(&EventMeta::new("coreweave", "e", "job.queued")));
}

/// Log lines written on this thread while a test captures them.
///
/// tracing caches, per log line and for the whole process, whether anyone listens.
/// With one subscriber set by `set_default` on a single test's thread, a line first
/// reached on another test's thread is cached as unheard by everyone, and the test
/// that listens sees nothing. So this binary has one global subscriber, and each
/// test that reads the log collects the lines its own thread writes.
mod captured {
    use std::cell::RefCell;
    use std::io::Write;
    use std::sync::Once;

    thread_local! {
        static LINES: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }

    struct ThisThread;

    impl Write for ThisThread {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            LINES.with(|lines| {
                if let Some(lines) = lines.borrow_mut().as_mut() {
                    lines.extend_from_slice(bytes);
                }
            });
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The log written on this thread while `run` runs.
    pub(super) fn log(run: impl FnOnce()) -> String {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt().with_writer(|| ThisThread).with_ansi(false).finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in this binary");
        });
        LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
        run();
        let lines = LINES.with(|lines| lines.borrow_mut().take()).unwrap_or_default();
        String::from_utf8(lines).unwrap()
    }
}

/// An `ignored` answer is a 200: the provider never sends that event again. A misspelt
/// event name lost every delivery of its type with nothing above INFO in the log; now
/// the first of each type is a WARN that names it.
#[test]
fn an_ignored_type_is_warned_about_once() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let receive = |receiver: &Receiver<Names>, n: usize, event_type: &str| {
        let delivery = TestEvent::<Groq>::new(event_type, serde_json::json!({})).id(format!("evt_w{n}")).sign("s");
        let outcome = runtime.block_on(receiver.receive(&delivery.headers, &delivery.body));
        assert_eq!(outcome.delivered().unwrap().kind(), DeliveredKind::Ignored);
    };
    let log = captured::log(|| {
        // Another thread reaches the warning first, as another test may: with a
        // subscriber on this thread only, that cached the line as unheard (a flaky
        // failure, now a certain one when this test runs alone).
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let other = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let receiver = Receiver::builder(Names::default()).secret("s").build().unwrap();
                let delivery = TestEvent::<Groq>::new("name.other", serde_json::json!({})).sign("s");
                let outcome = other.block_on(receiver.receive(&delivery.headers, &delivery.body));
                assert_eq!(outcome.delivered().unwrap().kind(), DeliveredKind::Ignored);
            });
        });
        let receiver = Receiver::builder(Names::default()).secret("s").build().unwrap();
        for (n, event_type) in ["name.cleared", "name.cleared", "name.cleared", "name.renamed"].iter().enumerate() {
            receive(&receiver, n, event_type);
        }
    });
    let warnings: Vec<&str> =
        log.lines().filter(|line| line.contains("WARN") && line.contains("no handler takes")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(warnings[0].contains("`name.cleared`") && warnings[1].contains("`name.renamed`"), "{log}");
}

#[tokio::test]
async fn a_hand_written_impl_that_ignores_an_event_releases_its_claim() {
    // `handles` left at its default (every event): the event is claimed, `parse`
    // ignores it, and the claim is given back rather than recorded as processed.
    struct ByHand;
    impl WebhookHandlers for ByHand {
        type Provider = Groq;
        type Event = ();
        const EVENT_TYPES: &'static [&'static str] = &[];

        fn parse(_: &EventMeta, _: &RawValue) -> Result<Parsed<()>, serde_json::Error> {
            Ok(Parsed::Ignored)
        }

        async fn dispatch(&self, (): (), _: &EventMeta) -> Result<(), HandlerError> {
            unreachable!("nothing is handled")
        }
    }
    let receiver = Receiver::builder(ByHand).secret("s").build().unwrap();
    let delivery = TestEvent::<Groq>::new("anything", serde_json::json!({})).id("evt_h").sign("s");
    for _ in 0..2 {
        let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
        assert_eq!(outcome.delivered().unwrap().kind(), DeliveredKind::Ignored);
    }
    assert!(receiver.store().is_empty());
}

#[tokio::test]
async fn a_full_store_of_live_claims_fails_closed() {
    struct Slow;
    #[webhook_handlers(provider = "groq")]
    impl Slow {
        #[event("slow", unlisted)]
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
    // 999 ms against a 1 s lease leaves no time to give the claim back.
    let timed = |lease: Duration, handler_timeout: Duration| {
        Receiver::builder(Recorder::default()).secret("s").lease(lease).handler_timeout(handler_timeout).build()
    };
    let close = timed(Duration::from_secs(1), Duration::from_millis(999));
    assert!(matches!(close, Err(ConfigError::Invalid(message)) if message.contains("by at least 1s")));
    let long = timed(Duration::from_secs(100), Duration::from_secs(91));
    assert!(matches!(long, Err(ConfigError::Invalid(message)) if message.contains("by at least 10s")));
    assert!(timed(Duration::from_secs(100), Duration::from_secs(90)).is_ok());
    let empty = Receiver::builder(Recorder::default()).secret("").build().unwrap_err();
    assert_eq!(empty, ConfigError::EmptySecret { provider: "coreweave" });
}

/// A TTL shorter than the window a signed delivery is accepted in let a byte-identical
/// replay inside that window run again.
#[test]
fn a_ttl_shorter_than_the_replay_window_is_refused() {
    let kept = |ttl: Duration| {
        Receiver::builder(Recorder::default()).secret("s").tolerance(Duration::from_secs(300)).ttl(ttl).build()
    };
    let short = kept(Duration::from_secs(599));
    assert!(matches!(short, Err(ConfigError::Invalid(message)) if message.contains("replay window")));
    assert!(kept(Duration::from_secs(600)).is_ok());
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

/// Handlers under `#[cfg(..)]`: what is configured out is not generated either.
#[derive(Default)]
struct Configured {
    seen: Mutex<Vec<String>>,
}

#[webhook_handlers(provider = "groq")]
impl Configured {
    #[cfg(test)]
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push("created".into());
        Ok(())
    }

    // Configured out: `resource.deleted` is ignored, not dispatched to a method that
    // does not exist.
    #[cfg(not(test))]
    #[event("resource.deleted")]
    async fn deleted(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        unreachable!()
    }

    // One type under two opposite `#[cfg]`s is not a duplicate.
    #[cfg(not(test))]
    #[event("resource.updated")]
    async fn updated_off(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        unreachable!()
    }

    #[cfg(test)]
    #[event("resource.updated")]
    async fn updated_on(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push("updated".into());
        Ok(())
    }

    #[cfg(not(test))]
    #[fallback]
    async fn other(&self, _event: UnknownEvent) -> Result<(), HandlerError> {
        unreachable!()
    }
}

#[tokio::test]
async fn handlers_under_cfg_are_generated_only_when_configured_in() {
    assert_eq!(ConfiguredEvent::EVENT_TYPES, ["resource.created", "resource.updated"]);
    let receiver = Receiver::builder(Configured::default()).secret("s").build().unwrap();
    let expected = [
        ("resource.created", DeliveredKind::Processed),
        ("resource.deleted", DeliveredKind::Ignored),
        ("resource.updated", DeliveredKind::Processed),
        ("resource.moved", DeliveredKind::Ignored),
    ];
    for (n, (event_type, kind)) in expected.into_iter().enumerate() {
        let delivery = TestEvent::<Groq>::new(event_type, serde_json::json!({})).id(format!("evt_c{n}")).sign("s");
        let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
        assert_eq!(outcome.delivered().unwrap().kind(), kind, "{event_type}");
    }
    assert_eq!(*receiver.handlers().seen.lock().unwrap(), ["created", "updated"]);
    assert!(!<Configured as WebhookHandlers>::handles(&EventMeta::new("groq", "e", "resource.deleted")));
}

/// A handler whose state is large across an await.
struct Heavy;

#[webhook_handlers(provider = "groq")]
impl Heavy {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        let scratch = [7_u8; 8192];
        tokio::task::yield_now().await;
        std::hint::black_box(&scratch);
        Ok(())
    }
}

/// The generated `dispatch` hands back a boxed future, whatever the handlers hold
/// across their awaits: the receiver's own futures stay small, and editing a handler's
/// body does not change their types, so it recompiles that handler, not the receiver's
/// code monomorphized for the app (a 20-handler app's edit-rebuild went from 1.98 s to
/// about 0.9 s; `bench/build/run`).
#[test]
fn dispatch_boxes_each_handlers_future() {
    let meta = EventMeta::new("groq", "evt_1", "resource.created");
    let data = RawValue::from_string("{}".to_owned()).unwrap();
    let Ok(Parsed::Handled(event)) = Heavy::parse(&meta, &data) else { panic!("parsed") };
    let future = Heavy.dispatch(event, &meta);
    assert!(
        std::mem::size_of_val(&future) <= 2 * std::mem::size_of::<usize>(),
        "the dispatch future is {} bytes: it holds the handler's state",
        std::mem::size_of_val(&future)
    );
}
