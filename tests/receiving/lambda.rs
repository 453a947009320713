//! The receiver as an AWS Lambda function: API Gateway and function-URL events, built
//! here as the gateway sends them, go through `lambda_http`'s own conversion into the
//! receiver's tower service. No cloud.

use crate::support;

use std::sync::Arc;

use base64::Engine as _;
use hookroute::lambda::lambda_http;
use hookroute::store::RedisStore;
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, IdempotencyStore, Receiver};
use serde::Deserialize;
use support::gateway::{function_url_event, rest_api_event, Body};
use tower::ServiceExt as _;

const SECRET: &str = "whsec_lambda";

#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
}

#[derive(Default)]
struct App {
    runs: support::Runs,
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(data.id, "r1");
        self.runs.record(meta.id());
        Ok(())
    }
}

/// Invokes the receiver with `event` as the Lambda runtime would, down to the
/// response `lambda_http` hands back to the gateway.
async fn invoke<S: IdempotencyStore>(receiver: &Receiver<Arc<App>, S>, event: &str) -> (u16, String) {
    let request = lambda_http::request::from_str(event).expect("lambda_http takes the event");
    let response = receiver.clone().oneshot(request).await.unwrap();
    let response = lambda_http::IntoResponse::into_response(response).await;
    let status = response.status().as_u16();
    let body = match response.into_body() {
        lambda_http::Body::Text(text) => text,
        other => panic!("a JSON answer goes back as text, not {other:?}"),
    };
    (status, body)
}

fn delivery(id: &str) -> SignedDelivery {
    TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).id(id).sign(SECRET)
}

type Event = fn(&SignedDelivery, Body) -> String;
const EVENTS: [(&str, Event); 2] = [("REST API", rest_api_event), ("function URL", function_url_event)];

#[tokio::test]
async fn every_event_shape_and_body_encoding_is_processed_then_a_duplicate() {
    let app = Arc::new(App::default());
    let receiver = Receiver::builder(Arc::clone(&app)).secret(SECRET).build().unwrap();
    for (shape, event) in EVENTS {
        for encoding in [Body::Text, Body::Base64] {
            let id = format!("evt_{shape}_{encoding:?}");
            let delivery = delivery(&id);
            let processed = invoke(&receiver, &event(&delivery, encoding)).await;
            assert_eq!(processed, (200, r#"{"status":"processed"}"#.to_owned()), "{shape}, {encoding:?}");
            let again = invoke(&receiver, &event(&delivery, encoding)).await;
            assert_eq!(again, (200, r#"{"status":"duplicate"}"#.to_owned()), "{shape}, {encoding:?}");
            assert_eq!(app.runs.count(&id), 1);
        }
    }
}

/// The signature covers the bytes the provider sent, not the gateway's base64 text:
/// a body signed as its base64 text does not verify once decoded.
#[tokio::test]
async fn a_base64_body_is_verified_over_its_decoded_bytes() {
    let receiver = Receiver::builder(Arc::new(App::default())).secret(SECRET).build().unwrap();
    let genuine = delivery("evt_decoded");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&genuine.body);
    let signed_over_text = hookroute::testing::sign_raw::<Groq>(SECRET, now(), encoded.as_bytes());
    let wrong = SignedDelivery { headers: signed_over_text, body: genuine.body.clone() };
    for (shape, event) in EVENTS {
        let (status, body) = invoke(&receiver, &event(&wrong, Body::Base64)).await;
        assert_eq!(status, 401, "{shape}: {body}");
    }
}

#[tokio::test]
async fn a_tampered_body_is_401_and_one_over_the_limit_413() {
    let receiver = Receiver::builder(Arc::new(App::default())).secret(SECRET).body_limit(64).build().unwrap();
    let mut tampered = delivery("evt_tampered");
    tampered.body = tampered.body.iter().map(|&byte| if byte == b'1' { b'2' } else { byte }).collect();
    let large = delivery("evt_large");
    assert!(large.body.len() > 64);
    for (shape, event) in EVENTS {
        let (status, body) = invoke(&receiver, &event(&tampered, Body::Text)).await;
        assert_eq!(status, 413, "{shape}: over the limit comes first: {body}");
        let (status, _) = invoke(&receiver, &event(&large, Body::Base64)).await;
        assert_eq!(status, 413, "{shape}");
    }
    let receiver = Receiver::builder(Arc::new(App::default())).secret(SECRET).build().unwrap();
    for (shape, event) in EVENTS {
        let (status, body) = invoke(&receiver, &event(&tampered, Body::Text)).await;
        assert_eq!(status, 401, "{shape}: {body}");
    }
}

/// Two instances of the function are two processes: with one Redis behind both, the
/// provider's retry that lands on the other instance is a duplicate.
#[tokio::test]
async fn two_instances_sharing_a_redis_store_run_an_event_once() {
    let url = support::redis_url();
    let prefix = format!("lambda-test-{}:", std::process::id());
    let instance = || async {
        let store = RedisStore::builder(url.clone()).prefix(prefix.clone()).connect().await.unwrap();
        let app = Arc::new(App::default());
        (Receiver::builder(Arc::clone(&app)).secret(SECRET).store(store).build().unwrap(), app)
    };
    let (first, first_app) = instance().await;
    let (second, second_app) = instance().await;
    let delivery = delivery(&format!("evt_instances_{}", now()));
    let event = function_url_event(&delivery, Body::Base64);
    assert_eq!(invoke(&first, &event).await, (200, r#"{"status":"processed"}"#.to_owned()));
    assert_eq!(invoke(&second, &event).await, (200, r#"{"status":"duplicate"}"#.to_owned()));
    assert_eq!((first_app.runs.events(), second_app.runs.events()), (1, 0));
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
