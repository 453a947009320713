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
//! receiver, deduplication, routing, the typed enum. This example verifies with the
//! runtime's own building blocks (`hmac`, `subtle`), then sends itself two deliveries.

use std::borrow::Cow;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use hookroute::provider::{ConfigError, Envelope, EnvelopeError, ProviderConfig, Verified};
use hookroute::{webhook_handlers, EventMeta, HandlerError, Provider, Receiver, Secret, VerifyError};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Acme's scheme: its secrets and replay window.
struct AcmeScheme {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers.get(name).ok_or(VerifyError::MissingHeader(name))?.to_str().map_err(|_| VerifyError::InvalidHeader(name))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

impl Provider for AcmeScheme {
    const NAME: &'static str = "acme";
    const SECRET_ENV: &'static str = "ACME_WEBHOOK_SECRET";

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        if config.secrets.is_empty() {
            return Err(ConfigError::NoSecret { provider: Self::NAME });
        }
        Ok(Self { secrets: config.secrets, tolerance: config.tolerance })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let timestamp_text = header(headers, "x-acme-timestamp")?;
        let timestamp: u64 = timestamp_text.parse().map_err(|_| VerifyError::MalformedTimestamp("x-acme-timestamp"))?;
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(if timestamp < now {
                VerifyError::TimestampTooOld { age_secs: now - timestamp, tolerance_secs: self.tolerance.as_secs() }
            } else {
                VerifyError::TimestampInFuture { ahead_secs: timestamp - now, tolerance_secs: self.tolerance.as_secs() }
            });
        }
        let given = hex::decode(header(headers, "x-acme-signature")?).map_err(|_| VerifyError::SignatureNotHex)?;
        // Compare against every secret, in constant time, with no early exit.
        let matched = self.secrets.iter().fold(subtle::Choice::from(0), |matched, secret| {
            matched | mac(secret.expose(), timestamp_text, body).ct_eq(&given)
        });
        if bool::from(matched) {
            Ok(Verified::at(Some(timestamp)))
        } else {
            Err(VerifyError::SignatureMismatch)
        }
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

/// What Acme would send.
fn acme_delivery(secret: &str, id: &str) -> (HeaderMap, Vec<u8>) {
    let body = br#"{"tracking":"1Z999"}"#.to_vec();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()).to_string();
    let mut headers = HeaderMap::new();
    headers
        .insert("x-acme-signature", HeaderValue::from_str(&hex::encode(mac(secret.as_bytes(), &now, &body))).unwrap());
    headers.insert("x-acme-timestamp", HeaderValue::from_str(&now).unwrap());
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
    let mut answers = Vec::new();
    for (secret, id) in [("acme-secret", "ship_1"), ("acme-secret", "ship_1"), ("forged", "ship_2")] {
        let (headers, body) = acme_delivery(secret, id);
        let outcome = receiver.receive(&headers, &body).await;
        println!("{} {}", outcome.status().as_u16(), outcome.body());
        answers.push(outcome.status().as_u16());
    }
    if answers == [200, 200, 401] {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: expected 200 (processed), 200 (duplicate), 401 (forged), got {answers:?}");
        ExitCode::FAILURE
    }
}
