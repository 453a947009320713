//! `hookroute`: send, trigger, capture (listen), sign, verify and load-test webhook deliveries for every scheme
//! hookroute verifies.

mod capture;
mod commands;
mod load;
mod samples;
mod scheme;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

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
    Send(commands::send::SendArgs),
    /// Send a realistic, correctly signed sample event of a provider's type, like `stripe trigger`.
    #[command(after_help = "Examples:
  hookroute trigger --provider groq resource.created          # to http://127.0.0.1:3000/webhooks/groq
  hookroute trigger --provider stripe payment_intent.succeeded --url http://127.0.0.1:3000/webhooks/stripe
  hookroute trigger --list                                     # every provider's sample types")]
    Trigger(commands::trigger::TriggerArgs),
    /// Capture deliveries on a local port (and check, save and forward them), like `stripe listen`.
    #[command(after_help = "Examples:
  hookroute listen --port 4000 --save captures/                 # then: hookroute verify --provider groq captures/0001-*.http
  hookroute listen --port 4000 --forward-to http://127.0.0.1:3000/webhooks/groq --provider groq

Each delivery is answered 200 {\"status\":\"captured\"}, or with the --forward-to target's answer.")]
    Listen(commands::listen::ListenArgs),
    /// Print the headers that sign a body (from --data as `send` builds it, or stdin).
    #[command(after_help = "Examples:
  hookroute sign --provider groq --type resource.created --data '{\"id\":\"r1\"}'     # the body, then its headers
  echo -n '{\"id\":\"evt_1\",\"type\":\"t\",\"data\":{}}' | hookroute sign --provider groq --secret-file secret.txt
  hookroute sign --provider github --id d-1 --type push --curl http://127.0.0.1:3000/webhooks/github < body.json")]
    Sign(commands::sign::SignArgs),
    /// Say whether a captured delivery verifies, and if not, exactly why.
    #[command(after_help = "Exit status: 0 valid, 1 invalid, 2 usage error.

Examples:
  hookroute verify --provider groq captures/0001-1763900000000.http     # a raw HTTP capture (hookroute listen --save)
  hookroute verify --provider stripe --headers headers.txt --body body.json --now 1700000000
  hookroute verify --provider github --secret-file secret.txt --headers h.txt --body b.bin

A capture is the request as it came: request line, headers, a blank line, the body.
The headers file holds one `name: value` per line, as `hookroute sign` prints them.")]
    Verify(commands::verify::VerifyArgs),
    /// Look into a receiver's inbox: stats, list, show, retry, purge, verify.
    #[command(after_help = "Examples:
  hookroute inbox --url postgres://app@127.0.0.1/app stats
  hookroute inbox --url redis://127.0.0.1/ list --state dead --limit 50
  hookroute inbox --url sqlite:inbox.db show evt_1
  hookroute inbox --url ... retry evt_1            # or: retry --all-dead
  hookroute inbox --url ... purge --done-older-than 7d
  hookroute inbox --url ... verify evt_1 --secret-file secret.txt

--url defaults to $HOOKROUTE_INBOX. Exit status: 0 done, 1 not found / invalid / refused, 2 usage or connection error.")]
    Inbox(commands::inbox::InboxArgs),
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

/// What a Shopify delivery names besides its topic: `@shopify/shopify-api` refuses one
/// without them.
#[derive(Args)]
pub(crate) struct ShopifyArgs {
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

/// A one-line error for the user.
type Failure = String;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::Send(args) => commands::send::run(args, json),
        Command::Trigger(args) => commands::trigger::run(args, json),
        Command::Listen(args) => commands::listen::run(args, json),
        Command::Sign(args) => commands::sign::run(&args, json).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => commands::verify::run(&args, json),
        Command::Inbox(args) => commands::inbox::run(args, json),
        Command::Providers => {
            commands::providers::run(json);
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
        match nearest(&lowercase, hookroute_runtime::provider::BUILT_IN.iter().copied(), 2) {
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
