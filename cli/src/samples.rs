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

/// The type `send` and `sign` use when none is given.
pub(crate) fn default_type(provider: &str) -> &'static str {
    types(provider).next().unwrap_or("test.event")
}

#[cfg(test)]
mod tests {
    use super::{types, SAMPLES};

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
                _ => sample.event_type,
            };
            assert!(catalog.lines().any(|line| line == name), "{}: `{name}` is not in its catalog", sample.provider);
        }
    }
}
