//! Instructions per delivery, for `bench/instructions/run` (built outside the
//! workspace, against one checkout of hookroute at a time): signs N unique 1 KiB Groq
//! deliveries, then receives each of them twice (processed, then duplicate), through
//! `Receiver::receive` (`receive`) or an axum router called in process (`axum`); or
//! the same through the hand-written receiver of `bench/baselines` (`hand-receive`,
//! `hand-axum`).
//! callgrind counts only what runs inside the runtime's `block_on`.

use hookroute::testing::TestEvent;
use hookroute_bench_baselines::handwritten;
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver};
use tower::ServiceExt as _;

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap();
    let n: usize = args.next().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let deliveries: Vec<_> = (0..n)
        .map(|i| {
            TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1", "pad": "x".repeat(900)}))
                .id(format!("evt_{i}"))
                .sign("whsec_driver")
        })
        .collect();
    runtime.block_on(async {
        let receiver = Receiver::builder(App).secret("whsec_driver").build().unwrap();
        let router = match mode.as_str() {
            "hand-axum" => axum::Router::new()
                .route("/", axum::routing::post(handwritten::receive))
                .with_state(std::sync::Arc::new(handwritten::App::new("whsec_driver"))),
            _ => axum::Router::new().route("/", hookroute::axum::post(receiver.clone())),
        };
        let hand = handwritten::App::new("whsec_driver");
        for _pass in 0..2 {
            // Every delivery fresh, then every one again: duplicates.
            for delivery in &deliveries {
                match mode.as_str() {
                    "receive" => {
                        let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
                        assert_eq!(outcome.status(), 200);
                    }
                    "hand-receive" => assert_eq!(hand.receive(&delivery.headers, &delivery.body), 200),
                    _ => {
                        let mut request = axum::http::Request::post("/").body(axum::body::Body::from(delivery.body.clone())).unwrap();
                        *request.headers_mut() = delivery.headers.clone();
                        let response = router.clone().oneshot(request).await.unwrap();
                        assert_eq!(response.status(), 200);
                    }
                }
            }
        }
    });
}
