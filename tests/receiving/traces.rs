//! The spans and logs of a delivery, read back by a tracing layer of the test's own:
//! one `webhook.receive` span per delivery with OpenTelemetry-style attribute names,
//! the handler's span inside it, and each failure logged once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookroute::inbox::{InboxStats, MemoryInbox};
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument as _, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[cfg(feature = "redis")]
use crate::support;

const SECRET: &str = "whsec_traces";

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        tracing::info!("inside the handler");
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Err(HandlerError::msg("database is down"))
    }
}

#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    /// The span the event happened in.
    span: Option<u64>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Seen {
    spans: BTreeMap<u64, SpanRecord>,
    events: Vec<EventRecord>,
}

impl Seen {
    fn spans(&self, name: &str) -> Vec<(u64, SpanRecord)> {
        self.spans.iter().filter(|(_, span)| span.name == name).map(|(id, span)| (*id, span.clone())).collect()
    }

    fn at_least(&self, level: Level) -> Vec<EventRecord> {
        self.events.iter().filter(|event| event.level <= level).cloned().collect()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx.span(id).and_then(|span| span.parent()).map(|parent| parent.id().into_u64());
        let record = SpanRecord { name: attrs.metadata().name(), parent, fields };
        self.0.lock().unwrap().spans.insert(id.into_u64(), record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span = ctx.event_span(event).map(|span| span.id().into_u64());
        self.0.lock().unwrap().events.push(EventRecord { level: *event.metadata().level(), span, fields });
    }
}

/// Runs `test` on a current-thread runtime under the recording layer.
fn traced<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) -> Seen {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test());
    });
    let seen = std::mem::take(&mut *recorder.0.lock().unwrap());
    seen
}

#[test]
fn a_delivery_has_one_span_with_its_facts_and_the_handler_span_inside() {
    let seen = traced(|| async {
        let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
        let delivery =
            TestEvent::<Groq>::new("resource.created", serde_json::json!({})).id(r#"evt_1" forged="yes"#).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 200);
    });
    let receives = seen.spans("webhook.receive");
    assert_eq!(receives.len(), 1, "{receives:?}");
    let (receive_id, receive) = &receives[0];
    let field = |name: &str| receive.fields.get(name).map(String::as_str);
    assert_eq!(field("webhook.provider"), Some("groq"));
    assert_eq!(field("webhook.event.type"), Some("resource.created"));
    // Escaped: a sender's id cannot forge a field in a log line (control characters
    // are refused with the envelope).
    assert_eq!(field("webhook.event.id"), Some(r#"evt_1\" forged=\"yes"#));
    assert_eq!(field("hookroute.outcome"), Some("processed"));
    assert_eq!(field("http.response.status_code"), Some("200"));
    assert_eq!((field("error.type"), field("otel.status_code")), (None, None));

    let handlers = seen.spans("webhook.handler");
    assert_eq!(handlers.len(), 1);
    let (handler_id, handler) = &handlers[0];
    assert_eq!(handler.parent, Some(*receive_id), "the handler's span is inside the delivery's");
    let inside =
        seen.events.iter().find(|event| event.fields.get("message").is_some_and(|m| m == "inside the handler"));
    assert_eq!(inside.and_then(|event| event.span), Some(*handler_id));
    assert!(seen.at_least(Level::WARN).is_empty(), "{:?}", seen.events);
}

#[test]
fn a_failed_handler_is_logged_once_as_an_error_in_its_delivery_span() {
    let seen = traced(|| async {
        let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
        let delivery = TestEvent::<Groq>::new("resource.deleted", serde_json::json!({})).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 500);
    });
    let (receive_id, receive) = seen.spans("webhook.receive").remove(0);
    assert_eq!(receive.fields.get("hookroute.outcome").map(String::as_str), Some("handler_failed"));
    assert_eq!(receive.fields.get("error.type").map(String::as_str), Some("handler_failed"));
    assert_eq!(receive.fields.get("otel.status_code").map(String::as_str), Some("ERROR"));
    let warnings = seen.at_least(Level::WARN);
    assert_eq!(warnings.len(), 1, "once: {warnings:?}");
    assert_eq!((warnings[0].level, warnings[0].span), (Level::ERROR, Some(receive_id)));
    assert!(warnings[0].fields["message"].contains("database is down"), "{warnings:?}");
}

#[test]
fn a_forged_delivery_is_one_warning_and_never_an_error() {
    let seen = traced(|| async {
        let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
        let forged = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).sign("forged");
        assert_eq!(receiver.receive(&forged.headers, &forged.body).await.status(), 401);
    });
    let warnings = seen.at_least(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].level, Level::WARN);
    let (_, receive) = seen.spans("webhook.receive").remove(0);
    assert_eq!(receive.fields.get("hookroute.outcome").map(String::as_str), Some("unverified"));
    assert_eq!(receive.fields.get("error.type").map(String::as_str), Some("unverified"));
    assert_eq!(receive.fields.get("otel.status_code"), None, "a 4xx is the sender's error, not the server's");
    assert_eq!(receive.fields.get("webhook.event.id"), None, "not read from an unverified body");
}

/// Queues `delivery` in inbox mode (202), then runs workers until the inbox's stats
/// satisfy `until`.
async fn through_a_worker(delivery: SignedDelivery, until: fn(&InboxStats) -> bool) {
    let receiver = Receiver::builder(App).secret(SECRET).inbox(MemoryInbox::new()).build().unwrap();
    assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    let workers = receiver.worker().unwrap().spawn();
    let inbox = receiver.inbox().unwrap();
    while !until(&inbox.stats().await.unwrap()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    workers.shutdown().await;
}

#[test]
fn a_worker_attempt_has_its_span_with_the_attempt_and_the_handler_inside() {
    let seen = traced(|| {
        let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).id("evt_w").sign(SECRET);
        through_a_worker(delivery, |stats| stats.done > 0)
    });
    let (receive_id, _) = seen.spans("webhook.receive").remove(0);
    let processes = seen.spans("webhook.process");
    assert_eq!(processes.len(), 1, "{processes:?}");
    let (process_id, process) = &processes[0];
    assert_ne!(process.parent, Some(receive_id));
    let field = |name: &str| process.fields.get(name).map(String::as_str);
    assert_eq!(field("webhook.provider"), Some("groq"));
    assert_eq!(field("webhook.event.type"), Some("resource.created"));
    assert_eq!(field("webhook.event.id"), Some("evt_w"));
    assert_eq!(field("webhook.attempt"), Some("1"));
    assert_eq!(field("hookroute.attempt.result"), Some("done"));
    let (_, handler) = seen.spans("webhook.handler").remove(0);
    assert_eq!(handler.parent, Some(*process_id));
    assert_eq!(handler.fields.get("webhook.attempt").map(String::as_str), Some("1"));
}

#[test]
fn a_request_the_http_service_refuses_is_a_delivery_span_too() {
    use tower::ServiceExt as _;
    let seen = traced(|| async {
        let receiver = Receiver::builder(App).secret(SECRET).body_limit(16).build().unwrap();
        let request = http::Request::post("/").body(http_body_util::Full::new(bytes::Bytes::from(vec![b'x'; 64])));
        let response = receiver.oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), 413);
    });
    let (receive_id, receive) = seen.spans("webhook.receive").remove(0);
    assert_eq!(receive.fields.get("hookroute.outcome").map(String::as_str), Some("too_large"));
    assert_eq!(receive.fields.get("http.response.status_code").map(String::as_str), Some("413"));
    let warnings = seen.at_least(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].span, Some(receive_id));
}

/// Behind an HTTP server's own request span (tower-http's `TraceLayer`, say), the
/// delivery's span is its child, though the delivery runs in a task of its own.
#[test]
fn the_delivery_span_is_a_child_of_the_callers_span() {
    use tower::ServiceExt as _;
    let seen = traced(|| async {
        let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
        let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({})).sign(SECRET);
        let mut request = http::Request::post("/").body(http_body_util::Full::new(bytes::Bytes::from(delivery.body)));
        *request.as_mut().unwrap().headers_mut() = delivery.headers;
        let response = receiver.oneshot(request.unwrap()).instrument(tracing::info_span!("http.request")).await;
        assert_eq!(response.unwrap().status(), 200);
    });
    let (request_id, _) = seen.spans("http.request").remove(0);
    let (_, receive) = seen.spans("webhook.receive").remove(0);
    assert_eq!(receive.parent, Some(request_id));
}

#[test]
fn a_failed_worker_attempt_marks_its_span_as_an_error() {
    let seen = traced(|| {
        let delivery = TestEvent::<Groq>::new("resource.deleted", serde_json::json!({})).sign(SECRET);
        through_a_worker(delivery, |stats| stats.retrying > 0)
    });
    let (process_id, process) = seen.spans("webhook.process").remove(0);
    let field = |name: &str| process.fields.get(name).map(String::as_str);
    assert_eq!(field("hookroute.attempt.result"), Some("retry"));
    assert_eq!((field("error.type"), field("otel.status_code")), (Some("retry"), Some("ERROR")));
    let warnings = seen.at_least(Level::WARN);
    assert_eq!(warnings.len(), 1, "one warning for the failed attempt: {warnings:?}");
    assert_eq!((warnings[0].level, warnings[0].span), (Level::WARN, Some(process_id)));
}

/// A Redis inbox on a server with `appendonly no` (as the test server runs) loses every
/// queued delivery when it restarts: connecting says so, loudly, once.
#[cfg(feature = "redis")]
#[test]
fn a_redis_inbox_without_an_append_only_file_is_a_warning() {
    let seen = traced(|| async {
        let prefix = format!("aof_{}_{}:", std::process::id(), line!());
        hookroute::inbox::RedisInbox::builder(support::redis_url()).prefix(prefix).connect().await.unwrap();
    });
    let warnings: Vec<_> = seen
        .at_least(Level::WARN)
        .into_iter()
        .filter(|event| event.fields.get("message").is_some_and(|message| message.contains("appendonly no")))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", seen.events);
}
