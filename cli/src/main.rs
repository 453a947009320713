//! `hookroute`: sign, send, verify and load-test webhook deliveries for every scheme
//! hookroute verifies.

mod inbox;
mod load;
mod scheme;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use hookroute_runtime::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::scheme::Scheme;

#[derive(Parser)]
#[command(
    name = "hookroute",
    version,
    about = "Sign, send, verify and load-test webhook deliveries; operate an inbox."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, sign and send an event (or a load of them) to a receiver.
    #[command(after_help = "Examples:
  hookroute send --provider groq --type resource.created --data '{\"id\":\"r1\"}'   # to http://127.0.0.1:3000/webhooks/groq
  hookroute send --provider github --url http://127.0.0.1:3000/webhooks/github --type issues.opened --data @issue.json --id d-1
  hookroute send --provider stripe --url ... --type payment_intent.succeeded --timestamp 1700000000   # outside the window: 401
  hookroute send --provider groq --url ... --type resource.created --tamper                           # wrong signature: 401
  hookroute send --provider groq --url ... --type resource.created --count 10000 --concurrency 64 --duplicates 1")]
    Send(SendArgs),
    /// Print the headers that sign a body read from stdin.
    #[command(after_help = "Examples:
  echo -n '{\"id\":\"evt_1\",\"type\":\"t\",\"data\":{}}' | hookroute sign --provider groq --secret-file secret.txt
  hookroute sign --provider github --id d-1 --type push --curl http://127.0.0.1:3000/webhooks/github < body.json")]
    Sign(SignArgs),
    /// Say whether a captured delivery verifies, and if not, exactly why.
    #[command(after_help = "Exit status: 0 valid, 1 invalid, 2 usage error.

Examples:
  hookroute verify --provider stripe --headers headers.txt --body body.json --now 1700000000
  hookroute verify --provider github --secret-file secret.txt --headers h.txt --body b.bin

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
struct SecretArgs {
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
    /// The event type.
    #[arg(long = "type", default_value = "test.event")]
    event_type: String,
    /// The event's data as JSON, or @file.
    #[arg(long, default_value = "{}", conflicts_with = "body")]
    data: String,
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
    /// The event type, for schemes that send it in a header (github, shopify).
    #[arg(long = "type", default_value = "test.event")]
    event_type: String,
    /// Print a ready curl command for this URL instead of the headers.
    #[arg(long)]
    curl: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The scheme: groq, coreweave, standard, stripe, github, slack, shopify.
    #[arg(long)]
    provider: String,
    #[command(flatten)]
    secret: SecretArgs,
    /// The captured headers: one `name: value` per line.
    #[arg(long)]
    headers: PathBuf,
    /// The captured raw body.
    #[arg(long)]
    body: PathBuf,
    /// Check as if it were this unix time (for old captures); now by default.
    #[arg(long)]
    now: Option<u64>,
    /// The replay window in seconds.
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
}

/// A one-line error for the user.
type Failure = String;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Send(args) => send(args),
        Command::Sign(args) => sign(&args).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify(&args),
        Command::Inbox(args) => inbox::run(args),
        Command::Providers => {
            providers();
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}

fn scheme(name: &str) -> Result<Box<dyn Scheme>, Failure> {
    scheme::by_name(name).ok_or_else(|| {
        // The nearest known name, when it is only a typo away.
        let lowercase = name.to_ascii_lowercase();
        let nearest = scheme::PROVIDERS
            .iter()
            .map(|info| (strsim::levenshtein(&lowercase, info.name), info.name))
            .min()
            .filter(|(distance, _)| *distance <= 2);
        match nearest {
            Some((_, known)) => {
                format!("unknown provider `{name}`: did you mean `{known}`? known: {}", scheme::names())
            }
            None => format!("unknown provider `{name}`; known: {}", scheme::names()),
        }
    })
}

fn secret(args: &SecretArgs, scheme: &dyn Scheme) -> Result<Secret, Failure> {
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
        let headers = self.scheme.sign(&secret, id, &self.event_type, timestamp, &body);
        (headers, body)
    }
}

fn send(args: SendArgs) -> Result<ExitCode, Failure> {
    let scheme = scheme(&args.provider)?;
    let url = args.url.clone().unwrap_or_else(|| format!("http://127.0.0.1:3000/webhooks/{}", scheme.name()));
    let secret = secret(&args.secret, &*scheme)?;
    let data = inline_or_file(&args.data)?;
    let data = serde_json::from_slice::<Box<serde_json::value::RawValue>>(&data)
        .map_err(|e| format!("--data is not JSON: {e}"))?;
    let raw_body = args.body.as_deref().map(inline_or_file).transpose()?;
    let recipe = Recipe {
        scheme,
        secret,
        event_type: args.event_type,
        data,
        raw_body,
        timestamp: args.timestamp,
        tamper: args.tamper,
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
        };
        return runtime.block_on(load::run(recipe, url, plan));
    }
    let id = args.id.unwrap_or_else(|| fresh_id(0));
    let (headers, body) = recipe.build(&id);
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("could not reach {url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        println!("{} {text}", status.as_u16());
        Ok(if status.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

fn sign(args: &SignArgs) -> Result<(), Failure> {
    let scheme = scheme(&args.provider)?;
    let secret = secret(&args.secret, &*scheme)?;
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).map_err(|e| format!("cannot read the body from stdin: {e}"))?;
    let timestamp = args.timestamp.unwrap_or_else(unix_now);
    let headers = scheme.sign(&secret, &args.id, &args.event_type, timestamp, &body);
    match &args.curl {
        None => {
            for (name, value) in &headers {
                println!("{name}: {}", value.to_str().unwrap_or_default());
            }
        }
        Some(url) => {
            let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
            let mut parts = vec!["curl -sS -X POST".to_owned(), quote(url)];
            for (name, value) in &headers {
                parts.push(format!("-H {}", quote(&format!("{name}: {}", value.to_str().unwrap_or_default()))));
            }
            // Exactly the signed bytes: inline when a shell word can carry them and curl
            // reads them as data (not `@file`), else decoded from base64 into stdin.
            match std::str::from_utf8(&body) {
                Ok(text) if !text.contains('\0') && !text.starts_with('@') => {
                    parts.push(format!("--data-binary {}", quote(text)));
                    println!("{}", parts.join(" "));
                }
                _ => {
                    use base64::Engine as _;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
                    parts.push("--data-binary @-".to_owned());
                    println!("printf '%s' '{encoded}' | base64 -d | {}", parts.join(" "));
                }
            }
        }
    }
    Ok(())
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
        let name = HeaderName::try_from(name.trim())
            .map_err(|_| format!("headers line {}: bad name `{}`", n + 1, name.trim()))?;
        let value = HeaderValue::try_from(value.trim()).map_err(|_| format!("headers line {}: bad value", n + 1))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn verify(args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let scheme = scheme(&args.provider)?;
    let secret = secret(&args.secret, &*scheme)?;
    let headers = std::fs::read_to_string(&args.headers)
        .map_err(|e| format!("cannot read {}: {e}", args.headers.display()))
        .and_then(|text| parse_headers(&text))?;
    let body = std::fs::read(&args.body).map_err(|e| format!("cannot read {}: {e}", args.body.display()))?;
    let now = args.now.map_or_else(SystemTime::now, |now| UNIX_EPOCH + Duration::from_secs(now));
    match scheme.verify(secret, Duration::from_secs(args.tolerance), &headers, &body, now) {
        Ok(Some(timestamp)) => println!("valid: {} signature, signed at {timestamp}", scheme.name()),
        Ok(None) => println!("valid: {} signature (the scheme signs no timestamp)", scheme.name()),
        Err(reason) => {
            println!("invalid: {reason}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn providers() {
    println!("{:<10} {:<48} {:<26} id / type", "provider", "signature", "timestamp (±300 s)");
    for info in scheme::PROVIDERS {
        println!("{:<10} {:<48} {:<26} {}", info.name, info.signature, info.timestamp, info.id_and_type);
    }
}
