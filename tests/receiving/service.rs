//! The receiver as a tower `Service`, driven directly: no HTTP server, no socket.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hookroute::inbox::MemoryInbox;
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver};
use http_body::Frame;
use http_body_util::{BodyExt as _, Full, StreamBody};
use tower::ServiceExt as _;

const SECRET: &str = "whsec_service";

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn delivery(id: &str) -> SignedDelivery {
    TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).id(id).sign(SECRET)
}

fn request<B>(delivery: &SignedDelivery, body: B) -> http::Request<B> {
    let mut request = http::Request::post("/webhooks/groq").body(body).unwrap();
    *request.headers_mut() = delivery.headers.clone();
    request
}

async fn answer<B, S>(
    receiver: &Receiver<App, S>,
    request: http::Request<B>,
) -> (u16, http::HeaderMap, serde_json::Value)
where
    S: hookroute::store::IdempotencyStore,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let response = receiver.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, serde_json::from_slice(&body).unwrap())
}

/// A body in chunks, each after the previous one was read.
fn chunked(
    bytes: &[u8],
    size: usize,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let chunks: Vec<_> = bytes.chunks(size).map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk)))).collect();
    StreamBody::new(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn a_request_is_processed_then_a_duplicate() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let delivery = delivery("evt_service");
    let (status, headers, body) =
        answer(&receiver, request(&delivery, Full::new(Bytes::from(delivery.body.clone())))).await;
    assert_eq!((status, &body), (200, &serde_json::json!({"status": "processed"})));
    assert_eq!(headers["content-type"], "application/json");
    // In chunks this time: the same bytes, so the same event.
    let (status, _, body) = answer(&receiver, request(&delivery, chunked(&delivery.body, 7))).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
}

/// A request's handling that has to wait (here for the rest of its body) moves into a
/// task of its own: a caller that stops waiting (its connection closed) does not cancel
/// it, even while its body is still being read.
#[tokio::test]
async fn a_request_runs_to_its_end_when_the_caller_stops_waiting() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let delivery = delivery("evt_detached");
    let (half, rest) = delivery.body.split_at(delivery.body.len() / 2);
    let (sender, chunks) = tokio::sync::mpsc::channel::<Bytes>(2);
    let body = StreamBody::new(futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), chunks))
    }));
    sender.send(Bytes::copy_from_slice(half)).await.unwrap();
    let mut waiting = Box::pin(receiver.clone().oneshot(request(&delivery, body)));
    assert!(tokio::time::timeout(Duration::from_millis(50), waiting.as_mut()).await.is_err(), "half a body");
    drop(waiting);
    sender.send(Bytes::copy_from_slice(rest)).await.unwrap();
    drop(sender);
    // The request's task read the rest and processed the event: a retry is a duplicate.
    // The retry waits first: one that finishes without waiting (in the caller's task)
    // would otherwise claim the event before the detached task had a turn.
    let mut status = String::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (_, _, body) = answer(&receiver, request(&delivery, Full::new(Bytes::from(delivery.body.clone())))).await;
        status = body["status"].as_str().unwrap_or("in flight").to_owned();
        if status != "in flight" {
            break;
        }
    }
    assert_eq!(status, "duplicate");
}

#[tokio::test]
async fn a_tampered_body_is_401() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let delivery = delivery("evt_tampered");
    let mut body = delivery.body.clone();
    body[0] = b' ';
    let (status, _, body) = answer(&receiver, request(&delivery, Full::new(Bytes::from(body)))).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn inbox_mode_answers_202_queued() {
    let receiver = Receiver::builder(App).secret(SECRET).inbox(MemoryInbox::new()).build().unwrap();
    let delivery = delivery("evt_queued");
    let (status, _, body) = answer(&receiver, request(&delivery, Full::new(Bytes::from(delivery.body.clone())))).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("queued")));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_by_its_length_or_as_it_streams() {
    let receiver = Receiver::builder(App).secret(SECRET).body_limit(64).build().unwrap();
    let delivery = delivery("evt_large");
    assert!(delivery.body.len() > 64);
    let mut declared = request(&delivery, Full::new(Bytes::from(delivery.body.clone())));
    declared.headers_mut().insert(http::header::CONTENT_LENGTH, delivery.body.len().into());
    let (status, headers, _) = answer(&receiver, declared).await;
    assert_eq!((status, headers["connection"].to_str().unwrap()), (413, "close"));
    // No length: counted as the chunks arrive.
    let (status, _, body) = answer(&receiver, request(&delivery, chunked(&delivery.body, 16))).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("64 byte limit"), "{body}");
}

/// A body that sends a first chunk, then nothing, for ever.
struct Stalled(bool);

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Pending
        } else {
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"id\":")))))
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_is_408_after_the_body_timeout() {
    let receiver =
        Receiver::builder(App).secret(SECRET).body_timeout(Duration::from_secs(3)).min_body_rate(0).build().unwrap();
    let started = tokio::time::Instant::now();
    let (status, headers, _) = answer(&receiver, request(&delivery("evt_stalled"), Stalled(false))).await;
    assert_eq!((status, headers["connection"].to_str().unwrap()), (408, "close"));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

/// With the floor rate (the default), a body that stalls is ended when the second after
/// its first brings nothing, not after the body timeout (60 s here); its bytes are let go.
#[tokio::test(start_paused = true)]
async fn a_stalled_body_is_408_when_it_falls_below_the_floor_rate() {
    let receiver = Receiver::builder(App).secret(SECRET).body_timeout(Duration::from_secs(60)).build().unwrap();
    let started = tokio::time::Instant::now();
    let (status, _, body) = answer(&receiver, request(&delivery("evt_crawl"), Stalled(false))).await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"], "the request body arrived slower than 16384 bytes a second");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    assert_eq!(receiver.unverified_budget().available(), receiver.unverified_budget().total());
}

#[tokio::test]
async fn stalled_bodies_past_the_unverified_budget_are_503() {
    let receiver = Receiver::builder(App)
        .secret(SECRET)
        .unverified_bytes(10)
        .body_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // The first holds 6 of the 10 bytes while it stalls.
    let first = tokio::spawn({
        let receiver = receiver.clone();
        async move { receiver.oneshot(request(&delivery("evt_a"), Stalled(false))).await }
    });
    while receiver.unverified_budget().available() == 10 {
        tokio::task::yield_now().await;
    }
    let (status, _, body) = answer(&receiver, request(&delivery("evt_b"), Stalled(false))).await;
    assert_eq!(status, 503, "{body}");
    first.abort();
}

/// A body whose connection broke.
struct Broken;

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"))))
    }
}

#[tokio::test]
async fn a_body_that_fails_to_read_is_400() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let (status, _, body) = answer(&receiver, request(&delivery("evt_broken"), Broken)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("reset by peer"), "{body}");
}

#[tokio::test]
async fn only_post_is_accepted() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let delivery = delivery("evt_get");
    let mut get = request(&delivery, Full::new(Bytes::from(delivery.body.clone())));
    *get.method_mut() = http::Method::GET;
    let (status, headers, _) = answer(&receiver, get).await;
    assert_eq!((status, headers["allow"].to_str().unwrap()), (405, "POST"));
}

/// axum mounts the receiver as it is: no adapter between the router and the service.
#[tokio::test]
async fn axum_mounts_the_receiver_with_route_service() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let router = axum::Router::new().route_service("/webhooks/groq", receiver);
    let delivery = delivery("evt_route_service");
    let request = request(&delivery, axum::body::Body::from(delivery.body.clone()));
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"status":"processed"}"#);
    // Every method reaches the receiver, which answers 405 itself.
    let get = http::Request::get("/webhooks/groq").body(axum::body::Body::empty()).unwrap();
    assert_eq!(router.oneshot(get).await.unwrap().status(), 405);
}

/// A store that panics: a bug in a user's store, say.
struct PanickingStore;

#[async_trait::async_trait]
impl hookroute::store::IdempotencyStore for PanickingStore {
    async fn claim(&self, _: &str, _: Duration) -> Result<hookroute::store::Claim, hookroute::store::StoreError> {
        panic!("the store's bug")
    }

    async fn complete(
        &self,
        _: &str,
        _: &hookroute::store::ClaimToken,
        _: Duration,
    ) -> Result<(), hookroute::store::StoreError> {
        Ok(())
    }

    async fn release(&self, _: &str, _: &hookroute::store::ClaimToken) -> Result<(), hookroute::store::StoreError> {
        Ok(())
    }
}

/// A panic where the delivery runs (in the caller's task, its first poll finishing
/// without a wait) is a 500 for that request, not a panic in the caller: a server
/// would lose the connection, and every request queued on it, with no answer.
#[tokio::test]
async fn a_panic_in_the_delivery_is_500() {
    let receiver = Receiver::builder(App).secret(SECRET).store(PanickingStore).build().unwrap();
    let delivery = delivery("evt_panic");
    let (status, _, body) = answer(&receiver, request(&delivery, Full::new(Bytes::from(delivery.body.clone())))).await;
    assert_eq!((status, body), (500, serde_json::json!({"error": "internal error"})));
}
