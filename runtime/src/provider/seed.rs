//! The seeds' scheme, shared by `groq` and `coreweave`:
//! `x-<provider>-signature` is the lowercase hex HMAC-SHA256 of
//! `"<timestamp>.<raw body>"`, `x-<provider>-timestamp` is unix seconds.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use super::{
    check_window, parse_timestamp, ConfigError, Envelope, EnvelopeError, JsonEnvelope, OutgoingEvent, Provider,
    ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The length of an HMAC-SHA256 tag in bytes.
const MAC_LEN: usize = 32;

/// Header names of one seed provider.
struct SeedHeaders {
    signature: &'static str,
    timestamp: &'static str,
}

/// Secrets and window, checked the same way for every seed provider.
struct SeedVerifier {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl SeedVerifier {
    fn new(config: ProviderConfig, provider: &'static str) -> Result<Self, ConfigError> {
        if config.secrets.is_empty() {
            return Err(ConfigError::NoSecret { provider });
        }
        if config.secrets.iter().any(Secret::is_empty) {
            return Err(ConfigError::EmptySecret { provider });
        }
        Ok(Self { secrets: config.secrets, tolerance: config.tolerance })
    }

    fn verify(
        &self,
        names: &SeedHeaders,
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

        let macs: Vec<[u8; MAC_LEN]> =
            self.secrets.iter().map(|secret| mac(secret, timestamp_text.as_bytes(), body)).collect();
        let mut first_error = None;
        let mut matched = Choice::from(0);
        for value in signatures {
            match decode_signature(value, names.signature) {
                // Every secret is compared, with no early exit.
                Ok(given) => {
                    for expected in &macs {
                        matched |= expected.ct_eq(&given);
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if bool::from(matched) {
            Ok(Verified::at(Some(timestamp)))
        } else {
            Err(first_error.unwrap_or(VerifyError::SignatureMismatch))
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers.get(name).ok_or(VerifyError::MissingHeader(name))?.to_str().map_err(|_| VerifyError::InvalidHeader(name))
}

fn decode_signature(value: &HeaderValue, header: &'static str) -> Result<[u8; MAC_LEN], VerifyError> {
    let text = value.to_str().map_err(|_| VerifyError::InvalidHeader(header))?;
    if text.len() % 2 == 1 {
        return Err(VerifyError::SignatureOddLength);
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VerifyError::SignatureNotHex);
    }
    let mut out = [0u8; MAC_LEN];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| VerifyError::SignatureLength { expected: MAC_LEN, found: text.len() / 2 })?;
    Ok(out)
}

/// HMAC-SHA256 of `"<timestamp>.<body>"`, fed in parts so the body is never copied.
fn mac(secret: &Secret, timestamp: &[u8], body: &[u8]) -> [u8; MAC_LEN] {
    let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("HMAC accepts keys of any length");
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn sign_seed(names: &SeedHeaders, secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
    let timestamp = event.timestamp.to_string();
    let signature = hex::encode(mac(secret, timestamp.as_bytes(), body));
    // Both values are ASCII digits and hex digits, always valid header values.
    headers.insert(HeaderName::from_static(names.timestamp), HeaderValue::from(event.timestamp));
    headers.insert(
        HeaderName::from_static(names.signature),
        HeaderValue::try_from(signature).expect("hex is a valid header value"),
    );
}

fn encode_seed(event: &OutgoingEvent<'_>) -> Vec<u8> {
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

macro_rules! seed_provider {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $signature:literal, $timestamp:literal, $env:literal) => {
        $(#[$doc])*
        pub struct $ty(SeedVerifier);

        impl $ty {
            /// The header that carries the hex signature.
            pub const SIGNATURE_HEADER: &'static str = $signature;
            /// The header that carries the unix-seconds timestamp.
            pub const TIMESTAMP_HEADER: &'static str = $timestamp;
            const HEADERS: SeedHeaders = SeedHeaders { signature: $signature, timestamp: $timestamp };
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("secrets", &self.0.secrets.len())
                    .field("tolerance", &self.0.tolerance)
                    .finish()
            }
        }

        impl Provider for $ty {
            const NAME: &'static str = $name;
            const SECRET_ENV: &'static str = $env;

            fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
                SeedVerifier::new(config, $name).map(Self)
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
                encode_seed(event)
            }

            fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
                sign_seed(&Self::HEADERS, secret, event, body, headers);
            }
        }
    };
}

seed_provider!(
    /// Groq: `x-groq-signature` (hex HMAC-SHA256 of `"<timestamp>.<body>"`) and
    /// `x-groq-timestamp` (unix seconds); secret in `GROQ_WEBHOOK_SECRET`.
    Groq,
    "groq",
    "x-groq-signature",
    "x-groq-timestamp",
    "GROQ_WEBHOOK_SECRET"
);

seed_provider!(
    /// `CoreWeave`: `x-coreweave-signature` (hex HMAC-SHA256 of `"<timestamp>.<body>"`)
    /// and `x-coreweave-timestamp` (unix seconds); secret in `COREWEAVE_WEBHOOK_SECRET`.
    Coreweave,
    "coreweave",
    "x-coreweave-signature",
    "x-coreweave-timestamp",
    "COREWEAVE_WEBHOOK_SECRET"
);
