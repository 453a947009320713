//! The operator console in a real Chromium, driven through `WebDriver` (`chromedriver`),
//! over the inbox of `examples/inbox_receiver` filled with signed deliveries over HTTP.
//! `scripts/test` installs Debian's `chromium` and `chromium-driver` when missing; under
//! `CI=true` a missing driver fails the test.
//!
//! With `UPDATE_SCREENSHOTS=1` it writes the README's screenshots to `docs/screenshots/`.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hookroute::inbox::{DeliveryState, Filter, Inbox, InboxAdmin, SqliteInbox};
use hookroute::testing::TestEvent;
use hookroute::Groq;

use crate::support::{example_path, Example};

const SECRET: &str = "whsec_console_browser";
const TOKEN: &str = "console-browser-token-0123";
const HOSTILE_ID: &str = "evt_<script>alert(1)</script>";
const HOSTILE_NOTE: &str = "<img src=x onerror=alert(2)>";

/// chromedriver on a free port, stopped when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver, or `None` (said on stderr) when it is not installed outside CI.
fn driver() -> Option<Driver> {
    if Command::new("chromedriver").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "chromedriver is missing: scripts/test installs it");
        eprintln!("skipped: chromedriver is not installed (scripts/test installs chromium-driver)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver(child, port))
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a Chromium session")
}

/// The example over the SQLite inbox at `path`, its console on; `broken`: the type
/// whose handler fails for good.
fn receiver(path: &std::path::Path, broken: Option<&str>) -> (Example, String) {
    let mut command = Command::new(example_path("inbox_receiver"));
    command
        .env("GROQ_WEBHOOK_SECRET", SECRET)
        .env("CONSOLE_TOKEN", TOKEN)
        .env("HOOKROUTE_INBOX", format!("sqlite:{}", path.display()))
        .env("WORKERS", "4");
    if let Some(broken) = broken {
        command.env("BROKEN_TYPE", broken);
    }
    Example::start(command)
}

async fn send(address: &str, event_type: &str, id: &str, data: serde_json::Value) {
    let delivery = TestEvent::<Groq>::new(event_type, data).id(id).sign(SECRET);
    let mut request =
        reqwest::Client::new().post(format!("http://{address}/webhooks/groq")).body(delivery.body.clone());
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    assert_eq!(request.send().await.unwrap().status(), 202);
}

/// Waits until the inbox's counts of done and dead are these.
async fn settled(inbox: &SqliteInbox, done: u64, dead: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = inbox.stats().await.unwrap();
        if (stats.done, stats.dead, stats.queued + stats.running + stats.retrying) == (done, dead, 0) {
            return;
        }
        assert!(Instant::now() < deadline, "never settled at {done} done, {dead} dead: {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `hookroute inbox --url sqlite:<path> stats --json`, from the binary `cargo test
/// --workspace` builds beside the examples.
fn cli_stats(path: &std::path::Path) -> serde_json::Value {
    let cli = example_path("inbox_receiver").parent().unwrap().parent().unwrap().join("hookroute");
    assert!(cli.exists(), "{} is built by `cargo test --workspace` (or `cargo build -p hookroute-cli`)", cli.display());
    let output = Command::new(cli)
        .args(["inbox", "--url", &format!("sqlite:{}", path.display()), "stats", "--json"])
        .env_remove("HOOKROUTE_INBOX")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn rows(client: &Client) -> Vec<String> {
    let mut keys = Vec::new();
    for row in client.find_all(Locator::Css("tr.delivery")).await.unwrap() {
        keys.push(row.attr("data-key").await.unwrap().unwrap());
    }
    keys
}

/// Waits for an element of the page a click navigates to (a click can return before
/// the next page has loaded).
async fn appears(client: &Client, css: &str) -> fantoccini::elements::Element {
    let found = client.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
    found.unwrap_or_else(|err| panic!("no `{css}` on the page within 10 s: {err}"))
}

/// Waits until the browser shows a page whose address holds `part`.
async fn arrived(client: &Client, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.unwrap();
        if url.as_str().contains(part) {
            return;
        }
        assert!(Instant::now() < deadline, "the browser is at {url}, not at a page with {part}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(client: &Client, text: &str) {
    client.find(Locator::XPath(&format!("//button[text()='{text}']"))).await.unwrap().click().await.unwrap();
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// A page of another site that posts a replay to the console as soon as it opens.
async fn attacker(console: &str) -> SocketAddr {
    let page = format!(
        "<!doctype html><form id=f method=post action=\"{console}/replay\"><input name=state value=dead>\
         <input name=confirm value=yes></form><script>document.getElementById('f').submit()</script>"
    );
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_and_replays_dead_letters_in_a_real_browser() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");

    // A deploy whose resource.deleted handler is broken: its deliveries die.
    let (broken, address) = receiver(&path, Some("resource.deleted"));
    for id in ["evt_c1", "evt_c2", "evt_c3"] {
        send(&address, "resource.created", id, serde_json::json!({"id": id})).await;
    }
    for id in ["evt_d1", "evt_d2"] {
        send(&address, "resource.deleted", id, serde_json::json!({"id": id})).await;
    }
    send(&address, "resource.created", HOSTILE_ID, serde_json::json!({"id": "r6", "note": HOSTILE_NOTE})).await;
    let inbox = SqliteInbox::open(&path).await.unwrap();
    settled(&inbox, 4, 2).await;
    drop(broken);
    // The fix is deployed.
    let (_fixed, address) = receiver(&path, None);
    let console = format!("http://{address}/console");
    let client = browser(&driver).await;

    // Logged out: the login form; a wrong token, then the right one.
    client.goto(&console).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/console/login"));
    client.find(Locator::Css("input[name=token]")).await.unwrap().send_keys("not-the-console-token").await.unwrap();
    click(&client, "Log in").await;
    let refused = appears(&client, "p.error").await;
    assert_eq!(refused.text().await.unwrap(), "That is not the console token.");
    client.find(Locator::Css("input[name=token]")).await.unwrap().send_keys(TOKEN).await.unwrap();
    click(&client, "Log in").await;
    appears(&client, "table.counts td[data-state=queued]").await;

    // The counts on the page are the inbox's (what `hookroute inbox stats --json` prints),
    // by state and by type; the chart holds the 4 done and the 2 failed attempts.
    let stats = inbox.stats().await.unwrap();
    for (state, count) in [("queued", stats.queued), ("done", stats.done), ("dead", stats.dead), ("retrying", 0)] {
        let cell = client.find(Locator::Css(&format!("table.counts td[data-state={state}]"))).await.unwrap();
        assert_eq!(cell.text().await.unwrap(), count.to_string(), "{state}");
    }
    // And what the command prints, run as an operator would.
    let printed = cli_stats(&path);
    for (state, count) in [("queued", stats.queued), ("done", stats.done), ("dead", stats.dead)] {
        assert_eq!(printed[state].as_u64(), Some(count), "`hookroute inbox stats --json` {state}: {printed}");
    }
    for counted in inbox.type_counts().await.unwrap() {
        let row = format!("#types tr[data-type=\"{}\"]", counted.event_type);
        let dead = client.find(Locator::Css(&format!("{row} td[data-state=dead]"))).await.unwrap();
        assert_eq!(dead.text().await.unwrap(), counted.dead.to_string(), "{}", counted.event_type);
    }
    let chart = client.find(Locator::Css("#activity")).await.unwrap();
    assert_eq!(chart.attr("data-done").await.unwrap().as_deref(), Some("4"));
    assert_eq!(chart.attr("data-failed").await.unwrap().as_deref(), Some("2"));
    assert!(!client.find_all(Locator::Css("#activity svg rect")).await.unwrap().is_empty());
    screenshot(&client, "overview").await;

    // Filtering by type and state shows exactly the matching deliveries.
    client.goto(&format!("{console}/deliveries")).await.unwrap();
    client.find(Locator::Css("select[name=state]")).await.unwrap().send_keys("done").await.unwrap();
    client.find(Locator::Css("input[name=type]")).await.unwrap().send_keys("resource.created").await.unwrap();
    click(&client, "Search").await;
    arrived(&client, "state=done&type=resource.created").await;
    let filter =
        Filter { state: Some(DeliveryState::Done), event_type: Some("resource.created".into()), ..Filter::default() };
    let expected: Vec<String> =
        inbox.search(&filter, None, 50).await.unwrap().deliveries.into_iter().map(|d| d.key).collect();
    assert_eq!(rows(&client).await, expected);
    assert_eq!(expected.len(), 4);
    screenshot(&client, "deliveries").await;

    // What a sender wrote shows as text: no dialog, no element of theirs.
    let hostile = expected.iter().find(|key| key.contains("<script>")).unwrap().clone();
    client.find(Locator::XPath("//a[contains(text(), 'script')]")).await.unwrap().click().await.unwrap();
    appears(&client, "#facts").await;
    assert!(client.get_alert_text().await.is_err(), "a dialog opened");
    assert!(client.find_all(Locator::Css("script")).await.unwrap().is_empty());
    assert!(client.find_all(Locator::Css("img")).await.unwrap().is_empty());
    let facts = client.find(Locator::Css("#facts")).await.unwrap().text().await.unwrap();
    assert!(facts.contains(&hostile), "{facts}");
    assert!(client.find(Locator::Css("#body")).await.unwrap().text().await.unwrap().contains(HOSTILE_NOTE));
    let signature = client.find(Locator::Css("#signature")).await.unwrap();
    assert_eq!(signature.attr("data-valid").await.unwrap().as_deref(), Some("true"), "signed with the secret");

    // A page of another site posting a replay: refused, nothing changes.
    let elsewhere = attacker(&console).await;
    client.goto(&format!("http://{elsewhere}/")).await.unwrap();
    // Its form lands on the console's answer: refused (the session cookie is not even
    // sent cross-site, and the post carries no CSRF token).
    let answer = appears(&client, "p.error").await.text().await.unwrap();
    assert!(answer.starts_with("Refused"), "{answer}");
    assert_eq!(inbox.stats().await.unwrap().dead, 2, "a cross-site post replayed");

    // The dead letters replayed from one filter, counted and confirmed: each runs once.
    client.goto(&format!("{console}/deliveries?state=dead")).await.unwrap();
    assert_eq!(rows(&client).await.len(), 2);
    click(&client, "Replay every delivery this search matches").await;
    assert_eq!(appears(&client, "#count").await.attr("data-count").await.unwrap().as_deref(), Some("2"));
    click(&client, "Replay 2 deliveries").await;
    assert!(appears(&client, "#replayed").await.text().await.unwrap().contains("Queued again: 2"));
    settled(&inbox, 6, 0).await;
    for id in ["evt_d1", "evt_d2"] {
        let key = inbox.search(&Filter::default(), None, 50).await.unwrap().deliveries.into_iter().find(|d| d.id == id);
        assert_eq!(key.map(|d| (d.state, d.attempts)), Some((DeliveryState::Done, 1)), "{id} ran once");
    }
    // Its page: attempt 1 failed for good, the replay, attempt 2 done.
    client.goto(&format!("{console}/deliveries?type=resource.deleted")).await.unwrap();
    client.find(Locator::XPath("//a[text()='evt_d1']")).await.unwrap().click().await.unwrap();
    appears(&client, "#attempts").await;
    let mut attempts = Vec::new();
    for row in client.find_all(Locator::Css("#attempts tr.attempt")).await.unwrap() {
        attempts.push((row.attr("data-attempt").await.unwrap().unwrap(), row.text().await.unwrap()));
    }
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts[0].0 == "1" && attempts[0].1.contains("failed for good"), "{attempts:?}");
    assert!(attempts[1].1.contains("replayed by an operator"), "{attempts:?}");
    assert!(attempts[2].0 == "2" && attempts[2].1.contains("done"), "{attempts:?}");
    assert!(attempts[2].1.contains(" UTC ("), "the done attempt's time: {attempts:?}");
    screenshot(&client, "delivery").await;
    client.close().await.unwrap();
}
