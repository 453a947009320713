//! Stripe: `Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]`, the HMAC-SHA256 of
//! `"<t>.<raw body>"`. <https://docs.stripe.com/webhooks#verify-manually>

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::mac::{check_any, check_secrets, decode_hex, header_str, hmac, Keys};
use super::{
    check_window, parse_timestamp, raw_body, rfc3339, ConfigError, Created, Envelope, EnvelopeError, OutgoingEvent,
    Provider, ProviderConfig, Sign, Verified, VerifyError,
};
use crate::secret::Secret;

const SIGNATURE: &str = "stripe-signature";

/// The `object` of a thin event, as event destinations send them.
const THIN_EVENT: &str = "v2.core.event";

/// A Stripe event: a snapshot event (`"object": "event"`, its data under `data`) or a
/// thin one (`"object": "v2.core.event"`).
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    created: Option<Created<'a>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// Stripe webhooks.
///
/// - **Signature**: `Stripe-Signature: t=<timestamp>,v1=<hex>`, HMAC-SHA256 of
///   `"<t>.<raw body>"` keyed with the endpoint's signing secret used as-is
///   (`whsec_...`, from `STRIPE_WEBHOOK_SECRET`). Every `v1` is checked, so a header
///   carrying signatures from an old and a new secret passes with either; `v0` (test
///   mode's legacy scheme) and unknown schemes are ignored.
/// - **Replay**: `t` must be within the tolerance (300 s), past or future.
/// - **Id, type, data**: the body's `id` (`evt_...`), `type` (`payment_intent.succeeded`)
///   and `data` (`{"object": {...}}`: a handler's data type has an `object` field);
///   `created` is kept.
/// - **Thin events** (`"object": "v2.core.event"`, sent to event destinations): routed by
///   `type` (`v1.billing.meter.error_report_triggered`; write it with `unlisted`, the
///   catalog lists snapshot events), and a handler's data is **the whole event**: its
///   `related_object` (`{"id", "type", "url"}`: fetch the object if you need its state),
///   and its own `data`, `reason`, `context` and `livemode` where it has them.
pub struct Stripe {
    keys: Keys,
    tolerance: Duration,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe").field("secrets", &self.keys.len()).field("tolerance", &self.tolerance).finish()
    }
}

impl Stripe {
    /// The header that carries the timestamp and signatures.
    pub const SIGNATURE_HEADER: &'static str = SIGNATURE;
}

/// The `t` and every `v1` of a `Stripe-Signature` header. Items without `=` are
/// skipped, as Stripe's own libraries skip them: the `v1` items still count.
fn parse_header(value: &str) -> Result<(&str, Vec<&str>), VerifyError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in value.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value),
            "t" => return Err(VerifyError::MalformedHeader(SIGNATURE)),
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MalformedHeader(SIGNATURE))?;
    if v1.is_empty() {
        return Err(VerifyError::NoSupportedSignature(SIGNATURE));
    }
    Ok((timestamp, v1))
}

impl Provider for Stripe {
    const NAME: &'static str = "stripe";
    const SECRET_ENV: &'static str = "STRIPE_WEBHOOK_SECRET";

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        check_secrets(&config, Self::NAME)?;
        Ok(Self { keys: Keys::new(&config.secrets), tolerance: config.tolerance })
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let (timestamp_text, signatures) = parse_header(header_str(headers, SIGNATURE)?)?;
        let timestamp = parse_timestamp(timestamp_text, SIGNATURE)?;
        check_window(timestamp, now, self.tolerance)?;
        let expected = self.keys.macs(&[timestamp_text.as_bytes(), b".", body]);
        check_any(expected.as_slice(), signatures.into_iter().map(decode_hex))?;
        Ok(Verified::at(Some(timestamp)))
    }

    fn envelope<'a>(_headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let event: Event<'a> = serde_json::from_slice(body)?;
        let data = match (event.object.as_deref(), event.data) {
            // A thin event names what changed and carries no snapshot: it is its own data.
            (Some(THIN_EVENT), _) => raw_body(body)?,
            (_, Some(data)) => data,
            (_, None) => return Err(EnvelopeError::MissingField("data")),
        };
        Ok(Envelope::new(event.id, event.kind, Cow::Borrowed(data))?.created(event.created.map(Created::into_text)))
    }
}

impl Sign for Stripe {
    /// A snapshot event around the data; or, for data with a `related_object` (what a
    /// thin event's handler reads), a thin event of those fields.
    fn encode(event: &OutgoingEvent<'_>) -> Vec<u8> {
        let data: serde_json::Value = serde_json::from_str(event.data.get()).unwrap_or_default();
        if let Some(fields) = data.as_object().filter(|fields| fields.contains_key("related_object")) {
            let mut thin = serde_json::Map::new();
            thin.insert("id".into(), event.id.into());
            thin.insert("object".into(), THIN_EVENT.into());
            thin.insert("type".into(), event.event_type.into());
            thin.insert("created".into(), rfc3339(event.timestamp).into());
            for (name, value) in fields {
                thin.entry(name.clone()).or_insert_with(|| value.clone());
            }
            return serde_json::to_vec(&thin).expect("a JSON value always serializes");
        }
        serde_json::to_vec(&serde_json::json!({
            "id": event.id,
            "object": "event",
            "type": event.event_type,
            "created": event.timestamp,
            "data": event.data,
        }))
        .expect("a JSON value always serializes")
    }

    fn sign(secret: &Secret, event: &OutgoingEvent<'_>, body: &[u8], headers: &mut HeaderMap) {
        let timestamp = event.timestamp.to_string();
        let mac = hmac(secret.expose(), &[timestamp.as_bytes(), b".", body]);
        let value = format!("t={timestamp},v1={}", hex::encode(mac));
        headers.insert(HeaderName::from_static(SIGNATURE), HeaderValue::try_from(value).expect("digits and hex"));
    }
}

/// What the `hookroute` command and `examples/send_event` show and send (see
/// [`Describe`](super::Describe)): samples shaped after the provider's published examples.
impl super::Describe for Stripe {
    const DESCRIPTION: super::Description = super::Description::new(
        "Stripe",
        "stripe-signature",
        "stripe-signature (t=..,v1=<hex>)",
        "t= in stripe-signature",
        "body id / type",
        &[
            super::Sample::new(
                "payment_intent.succeeded",
                r#"{"object":{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2000,"amount_received":2000,"currency":"usd","customer":"cus_NffrFeUfNV2Hib","status":"succeeded","livemode":false}}"#,
            ),
            super::Sample::new(
                "payment_intent.payment_failed",
                r#"{"object":{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2000,"currency":"usd","status":"requires_payment_method","last_payment_error":{"code":"card_declined","decline_code":"generic_decline"}}}"#,
            ),
            super::Sample::new(
                "customer.subscription.deleted",
                r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"canceled","cancel_at_period_end":false}}"#,
            ),
            super::Sample::new(
                "customer.subscription.created",
                r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"active","cancel_at_period_end":false,"current_period_start":1679609767,"current_period_end":1682288167,"items":{"object":"list","data":[{"id":"si_NcLYdDxLHxlFo7","object":"subscription_item","price":{"id":"price_1MowQULkdIwHu7ixraBm864M","object":"price","unit_amount":1000,"currency":"usd","recurring":{"interval":"month"}},"quantity":1}]},"latest_invoice":"in_1MowQWLkdIwHu7ixuzkSPfKd","livemode":false}}"#,
            ),
            super::Sample::new(
                "customer.subscription.updated",
                r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"past_due","cancel_at_period_end":true,"current_period_start":1679609767,"current_period_end":1682288167,"livemode":false},"previous_attributes":{"status":"active","cancel_at_period_end":false}}"#,
            ),
            super::Sample::new(
                "customer.subscription.trial_will_end",
                r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"trialing","trial_end":1682288167,"livemode":false}}"#,
            ),
            super::Sample::new(
                "customer.created",
                r#"{"object":{"id":"cus_NffrFeUfNV2Hib","object":"customer","email":"jennyrosen@example.com","name":"Jenny Rosen","created":1680893993,"livemode":false}}"#,
            ),
            super::Sample::new(
                "checkout.session.completed",
                r#"{"object":{"id":"cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u","object":"checkout.session","mode":"subscription","status":"complete","payment_status":"paid","customer":"cus_NffrFeUfNV2Hib","subscription":"sub_1MowQVLkdIwHu7ixeRlqHVzs","amount_total":1000,"currency":"usd","client_reference_id":"user_42","livemode":false}}"#,
            ),
            super::Sample::new(
                "invoice.payment_failed",
                r#"{"object":{"id":"in_1MtHbELkdIwHu7ixl4OzzPMv","object":"invoice","customer":"cus_NffrFeUfNV2Hib","subscription":"sub_1MowQVLkdIwHu7ixeRlqHVzs","amount_due":2000,"attempt_count":1,"next_payment_attempt":1680980393,"currency":"usd","status":"open"}}"#,
            ),
            super::Sample::new(
                "charge.refunded",
                r#"{"object":{"id":"ch_3MmlLrLkdIwHu7ix0snN0B15","object":"charge","amount":1099,"amount_refunded":1099,"currency":"usd","payment_intent":"pi_3MmlLrLkdIwHu7ix0uke3Ezy","refunded":true,"status":"succeeded"}}"#,
            ),
            // A thin event (event destinations): the event itself, `related_object` and all; the
            // signer sends it as it is (`"object": "v2.core.event"`).
            super::Sample::new(
                "v1.billing.meter.error_report_triggered",
                r#"{"related_object":{"id":"mtr_test_61R9IeFvqUtaxp4nH41IeFvqUtaxpAKO","type":"billing.meter","url":"/v1/billing/meters/mtr_test_61R9IeFvqUtaxp4nH41IeFvqUtaxpAKO"},"livemode":false,"context":null,"data":{"developer_message_summary":"There is 1 invalid event","reason":{"error_count":1,"error_types":[{"code":"meter_event_no_customer_defined","error_count":1}]}}}"#,
            ),
            super::Sample::new(
                "invoice.paid",
                r#"{"object":{"id":"in_1MtHbELkdIwHu7ixl4OzzPMv","object":"invoice","customer":"cus_NffrFeUfNV2Hib","amount_paid":2000,"currency":"usd","status":"paid"}}"#,
            ),
        ],
    );
}
