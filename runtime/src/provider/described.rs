//! What each built-in provider says of itself, for tools: the headers it reads and
//! samples of the events it sends. [`PROVIDERS`] lists them all; the `hookroute`
//! command derives its `providers` table, its samples and its signers from it, and so
//! does `examples/send_event`. A new built-in provider describes itself in its own file
//! (a [`Describe`] impl) and joins the list in `provider/mod.rs`; nothing else lists it.

use http::HeaderMap;

use super::{OutgoingEvent, Sign};
use crate::secret::Secret;

/// How a provider describes itself (see [`Describe`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Description {
    /// The provider's name as people write it: `GitHub`, `CoreWeave`.
    pub label: &'static str,
    /// The header that carries the signature.
    pub signature_header: &'static str,
    /// The signature, for a table: `x-hub-signature-256 (sha256=<hex>)`.
    pub signature: &'static str,
    /// Where the signed timestamp is, or `none (dedup only)`.
    pub timestamp: &'static str,
    /// Where the event id and type are.
    pub id_and_type: &'static str,
    /// Events as the provider sends them, shaped after its published examples and
    /// trimmed to the fields receivers read; the first is the default type.
    pub samples: &'static [Sample],
}

impl Description {
    /// A description.
    ///
    /// # Panics
    /// When `samples` is empty: at compile time, in the `const` it builds.
    #[must_use]
    pub const fn new(
        label: &'static str,
        signature_header: &'static str,
        signature: &'static str,
        timestamp: &'static str,
        id_and_type: &'static str,
        samples: &'static [Sample],
    ) -> Self {
        assert!(!samples.is_empty(), "a provider's description needs a sample");
        Self { label, signature_header, signature, timestamp, id_and_type, samples }
    }
}

/// One sample event: its type and its data as the provider's scheme wraps it (the
/// signer builds the envelope around it).
#[derive(Debug)]
pub struct Sample {
    /// The event type.
    pub event_type: &'static str,
    /// The event's data, as JSON.
    pub data: &'static str,
}

impl Sample {
    /// A sample of `event_type` carrying `data`.
    #[must_use]
    pub const fn new(event_type: &'static str, data: &'static str) -> Self {
        Self { event_type, data }
    }

    /// The data with every `id` field a new one of its kind (a number, or the same
    /// prefix before `_`), different at each call: the next event of this kind. A
    /// provider that does not sign the event id (GitHub, Shopify) is deduplicated on its
    /// body, so only fresh data is a new event there.
    #[must_use]
    pub fn fresh(&self) -> serde_json::Value {
        // Two calls in one microsecond still differ.
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut value: serde_json::Value = serde_json::from_str(self.data).unwrap_or(serde_json::Value::Null);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
        let mut counter = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 1_000;
        new_ids(&mut value, seed, &mut counter);
        value
    }
}

fn new_ids(value: &mut serde_json::Value, seed: u64, counter: &mut u64) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    serde_json::Value::Number(_) if key == "id" => {
                        *counter += 1;
                        *field = (seed % 1_000_000_000_000 * 1000 + *counter).into();
                    }
                    serde_json::Value::String(text) if key == "id" => {
                        *counter += 1;
                        let prefix = text.rsplit_once('_').map_or("", |(prefix, _)| prefix);
                        let suffix = format!("{seed:x}{counter}");
                        *text = if prefix.is_empty() { suffix } else { format!("{prefix}_{suffix}") };
                    }
                    _ => new_ids(field, seed, counter),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| new_ids(item, seed, counter)),
        _ => {}
    }
}

/// A built-in provider's description of itself.
pub trait Describe: Sign {
    /// Its headers and samples.
    const DESCRIPTION: Description;
}

/// A built-in provider as tools use it, chosen by name at run time.
#[derive(Debug)]
pub struct BuiltIn {
    name: &'static str,
    secret_env: &'static str,
    description: &'static Description,
    encode: fn(&OutgoingEvent<'_>) -> Vec<u8>,
    sign: fn(&Secret, &OutgoingEvent<'_>, &[u8], &mut HeaderMap),
}

impl BuiltIn {
    const fn of<P: Describe>() -> Self {
        Self {
            name: P::NAME,
            secret_env: P::SECRET_ENV,
            description: &P::DESCRIPTION,
            encode: P::encode,
            sign: P::sign,
        }
    }

    /// Its name, as `provider = "..."` takes it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The environment variable its secret is read from by default.
    #[must_use]
    pub fn secret_env(&self) -> &'static str {
        self.secret_env
    }

    /// Its headers and samples.
    #[must_use]
    pub fn description(&self) -> &'static Description {
        self.description
    }

    /// Its sample of `event_type`, if it has one.
    #[must_use]
    pub fn sample(&self, event_type: &str) -> Option<&'static Sample> {
        self.description.samples.iter().find(|sample| sample.event_type == event_type)
    }

    /// The body it would send for `event` ([`Sign::encode`]).
    #[must_use]
    pub fn encode(&self, event: &OutgoingEvent<'_>) -> Vec<u8> {
        (self.encode)(event)
    }

    /// Adds to `headers` what signs `body` for `event` ([`Sign::sign`]).
    pub fn sign(&self, secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        (self.sign)(secret, event, body, headers);
    }
}

macro_rules! described {
    ($($name:ident => $ty:ident,)*) => {
        /// Every built-in provider, in [`BUILT_IN`](super::BUILT_IN)'s order.
        pub const PROVIDERS: &[BuiltIn] = &[$(BuiltIn::of::<super::$ty>()),*];
    };
}
crate::__with_built_in_providers!(described);

/// The built-in provider called `name`.
#[must_use]
pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    PROVIDERS.iter().find(|provider| provider.name == name)
}

#[cfg(test)]
mod tests {
    use super::{Sample, PROVIDERS};

    #[test]
    fn a_fresh_sample_has_new_ids_of_the_same_kind_and_the_same_shape() {
        let sample = Sample::new("t", r#"{"id":1,"issue":{"id":"is_abc","title":"t"},"items":[{"id":2}]}"#);
        let (a, b) = (sample.fresh(), sample.fresh());
        assert_ne!(a, b, "two calls, two events");
        assert_ne!(a["id"], 1);
        assert!(a["issue"]["id"].as_str().unwrap().starts_with("is_"));
        assert_ne!(a["issue"]["id"], "is_abc");
        assert_eq!(a["issue"]["title"], "t");
        assert_ne!(a["items"][0]["id"], 2);
    }

    #[test]
    fn every_sample_is_json_and_every_provider_signs_with_its_header() {
        for provider in PROVIDERS {
            for sample in provider.description().samples {
                serde_json::from_str::<serde_json::Value>(sample.data)
                    .unwrap_or_else(|e| panic!("{} {}: {e}", provider.name(), sample.event_type));
            }
            let sample = &provider.description().samples[0];
            let data = serde_json::value::RawValue::from_string(sample.data.to_owned()).unwrap();
            let event = super::OutgoingEvent { id: "evt_1", event_type: sample.event_type, data: &data, timestamp: 1 };
            let body = provider.encode(&event);
            let mut headers = http::HeaderMap::new();
            provider.sign(&"whsec_test".into(), &event, &body, &mut headers);
            assert!(headers.contains_key(provider.description().signature_header), "{}: {headers:?}", provider.name());
        }
    }
}
