//! `hookroute sign`: the headers that sign a body.

use std::io::Read;

use clap::Args;
use http::HeaderMap;

use crate::{samples, scheme, secret, Failure, SecretArgs, ShopifyArgs};
use crate::{type_and_data, unix_now};

#[derive(Args)]
pub(crate) struct SignArgs {
    #[arg(help = crate::scheme::provider_help(), long)]
    provider: String,
    #[command(flatten)]
    secret: SecretArgs,
    /// The signing time in unix seconds; now by default.
    #[arg(long)]
    timestamp: Option<u64>,
    /// The event id, for schemes that sign or send it in a header.
    #[arg(long, default_value = "evt_cli")]
    id: String,
    /// The event type (in the envelope --data builds, and in the headers of github and
    /// shopify); the provider's first sample type by default.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Build the body from this event data (JSON, or @file) as `send` does, instead of
    /// reading it from stdin.
    #[arg(long)]
    data: Option<String>,
    /// Print a ready curl command for this URL instead of the headers.
    #[arg(long)]
    curl: Option<String>,
    #[command(flatten)]
    shopify: ShopifyArgs,
}

pub(crate) fn run(args: &SignArgs, json: bool) -> Result<(), Failure> {
    let scheme = scheme(&args.provider)?;
    let secret = secret(&args.secret, &*scheme)?;
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    let (event_type, body, built) = if let Some(data) = &args.data {
        let (event_type, data) = type_and_data(&*scheme, args.event_type.as_deref(), Some(data))?;
        let body = scheme.encode(&args.id, &event_type, &data, timestamp);
        (event_type, body, true)
    } else {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).map_err(|e| format!("cannot read the body from stdin: {e}"))?;
        let event_type = args.event_type.clone().unwrap_or_else(|| samples::default_type(scheme.name()).into());
        (event_type, body, false)
    };
    let mut headers = scheme.sign(&secret, &args.id, &event_type, timestamp, &body);
    for (name, value) in &args.shopify.headers(&*scheme)? {
        headers.insert(name, value.clone());
    }
    let curl = args.curl.as_deref().map(|url| curl_command(url, &headers, &body));
    if json {
        let headers: serde_json::Map<String, serde_json::Value> =
            headers.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().into())).collect();
        let mut out = serde_json::json!({ "headers": headers });
        if built {
            out["body"] = String::from_utf8_lossy(&body).into();
        }
        if let Some(curl) = curl {
            out["curl"] = curl.into();
        }
        println!("{out}");
        return Ok(());
    }
    if let Some(curl) = curl {
        println!("{curl}");
        return Ok(());
    }
    for (name, value) in &headers {
        println!("{name}: {}", value.to_str().unwrap_or_default());
    }
    if built {
        // The body these headers sign, after a blank line, as a request carries it.
        println!("\n{}", String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// A curl command that sends exactly `body` with `headers`.
fn curl_command(url: &str, headers: &HeaderMap, body: &[u8]) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
    let mut parts = vec!["curl -sS -X POST".to_owned(), quote(url)];
    for (name, value) in headers {
        parts.push(format!("-H {}", quote(&format!("{name}: {}", value.to_str().unwrap_or_default()))));
    }
    // Exactly the signed bytes: inline when a shell word can carry them and curl reads
    // them as data (not `@file`), else decoded from base64 into stdin.
    match std::str::from_utf8(body) {
        Ok(text) if !text.contains('\0') && !text.starts_with('@') => {
            parts.push(format!("--data-binary {}", quote(text)));
            parts.join(" ")
        }
        _ => {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(body);
            parts.push("--data-binary @-".to_owned());
            format!("printf '%s' '{encoded}' | base64 -d | {}", parts.join(" "))
        }
    }
}
