//! Slack: `X-Slack-Signature: v0=<hex>`, the HMAC-SHA256 of `"v0:<timestamp>:<raw body>"`,
//! with `X-Slack-Request-Timestamp`.
//! <https://api.slack.com/authentication/verifying-requests-from-slack>

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::mac::{check_secrets, decode_hex, header_str, hmac, matches_any, Keys};
use super::{
    check_window, parse_timestamp, raw_body, ConfigError, Created, Envelope, EnvelopeError, OutgoingEvent, Provider,
    ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";

/// Slack's Events API.
///
/// - **Signature**: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of
///   `"v0:<timestamp>:<raw body>"` keyed with the app's signing secret
///   (`SLACK_SIGNING_SECRET`).
/// - **Replay**: `X-Slack-Request-Timestamp` within the tolerance (300 s).
/// - **Id, type, data**: an `event_callback`'s `event_id`, its inner `event.type`
///   (`app_mention`, `message`) and the inner `event` object; `event_time` is kept as
///   `created`. Other envelopes (`url_verification`, `app_rate_limited`) are routed by
///   their own `type`, with the whole body as data.
/// - **Request URL check**: a signed `url_verification` request is answered
///   `200 {"challenge": "<its challenge>"}`, as Slack asks, once its signature and
///   timestamp verified; no handler runs and nothing is stored.
pub struct Slack {
    keys: Keys,
    tolerance: Duration,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack").field("secrets", &self.keys.len()).field("tolerance", &self.tolerance).finish()
    }
}

impl Slack {
    /// The header that carries the signature.
    pub const SIGNATURE_HEADER: &'static str = SIGNATURE;
    /// The header that carries the timestamp.
    pub const TIMESTAMP_HEADER: &'static str = TIMESTAMP;
}

#[derive(Deserialize)]
struct Outer<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    event_time: Option<Created<'a>>,
    #[serde(default, borrow)]
    event: Option<&'a RawValue>,
    #[serde(default, borrow)]
    challenge: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

impl Provider for Slack {
    const NAME: &'static str = "slack";
    const SECRET_ENV: &'static str = "SLACK_SIGNING_SECRET";

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        check_secrets(&config, Self::NAME)?;
        Ok(Self { keys: Keys::new(&config.secrets), tolerance: config.tolerance })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let timestamp_text = header_str(headers, TIMESTAMP)?;
        let value = header_str(headers, SIGNATURE)?;
        let timestamp = parse_timestamp(timestamp_text, TIMESTAMP)?;
        check_window(timestamp, now, self.tolerance)?;
        let hex = match value.split_once('=') {
            Some(("v0", hex)) => hex,
            Some(_) => return Err(VerifyError::NoSupportedSignature(SIGNATURE)),
            None => return Err(VerifyError::MalformedHeader(SIGNATURE)),
        };
        let given = decode_hex(hex)?;
        let expected = self.keys.macs(&[b"v0:", timestamp_text.as_bytes(), b":", body]);
        if bool::from(matches_any(expected.as_slice(), &given)) {
            Ok(Verified::at(Some(timestamp)))
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    fn envelope<'a>(_headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let outer: Outer<'a> = serde_json::from_slice(body)?;
        match (outer.event_id, outer.event) {
            (Some(id), Some(event)) if outer.kind == "event_callback" => {
                let inner: Inner<'a> = serde_json::from_str(event.get())?;
                Ok(Envelope::new(id, inner.kind, Cow::Borrowed(event))?
                    .created(outer.event_time.map(Created::into_text)))
            }
            // A body of another kind has no event id; its raw bytes stand in for one, so
            // a retry of it is still a duplicate.
            _ => {
                let id = format!("{}:{}", outer.kind, hex::encode(&Sha256::digest(body)[..16]));
                let envelope = Envelope::new(id, outer.kind, Cow::Borrowed(raw_body(body)?))?;
                match outer.challenge {
                    Some(challenge) if envelope.event_type == "url_verification" => Ok(envelope.challenge(challenge)),
                    _ => Ok(envelope),
                }
            }
        }
    }
}

impl Sign for Slack {
    /// An `event_callback` whose inner event is the data, with its `type` set.
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
        let mut inner: serde_json::Value = serde_json::from_str(event.data.get()).unwrap_or_default();
        if let Some(object) = inner.as_object_mut() {
            object.insert("type".into(), event.event_type.into());
        }
        serde_json::to_vec(&serde_json::json!({
            "type": "event_callback",
            "event_id": event.id,
            "event_time": event.timestamp,
            "event": inner,
        }))
        .expect("a JSON value always serializes")
    }

    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        let timestamp = event.timestamp.to_string();
        let mac = hmac(secret.expose(), &[b"v0:", timestamp.as_bytes(), b":", body]);
        headers.insert(HeaderName::from_static(TIMESTAMP), HeaderValue::from(event.timestamp));
        let value = format!("v0={}", hex::encode(mac));
        headers.insert(HeaderName::from_static(SIGNATURE), HeaderValue::try_from(value).expect("hex is ASCII"));
    }
}

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for Slack {
    const DESCRIPTION: super::Description = super::Description::new(
        "Slack",
        "x-slack-signature",
        "x-slack-signature (v0=<hex>)",
        "x-slack-request-timestamp",
        "event_id / event.type",
        &[
            super::Sample::new(
                "app_mention",
                r#"{"type":"app_mention","user":"U061F7AUR","text":"<@U0LAN0Z89> is it everything a river should be?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"}"#,
            ),
            super::Sample::new(
                "message",
                r#"{"type":"message","channel":"C123ABC456","user":"U123ABC456","text":"Live long and prospect.","ts":"1355517523.000005","channel_type":"channel"}"#,
            ),
        ],
    );
}
