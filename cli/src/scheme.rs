//! Every built-in scheme behind one object-safe face, chosen by name at run time.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use hookroute_runtime::provider::{OutgoingEvent, ProviderConfig, Sign, BUILT_IN};
use hookroute_runtime::{Secret, VerifyError};
use http::HeaderMap;
use serde_json::value::RawValue;

/// What the command does with a scheme.
pub(crate) trait Scheme: Send + Sync {
    fn name(&self) -> &'static str;
    fn secret_env(&self) -> &'static str;
    /// The body the provider would send for an event.
    fn encode(&self, id: &str, event_type: &str, data: &RawValue, timestamp: u64) -> Vec<u8>;
    /// The headers that sign `body`.
    fn sign(&self, secret: &Secret, id: &str, event_type: &str, timestamp: u64, body: &[u8]) -> HeaderMap;
    /// Checks a delivery with one secret.
    fn verify(
        &self,
        secret: Secret,
        tolerance: Duration,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Option<u64>, String>;
}

/// A runtime provider (`hookroute_runtime::provider::Stripe`, …) as the CLI's [`Scheme`].
struct BuiltIn<P>(PhantomData<P>);

impl<P: Sign> Scheme for BuiltIn<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn secret_env(&self) -> &'static str {
        P::SECRET_ENV
    }

    fn encode(&self, id: &str, event_type: &str, data: &RawValue, timestamp: u64) -> Vec<u8> {
        P::encode(&OutgoingEvent { id, event_type, data, timestamp })
    }

    fn sign(&self, secret: &Secret, id: &str, event_type: &str, timestamp: u64, body: &[u8]) -> HeaderMap {
        let data = RawValue::NULL;
        let mut headers = HeaderMap::new();
        P::sign(secret, &OutgoingEvent { id, event_type, data, timestamp }, body, &mut headers);
        headers
    }

    fn verify(
        &self,
        secret: Secret,
        tolerance: Duration,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Option<u64>, String> {
        let scheme = P::from_config(ProviderConfig { secrets: vec![secret], tolerance }).map_err(|e| e.to_string())?;
        scheme.verify(headers, body, now).map(|verified| verified.timestamp).map_err(|error| explain(&error))
    }
}

/// The reason, in the words a person debugging a capture needs.
fn explain(error: &VerifyError) -> String {
    match error {
        VerifyError::SignatureMismatch => "no signature matched: wrong secret, or the body was changed".to_owned(),
        other => other.to_string(),
    }
}

macro_rules! by_name {
    ($($name:ident => $ty:ident,)*) => {
        /// The scheme called `name`.
        pub(crate) fn by_name(name: &str) -> Option<Box<dyn Scheme>> {
            match name {
                $(stringify!($name) => Some(Box::new(BuiltIn::<hookroute_runtime::provider::$ty>(PhantomData))),)*
                _ => None,
            }
        }
    };
}
hookroute_runtime::__with_built_in_providers!(by_name);

/// `--provider`'s help, from the runtime's list of built-in providers.
pub(crate) fn provider_help() -> String {
    format!("The scheme: {}.", names())
}

/// `groq, coreweave, ...`, for error messages.
pub(crate) fn names() -> String {
    BUILT_IN.join(", ")
}

#[cfg(test)]
mod tests {
    use super::by_name;

    /// Every built-in provider resolves to its scheme.
    #[test]
    fn every_built_in_provider_has_a_scheme() {
        for name in hookroute_runtime::provider::BUILT_IN {
            assert_eq!(by_name(name).map(|scheme| scheme.name()), Some(*name));
        }
    }
}
