//! `hookroute send`: build, sign and send an event (or a load of them) to a receiver.

use std::process::ExitCode;

use clap::Args;

use crate::{default_url, extra_headers, fresh_id, inline_or_file, type_and_data};
use crate::{load, scheme, secret, Failure, Recipe, SecretArgs, ShopifyArgs};

#[derive(Args)]
pub(crate) struct SendArgs {
    #[arg(help = crate::scheme::provider_help(), long)]
    provider: String,
    /// Where to send; by default `http://127.0.0.1:3000/webhooks/<provider>`, where the
    /// example receivers listen.
    #[arg(long)]
    url: Option<String>,
    /// The event type; the provider's first sample type by default.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// The event's data as JSON, or @file; the type's sample data by default (else `{}`).
    #[arg(long, conflicts_with = "body")]
    data: Option<String>,
    /// An extra header, `name:value`, set after signing (repeatable; replaces a signed one).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// A whole raw body from @file, sent as it is (instead of an envelope built from --data).
    #[arg(long)]
    body: Option<String>,
    /// The event id (fixed, to test deduplication); a fresh one per event otherwise.
    #[arg(long)]
    id: Option<String>,
    /// The signing time in unix seconds (to test the replay window); now by default.
    #[arg(long)]
    timestamp: Option<u64>,
    /// Send a wrong signature on purpose.
    #[arg(long)]
    tamper: bool,
    #[command(flatten)]
    secret: SecretArgs,
    #[command(flatten)]
    shopify: ShopifyArgs,
    /// Load run: how many requests in all.
    #[arg(long)]
    count: Option<u64>,
    /// Load run: how many in flight at once.
    #[arg(long, default_value_t = 16, requires = "count")]
    concurrency: usize,
    /// Load run: how many extra copies of each event (a provider's retries).
    #[arg(long, default_value_t = 0, requires = "count")]
    duplicates: u64,
    /// Load run: allow a target that is not loopback.
    #[arg(long)]
    allow_remote: bool,
}

pub(crate) fn run(args: SendArgs, json: bool) -> Result<ExitCode, Failure> {
    let scheme = scheme(&args.provider)?;
    let url = args.url.clone().unwrap_or_else(|| default_url(&*scheme));
    let secret = secret(&args.secret, &*scheme)?;
    let (event_type, data) = type_and_data(&*scheme, args.event_type.as_deref(), args.data.as_deref())?;
    let raw_body = args.body.as_deref().map(inline_or_file).transpose()?;
    let recipe = Recipe {
        secret,
        event_type,
        data,
        raw_body,
        timestamp: args.timestamp,
        tamper: args.tamper,
        extra: extra_headers(&args.shopify, &*scheme, &args.headers)?,
        scheme,
    };
    let url: reqwest::Url = url.parse().map_err(|e| format!("--url `{url}`: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    if let Some(count) = args.count {
        let plan = load::Plan {
            count,
            concurrency: args.concurrency.max(1),
            copies: args.duplicates + 1,
            allow_remote: args.allow_remote,
            fixed_id: args.id,
            json,
        };
        return runtime.block_on(load::run(recipe, url, plan));
    }
    let id = args.id.unwrap_or_else(|| fresh_id(0));
    runtime.block_on(send_one(&recipe, &url, &id, json))
}

/// Sends one delivery and prints the answer: `<status> <body>`, or a JSON object.
pub(crate) async fn send_one(recipe: &Recipe, url: &reqwest::Url, id: &str, json: bool) -> Result<ExitCode, Failure> {
    let (headers, body) = recipe.build(id);
    let response = reqwest::Client::new()
        .post(url.clone())
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("could not reach {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if json {
        let body = serde_json::from_str::<serde_json::Value>(&text).unwrap_or(serde_json::Value::String(text));
        let line = serde_json::json!({
            "url": url.as_str(),
            "id": id,
            "type": recipe.event_type,
            "status": status.as_u16(),
            "body": body,
        });
        println!("{line}");
    } else {
        println!("{} {text}", status.as_u16());
    }
    Ok(if status.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
