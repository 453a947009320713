//! `hookroute`: send, trigger, capture (listen), sign, verify and load-test webhook deliveries for every scheme
//! hookroute verifies.

mod capture;
mod inbox;
mod listen;
mod load;
mod samples;
mod scheme;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use hookroute_runtime::Secret;
use http::HeaderMap;

use crate::scheme::Scheme;

pub(crate) use hookroute_runtime::provider::DEFAULT_TOLERANCE;

#[derive(Parser)]
#[command(
    name = "hookroute",
    version,
    about = "Send, trigger, capture, sign, verify and load-test webhook deliveries; operate an inbox."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print results as JSON: one object (one per line for `listen`).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Build, sign and send an event (or a load of them) to a receiver.
    #[command(
        after_help = "Without --type and --data, the provider's first sample is sent (`hookroute trigger --list`).

Examples:
  hookroute send --provider groq --type resource.created --data '{\"id\":\"r1\"}'   # to http://127.0.0.1:3000/webhooks/groq
  hookroute send --provider github --url http://127.0.0.1:3000/webhooks/github --type issues.opened --data @issue.json --id d-1
  hookroute send --provider stripe --url ... --type payment_intent.succeeded --timestamp 1700000000   # outside the window: 401
  hookroute send --provider groq --url ... --type resource.created --tamper                           # wrong signature: 401
  hookroute send --provider groq --url ... --type resource.created --count 10000 --concurrency 64 --duplicates 1"
    )]
    Send(SendArgs),
    /// Send a realistic, correctly signed sample event of a provider's type, like `stripe trigger`.
    #[command(after_help = "Examples:
  hookroute trigger --provider groq resource.created          # to http://127.0.0.1:3000/webhooks/groq
  hookroute trigger --provider stripe payment_intent.succeeded --url http://127.0.0.1:3000/webhooks/stripe
  hookroute trigger --list                                     # every provider's sample types")]
    Trigger(TriggerArgs),
    /// Capture deliveries on a local port (and check, save and forward them), like `stripe listen`.
    #[command(after_help = "Examples:
  hookroute listen --port 4000 --save captures/                 # then: hookroute verify --provider groq captures/0001-*.http
  hookroute listen --port 4000 --forward-to http://127.0.0.1:3000/webhooks/groq --provider groq

Each delivery is answered 200 {\"status\":\"captured\"}, or with the --forward-to target's answer.")]
    Listen(listen::ListenArgs),
    /// Print the headers that sign a body (from --data as `send` builds it, or stdin).
    #[command(after_help = "Examples:
  hookroute sign --provider groq --type resource.created --data '{\"id\":\"r1\"}'     # the body, then its headers
  echo -n '{\"id\":\"evt_1\",\"type\":\"t\",\"data\":{}}' | hookroute sign --provider groq --secret-file secret.txt
  hookroute sign --provider github --id d-1 --type push --curl http://127.0.0.1:3000/webhooks/github < body.json")]
    Sign(SignArgs),
    /// Say whether a captured delivery verifies, and if not, exactly why.
    #[command(after_help = "Exit status: 0 valid, 1 invalid, 2 usage error.

Examples:
  hookroute verify --provider groq captures/0001-1763900000000.http     # a raw HTTP capture (hookroute listen --save)
  hookroute verify --provider stripe --headers headers.txt --body body.json --now 1700000000
  hookroute verify --provider github --secret-file secret.txt --headers h.txt --body b.bin

A capture is the request as it came: request line, headers, a blank line, the body.
The headers file holds one `name: value` per line, as `hookroute sign` prints them.")]
    Verify(VerifyArgs),
    /// Look into a receiver's inbox: stats, list, show, retry, purge, verify.
    #[command(after_help = "Examples:
  hookroute inbox --url postgres://app@127.0.0.1/app stats
  hookroute inbox --url redis://127.0.0.1/ list --state dead --limit 50
  hookroute inbox --url sqlite:inbox.db show evt_1
  hookroute inbox --url ... retry evt_1            # or: retry --all-dead
  hookroute inbox --url ... purge --done-older-than 7d
  hookroute inbox --url ... verify evt_1 --secret-file secret.txt

--url defaults to $HOOKROUTE_INBOX. Exit status: 0 done, 1 not found / invalid / refused, 2 usage or connection error.")]
    Inbox(inbox::InboxArgs),
    /// List the schemes, their headers and their replay protection.
    #[command(after_help = "Examples:\n  hookroute providers")]
    Providers,
}

#[derive(Args)]
pub(crate) struct SecretArgs {
    /// The signing secret (or --secret-file, or the provider's variable, e.g. `GROQ_WEBHOOK_SECRET`).
    #[arg(long, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// A file holding the secret (a trailing newline is ignored), to keep it out of shell history.
    #[arg(long)]
    secret_file: Option<PathBuf>,
}

#[derive(Args)]
struct SendArgs {
    /// The scheme: groq, coreweave, standard, stripe, github, slack, shopify.
    #[arg(long)]
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

#[derive(Args)]
struct SignArgs {
    /// The scheme: groq, coreweave, standard, stripe, github, slack, shopify.
    #[arg(long)]
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

/// What a Shopify delivery names besides its topic: `@shopify/shopify-api` refuses one
/// without them.
#[derive(Args)]
struct ShopifyArgs {
    /// shopify: the shop the delivery comes from (`X-Shopify-Shop-Domain`; by default
    /// `hookroute-test.myshopify.com`).
    #[arg(long, value_name = "DOMAIN")]
    shop_domain: Option<String>,
    /// shopify: the Admin API version of the payload (`X-Shopify-API-Version`; by default
    /// the version of hookroute's Shopify catalog).
    #[arg(long, value_name = "VERSION")]
    api_version: Option<String>,
}

impl ShopifyArgs {
    /// The headers these flags set, after signing (Shopify signs only the body);
    /// refused for another provider.
    fn headers(&self, scheme: &dyn Scheme) -> Result<HeaderMap, Failure> {
        let flags = [
            ("x-shopify-shop-domain", &self.shop_domain, "--shop-domain"),
            ("x-shopify-api-version", &self.api_version, "--api-version"),
        ];
        let mut headers = HeaderMap::new();
        for (header, value, flag) in flags {
            let Some(value) = value else { continue };
            if scheme.name() != "shopify" {
                return Err(format!("{flag} is for --provider shopify, not {}", scheme.name()));
            }
            let (name, value) = capture::header(header, value).map_err(|e| format!("{flag} `{value}`: {e}"))?;
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

#[derive(Args)]
struct VerifyArgs {
    /// The scheme: groq, coreweave, standard, stripe, github, slack, shopify.
    #[arg(long)]
    provider: String,
    #[command(flatten)]
    secret: SecretArgs,
    /// A raw HTTP capture: request line, headers, blank line, body (as `listen --save` writes).
    #[arg(conflicts_with_all = ["headers", "body"], required_unless_present_all = ["headers", "body"])]
    capture: Option<PathBuf>,
    /// The captured headers: one `name: value` per line.
    #[arg(long, requires = "body")]
    headers: Option<PathBuf>,
    /// The captured raw body.
    #[arg(long, requires = "headers")]
    body: Option<PathBuf>,
    /// Check as if it were this unix time (for old captures); now by default.
    #[arg(long)]
    now: Option<u64>,
    /// The replay window in seconds.
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
}

#[derive(Args)]
struct TriggerArgs {
    /// The scheme: groq, coreweave, standard, stripe, github, slack, shopify.
    #[arg(long, required_unless_present = "list")]
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

/// A one-line error for the user.
type Failure = String;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::Send(args) => send(args, json),
        Command::Trigger(args) => trigger(args, json),
        Command::Listen(args) => listen::run(args, json),
        Command::Sign(args) => sign(&args, json).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify(&args, json),
        Command::Inbox(args) => inbox::run(args, json),
        Command::Providers => {
            providers(json);
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}

pub(crate) fn scheme(name: &str) -> Result<Box<dyn Scheme>, Failure> {
    scheme::by_name(name).ok_or_else(|| {
        let lowercase = name.to_ascii_lowercase();
        match nearest(&lowercase, scheme::PROVIDERS.iter().map(|info| info.name), 2) {
            Some(known) => {
                format!("unknown provider `{name}`: did you mean `{known}`? known: {}", scheme::names())
            }
            None => format!("unknown provider `{name}`; known: {}", scheme::names()),
        }
    })
}

/// The known name nearest to `name`, when it is at most `max` edits away: a typo.
fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>, max: usize) -> Option<&'a str> {
    known
        .into_iter()
        .map(|known| (strsim::levenshtein(name, known), known))
        .min()
        .filter(|(distance, _)| *distance <= max)
        .map(|(_, known)| known)
}

pub(crate) fn secret(args: &SecretArgs, scheme: &dyn Scheme) -> Result<Secret, Failure> {
    if let Some(secret) = &args.secret {
        return Ok(Secret::from(secret.as_str()));
    }
    if let Some(path) = &args.secret_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return Ok(Secret::from(text.trim_end_matches(['\n', '\r'])));
    }
    Secret::from_env(scheme.secret_env())
        .map_err(|_| format!("no secret: give --secret, --secret-file, or set {}", scheme.secret_env()))
}

/// `@file` → the file's bytes; anything else → its own bytes.
fn inline_or_file(value: &str) -> Result<Vec<u8>, Failure> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(value.as_bytes().to_vec()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// A fresh event id.
pub(crate) fn fresh_id(n: u64) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    format!("evt_cli_{nanos:x}_{n}")
}

/// Everything needed to build one delivery of a `send`.
pub(crate) struct Recipe {
    scheme: Box<dyn Scheme>,
    secret: Secret,
    event_type: String,
    data: Box<serde_json::value::RawValue>,
    raw_body: Option<Vec<u8>>,
    timestamp: Option<u64>,
    tamper: bool,
    /// `--header`s, set after signing.
    extra: HeaderMap,
}

impl Recipe {
    /// The headers and body of the delivery of event `id`.
    pub(crate) fn build(&self, id: &str) -> (HeaderMap, Vec<u8>) {
        let timestamp = self.timestamp.unwrap_or_else(unix_now);
        let body = match &self.raw_body {
            Some(body) => body.clone(),
            None => self.scheme.encode(id, &self.event_type, &self.data, timestamp),
        };
        let secret = if self.tamper { Secret::from("hookroute-cli-tampered") } else { self.secret.clone() };
        let mut headers = self.scheme.sign(&secret, id, &self.event_type, timestamp, &body);
        for (name, value) in &self.extra {
            headers.insert(name, value.clone());
        }
        (headers, body)
    }
}

/// The event type and data to send: as given, else the provider's sample.
fn type_and_data(
    scheme: &dyn Scheme,
    event_type: Option<&str>,
    data: Option<&str>,
) -> Result<(String, Box<serde_json::value::RawValue>), Failure> {
    let event_type = event_type.unwrap_or_else(|| samples::default_type(scheme.name())).to_owned();
    let data = match data {
        Some(data) => inline_or_file(data)?,
        None => match samples::find(scheme.name(), &event_type) {
            Some(sample) => sample.data.as_bytes().to_vec(),
            None => samples::default_data(scheme.name(), &event_type).into_bytes(),
        },
    };
    let data = serde_json::from_slice(&data).map_err(|e| format!("--data is not JSON: {e}"))?;
    Ok((event_type, data))
}

/// The headers set after signing: the Shopify flags', then the `name:value` arguments.
fn extra_headers(shopify: &ShopifyArgs, scheme: &dyn Scheme, args: &[String]) -> Result<HeaderMap, Failure> {
    let mut headers = shopify.headers(scheme)?;
    for arg in args {
        let (name, value) = arg.split_once(':').ok_or_else(|| format!("--header `{arg}`: expected `name:value`"))?;
        let (name, value) = capture::header(name.trim(), value.trim()).map_err(|e| format!("--header `{arg}`: {e}"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn default_url(scheme: &dyn Scheme) -> String {
    format!("http://127.0.0.1:3000/webhooks/{}", scheme.name())
}

fn send(args: SendArgs, json: bool) -> Result<ExitCode, Failure> {
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
async fn send_one(recipe: &Recipe, url: &reqwest::Url, id: &str, json: bool) -> Result<ExitCode, Failure> {
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

fn trigger(args: TriggerArgs, json: bool) -> Result<ExitCode, Failure> {
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
    let data = samples::fresh(sample.data, unix_now()).map_err(|e| format!("sample data: {e}"))?;
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
        let rows: Vec<_> = samples::SAMPLES
            .iter()
            .map(|sample| serde_json::json!({ "provider": sample.provider, "type": sample.event_type }))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    for provider in hookroute_runtime::provider::BUILT_IN {
        println!("{provider:<10} {}", samples::types(provider).collect::<Vec<_>>().join(", "));
    }
}

fn sign(args: &SignArgs, json: bool) -> Result<(), Failure> {
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

/// `name: value` lines into headers; blank lines and `#` comments are skipped.
fn parse_headers(text: &str) -> Result<HeaderMap, Failure> {
    let mut headers = HeaderMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| format!("headers line {}: expected `name: value`", n + 1))?;
        let (name, value) =
            capture::header(name.trim(), value.trim()).map_err(|e| format!("headers line {}: {e}", n + 1))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn verify(args: &VerifyArgs, json: bool) -> Result<ExitCode, Failure> {
    let scheme = scheme(&args.provider)?;
    let secret = secret(&args.secret, &*scheme)?;
    let mut request = None;
    let (headers, body) = match (&args.capture, &args.headers, &args.body) {
        (Some(path), _, _) => {
            let capture = capture::read(path)?;
            request = Some(capture.request_line);
            (capture.headers, capture.body)
        }
        (None, Some(headers), Some(body)) => {
            let headers = std::fs::read_to_string(headers)
                .map_err(|e| format!("cannot read {}: {e}", headers.display()))
                .and_then(|text| parse_headers(&text))?;
            let body = std::fs::read(body).map_err(|e| format!("cannot read {}: {e}", body.display()))?;
            (headers, body)
        }
        _ => return Err("give a capture file, or --headers and --body".into()),
    };
    let now = args.now.map_or_else(SystemTime::now, |now| UNIX_EPOCH + Duration::from_secs(now));
    let verdict = scheme.verify(secret, Duration::from_secs(args.tolerance), &headers, &body, now);
    if json {
        let mut out = match &verdict {
            Ok(timestamp) => serde_json::json!({ "valid": true, "provider": scheme.name(), "timestamp": timestamp }),
            Err(reason) => serde_json::json!({ "valid": false, "provider": scheme.name(), "reason": reason }),
        };
        if let Some(request) = request {
            out["request"] = request.into();
        }
        println!("{out}");
    } else {
        match &verdict {
            Ok(Some(timestamp)) => println!("valid: {} signature, signed at {timestamp}", scheme.name()),
            Ok(None) => println!("valid: {} signature (the scheme signs no timestamp)", scheme.name()),
            Err(reason) => println!("invalid: {reason}"),
        }
    }
    Ok(if verdict.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn providers(json: bool) {
    if json {
        let rows: Vec<_> = scheme::PROVIDERS
            .iter()
            .map(|info| {
                serde_json::json!({
                    "name": info.name,
                    "signature": info.signature,
                    "timestamp": info.timestamp,
                    "id_and_type": info.id_and_type,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!("{:<10} {:<48} {:<26} id / type", "provider", "signature", "timestamp (±300 s)");
    for info in scheme::PROVIDERS {
        println!("{:<10} {:<48} {:<26} {}", info.name, info.signature, info.timestamp, info.id_and_type);
    }
}
