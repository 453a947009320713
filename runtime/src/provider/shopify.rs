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

const SIGNATURE: &str = "x-shopify-hmac-sha256";
const WEBHOOK_ID: &str = "x-shopify-webhook-id";
const TOPIC: &str = "x-shopify-topic";
const TRIGGERED_AT: &str = "x-shopify-triggered-at";

/// Shopify webhooks.
///
/// - **Signature**: `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw body
///   keyed with the app's client secret (`SHOPIFY_WEBHOOK_SECRET`).
/// - **Id**: `X-Shopify-Webhook-Id`; **type**: `X-Shopify-Topic` (`orders/create`);
///   **data**: the whole body; `X-Shopify-Triggered-At` is kept as `created`.
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
    pub const SIGNATURE_HEADER: &'static str = SIGNATURE;
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
        let given = decode_base64(header_str(headers, SIGNATURE)?)?;
        if bool::from(matches_any(self.keys.macs(&[body]).as_slice(), &given)) {
            Ok(Verified::at(None))
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let id = envelope_header(headers, WEBHOOK_ID)?;
        let topic = envelope_header(headers, TOPIC)?;
        let created = envelope_header(headers, TRIGGERED_AT).ok().map(str::to_owned);
        Ok(Envelope::new(id, topic, Cow::Borrowed(raw_body(body)?))?.created(created))
    }
}

impl Sign for Shopify {
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
        event.data.get().as_bytes().to_vec()
    }

    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        let signature = encode_base64(&hmac(secret.expose(), &[body]));
        headers.insert(HeaderName::from_static(SIGNATURE), HeaderValue::try_from(signature).expect("base64 is ASCII"));
        for (header, value) in [(TOPIC, event.event_type), (WEBHOOK_ID, event.id)] {
            if let Some(value) = text_header(value) {
                headers.insert(HeaderName::from_static(header), value);
            }
        }
    }
}
