//! Micro benchmarks of what a delivery costs besides the network, each beside the floor
//! a careful hand-written receiver pays for the same work:
//!
//! - `verify/<scheme>/<size>`: a scheme's whole check (headers, window, HMAC, compare)
//!   beside `verify/bare-hmac/<size>`, the HMAC-SHA256 of the same bytes alone.
//! - `route/generated` (envelope + data parse + dispatch through the code
//!   `#[webhook_handlers]` writes) beside `route/hand-written` (`serde_json` into the same
//!   types and a `match`) and `route/hand-written-async` (the same, awaiting `async fn`
//!   handlers as the generated code does). Two steps take the generated path apart:
//!   `route/generated-meta-made-once` without building the `EventMeta` (the store key),
//!   and `route/generated-parse-dispatch` without the runtime's envelope either (the
//!   hand-written one read instead): what the macro's code alone costs.
//! - `receive/<who>/<mode>`: a whole delivery without HTTP (verify, parse, claim,
//!   handler, complete), hookroute's `Receiver` with its `MemoryStore` beside the
//!   hand-written receiver of the end-to-end run (`bench/baselines`), for fresh events
//!   (`unique`) and a retry of a processed one (`duplicate`).
//! - `receive-axum/<who>/<mode>`: the same through each one's axum router, called in
//!   process (no socket): what the HTTP adapter adds.
//!
//! `cargo bench --bench receive`; figures in BENCHMARKS.md.

// `criterion_group!` defines a public function without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use hookroute::provider::{ProviderConfig, Sign};
use hookroute::testing::TestEvent;
use hookroute::{
    webhook_handlers, EventMeta, GitHub, Groq, HandlerError, Parsed, Provider, Receiver, Secret, Shopify, Slack,
    StandardWebhooks, Stripe, WebhookHandlers,
};
use serde::Deserialize;

const SECRET: &str = "whsec_YmVuY2gtc2VjcmV0LTAwMDAwMDAwMDAwMA==";
const SIZES: [(usize, &str); 4] = [(256, "256B"), (1024, "1KiB"), (16 * 1024, "16KiB"), (1024 * 1024, "1MiB")];

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// An event whose encoded body is about `size` bytes.
fn data(size: usize) -> serde_json::Value {
    serde_json::json!({ "id": "r1", "name": "x".repeat(size.saturating_sub(120)) })
}

fn verify_scheme<P: Sign>(c: &mut Criterion, label: &str) {
    let mut group = c.benchmark_group("verify");
    let scheme =
        P::from_config(ProviderConfig { secrets: vec![Secret::from(SECRET)], tolerance: Duration::from_secs(300) })
            .expect("the bench secret suits every scheme");
    for (size, size_label) in SIZES {
        let delivery = TestEvent::<P>::new("resource.created", data(size)).id("evt_1").timestamp(now()).sign(SECRET);
        group.throughput(Throughput::Bytes(delivery.body.len() as u64));
        let at = SystemTime::now();
        group.bench_with_input(BenchmarkId::new(label, size_label), &delivery, |b, delivery| {
            b.iter(|| scheme.verify(black_box(&delivery.headers), black_box(&delivery.body), at).expect("valid"));
        });
    }
    group.finish();
}

fn bare_hmac(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    for (size, size_label) in SIZES {
        let delivery = TestEvent::<Groq>::new("resource.created", data(size)).sign(SECRET);
        group.throughput(Throughput::Bytes(delivery.body.len() as u64));
        group.bench_with_input(BenchmarkId::new("bare-hmac", size_label), &delivery.body, |b, body| {
            b.iter(|| {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
                mac.update(black_box(body));
                mac.finalize().into_bytes()
            });
        });
    }
    group.finish();
}

fn verification(c: &mut Criterion) {
    bare_hmac(c);
    verify_scheme::<Groq>(c, "groq");
    verify_scheme::<StandardWebhooks>(c, "standard");
    verify_scheme::<Stripe>(c, "stripe");
    verify_scheme::<GitHub>(c, "github");
    verify_scheme::<Slack>(c, "slack");
    verify_scheme::<Shopify>(c, "shopify");
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource) -> Result<(), HandlerError> {
        black_box((&data.id, &data.name));
        Ok(())
    }

    #[event("resource.updated")]
    async fn updated(&self, data: Resource) -> Result<(), HandlerError> {
        black_box((&data.id, &data.name));
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource) -> Result<(), HandlerError> {
        black_box(&data.id);
        Ok(())
    }
}

/// What a careful engineer writes by hand for the same three handlers.
mod by_hand {
    use super::{black_box, Resource};
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Envelope<'a> {
        #[serde(borrow)]
        pub(super) id: &'a str,
        #[serde(rename = "type", borrow)]
        event_type: &'a str,
        #[serde(borrow)]
        pub(super) data: &'a serde_json::value::RawValue,
    }

    #[allow(clippy::unused_async)] // a handler's shape: async, even when it never waits
    async fn created(data: Resource) {
        black_box((&data.id, &data.name));
    }

    #[allow(clippy::unused_async)] // a handler's shape: async, even when it never waits
    async fn updated(data: Resource) {
        black_box((&data.id, &data.name));
    }

    #[allow(clippy::unused_async)] // a handler's shape: async, even when it never waits
    async fn deleted(data: Resource) {
        black_box(&data.id);
    }

    /// [`route`] with the handlers as `async fn`s, awaited as the generated code does.
    pub(super) async fn route_async(body: &[u8]) -> Result<(), serde_json::Error> {
        let envelope: Envelope<'_> = serde_json::from_slice(body)?;
        black_box(envelope.id);
        match envelope.event_type {
            "resource.created" => created(serde_json::from_str(envelope.data.get())?).await,
            "resource.updated" => updated(serde_json::from_str(envelope.data.get())?).await,
            "resource.deleted" => deleted(serde_json::from_str(envelope.data.get())?).await,
            _ => {}
        }
        Ok(())
    }

    pub(super) fn route(body: &[u8]) -> Result<(), serde_json::Error> {
        let envelope: Envelope<'_> = serde_json::from_slice(body)?;
        black_box(envelope.id);
        match envelope.event_type {
            "resource.created" | "resource.updated" => {
                let data: Resource = serde_json::from_str(envelope.data.get())?;
                black_box((&data.id, &data.name));
            }
            "resource.deleted" => {
                let data: Resource = serde_json::from_str(envelope.data.get())?;
                black_box(&data.id);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Drives a future that never waits (the handlers above do not) to completion.
fn run_ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("the bench handlers never wait"),
    }
}

/// What `#[webhook_handlers]` generates, run on one event's data: `parse`, then `dispatch`.
fn parse_and_dispatch(app: &App, meta: &EventMeta, data: &serde_json::value::RawValue) {
    match App::parse(meta, data).expect("typed data") {
        Parsed::Handled(event) => run_ready(app.dispatch(event, meta)).expect("handled"),
        Parsed::Ignored => {}
    }
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    let delivery = TestEvent::<Groq>::new("resource.updated", data(1024)).id("evt_1").sign(SECRET);
    let headers = delivery.headers.clone();
    let app = App;
    group.bench_function("generated", |b| {
        b.iter(|| {
            let (meta, data) = hookroute::__private::Groq::envelope(&headers, black_box(&delivery.body))
                .map(|envelope| {
                    (EventMeta::new("groq", envelope.id.clone(), envelope.event_type.clone()), envelope.data)
                })
                .expect("an envelope");
            parse_and_dispatch(&app, &meta, &data);
        });
    });
    // The steps: the same, with the event's facts made once outside the loop; and with
    // the hand-written envelope read instead of the runtime's too.
    let meta = EventMeta::new("groq", "evt_1", "resource.updated");
    group.bench_function("generated-meta-made-once", |b| {
        b.iter(|| {
            let data = hookroute::__private::Groq::envelope(&headers, black_box(&delivery.body))
                .map(|envelope| envelope.data)
                .expect("an envelope");
            parse_and_dispatch(&app, &meta, &data);
        });
    });
    group.bench_function("generated-parse-dispatch", |b| {
        b.iter(|| {
            let envelope: by_hand::Envelope<'_> =
                serde_json::from_slice(black_box(&delivery.body)).expect("an envelope");
            black_box(envelope.id);
            parse_and_dispatch(&app, &meta, envelope.data);
        });
    });
    group.bench_function("hand-written", |b| b.iter(|| by_hand::route(black_box(&delivery.body)).expect("routed")));
    group.bench_function("hand-written-async", |b| {
        b.iter(|| run_ready(by_hand::route_async(black_box(&delivery.body))).expect("routed"));
    });
    group.finish();
}

/// The groq example's handlers: the resources the events tell of, behind a mutex.
#[derive(Default)]
struct Resources {
    map: std::sync::Mutex<std::collections::HashMap<String, Option<String>>>,
}

impl Resources {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Option<String>>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[webhook_handlers(provider = "groq")]
impl Resources {
    #[event("resource.created")]
    async fn created(&self, data: Resource) -> Result<(), HandlerError> {
        self.map().insert(data.id, data.name);
        Ok(())
    }

    #[event("resource.updated")]
    async fn updated(&self, data: Resource) -> Result<(), HandlerError> {
        self.map().insert(data.id, data.name);
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource) -> Result<(), HandlerError> {
        self.map().remove(&data.id);
        Ok(())
    }
}

/// Fresh 1 KiB deliveries, each a new event id, cycling through the three types.
fn fresh_deliveries() -> impl FnMut() -> hookroute::testing::SignedDelivery {
    let mut next = 0_u64;
    move || {
        next += 1;
        let event_type = ["resource.created", "resource.updated", "resource.deleted"][(next % 3) as usize];
        let data = serde_json::json!({ "id": format!("res_{}", next / 3), "name": "x".repeat(900) });
        TestEvent::<Groq>::new(event_type, data).id(format!("evt_{next}")).timestamp(now()).sign(SECRET)
    }
}

fn receiving(c: &mut Criterion) {
    let mut group = c.benchmark_group("receive");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let receiver = Receiver::builder(Resources::default()).secret(SECRET).build().expect("a receiver");
    let by_hand = hookroute_bench_baselines::handwritten::App::new(SECRET);

    group.bench_function("hookroute/unique", |b| {
        b.iter_batched_ref(
            fresh_deliveries(),
            |d| assert_eq!(runtime.block_on(receiver.receive(&d.headers, &d.body)).status(), 200),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("hand-written/unique", |b| {
        b.iter_batched_ref(
            fresh_deliveries(),
            |d| assert_eq!(runtime.block_on(async { by_hand.receive(&d.headers, &d.body) }), 200),
            BatchSize::SmallInput,
        );
    });

    let retry = fresh_deliveries()();
    assert_eq!(runtime.block_on(receiver.receive(&retry.headers, &retry.body)).status(), 200);
    assert_eq!(by_hand.receive(&retry.headers, &retry.body), 200);
    group.bench_function("hookroute/duplicate", |b| {
        b.iter(|| assert_eq!(runtime.block_on(receiver.receive(&retry.headers, &retry.body)).status(), 200));
    });
    group.bench_function("hand-written/duplicate", |b| {
        b.iter(|| assert_eq!(runtime.block_on(async { by_hand.receive(&retry.headers, &retry.body) }), 200));
    });
    group.finish();
}

/// The delivery as an axum request to `/webhooks/groq`.
fn request(delivery: &hookroute::testing::SignedDelivery) -> axum::extract::Request {
    let mut request = axum::extract::Request::new(axum::body::Body::from(delivery.body.clone()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static("/webhooks/groq");
    *request.headers_mut() = delivery.headers.clone();
    request.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(delivery.body.len()));
    request
}

fn receiving_through_axum(c: &mut Criterion) {
    use tower::ServiceExt as _;

    let mut group = c.benchmark_group("receive-axum");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let receiver = Receiver::builder(Resources::default()).secret(SECRET).build().expect("a receiver");
    let hookroute = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
    let by_hand = axum::Router::new()
        .route("/webhooks/groq", axum::routing::post(hookroute_bench_baselines::handwritten::receive))
        .with_state(std::sync::Arc::new(hookroute_bench_baselines::handwritten::App::new(SECRET)));
    let call = |router: &axum::Router, request: axum::extract::Request| {
        let status = runtime.block_on(router.clone().oneshot(request)).expect("infallible").status();
        assert_eq!(status, 200);
    };
    for (who, router) in [("hookroute", &hookroute), ("hand-written", &by_hand)] {
        let mut fresh = fresh_deliveries();
        group.bench_function(format!("{who}/unique"), |b| {
            b.iter_batched(|| request(&fresh()), |request| call(router, request), BatchSize::SmallInput);
        });
        let retry = fresh();
        call(router, request(&retry));
        group.bench_function(format!("{who}/duplicate"), |b| {
            b.iter_batched(|| request(&retry), |request| call(router, request), BatchSize::SmallInput);
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = verification, routing, receiving, receiving_through_axum
}
criterion_main!(benches);
