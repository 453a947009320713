//! Standard Webhooks (what Svix sends): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64>[ v1,<base64>...]`, the HMAC-SHA256 of
//! `"<id>.<timestamp>.<raw body>"`. <https://www.standardwebhooks.com/>

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::mac::{decode_base64, encode_base64, header_str, hmac, matches_any, Keys};
use super::{
    check_window, envelope_header, parse_timestamp, raw_body, rfc3339, text_header, ConfigError, Created, Envelope,
    EnvelopeError, OutgoingEvent, Provider, ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

/// The header names: the specification's, and Svix's older ones.
struct Names {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const WEBHOOK: Names = Names { id: "webhook-id", timestamp: "webhook-timestamp", signature: "webhook-signature" };
const SVIX: Names = Names { id: "svix-id", timestamp: "svix-timestamp", signature: "svix-signature" };

/// The family a delivery uses: `webhook-*`, or `svix-*` when it has no `webhook-id`.
fn names(headers: &HeaderMap) -> &'static Names {
    if !headers.contains_key(WEBHOOK.id) && headers.contains_key(SVIX.id) {
        &SVIX
    } else {
        &WEBHOOK
    }
}

/// Standard Webhooks, and Svix.
///
/// - **Signature**: `webhook-signature` is a space-separated list of `v1,<base64>`
///   entries, each an HMAC-SHA256 of `"<webhook-id>.<webhook-timestamp>.<raw body>"`;
///   any one valid entry passes, entries of other versions are ignored. The secret is
///   `whsec_` followed by the base64 of the key (`STANDARD_WEBHOOK_SECRET`); a bare
///   base64 key is accepted too. The `svix-id`, `svix-timestamp` and `svix-signature`
///   headers work the same.
/// - **Replay**: `webhook-timestamp` within the tolerance (300 s).
/// - **Id**: `webhook-id`; **type** and **data**: the body's `type` and `data`; its
///   `timestamp` is kept as `created`. A body without `data` (the specification allows
///   the data squashed into the top-level object) is the data itself, `type` and all.
///   A body without `type` is answered 400, saying it has no `type` field: nothing
///   could route it.
/// - **Secret**: `whsec_` and the base64 of the key, with or without `=` padding, as
///   both official libraries take it.
pub struct StandardWebhooks {
    keys: Keys,
    tolerance: Duration,
}

impl std::fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardWebhooks")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

/// Standard base64, with or without its `=` padding: both official libraries take a
/// secret either way.
const SECRET_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The key in a `whsec_<base64>` (or bare base64) secret, padded or not.
fn decode_secret(secret: &Secret) -> Option<Secret> {
    let text = std::str::from_utf8(secret.expose()).ok()?;
    let encoded = text.strip_prefix("whsec_").unwrap_or(text);
    SECRET_BASE64.decode(encoded).ok().filter(|key| !key.is_empty()).map(Secret::new)
}

/// The body's routing fields. `data` may be absent: the specification lets a sender
/// squash the data into the top-level object, and then the whole body is the data.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, rename = "type", borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    timestamp: Option<Created<'a>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

impl Provider for StandardWebhooks {
    const NAME: &'static str = "standard";
    const SECRET_ENV: &'static str = "STANDARD_WEBHOOK_SECRET";

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        super::mac::check_secrets(&config, Self::NAME)?;
        let keys = config.secrets.iter().map(decode_secret).collect::<Option<Vec<_>>>().ok_or_else(|| {
            ConfigError::Invalid(
                "a Standard Webhooks secret is `whsec_` followed by the base64 of a non-empty key".to_owned(),
            )
        })?;
        Ok(Self { keys: Keys::new(&keys), tolerance: config.tolerance })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let names = names(headers);
        let id = header_str(headers, names.id)?;
        let timestamp_text = header_str(headers, names.timestamp)?;
        let signatures = header_str(headers, names.signature)?;
        let timestamp = parse_timestamp(timestamp_text, names.timestamp)?;
        check_window(timestamp, now, self.tolerance)?;

        let expected = self.keys.macs(&[id.as_bytes(), b".", timestamp_text.as_bytes(), b".", body]);
        let mut matched = subtle::Choice::from(0);
        let mut first_error = None;
        // Whether any well-formed v1 entry was compared: then a failure is a mismatch.
        let mut compared = false;
        for entry in signatures.split(' ').filter(|entry| !entry.is_empty()) {
            let Some((version, signature)) = entry.split_once(',') else {
                first_error.get_or_insert(VerifyError::MalformedHeader(names.signature));
                continue;
            };
            if version != "v1" {
                continue;
            }
            match decode_base64(signature) {
                Ok(given) => {
                    compared = true;
                    matched |= matches_any(expected.as_slice(), &given);
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if bool::from(matched) {
            Ok(Verified::at(Some(timestamp)))
        } else if compared {
            Err(VerifyError::SignatureMismatch)
        } else {
            Err(first_error.unwrap_or(VerifyError::NoSupportedSignature(names.signature)))
        }
    }

    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let id = envelope_header(headers, names(headers).id)?;
        let fields: Body<'a> = serde_json::from_slice(body)?;
        let event_type = fields.event_type.ok_or(EnvelopeError::MissingField("type"))?;
        let data = match fields.data {
            Some(data) => data,
            None => raw_body(body)?,
        };
        Ok(Envelope::new(id, event_type, Cow::Borrowed(data))?.created(fields.timestamp.map(Created::into_text)))
    }
}

impl Sign for StandardWebhooks {
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": event.event_type,
            "timestamp": rfc3339(event.timestamp),
            "data": event.data,
        }))
        .expect("a JSON value always serializes")
    }

    /// Signs with the key in a `whsec_` secret (or with the secret's bytes if it is not one).
    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        let key = decode_secret(secret);
        let key = key.as_ref().unwrap_or(secret);
        let timestamp = event.timestamp.to_string();
        let mac = hmac(key.expose(), &[event.id.as_bytes(), b".", timestamp.as_bytes(), b".", body]);
        if let Some(id) = text_header(event.id) {
            headers.insert(HeaderName::from_static(WEBHOOK.id), id);
        }
        headers.insert(HeaderName::from_static(WEBHOOK.timestamp), HeaderValue::from(event.timestamp));
        let signature = format!("v1,{}", encode_base64(&mac));
        headers.insert(HeaderName::from_static(WEBHOOK.signature), HeaderValue::try_from(signature).expect("base64"));
    }
}

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for StandardWebhooks {
    const DESCRIPTION: super::Description = super::Description::new(
        "Standard Webhooks",
        "webhook-signature",
        "webhook-signature (v1,<base64> list; svix-* too)",
        "webhook-timestamp",
        "webhook-id / body type",
        &[super::Sample::new(
            "user.created",
            r#"{"id":"1f81eb52-5198-4599-803e-771906343485","type":"user","name":"Jane Doe","email":"jane@example.com"}"#,
        )],
    );
}
