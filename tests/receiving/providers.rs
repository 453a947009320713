//! The real-world schemes against the examples their own documentation and SDK tests
//! publish, plus the negative cases those SDKs test, through the public API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookroute::provider::ProviderConfig;
use hookroute::testing::TestEvent;
use hookroute::{
    webhook_handlers, ConfigError, EventMeta, GitHub, HandlerError, Provider, Receiver, Secret, Shopify, Slack,
    StandardWebhooks, Stripe, VerifyError,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use support::events::{Seen, StripeData, ThinEvent};

use crate::support;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn provider<P: Provider>(secrets: &[&str]) -> P {
    P::from_config(ProviderConfig {
        secrets: secrets.iter().map(|s| Secret::from(*s)).collect(),
        tolerance: Duration::from_secs(300),
    })
    .unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
    }
    map
}

// ---------------------------------------------------------------- Standard Webhooks

/// The Standard Webhooks specification's test vector, which its reference libraries
/// test against (github.com/standard-webhooks/standard-webhooks, `libraries/*`), and
/// Svix's docs; recomputed here with `openssl dgst -sha256 -mac HMAC`.
mod standard_vector {
    pub(super) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    pub(super) const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    pub(super) const TIMESTAMP: u64 = 1_614_265_330;
    pub(super) const BODY: &[u8] = br#"{"test": 2432232314}"#;
    pub(super) const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
}

fn standard_headers(family: &str, signature: &str, timestamp: u64) -> HeaderMap {
    use standard_vector::ID;
    let (id, ts, sig): (&'static str, &'static str, &'static str) = if family == "svix" {
        ("svix-id", "svix-timestamp", "svix-signature")
    } else {
        ("webhook-id", "webhook-timestamp", "webhook-signature")
    };
    headers(&[(id, ID), (ts, &timestamp.to_string()), (sig, signature)])
}

#[test]
fn standard_webhooks_accepts_the_published_vector_under_both_header_families() {
    use standard_vector::*;
    let scheme: StandardWebhooks = provider(&[SECRET]);
    for family in ["webhook", "svix"] {
        let verified = scheme.verify(&standard_headers(family, SIGNATURE, TIMESTAMP), BODY, at(TIMESTAMP)).unwrap();
        assert_eq!(verified.timestamp, Some(TIMESTAMP), "{family}");
    }
    // The key without its `whsec_` prefix is the same key.
    let bare: StandardWebhooks = provider(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
    assert!(bare.verify(&standard_headers("webhook", SIGNATURE, TIMESTAMP), BODY, at(TIMESTAMP)).is_ok());
}

#[test]
fn standard_webhooks_checks_every_entry_and_ignores_unknown_versions() {
    use standard_vector::*;
    let scheme: StandardWebhooks = provider(&[SECRET]);
    let verify =
        |signature: &str| scheme.verify(&standard_headers("webhook", signature, TIMESTAMP), BODY, at(TIMESTAMP));
    let wrong = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    assert!(verify(&format!("{wrong} {SIGNATURE}")).is_ok(), "one valid entry among several passes");
    assert!(verify(&format!("v2,abc v1a,{} {SIGNATURE}", &SIGNATURE[3..])).is_ok(), "unknown versions are skipped");
    assert_eq!(verify(wrong), Err(VerifyError::SignatureMismatch));
    assert_eq!(
        verify(&format!("v1a,{}", &SIGNATURE[3..])),
        Err(VerifyError::NoSupportedSignature("webhook-signature"))
    );
    assert_eq!(verify("v1,not base64!"), Err(VerifyError::SignatureNotBase64));
    assert_eq!(verify("v1,AAAA"), Err(VerifyError::SignatureLength { expected: 32, found: 3 }));
    assert_eq!(verify("garbage"), Err(VerifyError::MalformedHeader("webhook-signature")));
    assert_eq!(verify(""), Err(VerifyError::NoSupportedSignature("webhook-signature")));
}

#[test]
fn standard_webhooks_rejects_tampering_wrong_secrets_and_the_window() {
    use standard_vector::*;
    let scheme: StandardWebhooks = provider(&[SECRET]);
    let signed = standard_headers("webhook", SIGNATURE, TIMESTAMP);
    assert_eq!(scheme.verify(&signed, br#"{"test": 2432232315}"#, at(TIMESTAMP)), Err(VerifyError::SignatureMismatch));
    let other: StandardWebhooks = provider(&["whsec_c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ="]);
    assert_eq!(other.verify(&signed, BODY, at(TIMESTAMP)), Err(VerifyError::SignatureMismatch));
    // The id is signed: the same signature under another id fails.
    let mut moved = signed.clone();
    moved.insert("webhook-id", HeaderValue::from_static("msg_other"));
    assert_eq!(scheme.verify(&moved, BODY, at(TIMESTAMP)), Err(VerifyError::SignatureMismatch));
    assert!(matches!(scheme.verify(&signed, BODY, at(TIMESTAMP + 301)), Err(VerifyError::TimestampTooOld { .. })));
    assert!(matches!(scheme.verify(&signed, BODY, at(TIMESTAMP - 301)), Err(VerifyError::TimestampInFuture { .. })));
    let mut no_id = signed.clone();
    no_id.remove("webhook-id");
    assert_eq!(scheme.verify(&no_id, BODY, at(TIMESTAMP)), Err(VerifyError::MissingHeader("webhook-id")));
    // Rotation: either of two keys.
    let rotated: StandardWebhooks = provider(&["whsec_c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ=", SECRET]);
    assert!(rotated.verify(&signed, BODY, at(TIMESTAMP)).is_ok());
}

#[test]
fn standard_webhooks_secrets_must_be_base64() {
    let err = StandardWebhooks::from_config(ProviderConfig {
        secrets: vec![Secret::from("whsec_not base64!")],
        tolerance: Duration::from_secs(300),
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
    assert!(!err.to_string().contains("not base64!"), "the secret is never echoed: {err}");
}

// ---------------------------------------------------------------- Stripe

const STRIPE_SECRET: &str = "whsec_test_secret";
const STRIPE_T: u64 = 1_800_000_000;
const STRIPE_BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1800000000,"data":{"object":{"id":"pi_1"}}}"#;
/// `printf '1800000000.<body>' | openssl dgst -sha256 -hmac whsec_test_secret`: the
/// computation Stripe documents (docs.stripe.com/webhooks#verify-manually), the secret
/// used as-is.
const STRIPE_V1: &str = "c1c16f8d6f87f56b3b314baa78dd80a4e344bdba6d0f1aa4f6a74970f00d0899";

fn stripe_verify(header: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
    let scheme: Stripe = provider(&[STRIPE_SECRET]);
    scheme.verify(&headers(&[("stripe-signature", header)]), body, at(now)).map(|_| ())
}

#[test]
fn stripe_accepts_the_documented_computation_and_any_v1() {
    assert_eq!(stripe_verify(&format!("t={STRIPE_T},v1={STRIPE_V1}"), STRIPE_BODY, STRIPE_T), Ok(()));
    // stripe-node's tests: several v1 (rotation), v0 alongside, order free.
    let wrong = "0".repeat(64);
    let header = format!("t={STRIPE_T},v1={wrong},v1={STRIPE_V1},v0={wrong}");
    assert_eq!(stripe_verify(&header, STRIPE_BODY, STRIPE_T), Ok(()));
    assert_eq!(stripe_verify(&format!("v1={STRIPE_V1},t={STRIPE_T}"), STRIPE_BODY, STRIPE_T), Ok(()));
    // A malformed item (no `=`) is skipped, as stripe-node and stripe-python skip it;
    // it failed the whole header before.
    assert_eq!(stripe_verify(&format!("t={STRIPE_T},junk,v1={STRIPE_V1}"), STRIPE_BODY, STRIPE_T), Ok(()));
}

#[test]
fn stripe_rejects_what_stripe_node_rejects() {
    let wrong = "0".repeat(64);
    let ok = format!("t={STRIPE_T},v1={STRIPE_V1}");
    assert_eq!(stripe_verify(&ok, b"{}", STRIPE_T), Err(VerifyError::SignatureMismatch), "tampered body");
    assert_eq!(
        stripe_verify(&format!("t={STRIPE_T},v1={wrong}"), STRIPE_BODY, STRIPE_T),
        Err(VerifyError::SignatureMismatch)
    );
    assert_eq!(
        stripe_verify(&format!("t={STRIPE_T},v0={STRIPE_V1}"), STRIPE_BODY, STRIPE_T),
        Err(VerifyError::NoSupportedSignature("stripe-signature")),
        "only v1 counts"
    );
    assert_eq!(
        stripe_verify(&format!("v1={STRIPE_V1}"), STRIPE_BODY, STRIPE_T),
        Err(VerifyError::MalformedHeader("stripe-signature"))
    );
    assert_eq!(stripe_verify("garbage", STRIPE_BODY, STRIPE_T), Err(VerifyError::MalformedHeader("stripe-signature")));
    assert_eq!(
        stripe_verify(&format!("t={STRIPE_T},t=1,v1={STRIPE_V1}"), STRIPE_BODY, STRIPE_T),
        Err(VerifyError::MalformedHeader("stripe-signature"))
    );
    assert_eq!(
        stripe_verify(&format!("t=abc,v1={STRIPE_V1}"), STRIPE_BODY, STRIPE_T),
        Err(VerifyError::MalformedTimestamp("stripe-signature"))
    );
    assert!(matches!(stripe_verify(&ok, STRIPE_BODY, STRIPE_T + 301), Err(VerifyError::TimestampTooOld { .. })));
    assert!(matches!(stripe_verify(&ok, STRIPE_BODY, STRIPE_T - 301), Err(VerifyError::TimestampInFuture { .. })));
    assert_eq!(stripe_verify(&format!("t={STRIPE_T},v1=zz"), STRIPE_BODY, STRIPE_T), Err(VerifyError::SignatureNotHex));
    let scheme: Stripe = provider(&["whsec_other"]);
    assert_eq!(
        scheme.verify(&headers(&[("stripe-signature", &ok)]), STRIPE_BODY, at(STRIPE_T)).map(|_| ()),
        Err(VerifyError::SignatureMismatch),
        "wrong secret"
    );
}

// ---------------------------------------------------------------- GitHub

#[test]
fn github_accepts_its_documented_example() {
    // docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries,
    // "Testing the webhook payload validation".
    let scheme: GitHub = provider(&["It's a Secret to Everybody"]);
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let verified = scheme.verify(&headers(&[("x-hub-signature-256", signature)]), b"Hello, World!", at(0)).unwrap();
    assert_eq!(verified.timestamp, None, "GitHub signs no timestamp");
}

#[test]
fn github_rejects_tampering_and_malformed_headers() {
    let scheme: GitHub = provider(&["It's a Secret to Everybody"]);
    let verify = |value: &str, body: &[u8]| scheme.verify(&headers(&[("x-hub-signature-256", value)]), body, at(0));
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(verify(good, b"Hello, World?"), Err(VerifyError::SignatureMismatch));
    assert_eq!(verify(&good[7..], b"Hello, World!"), Err(VerifyError::MalformedHeader("x-hub-signature-256")));
    assert_eq!(
        verify("sha1=7d38cdd689735b008b3c702edd92eea23791c5f6", b"Hello, World!"),
        Err(VerifyError::MalformedHeader("x-hub-signature-256"))
    );
    assert_eq!(verify("sha256=", b"Hello, World!"), Err(VerifyError::SignatureLength { expected: 32, found: 0 }));
    assert_eq!(scheme.verify(&HeaderMap::new(), b"", at(0)), Err(VerifyError::MissingHeader("x-hub-signature-256")));
    let other: GitHub = provider(&["another secret"]);
    assert_eq!(
        other.verify(&headers(&[("x-hub-signature-256", good)]), b"Hello, World!", at(0)),
        Err(VerifyError::SignatureMismatch)
    );
}

// ---------------------------------------------------------------- Slack

/// Slack's worked example (api.slack.com/authentication/verifying-requests-from-slack).
mod slack_vector {
    pub(super) const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    pub(super) const TIMESTAMP: u64 = 1_531_420_618;
    pub(super) const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    pub(super) const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
}

#[test]
fn slack_accepts_its_documented_example_and_rejects_its_variations() {
    use slack_vector::*;
    let scheme: Slack = provider(&[SECRET]);
    let verify = |signature: &str, timestamp: &str, body: &[u8], now: u64| {
        let headers = headers(&[("x-slack-signature", signature), ("x-slack-request-timestamp", timestamp)]);
        scheme.verify(&headers, body, at(now))
    };
    let ts = TIMESTAMP.to_string();
    assert_eq!(verify(SIGNATURE, &ts, BODY, TIMESTAMP).unwrap().timestamp, Some(TIMESTAMP));
    assert_eq!(verify(SIGNATURE, &ts, &BODY[1..], TIMESTAMP), Err(VerifyError::SignatureMismatch));
    assert_eq!(
        verify(SIGNATURE, "1531420619", BODY, TIMESTAMP),
        Err(VerifyError::SignatureMismatch),
        "the timestamp is signed"
    );
    assert!(matches!(verify(SIGNATURE, &ts, BODY, TIMESTAMP + 301), Err(VerifyError::TimestampTooOld { .. })));
    assert!(matches!(verify(SIGNATURE, &ts, BODY, TIMESTAMP - 301), Err(VerifyError::TimestampInFuture { .. })));
    assert_eq!(
        verify(&SIGNATURE.replace("v0=", "v1="), &ts, BODY, TIMESTAMP),
        Err(VerifyError::NoSupportedSignature("x-slack-signature"))
    );
    assert_eq!(verify(&SIGNATURE[3..], &ts, BODY, TIMESTAMP), Err(VerifyError::MalformedHeader("x-slack-signature")));
    assert_eq!(
        verify(SIGNATURE, "soon", BODY, TIMESTAMP),
        Err(VerifyError::MalformedTimestamp("x-slack-request-timestamp"))
    );
}

// ---------------------------------------------------------------- Shopify

#[test]
fn shopify_accepts_the_base64_hmac_of_the_body() {
    // `printf '<body>' | openssl dgst -sha256 -hmac shpss_test_secret -binary | base64`,
    // the computation Shopify documents (shopify.dev, "Verify the webhook").
    let body = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let scheme: Shopify = provider(&["shpss_test_secret"]);
    let signed = headers(&[("x-shopify-hmac-sha256", "LnwdZPLBbdjkBwPD/lDL1/rYEGby/GHPtL1aAH6Dxjc=")]);
    assert_eq!(scheme.verify(&signed, body, at(0)).unwrap().timestamp, None);
    assert_eq!(scheme.verify(&signed, b"{}", at(0)), Err(VerifyError::SignatureMismatch));
    let hex = headers(&[("x-shopify-hmac-sha256", "2e7c1d64f2c16dd8e40703c3fe50cbd7fad81066f2fc61cfb4bd5a007e838e37")]);
    assert_eq!(
        scheme.verify(&hex, body, at(0)),
        Err(VerifyError::SignatureLength { expected: 32, found: 48 }),
        "hex is not Shopify's encoding"
    );
    let not_base64 = headers(&[("x-shopify-hmac-sha256", "***")]);
    assert_eq!(scheme.verify(&not_base64, body, at(0)), Err(VerifyError::SignatureNotBase64));
    let rotated: Shopify = provider(&["old", "shpss_test_secret"]);
    assert!(rotated.verify(&signed, body, at(0)).is_ok());
}

// ---------------------------------------------------------------- every scheme, end to end

#[derive(Default)]
struct GitHubApp(Seen);

#[webhook_handlers(provider = "github")]
impl GitHubApp {
    #[event("issues.opened")]
    async fn opened(&self, _issue: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("opened", meta);
        Ok(())
    }

    #[event("issues")]
    async fn any_issue(&self, _issue: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("issues", meta);
        Ok(())
    }

    #[event("ping")]
    async fn ping(&self, _ping: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("ping", meta);
        Ok(())
    }
}

#[derive(Default)]
struct StripeApp(Seen);

#[webhook_handlers(provider = "stripe")]
impl StripeApp {
    #[event("payment_intent.succeeded")]
    async fn succeeded(&self, data: StripeData, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(data.object.id, "pi_1");
        self.0.record("succeeded", meta);
        Ok(())
    }
}

#[derive(Default)]
struct StandardApp(Seen);

#[webhook_handlers(provider = "standard")]
impl StandardApp {
    #[event("invoice.paid")]
    async fn paid(&self, _data: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("paid", meta);
        Ok(())
    }
}

#[derive(Default)]
struct SlackApp(Seen);

#[webhook_handlers(provider = "slack")]
impl SlackApp {
    #[event("app_mention")]
    async fn mention(&self, _event: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("mention", meta);
        Ok(())
    }
}

#[derive(Default)]
struct ShopifyApp(Seen);

#[webhook_handlers(provider = "shopify")]
impl ShopifyApp {
    #[event("orders/create")]
    async fn order(&self, _order: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("order", meta);
        Ok(())
    }
}

/// Signs `event_type` with the old of two secrets and delivers it to a receiver that
/// knows both; answers the status and body.
async fn deliver<H>(receiver: &Receiver<H>, event_type: &str, id: &str, data: serde_json::Value) -> (u16, String)
where
    H: hookroute::WebhookHandlers,
    H::Provider: hookroute::provider::Sign,
{
    let delivery = TestEvent::<H::Provider>::new(event_type, data).id(id).sign("whsec_b2xkLXNlY3JldA==");
    let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
    (outcome.status().as_u16(), outcome.body().into_owned())
}

fn receiver<H: hookroute::WebhookHandlers>(handlers: H) -> Receiver<H> {
    // Both are `whsec_` + base64, so every scheme (Standard Webhooks decodes them) takes them.
    Receiver::builder(handlers).secret("whsec_bmV3LXNlY3JldA==").secret("whsec_b2xkLXNlY3JldA==").build().unwrap()
}

#[tokio::test]
async fn github_routes_by_event_and_action_most_specific_first() {
    let receiver = receiver(GitHubApp::default());
    let issue = || serde_json::json!({"issue": {"number": 1}});
    assert_eq!(deliver(&receiver, "issues.opened", "d-1", issue()).await.0, 200);
    assert_eq!(deliver(&receiver, "issues.closed", "d-2", issue()).await.0, 200);
    assert_eq!(deliver(&receiver, "ping", "d-3", serde_json::json!({"zen": "Keep it simple."})).await.0, 200);
    let (status, body) = deliver(&receiver, "push", "d-4", serde_json::json!({"ref": "main"})).await;
    assert_eq!((status, body.contains("ignored")), (200, true), "{body}");
    let (status, body) = deliver(&receiver, "issues.opened", "d-1", issue()).await;
    assert_eq!((status, body.contains("duplicate")), (200, true), "a redelivery keeps its X-GitHub-Delivery: {body}");
    assert_eq!(receiver.handlers().0.take(), ["opened issues.opened d-1", "issues issues.closed d-2", "ping ping d-3"],);
}

#[tokio::test]
async fn every_other_scheme_routes_and_deduplicates_with_a_rotated_secret() {
    let stripe = receiver(StripeApp::default());
    let data = serde_json::json!({"object": {"id": "pi_1"}});
    assert_eq!(deliver(&stripe, "payment_intent.succeeded", "evt_1", data.clone()).await.0, 200);
    assert!(deliver(&stripe, "payment_intent.succeeded", "evt_1", data).await.1.contains("duplicate"));
    assert_eq!(stripe.handlers().0.take(), ["succeeded payment_intent.succeeded evt_1"]);

    let standard = receiver(StandardApp::default());
    assert_eq!(deliver(&standard, "invoice.paid", "msg_1", serde_json::json!({"id": "in_1"})).await.0, 200);
    assert!(deliver(&standard, "invoice.paid", "msg_1", serde_json::json!({"id": "in_1"}))
        .await
        .1
        .contains("duplicate"));
    assert_eq!(standard.handlers().0.take(), ["paid invoice.paid msg_1"]);

    let slack = receiver(SlackApp::default());
    assert_eq!(deliver(&slack, "app_mention", "Ev1", serde_json::json!({"text": "<@U1> hi"})).await.0, 200);
    assert!(deliver(&slack, "app_mention", "Ev1", serde_json::json!({"text": "<@U1> hi"}))
        .await
        .1
        .contains("duplicate"));
    assert_eq!(slack.handlers().0.take(), ["mention app_mention Ev1"]);

    let shopify = receiver(ShopifyApp::default());
    assert_eq!(deliver(&shopify, "orders/create", "wh-1", serde_json::json!({"id": 1})).await.0, 200);
    assert!(deliver(&shopify, "orders/create", "wh-1", serde_json::json!({"id": 1})).await.1.contains("duplicate"));
    assert_eq!(shopify.handlers().0.take(), ["order orders/create wh-1"]);
}

#[test]
fn envelopes_read_ids_and_types_where_each_scheme_keeps_them() {
    use hookroute::Provider as _;
    // Slack: the inner event's type; other envelopes by their own type.
    let none = HeaderMap::new();
    let body =
        br#"{"type":"event_callback","event_id":"Ev9","event_time":1531420618,"event":{"type":"message","text":"hi"}}"#;
    let envelope = Slack::envelope(&none, body).unwrap();
    assert_eq!((&*envelope.id, &*envelope.event_type), ("Ev9", "message"));
    assert_eq!(envelope.data.get(), r#"{"type":"message","text":"hi"}"#);
    assert_eq!(envelope.created.as_deref(), Some("1531420618"));
    let challenge = br#"{"type":"url_verification","challenge":"abc","token":"t"}"#;
    let envelope = Slack::envelope(&none, challenge).unwrap();
    assert_eq!(envelope.event_type, "url_verification");
    assert_eq!(envelope.id, Slack::envelope(&none, challenge).unwrap().id, "a stable id for retries");

    // Shopify and GitHub: headers; a missing one is a clear 400, not a panic.
    let shopify = headers(&[
        ("x-shopify-webhook-id", "wh-9"),
        ("x-shopify-topic", "orders/paid"),
        ("x-shopify-triggered-at", "2026-11-22T10:00:00Z"),
    ]);
    let envelope = Shopify::envelope(&shopify, b"{}").unwrap();
    assert_eq!((&*envelope.id, &*envelope.event_type), ("wh-9", "orders/paid"));
    assert_eq!(envelope.created.as_deref(), Some("2026-11-22T10:00:00Z"));
    assert!(matches!(
        GitHub::envelope(&HeaderMap::new(), b"{}"),
        Err(hookroute::provider::EnvelopeError::Header("x-github-delivery"))
    ));
    let github = headers(&[("x-github-delivery", "d-9"), ("x-github-event", "issues")]);
    let envelope = GitHub::envelope(&github, br#"{"action":"labeled"}"#).unwrap();
    assert_eq!((&*envelope.event_type, envelope.group.as_deref()), ("issues.labeled", Some("issues")));
    assert!(GitHub::envelope(&github, b"not json").is_err());

    // Standard Webhooks: the id from the header, type and data from the body.
    let standard = headers(&[("webhook-id", "msg_9")]);
    let body = br#"{"type":"user.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"u1"}}"#;
    let envelope = StandardWebhooks::envelope(&standard, body).unwrap();
    assert_eq!((&*envelope.id, &*envelope.event_type), ("msg_9", "user.created"));
    assert_eq!(envelope.created.as_deref(), Some("2022-11-03T20:26:10.344522Z"));
}

/// Found by the fuzzer: a signer put an id that is not visible ASCII into a header,
/// which no verifier can read back. Such ids are now left out, never half-sent.
#[test]
fn signers_leave_out_ids_a_header_cannot_carry() {
    let delivery =
        TestEvent::<StandardWebhooks>::new("user.created", serde_json::json!({})).id("msg_é").sign("whsec_YWJj");
    assert!(!delivery.headers.contains_key("webhook-id"));
    let delivery = TestEvent::<GitHub>::new("issues.opened", serde_json::json!({})).id("d-é").sign("s");
    assert!(!delivery.headers.contains_key("x-github-delivery"));
    assert_eq!(delivery.headers["x-github-event"], "issues");
}

/// Sends `captured` again, `times` times, each under a fresh value of the unsigned id
/// header `id_header`; answers the statuses words.
async fn replay_under_fresh_ids<H: hookroute::WebhookHandlers>(
    receiver: &Receiver<H>,
    captured: &hookroute::testing::SignedDelivery,
    id_header: &'static str,
    times: usize,
) -> Vec<String> {
    let mut answers = Vec::new();
    for n in 0..times {
        let mut headers = captured.headers.clone();
        headers.insert(HeaderName::from_static(id_header), HeaderValue::from_str(&format!("forged-{n}")).unwrap());
        let outcome = receiver.receive(&headers, &captured.body).await;
        answers.push(format!("{} {}", outcome.status().as_u16(), outcome.body()));
    }
    answers
}

/// GitHub and Shopify sign only the body: one captured delivery sent again under fresh
/// delivery ids ran the handler every time (21 runs of one body). The signed bytes are
/// claimed too now, so every replay is a duplicate.
#[tokio::test]
async fn a_captured_body_replayed_under_fresh_ids_is_a_duplicate() {
    const DUPLICATE: &str = r#"200 {"status":"duplicate"}"#;
    let github = receiver(GitHubApp::default());
    let captured = TestEvent::<GitHub>::new("issues.opened", serde_json::json!({"issue": {"number": 7}}))
        .id("d-captured")
        .sign("whsec_b2xkLXNlY3JldA==");
    let first = github.receive(&captured.headers, &captured.body).await;
    assert_eq!(first.status(), 200, "{}", first.body());
    let answers = replay_under_fresh_ids(&github, &captured, "x-github-delivery", 20).await;
    assert!(answers.iter().all(|answer| answer == DUPLICATE), "{answers:?}");
    assert_eq!(github.handlers().0.take(), ["opened issues.opened d-captured"]);

    let shopify = receiver(ShopifyApp::default());
    let captured = TestEvent::<Shopify>::new("orders/create", serde_json::json!({"id": 7}))
        .id("wh-captured")
        .sign("whsec_b2xkLXNlY3JldA==");
    let first = shopify.receive(&captured.headers, &captured.body).await;
    assert_eq!(first.status(), 200, "{}", first.body());
    let answers = replay_under_fresh_ids(&shopify, &captured, "x-shopify-webhook-id", 20).await;
    assert!(answers.iter().all(|answer| answer == DUPLICATE), "{answers:?}");
    assert_eq!(shopify.handlers().0.take(), ["order orders/create wh-captured"]);

    // In inbox mode the delivery is stored under the key of its signed bytes.
    let inbox = Receiver::builder(GitHubApp::default())
        .secret("whsec_b2xkLXNlY3JldA==")
        .inbox(hookroute::inbox::MemoryInbox::new())
        .build()
        .unwrap();
    let first = inbox.receive(&captured_github().headers, &captured_github().body).await;
    assert_eq!(first.status(), 202, "{}", first.body());
    let answers = replay_under_fresh_ids(&inbox, &captured_github(), "x-github-delivery", 5).await;
    assert!(answers.iter().all(|answer| answer == DUPLICATE), "{answers:?}");
}

fn captured_github() -> hookroute::testing::SignedDelivery {
    TestEvent::<GitHub>::new("issues.closed", serde_json::json!({"issue": {"number": 8}}))
        .id("d-inbox")
        .sign("whsec_b2xkLXNlY3JldA==")
}

/// `X-GitHub-Event` is not signed: `issues.opened` on a captured `issues`/`closed` body
/// reached the `issues.opened` handler. The header must be an event name; the action
/// comes from the signed body only.
#[tokio::test]
async fn a_relabelled_github_event_header_does_not_pick_the_action() {
    let github = receiver(GitHubApp::default());
    let captured = captured_github();
    let mut relabelled = captured.headers.clone();
    relabelled.insert("x-github-event", HeaderValue::from_static("issues.opened"));
    let outcome = github.receive(&relabelled, &captured.body).await;
    assert_eq!(outcome.status(), 400, "{}", outcome.body());
    assert!(outcome.body().contains("x-github-event"), "{}", outcome.body());
    let outcome = github.receive(&captured.headers, &captured.body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    assert_eq!(github.handlers().0.take(), ["issues issues.closed d-inbox"]);
}

#[tokio::test]
async fn an_id_or_type_with_a_control_character_is_a_400() {
    let stripe = receiver(StripeApp::default());
    let data = serde_json::json!({"object": {"id": "pi_1"}});
    let (status, body) = deliver(&stripe, "payment_intent.succeeded", "evt_1\nINFO forged", data.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`id` holds a control character"), "{body}");
    let (status, body) = deliver(&stripe, "payment_intent.succeeded\r", "evt_2", data).await;
    assert_eq!(status, 400, "{body}");
    assert!(stripe.handlers().0.take().is_empty());
}

// ---------------------------------------------------------------- what real senders send

/// Now, in unix seconds.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[derive(Default)]
struct ProjectsApp(Seen);

#[webhook_handlers(provider = "github")]
impl ProjectsApp {
    #[event("projects_v2_item")]
    async fn item(&self, _item: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("item", meta);
        Ok(())
    }

    #[event("ping")]
    async fn ping(&self, ping: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(ping["zen"], "Design for failure.");
        self.0.record("ping", meta);
        Ok(())
    }

    #[event("issues.opened")]
    async fn opened(&self, issue: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(issue["issue"]["title"], "a & b = c?");
        self.0.record("opened", meta);
        Ok(())
    }
}

/// `X-GitHub-Event: projects_v2_item` holds a digit: it was answered 400, and GitHub
/// does not retry, so every such event was lost.
#[tokio::test]
async fn github_event_names_with_digits_reach_their_handler() {
    let github = receiver(ProjectsApp::default());
    let item = serde_json::json!({"projects_v2_item": {"id": 1}});
    let (status, body) = deliver(&github, "projects_v2_item.edited", "d-p2", item).await;
    assert_eq!((status, &*body), (200, r#"{"status":"processed"}"#));
    assert_eq!(github.handlers().0.take(), ["item projects_v2_item.edited d-p2"]);

    // A header that is no event name is still 400, and the answer names the (escaped)
    // value and the delivery.
    let delivery = TestEvent::<GitHub>::new("ping", serde_json::json!({"zen": "Design for failure."}))
        .id("d-\"bad\"")
        .sign("whsec_b2xkLXNlY3JldA==");
    let mut headers = delivery.headers.clone();
    headers.insert("x-github-event", HeaderValue::from_static("Ping\"x"));
    let outcome = github.receive(&headers, &delivery.body).await;
    assert_eq!(outcome.status(), 400);
    let error = outcome.rejection().unwrap().to_string();
    assert!(error.contains(r#"is "Ping\"x""#) && error.contains(r#"delivery "d-\"bad\"""#), "{error}");
}

/// A GitHub body as the `form` content type sends it: `payload=` and the JSON,
/// percent-encoded, signed as sent.
fn github_form(event: &str, id: &str, json: &serde_json::Value) -> (HeaderMap, Vec<u8>) {
    let body = format!("payload={}", percent_encode(&json.to_string())).into_bytes();
    let mut headers = hookroute::testing::sign_raw::<GitHub>("whsec_b2xkLXNlY3JldA==", 0, &body);
    headers.insert("x-github-event", HeaderValue::from_str(event).unwrap());
    headers.insert("x-github-delivery", HeaderValue::from_str(id).unwrap());
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    (headers, body)
}

/// `application/x-www-form-urlencoded`'s encoding, as browsers and GitHub write it.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A webhook whose content type is `form` (the REST API's default) got 400 on every
/// delivery, `ping` included.
#[tokio::test]
async fn github_form_encoded_deliveries_are_verified_as_sent_and_routed_by_their_payload() {
    let github = receiver(ProjectsApp::default());
    let (headers, body) = github_form("ping", "d-f1", &serde_json::json!({"zen": "Design for failure."}));
    let outcome = github.receive(&headers, &body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    let issue = serde_json::json!({"action": "opened", "issue": {"title": "a & b = c?"}});
    let (headers, body) = github_form("issues", "d-f2", &issue);
    let outcome = github.receive(&headers, &body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    assert_eq!(github.handlers().0.take(), ["ping ping d-f1", "opened issues.opened d-f2"]);

    // The signature covers the form as sent: a payload changed after signing is 401.
    let mut tampered = body.clone();
    let last = tampered.len() - 4;
    tampered[last] = b'X';
    assert_eq!(github.receive(&headers, &tampered).await.status(), 401);
    // A form without a payload is 400 that says so.
    let mut headers = hookroute::testing::sign_raw::<GitHub>("whsec_b2xkLXNlY3JldA==", 0, b"zen=1");
    headers.insert("x-github-event", HeaderValue::from_static("ping"));
    headers.insert("x-github-delivery", HeaderValue::from_static("d-f3"));
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    let outcome = github.receive(&headers, b"zen=1").await;
    assert_eq!(outcome.status(), 400);
    assert!(outcome.body().contains("payload"), "{}", outcome.body());
}

#[derive(serde::Deserialize)]
struct User {
    id: String,
}

#[derive(Default)]
struct SquashedApp(Seen);

#[webhook_handlers(provider = "standard")]
impl SquashedApp {
    #[event("user.created")]
    async fn created(&self, user: User, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(user.id, "u_1");
        self.0.record("created", meta);
        Ok(())
    }
}

/// Standard Webhooks lets the data be squashed into the top-level object: such bodies
/// were 400 whichever library signed them.
#[tokio::test]
async fn standard_webhooks_bodies_without_data_are_their_own_data() {
    let standard = receiver(SquashedApp::default());
    let body = br#"{"type":"user.created","timestamp":"2026-12-06T10:00:00Z","id":"u_1"}"#;
    let headers = hookroute::testing::sign_raw::<StandardWebhooks>("whsec_b2xkLXNlY3JldA==", now(), body);
    let outcome = standard.receive(&headers, body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    assert_eq!(standard.handlers().0.take(), [format!("created user.created {id}")]);

    // Without `type` nothing can route it: 400, saying so.
    let body = br#"{"id":"u_1"}"#;
    let headers = hookroute::testing::sign_raw::<StandardWebhooks>("whsec_b2xkLXNlY3JldA==", now(), body);
    let outcome = standard.receive(&headers, body).await;
    assert_eq!(outcome.status(), 400);
    assert_eq!(outcome.body(), r#"{"error":"body has no `type` field"}"#);
}

/// Both official libraries take a secret whose base64 has lost its `=` padding; it was
/// refused at start-up.
#[test]
fn standard_webhooks_secrets_may_be_unpadded() {
    let padded: StandardWebhooks = provider(&["whsec_YWI="]);
    let unpadded: StandardWebhooks = provider(&["whsec_YWI"]);
    let body = br#"{"type":"t","data":{}}"#;
    let headers = hookroute::testing::sign_raw::<StandardWebhooks>("whsec_YWI=", now(), body);
    assert_eq!(padded.verify(&headers, body, SystemTime::now()), Ok(hookroute::provider::Verified::at(Some(now()))));
    assert!(unpadded.verify(&headers, body, SystemTime::now()).is_ok());
    // Still base64: a secret that is not is refused.
    assert!(StandardWebhooks::from_config(ProviderConfig {
        secrets: vec![Secret::from("whsec_YW=I")],
        tolerance: Duration::from_secs(300)
    })
    .is_err());
}

/// Slack verifies a Request URL by sending a signed `url_verification` and expecting
/// its challenge back; hookroute answered its own JSON, so Slack refused the URL.
#[tokio::test]
async fn slack_url_verification_is_answered_with_its_challenge_once_signed() {
    let slack = receiver(SlackApp::default());
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let headers = hookroute::testing::sign_raw::<Slack>("whsec_b2xkLXNlY3JldA==", now(), body);
    let outcome = slack.receive(&headers, body).await;
    assert_eq!(outcome.status(), 200);
    assert_eq!(outcome.body(), r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#);
    assert_eq!(outcome.delivered().unwrap().kind(), hookroute::DeliveredKind::Challenge);
    assert!(slack.handlers().0.take().is_empty());
    // Unsigned, it is refused like any delivery: the challenge is not echoed.
    let outcome = slack.receive(&HeaderMap::new(), body).await;
    assert_eq!(outcome.status(), 401);
    assert!(!outcome.body().contains("3eZbrw1a"));
    // A challenge that needs escaping is escaped.
    let body = br#"{"challenge":"a\"b","type":"url_verification"}"#;
    let headers = hookroute::testing::sign_raw::<Slack>("whsec_b2xkLXNlY3JldA==", now(), body);
    assert_eq!(slack.receive(&headers, body).await.body(), r#"{"challenge":"a\"b"}"#);

    // In inbox mode too: answered, never queued.
    let inbox = Receiver::builder(SlackApp::default())
        .secret("whsec_b2xkLXNlY3JldA==")
        .inbox(hookroute::inbox::MemoryInbox::new())
        .build()
        .unwrap();
    let outcome = inbox.receive(&headers, body).await;
    assert_eq!((outcome.status().as_u16(), &*outcome.body()), (200, r#"{"challenge":"a\"b"}"#));
}

#[derive(Default)]
struct ThinApp(Seen);

#[webhook_handlers(provider = "stripe")]
impl ThinApp {
    #[event("v1.billing.meter.error_report_triggered", unlisted)]
    async fn meter_error(&self, event: ThinEvent, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!((&*event.related_object.id, &*event.related_object.kind), ("mtr_test_1", "billing.meter"));
        self.0.record("meter_error", meta);
        Ok(())
    }
}

/// Stripe's thin events (event destinations) carry no `data` snapshot: they were 400.
#[tokio::test]
async fn stripe_thin_events_are_routed_by_type_with_the_event_as_data() {
    let stripe = receiver(ThinApp::default());
    let body = br#"{"id":"evt_test_65R9","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","livemode":false,"created":"2024-09-17T06:20:52.246Z","related_object":{"id":"mtr_test_1","type":"billing.meter","url":"/v1/billing/meters/mtr_test_1"},"context":null}"#;
    let headers = hookroute::testing::sign_raw::<Stripe>("whsec_b2xkLXNlY3JldA==", now(), body);
    let outcome = stripe.receive(&headers, body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    assert_eq!(outcome.delivered().unwrap().meta().created(), Some("2024-09-17T06:20:52.246Z"));
    assert_eq!(stripe.handlers().0.take(), ["meter_error v1.billing.meter.error_report_triggered evt_test_65R9"]);
    // A snapshot event without `data` is still 400, saying what is missing.
    let body = br#"{"id":"evt_2","object":"event","type":"customer.created","created":1}"#;
    let headers = hookroute::testing::sign_raw::<Stripe>("whsec_b2xkLXNlY3JldA==", now(), body);
    assert_eq!(stripe.receive(&headers, body).await.body(), r#"{"error":"body has no `data` field"}"#);
}

/// Shopify's event subscriptions send the headers without `X-`; they were 401. And
/// shopify.dev names `X-Shopify-Event-Id` as the key to deduplicate on.
#[tokio::test]
async fn shopify_takes_both_header_families_and_deduplicates_on_the_event_id() {
    let shopify = receiver(ShopifyApp::default());
    let body = br#"{"id":820982911946154508}"#;
    let signed = hookroute::testing::sign_raw::<Shopify>("whsec_b2xkLXNlY3JldA==", 0, body);
    let hmac = signed["x-shopify-hmac-sha256"].clone();
    let unprefixed = headers(&[
        ("shopify-topic", "orders/create"),
        ("shopify-webhook-id", "wh-u1"),
        ("shopify-shop-domain", "shop.myshopify.com"),
        ("shopify-api-version", "2026-07"),
        ("shopify-triggered-at", "2026-12-06T10:00:00Z"),
    ]);
    let mut unprefixed = unprefixed;
    unprefixed.insert("shopify-hmac-sha256", hmac.clone());
    let outcome = shopify.receive(&unprefixed, body).await;
    assert_eq!(outcome.status(), 200, "{}", outcome.body());
    assert_eq!(shopify.handlers().0.take(), ["order orders/create wh-u1"]);

    // Two subscriptions deliver one event: two webhook ids, one event id; it runs once.
    let body = br#"{"id":2}"#;
    let hmac =
        hookroute::testing::sign_raw::<Shopify>("whsec_b2xkLXNlY3JldA==", 0, body)["x-shopify-hmac-sha256"].clone();
    for webhook_id in ["wh-a", "wh-b"] {
        let mut headers = headers(&[
            ("x-shopify-topic", "orders/create"),
            ("x-shopify-webhook-id", webhook_id),
            ("x-shopify-event-id", "ev-1"),
        ]);
        headers.insert("x-shopify-hmac-sha256", hmac.clone());
        let outcome = shopify.receive(&headers, body).await;
        assert_eq!(outcome.status(), 200, "{}", outcome.body());
    }
    assert_eq!(shopify.handlers().0.take(), ["order orders/create ev-1"]);
}

/// In inbox mode the worker reads the stored form body again, by its stored
/// content type: the payload's JSON reaches the handler.
#[tokio::test]
async fn a_queued_github_form_delivery_runs_in_a_worker() {
    let receiver = Receiver::builder(ProjectsApp::default())
        .secret("whsec_b2xkLXNlY3JldA==")
        .inbox(hookroute::inbox::MemoryInbox::new())
        .build()
        .unwrap();
    let issue = serde_json::json!({"action": "opened", "issue": {"title": "a & b = c?"}});
    let (headers, body) = github_form("issues", "d-q1", &issue);
    let outcome = receiver.receive(&headers, &body).await;
    assert_eq!(outcome.status(), 202, "{}", outcome.body());
    let workers = receiver.worker().unwrap().spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let ran = loop {
        let ran = receiver.handlers().0.take();
        if !ran.is_empty() || tokio::time::Instant::now() > deadline {
            break ran;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    workers.shutdown().await;
    assert_eq!(ran, ["opened issues.opened d-q1"]);
}

#[derive(Default)]
struct GitHubFallbackApp(Seen);

#[webhook_handlers(provider = "github")]
impl GitHubFallbackApp {
    #[event("deployment_review", unlisted)]
    async fn review(&self, _data: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("review", meta);
        Ok(())
    }

    #[fallback]
    async fn other(&self, event: hookroute::UnknownEvent) -> Result<(), HandlerError> {
        self.0.record("fallback", event.meta());
        Ok(())
    }
}

#[derive(Default)]
struct ShopifyFallbackApp(Seen);

#[webhook_handlers(provider = "shopify")]
impl ShopifyFallbackApp {
    #[fallback]
    async fn other(&self, event: hookroute::UnknownEvent) -> Result<(), HandlerError> {
        self.0.record("fallback", event.meta());
        Ok(())
    }
}

/// The type headers of GitHub and Shopify are not signed: one captured body resent
/// under 30 invented `X-GitHub-Event` / `X-Shopify-Topic` values with fresh ids (the
/// body claim covers the type) reaches a `#[fallback]` only under the provider's
/// catalog names (a handler takes its declared `unlisted` name): invented types are
/// answered `ignored` and run nothing.
#[tokio::test]
async fn invented_type_headers_do_not_reach_a_fallback() {
    const IGNORED: &str = r#"200 {"status":"ignored"}"#;
    let github = receiver(GitHubFallbackApp::default());
    let captured = TestEvent::<GitHub>::new("issues.opened", serde_json::json!({"issue": {"number": 7}}))
        .id("d-real")
        .sign("whsec_b2xkLXNlY3JldA==");
    assert_eq!(github.receive(&captured.headers, &captured.body).await.status(), 200);
    for n in 0..30 {
        let mut headers = captured.headers.clone();
        headers.insert("x-github-event", HeaderValue::from_str(&format!("invented_{n}")).unwrap());
        headers.insert("x-github-delivery", HeaderValue::from_str(&format!("d-{n}")).unwrap());
        let outcome = github.receive(&headers, &captured.body).await;
        assert_eq!(format!("{} {}", outcome.status().as_u16(), outcome.body()), IGNORED);
    }
    assert_eq!(github.handlers().0.take(), ["fallback issues.opened d-real"]);
    // Catalogued names with digits reach the fallback; an `unlisted` name its handler.
    let (status, _) = deliver(&github, "projects_v2_item.edited", "d-p2", serde_json::json!({})).await;
    let (review, _) = deliver(&github, "deployment_review.approved", "d-review", serde_json::json!({})).await;
    assert_eq!((status, review), (200, 200));
    assert_eq!(
        github.handlers().0.take(),
        ["fallback projects_v2_item.edited d-p2", "review deployment_review.approved d-review"]
    );

    let shopify = receiver(ShopifyFallbackApp::default());
    let captured = TestEvent::<Shopify>::new("orders/create", serde_json::json!({"id": 7}))
        .id("wh-real")
        .sign("whsec_b2xkLXNlY3JldA==");
    assert_eq!(shopify.receive(&captured.headers, &captured.body).await.status(), 200);
    for n in 0..30 {
        let mut headers = captured.headers.clone();
        headers.insert("x-shopify-topic", HeaderValue::from_str(&format!("invented/{n}")).unwrap());
        headers.insert("x-shopify-webhook-id", HeaderValue::from_str(&format!("wh-{n}")).unwrap());
        headers.insert("x-shopify-event-id", HeaderValue::from_str(&format!("ev-{n}")).unwrap());
        let outcome = shopify.receive(&headers, &captured.body).await;
        assert_eq!(format!("{} {}", outcome.status().as_u16(), outcome.body()), IGNORED);
    }
    assert_eq!(shopify.handlers().0.take(), ["fallback orders/create wh-real"]);
}
