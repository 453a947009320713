//! The receiver behind each HTTP stack, over a real TCP socket on 127.0.0.1: the
//! same tests for axum, for the bare tower service under hyper, and for actix-web
//! (feature `actix`).

use crate::support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookroute::testing::{sign_raw, SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, IdempotencyStore, MemoryStore, Receiver};
use serde::Deserialize;

const SECRET: &str = "whsec_http_test";

#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
}

/// Counts how often each handler ran for each event id.
#[derive(Default)]
struct App {
    runs: support::Runs,
    fail_next: AtomicBool,
    hang_next: AtomicBool,
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        assert!(!data.id.is_empty());
        // Long enough for concurrent copies to overlap with the claim.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.runs.record(meta.id());
        Ok(())
    }

    #[event("resource.flaky", unlisted)]
    async fn flaky(&self, _data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(HandlerError::msg("database is down"));
        }
        Ok(())
    }

    #[event("resource.panics", unlisted)]
    async fn panics(&self, _data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        panic!("handler bug");
    }

    /// Takes a second: longer than a client that gives up after 300 ms waits.
    #[event("resource.lengthy", unlisted)]
    async fn lengthy(&self, _data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.runs.record(meta.id());
        Ok(())
    }

    #[event("resource.slow", unlisted)]
    async fn slow(&self, _data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.runs.record(meta.id());
        if self.hang_next.swap(false, Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(())
    }
}

/// The HTTP stack a test's receiver is served on.
#[derive(Debug, Clone, Copy)]
enum Stack {
    /// `hookroute::axum::post` on an axum router, served by `hookroute::axum::serve`.
    Axum,
    /// The receiver as a tower service, served by hyper alone.
    Hyper,
    /// `hookroute::actix::post` on an actix-web app, served by actix-web.
    #[cfg(feature = "actix")]
    Actix,
}

struct Server {
    url: String,
    app: Arc<App>,
    client: reqwest::Client,
}

impl Server {
    async fn start(stack: Stack) -> Self {
        Self::start_with(stack, |builder| builder.build().unwrap()).await
    }

    async fn start_with(
        stack: Stack,
        build: impl FnOnce(hookroute::ReceiverBuilder<Arc<App>>) -> Receiver<Arc<App>, MemoryStore>,
    ) -> Self {
        let app = Arc::new(App::default());
        let receiver = build(Receiver::builder(Arc::clone(&app)).secret(SECRET));
        Self::serve(stack, receiver, app).await
    }

    async fn serve<S: IdempotencyStore>(stack: Stack, receiver: Receiver<Arc<App>, S>, app: Arc<App>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/groq", listener.local_addr().unwrap());
        match stack {
            Stack::Axum => {
                let router = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
                tokio::spawn(async move { hookroute::axum::serve(listener, router).await.unwrap() });
            }
            Stack::Hyper => {
                // The receiver is the whole service: no router, no adapter.
                tokio::spawn(async move {
                    loop {
                        let (stream, _) = listener.accept().await.unwrap();
                        let service = hyper_util::service::TowerToHyperService::new(receiver.clone());
                        tokio::spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                        });
                    }
                });
            }
            #[cfg(feature = "actix")]
            Stack::Actix => {
                // actix-web runs its own runtime, on a thread of its own.
                let listener = listener.into_std().unwrap();
                std::thread::spawn(move || {
                    actix_web::rt::System::new().block_on(async move {
                        let app = move || {
                            actix_web::App::new().route("/webhooks/groq", hookroute::actix::post(receiver.clone()))
                        };
                        let server = actix_web::HttpServer::new(app).workers(1).disable_signals().listen(listener);
                        server.unwrap().run().await.unwrap();
                    });
                });
            }
        }
        Self { url, app, client: reqwest::Client::new() }
    }

    async fn send(&self, delivery: &SignedDelivery) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(&self.url)
            .headers(delivery.headers.clone())
            .body(delivery.body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }
}

fn event(event_type: &str, id: &str) -> SignedDelivery {
    TestEvent::<Groq>::new(event_type, serde_json::json!({"id": "r1"})).id(id).sign(SECRET)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn a_valid_delivery_is_processed_once_and_its_retry_is_a_duplicate(stack: Stack) {
    let server = Server::start(stack).await;
    let delivery = event("resource.created", "evt_once");
    let (status, body) = server.send(&delivery).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"status": "processed"}));
    assert_eq!(server.app.runs.count("evt_once"), 1);

    let (status, body) = server.send(&delivery).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "duplicate");
    assert_eq!(server.app.runs.count("evt_once"), 1);
}

async fn fifty_concurrent_copies_run_the_handler_exactly_once(stack: Stack) {
    let server = Arc::new(Server::start(stack).await);
    let delivery = Arc::new(event("resource.created", "evt_concurrent"));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (server, delivery) = (Arc::clone(&server), Arc::clone(&delivery));
            tokio::spawn(async move { server.send(&delivery).await })
        })
        .collect();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        let outcome = match status {
            200 => body["status"].as_str().unwrap().to_owned(),
            409 => "in flight".to_owned(),
            other => panic!("unexpected status {other}: {body}"),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    assert_eq!(server.app.runs.count("evt_concurrent"), 1, "{outcomes:?}");
    assert_eq!(outcomes.get("processed"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.values().sum::<usize>(), 50);
}

async fn a_handler_error_is_500_and_the_retry_processes_it(stack: Stack) {
    let server = Server::start(stack).await;
    server.app.fail_next.store(true, Ordering::SeqCst);
    let delivery = event("resource.flaky", "evt_flaky");
    let (status, body) = server.send(&delivery).await;
    assert_eq!(status, 500);
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("evt_flaky") && error.contains("retry"), "{error}");
    assert!(!error.contains("database"), "handler details stay in the log: {error}");

    let (status, body) = server.send(&delivery).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("processed")));
    assert_eq!(server.app.runs.count("evt_flaky"), 2);
}

async fn a_panicking_handler_is_500_and_the_server_keeps_serving(stack: Stack) {
    let server = Server::start(stack).await;
    let (status, _) = server.send(&event("resource.panics", "evt_panic")).await;
    assert_eq!(status, 500);
    // Released, not recorded: the retry runs the handler again.
    let (status, _) = server.send(&event("resource.panics", "evt_panic")).await;
    assert_eq!(status, 500);
    assert_eq!(server.app.runs.count("evt_panic"), 2);

    let (status, body) = server.send(&event("resource.created", "evt_after_panic")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("processed")));
}

async fn a_handler_past_its_timeout_is_500_and_the_retry_processes_it(stack: Stack) {
    let server = Server::start_with(stack, |builder| {
        builder.handler_timeout(Duration::from_millis(200)).lease(Duration::from_secs(60)).build().unwrap()
    })
    .await;
    server.app.hang_next.store(true, Ordering::SeqCst);
    let delivery = event("resource.slow", "evt_slow");
    let (status, _) = server.send(&delivery).await;
    assert_eq!(status, 500);
    let (status, body) = server.send(&delivery).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("processed")));
    assert_eq!(server.app.runs.count("evt_slow"), 2);
}

async fn the_same_event_in_flight_elsewhere_is_409(stack: Stack) {
    let server = Arc::new(
        Server::start_with(stack, |builder| builder.handler_timeout(Duration::from_secs(5)).build().unwrap()).await,
    );
    server.app.hang_next.store(true, Ordering::SeqCst);
    let delivery = Arc::new(event("resource.slow", "evt_in_flight"));
    let first = {
        let (server, delivery) = (Arc::clone(&server), Arc::clone(&delivery));
        tokio::spawn(async move { server.send(&delivery).await })
    };
    // Wait until the first delivery's handler is running.
    while server.app.runs.count("evt_in_flight") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = server.send(&delivery).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("retry later"));
    assert_eq!(first.await.unwrap().0, 500);
}

async fn an_event_type_without_a_handler_is_ignored(stack: Stack) {
    let server = Server::start(stack).await;
    let (status, body) = server.send(&event("resource.archived", "evt_unknown")).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({"status": "ignored"}));
}

async fn invalid_json_with_a_valid_signature_is_400(stack: Stack) {
    let server = Server::start(stack).await;
    for body in [
        &b"{not json"[..],
        b"\xff\xfe",
        br#"{"id":"e","type":"resource.created"}"#,
        br#"{"id":"","type":"t","data":{}}"#,
    ] {
        let delivery = SignedDelivery { headers: sign_raw::<Groq>(SECRET, now(), body), body: body.to_vec() };
        let (status, response) = server.send(&delivery).await;
        assert_eq!(status, 400, "{response}");
        assert!(response["error"].is_string());
    }
}

async fn data_that_does_not_fit_the_handlers_type_is_400(stack: Stack) {
    let server = Server::start(stack).await;
    let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({"name": "no id"})).sign(SECRET);
    let (status, body) = server.send(&delivery).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("missing field `id`"), "{body}");
}

async fn a_bad_signature_is_401_and_never_touches_the_store(stack: Stack) {
    let store = Arc::new(MemoryStore::new());
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app)).secret(SECRET).store(Arc::clone(&store)).build().unwrap();
    let server = Server::serve(stack, receiver, app).await;
    let tampered = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).sign("not-the-secret");
    let (status, body) = server.send(&tampered).await;
    assert_eq!(status, 401);
    assert_eq!(body, serde_json::json!({"error": "signature does not match"}));
    let stale =
        TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).timestamp(now() - 600).sign(SECRET);
    assert_eq!(server.send(&stale).await.0, 401);
    assert!(store.is_empty());
    assert_eq!(server.app.runs.events(), 0);
}

async fn a_body_over_the_limit_is_413(stack: Stack) {
    let server = Server::start_with(stack, |builder| builder.body_limit(1024).build().unwrap()).await;
    let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "x".repeat(2048)})).sign(SECRET);
    let (status, body) = server.send(&delivery).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("1024"));
    // Just under the limit passes.
    let small = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "x".repeat(900)})).sign(SECRET);
    assert!(small.body.len() <= 1024);
    assert_eq!(server.send(&small).await.0, 200);
}

async fn a_streamed_body_over_the_limit_is_413_without_content_length(stack: Stack) {
    let server = Server::start_with(stack, |builder| builder.body_limit(1024).build().unwrap()).await;
    let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "x".repeat(4096)})).sign(SECRET);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = delivery.body.chunks(512).map(|c| Ok(c.to_vec())).collect();
    let response = server
        .client
        .post(&server.url)
        .headers(delivery.headers.clone())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
}

async fn other_methods_are_405(stack: Stack) {
    let server = Server::start(stack).await;
    let response = server.client.get(&server.url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

async fn an_unreachable_store_is_503_and_no_handler_runs(stack: Stack) {
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app)).secret(SECRET).store(support::DownStore).build().unwrap();
    let server = Server::serve(stack, receiver, app).await;
    let (status, body) = server.send(&event("resource.created", "evt_store_down")).await;
    assert_eq!(status, 503);
    assert!(body["error"].as_str().unwrap().contains("nothing was processed"));
    assert_eq!(server.app.runs.count("evt_store_down"), 0);
}

/// A provider that hangs up (its timeout) does not cut off a handler that started:
/// it finishes, its event is recorded as done, and the provider's retry is a
/// duplicate: the hang-up does not drop the handler mid-way, and the retry does not run
/// the event again.
async fn a_client_that_hangs_up_mid_handler_does_not_cut_it_off(stack: Stack) {
    let server = Server::start(stack).await;
    let delivery = event("resource.lengthy", "evt_hangup");
    let short = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let result = short.post(&server.url).headers(delivery.headers.clone()).body(delivery.body.clone()).send().await;
    assert!(result.is_err(), "the client gave up first");
    // The retries meet the handler still running (409), then its recorded end.
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..250 {
        last = server.send(&delivery).await;
        if last.0 != 409 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((last.0, last.1["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(server.app.runs.count("evt_hangup"), 1);
}

/// Every test above, once per stack.
macro_rules! on_every_stack {
    ($($test:ident),* $(,)?) => {
        mod on_axum {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Stack::Axum).await;
                }
            )*
        }
        mod on_hyper {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Stack::Hyper).await;
                }
            )*
        }
        #[cfg(feature = "actix")]
        mod on_actix {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Stack::Actix).await;
                }
            )*
        }
    };
}

on_every_stack!(
    a_valid_delivery_is_processed_once_and_its_retry_is_a_duplicate,
    fifty_concurrent_copies_run_the_handler_exactly_once,
    a_handler_error_is_500_and_the_retry_processes_it,
    a_panicking_handler_is_500_and_the_server_keeps_serving,
    a_handler_past_its_timeout_is_500_and_the_retry_processes_it,
    the_same_event_in_flight_elsewhere_is_409,
    an_event_type_without_a_handler_is_ignored,
    invalid_json_with_a_valid_signature_is_400,
    data_that_does_not_fit_the_handlers_type_is_400,
    a_bad_signature_is_401_and_never_touches_the_store,
    a_body_over_the_limit_is_413,
    a_streamed_body_over_the_limit_is_413_without_content_length,
    other_methods_are_405,
    an_unreachable_store_is_503_and_no_handler_runs,
    a_client_that_hangs_up_mid_handler_does_not_cut_it_off,
);
