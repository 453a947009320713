//! Realistic event data per provider and type, shaped after each provider's published
//! examples (Stripe's API reference objects, GitHub's payload examples, Slack's Events
//! API reference, Shopify's webhook reference, the Standard Webhooks specification),
//! trimmed to the fields receivers read. `trigger` sends them; `send` and `sign` use
//! them when no `--data` is given, so the defaults fit the example receivers.

/// One sample: the data of an event of `event_type`, as the provider's scheme wraps it
/// (`send` builds the envelope around it).
pub(crate) struct Sample {
    pub(crate) provider: &'static str,
    pub(crate) event_type: &'static str,
    pub(crate) data: &'static str,
}

const fn sample(provider: &'static str, event_type: &'static str, data: &'static str) -> Sample {
    Sample { provider, event_type, data }
}

/// Every sample; a provider's first is its default type.
pub(crate) const SAMPLES: &[Sample] = &[
    sample("groq", "resource.created", r#"{"id":"res_01jq8f3k2m","name":"batch-embeddings"}"#),
    sample("groq", "resource.updated", r#"{"id":"res_01jq8f3k2m","name":"batch-embeddings-v2"}"#),
    sample("groq", "resource.deleted", r#"{"id":"res_01jq8f3k2m"}"#),
    sample("coreweave", "resource.created", r#"{"id":"res_7f3c9a","name":"gpu-node-pool"}"#),
    sample("coreweave", "resource.updated", r#"{"id":"res_7f3c9a","name":"gpu-node-pool-a100"}"#),
    sample("coreweave", "resource.deleted", r#"{"id":"res_7f3c9a"}"#),
    sample(
        "standard",
        "user.created",
        r#"{"id":"1f81eb52-5198-4599-803e-771906343485","type":"user","name":"Jane Doe","email":"jane@example.com"}"#,
    ),
    sample(
        "stripe",
        "payment_intent.succeeded",
        r#"{"object":{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2000,"amount_received":2000,"currency":"usd","customer":"cus_NffrFeUfNV2Hib","status":"succeeded","livemode":false}}"#,
    ),
    sample(
        "stripe",
        "payment_intent.payment_failed",
        r#"{"object":{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2000,"currency":"usd","status":"requires_payment_method","last_payment_error":{"code":"card_declined","decline_code":"generic_decline"}}}"#,
    ),
    sample(
        "stripe",
        "customer.subscription.deleted",
        r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"canceled","cancel_at_period_end":false}}"#,
    ),
    sample(
        "stripe",
        "customer.subscription.created",
        r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"active","cancel_at_period_end":false,"current_period_start":1679609767,"current_period_end":1682288167,"items":{"object":"list","data":[{"id":"si_NcLYdDxLHxlFo7","object":"subscription_item","price":{"id":"price_1MowQULkdIwHu7ixraBm864M","object":"price","unit_amount":1000,"currency":"usd","recurring":{"interval":"month"}},"quantity":1}]},"latest_invoice":"in_1MowQWLkdIwHu7ixuzkSPfKd","livemode":false}}"#,
    ),
    sample(
        "stripe",
        "customer.subscription.updated",
        r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"past_due","cancel_at_period_end":true,"current_period_start":1679609767,"current_period_end":1682288167,"livemode":false},"previous_attributes":{"status":"active","cancel_at_period_end":false}}"#,
    ),
    sample(
        "stripe",
        "customer.subscription.trial_will_end",
        r#"{"object":{"id":"sub_1MowQVLkdIwHu7ixeRlqHVzs","object":"subscription","customer":"cus_NffrFeUfNV2Hib","status":"trialing","trial_end":1682288167,"livemode":false}}"#,
    ),
    sample(
        "stripe",
        "customer.created",
        r#"{"object":{"id":"cus_NffrFeUfNV2Hib","object":"customer","email":"jennyrosen@example.com","name":"Jenny Rosen","created":1680893993,"livemode":false}}"#,
    ),
    sample(
        "stripe",
        "checkout.session.completed",
        r#"{"object":{"id":"cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u","object":"checkout.session","mode":"subscription","status":"complete","payment_status":"paid","customer":"cus_NffrFeUfNV2Hib","subscription":"sub_1MowQVLkdIwHu7ixeRlqHVzs","amount_total":1000,"currency":"usd","client_reference_id":"user_42","livemode":false}}"#,
    ),
    sample(
        "stripe",
        "invoice.payment_failed",
        r#"{"object":{"id":"in_1MtHbELkdIwHu7ixl4OzzPMv","object":"invoice","customer":"cus_NffrFeUfNV2Hib","subscription":"sub_1MowQVLkdIwHu7ixeRlqHVzs","amount_due":2000,"attempt_count":1,"next_payment_attempt":1680980393,"currency":"usd","status":"open"}}"#,
    ),
    sample(
        "stripe",
        "charge.refunded",
        r#"{"object":{"id":"ch_3MmlLrLkdIwHu7ix0snN0B15","object":"charge","amount":1099,"amount_refunded":1099,"currency":"usd","payment_intent":"pi_3MmlLrLkdIwHu7ix0uke3Ezy","refunded":true,"status":"succeeded"}}"#,
    ),
    // A thin event (event destinations): the event itself, `related_object` and all; the
    // signer sends it as it is (`"object": "v2.core.event"`).
    sample(
        "stripe",
        "v1.billing.meter.error_report_triggered",
        r#"{"related_object":{"id":"mtr_test_61R9IeFvqUtaxp4nH41IeFvqUtaxpAKO","type":"billing.meter","url":"/v1/billing/meters/mtr_test_61R9IeFvqUtaxp4nH41IeFvqUtaxpAKO"},"livemode":false,"context":null,"data":{"developer_message_summary":"There is 1 invalid event","reason":{"error_count":1,"error_types":[{"code":"meter_event_no_customer_defined","error_count":1}]}}}"#,
    ),
    sample(
        "stripe",
        "invoice.paid",
        r#"{"object":{"id":"in_1MtHbELkdIwHu7ixl4OzzPMv","object":"invoice","customer":"cus_NffrFeUfNV2Hib","amount_paid":2000,"currency":"usd","status":"paid"}}"#,
    ),
    sample(
        "github",
        "issues.opened",
        r#"{"action":"opened","issue":{"number":1347,"title":"Found a bug","state":"open","user":{"login":"octocat"}},"repository":{"id":1296269,"full_name":"octocat/Hello-World"},"sender":{"login":"octocat"}}"#,
    ),
    sample(
        "github",
        "issues.closed",
        r#"{"action":"closed","issue":{"number":1347,"title":"Found a bug","state":"closed","user":{"login":"octocat"}},"repository":{"id":1296269,"full_name":"octocat/Hello-World"},"sender":{"login":"octocat"}}"#,
    ),
    sample(
        "github",
        "push",
        r#"{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0000000000000000000000000000000000000000","commits":[],"repository":{"id":1296269,"full_name":"octocat/Hello-World"},"pusher":{"name":"octocat"}}"#,
    ),
    sample(
        "github",
        "pull_request.opened",
        r#"{"action":"opened","number":2,"pull_request":{"id":279147437,"number":2,"title":"Update the README with new information.","state":"open","updated_at":"2026-11-23T10:00:00Z","head":{"ref":"changes","sha":"ec26c3e57ca3a959ca5aad62de7213c562f8c821"},"base":{"ref":"main"},"user":{"login":"Codertocat"}},"repository":{"id":186853002,"full_name":"Codertocat/Hello-World"},"sender":{"login":"Codertocat"}}"#,
    ),
    sample(
        "github",
        "projects_v2_item.edited",
        r#"{"action":"edited","projects_v2_item":{"id":73213,"node_id":"PVTI_lADOA3aKfM4AAeYfzgAGNi0","project_node_id":"PVT_kwDOA3aKfM4AAeYf","content_node_id":"I_kwDOA3aKfM5V9JtE","content_type":"Issue","updated_at":"2026-11-23T10:00:00Z"},"organization":{"login":"octo-org"},"sender":{"login":"octocat"}}"#,
    ),
    sample(
        "github",
        "ping",
        r#"{"zen":"Keep it logically awesome.","hook_id":12345678,"hook":{"type":"Repository","active":true}}"#,
    ),
    sample(
        "slack",
        "app_mention",
        r#"{"type":"app_mention","user":"U061F7AUR","text":"<@U0LAN0Z89> is it everything a river should be?","ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"}"#,
    ),
    sample(
        "slack",
        "message",
        r#"{"type":"message","channel":"C123ABC456","user":"U123ABC456","text":"Live long and prospect.","ts":"1355517523.000005","channel_type":"channel"}"#,
    ),
    sample(
        "shopify",
        "orders/create",
        r#"{"id":820982911946154508,"email":"jon@example.com","created_at":"2026-11-23T10:00:00-05:00","total_price":"403.00","currency":"USD","financial_status":"paid","line_items":[{"id":866550311766439020,"title":"IPod Nano - 8GB","quantity":1,"price":"199.00"}]}"#,
    ),
    sample(
        "shopify",
        "orders/paid",
        r#"{"id":820982911946154508,"email":"jon@example.com","updated_at":"2026-11-23T10:05:00-05:00","total_price":"403.00","currency":"USD","financial_status":"paid"}"#,
    ),
    sample(
        "shopify",
        "products/update",
        r#"{"id":788032119674292922,"title":"Example T-Shirt","handle":"example-t-shirt","updated_at":"2026-11-23T10:00:00-05:00","variants":[{"id":642667041472713922,"price":"19.99","sku":"example-shirt-s"}]}"#,
    ),
    sample(
        "shopify",
        "customers/create",
        r#"{"id":706405506930370084,"email":"bob@biller.com","first_name":"Bob","last_name":"Biller","created_at":"2026-11-23T10:00:00-05:00"}"#,
    ),
    sample(
        "shopify",
        "app/uninstalled",
        r#"{"id":548380009,"name":"Super Toys","email":"super@supertoys.com","domain":"super.myshopify.com"}"#,
    ),
];

/// The sample of `provider` for `event_type`, if there is one.
pub(crate) fn find(provider: &str, event_type: &str) -> Option<&'static Sample> {
    SAMPLES.iter().find(|sample| sample.provider == provider && sample.event_type == event_type)
}

/// The types `provider` has samples for, its default first.
pub(crate) fn types(provider: &str) -> impl Iterator<Item = &'static str> + '_ {
    SAMPLES.iter().filter(move |sample| sample.provider == provider).map(|sample| sample.event_type)
}

/// The data `send` and `sign` build when no `--data` is given and no sample has the
/// type: of the provider's own shape, so a typed handler can read it (a Stripe event's
/// data is `{"object": {..}}`, its object named after the type).
pub(crate) fn default_data(provider: &str, event_type: &str) -> String {
    if provider != "stripe" {
        return "{}".to_owned();
    }
    // `customer.subscription.updated` is about a `subscription`; `checkout.session.completed`
    // about a `checkout.session`.
    let resource = event_type.rsplit_once('.').map_or(event_type, |(resource, _)| resource);
    let resource = resource.strip_prefix("customer.").unwrap_or(resource);
    let prefix: String = resource.split(['.', '_']).filter_map(|word| word.chars().next()).collect();
    serde_json::json!({ "object": { "id": format!("{prefix}_hookroute_cli"), "object": resource } }).to_string()
}

/// `data` made fresh, as a new event of its kind would be: every `id` a new one of its
/// kind (a number, or the same prefix before `_`), every time (a field ending `_at`, a
/// string) now.
pub(crate) fn fresh(data: &str, now: u64) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
    // Two runs in one microsecond still differ.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut value: serde_json::Value = serde_json::from_str(data)?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX));
    let mut counter = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 1_000;
    refresh(
        &mut value,
        seed,
        &mut counter,
        &humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now)).to_string(),
    );
    serde_json::value::to_raw_value(&value)
}

fn refresh(value: &mut serde_json::Value, seed: u64, counter: &mut u64, now: &str) {
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
                    serde_json::Value::String(text) if key.ends_with("_at") => now.clone_into(text),
                    _ => refresh(field, seed, counter, now),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| refresh(item, seed, counter, now)),
        _ => {}
    }
}

/// The type `send` and `sign` use when none is given.
pub(crate) fn default_type(provider: &str) -> &'static str {
    types(provider).next().unwrap_or("test.event")
}

#[cfg(test)]
mod tests {
    use super::{default_data, fresh, types, SAMPLES};

    #[test]
    fn a_fresh_sample_has_new_ids_and_times_and_the_same_shape() {
        let sample =
            r#"{"id":1,"issue":{"id":"is_abc","updated_at":"2020-01-01T00:00:00Z","title":"t"},"items":[{"id":2}]}"#;
        let (a, b) = (fresh(sample, 1_800_000_000).unwrap(), fresh(sample, 1_800_000_000).unwrap());
        assert_ne!(a.get(), b.get(), "two runs, two events");
        let a: serde_json::Value = serde_json::from_str(a.get()).unwrap();
        assert_ne!(a["id"], 1);
        assert!(a["issue"]["id"].as_str().unwrap().starts_with("is_"));
        assert_ne!(a["issue"]["id"], "is_abc");
        assert_eq!(a["issue"]["updated_at"], "2027-01-15T08:00:00Z");
        assert_eq!(a["issue"]["title"], "t");
        assert_ne!(a["items"][0]["id"], 2);
    }

    #[test]
    fn a_stripe_event_without_a_sample_has_the_shape_of_stripe_data() {
        let data: serde_json::Value =
            serde_json::from_str(&default_data("stripe", "customer.subscription.paused")).unwrap();
        assert_eq!(data["object"]["object"], "subscription");
        assert_eq!(data["object"]["id"], "s_hookroute_cli");
        let data: serde_json::Value =
            serde_json::from_str(&default_data("stripe", "checkout.session.expired")).unwrap();
        assert_eq!(data["object"]["object"], "checkout.session");
        assert_eq!(default_data("groq", "resource.created"), "{}");
    }

    /// Read from the attribute's catalogs: a sample of a type the provider does not
    /// send would teach the wrong name.
    fn catalog(provider: &str) -> Option<&'static str> {
        Some(match provider {
            "groq" => include_str!("../../macros/catalogs/groq.txt"),
            "coreweave" => include_str!("../../macros/catalogs/coreweave.txt"),
            "stripe" => include_str!("../../macros/catalogs/stripe.txt"),
            "github" => include_str!("../../macros/catalogs/github.txt"),
            "slack" => include_str!("../../macros/catalogs/slack.txt"),
            "shopify" => include_str!("../../macros/catalogs/shopify.txt"),
            _ => return None,
        })
    }

    #[test]
    fn every_built_in_provider_has_samples_of_types_it_sends() {
        for provider in hookroute_runtime::provider::BUILT_IN {
            assert!(types(provider).next().is_some(), "no sample for {provider}");
        }
        for sample in SAMPLES {
            serde_json::from_str::<serde_json::Value>(sample.data)
                .unwrap_or_else(|e| panic!("{} {}: {e}", sample.provider, sample.event_type));
            let Some(catalog) = catalog(sample.provider) else { continue };
            let name = match sample.provider {
                "github" => sample.event_type.split('.').next().unwrap_or_default(),
                // Thin events (`v1.…`, `v2.…`) are written `unlisted`: the catalog lists
                // snapshot events.
                "stripe" if sample.event_type.starts_with("v1.") || sample.event_type.starts_with("v2.") => continue,
                _ => sample.event_type,
            };
            assert!(catalog.lines().any(|line| line == name), "{}: `{name}` is not in its catalog", sample.provider);
        }
    }
}
