//! The seeds' signature scheme (`groq`, `coreweave`), through the public API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookroute::provider::ProviderConfig;
use hookroute::testing::{sign_raw, TestEvent};
use hookroute::{ConfigError, Coreweave, Groq, Provider, Secret, VerifyError};
use http::{HeaderMap, HeaderValue};

const SECRET: &str = "whsec_groq_test_secret";
const NOW: u64 = 1_800_000_000;
const BODY: &[u8] = br#"{"id":"evt_1","type":"resource.created","data":{"id":"r1"}}"#;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn groq(secrets: &[&str]) -> Groq {
    Groq::from_config(ProviderConfig {
        secrets: secrets.iter().map(|s| Secret::from(*s)).collect(),
        tolerance: Duration::from_secs(300),
    })
    .unwrap()
}

fn verify(headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
    groq(&[SECRET]).verify(headers, body, now()).map(|_| ())
}

fn with_header(mut headers: HeaderMap, name: &'static str, value: &str) -> HeaderMap {
    headers.insert(name, HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn a_valid_signature_passes_and_reports_its_timestamp() {
    let headers = sign_raw::<Groq>(SECRET, NOW, BODY);
    let verified = groq(&[SECRET]).verify(&headers, BODY, now()).unwrap();
    assert_eq!(verified.timestamp, Some(NOW));
}

#[test]
fn the_signature_is_lowercase_hex_hmac_sha256_of_timestamp_dot_body() {
    // Computed independently: printf '1800000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_groq_test_secret
    let headers = sign_raw::<Groq>(SECRET, NOW, br#"{"a":1}"#);
    assert_eq!(headers["x-groq-timestamp"], "1800000000");
    assert_eq!(headers["x-groq-signature"], "d2bc29bd19f4f7576966a2b9706f6c6d66b75a02f56bc0df6b54e7f6734b87ae");
}

#[test]
fn a_wrong_secret_is_a_mismatch() {
    let headers = sign_raw::<Groq>("another-secret", NOW, BODY);
    assert_eq!(verify(&headers, BODY), Err(VerifyError::SignatureMismatch));
}

#[test]
fn a_tampered_body_is_a_mismatch() {
    let headers = sign_raw::<Groq>(SECRET, NOW, BODY);
    let tampered = BODY.to_vec().into_iter().map(|b| if b == b'1' { b'2' } else { b }).collect::<Vec<_>>();
    assert_eq!(verify(&headers, &tampered), Err(VerifyError::SignatureMismatch));
    // One byte more at the end is tampering too.
    let mut longer = BODY.to_vec();
    longer.push(b' ');
    assert_eq!(verify(&headers, &longer), Err(VerifyError::SignatureMismatch));
}

#[test]
fn a_signed_timestamp_cannot_be_swapped() {
    let headers = sign_raw::<Groq>(SECRET, NOW, BODY);
    let headers = with_header(headers, "x-groq-timestamp", &(NOW - 1).to_string());
    assert_eq!(verify(&headers, BODY), Err(VerifyError::SignatureMismatch));
}

#[test]
fn a_stale_timestamp_is_rejected_even_with_a_valid_signature() {
    let headers = sign_raw::<Groq>(SECRET, NOW - 301, BODY);
    assert_eq!(verify(&headers, BODY), Err(VerifyError::TimestampTooOld { age_secs: 301, tolerance_secs: 300 }));
    let headers = sign_raw::<Groq>(SECRET, NOW - 300, BODY);
    assert_eq!(verify(&headers, BODY), Ok(()));
}

#[test]
fn a_future_timestamp_is_rejected_even_with_a_valid_signature() {
    let headers = sign_raw::<Groq>(SECRET, NOW + 301, BODY);
    assert_eq!(verify(&headers, BODY), Err(VerifyError::TimestampInFuture { ahead_secs: 301, tolerance_secs: 300 }));
    let headers = sign_raw::<Groq>(SECRET, NOW + 300, BODY);
    assert_eq!(verify(&headers, BODY), Ok(()));
}

#[test]
fn timestamps_that_are_not_plain_non_negative_integers_are_malformed() {
    for bad in ["NaN", "abc", "-1", "-300", "1.8e9", "1800000000.5", "+1800000000", "0x6B49D200", ""] {
        let headers = with_header(sign_raw::<Groq>(SECRET, NOW, BODY), "x-groq-timestamp", bad);
        assert_eq!(verify(&headers, BODY), Err(VerifyError::MalformedTimestamp("x-groq-timestamp")), "{bad:?}");
    }
}

#[test]
fn huge_timestamps_are_rejected_without_overflow() {
    // Beyond u64: malformed.
    let headers = with_header(sign_raw::<Groq>(SECRET, NOW, BODY), "x-groq-timestamp", "99999999999999999999999");
    assert_eq!(verify(&headers, BODY), Err(VerifyError::MalformedTimestamp("x-groq-timestamp")));
    // Within u64 but absurd: far in the future, even correctly signed.
    let headers = sign_raw::<Groq>(SECRET, u64::MAX, BODY);
    assert_eq!(
        verify(&headers, BODY),
        Err(VerifyError::TimestampInFuture { ahead_secs: u64::MAX - NOW, tolerance_secs: 300 })
    );
}

#[test]
fn missing_headers_are_named() {
    let signed = sign_raw::<Groq>(SECRET, NOW, BODY);
    let mut headers = signed.clone();
    headers.remove("x-groq-signature");
    assert_eq!(verify(&headers, BODY), Err(VerifyError::MissingHeader("x-groq-signature")));
    let mut headers = signed;
    headers.remove("x-groq-timestamp");
    assert_eq!(verify(&headers, BODY), Err(VerifyError::MissingHeader("x-groq-timestamp")));
    assert_eq!(verify(&HeaderMap::new(), BODY), Err(VerifyError::MissingHeader("x-groq-timestamp")));
}

#[test]
fn malformed_signatures_are_clean_errors() {
    let signed = sign_raw::<Groq>(SECRET, NOW, BODY);
    let good = signed["x-groq-signature"].to_str().unwrap().to_owned();
    let cases = [
        (&good[1..], VerifyError::SignatureOddLength),
        (&format!("zz{}", &good[2..]) as &str, VerifyError::SignatureNotHex),
        (&good[..32], VerifyError::SignatureLength { expected: 32, found: 16 }),
        (&format!("{good}00") as &str, VerifyError::SignatureLength { expected: 32, found: 33 }),
        ("", VerifyError::SignatureLength { expected: 32, found: 0 }),
        ("sha256=deadbeef0", VerifyError::SignatureNotHex),
    ];
    for (signature, expected) in cases {
        let headers = with_header(signed.clone(), "x-groq-signature", signature);
        assert_eq!(verify(&headers, BODY), Err(expected), "{signature:?}");
    }
}

#[test]
fn a_non_ascii_header_is_rejected_not_panicked_on() {
    let mut headers = sign_raw::<Groq>(SECRET, NOW, BODY);
    headers.insert("x-groq-signature", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    assert_eq!(verify(&headers, BODY), Err(VerifyError::InvalidHeader("x-groq-signature")));
}

#[test]
fn uppercase_hex_is_the_same_signature() {
    let signed = sign_raw::<Groq>(SECRET, NOW, BODY);
    let upper = signed["x-groq-signature"].to_str().unwrap().to_uppercase();
    assert_eq!(verify(&with_header(signed, "x-groq-signature", &upper), BODY), Ok(()));
}

#[test]
fn a_body_that_is_not_utf8_is_signed_over_its_raw_bytes() {
    let body = b"\xff\x00\xfe binary \x80";
    let headers = sign_raw::<Groq>(SECRET, NOW, body);
    assert_eq!(verify(&headers, body), Ok(()));
    assert_eq!(verify(&headers, b"\xff\x00\xfe binary \x81"), Err(VerifyError::SignatureMismatch));
}

#[test]
fn rotation_accepts_any_configured_secret() {
    let provider = groq(&["old-secret", "new-secret"]);
    for secret in ["old-secret", "new-secret"] {
        let headers = sign_raw::<Groq>(secret, NOW, BODY);
        assert!(provider.verify(&headers, BODY, now()).is_ok(), "{secret}");
    }
    let headers = sign_raw::<Groq>("retired-secret", NOW, BODY);
    assert_eq!(provider.verify(&headers, BODY, now()), Err(VerifyError::SignatureMismatch));
}

#[test]
fn one_valid_signature_among_several_headers_passes() {
    let good = sign_raw::<Groq>(SECRET, NOW, BODY);
    let mut headers = sign_raw::<Groq>("wrong", NOW, BODY);
    headers.append("x-groq-signature", good["x-groq-signature"].clone());
    assert_eq!(verify(&headers, BODY), Ok(()));
}

#[test]
fn providers_do_not_accept_each_others_headers() {
    let headers = sign_raw::<Coreweave>(SECRET, NOW, BODY);
    assert_eq!(verify(&headers, BODY), Err(VerifyError::MissingHeader("x-groq-timestamp")));
    let coreweave = Coreweave::from_config(ProviderConfig {
        secrets: vec![Secret::from(SECRET)],
        tolerance: Duration::from_secs(300),
    })
    .unwrap();
    assert!(coreweave.verify(&headers, BODY, now()).is_ok());
}

#[test]
fn the_tolerance_is_configurable() {
    let strict =
        Groq::from_config(ProviderConfig { secrets: vec![Secret::from(SECRET)], tolerance: Duration::from_secs(10) })
            .unwrap();
    let headers = sign_raw::<Groq>(SECRET, NOW - 11, BODY);
    assert_eq!(
        strict.verify(&headers, BODY, now()),
        Err(VerifyError::TimestampTooOld { age_secs: 11, tolerance_secs: 10 })
    );
}

#[test]
fn empty_or_missing_secrets_are_configuration_errors() {
    let none = Groq::from_config(ProviderConfig { secrets: vec![], tolerance: Duration::from_secs(300) });
    assert_eq!(none.unwrap_err(), ConfigError::NoSecret { provider: "groq" });
    let empty =
        Groq::from_config(ProviderConfig { secrets: vec![Secret::from("")], tolerance: Duration::from_secs(300) });
    assert_eq!(empty.unwrap_err(), ConfigError::EmptySecret { provider: "groq" });
}

#[test]
fn the_test_kit_signs_what_the_verifier_accepts() {
    let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).id("evt_9").sign(SECRET);
    let verified = groq(&[SECRET]).verify(&delivery.headers, &delivery.body, SystemTime::now());
    assert!(verified.is_ok(), "{verified:?}");
    let body: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(body["id"], "evt_9");
    assert_eq!(body["type"], "resource.created");
    assert_eq!(body["data"]["id"], "r1");
}

#[test]
fn a_provider_never_shows_its_secrets() {
    let shown = format!("{:?}", groq(&["hunter2-secret"]));
    assert!(!shown.contains("hunter2"), "{shown}");
}
