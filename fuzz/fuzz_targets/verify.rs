//! Arbitrary headers and bodies against every built-in provider's verifier.
//!
//! - Unsigned: whatever the headers and body, `verify` must not panic and must not
//!   accept (a forged signature passing would need an HMAC collision).
//! - Signed: a delivery signed with the provider's own scheme must pass at its
//!   signing time; with one body byte changed, or verified with another secret, it
//!   must not.
//! - Any verified delivery's envelope must parse or fail cleanly, never panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use hookroute_runtime::provider::{OutgoingEvent, ProviderConfig, Sign};
use hookroute_runtime::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Valid for every scheme (Standard Webhooks decodes the base64 after `whsec_`).
const SECRET: &str = "whsec_ZnV6ei1zZWNyZXQtMDAwMDAwMDA=";
const OTHER: &str = "whsec_b3RoZXItc2VjcmV0LTAwMDAwMDA=";

#[derive(Debug, Arbitrary)]
struct Input {
    provider: u8,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Sign the body properly (then tamper with it) instead of sending raw headers.
    sign: Option<Signed>,
    now: u32,
}

#[derive(Debug, Arbitrary)]
struct Signed {
    id: String,
    event_type: String,
    tamper_at: usize,
    tamper_with: u8,
}

fn scheme<P: Sign>(secret: &str) -> P {
    P::from_config(ProviderConfig { secrets: vec![Secret::from(secret)], tolerance: Duration::from_secs(300) })
        .expect("the fuzz secrets are valid for every scheme")
}

fn check<P: Sign>(input: &Input) {
    let now = UNIX_EPOCH + Duration::from_secs(u64::from(input.now));
    let verifier: P = scheme(SECRET);
    match &input.sign {
        None => {
            let mut headers = HeaderMap::new();
            for (name, value) in &input.headers {
                if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_bytes(value)) {
                    headers.append(name, value);
                }
            }
            let verified = verifier.verify(&headers, &input.body, now);
            assert!(verified.is_err(), "{} accepted an unsigned delivery: {headers:?}", P::NAME);
            let _ = P::envelope(&headers, &input.body);
        }
        Some(signed) => {
            let Ok(data) = serde_json::value::RawValue::from_string(
                serde_json::to_string(&String::from_utf8_lossy(&input.body)).expect("a string serializes"),
            ) else {
                return;
            };
            let event = OutgoingEvent { id: &signed.id, event_type: &signed.event_type, data: &data, timestamp: u64::from(input.now) };
            let body = P::encode(&event);
            let mut headers = HeaderMap::new();
            P::sign(&Secret::from(SECRET), &event, &body, &mut headers);
            // Ids and types that are not valid header values are left out by `sign`:
            // only a delivery that carries its signature must pass.
            let carried = verifier.verify(&headers, &body, now);
            if carried.is_ok() {
                let _ = P::envelope(&headers, &body);
            }
            if headers.len() >= expected_headers(P::NAME) {
                assert!(carried.is_ok(), "{} rejected its own signature: {carried:?}", P::NAME);
            }
            let other: P = scheme(OTHER);
            assert!(other.verify(&headers, &body, now).is_err(), "{} accepted another secret", P::NAME);
            if !body.is_empty() {
                let mut tampered = body.clone();
                let at = signed.tamper_at % tampered.len();
                tampered[at] ^= signed.tamper_with.max(1);
                assert!(verifier.verify(&headers, &tampered, now).is_err(), "{} accepted a tampered body", P::NAME);
            }
        }
    }
}

/// How many headers a scheme's signed delivery carries.
fn expected_headers(name: &str) -> usize {
    match name {
        "stripe" => 1,
        "groq" | "coreweave" | "slack" => 2,
        _ => 3,
    }
}

macro_rules! checks {
    ($($name:ident => $ty:ident,)*) => {
        /// One check per built-in provider, from the runtime's list.
        const CHECKS: &[fn(&Input)] = &[$(check::<hookroute_runtime::provider::$ty>),*];
    };
}
hookroute_runtime::__with_built_in_providers!(checks);

fuzz_target!(|input: Input| {
    CHECKS[usize::from(input.provider) % CHECKS.len()](&input);
});
