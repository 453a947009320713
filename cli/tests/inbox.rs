//! `hookroute inbox` against a SQLite inbox a real receiver filled.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use hookroute::inbox::{DeliveryState, Inbox, InboxAdmin, SqliteInbox};
use hookroute::testing::TestEvent;
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver};
use predicates::prelude::*;

const SECRET: &str = "whsec_cli_inbox";

/// The key the receiver stores event `id` under: in the namespace its secret names.
fn key(id: &str) -> String {
    format!("{}:groq:event:{id}", hookroute::Secret::new(SECRET).fingerprint())
}

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn inbox_cli(path: &Path) -> Command {
    let mut command = Command::cargo_bin("hookroute").unwrap();
    command.env_remove("GROQ_WEBHOOK_SECRET").env_remove("HOOKROUTE_INBOX");
    command.args(["inbox", "--url", &format!("sqlite:{}", path.display())]);
    command
}

/// Three deliveries queued through a receiver; the first dead-lettered with an error,
/// the second done, the third left queued.
async fn fill(path: &Path) -> SqliteInbox {
    let inbox = SqliteInbox::open(path).await.unwrap();
    let receiver = Receiver::builder(App).secret(SECRET).inbox(SqliteInbox::open(path).await.unwrap()).build().unwrap();
    for id in ["evt_dead", "evt_done", "evt_queued"] {
        let delivery = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": id})).id(id).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    }
    let first = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    inbox.dead_letter(&first.lease, "the ledger said no").await.unwrap();
    let second = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    inbox.complete(&second.lease, Duration::from_secs(3600)).await.unwrap();
    inbox
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_commands_show_and_act_on_what_the_receiver_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = fill(&path).await;

    inbox_cli(&path).arg("stats").assert().success().stdout(
        predicate::str::contains("queued    1")
            .and(predicate::str::contains("done      1"))
            .and(predicate::str::contains("dead      1")),
    );
    inbox_cli(&path).args(["list", "--state", "dead"]).assert().success().stdout(
        predicate::str::contains("groq:event:evt_dead")
            .and(predicate::str::contains("the ledger said no"))
            .and(predicate::str::contains("evt_queued").not()),
    );
    // The same, as JSON.
    let json = |args: &[&str]| -> serde_json::Value {
        let output = inbox_cli(&path).args(args).arg("--json").output().unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    let stats = json(&["stats"]);
    assert_eq!((stats["queued"].as_u64(), stats["done"].as_u64(), stats["dead"].as_u64()), (Some(1), Some(1), Some(1)));
    let dead = json(&["list", "--state", "dead"]);
    assert_eq!(dead["deliveries"][0]["key"], key("evt_dead"));
    assert_eq!(dead["deliveries"][0]["last_error"], "the ledger said no");
    let shown = json(&["show", "evt_dead"]);
    assert_eq!(shown["state"], "dead");
    assert!(shown["headers"]["x-groq-signature"].is_string(), "{shown}");
    let verdict = json(&["verify", "evt_dead", "--secret", SECRET]);
    assert_eq!(verdict["valid"], true, "{verdict}");
    inbox_cli(&path)
        .args(["list", "--state", "gone"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown state"));
    // The headers and the body exactly as received.
    inbox_cli(&path).args(["show", "evt_dead"]).assert().success().stdout(
        predicate::str::contains("state:      dead")
            .and(predicate::str::contains("attempts:   1"))
            .and(predicate::str::contains("\n  x-groq-signature: "))
            .and(predicate::str::contains(r#""id":"evt_dead""#)),
    );
    inbox_cli(&path)
        .args(["show", "evt_nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no delivery `evt_nope`"));

    // Verify again, as of arrival: the right secret, then a wrong one.
    inbox_cli(&path)
        .args(["verify", &key("evt_dead"), "--secret", SECRET])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("valid: groq signature"));
    inbox_cli(&path)
        .args(["verify", "evt_dead", "--secret", "whsec_wrong"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with("invalid:"));

    // Retry one dead letter, then every one (none left).
    inbox_cli(&path)
        .args(["retry", "evt_dead"])
        .assert()
        .success()
        .stdout(predicate::str::contains("queued again").and(predicate::str::contains("next: attempt 2")));
    let replayed = inbox.get(&key("evt_dead")).await.unwrap().unwrap();
    assert_eq!((replayed.state, replayed.attempts), (DeliveryState::Queued, 0));
    // Its next attempt is attempt 2, here and in `show`; its schedule starts again.
    let mut again = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    if again.delivery.key != key("evt_dead") {
        // `evt_queued` was due first: back it goes, due after the replay.
        inbox.release(&again.lease).await.unwrap();
        again = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    }
    assert_eq!((again.delivery.key.as_str(), again.delivery.attempts), (key("evt_dead").as_str(), 1));
    inbox.dead_letter(&again.lease, "still no").await.unwrap();
    let shown = json(&["show", "evt_dead"]);
    assert_eq!(shown["attempts"], 2, "{shown}");
    let steps: Vec<(u64, &str)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| (step["attempt"].as_u64().unwrap(), step["what"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [(1, "dead"), (1, "replayed"), (2, "dead")], "{shown}");
    inbox_cli(&path).args(["show", "evt_dead"]).assert().success().stdout(
        predicate::str::contains("attempts:   2")
            .and(predicate::str::contains("  attempt 1 dead at "))
            .and(predicate::str::contains("  attempt 2 dead at ").and(predicate::str::contains(": still no"))),
    );
    inbox_cli(&path)
        .args(["retry", "evt_dead", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""next_attempt":3"#));
    inbox_cli(&path).args(["retry", "--all-dead"]).assert().success().stdout("queued again: 0 dead letters\n");
    inbox_cli(&path).arg("retry").assert().code(2);

    // Purge: a done delivery younger than the cut stays; older ones go.
    inbox_cli(&path)
        .args(["purge", "--done-older-than", "1h"])
        .assert()
        .success()
        .stdout(predicate::str::contains("purged 0"));
    inbox_cli(&path)
        .args(["purge", "--done-older-than", "0s"])
        .assert()
        .success()
        .stdout(predicate::str::contains("purged 1"));
    assert!(inbox.get(&key("evt_done")).await.unwrap().is_none());
    inbox_cli(&path).args(["purge", "--done-older-than", "soon"]).assert().code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_newest_first_and_pages_with_the_cursor_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let _inbox = fill(&path).await;
    let json = |args: &[&str]| -> serde_json::Value {
        let output = inbox_cli(&path).arg("search").args(args).arg("--json").output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    };
    let keys = |page: &serde_json::Value| -> Vec<String> {
        page["deliveries"].as_array().unwrap().iter().map(|row| row["key"].as_str().unwrap().to_owned()).collect()
    };
    let all = json(&[]);
    assert_eq!(keys(&all), [key("evt_queued"), key("evt_done"), key("evt_dead")], "newest first");
    assert!(all["next"].is_null());
    assert_eq!(keys(&json(&["--error", "LEDGER"])), [key("evt_dead")]);
    assert_eq!(keys(&json(&["--state", "done"])), [key("evt_done")]);
    assert!(keys(&json(&["--type", "resource.deleted"])).is_empty());
    assert!(keys(&json(&["--older-than", "1h"])).is_empty());
    assert_eq!(keys(&json(&["--since", "1h"])).len(), 3);

    // A page of one, then the rest from the cursor the first page printed.
    let first = json(&["--limit", "1"]);
    assert_eq!(keys(&first), [key("evt_queued")]);
    let next = first["next"].as_str().unwrap().to_owned();
    assert_eq!(keys(&json(&["--limit", "5", "--after", &next])), [key("evt_done"), key("evt_dead")]);
    inbox_cli(&path)
        .args(["search", "--limit", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("1 shown, newest first; next page: --after '{next}'")));
    // Replay what a filter matches: counted first, replayed with --yes.
    inbox_cli(&path)
        .args(["replay", "--state", "dead"])
        .assert()
        .success()
        .stdout("1 deliveries match; run again with --yes to replay them\n");
    assert_eq!(keys(&json(&["--state", "dead"])), [key("evt_dead")], "counting replays nothing");
    inbox_cli(&path).args(["replay", "--state", "dead", "--yes"]).assert().success().stdout("queued again: 1\n");
    assert!(keys(&json(&["--state", "dead"])).is_empty());
    inbox_cli(&path)
        .args(["replay", "--since", "1h"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("it would run every delivery again"));
    inbox_cli(&path)
        .args(["search", "--after", "yesterday"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a cursor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_leaves_a_type_queued_and_stats_say_so_until_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = fill(&path).await;
    inbox_cli(&path)
        .args(["pause", "resource.created"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("paused resource.created: its deliveries stay queued"));
    inbox_cli(&path)
        .args(["pause", "resource.created"])
        .assert()
        .success()
        .stdout("resource.created was paused already\n");
    inbox_cli(&path)
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("paused (left queued) resource.created"));
    let stats: serde_json::Value =
        serde_json::from_slice(&inbox_cli(&path).args(["stats", "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(stats["paused"], serde_json::json!(["resource.created"]));
    // The queued delivery stays where it is while the type is paused.
    assert!(inbox.take(Duration::from_secs(30)).await.unwrap().is_none());
    inbox_cli(&path)
        .args(["resume", "resource.created"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("resumed"));
    inbox_cli(&path)
        .args(["resume", "resource.created"])
        .assert()
        .success()
        .stdout("resource.created was not paused\n");
    let taken = inbox.take(Duration::from_secs(30)).await.unwrap().expect("resumed: the queued delivery runs");
    assert_eq!(taken.delivery.key, key("evt_queued"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_command_serves_the_console_over_the_inbox() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let _inbox = fill(&path).await;
    let token = "a-console-token-for-this-test";
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("hookroute"))
        .env_remove("HOOKROUTE_INBOX")
        .args(["inbox", "--url", &format!("sqlite:{}", path.display()), "console", "--listen", "127.0.0.1:0"])
        .env("HOOKROUTE_CONSOLE_TOKEN", token)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().nth(2).unwrap_or_else(|| panic!("no address in {line:?}")).to_owned();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 303, "without the token: to the login form");
    let page = http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-state=\"dead\">1<") && html.contains("data-state=\"queued\">1<"), "{html}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_wrong_inbox_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    inbox_cli(&dir.path().join("typo.db"))
        .arg("stats")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such file"));
    assert!(!dir.path().join("typo.db").exists(), "a typo made a new inbox");
    Command::cargo_bin("hookroute")
        .unwrap()
        .args(["inbox", "--url", "kafka://127.0.0.1/", "stats"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("kafka://"));
}

struct GitHubApp;

#[webhook_handlers(provider = "github")]
impl GitHubApp {
    #[event("issues")]
    async fn issues(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// Every key `list` prints (a GitHub delivery's `:body:` key too) works everywhere an
/// id is taken, `list` shows the delivery id, an id is looked up under the inbox's
/// namespace (never by reading every record), and text output escapes control
/// characters (ESC sequences from a signed event cannot retitle the terminal) while the
/// JSON stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_list_prints_works_and_terminal_output_is_escaped() {
    const GITHUB_SECRET: &str = "whsec_cli_github";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = SqliteInbox::open(&path).await.unwrap();
    let receiver = Receiver::builder(GitHubApp)
        .secret(GITHUB_SECRET)
        .inbox(SqliteInbox::open(&path).await.unwrap())
        .build()
        .unwrap();
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m";
    let delivery = TestEvent::<hookroute::GitHub>::new("issues.opened", serde_json::json!({ "title": hostile }))
        .id("d-escape")
        .sign(GITHUB_SECRET);
    assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    let taken = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    inbox.dead_letter(&taken.lease, &format!("handler said {hostile}")).await.unwrap();
    let body_key = taken.delivery.key.clone();
    assert!(body_key.contains(":github:body:"), "{body_key}");

    let listed = inbox_cli(&path).args(["list", "--state", "dead"]).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains(&body_key) && listed.contains("d-escape"), "{listed}");
    assert!(listed.contains(r"handler said \u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m"), "{listed}");
    let shown = inbox_cli(&path).args(["show", &body_key]).output().unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{9b}') && !shown.contains('\u{7}'), "{shown:?}");
    assert!(
        shown.contains(r"\u001b]0;pwned") && shown.contains(r"\u{9b}31m"),
        "the body's JSON escape is shown as written: {shown}"
    );
    // GitHub does not sign its delivery id, so the delivery is kept under its body's
    // digest: an id alone is not looked for by reading every record.
    inbox_cli(&path)
        .args(["show", "d-escape"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("give the whole key `inbox list` prints"));
    inbox_cli(&path)
        .args(["verify", &body_key, "--secret", GITHUB_SECRET])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("valid: github signature"));
    // JSON stays exact: the error read back is the error written.
    let json = inbox_cli(&path).args(["list", "--state", "dead", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["deliveries"][0]["last_error"], format!("handler said {hostile}"));
    assert_eq!(json["deliveries"][0]["id"], "d-escape");
    inbox_cli(&path).args(["retry", &body_key]).assert().success().stdout(predicate::str::contains("queued again"));
}

/// A test server's URL, which `scripts/test` exports.
fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run `scripts/test`, which starts the servers"))
}

/// A misspelt `--table` (PostgreSQL) or `--prefix` (Redis) creates nothing and is an
/// error (exit 2) that names the inboxes that are there, not an empty inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_table_or_prefix_creates_nothing_and_names_what_exists() {
    use hookroute::inbox::{PostgresInbox, RedisInbox};
    let n = std::process::id();
    let postgres = server("HOOKROUTE_TEST_POSTGRES_URL");
    PostgresInbox::builder(&postgres).table(format!("cli_real_{n}")).connect().await.unwrap();
    let cli = || {
        let mut command = Command::cargo_bin("hookroute").unwrap();
        command.env_remove("HOOKROUTE_INBOX");
        command
    };
    cli().args(["inbox", "--url", &postgres, "--table", &format!("cli_typo_{n}"), "stats"]).assert().code(2).stderr(
        predicate::str::contains(format!("no inbox table `cli_typo_{n}`"))
            .and(predicate::str::contains(format!("cli_real_{n}"))),
    );
    let typo = PostgresInbox::builder(&postgres).table(format!("cli_typo_{n}")).existing_only().connect().await;
    assert!(typo.is_err(), "the misspelt table was not created");

    let redis = server("HOOKROUTE_TEST_REDIS_URL");
    RedisInbox::builder(&redis).prefix(format!("clireal{n}:")).connect().await.unwrap();
    cli()
        .args(["inbox", "--url", &redis, "--prefix", &format!("clitypo{n}:"), "list", "--state", "dead"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(format!("no inbox under the prefix `clitypo{n}:`"))
                .and(predicate::str::contains(format!("clireal{n}:")))
                // A missing inbox is a configuration error, not an unreachable server.
                .and(predicate::str::contains("cannot reach").not()),
        );
    let typo = RedisInbox::builder(&redis).prefix(format!("clitypo{n}:")).existing_only().connect().await;
    assert!(typo.is_err(), "the misspelt prefix made no stream");
}

/// Groq's `resource.*` events ordered by the resource's `owner`.
struct Ordered;

#[webhook_handlers(provider = "groq")]
impl Ordered {
    #[event("resource.updated", key = "data.owner")]
    async fn updated(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// `list --key` shows one ordering key's pending deliveries in the order they run
/// (the retrying head first), and `stats` counts the keys held by a failing head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_by_key_shows_what_runs_next_and_stats_count_held_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = SqliteInbox::open(&path).await.unwrap();
    let receiver =
        Receiver::builder(Ordered).secret(SECRET).inbox(SqliteInbox::open(&path).await.unwrap()).build().unwrap();
    for (id, owner) in [("evt_a1", "acme"), ("evt_b1", "bolt"), ("evt_a2", "acme"), ("evt_a3", "acme")] {
        let data = serde_json::json!({ "id": id, "owner": owner });
        let delivery = TestEvent::<Groq>::new("resource.updated", data).id(id).sign(SECRET);
        assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202);
    }
    let head = inbox.take(Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(head.delivery.id, "evt_a1");
    inbox.retry(&head.lease, Duration::from_secs(3600), "the CRM is down").await.unwrap();

    inbox_cli(&path).args(["list", "--key", "acme"]).assert().success().stdout(
        predicate::str::is_match(
            "(?s)evt_a1 .*retrying.*the CRM is down.*evt_a2 .*queued.*evt_a3 .*queued.*3 pending for key acme",
        )
        .unwrap()
        .and(predicate::str::contains("evt_b1").not()),
    );
    let output = inbox_cli(&path).args(["list", "--key", "acme", "--json"]).output().unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<&str> = listed["deliveries"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["evt_a1", "evt_a2", "evt_a3"]);
    inbox_cli(&path).arg("stats").assert().success().stdout(
        predicate::str::contains("ordering keys with deliveries waiting 1")
            .and(predicate::str::contains("ordering keys held by a retrying delivery 1")),
    );
    inbox_cli(&path).args(["list"]).assert().failure().stderr(predicate::str::contains("--state"));
}
