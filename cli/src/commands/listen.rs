//! `hookroute listen`: a local endpoint that captures deliveries byte for byte, and can
//! check their signature and forward them to your receiver, as `stripe listen` does.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use hookroute_runtime::Secret;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::scheme::Scheme;
use crate::{capture, Failure, SecretArgs};

/// The largest body `listen` takes; providers send far less.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How many connections `listen` serves at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// Headers that belong to one connection, never forwarded to the next (RFC 9110
/// 7.6.1), beside those the `Connection` header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // Framing and routing: the client sets its own.
    "host",
    "content-length",
];

#[derive(Args)]
pub(crate) struct ListenArgs {
    /// The port to listen on (0: any free one; the address is printed first).
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// The address to listen on; loopback by default.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Forward each delivery (same method, headers and body) to this URL, and answer
    /// the sender with its response.
    #[arg(long)]
    forward_to: Option<String>,
    /// Save each delivery as a raw HTTP capture in this directory, for `hookroute verify`.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Check each delivery's signature with this scheme (and its secret) and print why
    /// one fails.
    #[arg(long)]
    provider: Option<String>,
    /// How long a body may take to arrive whole (a receiver's default: 10 s); a slower
    /// one is answered 408.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    body_timeout: Duration,
    #[command(flatten)]
    secret: SecretArgs,
}

struct State {
    seq: AtomicU64,
    body_timeout: Duration,
    save: Option<PathBuf>,
    forward: Option<reqwest::Url>,
    client: reqwest::Client,
    check: Option<(Box<dyn Scheme>, Secret)>,
    json: bool,
}

pub(crate) fn run(args: ListenArgs, json: bool) -> Result<std::process::ExitCode, Failure> {
    let forward = args
        .forward_to
        .as_deref()
        .map(|url| url.parse::<reqwest::Url>().map_err(|e| format!("--forward-to `{url}`: {e}")))
        .transpose()?;
    if let Some(dir) = &args.save {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let check = match &args.provider {
        Some(name) => {
            let scheme = crate::scheme(name)?;
            let secret = crate::secret(&args.secret, &*scheme)?;
            Some((scheme, secret))
        }
        None => None,
    };
    // A redirect would send the signed body somewhere the operator did not name.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let state = Arc::new(State {
        seq: AtomicU64::new(0),
        body_timeout: args.body_timeout,
        save: args.save,
        forward,
        client,
        check,
        json,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(SocketAddr::new(args.host, args.port), state))
}

async fn serve(addr: SocketAddr, state: Arc<State>) -> Result<std::process::ExitCode, Failure> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if state.json {
        println!("{}", serde_json::json!({ "listening": format!("http://{local}") }));
    } else {
        let forward = state.forward.as_ref().map(|url| format!(", forwarding to {url}")).unwrap_or_default();
        println!("listening on http://{local}{forward} (Ctrl-C to stop)");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return Ok(std::process::ExitCode::SUCCESS) };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(std::process::ExitCode::SUCCESS),
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(Arc::clone(&state), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                eprintln!("connection: {error}");
            }
            drop(slot);
        });
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let request_line = format!("{} {target} HTTP/1.1", parts.method);
    let body = match tokio::time::timeout(state.body_timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(error)) => {
            eprintln!("{request_line}: body not read: {error}");
            return Ok(answer(StatusCode::PAYLOAD_TOO_LARGE, r#"{"error":"body not read"}"#));
        }
        Err(_elapsed) => {
            eprintln!("{request_line}: the body did not arrive within {:?}", state.body_timeout);
            let mut response = answer(StatusCode::REQUEST_TIMEOUT, r#"{"error":"the body did not arrive in time"}"#);
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            return Ok(response);
        }
    };
    let n = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let mut report = serde_json::json!({
        "n": n,
        "method": parts.method.as_str(),
        "path": target,
        "bytes": body.len(),
    });

    if let Some(dir) = &state.save {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis());
        let path = dir.join(format!("{n:04}-{millis}.http"));
        match capture::write(&path, &request_line, &parts.headers, &body) {
            Ok(()) => report["saved"] = path.display().to_string().into(),
            Err(error) => report["save_error"] = format!("{}: {error}", path.display()).into(),
        }
    }
    if let Some((scheme, secret)) = &state.check {
        let verdict = scheme.verify(secret.clone(), crate::DEFAULT_TOLERANCE, &parts.headers, &body, SystemTime::now());
        report["signature"] = match verdict {
            Ok(_) => "valid".into(),
            Err(reason) => format!("invalid: {reason}").into(),
        };
    }
    let response = match &state.forward {
        None => answer(StatusCode::OK, r#"{"status":"captured"}"#),
        Some(url) => forward(&state.client, url, &parts.headers, body, &mut report).await,
    };
    print_report(&report, state.json);
    Ok(response)
}

/// Sends the delivery on, and turns the answer into the sender's.
async fn forward(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &HeaderMap,
    body: Bytes,
    report: &mut serde_json::Value,
) -> Response<Full<Bytes>> {
    let outgoing = forwarded_headers(headers);
    match client.post(url.clone()).headers(outgoing).body(body).send().await {
        Ok(response) => {
            let status = response.status();
            let bytes = response.bytes().await.unwrap_or_default();
            report["forwarded"] = serde_json::json!({
                "status": status.as_u16(),
                "body": String::from_utf8_lossy(&bytes),
            });
            answer(status, bytes)
        }
        Err(error) => {
            report["forwarded"] = serde_json::json!({ "error": error.to_string() });
            answer(StatusCode::BAD_GATEWAY, r#"{"error":"the forward target did not answer"}"#)
        }
    }
}

/// The headers to send on: all but the hop-by-hop ones, and those `Connection` names.
fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let mut outgoing = headers.clone();
    for name in HOP_BY_HOP.iter().copied().chain(named.iter().map(String::as_str)) {
        outgoing.remove(name);
    }
    outgoing
}

fn print_report(report: &serde_json::Value, json: bool) {
    if json {
        println!("{report}");
        return;
    }
    let text = |key: &str| report.get(key).and_then(serde_json::Value::as_str);
    let mut line = format!(
        "#{} {} {} ({} bytes)",
        report["n"],
        text("method").unwrap_or_default(),
        text("path").unwrap_or_default(),
        report["bytes"]
    );
    if let Some(signature) = text("signature") {
        let _ = write!(line, " signature {signature}");
    }
    if let Some(saved) = text("saved") {
        let _ = write!(line, " saved {saved}");
    }
    if let Some(error) = text("save_error") {
        let _ = write!(line, " NOT SAVED: {error}");
    }
    match report.get("forwarded") {
        Some(forwarded) if forwarded.get("error").is_some() => {
            let _ = write!(line, " -> forward failed: {}", forwarded["error"].as_str().unwrap_or_default());
        }
        Some(forwarded) => {
            let _ = write!(line, " -> {} {}", forwarded["status"], forwarded["body"].as_str().unwrap_or_default());
        }
        None => {}
    }
    println!("{line}");
}
