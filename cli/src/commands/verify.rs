//! `hookroute verify`: whether a captured delivery verifies, and if not, why.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use http::HeaderMap;

use crate::{capture, scheme, secret, Failure, SecretArgs};

#[derive(Args)]
pub(crate) struct VerifyArgs {
    #[arg(help = crate::scheme::provider_help(), long)]
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

pub(crate) fn run(args: &VerifyArgs, json: bool) -> Result<ExitCode, Failure> {
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
