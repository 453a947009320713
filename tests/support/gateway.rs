//! AWS Lambda events as API Gateway and function URLs send them, built around a signed
//! delivery, for the tests that feed them to `lambda_http`.

use base64::Engine as _;
use hookroute::testing::SignedDelivery;

/// How the gateway hands over the body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
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
pub fn rest_api_event(delivery: &SignedDelivery, encoding: Body) -> String {
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
pub fn function_url_event(delivery: &SignedDelivery, encoding: Body) -> String {
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
