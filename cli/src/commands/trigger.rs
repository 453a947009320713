//! `hookroute trigger`: send a realistic, signed sample event, like `stripe trigger`.

use std::process::ExitCode;

use clap::Args;

use super::send::send_one;

use crate::{default_url, extra_headers, fresh_id, nearest, unix_now};
use crate::{samples, scheme, secret, Failure, Recipe, SecretArgs, ShopifyArgs};

#[derive(Args)]
pub(crate) struct TriggerArgs {
    #[arg(help = crate::scheme::provider_help(), long, required_unless_present = "list")]
    provider: Option<String>,
    /// The event type to send a sample of.
    #[arg(required_unless_present = "list")]
    event_type: Option<String>,
    /// List every provider's sample types instead.
    #[arg(long)]
    list: bool,
    /// Where to send; by default `http://127.0.0.1:3000/webhooks/<provider>`.
    #[arg(long)]
    url: Option<String>,
    /// The event id; a fresh one by default.
    #[arg(long)]
    id: Option<String>,
    /// An extra header, `name:value`, set after signing (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    #[command(flatten)]
    secret: SecretArgs,
    #[command(flatten)]
    shopify: ShopifyArgs,
}

pub(crate) fn run(args: TriggerArgs, json: bool) -> Result<ExitCode, Failure> {
    if args.list {
        list_samples(json);
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(provider), Some(event_type)) = (args.provider, args.event_type) else {
        return Err("give --provider and an event type, or --list".into());
    };
    let scheme = scheme(&provider)?;
    let Some(sample) = samples::find(scheme.name(), &event_type) else {
        let known: Vec<&str> = samples::types(scheme.name()).collect();
        let hint = match nearest(&event_type, known.iter().copied(), 3) {
            Some(known) => format!(" did you mean `{known}`?"),
            None => String::new(),
        };
        return Err(format!(
            "no {} sample of `{event_type}`;{hint} samples: {} (or send your own: hookroute send --type {event_type} --data ...)",
            scheme.name(),
            known.join(", ")
        ));
    };
    let url = args.url.unwrap_or_else(|| default_url(&*scheme));
    let url: reqwest::Url = url.parse().map_err(|e| format!("--url `{url}`: {e}"))?;
    // A fresh copy each run, as `stripe trigger` makes: new ids and times, so a second
    // run is a new event (GitHub and Shopify deduplicate on the body too).
    let data = samples::fresh(sample, unix_now()).map_err(|e| format!("sample data: {e}"))?;
    let recipe = Recipe {
        secret: secret(&args.secret, &*scheme)?,
        event_type: sample.event_type.to_owned(),
        data,
        extra: extra_headers(&args.shopify, &*scheme, &args.headers)?,
        scheme,
        raw_body: None,
        timestamp: None,
        tamper: false,
    };
    let id = args.id.unwrap_or_else(|| fresh_id(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(send_one(&recipe, &url, &id, json))
}

fn list_samples(json: bool) {
    if json {
        let rows: Vec<_> = hookroute_runtime::provider::PROVIDERS
            .iter()
            .flat_map(|provider| {
                provider
                    .description()
                    .samples
                    .iter()
                    .map(|sample| serde_json::json!({ "provider": provider.name(), "type": sample.event_type }))
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    for provider in hookroute_runtime::provider::BUILT_IN {
        println!("{provider:<10} {}", samples::types(provider).collect::<Vec<_>>().join(", "));
    }
}
