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
