//! Signature schemes: how a provider signs a delivery and where it puts the event's
//! id and type.
//!
//! A [`Provider`] verifies a delivery from its raw headers and body and then says
//! which event it carries. The built-in schemes are listed in [`BUILT_IN`]; any other
//! scheme is a type that implements the trait.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::EventMeta;
use crate::secret::{Secret, SecretError};

mod described;
mod github;
mod groq_coreweave;
pub mod kit;
mod mac;
mod shopify;
mod slack;
mod standard;
mod stripe;

pub use described::{built_in, BuiltIn, Describe, Description, Sample, PROVIDERS};
pub use github::GitHub;
pub use groq_coreweave::{Coreweave, Groq};
pub use shopify::Shopify;
pub use slack::Slack;
pub use standard::StandardWebhooks;
pub use stripe::Stripe;

/// Calls `$callback! { name => Type, ... }` with every built-in provider: the one list
/// the runtime's [`BUILT_IN`], the command's schemes and the fuzz target derive theirs
/// from (the attribute's own list is checked against it by a test).
#[doc(hidden)]
#[macro_export]
macro_rules! __with_built_in_providers {
    ($callback:ident) => {
        $callback! {
            groq => Groq,
            coreweave => Coreweave,
            standard => StandardWebhooks,
            stripe => Stripe,
            github => GitHub,
            slack => Slack,
            shopify => Shopify,
        }
    };
}

macro_rules! built_in_names {
    ($($name:ident => $ty:ident,)*) => {
        /// The name of every built-in provider, as `provider = "..."` and the command's
        /// `--provider` take it.
        pub const BUILT_IN: &[&str] = &[$(stringify!($name)),*];

        #[cfg(test)]
        #[test]
        fn every_built_in_name_is_its_types_name() {
            $(assert_eq!(stringify!($name), <$ty as Provider>::NAME);)*
        }
    };
}
__with_built_in_providers!(built_in_names);

/// The default replay window: a delivery's timestamp may be this far in the past or
/// the future.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A webhook signature scheme.
///
/// Implement it to receive from a service hookroute has no built-in scheme for, and
/// name the type in the attribute: `#[webhook_handlers(provider = my::Scheme)]`.
///
/// `Receiver` calls [`verify`](Provider::verify) on every delivery before anything
/// else reads the body, and [`envelope`](Provider::envelope) only on deliveries that
/// passed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a webhook signature scheme",
    label = "`provider = ...` names a type that does not implement `hookroute::Provider`",
    note = "use a built-in scheme by name (`provider = \"github\"`) or implement `hookroute::Provider` for this type"
)]
pub trait Provider: Send + Sync + Sized + 'static {
    /// Short lowercase name (`"groq"`): the namespace of idempotency keys
    /// (`<namespace>:<name>:event:<id>`) and the `provider` of every `EventMeta`.
    const NAME: &'static str;

    /// The environment variable that holds the signing secret when none is given in
    /// code (`GROQ_WEBHOOK_SECRET`).
    const SECRET_ENV: &'static str;

    /// Builds the verifier from its secrets and replay window.
    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError>;

    /// Checks a delivery's signature and timestamp over the raw body bytes.
    fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError>;

    /// Whether the signature covers the event id. GitHub and Shopify sign only the
    /// body, and send the id in a header anybody can change: for them the receiver also
    /// deduplicates on a digest of the type and the signed body, so a captured delivery
    /// replayed under a fresh id is a duplicate.
    const SIGNS_ID: bool = true;

    /// Reads the event's id, type and data from a delivery (called once it verified).
    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError>;
}

/// A scheme that can also produce deliveries: the test kit and tools sign with it.
pub trait Sign: Provider {
    /// The body the provider would send for `event`.
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8>;

    /// Adds to `headers` what signs `body` with `secret` for `event`.
    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap);
}

/// An event about to be signed and sent (see [`Sign`]).
#[derive(Debug, Clone, Copy)]
pub struct OutgoingEvent<'a> {
    /// The event id.
    pub id: &'a str,
    /// The event type (`resource.created`).
    pub event_type: &'a str,
    /// The event's `data`, as JSON.
    pub data: &'a RawValue,
    /// The signing time, in unix seconds.
    pub timestamp: u64,
}

/// What a provider needs to verify: its secrets (any one may have signed, so keys can
/// be rotated) and the replay window.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Every secret a delivery may be signed with.
    pub secrets: Vec<Secret>,
    /// How far a delivery's timestamp may be from now, in either direction.
    pub tolerance: Duration,
}

/// Why a provider could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No secret was given and the environment has none.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A secret with no bytes was given.
    #[error("an empty secret was configured for {provider}: it would accept signatures anyone can compute")]
    EmptySecret {
        /// The provider's name.
        provider: &'static str,
    },
    /// No secret at all.
    #[error("no secret configured for {provider}")]
    NoSecret {
        /// The provider's name.
        provider: &'static str,
    },
    /// Any other invalid setting.
    #[error("{0}")]
    Invalid(String),
}

/// What a successful verification learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Verified {
    /// The signed timestamp, in unix seconds, for schemes that carry one.
    pub timestamp: Option<u64>,
}

impl Verified {
    /// A verification result carrying the signed timestamp.
    pub fn at(timestamp: Option<u64>) -> Self {
        Self { timestamp }
    }
}

/// Why a delivery's signature or timestamp was rejected. Every variant answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// A header holds bytes that are not visible ASCII.
    #[error("header `{0}` is not visible ASCII")]
    InvalidHeader(&'static str),
    /// The timestamp is not a plain non-negative integer of unix seconds.
    #[error("timestamp header `{0}` is not a non-negative integer of unix seconds")]
    MalformedTimestamp(&'static str),
    /// The timestamp is further in the past than the tolerance allows.
    #[error("timestamp is {age_secs} s old, outside the {tolerance_secs} s window")]
    TimestampTooOld {
        /// How old the timestamp is.
        age_secs: u64,
        /// The configured tolerance.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error("timestamp is {ahead_secs} s in the future, outside the {tolerance_secs} s window")]
    TimestampInFuture {
        /// How far ahead of now the timestamp is.
        ahead_secs: u64,
        /// The configured tolerance.
        tolerance_secs: u64,
    },
    /// The signature has an odd number of hex digits.
    #[error("signature has an odd number of hex digits")]
    SignatureOddLength,
    /// The signature holds a character that is not a hex digit.
    #[error("signature is not hex")]
    SignatureNotHex,
    /// The signature decodes to the wrong number of bytes.
    #[error("signature is {found} bytes, expected {expected}")]
    SignatureLength {
        /// The length the scheme's MAC has.
        expected: usize,
        /// The decoded length.
        found: usize,
    },
    /// The signature is not valid base64.
    #[error("signature is not base64")]
    SignatureNotBase64,
    /// A signature header is not in the scheme's format (`t=...,v1=...`, `sha256=...`).
    #[error("header `{0}` is not in the expected format")]
    MalformedHeader(&'static str),
    /// The signature header holds no signature of a version this scheme checks.
    #[error("header `{0}` holds no signature of a supported version")]
    NoSupportedSignature(&'static str),
    /// Well-formed, but no configured secret produced it.
    #[error("signature does not match")]
    SignatureMismatch,
}

/// Checks that `timestamp` (unix seconds) is within `tolerance` of `now`, in the past
/// or the future: `VerifyError::TimestampTooOld` or `VerifyError::TimestampInFuture`
/// otherwise.
pub fn check_window(timestamp: u64, now: SystemTime, tolerance: Duration) -> Result<(), VerifyError> {
    let now = unix_seconds(now);
    let tolerance_secs = tolerance.as_secs();
    if timestamp > now {
        let ahead_secs = timestamp - now;
        if ahead_secs > tolerance_secs {
            return Err(VerifyError::TimestampInFuture { ahead_secs, tolerance_secs });
        }
    } else {
        let age_secs = now - timestamp;
        if age_secs > tolerance_secs {
            return Err(VerifyError::TimestampTooOld { age_secs, tolerance_secs });
        }
    }
    Ok(())
}

/// Seconds since the unix epoch; a clock before 1970 counts as the epoch.
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2021-02-26T15:42:10Z` for unix seconds (the civil-from-days algorithm).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses a timestamp that must be a plain non-negative integer: ASCII digits only,
/// no sign, no spaces, no fraction, no exponent, and within `u64`.
pub fn parse_timestamp(value: &str, header: &'static str) -> Result<u64, VerifyError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedTimestamp(header));
    }
    value.parse().map_err(|_| VerifyError::MalformedTimestamp(header))
}

/// A verified delivery's event: its id and type, when it was created, and its data
/// left as raw JSON until the handler's type is known.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Envelope<'a> {
    /// The event id, the key for deduplication.
    pub id: Cow<'a, str>,
    /// The event type, the key for routing.
    pub event_type: Cow<'a, str>,
    /// A coarser name the event is also routed by (GitHub's `issues` for
    /// `issues.opened`), if the scheme has one.
    pub group: Option<Cow<'a, str>>,
    /// When the provider says the event was created, as it wrote it.
    pub created: Option<Cow<'a, str>>,
    /// The event's data, unparsed.
    pub data: Cow<'a, RawValue>,
    /// A check the provider asks the endpoint to pass instead of an event (Slack's
    /// `url_verification`): the receiver answers `200 {"challenge": ..}` with it, once
    /// the signature verified, and runs no handler.
    pub challenge: Option<Cow<'a, str>>,
}

impl<'a> Envelope<'a> {
    /// An event with its id, type and raw data; the id and type must be non-empty and
    /// at most [`MAX_FIELD_LEN`] bytes.
    pub fn new(
        id: impl Into<Cow<'a, str>>,
        event_type: impl Into<Cow<'a, str>>,
        data: Cow<'a, RawValue>,
    ) -> Result<Self, EnvelopeError> {
        let (id, event_type) = (id.into(), event_type.into());
        check_field("id", &id)?;
        check_field("type", &event_type)?;
        Ok(Self { id, event_type, group: None, created: None, data, challenge: None })
    }

    /// Sets when the provider says the event was created.
    #[must_use]
    pub fn created(mut self, created: Option<impl Into<Cow<'a, str>>>) -> Self {
        self.created = created.map(Into::into);
        self
    }

    /// Sets the coarser name the event is also routed by.
    #[must_use]
    pub fn group(mut self, group: impl Into<Cow<'a, str>>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Makes this delivery a check to answer rather than an event to handle: the
    /// receiver answers `200 {"challenge": <challenge>}` and runs nothing.
    #[must_use]
    pub fn challenge(mut self, challenge: impl Into<Cow<'a, str>>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    /// Splits the envelope into the handler's facts and the raw data.
    pub(crate) fn into_meta(
        self,
        namespace: &str,
        provider: &'static str,
        timestamp: Option<u64>,
    ) -> (EventMeta, Cow<'a, RawValue>) {
        let meta = EventMeta::from_delivery(
            namespace,
            provider,
            &self.id,
            &self.event_type,
            self.created.as_deref(),
            self.group.as_deref(),
            timestamp,
        );
        (meta, self.data)
    }
}

/// Why a verified delivery's body could not be read as an event. Answers 400.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not JSON of the expected envelope.
    #[error("body is not a valid event envelope: {0}")]
    Json(#[from] serde_json::Error),
    /// A required field is empty.
    #[error("event `{0}` is empty")]
    EmptyField(&'static str),
    /// A header the scheme reads the event's id or type from is missing or not ASCII.
    #[error("header `{0}` is missing or not visible ASCII")]
    Header(&'static str),
    /// The event id or type holds a control character (a line break, a NUL): no
    /// provider sends one, and it could forge a log line or break a store's key.
    #[error("event `{0}` holds a control character")]
    ControlCharacter(&'static str),
    /// A header holds a value the scheme never sends: GitHub's `X-GitHub-Event` is an
    /// event name (`issues`), never `issues.opened`.
    #[error("header `{header}` is \"{value}\", not {expected} (delivery \"{delivery}\")")]
    InvalidHeader {
        /// The header.
        header: &'static str,
        /// What it must be.
        expected: &'static str,
        /// Its value as sent, escaped (a sender cannot forge a log line with it) and cut
        /// to 64 characters.
        value: String,
        /// The delivery's id as sent, escaped and cut the same way.
        delivery: String,
    },
    /// A form-encoded body lacks the field the event is in (GitHub's `payload`).
    #[error("form body has no `{0}` field")]
    FormField(&'static str),
    /// The body is JSON without the field the scheme routes by: a Standard Webhooks
    /// body needs a `type`.
    #[error("body has no `{0}` field")]
    MissingField(&'static str),
    /// The event id or type is longer than [`MAX_FIELD_LEN`].
    #[error("event `{field}` is {len} bytes, longer than the {max} allowed")]
    TooLong {
        /// `id` or `type`.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl EnvelopeError {
    /// [`EnvelopeError::InvalidHeader`] for `value` of `header` in the delivery `delivery`,
    /// both escaped and cut short for the log.
    pub fn invalid_header(header: &'static str, value: &str, expected: &'static str, delivery: &str) -> Self {
        Self::InvalidHeader { header, expected, value: escaped(value), delivery: escaped(delivery) }
    }
}

/// Text a sender chose, fit for a log line: escaped, and cut to 64 characters.
fn escaped(text: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = text.chars().take(MAX).flat_map(char::escape_debug).collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// A header the envelope is read from.
pub(crate) fn envelope_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, EnvelopeError> {
    headers.get(name).and_then(|value| value.to_str().ok()).ok_or(EnvelopeError::Header(name))
}

/// A header value for text a signer puts in a header (an id, an event name), if it is
/// one a verifier can read back (visible ASCII); otherwise the header is left out.
pub(crate) fn text_header(value: &str) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(value).ok().filter(|header| header.to_str().is_ok())
}

/// The whole body as one raw JSON value (schemes whose event is the body itself).
pub(crate) fn raw_body(body: &[u8]) -> Result<&RawValue, EnvelopeError> {
    Ok(serde_json::from_slice(body)?)
}

/// The longest event id or type accepted: ids become store keys, types are echoed in
/// answers and logs.
pub const MAX_FIELD_LEN: usize = 256;

/// An event id or type must be present and of a sane length.
pub(crate) fn check_field(field: &'static str, value: &str) -> Result<(), EnvelopeError> {
    if value.is_empty() {
        return Err(EnvelopeError::EmptyField(field));
    }
    if value.len() > MAX_FIELD_LEN {
        return Err(EnvelopeError::TooLong { field, len: value.len(), max: MAX_FIELD_LEN });
    }
    // A line break would forge log lines; a NUL cannot be stored in PostgreSQL text.
    if has_control(value) {
        return Err(EnvelopeError::ControlCharacter(field));
    }
    Ok(())
}

/// Whether `text` holds a control character (`char::is_control`: U+0000–U+001F,
/// U+007F–U+009F). Ids and types are ASCII in practice: their bytes are checked all at
/// once, and only other text is decoded.
fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.iter().fold(true, |plain, &byte| plain & (0x20..0x7f).contains(&byte)) {
        return false;
    }
    text.chars().any(char::is_control)
}

/// The JSON envelope most providers send: `{"id", "type", "created", "data"}`.
#[derive(Deserialize)]
pub(crate) struct JsonEnvelope<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(default, alias = "created_at", borrow)]
    created: Option<Created<'a>>,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// `created` as providers write it, a date string or a number of seconds, borrowed raw
/// (an untagged enum would make serde buffer the value to try each form).
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Created<'a>(#[serde(borrow)] &'a RawValue);

impl<'a> Created<'a> {
    /// The string's text (borrowed unless it has escapes), or the number as written.
    pub(crate) fn into_text(self) -> Cow<'a, str> {
        let raw = self.0.get();
        if !raw.starts_with('"') {
            return Cow::Borrowed(raw);
        }
        // The parser checked the string: without an escape, its text is what is between
        // the quotes.
        if let Some(text) = raw.get(1..raw.len() - 1).filter(|text| !text.contains('\\')) {
            return Cow::Borrowed(text);
        }
        serde_json::from_str::<String>(raw).map_or(Cow::Borrowed(raw), Cow::Owned)
    }
}

impl<'a> JsonEnvelope<'a> {
    pub(crate) fn parse(body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(body)?;
        Ok(Envelope::new(envelope.id, envelope.event_type, Cow::Borrowed(envelope.data))?
            .created(envelope.created.map(Created::into_text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_unix_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_614_265_330), "2021-02-25T15:02:10Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn timestamps_must_be_plain_digits() {
        for bad in ["", "-1", "+1", " 1", "1.0", "1e3", "NaN", "0x10", "１"] {
            assert_eq!(parse_timestamp(bad, "t"), Err(VerifyError::MalformedTimestamp("t")), "{bad:?}");
        }
        assert_eq!(parse_timestamp("18446744073709551616", "t"), Err(VerifyError::MalformedTimestamp("t")));
        assert_eq!(parse_timestamp("0", "t"), Ok(0));
        assert_eq!(parse_timestamp("18446744073709551615", "t"), Ok(u64::MAX));
    }

    #[test]
    fn window_rejects_both_directions_at_the_edge() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let tol = Duration::from_secs(300);
        assert_eq!(check_window(1_000_000 - 300, now, tol), Ok(()));
        assert_eq!(check_window(1_000_000 + 300, now, tol), Ok(()));
        assert_eq!(
            check_window(1_000_000 - 301, now, tol),
            Err(VerifyError::TimestampTooOld { age_secs: 301, tolerance_secs: 300 })
        );
        assert_eq!(
            check_window(1_000_000 + 301, now, tol),
            Err(VerifyError::TimestampInFuture { ahead_secs: 301, tolerance_secs: 300 })
        );
        assert!(matches!(check_window(u64::MAX, now, tol), Err(VerifyError::TimestampInFuture { .. })));
    }

    #[test]
    fn envelope_reads_fields_and_keeps_data_raw() {
        let body = br#"{"id":"evt_1","type":"resource.created","created":"2026-11-22T10:00:00Z","data":{"a": 1}}"#;
        let envelope = JsonEnvelope::parse(body).unwrap();
        assert_eq!(envelope.id, "evt_1");
        assert_eq!(envelope.event_type, "resource.created");
        assert_eq!(envelope.created.as_deref(), Some("2026-11-22T10:00:00Z"));
        assert_eq!(envelope.data.get(), r#"{"a": 1}"#);
    }

    #[test]
    fn created_is_read_as_written_without_copying_plain_text() {
        let parse = |body: &'static [u8]| JsonEnvelope::parse(body).unwrap().created;
        let number = parse(br#"{"id":"e","type":"t","created":1800000000,"data":1}"#).unwrap();
        assert!(matches!(number, Cow::Borrowed("1800000000")));
        let plain = parse(br#"{"id":"e","type":"t","created":"2026-11-22","data":1}"#).unwrap();
        assert!(matches!(plain, Cow::Borrowed("2026-11-22")));
        let escaped = parse(br#"{"id":"e","type":"t","created":"a\"b\u00e9","data":1}"#).unwrap();
        assert_eq!(escaped, "a\"b\u{e9}");
        assert_eq!(parse(br#"{"id":"e","type":"t","data":1}"#), None);
    }

    #[test]
    fn control_characters_are_found_in_ascii_and_beyond() {
        for bad in ["a\nb", "\0", "x\u{7f}", "\u{1b}[31m", "\u{85}", "\u{9f}", "é\t", "évt\u{80}"] {
            assert!(has_control(bad), "{bad:?}");
            assert!(matches!(check_field("id", bad), Err(EnvelopeError::ControlCharacter("id"))), "{bad:?}");
        }
        for good in ["evt_1", " ~", "évt", "\u{a0}", "\u{2028}", "事件"] {
            assert!(!has_control(good), "{good:?}");
        }
    }

    #[test]
    fn envelope_rejects_missing_and_empty_fields() {
        assert!(matches!(JsonEnvelope::parse(br#"{"id":"e","type":"t"}"#), Err(EnvelopeError::Json(_))));
        assert!(matches!(
            JsonEnvelope::parse(br#"{"id":"","type":"t","data":1}"#),
            Err(EnvelopeError::EmptyField("id"))
        ));
        let long = format!(r#"{{"id":"{}","type":"t","data":1}}"#, "x".repeat(MAX_FIELD_LEN + 1));
        assert!(matches!(JsonEnvelope::parse(long.as_bytes()), Err(EnvelopeError::TooLong { field: "id", .. })));
        let long = format!(r#"{{"id":"e","type":"{}","data":1}}"#, "x".repeat(MAX_FIELD_LEN + 1));
        assert!(matches!(JsonEnvelope::parse(long.as_bytes()), Err(EnvelopeError::TooLong { field: "type", .. })));
        assert!(matches!(
            JsonEnvelope::parse(br#"{"id":"e","type":"","data":1}"#),
            Err(EnvelopeError::EmptyField("type"))
        ));
        assert!(matches!(JsonEnvelope::parse(b"\xff\xfe"), Err(EnvelopeError::Json(_))));
    }
}
