//! Realistic event data per provider and type: each provider's own samples (its
//! `Describe` impl in the runtime), shaped after its published examples (Stripe's API
//! reference objects, GitHub's payload examples, Slack's Events API reference,
//! Shopify's webhook reference, the Standard Webhooks specification). `trigger` sends
//! them; `send` and `sign` use them when no `--data` is given, so the defaults fit the
//! example receivers. Here: what is made of them (fresh ids and times, defaults).

use hookroute_runtime::provider::{built_in, Sample};

/// The sample of `provider` for `event_type`, if there is one.
pub(crate) fn find(provider: &str, event_type: &str) -> Option<&'static Sample> {
    built_in(provider)?.sample(event_type)
}

/// The types `provider` has samples for, its default first.
pub(crate) fn types(provider: &str) -> impl Iterator<Item = &'static str> {
    let samples = built_in(provider).map_or(&[][..], |provider| provider.description().samples);
    samples.iter().map(|sample| sample.event_type)
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

/// `sample` made fresh, as a new event of its kind would be: every `id` a new one of
/// its kind ([`Sample::fresh`]) and every time (a field ending `_at`, a string) now.
pub(crate) fn fresh(sample: &Sample, now: u64) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
    let mut value = sample.fresh();
    let now = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(now));
    new_times(&mut value, &now.to_string());
    serde_json::value::to_raw_value(&value)
}

fn new_times(value: &mut serde_json::Value, now: &str) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match field {
                    serde_json::Value::String(text) if key.ends_with("_at") => now.clone_into(text),
                    _ => new_times(field, now),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| new_times(item, now)),
        _ => {}
    }
}

/// The type `send` and `sign` use when none is given.
pub(crate) fn default_type(provider: &str) -> &'static str {
    types(provider).next().unwrap_or("test.event")
}

#[cfg(test)]
mod tests {
    use hookroute_runtime::provider::Sample;

    use super::{default_data, fresh, types};

    #[test]
    fn a_fresh_sample_has_new_ids_and_times_and_the_same_shape() {
        let sample = Sample::new(
            "t",
            r#"{"id":1,"issue":{"id":"is_abc","updated_at":"2020-01-01T00:00:00Z","title":"t"},"items":[{"id":2}]}"#,
        );
        let (a, b) = (fresh(&sample, 1_800_000_000).unwrap(), fresh(&sample, 1_800_000_000).unwrap());
        assert_ne!(a.get(), b.get(), "two runs, two events");
        let a: serde_json::Value = serde_json::from_str(a.get()).unwrap();
        assert_ne!(a["id"], 1);
        assert_eq!(a["issue"]["updated_at"], "2027-01-15T08:00:00Z");
        assert_eq!(a["issue"]["title"], "t");
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

    /// The attribute's catalog of `provider`, read from `macros/catalogs/` (none for
    /// Standard Webhooks, whose types are the sender's own).
    fn catalog(provider: &str) -> Option<String> {
        std::fs::read_to_string(format!("{}/../macros/catalogs/{provider}.txt", env!("CARGO_MANIFEST_DIR"))).ok()
    }

    #[test]
    fn every_built_in_provider_has_samples_of_types_it_sends() {
        for provider in hookroute_runtime::provider::BUILT_IN {
            assert!(types(provider).next().is_some(), "no sample for {provider}");
            let Some(catalog) = catalog(provider) else {
                assert_eq!(*provider, "standard", "macros/catalogs/{provider}.txt is missing");
                continue;
            };
            for event_type in types(provider) {
                let name = match *provider {
                    "github" => event_type.split('.').next().unwrap_or_default(),
                    // Thin events (`v1.…`, `v2.…`) are written `unlisted`: the catalog
                    // lists snapshot events.
                    "stripe" if event_type.starts_with("v1.") || event_type.starts_with("v2.") => continue,
                    _ => event_type,
                };
                assert!(catalog.lines().any(|line| line == name), "{provider}: `{name}` is not in its catalog");
            }
        }
    }
}
