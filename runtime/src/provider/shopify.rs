//! Shopify: `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body.
//! <https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook>

use std::borrow::Cow;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::mac::{check_secrets, decode_base64, encode_base64, header_str, hmac, matches_any, Keys};
use super::{
    envelope_header, raw_body, text_header, ConfigError, Envelope, EnvelopeError, OutgoingEvent, Provider,
    ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

/// The header names of one family: webhooks send `X-Shopify-*`, Shopify's newer event
/// subscriptions send the same headers without the `X-`.
struct Names {
    signature: &'static str,
    webhook_id: &'static str,
    event_id: &'static str,
    topic: &'static str,
    triggered_at: &'static str,
}

const WEBHOOKS: Names = Names {
    signature: "x-shopify-hmac-sha256",
    webhook_id: "x-shopify-webhook-id",
    event_id: "x-shopify-event-id",
    topic: "x-shopify-topic",
    triggered_at: "x-shopify-triggered-at",
};

const EVENTS: Names = Names {
    signature: "shopify-hmac-sha256",
    webhook_id: "shopify-webhook-id",
    event_id: "shopify-event-id",
    topic: "shopify-topic",
    triggered_at: "shopify-triggered-at",
};

/// The family a delivery uses, as `@shopify/shopify-api` tells them apart: the
/// unprefixed one when it carries `Shopify-Hmac-Sha256`, else `X-Shopify-*`.
fn names(headers: &HeaderMap) -> &'static Names {
    if headers.contains_key(EVENTS.signature) {
        &EVENTS
    } else {
        &WEBHOOKS
    }
}

/// The shop and API version headers a signer sends, and what it names when not told
/// otherwise: the official library refuses a delivery without them. Verifying reads
/// neither.
const SHOP_DOMAIN: (&str, &str) = ("x-shopify-shop-domain", "hookroute-test.myshopify.com");
const API_VERSION: (&str, &str) = ("x-shopify-api-version", "2026-07");

/// Shopify webhooks.
///
/// - **Signature**: `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body
///   keyed with the app's client secret (`SHOPIFY_WEBHOOK_SECRET`).
/// - **Id**: `X-Shopify-Event-Id` where the delivery has it (shopify.dev names it the
///   key to deduplicate on: one event sent to several subscriptions has one), else
///   `X-Shopify-Webhook-Id`; **type**: `X-Shopify-Topic` (`orders/create`); **data**: the
///   whole body; `X-Shopify-Triggered-At` is kept as `created`.
/// - **Header families**: the same headers without the `X-` prefix
///   (`Shopify-Hmac-Sha256`, `Shopify-Topic`, `Shopify-Webhook-Id`, as Shopify's event
///   subscriptions send them) are read when `Shopify-Hmac-Sha256` is present, as the
///   official library reads them.
/// - **Replay**: Shopify signs no timestamp and no id (`X-Shopify-Webhook-Id` and
///   `X-Shopify-Topic` are plain headers), so a replay is caught only by
///   deduplication: on the id, and on a digest of the topic and the signed body, so
///   that a captured delivery sent again under a fresh id is a duplicate too, for as
///   long as the store remembers it (7 days by default). The topic header may name
///   another topic for the same body: that runs at most once per topic.
pub struct Shopify {
    keys: Keys,
}

impl std::fmt::Debug for Shopify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shopify").field("secrets", &self.keys.len()).finish()
    }
}

impl Shopify {
    /// The header that carries the signature.
    pub const SIGNATURE_HEADER: &'static str = WEBHOOKS.signature;
}

impl Provider for Shopify {
    const NAME: &'static str = "shopify";
    const SECRET_ENV: &'static str = "SHOPIFY_WEBHOOK_SECRET";
    const SIGNS_ID: bool = false;

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        check_secrets(&config, Self::NAME)?;
        Ok(Self { keys: Keys::new(&config.secrets) })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], _now: SystemTime) -> Result<Verified, VerifyError> {
        let given = decode_base64(header_str(headers, names(headers).signature)?)?;
        if bool::from(matches_any(self.keys.macs(&[body]).as_slice(), &given)) {
            Ok(Verified::at(None))
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let names = names(headers);
        let id = match envelope_header(headers, names.event_id) {
            Ok(event_id) if !event_id.is_empty() => event_id,
            _ => envelope_header(headers, names.webhook_id)?,
        };
        let topic = envelope_header(headers, names.topic)?;
        let created = envelope_header(headers, names.triggered_at).ok();
        Ok(Envelope::new(id, topic, Cow::Borrowed(raw_body(body)?))?.created(created))
    }
}

impl Sign for Shopify {
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
        event.data.get().as_bytes().to_vec()
    }

    /// Signs with the `X-Shopify-*` headers, the shop domain and API version included
    /// (the official library requires both); a header already in `headers` is kept, so
    /// a caller names its own shop.
    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        let signature = encode_base64(&hmac(secret.expose(), &[body]));
        headers.insert(
            HeaderName::from_static(WEBHOOKS.signature),
            HeaderValue::try_from(signature).expect("base64 is ASCII"),
        );
        for (header, value) in [(WEBHOOKS.topic, event.event_type), (WEBHOOKS.webhook_id, event.id)] {
            if let Some(value) = text_header(value) {
                headers.insert(HeaderName::from_static(header), value);
            }
        }
        for (header, value) in [SHOP_DOMAIN, API_VERSION] {
            headers.entry(HeaderName::from_static(header)).or_insert(HeaderValue::from_static(value));
        }
    }
}

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for Shopify {
    const DESCRIPTION: super::Description = super::Description::new(
        "Shopify",
        "x-shopify-hmac-sha256",
        "x-shopify-hmac-sha256 (base64)",
        "none (dedup only)",
        "x-shopify-webhook-id / x-shopify-topic",
        &[
            super::Sample::new(
                "orders/create",
                r#"{"id":820982911946154508,"email":"jon@example.com","created_at":"2026-11-23T10:00:00-05:00","total_price":"403.00","currency":"USD","financial_status":"paid","line_items":[{"id":866550311766439020,"title":"IPod Nano - 8GB","quantity":1,"price":"199.00"}]}"#,
            ),
            super::Sample::new(
                "orders/paid",
                r#"{"id":820982911946154508,"email":"jon@example.com","updated_at":"2026-11-23T10:05:00-05:00","total_price":"403.00","currency":"USD","financial_status":"paid"}"#,
            ),
            super::Sample::new(
                "products/update",
                r#"{"id":788032119674292922,"title":"Example T-Shirt","handle":"example-t-shirt","updated_at":"2026-11-23T10:00:00-05:00","variants":[{"id":642667041472713922,"price":"19.99","sku":"example-shirt-s"}]}"#,
            ),
            super::Sample::new(
                "customers/create",
                r#"{"id":706405506930370084,"email":"bob@biller.com","first_name":"Bob","last_name":"Biller","created_at":"2026-11-23T10:00:00-05:00"}"#,
            ),
            super::Sample::new(
                "app/uninstalled",
                r#"{"id":548380009,"name":"Super Toys","email":"super@supertoys.com","domain":"super.myshopify.com"}"#,
            ),
        ],
    );
}
