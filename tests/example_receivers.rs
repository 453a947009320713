//! The example receivers for other HTTP stacks, run as users run them: a process on a
//! free port of 127.0.0.1, sent signed deliveries over a real socket.

mod support;

use std::process::Command;

use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::Groq;

const SECRET: &str = "whsec_examples";

fn delivery(event_type: &str, id: &str, secret: &str) -> SignedDelivery {
    TestEvent::<Groq>::new(event_type, serde_json::json!({"id": "r1"})).id(id).sign(secret)
}

async fn send(url: &str, delivery: &SignedDelivery) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .headers(delivery.headers.clone())
        .body(delivery.body.clone())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_actix_example_processes_once_and_rejects_a_forgery() {
    let mut command = Command::new(support::example_path("actix_receiver"));
    command.env("GROQ_WEBHOOK_SECRET", SECRET);
    let (_example, address) = support::Example::start(command);
    let url = format!("http://{address}/webhooks/groq");
    let genuine = delivery("resource.created", "evt_actix_example", SECRET);
    assert_eq!(send(&url, &genuine).await, (200, r#"{"status":"processed"}"#.to_owned()));
    assert_eq!(send(&url, &genuine).await, (200, r#"{"status":"duplicate"}"#.to_owned()));
    let forged = delivery("resource.created", "evt_actix_forged", "not-the-secret");
    assert_eq!(send(&url, &forged).await.0, 401);
}

/// A stand-in for the Lambda runtime API on 127.0.0.1: hands out the queued events
/// (`GET …/invocation/next`) and collects what the function answers.
struct RuntimeApi {
    address: std::net::SocketAddr,
    events: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    answers: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
}

impl RuntimeApi {
    async fn start() -> Self {
        use axum::extract::{Path, State};
        use axum::routing::{get, post};
        use std::sync::Arc;
        use tokio::sync::{mpsc, Mutex};

        type Queue = Arc<Mutex<mpsc::UnboundedReceiver<(String, String)>>>;
        let (events, queue) = mpsc::unbounded_channel::<(String, String)>();
        let (answer, answers) = mpsc::unbounded_channel();
        let next = |State((queue, _)): State<(Queue, mpsc::UnboundedSender<(String, String)>)>| async move {
            let Some((id, event)) = queue.lock().await.recv().await else {
                return axum::http::Response::builder().status(500).body(axum::body::Body::empty()).unwrap();
            };
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 30_000;
            axum::http::Response::builder()
                .header("lambda-runtime-aws-request-id", id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:eu-west-1:123456789012:function:hooks")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(event))
                .unwrap()
        };
        let respond = |Path((id, kind)): Path<(String, String)>,
                       State((_, answer)): State<(Queue, mpsc::UnboundedSender<(String, String)>)>,
                       body: String| async move {
            let _ = answer.send((id, format!("{kind}: {body}")));
            axum::http::StatusCode::ACCEPTED
        };
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
            .with_state((Arc::new(Mutex::new(queue)), answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, events, answers }
    }

    /// Invokes the function with `event`; answers the gateway response it returned.
    async fn invoke(&mut self, id: &str, event: String) -> serde_json::Value {
        self.events.send((id.to_owned(), event)).unwrap();
        let (answered, answer) =
            tokio::time::timeout(std::time::Duration::from_secs(30), self.answers.recv()).await.unwrap().unwrap();
        assert_eq!(answered, id);
        let body = answer.strip_prefix("response: ").unwrap_or_else(|| panic!("the function failed: {answer}"));
        serde_json::from_str(body).unwrap()
    }
}

/// The Lambda example as the Lambda runtime runs it: a process that asks the runtime
/// API for events and posts its answers back.
#[tokio::test]
async fn the_lambda_example_answers_the_runtime_api() {
    let mut api = RuntimeApi::start().await;
    let mut child = Command::new(support::example_path("lambda_receiver"))
        .env("GROQ_WEBHOOK_SECRET", SECRET)
        .env("AWS_LAMBDA_RUNTIME_API", api.address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "hooks")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env_remove("HOOKROUTE_STORE")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let genuine = delivery("resource.created", "evt_lambda_example", SECRET);
    let forged = delivery("resource.created", "evt_lambda_forged", "not-the-secret");
    let answers = [
        api.invoke("1", support::gateway::function_url_event(&genuine, support::gateway::Body::Base64)).await,
        api.invoke("2", support::gateway::function_url_event(&genuine, support::gateway::Body::Base64)).await,
        api.invoke("3", support::gateway::function_url_event(&forged, support::gateway::Body::Base64)).await,
    ];
    let _ = child.kill();
    let _ = child.wait();
    let answers: Vec<_> =
        answers.iter().map(|a| (a["statusCode"].as_u64().unwrap(), a["body"].as_str().unwrap())).collect();
    assert_eq!(answers[0], (200, r#"{"status":"processed"}"#));
    assert_eq!(answers[1], (200, r#"{"status":"duplicate"}"#));
    assert_eq!(answers[2].0, 401, "{answers:?}");
}

#[tokio::test]
async fn the_metrics_example_counts_deliveries_at_its_metrics_endpoint() {
    let mut command = Command::new(support::example_path("metrics_receiver"));
    command.env("GROQ_WEBHOOK_SECRET", SECRET);
    let (_example, address) = support::Example::start(command);
    let url = format!("http://{address}/webhooks/groq");
    for id in ["evt_m1", "evt_m2"] {
        assert_eq!(send(&url, &delivery("resource.created", id, SECRET)).await.0, 200);
    }
    assert_eq!(send(&url, &delivery("resource.created", "evt_m1", SECRET)).await.1, r#"{"status":"duplicate"}"#);
    assert_eq!(send(&url, &delivery("resource.created", "evt_m3", "forged")).await.0, 401);
    assert_eq!(send(&url, &delivery("resource.updated", "evt_m4", SECRET)).await.1, r#"{"status":"ignored"}"#);

    let text = reqwest::get(format!("http://{address}/metrics")).await.unwrap().text().await.unwrap();
    let deliveries = |event_type, outcome| {
        let labels = [("webhook_provider", "groq"), ("webhook_event_type", event_type), ("hookroute_outcome", outcome)];
        support::prometheus_sample(&text, "hookroute_deliveries", &labels)
    };
    assert_eq!(deliveries("resource.created", "processed"), Some(2.0), "{text}");
    assert_eq!(deliveries("resource.created", "duplicate"), Some(1.0), "{text}");
    // Rejected before its event was read; and a type no handler declares.
    assert_eq!(deliveries("unknown", "unverified"), Some(1.0), "{text}");
    assert_eq!(deliveries("unknown", "ignored"), Some(1.0), "{text}");
    let claims = [("db_system_name", "memory"), ("db_operation_name", "claim")];
    assert_eq!(
        support::prometheus_sample(&text, "hookroute_store_operation_duration_count", &claims),
        Some(3.0),
        "{text}"
    );
    let handlers = [("webhook_event_type", "resource.created"), ("hookroute_handler_result", "ok")];
    assert_eq!(support::prometheus_sample(&text, "hookroute_handler_duration_count", &handlers), Some(2.0), "{text}");
    assert!(text.contains("# HELP hookroute_deliveries"), "described: {text}");
}

/// One application, two providers (`examples/two_providers.rs`): each route verifies with
/// its own secret and queues in its own inbox, each provider's workers run its handlers,
/// and SIGTERM stops the server, then the workers, and exits cleanly.
#[tokio::test]
async fn the_two_provider_example_queues_each_to_its_own_workers_and_stops_cleanly() {
    let mut command = Command::new(support::example_path("two_providers"));
    command.env("GITHUB_WEBHOOK_SECRET", "gh_examples").env("STRIPE_WEBHOOK_SECRET", SECRET);
    command.env_remove("GITHUB_INBOX").env_remove("STRIPE_INBOX");
    let (mut example, address) = support::Example::start(command);
    let issue = serde_json::json!({
        "action": "opened",
        "issue": {"number": 7, "title": "Two providers"},
        "repository": {"full_name": "octo-org/app"},
    });
    let github = TestEvent::<hookroute::GitHub>::new("issues.opened", issue).id("d-two").sign("gh_examples");
    let subscription = serde_json::json!({"object": {"id": "sub_1", "customer": "cus_1", "status": "active"}});
    let stripe =
        TestEvent::<hookroute::Stripe>::new("customer.subscription.updated", subscription).id("evt_two").sign(SECRET);
    let queued = (202, r#"{"status":"queued"}"#.to_owned());
    assert_eq!(send(&format!("http://{address}/webhooks/github"), &github).await, queued);
    assert_eq!(send(&format!("http://{address}/webhooks/stripe"), &stripe).await, queued);
    // Each route knows only its own provider's secret.
    assert_eq!(send(&format!("http://{address}/webhooks/stripe"), &github).await.0, 401);
    // The two providers' workers run at once: their lines come in either order.
    let logged = example.wait_for_all(&["issue opened", "subscription updated"], std::time::Duration::from_secs(10));
    assert!(logged[0].contains("number=7") && logged[1].contains("cus_1"), "{logged:?}");
    assert!(example.terminate().success());
}

/// The two-provider example on PostgreSQL inboxes, started twice on the same tables:
/// the second start found its tables and logged six `NOTICE ... already exists,
/// skipping` lines at INFO (eight now, with the owner table). None now.
#[tokio::test]
async fn a_postgres_inbox_starts_without_the_servers_notices() {
    let url = support::postgres_url();
    let table = format!(
        "notice_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
    );
    for _ in 0..2 {
        let mut command = Command::new(support::example_path("two_providers"));
        command.env("GITHUB_WEBHOOK_SECRET", "gh_examples").env("STRIPE_WEBHOOK_SECRET", SECRET);
        command
            .env("GITHUB_INBOX", format!("{url}?table={table}_gh"))
            .env("STRIPE_INBOX", format!("{url}?table={table}_st"));
        let (example, _address) = support::Example::start(command);
        let notices: Vec<&String> = example.logged().iter().filter(|line| line.contains("NOTICE")).collect();
        assert!(notices.is_empty(), "{notices:?}");
        // Stopped at once (killed on drop): a SIGTERM this early can come before the
        // example listens for it, and how it stops is another test's business.
        drop(example);
    }
}
