//! The real `hookroute` binary against a real receiver on 127.0.0.1.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use hookroute::{webhook_handlers, EventMeta, HandlerError, Receiver};
use predicates::prelude::*;

const SECRET: &str = "whsec_cli_test";

/// Remembers which events its handler ran for.
#[derive(Clone, Default)]
struct App(Arc<Mutex<Vec<String>>>);

/// The `data` the example receiver takes: data of another shape is a 400.
#[derive(serde::Deserialize)]
struct Resource {
    #[allow(dead_code)]
    id: String,
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(meta.id().to_owned());
        Ok(())
    }
}

/// A receiver on its own runtime thread; answers its URL and the handler's record.
fn receiver() -> (String, App) {
    let app = App::default();
    (serve(Receiver::builder(app.clone()).secret(SECRET).build().unwrap()), app)
}

/// Serves `receiver` on its own runtime thread; answers its URL.
fn serve<H: hookroute::WebhookHandlers>(receiver: Receiver<H>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let router = axum::Router::new().route("/webhooks/p", hookroute::axum::post(receiver));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}/webhooks/p", listener.local_addr().unwrap())).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Which GitHub and Stripe events ran.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

#[derive(Clone, Default)]
struct GitHubApp(Seen);

#[webhook_handlers(provider = "github")]
impl GitHubApp {
    #[event("issues.opened")]
    async fn opened(&self, _issue: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        (self.0).0.lock().unwrap().push(meta.id().to_owned());
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct StripeData {
    object: StripeObject,
}

#[derive(serde::Deserialize)]
struct StripeObject {
    #[allow(dead_code)]
    id: String,
    object: String,
}

#[derive(Clone, Default)]
struct StripeApp(Seen);

#[webhook_handlers(provider = "stripe")]
impl StripeApp {
    #[event("customer.subscription.paused")]
    async fn paused(&self, data: StripeData, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(data.object.object, "subscription");
        (self.0).0.lock().unwrap().push(meta.event_type().to_owned());
        Ok(())
    }

    #[event("customer.subscription.updated")]
    async fn updated(&self, data: StripeData, meta: &EventMeta) -> Result<(), HandlerError> {
        assert_eq!(data.object.object, "subscription");
        (self.0).0.lock().unwrap().push(meta.event_type().to_owned());
        Ok(())
    }
}

/// `trigger --provider github` sent one body every run, so the second was a
/// `duplicate` (GitHub deduplicates on the signed body); and `send` without `--data`
/// sent Stripe `data: {}`, which no typed handler can read.
#[test]
fn trigger_makes_a_fresh_event_each_run_and_send_defaults_to_the_providers_shape() {
    let github = GitHubApp::default();
    let url = serve(Receiver::builder(github.clone()).secret(SECRET).build().unwrap());
    for _ in 0..2 {
        let mut trigger = hookroute();
        trigger.args(["trigger", "--provider", "github", "issues.opened", "--url", &url, "--secret", SECRET]);
        trigger.assert().success().stdout(predicate::str::starts_with("200 {\"status\":\"processed\"}"));
    }
    assert_eq!((github.0).0.lock().unwrap().len(), 2);

    let stripe = StripeApp::default();
    let url = serve(Receiver::builder(stripe.clone()).secret(SECRET).build().unwrap());
    for event_type in ["customer.subscription.paused", "customer.subscription.updated"] {
        let mut send = hookroute();
        send.args(["send", "--provider", "stripe", "--type", event_type, "--url", &url, "--secret", SECRET]);
        send.assert().success().stdout(predicate::str::starts_with("200 {\"status\":\"processed\"}"));
    }
    assert_eq!(*(stripe.0).0.lock().unwrap(), ["customer.subscription.paused", "customer.subscription.updated"]);
}

/// `@shopify/shopify-api` refuses a delivery without `X-Shopify-Shop-Domain` and
/// `X-Shopify-API-Version`; the command left both out.
#[test]
fn shopify_deliveries_name_their_shop_and_api_version() {
    let sign = |extra: &[&str]| -> serde_json::Value {
        let mut sign = hookroute();
        sign.args(["sign", "--provider", "shopify", "--secret", SECRET, "--json", "--data", "{}"]).args(extra);
        serde_json::from_slice(&sign.assert().success().get_output().stdout).unwrap()
    };
    let signed = sign(&[]);
    assert_eq!(signed["headers"]["x-shopify-shop-domain"], "hookroute-test.myshopify.com", "{signed}");
    assert_eq!(signed["headers"]["x-shopify-api-version"], "2026-07", "{signed}");
    let signed = sign(&["--shop-domain", "acme.myshopify.com", "--api-version", "2025-10"]);
    assert_eq!(signed["headers"]["x-shopify-shop-domain"], "acme.myshopify.com", "{signed}");
    assert_eq!(signed["headers"]["x-shopify-api-version"], "2025-10", "{signed}");
    let mut wrong = hookroute();
    wrong.args(["sign", "--provider", "groq", "--secret", SECRET, "--data", "{}", "--shop-domain", "a.myshopify.com"]);
    wrong.assert().code(2).stderr(predicate::str::contains("--shop-domain is for --provider shopify"));
}

fn hookroute() -> Command {
    let mut command = Command::cargo_bin("hookroute").unwrap();
    command.env_remove("GROQ_WEBHOOK_SECRET");
    command
}

fn send(url: &str) -> Command {
    let mut command = hookroute();
    command.args([
        "send",
        "--provider",
        "groq",
        "--url",
        url,
        "--type",
        "resource.created",
        "--data",
        r#"{"id":"r1"}"#,
    ]);
    command.args(["--secret", SECRET]);
    command
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn send_processes_then_deduplicates_and_bad_deliveries_are_401() {
    let (url, app) = receiver();
    send(&url)
        .args(["--id", "evt_cli_1"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("200 ").and(predicate::str::contains("processed")));
    send(&url).args(["--id", "evt_cli_1"]).assert().success().stdout(predicate::str::contains("duplicate"));
    send(&url).args(["--id", "evt_cli_2", "--tamper"]).assert().code(1).stdout(predicate::str::starts_with("401 "));
    let stale = (now() - 600).to_string();
    send(&url)
        .args(["--id", "evt_cli_3", "--timestamp", &stale])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("401 ").and(predicate::str::contains("old")));
    assert_eq!(*app.0.lock().unwrap(), ["evt_cli_1"], "only the good delivery ran, once");
}

#[test]
fn secrets_come_from_a_file_or_the_environment_and_a_missing_one_is_one_clear_line() {
    let (url, app) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let mut command = hookroute();
    command.args(["send", "--provider", "groq", "--url", &url, "--type", "resource.created", "--id", "evt_file"]);
    command.arg("--secret-file").arg(&file).assert().success().stdout(predicate::str::contains("processed"));
    let mut command = hookroute();
    command.args(["send", "--provider", "groq", "--url", &url, "--type", "resource.created", "--id", "evt_env"]);
    command.env("GROQ_WEBHOOK_SECRET", SECRET).assert().success();
    let mut command = hookroute();
    command.args(["send", "--provider", "groq", "--url", &url, "--type", "resource.created"]);
    command
        .assert()
        .code(2)
        .stderr(predicate::eq("error: no secret: give --secret, --secret-file, or set GROQ_WEBHOOK_SECRET\n"));
    assert_eq!(app.0.lock().unwrap().len(), 2);
}

#[test]
fn a_load_run_is_bounded_summarized_and_each_event_runs_once() {
    let (url, app) = receiver();
    send(&url).args(["--count", "200", "--concurrency", "8", "--duplicates", "1"]).assert().success().stdout(
        predicate::str::contains("requests: 200 in")
            .and(predicate::str::contains("latency: p50"))
            .and(predicate::str::contains("statuses: 200: ")),
    );
    let ran = app.0.lock().unwrap();
    assert_eq!(ran.len(), 100, "100 events, each sent twice, each handled once");
    assert_eq!(ran.iter().collect::<HashSet<_>>().len(), 100);
}

#[test]
fn a_load_run_refuses_a_remote_target() {
    send("http://192.0.2.1/webhooks/groq").args(["--count", "5"]).assert().code(2).stderr(
        predicate::str::contains("refusing to load-test 192.0.2.1").and(predicate::str::contains("--allow-remote")),
    );
}

#[test]
fn verify_says_valid_or_exactly_why_not_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"id":"evt_1","type":"resource.created","data":{}}"#;
    let signed = hookroute()
        .args(["sign", "--provider", "groq", "--secret", SECRET, "--timestamp", "1700000000"])
        .write_stdin(body.to_vec())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let (headers, body_file) = (dir.path().join("headers.txt"), dir.path().join("body.bin"));
    std::fs::write(&headers, &signed).unwrap();
    std::fs::write(&body_file, body).unwrap();
    let verify = |extra: &[&str]| {
        let mut command = hookroute();
        command.args(["verify", "--provider", "groq", "--secret", SECRET]);
        command.arg("--headers").arg(&headers).arg("--body").arg(&body_file).args(extra);
        command
    };
    verify(&["--now", "1700000100"]).assert().success().stdout("valid: groq signature, signed at 1700000000\n");
    verify(&["--now", "1700000400"])
        .assert()
        .code(1)
        .stdout("invalid: timestamp is 400 s old, outside the 300 s window\n");
    verify(&["--now", "1700000400", "--tolerance", "600"]).assert().success();

    std::fs::write(&body_file, b"{}").unwrap();
    verify(&["--now", "1700000000"])
        .assert()
        .code(1)
        .stdout("invalid: no signature matched: wrong secret, or the body was changed\n");
    std::fs::write(&headers, "x-groq-timestamp: 1700000000\n").unwrap();
    verify(&["--now", "1700000000"]).assert().code(1).stdout("invalid: missing header `x-groq-signature`\n");
    std::fs::write(&headers, "no colon here\n").unwrap();
    verify(&[]).assert().code(2).stderr(predicate::str::starts_with("error: headers line 1"));
    hookroute().args(["verify", "--provider", "groq"]).assert().code(2);
    hookroute()
        .args(["verify", "--provider", "nope", "--secret", "s", "--headers", "h", "--body", "b"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown provider `nope`").and(predicate::str::contains("did you mean").not()),
        );
    // A typo gets the name it was meant to be.
    hookroute()
        .args(["verify", "--provider", "gihtub", "--secret", "s", "--headers", "h", "--body", "b"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown provider `gihtub`: did you mean `github`?"));
}

#[test]
fn sign_prints_a_curl_command_and_providers_lists_every_scheme() {
    hookroute()
        .args([
            "sign",
            "--provider",
            "github",
            "--secret",
            "s",
            "--id",
            "d-1",
            "--type",
            "push",
            "--curl",
            "http://127.0.0.1:3000/webhooks/github",
        ])
        .write_stdin("{}")
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("curl -sS -X POST 'http://127.0.0.1:3000/webhooks/github'")
                .and(predicate::str::contains("-H 'x-hub-signature-256: sha256="))
                .and(predicate::str::contains("-H 'x-github-event: push'"))
                .and(predicate::str::contains("--data-binary '{}'")),
        );
    let listed = hookroute().arg("providers").assert().success().get_output().stdout.clone();
    let listed = String::from_utf8(listed).unwrap();
    for name in ["groq", "coreweave", "standard", "stripe", "github", "slack", "shopify"] {
        assert!(listed.lines().any(|line| line.starts_with(name)), "{name} missing from:\n{listed}");
    }
    for command in ["send", "sign", "verify", "providers"] {
        hookroute().args([command, "--help"]).assert().success().stdout(predicate::str::contains("Examples:"));
    }
}

#[test]
fn data_and_whole_bodies_come_from_files() {
    let (url, app) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    std::fs::write(&data, r#"{"id":"r9"}"#).unwrap();
    let base = ["send", "--provider", "groq", "--url", &url, "--secret", SECRET, "--type", "resource.created"];
    hookroute()
        .args(base)
        .args(["--id", "evt_data_file", "--data"])
        .arg(format!("@{}", data.display()))
        .assert()
        .success();
    let body = dir.path().join("body.json");
    std::fs::write(&body, r#"{"id":"evt_raw_body","type":"resource.created","data":{"id":"r9"}}"#).unwrap();
    let mut command = hookroute();
    command.args(["send", "--provider", "groq", "--url", &url, "--secret", SECRET, "--body"]);
    command.arg(format!("@{}", body.display())).assert().success().stdout(predicate::str::contains("processed"));
    hookroute()
        .args(base)
        .args(["--data", "not json"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: --data is not JSON"));
    hookroute()
        .args(base)
        .args(["--data", "@/nonexistent/file.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read /nonexistent/file.json"));
    assert_eq!(*app.0.lock().unwrap(), ["evt_data_file", "evt_raw_body"]);
}

/// `sign --curl` printed the body lossily: a body that is not UTF-8 got 401 from the
/// printed command, and one starting with `@` made curl read a file. The command now
/// sends exactly the signed bytes: the signature holds, so the receiver gets as far
/// as reading the envelope (400), not 401.
#[test]
fn the_printed_curl_command_sends_exactly_the_signed_bytes() {
    let (url, _app) = receiver();
    let bodies: [&[u8]; 3] = [b"{\"id\":\"e\",\"type\":\"t\",\"data\":\"\xff\xfe\"}", b"@/etc/hostname", b"plain {}"];
    for body in bodies {
        let printed = hookroute()
            .args(["sign", "--provider", "groq", "--secret", SECRET, "--id", "evt_curl", "--type", "resource.created"])
            .args(["--curl", &url])
            .write_stdin(body)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let command = String::from_utf8(printed).unwrap();
        let output = std::process::Command::new("sh").args(["-c", &command]).output().unwrap();
        let answer = String::from_utf8_lossy(&output.stdout);
        assert!(answer.contains("not a valid event envelope"), "{body:?}: {answer} from {command}");
    }
}

/// `send` without `--url` goes where the example receivers listen:
/// `http://127.0.0.1:3000/webhooks/<provider>`. The test listens there itself and
/// reads the request line.
#[test]
fn send_defaults_to_the_example_receivers_url() {
    let listener = match std::net::TcpListener::bind("127.0.0.1:3000") {
        Ok(listener) => listener,
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("port 3000 is taken ({error}): the default URL cannot be observed here");
            return;
        }
        Err(error) => panic!("port 3000 must be free under CI=true: {error}"),
    };
    let accepted = std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut stream = stream;
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").unwrap();
        line
    });
    hookroute().args(["send", "--provider", "github", "--secret", "s", "--type", "ping"]).assert().success();
    assert_eq!(accepted.join().unwrap().trim_end(), "POST /webhooks/github HTTP/1.1");
}

/// The README's load command gave `--data` no value, and `{}` did not fit the example's
/// type: 9,971 answers of 400. Without `--data`, the type's sample is sent, which fits.
#[test]
fn without_data_send_sends_the_types_sample_which_fits_the_receiver() {
    let (url, app) = receiver();
    let mut plain = hookroute();
    plain.args(["send", "--provider", "groq", "--url", &url, "--type", "resource.created", "--secret", SECRET]);
    plain.assert().success().stdout(predicate::str::starts_with("200 {\"status\":\"processed\"}"));
    let mut load = hookroute();
    load.args(["send", "--provider", "groq", "--url", &url, "--type", "resource.created", "--secret", SECRET]);
    load.args(["--count", "40", "--concurrency", "8", "--duplicates", "1"]);
    load.arg("--json");
    let output = load.assert().success().get_output().stdout.clone();
    let summary: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(summary["requests"], 40, "{summary}");
    assert_eq!(summary["healthy"], true, "{summary}");
    assert!(summary["statuses"].get("400").is_none(), "{summary}");
    // 40 requests: 20 events sent twice each, then the one above.
    assert_eq!(app.0.lock().unwrap().len(), 21);
}

#[test]
fn trigger_sends_a_signed_sample_and_names_the_types_it_has() {
    let (url, app) = receiver();
    let mut trigger = hookroute();
    trigger.args(["trigger", "--provider", "groq", "resource.created", "--url", &url, "--secret", SECRET, "--json"]);
    let output = trigger.assert().success().get_output().stdout.clone();
    let answer: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"]["status"], "processed");
    assert_eq!(answer["type"], "resource.created");
    assert_eq!(app.0.lock().unwrap().len(), 1);

    let mut misspelt = hookroute();
    misspelt.args(["trigger", "--provider", "groq", "resource.craeted", "--url", &url, "--secret", SECRET]);
    misspelt.assert().code(2).stderr(predicate::str::contains("did you mean `resource.created`?"));

    let listed = hookroute().args(["trigger", "--list"]).assert().success().get_output().stdout.clone();
    let listed = String::from_utf8(listed).unwrap();
    for provider in ["groq", "coreweave", "standard", "stripe", "github", "slack", "shopify"] {
        assert!(listed.lines().any(|line| line.starts_with(provider)), "{provider} missing from:\n{listed}");
    }
}

/// `hookroute listen` in the background; its address, read from its first line.
struct Listener {
    child: std::process::Child,
    url: String,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Listener {
    fn start(args: &[&str]) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hookroute"))
            .args(["listen", "--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut listener = Self { child, url: String::new(), lines: std::io::BufReader::new(stdout).lines() };
        // `listening on http://…` or `{"listening":"http://…"}`; if this panics, the
        // guard is already built and stops the process.
        let first = listener.next_line();
        let start = first.find("http://").unwrap_or_else(|| panic!("no address in {first:?}"));
        let url: String =
            first[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c)).collect();
        listener.url = url;
        listener
    }

    fn next_line(&mut self) -> String {
        self.lines.next().unwrap().unwrap()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn listen_captures_forwards_and_the_capture_verifies_byte_for_byte() {
    let (url, app) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().to_str().unwrap();
    let mut listener =
        Listener::start(&["--save", save, "--forward-to", &url, "--provider", "groq", "--secret", SECRET]);

    // The sender gets the receiver's answer through the listener.
    let mut send = hookroute();
    send.args(["send", "--provider", "groq", "--url", &format!("{}/webhooks/groq", listener.url)]);
    send.args(["--secret", SECRET, "--header", "x-extra: kept", "--id", "evt_listen"]);
    send.assert().success().stdout(predicate::str::starts_with("200 {\"status\":\"processed\"}"));
    let line = listener.next_line();
    assert!(line.contains("signature valid") && line.contains("-> 200"), "{line}");
    assert_eq!(*app.0.lock().unwrap(), ["evt_listen"]);

    let captures: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(captures.len(), 1, "{captures:?}");
    let capture = std::fs::read(&captures[0]).unwrap();
    let text = String::from_utf8_lossy(&capture);
    assert!(text.starts_with("POST /webhooks/groq HTTP/1.1\r\n"), "{text}");
    assert!(text.contains("\r\nx-extra: kept\r\n"), "{text}");

    let mut verify = hookroute();
    verify.args(["verify", "--provider", "groq", "--secret", SECRET, "--json"]).arg(&captures[0]);
    let output = verify.assert().success().get_output().stdout.clone();
    let verdict: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["request"], "POST /webhooks/groq HTTP/1.1");

    // One body byte changed: the capture no longer verifies.
    let mut tampered = capture.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    let tampered_path = dir.path().join("tampered.http");
    std::fs::write(&tampered_path, tampered).unwrap();
    let mut verify = hookroute();
    verify.args(["verify", "--provider", "groq", "--secret", SECRET]).arg(&tampered_path);
    verify.assert().code(1).stdout(predicate::str::contains("invalid: no signature matched"));
}

#[test]
fn listen_alone_answers_captured_and_a_header_can_replace_a_signed_one() {
    let mut listener = Listener::start(&["--json"]);
    let target = format!("{}/hook", listener.url);
    let mut send = hookroute();
    send.args(["send", "--provider", "groq", "--url", &target, "--secret", SECRET, "--json"]);
    let output = send.assert().success().get_output().stdout.clone();
    let answer: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(answer["body"]["status"], "captured");
    let report: serde_json::Value = serde_json::from_str(&listener.next_line()).unwrap();
    assert_eq!(report["path"], "/hook");
    assert_eq!(report["method"], "POST");

    // `--header` is set after signing: it replaces the real signature here.
    let (url, _app) = receiver();
    let mut forged = hookroute();
    forged.args(["send", "--provider", "groq", "--url", &url, "--secret", SECRET]);
    forged.args(["--header", &format!("x-groq-signature:{}", "0".repeat(64))]);
    forged.assert().code(1).stdout(predicate::str::starts_with("401"));
}

/// `sign --data` builds the envelope as `send` does; the printed headers and body,
/// written as a capture, verify.
#[test]
fn sign_builds_the_envelope_from_data_and_its_output_verifies() {
    let mut sign = hookroute();
    sign.args(["sign", "--provider", "stripe", "--secret", SECRET, "--id", "evt_sign", "--json"]);
    sign.args(["--type", "invoice.paid", "--data", r#"{"object":{"id":"in_1"}}"#]);
    let output = sign.assert().success().get_output().stdout.clone();
    let signed: serde_json::Value = serde_json::from_slice(&output).unwrap();
    let body = signed["body"].as_str().unwrap();
    let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(envelope["id"], "evt_sign");
    assert_eq!(envelope["type"], "invoice.paid");
    assert_eq!(envelope["data"]["object"]["id"], "in_1");
    let mut capture = String::from("POST /webhooks/stripe HTTP/1.1\r\n");
    for (name, value) in signed["headers"].as_object().unwrap() {
        capture.extend([name.as_str(), ": ", value.as_str().unwrap(), "\r\n"]);
    }
    capture.push_str("\r\n");
    capture.push_str(body);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.http");
    std::fs::write(&path, capture).unwrap();
    let mut verify = hookroute();
    verify.args(["verify", "--provider", "stripe", "--secret", SECRET]).arg(&path);
    verify.assert().success().stdout(predicate::str::starts_with("valid: stripe signature"));
}

/// The path and headers of each request a target saw.
type Requests = Arc<Mutex<Vec<(String, http::HeaderMap)>>>;

/// A forward target: answers 307 to `/moved` on `/hook`, records every request's path
/// and headers.
fn recording_target() -> (String, Requests) {
    let seen: Requests = Arc::default();
    let record = Arc::clone(&seen);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
                let record = Arc::clone(&record);
                async move {
                    let path = request.uri().path().to_owned();
                    record.lock().unwrap().push((path.clone(), request.headers().clone()));
                    if path == "/hook" {
                        (http::StatusCode::TEMPORARY_REDIRECT, [(http::header::LOCATION, "/moved")], "moved")
                    } else {
                        (http::StatusCode::OK, [(http::header::LOCATION, "-")], "ok")
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap())).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    (rx.recv().unwrap(), seen)
}

/// `listen --forward-to` forwards end-to-end headers only (`Proxy-Authorization` and
/// the headers `Connection` names stay behind), answers a redirect to the sender as it
/// came instead of following it with the signed body, and ends a stalled body with 408
/// after the body timeout.
#[test]
fn listen_forwards_only_end_to_end_headers_never_follows_redirects_and_ends_stalled_bodies() {
    use std::io::{Read as _, Write as _};
    let (target, seen) = recording_target();
    let listener = Listener::start(&["--forward-to", &format!("{target}/hook"), "--body-timeout", "1s"]);
    let address = listener.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let request = "POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nproxy-authorization: Basic c2VjcmV0\r\n\
                   connection: keep-alive, x-hop\r\nx-hop: 1\r\nx-kept: yes\r\n\r\n{}";
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = [0_u8; 512];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 307"), "the redirect is the sender's answer: {answer}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|(path, _)| path.as_str()).collect::<Vec<_>>(), ["/hook"], "never followed");
    let headers = &seen[0].1;
    assert_eq!(headers.get("x-kept").map(|v| v.to_str().unwrap()), Some("yes"));
    for hop in ["proxy-authorization", "x-hop"] {
        assert!(headers.get(hop).is_none(), "{hop} was forwarded: {headers:?}");
    }

    let mut stalled = std::net::TcpStream::connect(&address).unwrap();
    stalled.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stalled.write_all(b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"a\":").unwrap();
    let mut answer = [0_u8; 256];
    let n = stalled.read(&mut answer).expect("answered before the read timeout");
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
}
