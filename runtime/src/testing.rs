//! The test kit: correctly signed deliveries for a provider and secret at a chosen
//! time, so handlers are tested without hand-rolled HMAC.
//!
//! ```
//! use hookroute_runtime::{testing::TestEvent, Groq};
//!
//! let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"}))
//!     .id("evt_1")
//!     .timestamp(1_700_000_000)
//!     .sign("whsec_test");
//! assert!(delivery.headers.contains_key("x-groq-signature"));
//! assert_eq!(delivery.headers["x-groq-timestamp"], "1700000000");
//! ```
//!
//! With the `testing` feature, `conformance` holds the checks every
//! [`IdempotencyStore`](crate::IdempotencyStore) must pass, and `inbox_conformance`
//! those every [`Inbox`](crate::inbox::Inbox) must pass.

#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod inbox_conformance;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use http::HeaderMap;
use serde_json::value::RawValue;

use crate::provider::{unix_seconds, BuiltIn, OutgoingEvent, Sign};
use crate::secret::Secret;

/// A signed delivery: the headers and body a provider would send.
#[derive(Debug, Clone)]
pub struct SignedDelivery {
    /// The signature headers (and any the scheme adds).
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Vec<u8>,
}

impl SignedDelivery {
    /// The headers as `(name, value)` pairs, for HTTP clients that want strings.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect()
    }
}

/// An event to sign for provider `P`: its type and data, an id (a fresh unique one
/// unless set) and a signing time (now unless set).
#[derive(Debug, Clone)]
pub struct TestEvent<P> {
    event_type: String,
    data: Box<RawValue>,
    id: Option<String>,
    timestamp: Option<u64>,
    provider: PhantomData<fn() -> P>,
}

impl<P: Sign> TestEvent<P> {
    /// An event of `event_type` carrying `data`.
    ///
    /// # Panics
    /// If `data` cannot be serialized as JSON (a map with non-string keys).
    pub fn new(event_type: impl Into<String>, data: impl serde::Serialize) -> Self {
        let data = serde_json::value::to_raw_value(&data).expect("test event data must serialize to JSON");
        Self { event_type: event_type.into(), data, id: None, timestamp: None, provider: PhantomData }
    }

    /// Fixes the event id (to test deduplication).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the signing time in unix seconds (to test the replay window).
    #[must_use]
    pub fn timestamp(mut self, unix_seconds: u64) -> Self {
        self.timestamp = Some(unix_seconds);
        self
    }

    /// Builds the body and signs it with `secret`.
    pub fn sign(&self, secret: impl Into<Secret>) -> SignedDelivery {
        let id = self.id.clone().unwrap_or_else(fresh_id);
        let event = OutgoingEvent {
            id: &id,
            event_type: &self.event_type,
            data: &self.data,
            timestamp: self.timestamp.unwrap_or_else(|| unix_seconds(SystemTime::now())),
        };
        let body = P::encode(&event);
        let mut headers = HeaderMap::new();
        P::sign(&secret.into(), &event, &body, &mut headers);
        SignedDelivery { headers, body }
    }
}

/// A delivery of `event_type` carrying `data`, signed now with `secret` as the built-in
/// `provider` signs, under `id` (a fresh unique one if `None`): for tools that choose
/// the provider at run time.
///
/// ```
/// use hookroute_runtime::provider::built_in;
/// use hookroute_runtime::testing::sign_as;
///
/// let github = built_in("github").unwrap();
/// let sample = &github.description().samples[0];
/// let data = serde_json::value::RawValue::from_string(sample.data.to_owned()).unwrap();
/// let delivery = sign_as(github, "dev", sample.event_type, None, &data);
/// assert!(delivery.headers.contains_key(github.description().signature_header));
/// ```
pub fn sign_as(
    provider: &BuiltIn,
    secret: impl Into<Secret>,
    event_type: &str,
    id: Option<&str>,
    data: &RawValue,
) -> SignedDelivery {
    let id = id.map_or_else(fresh_id, str::to_owned);
    let event = OutgoingEvent { id: &id, event_type, data, timestamp: unix_seconds(SystemTime::now()) };
    let body = provider.encode(&event);
    let mut headers = HeaderMap::new();
    provider.sign(&secret.into(), &event, &body, &mut headers);
    SignedDelivery { headers, body }
}

/// Signs a raw `body` for provider `P` at `timestamp`, for bodies built by hand
/// (tampering, bytes that are not UTF-8, envelopes with fields missing).
pub fn sign_raw<P: Sign>(secret: impl Into<Secret>, timestamp: u64, body: &[u8]) -> HeaderMap {
    let id = fresh_id();
    let data = RawValue::NULL;
    let event = OutgoingEvent { id: &id, event_type: "", data, timestamp };
    let mut headers = HeaderMap::new();
    P::sign(&secret.into(), &event, body, &mut headers);
    headers
}

/// A process-unique event id: `evt_test_<time>_<counter>`.
fn fresh_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("evt_test_{nanos:x}_{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
