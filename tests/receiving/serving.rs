//! Serving under attack, over real sockets on 127.0.0.1: clients without a valid
//! signature that open sockets and never finish, stall their uploads, or write an
//! oversized body before they read. Each test bounds how long it waits; a wait that
//! runs out means the server held on to what it should have let go.

use crate::support;

use std::future::IntoFuture;
use std::process::Command;
use std::time::Duration;

use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver, ReceiverBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const SECRET: &str = "whsec_serving";

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("resource.slow", unlisted)]
    async fn slow(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }
}

fn delivery(id: &str) -> SignedDelivery {
    TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).id(id).sign(SECRET)
}

/// Serves a receiver built by `configure` through `hookroute::axum::serve`, set up by
/// `server`; answers its address.
async fn start(
    configure: impl FnOnce(ReceiverBuilder<App>) -> ReceiverBuilder<App>,
    server: impl FnOnce(
        hookroute::axum::Serve<std::future::Pending<()>>,
    ) -> hookroute::axum::Serve<std::future::Pending<()>>,
) -> String {
    let receiver = configure(Receiver::builder(App).secret(SECRET)).build().unwrap();
    let router = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let serve = server(hookroute::axum::serve(listener, router));
    tokio::spawn(async move { serve.await.unwrap() });
    address
}

/// A delivery's request head, as a client writes it, declaring `length` body bytes.
fn head(address: &str, delivery: &SignedDelivery, length: usize) -> String {
    let mut head = format!("POST /webhooks/groq HTTP/1.1\r\nhost: {address}\r\ncontent-length: {length}\r\n");
    for (name, value) in &delivery.headers {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap());
        head.push_str("\r\n");
    }
    head + "\r\n"
}

/// Reads until the status line is in; answers its code.
async fn status(stream: &mut TcpStream) -> u16 {
    let mut read = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !read.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buffer).await.expect("the answer can be read");
        assert!(n > 0, "the server closed the connection without an answer: {read:?}");
        read.extend_from_slice(&buffer[..n]);
    }
    let line = String::from_utf8_lossy(&read);
    line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status in {line:?}"))
}

/// Sends a genuine delivery with a fresh client; answers the status.
async fn genuine(address: &str, id: &str) -> u16 {
    let signed = delivery(id);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let response = client
        .post(format!("http://{address}/webhooks/groq"))
        .headers(signed.headers)
        .body(signed.body)
        .send()
        .await
        .expect("a genuine delivery is answered while idle clients hold sockets");
    response.status().as_u16()
}

/// Opens `count` connections that send nothing, or half a request head.
async fn idle_clients(address: &str, count: usize) -> Vec<TcpStream> {
    let mut idle = Vec::with_capacity(count);
    for n in 0..count {
        let Ok(mut stream) = TcpStream::connect(address).await else {
            continue; // the backlog is full: the server sheds, and this one lost
        };
        if n % 2 == 0 {
            let _ = stream.write_all(b"POST /webhooks/groq HTTP/1.1\r\nhost: x\r\n").await;
        }
        idle.push(stream);
    }
    idle
}

#[tokio::test]
async fn idle_clients_past_the_connection_cap_do_not_stop_a_genuine_delivery() {
    let address = start(|receiver| receiver, |serve| serve.max_connections(20)).await;
    let idle = idle_clients(&address, 60).await;
    assert!(idle.len() >= 20, "the idle clients could connect");
    for n in 0..3 {
        assert_eq!(genuine(&address, &format!("evt_cap_{n}")).await, 200);
    }
}

/// The example receiver as users run it, under attack: 1,024 file descriptors,
/// 1,100 idle sockets. `accept()` failing with "Too many open files" does not stop a
/// genuine delivery for as long as the sockets stay open: the connection cap, three
/// quarters of the descriptors (768 and 192), makes room for it.
#[tokio::test]
async fn idle_sockets_past_the_descriptor_limit_do_not_stop_the_example_receiver() {
    for (descriptors, sockets) in [(1_024, 1_100), (256, 400)] {
        let (_server, address) = example_receiver(descriptors);
        let idle = idle_clients(&address, sockets).await;
        assert!(idle.len() > descriptors, "the idle clients could connect: {}", idle.len());
        for n in 0..3 {
            assert_eq!(genuine(&address, &format!("evt_fd_{descriptors}_{n}")).await, 200, "ulimit -n {descriptors}");
        }
    }
}

/// Starts `examples/groq_receiver` (as `cargo test` builds it) with at most
/// `descriptors` open files; answers it and its address.
fn example_receiver(descriptors: usize) -> (support::Example, String) {
    let example = support::example_path("groq_receiver");
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!("ulimit -n {descriptors} && exec \"$0\""), example.to_str().unwrap()])
        .env("GROQ_WEBHOOK_SECRET", SECRET)
        .env_remove("HOOKROUTE_STORE");
    support::Example::start(command)
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_header_timeout() {
    let address = start(|receiver| receiver, |serve| serve.header_timeout(Duration::from_millis(500))).await;

    // Sends nothing.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut buffer = [0_u8; 1024];
    let read = timeout(Duration::from_secs(10), silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "a silent connection is closed: {read:?}");

    // One request, kept alive, then nothing.
    let mut kept = TcpStream::connect(&address).await.unwrap();
    let signed = delivery("evt_keep_alive");
    kept.write_all(head(&address, &signed, signed.body.len()).as_bytes()).await.unwrap();
    kept.write_all(&signed.body).await.unwrap();
    assert_eq!(status(&mut kept).await, 200);
    let closed = timeout(Duration::from_secs(10), async {
        loop {
            match kept.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // the rest of the answer
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle keep-alive connection is closed");
}

#[tokio::test]
async fn a_stalled_upload_ends_in_408() {
    let address = start(|receiver| receiver.body_timeout(Duration::from_millis(500)), |serve| serve).await;
    let signed = delivery("evt_stalled");
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream.write_all(head(&address, &signed, signed.body.len()).as_bytes()).await.unwrap();
    stream.write_all(&signed.body[..10]).await.unwrap();
    let answer = timeout(Duration::from_secs(10), status(&mut stream)).await;
    assert_eq!(answer.expect("the stalled upload is answered"), 408);
}

#[tokio::test]
async fn stalled_uploads_cannot_hold_more_than_the_unverified_budget() {
    let address =
        start(|receiver| receiver.unverified_bytes(100_000).body_timeout(Duration::from_secs(60)), |serve| serve).await;
    let signed = delivery("evt_budget");
    let filler = vec![b' '; 60_000];
    let mut first = TcpStream::connect(&address).await.unwrap();
    first.write_all(head(&address, &signed, 200_000).as_bytes()).await.unwrap();
    first.write_all(&filler).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = TcpStream::connect(&address).await.unwrap();
    second.write_all(head(&address, &signed, 200_000).as_bytes()).await.unwrap();
    second.write_all(&filler).await.unwrap();
    let answer = timeout(Duration::from_secs(10), status(&mut second)).await;
    assert_eq!(answer.expect("the upload past the budget is answered at once"), 503);

    // Once the first lets go, its bytes are free again.
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(genuine(&address, "evt_after_budget").await, 200);
}

#[tokio::test]
async fn a_client_that_writes_a_whole_oversized_body_before_reading_reads_the_413() {
    let address = start(|receiver| receiver, |serve| serve).await;
    let signed = delivery("evt_oversized");
    for declared in [true, false] {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let body = vec![b' '; 2 * 1024 * 1024];
        let request = if declared {
            let mut request = head(&address, &signed, body.len()).into_bytes();
            request.extend_from_slice(&body);
            request
        } else {
            // Chunked: the size shows only as the body streams in.
            let head = head(&address, &signed, 0).replace("content-length: 0\r\n", "transfer-encoding: chunked\r\n");
            let mut request = head.into_bytes();
            for chunk in body.chunks(64 * 1024) {
                request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                request.extend_from_slice(chunk);
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
            request
        };
        // Written in pieces, as over a real network: a server that answered and closed
        // at once would cut the rest off with a reset.
        let written = timeout(Duration::from_secs(10), async {
            for piece in request.chunks(64 * 1024) {
                stream.write_all(piece).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            std::io::Result::Ok(())
        });
        written.await.expect("the server reads the body").expect("the body is written whole, not cut off by a reset");
        let answer = timeout(Duration::from_secs(10), status(&mut stream)).await;
        assert_eq!(answer.expect("the answer arrives"), 413, "declared: {declared}");
    }
}

/// A client that asks `Expect: 100-continue` for a body over the limit is told 413 at
/// once, never `100 Continue` (which would have it send the whole body for nothing).
#[tokio::test]
async fn an_oversized_body_that_waits_for_100_continue_is_refused_before_it_is_sent() {
    let address = start(|receiver| receiver, |serve| serve).await;
    let signed = delivery("evt_expect");
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let waiting = head(&address, &signed, 2 * 1024 * 1024).replace("\r\n\r\n", "\r\nexpect: 100-continue\r\n\r\n");
    stream.write_all(waiting.as_bytes()).await.unwrap();
    let answer = timeout(Duration::from_secs(10), status(&mut stream)).await;
    assert_eq!(answer.expect("the answer arrives without the body"), 413);

    // Within the limit, the client is asked for its body and the delivery runs.
    let signed = delivery("evt_expect_small");
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let waiting = head(&address, &signed, signed.body.len()).replace("\r\n\r\n", "\r\nexpect: 100-continue\r\n\r\n");
    stream.write_all(waiting.as_bytes()).await.unwrap();
    let answer = timeout(Duration::from_secs(10), status(&mut stream)).await;
    assert_eq!(answer.expect("the server asks for the body"), 100);
}

/// Stopping answers the request in progress, then returns; nothing new is accepted.
#[tokio::test]
async fn a_graceful_stop_finishes_the_request_in_progress() {
    let receiver = Receiver::builder(App).secret(SECRET).build().unwrap();
    let router = axum::Router::new().route("/webhooks/groq", hookroute::axum::post(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        hookroute::axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );

    let signed = TestEvent::<Groq>::new("resource.slow", serde_json::json!({})).id("evt_stop").sign(SECRET);
    let in_progress = tokio::spawn({
        let url = format!("http://{address}/webhooks/groq");
        async move { reqwest::Client::new().post(url).headers(signed.headers).body(signed.body).send().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let answered = in_progress.await.unwrap().expect("the request in progress is answered");
    assert_eq!(answered.status(), 200);
    timeout(Duration::from_secs(10), server).await.expect("the server returns").unwrap().unwrap();
    assert!(TcpStream::connect(&address).await.is_err(), "nothing listens any more");
}

/// Connects from `from` (another loopback address: another client as the server
/// counts them) and sends a request head declaring `length` body bytes, then `sent` of
/// them; the body stalls there.
async fn stalled_upload(address: &str, from: &str, length: usize, sent: usize) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(address.parse().unwrap()).await.unwrap();
    let signed = delivery("evt_stalled_upload");
    stream.write_all(head(address, &signed, length).as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    stream
}

/// One client fills the whole unverified budget
/// with stalled uploads: that client holds at most its share and the rest is left for
/// others, whose genuine deliveries are answered 200, not 503.
#[tokio::test]
async fn one_client_cannot_take_the_whole_unverified_budget() {
    let address = start(
        |receiver| {
            receiver
                .unverified_bytes(400_000)
                .body_limit(100_000)
                .min_body_rate(0)
                .body_timeout(Duration::from_secs(60))
        },
        |serve| serve,
    )
    .await;
    let mut attacker = Vec::new();
    let mut refused = 0;
    for _ in 0..5 {
        let mut stream = stalled_upload(&address, "127.0.0.2", 100_000, 80_000).await;
        match timeout(Duration::from_millis(500), status(&mut stream)).await {
            Ok(status) => {
                assert_eq!(status, 503);
                refused += 1;
            }
            Err(_) => attacker.push(stream), // still held
        }
    }
    assert_eq!((attacker.len(), refused), (1, 4), "one client holds at most its share (100,000 bytes)");
    for n in 0..3 {
        assert_eq!(genuine(&address, &format!("evt_share_{n}")).await, 200);
    }
}

/// Large stalled uploads from many clients fill the budget but for the reserve kept for
/// small bodies: an ordinary delivery still gets in (200, not 503).
#[tokio::test]
async fn large_uploads_leave_the_reserve_for_small_deliveries() {
    let address = start(
        |receiver| {
            receiver
                .unverified_bytes(400_000)
                .unverified_bytes_per_peer(usize::MAX)
                .body_limit(200_000)
                .min_body_rate(0)
                .body_timeout(Duration::from_secs(60))
        },
        |serve| serve,
    )
    .await;
    let mut held = Vec::new();
    for (n, sent) in [150_000, 150_000, 100_000].into_iter().enumerate() {
        let mut stream = stalled_upload(&address, &format!("127.0.0.{}", n + 2), 200_000, sent).await;
        let answer = timeout(Duration::from_millis(500), status(&mut stream)).await;
        held.push((sent, answer.ok(), stream));
    }
    assert_eq!(
        held.iter().map(|(sent, answer, _)| (*sent, *answer)).collect::<Vec<_>>(),
        [(150_000, None), (150_000, None), (100_000, Some(503))],
        "large bodies fill the general part only"
    );
    for n in 0..3 {
        assert_eq!(genuine(&address, &format!("evt_reserve_{n}")).await, 200);
    }
}

/// An upload that stalls is ended by the floor rate within a couple of seconds, its
/// bytes let go, not held for the whole body timeout (60 s here, which the old code
/// waited out).
#[tokio::test]
async fn an_upload_below_the_floor_rate_is_ended_early() {
    let address = start(|receiver| receiver.body_timeout(Duration::from_secs(60)), |serve| serve).await;
    let mut stream = stalled_upload(&address, "127.0.0.2", 100_000, 50_000).await;
    let started = std::time::Instant::now();
    let answer = timeout(Duration::from_secs(10), status(&mut stream)).await;
    assert_eq!(answer.expect("the crawling upload is answered well before the body timeout"), 408);
    assert!(started.elapsed() >= Duration::from_millis(900), "the first second is free: {:?}", started.elapsed());

    // A body that keeps above the floor, however long it takes within the timeout, is
    // received.
    let padding = " ".repeat(60_000);
    let signed = TestEvent::<Groq>::new("resource.created", serde_json::json!({ "padding": padding }))
        .id("evt_steady")
        .sign(SECRET);
    let mut steady = TcpStream::connect(&address).await.unwrap();
    steady.write_all(head(&address, &signed, signed.body.len()).as_bytes()).await.unwrap();
    for piece in signed.body.chunks(20_000) {
        steady.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(timeout(Duration::from_secs(10), status(&mut steady)).await.unwrap(), 200);
}

/// Every connection slot held by a client that
/// sends its headers, then a body byte now and then. A genuine delivery does not wait
/// for one of them to end (the body timeout, 60 s here): the server closes the
/// oldest crawling one to take it. The receiver's own floor is off, so the server's
/// shedding is what is tested.
#[tokio::test]
async fn crawling_bodies_at_the_connection_cap_are_shed_for_a_genuine_delivery() {
    let address = start(
        |receiver| receiver.min_body_rate(0).body_timeout(Duration::from_secs(60)),
        |serve| serve.max_connections(8),
    )
    .await;
    let mut crawling = Vec::new();
    for _ in 0..8 {
        crawling.push(stalled_upload(&address, "127.0.0.2", 10_000, 1).await);
    }
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for stream in &mut crawling {
                let _ = stream.write_all(b" ").await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..3 {
        let answered = timeout(Duration::from_secs(5), genuine(&address, &format!("evt_shed_{n}"))).await;
        assert_eq!(answered.expect("a genuine delivery is served while crawling bodies hold every slot"), 200);
    }
    trickle.abort();
}

/// At the cap, a client that holds its share of the connections is refused at once
/// (its connection closed unanswered), so its reconnecting sockets cannot fill the
/// listen backlog ahead of everybody else; another client is served at once.
#[tokio::test]
async fn at_the_cap_a_client_holding_its_share_is_refused_and_others_are_served() {
    let address = start(
        |receiver| receiver.min_body_rate(0).body_timeout(Duration::from_secs(60)),
        |serve| serve.max_connections(8).max_connections_per_peer(4).min_body_rate(0),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(stalled_upload(&address, "127.0.0.2", 10_000, 1).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = stalled_upload(&address, "127.0.0.2", 10_000, 1).await;
    let mut buffer = [0_u8; 64];
    let read = timeout(Duration::from_secs(5), refused.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "closed at once, unanswered: {read:?}");
    // Nothing to shed (every body is busy and the floor is off): the other client is
    // taken past the cap.
    let answered = timeout(Duration::from_secs(5), genuine(&address, "evt_other_client")).await;
    assert_eq!(answered.expect("another client is served at the cap"), 200);
}
