//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body.
//! <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>

use std::borrow::Cow;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::mac::{check_secrets, decode_hex, header_str, hmac, matches_any, Keys};
use super::{
    envelope_header, raw_body, text_header, ConfigError, Envelope, EnvelopeError, OutgoingEvent, Provider,
    ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

const SIGNATURE: &str = "x-hub-signature-256";
const EVENT: &str = "x-github-event";
const DELIVERY: &str = "x-github-delivery";
/// The content type of a webhook configured as `form` (the REST API's default): the
/// body is `payload=<the JSON, percent-encoded>`.
const FORM: &str = "application/x-www-form-urlencoded";

/// GitHub webhooks (repositories, organizations, Apps).
///
/// - **Signature**: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body
///   with the webhook's secret (`GITHUB_WEBHOOK_SECRET`).
/// - **Id**: `X-GitHub-Delivery` (a redelivery keeps it).
/// - **Type**: `X-GitHub-Event`, and with the body's `action`, `<event>.<action>`, as
///   octokit names them: a delivery of `issues` with `"action": "opened"` has type
///   `issues.opened` and group `issues`, so `#[event("issues.opened")]` takes it, and
///   `#[event("issues")]` takes every `issues` delivery no more specific handler takes.
///   An event name is lowercase ASCII letters, digits and `_` (`projects_v2_item`).
/// - **Data**: the whole body, for a webhook whose content type is `json`. One whose
///   content type is `form` (`application/x-www-form-urlencoded`, the REST API's
///   default) is verified over the form body as sent, and its data is the JSON in the
///   form's `payload` field.
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
        if !is_event_name(event) {
            return Err(EnvelopeError::invalid_header(EVENT, event, "a GitHub event name (a-z, 0-9 and _)", id));
        }
        let data = if is_form(headers) { Cow::Owned(form_payload(body)?) } else { Cow::Borrowed(raw_body(body)?) };
        let action: Action<'_> = serde_json::from_str(data.get()).unwrap_or(Action { action: None });
        let action = action.action.filter(|action| !action.is_empty()).map(|action| format!("{event}.{action}"));
        match action {
            Some(event_type) => Ok(Envelope::new(id, event_type, data)?.group(event)),
            None => Envelope::new(id, event, data),
        }
    }
}

/// Whether `name` can be a GitHub event name: lowercase ASCII letters, digits and `_`,
/// starting with a letter (`issues`, `projects_v2_item`).
fn is_event_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether the delivery is form-encoded (a webhook whose content type is `form`).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM))
}

/// The JSON in a form body's `payload` field.
fn form_payload(body: &[u8]) -> Result<Box<RawValue>, EnvelopeError> {
    let payload = form_urlencoded::parse(body)
        .find_map(|(name, value)| (name == "payload").then_some(value))
        .ok_or(EnvelopeError::FormField("payload"))?;
    Ok(RawValue::from_string(payload.into_owned())?)
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

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for GitHub {
    const DESCRIPTION: super::Description = super::Description::new(
        "GitHub",
        "x-hub-signature-256",
        "x-hub-signature-256 (sha256=<hex>)",
        "none (dedup only)",
        "x-github-delivery / x-github-event + action",
        &[
            super::Sample::new(
                "issues.opened",
                r#"{"action":"opened","issue":{"number":1347,"title":"Found a bug","state":"open","user":{"login":"octocat"}},"repository":{"id":1296269,"full_name":"octocat/Hello-World"},"sender":{"login":"octocat"}}"#,
            ),
            super::Sample::new(
                "issues.closed",
                r#"{"action":"closed","issue":{"number":1347,"title":"Found a bug","state":"closed","user":{"login":"octocat"}},"repository":{"id":1296269,"full_name":"octocat/Hello-World"},"sender":{"login":"octocat"}}"#,
            ),
            super::Sample::new(
                "push",
                r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0000000000000000000000000000000000000000","commits":[],"repository":{"id":1296269,"full_name":"octocat/Hello-World"},"pusher":{"name":"octocat"}}"#,
            ),
            super::Sample::new(
                "pull_request.opened",
                r#"{"action":"opened","number":2,"pull_request":{"id":279147437,"number":2,"title":"Update the README with new information.","state":"open","updated_at":"2026-11-23T10:00:00Z","head":{"ref":"changes","sha":"ec26c3e57ca3a959ca5aad62de7213c562f8c821"},"base":{"ref":"main"},"user":{"login":"Codertocat"}},"repository":{"id":186853002,"full_name":"Codertocat/Hello-World"},"sender":{"login":"Codertocat"}}"#,
            ),
            super::Sample::new(
                "projects_v2_item.edited",
                r#"{"action":"edited","projects_v2_item":{"id":73213,"node_id":"PVTI_lADOA3aKfM4AAeYfzgAGNi0","project_node_id":"PVT_kwDOA3aKfM4AAeYf","content_node_id":"I_kwDOA3aKfM5V9JtE","content_type":"Issue","updated_at":"2026-11-23T10:00:00Z"},"organization":{"login":"octo-org"},"sender":{"login":"octocat"}}"#,
            ),
            super::Sample::new(
                "ping",
                r#"{"zen":"Keep it logically awesome.","hook_id":12345678,"hook":{"type":"Repository","active":true}}"#,
            ),
        ],
    );
}
