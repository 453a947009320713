//! The scheme of `groq` and `coreweave` (one, under each provider's header names):
//! `x-<provider>-signature` is the lowercase hex HMAC-SHA256 of
//! `"<timestamp>.<raw body>"`, `x-<provider>-timestamp` is unix seconds.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::mac::{check_any, check_secrets, decode_hex, header_str, hmac, Keys, MAC_LEN};
use super::{
    check_window, parse_timestamp, ConfigError, Envelope, EnvelopeError, JsonEnvelope, OutgoingEvent, Provider,
    ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

/// Header names of one of the two providers.
struct SchemeHeaders {
    signature: &'static str,
    timestamp: &'static str,
}

/// Secrets and window, checked the same way for both providers.
struct SchemeVerifier {
    keys: Keys,
    tolerance: Duration,
}

impl SchemeVerifier {
    fn new(config: &ProviderConfig, provider: &'static str) -> Result<Self, ConfigError> {
        check_secrets(config, provider)?;
        Ok(Self { keys: Keys::new(&config.secrets), tolerance: config.tolerance })
    }

    fn verify(
        &self,
        names: &SchemeHeaders,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        let timestamp_text = header_str(headers, names.timestamp)?;
        let mut signatures = headers.get_all(names.signature).iter().peekable();
        if signatures.peek().is_none() {
            return Err(VerifyError::MissingHeader(names.signature));
        }
        let timestamp = parse_timestamp(timestamp_text, names.timestamp)?;
        check_window(timestamp, now, self.tolerance)?;

        let macs = self.keys.macs(&[timestamp_text.as_bytes(), b".", body]);
        check_any(macs.as_slice(), signatures.map(|value| decode_signature(value, names.signature)))?;
        Ok(Verified::at(Some(timestamp)))
    }
}

fn decode_signature(value: &HeaderValue, header: &'static str) -> Result<[u8; MAC_LEN], VerifyError> {
    decode_hex(value.to_str().map_err(|_| VerifyError::InvalidHeader(header))?)
}

/// HMAC-SHA256 of `"<timestamp>.<body>"`, fed in parts so the body is never copied.
fn mac(secret: &Secret, timestamp: &[u8], body: &[u8]) -> [u8; MAC_LEN] {
    hmac(secret.expose(), &[timestamp, b".", body])
}

fn sign_timestamped(
    names: &SchemeHeaders,
    secret: &Secret,
    event: &OutgoingEvent<'_>,
    body: &[u8],
    headers: &mut HeaderMap,
) {
    let timestamp = event.timestamp.to_string();
    let signature = hex::encode(mac(secret, timestamp.as_bytes(), body));
    // Both values are ASCII digits and hex digits, always valid header values.
    headers.insert(HeaderName::from_static(names.timestamp), HeaderValue::from(event.timestamp));
    headers.insert(
        HeaderName::from_static(names.signature),
        HeaderValue::try_from(signature).expect("hex is a valid header value"),
    );
}

fn encode_body(event: &OutgoingEvent<'_>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        created: u64,
        data: &'a serde_json::value::RawValue,
    }
    serde_json::to_vec(&Body { id: event.id, event_type: event.event_type, created: event.timestamp, data: event.data })
        .expect("an envelope of strings, a number and raw JSON always serializes")
}

macro_rules! timestamped_provider {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $signature:literal, $timestamp:literal, $env:literal) => {
        $(#[$doc])*
        pub struct $ty(SchemeVerifier);

        impl $ty {
            /// The header that carries the hex signature.
            pub const SIGNATURE_HEADER: &'static str = $signature;
            /// The header that carries the unix-seconds timestamp.
            pub const TIMESTAMP_HEADER: &'static str = $timestamp;
            const HEADERS: SchemeHeaders = SchemeHeaders { signature: $signature, timestamp: $timestamp };
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("secrets", &self.0.keys.len())
                    .field("tolerance", &self.0.tolerance)
                    .finish()
            }
        }

        impl Provider for $ty {
            const NAME: &'static str = $name;
            const SECRET_ENV: &'static str = $env;

            fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
                SchemeVerifier::new(&config, $name).map(Self)
            }

            fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
                self.0.verify(&Self::HEADERS, headers, body, now)
            }

            fn envelope<'a>(_headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
                JsonEnvelope::parse(body)
            }
        }

        impl Sign for $ty {
            fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
                encode_body(event)
            }

            fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
                sign_timestamped(&Self::HEADERS, secret, event, body, headers);
            }
        }
    };
}

timestamped_provider!(
    /// Groq: `x-groq-signature` (hex HMAC-SHA256 of `"<timestamp>.<body>"`) and
    /// `x-groq-timestamp` (unix seconds); secret in `GROQ_WEBHOOK_SECRET`.
    Groq,
    "groq",
    "x-groq-signature",
    "x-groq-timestamp",
    "GROQ_WEBHOOK_SECRET"
);

timestamped_provider!(
    /// `CoreWeave`: `x-coreweave-signature` (hex HMAC-SHA256 of `"<timestamp>.<body>"`)
    /// and `x-coreweave-timestamp` (unix seconds); secret in `COREWEAVE_WEBHOOK_SECRET`.
    Coreweave,
    "coreweave",
    "x-coreweave-signature",
    "x-coreweave-timestamp",
    "COREWEAVE_WEBHOOK_SECRET"
);

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for Groq {
    const DESCRIPTION: super::Description = super::Description::new(
        "Groq",
        "x-groq-signature",
        "x-groq-signature (hex)",
        "x-groq-timestamp",
        "body id / type",
        &[
            super::Sample::new("resource.created", r#"{"id":"res_01jq8f3k2m","name":"batch-embeddings"}"#),
            super::Sample::new("resource.updated", r#"{"id":"res_01jq8f3k2m","name":"batch-embeddings-v2"}"#),
            super::Sample::new("resource.deleted", r#"{"id":"res_01jq8f3k2m"}"#),
        ],
    );
}

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for Coreweave {
    const DESCRIPTION: super::Description = super::Description::new(
        "CoreWeave",
        "x-coreweave-signature",
        "x-coreweave-signature (hex)",
        "x-coreweave-timestamp",
        "body id / type",
        &[
            super::Sample::new("resource.created", r#"{"id":"res_7f3c9a","name":"gpu-node-pool"}"#),
            super::Sample::new("resource.updated", r#"{"id":"res_7f3c9a","name":"gpu-node-pool-a100"}"#),
            super::Sample::new("resource.deleted", r#"{"id":"res_7f3c9a"}"#),
        ],
    );
}
