//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body.
//! <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>

use std::borrow::Cow;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::mac::{check_secrets, decode_hex, header_str, hmac, matches_any, Keys};
use super::{
    envelope_header, raw_body, text_header, ConfigError, Envelope, EnvelopeError, OutgoingEvent, Provider,
    ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

const SIGNATURE: &str = "x-hub-signature-256";
const EVENT: &str = "x-github-event";
const DELIVERY: &str = "x-github-delivery";

/// GitHub webhooks (repositories, organizations, Apps).
///
/// - **Signature**: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body
///   with the webhook's secret (`GITHUB_WEBHOOK_SECRET`).
/// - **Id**: `X-GitHub-Delivery` (a redelivery keeps it).
/// - **Type**: `X-GitHub-Event`, and with the body's `action`, `<event>.<action>`, as
///   octokit names them: a delivery of `issues` with `"action": "opened"` has type
///   `issues.opened` and group `issues`, so `#[event("issues.opened")]` takes it, and
///   `#[event("issues")]` takes every `issues` delivery no more specific handler takes.
/// - **Data**: the whole body.
/// - **Replay**: GitHub signs no timestamp and no id (`X-GitHub-Delivery` and
///   `X-GitHub-Event` are plain headers), so a replay is caught only by deduplication:
///   on the id, and on a digest of the event name and the signed body, so that a
///   captured delivery sent again under a fresh id is a duplicate too, for as long as
///   the store remembers it (7 days by default). The header may name another event
///   for the same body: that runs at most once per event name, and only if the body
///   fits that handler's type.
pub struct GitHub {
    keys: Keys,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").field("secrets", &self.keys.len()).finish()
    }
}

impl GitHub {
    /// The header that carries the signature.
    pub const SIGNATURE_HEADER: &'static str = SIGNATURE;
}

#[derive(Deserialize)]
struct Action<'a> {
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
}

impl Provider for GitHub {
    const NAME: &'static str = "github";
    const SECRET_ENV: &'static str = "GITHUB_WEBHOOK_SECRET";
    const SIGNS_ID: bool = false;

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        check_secrets(&config, Self::NAME)?;
        Ok(Self { keys: Keys::new(&config.secrets) })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], _now: SystemTime) -> Result<Verified, VerifyError> {
        let value = header_str(headers, SIGNATURE)?;
        let hex = value.strip_prefix("sha256=").ok_or(VerifyError::MalformedHeader(SIGNATURE))?;
        let given = decode_hex(hex)?;
        if bool::from(matches_any(self.keys.macs(&[body]).as_slice(), &given)) {
            Ok(Verified::at(None))
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let id = envelope_header(headers, DELIVERY)?;
        let event = envelope_header(headers, EVENT)?;
        // An event name, never `issues.opened`: the action comes from the signed body
        // only, so a re-labelled header cannot route a body to another action's handler.
        if !event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(EnvelopeError::InvalidHeader { header: EVENT, expected: "a GitHub event name (a-z and _)" });
        }
        let data = raw_body(body)?;
        let action: Action<'_> = serde_json::from_str(data.get()).unwrap_or(Action { action: None });
        match action.action {
            Some(action) if !action.is_empty() => {
                Ok(Envelope::new(id, format!("{event}.{action}"), Cow::Borrowed(data))?.group(event))
            }
            _ => Envelope::new(id, event, Cow::Borrowed(data)),
        }
    }
}

impl Sign for GitHub {
    /// The data, with `action` set from the type's part after the first `.`.
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
        let mut data: serde_json::Value = serde_json::from_str(event.data.get()).unwrap_or_default();
        if let (Some((_, action)), Some(object)) = (event.event_type.split_once('.'), data.as_object_mut()) {
            object.entry("action").or_insert_with(|| action.into());
        }
        serde_json::to_vec(&data).expect("a JSON value always serializes")
    }

    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        let name = event.event_type.split_once('.').map_or(event.event_type, |(name, _)| name);
        let signature = format!("sha256={}", hex::encode(hmac(secret.expose(), &[body])));
        headers.insert(HeaderName::from_static(SIGNATURE), HeaderValue::try_from(signature).expect("hex is ASCII"));
        for (header, value) in [(EVENT, name), (DELIVERY, event.id)] {
            if let Some(value) = text_header(value) {
                headers.insert(HeaderName::from_static(header), value);
            }
        }
    }
}
