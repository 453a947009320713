//! The receiver as an AWS Lambda function: API Gateway and function-URL events, built
//! here as the gateway sends them, go through `lambda_http`'s own conversion into the
//! receiver's tower service. No cloud.

mod support;

use std::sync::Arc;

use base64::Engine as _;
use hookroute::lambda::lambda_http;
use hookroute::store::RedisStore;
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, IdempotencyStore, Receiver};
use serde::Deserialize;
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

/// How the gateway hands over the body.
#[derive(Debug, Clone, Copy)]
enum Body {
    Text,
    /// `isBase64Encoded: true`, as gateways send binary media types and function URLs
    /// send bodies they do not take for text.
    Base64,
}

fn body_fields(body: &[u8], encoding: Body) -> (serde_json::Value, bool) {
    match encoding {
        Body::Text => (std::str::from_utf8(body).unwrap().into(), false),
        Body::Base64 => (base64::engine::general_purpose::STANDARD.encode(body).into(), true),
    }
}

fn headers(delivery: &SignedDelivery) -> serde_json::Map<String, serde_json::Value> {
    let mut headers: serde_json::Map<_, _> =
        delivery.header_pairs().into_iter().map(|(name, value)| (name, value.into())).collect();
    headers.insert("content-type".into(), "application/json".into());
    headers.insert("host".into(), "abc123.execute-api.eu-west-1.amazonaws.com".into());
    headers
}

/// An API Gateway REST API (payload 1.0) proxy event.
fn rest_api_event(delivery: &SignedDelivery, encoding: Body) -> String {
    let (body, is_base64) = body_fields(&delivery.body, encoding);
    let headers = headers(delivery);
    let multi: serde_json::Map<_, _> =
        headers.iter().map(|(name, value)| (name.clone(), serde_json::json!([value]))).collect();
    serde_json::json!({
        "resource": "/webhooks/groq",
        "path": "/webhooks/groq",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "us4z18",
            "stage": "prod",
            "requestId": "41b45ea3-70b5-11e6-b7bd-69b5aaebc7d9",
            "requestTimeEpoch": 1_583_798_639_428_u64,
            "identity": { "sourceIp": "192.0.2.1" },
            "resourcePath": "/webhooks/groq",
            "httpMethod": "POST",
            "apiId": "abc123"
        },
        "body": body,
        "isBase64Encoded": is_base64
    })
    .to_string()
}

/// A Lambda function URL event (payload 2.0, as HTTP APIs send too).
fn function_url_event(delivery: &SignedDelivery, encoding: Body) -> String {
    let (body, is_base64) = body_fields(&delivery.body, encoding);
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers(delivery),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "groq-webhooks"
            },
            "requestId": "MIZRNhJtIAMEMDw=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:18:00:00 +0000",
            "timeEpoch": 1_795_456_800_000_u64
        },
        "body": body,
        "isBase64Encoded": is_base64
    })
    .to_string()
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
