//! A signature scheme of your own: any service hookroute has no built-in scheme for.
//!
//! ```sh
//! cargo run --example custom_provider
//! ```
//!
//! "Acme" (made up) signs `"<x-acme-timestamp>:<raw body>"` with HMAC-SHA256, sends it
//! as hex in `x-acme-signature`, and puts the event id and type in headers. Implementing
//! `hookroute::Provider` for a type and naming it in the attribute
//! (`provider = AcmeScheme`) gives it everything the built-in schemes get: the
//! receiver, deduplication, routing, the typed enum. The checks come from
//! `hookroute::provider::kit`, the built-in schemes' own building blocks: keys derived
//! once, constant-time comparison against every key, strict timestamps (`+1` is
//! refused), the window both ways, and no empty secret. It then sends itself four
//! deliveries.

use std::borrow::Cow;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookroute::provider::kit::{self, HmacKeys};
use hookroute::provider::{ConfigError, Envelope, EnvelopeError, ProviderConfig, Verified};
use hookroute::{webhook_handlers, EventMeta, HandlerError, Provider, Receiver, VerifyError};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;

const TIMESTAMP: &str = "x-acme-timestamp";
const SIGNATURE: &str = "x-acme-signature";

/// Acme's scheme: its keys and replay window.
#[derive(Debug)]
struct AcmeScheme {
    keys: HmacKeys,
    tolerance: Duration,
}

impl Provider for AcmeScheme {
    const NAME: &'static str = "acme";
    const SECRET_ENV: &'static str = "ACME_WEBHOOK_SECRET";

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        // No secret, or an empty one, is refused here, as the built-ins refuse it.
        Ok(Self { keys: HmacKeys::from_config(&config, Self::NAME)?, tolerance: config.tolerance })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let timestamp_text = kit::header(headers, TIMESTAMP)?;
        let timestamp = kit::parse_timestamp(timestamp_text, TIMESTAMP)?;
        kit::check_window(timestamp, now, self.tolerance)?;
        let signature = kit::decode_hex(kit::header(headers, SIGNATURE)?);
        self.keys.check(&[timestamp_text.as_bytes(), b":", body], [signature])?;
        Ok(Verified::at(Some(timestamp)))
    }

    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let text =
            |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(EnvelopeError::Header(name));
        Envelope::new(text("x-acme-event-id")?, text("x-acme-event")?, Cow::Borrowed(serde_json::from_slice(body)?))
    }
}

#[derive(Debug, Deserialize)]
struct Shipment {
    tracking: String,
}

struct App;

#[webhook_handlers(provider = AcmeScheme)]
impl App {
    #[event("shipment.delivered")]
    async fn delivered(&self, shipment: Shipment, meta: &EventMeta) -> Result<(), HandlerError> {
        println!("handler: {} {} tracking {}", meta.event_type(), meta.id(), shipment.tracking);
        Ok(())
    }
}

/// What Acme would send, at `timestamp` (its text as sent).
fn acme_delivery(secret: &str, id: &str, timestamp: &str) -> (HeaderMap, Vec<u8>) {
    let body = br#"{"tracking":"1Z999"}"#.to_vec();
    let mac = kit::hmac_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b":", &body]);
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE, HeaderValue::from_str(&hex::encode(mac)).unwrap());
    headers.insert(TIMESTAMP, HeaderValue::from_str(timestamp).unwrap());
    headers.insert("x-acme-event-id", HeaderValue::from_str(id).unwrap());
    headers.insert("x-acme-event", HeaderValue::from_static("shipment.delivered"));
    (headers, body)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let receiver = match Receiver::builder(App).secret("acme-secret").build() {
        Ok(receiver) => receiver,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // An empty secret is refused, as the built-in schemes refuse it.
    if let Ok(receiver) = Receiver::builder(App).secret("").build() {
        eprintln!("error: an empty secret was accepted: {receiver:?}");
        return ExitCode::FAILURE;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()).to_string();
    let mut answers = Vec::new();
    let deliveries = [
        ("acme-secret", "ship_1", now.clone()),
        ("acme-secret", "ship_1", now.clone()),
        ("forged", "ship_2", now.clone()),
        // Correctly signed, but `+<now>` is not a plain integer: refused.
        ("acme-secret", "ship_3", format!("+{now}")),
    ];
    for (secret, id, timestamp) in deliveries {
        let (headers, body) = acme_delivery(secret, id, &timestamp);
        let outcome = receiver.receive(&headers, &body).await;
        println!("{} {}", outcome.status().as_u16(), outcome.body());
        answers.push(outcome.status().as_u16());
    }
    if answers == [200, 200, 401, 401] {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: expected 200 (processed), 200 (duplicate), 401 (forged), 401 (+timestamp), got {answers:?}");
        ExitCode::FAILURE
    }
}
