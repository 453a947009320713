//! What nobody here wrote: deliveries signed by the providers' own libraries
//! (`@octokit/webhooks` over every payload of `@octokit/webhooks-examples`,
//! `standardwebhooks` and `svix` for Node.js and Python, `stripe` for Node.js,
//! `slack_sdk`, and Shopify's documented HMAC as `@shopify/shopify-api` validates it),
//! sent over a real socket to receivers served by `hookroute::axum::serve`.
//!
//! The signers live in `tests/senders/` (`sign.mjs`, `sign.py`), pinned by its
//! `package-lock.json` and `requirements.txt`; `scripts/senders` installs them, and
//! `scripts/test` runs it first. Without them these tests fail, never skip. The other
//! direction (what `hookroute sign` prints, checked by the same libraries' verifiers) is
//! in `cli/tests/official_verifiers.rs`.

use crate::support;

use std::collections::BTreeMap;
use std::future::IntoFuture as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use hookroute::{webhook_handlers, EventMeta, HandlerError, Receiver, UnknownEvent};
use support::events::{Seen, ThinEvent};

/// The Standard Webhooks key, `whsec_` + base64 with its `=` padding (20 bytes).
const STANDARD_SECRET: &str = "whsec_aG9va3JvdXRlLXNlbmRlcnMtMjA=";
const SECRET: &str = "hookroute-official-libraries";

/// One delivery a library signed, as `sign.mjs` and `sign.py` print it.
#[derive(serde::Deserialize, Debug)]
struct Signed {
    signer: String,
    case: String,
    #[serde(rename = "type")]
    event_type: String,
    id: Option<String>,
    challenge: Option<String>,
    headers: BTreeMap<String, String>,
    body_base64: String,
}

fn senders() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/senders")
}

/// The Python of the senders' virtual environment (`HOOKROUTE_TEST_PYTHON`, else
/// `tests/senders/.venv`).
fn python() -> PathBuf {
    let python =
        std::env::var_os("HOOKROUTE_TEST_PYTHON").map_or_else(|| senders().join(".venv/bin/python"), PathBuf::from);
    assert!(
        python.exists(),
        "{} is missing: run scripts/senders (scripts/test does) to install the providers' Python libraries",
        python.display()
    );
    python
}

fn node() -> Command {
    assert!(
        senders().join("node_modules/@octokit/webhooks").exists(),
        "tests/senders/node_modules is missing: run scripts/senders (scripts/test does) to install the providers' \
         Node.js libraries"
    );
    let mut node = Command::new("node");
    node.current_dir(senders());
    node
}

/// Runs a signer; answers what it printed, one delivery a line.
fn signed(mut command: Command) -> Vec<Signed> {
    let output = command.output().expect("the signer runs (is Node.js or Python installed? scripts/senders)");
    assert!(output.status.success(), "{command:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Signed> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(!lines.is_empty(), "{command:?} signed nothing");
    lines
}

fn node_signs(suite: &str, args: &[&str]) -> Vec<Signed> {
    let mut command = node();
    command.arg("sign.mjs").arg(suite).args(args);
    signed(command)
}

fn python_signs(suite: &str, secret: &str) -> Vec<Signed> {
    let mut command = Command::new(python());
    command.current_dir(senders()).arg("sign.py").arg(suite).arg(secret);
    signed(command)
}

/// Serves `receiver` over a real socket on 127.0.0.1; answers its URL.
async fn serve<H: hookroute::WebhookHandlers>(receiver: Receiver<H>) -> String {
    let router = axum::Router::new().route("/hook", hookroute::axum::post(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(hookroute::axum::serve(listener, router).into_future());
    url
}

/// Sends a signed delivery as it was signed; answers the status and body.
async fn send(client: &reqwest::Client, url: &str, delivery: &Signed) -> (u16, String) {
    let body = base64::engine::general_purpose::STANDARD.decode(&delivery.body_base64).unwrap();
    let mut request = client.post(url).body(body);
    for (name, value) in &delivery.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

// ---------------------------------------------------------------- GitHub

#[derive(Default)]
struct EveryGitHubEvent(Seen);

#[webhook_handlers(provider = "github")]
impl EveryGitHubEvent {
    #[fallback]
    async fn any(&self, event: UnknownEvent) -> Result<(), HandlerError> {
        event.parse::<serde_json::Value>().map_err(HandlerError::msg)?;
        self.0.record("fallback", event.meta());
        Ok(())
    }
}

#[derive(Default)]
struct StarsOnly(Seen);

#[webhook_handlers(provider = "github")]
impl StarsOnly {
    #[event("star")]
    async fn star(&self, _star: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("star", meta);
        Ok(())
    }
}

/// Every payload of `@octokit/webhooks-examples`, signed by `@octokit/webhooks` under its
/// event name, as `json` and as `form`: each reaches a `#[fallback]` (200 processed,
/// `projects_v2_item` included) and a typed app that does not name it answers `ignored`.
#[tokio::test]
async fn every_octokit_example_reaches_a_fallback_as_json_and_as_form() {
    let deliveries = node_signs("github", &[SECRET]);
    let client = reqwest::Client::new();
    let fallback = Receiver::builder(EveryGitHubEvent::default()).secret(SECRET).build().unwrap();
    let typed = Receiver::builder(StarsOnly::default()).secret(SECRET).build().unwrap();
    let (fallback_url, typed_url) = (serve(fallback.clone()).await, serve(typed.clone()).await);
    let mut failures = Vec::new();
    let (mut forms, mut stars) = (0, 0);
    for delivery in &deliveries {
        forms += usize::from(delivery.headers["content-type"] == "application/x-www-form-urlencoded");
        let answer = send(&client, &fallback_url, delivery).await;
        if answer != (200, r#"{"status":"processed"}"#.to_owned()) {
            failures.push(format!("fallback {}: {answer:?}", delivery.case));
        }
        let is_star = delivery.event_type.split('.').next() == Some("star");
        stars += usize::from(is_star);
        let expected = if is_star { r#"{"status":"processed"}"# } else { r#"{"status":"ignored"}"# };
        let answer = send(&client, &typed_url, delivery).await;
        if answer != (200, expected.to_owned()) {
            failures.push(format!("typed {}: {answer:?}", delivery.case));
        }
    }
    assert!(failures.is_empty(), "{} of {} deliveries:\n{}", failures.len(), deliveries.len(), failures.join("\n"));
    assert!(deliveries.len() >= 800, "every example, both content types: {}", deliveries.len());
    assert_eq!(forms * 2, deliveries.len(), "half of them form-encoded");
    let ran = fallback.handlers().0.take();
    assert_eq!(ran.len(), deliveries.len());
    for event in ["projects_v2_item.edited", "ping", "push", "issues.opened"] {
        assert!(ran.iter().any(|line| line.split(' ').nth(1) == Some(event)), "no {event} among {ran:?}");
    }
    assert_eq!(typed.handlers().0.take().len(), stars);
    assert!(stars > 0);
}

// ---------------------------------------------------------------- Standard Webhooks

#[derive(serde::Deserialize)]
struct Invoice {
    id: String,
    amount: u64,
}

#[derive(Default)]
struct Invoices(Seen);

#[webhook_handlers(provider = "standard")]
impl Invoices {
    #[event("invoice.paid")]
    async fn paid(&self, invoice: Invoice, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!((&*invoice.id, invoice.amount), ("in_1", 2000));
        self.0.record("paid", meta);
        Ok(())
    }
}

/// Four libraries (`standardwebhooks` and `svix`, Node.js and Python), `webhook-*` and
/// `svix-*` headers, bodies with and without `data`, signed with the secret padded and
/// unpadded: each is processed by a receiver configured with the padded secret, and by
/// one configured with it unpadded.
#[tokio::test]
async fn standard_webhooks_from_four_libraries_with_and_without_data() {
    let mut deliveries = node_signs("standard", &[STANDARD_SECRET]);
    deliveries.extend(python_signs("standard", STANDARD_SECRET));
    let signers: std::collections::BTreeSet<&str> = deliveries.iter().map(|d| d.signer.as_str()).collect();
    assert_eq!(signers.len(), 4, "{signers:?}");
    let client = reqwest::Client::new();
    for secret in [STANDARD_SECRET, STANDARD_SECRET.trim_end_matches('=')] {
        let receiver = Receiver::builder(Invoices::default()).secret(secret).build().unwrap();
        let url = serve(receiver.clone()).await;
        for delivery in &deliveries {
            let answer = send(&client, &url, delivery).await;
            assert_eq!(
                answer,
                (200, r#"{"status":"processed"}"#.to_owned()),
                "{} (receiver secret {secret})",
                delivery.case
            );
        }
        let ran = receiver.handlers().0.take();
        let expected: Vec<String> =
            deliveries.iter().map(|d| format!("paid invoice.paid {}", d.id.as_deref().unwrap())).collect();
        assert_eq!(ran, expected);
    }
}

// ---------------------------------------------------------------- Stripe

/// A snapshot event's data, typed: `{"object": T}`.
#[derive(serde::Deserialize)]
struct Snapshot<T> {
    object: T,
}

/// The fields of Stripe's subscription fixture a billing handler reads.
#[derive(serde::Deserialize)]
struct Subscription {
    id: String,
    customer: String,
    status: String,
    items: List<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(serde::Deserialize)]
struct StripeInvoice {
    id: String,
    currency: String,
}

#[derive(Default)]
struct StripeApp(Seen);

#[webhook_handlers(provider = "stripe")]
impl StripeApp {
    #[event("customer.subscription.updated")]
    async fn subscription(&self, data: Snapshot<Subscription>, meta: &EventMeta) -> Result<(), HandlerError> {
        let subscription = data.object;
        assert!(subscription.id.starts_with("sub_") && subscription.customer.starts_with("cus_"));
        assert!(!subscription.status.is_empty() && !subscription.items.data.is_empty());
        self.0.record("subscription", meta);
        Ok(())
    }

    #[event("invoice.paid")]
    async fn invoice(&self, data: Snapshot<StripeInvoice>, meta: &EventMeta) -> Result<(), HandlerError> {
        assert!(data.object.id.starts_with("in_") && data.object.currency.len() == 3);
        self.0.record("invoice", meta);
        Ok(())
    }

    #[event("v1.billing.meter.error_report_triggered", unlisted)]
    async fn meter(&self, event: ThinEvent, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(event.related_object.kind, "billing.meter");
        assert!(event.related_object.id.starts_with("mtr_"));
        self.0.record("thin", meta);
        Ok(())
    }

    #[fallback]
    async fn other(&self, event: UnknownEvent) -> Result<(), HandlerError> {
        // Every fixture names its kind; not every one has an id (a `balance` has none).
        let data: Snapshot<serde_json::Value> = event.parse().map_err(HandlerError::msg)?;
        assert!(data.object["object"].as_str().is_some_and(|kind| !kind.is_empty()));
        self.0.record("fallback", event.meta());
        Ok(())
    }
}

/// An event of every type in hookroute's Stripe catalog, each carrying Stripe's published
/// fixture object for its resource (`tests/senders/stripe-fixtures.json`), and a thin
/// event, signed by `stripe-node` (which verifies each first): all processed, each by
/// its handler, typed ones reading the fixtures' fields.
#[tokio::test]
async fn stripe_node_events_of_every_catalog_type_and_a_thin_event() {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("macros/catalogs/stripe.txt");
    let deliveries = node_signs("stripe", &[SECRET, catalog.to_str().unwrap()]);
    let listed = std::fs::read_to_string(&catalog).unwrap().lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(deliveries.len(), listed + 1, "every catalog type and one thin event");
    let receiver = Receiver::builder(StripeApp::default()).secret(SECRET).build().unwrap();
    let url = serve(receiver.clone()).await;
    let client = reqwest::Client::new();
    for delivery in &deliveries {
        let answer = send(&client, &url, delivery).await;
        assert_eq!(answer, (200, r#"{"status":"processed"}"#.to_owned()), "{}", delivery.case);
    }
    let ran = receiver.handlers().0.take();
    assert_eq!(ran.len(), deliveries.len());
    for handler in ["subscription customer.subscription.updated ", "invoice invoice.paid "] {
        assert_eq!(ran.iter().filter(|line| line.starts_with(handler)).count(), 1, "{handler}: {ran:?}");
    }
    assert_eq!(ran.iter().filter(|line| line.starts_with("thin v1.billing.meter.error_report_triggered ")).count(), 1);
}

// ---------------------------------------------------------------- Slack

#[derive(Default)]
struct SlackApp(Seen);

#[webhook_handlers(provider = "slack")]
impl SlackApp {
    #[event("app_mention")]
    async fn mention(&self, _event: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("mention", meta);
        Ok(())
    }

    #[event("message")]
    async fn message(&self, _event: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.record("message", meta);
        Ok(())
    }
}

/// Slack's documented requests, signed by `slack_sdk`: the Request URL check answered
/// with its challenge, events routed by their inner type, a rate-limit notice ignored.
#[tokio::test]
async fn slack_sdk_signed_requests_url_verification_included() {
    let deliveries = python_signs("slack", SECRET);
    let receiver = Receiver::builder(SlackApp::default()).secret(SECRET).build().unwrap();
    let url = serve(receiver.clone()).await;
    let client = reqwest::Client::new();
    for delivery in &deliveries {
        let answer = send(&client, &url, delivery).await;
        let expected = match (&*delivery.event_type, &delivery.challenge) {
            ("url_verification", Some(challenge)) => format!(r#"{{"challenge":"{challenge}"}}"#),
            ("app_rate_limited", _) => r#"{"status":"ignored"}"#.to_owned(),
            _ => r#"{"status":"processed"}"#.to_owned(),
        };
        assert_eq!(answer, (200, expected), "{}", delivery.case);
    }
    assert_eq!(receiver.handlers().0.take(), ["mention app_mention Ev123ABC456", "message message Ev0PV52K21"]);
}

// ---------------------------------------------------------------- Shopify

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

/// Both Shopify header families, each validated by `@shopify/shopify-api` before it is
/// sent: processed, under the event id.
#[tokio::test]
async fn shopify_deliveries_of_both_header_families() {
    let deliveries = node_signs("shopify", &[SECRET]);
    assert_eq!(deliveries.len(), 2);
    let receiver = Receiver::builder(ShopifyApp::default()).secret(SECRET).build().unwrap();
    let url = serve(receiver.clone()).await;
    let client = reqwest::Client::new();
    for delivery in &deliveries {
        let answer = send(&client, &url, delivery).await;
        assert_eq!(answer, (200, r#"{"status":"processed"}"#.to_owned()), "{}", delivery.case);
    }
    let expected: Vec<String> =
        deliveries.iter().map(|d| format!("order orders/create {}", d.id.as_deref().unwrap())).collect();
    assert_eq!(receiver.handlers().0.take(), expected);
}
