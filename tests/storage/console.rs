//! The operator console over a real socket on 127.0.0.1, filled by a receiver with
//! signed deliveries: what it shows, what it refuses, what its actions do.

use std::net::SocketAddr;
use std::sync::Arc;

use hookroute::console::Console;
use hookroute::inbox::{DeliveryState, Filter, Inbox, InboxAdmin, MemoryInbox, NewDelivery, Order, QueueOnly};
use hookroute::testing::TestEvent;
use hookroute::{webhook_handlers, Groq, HandlerError, Receiver};
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, ORIGIN, SET_COOKIE};
use reqwest::{redirect, StatusCode};

const SECRET: &str = "whsec_console";
const TOKEN: &str = "console-token-0123456789";

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// The hostile strings a sender can sign: in an id, a body and an error.
const HOSTILE_ID: &str = "evt_<script>alert(1)</script>";
const HOSTILE_BODY: &str = "<img src=x onerror=alert(2)>";

struct Served {
    inbox: Arc<MemoryInbox>,
    base: String,
    http: reqwest::Client,
}

/// A console at `/ops/webhooks` of an axum app on 127.0.0.1, over an inbox a receiver
/// filled: three `resource.created` (one dead with an error, one done, one queued),
/// two `resource.deleted` queued, and one with a hostile id and body.
async fn serve() -> Served {
    serve_with(false).await
}

async fn serve_with(secure_cookie: bool) -> Served {
    let inbox = Arc::new(MemoryInbox::new());
    let receiver = Receiver::builder(App).secret(SECRET).inbox(Arc::clone(&inbox)).build().unwrap();
    let send = |event_type: &'static str, id: &'static str, data: serde_json::Value| {
        let delivery = TestEvent::<Groq>::new(event_type, data).id(id).sign(SECRET);
        let receiver = receiver.clone();
        async move { assert_eq!(receiver.receive(&delivery.headers, &delivery.body).await.status(), 202) }
    };
    send("resource.created", "evt_dead", serde_json::json!({"id": "r1"})).await;
    send("resource.created", "evt_done", serde_json::json!({"id": "r2"})).await;
    send("resource.created", "evt_queued", serde_json::json!({"id": "r3"})).await;
    send("resource.deleted", "evt_del_1", serde_json::json!({"id": "r4"})).await;
    send("resource.deleted", "evt_del_2", serde_json::json!({"id": "r5"})).await;
    send("resource.created", HOSTILE_ID, serde_json::json!({"id": "r6", "note": HOSTILE_BODY})).await;
    let first = inbox.take(std::time::Duration::from_secs(30)).await.unwrap().unwrap();
    inbox.dead_letter(&first.lease, "upstream said <b>no</b>").await.unwrap();
    let second = inbox.take(std::time::Duration::from_secs(30)).await.unwrap().unwrap();
    inbox.complete(&second.lease, std::time::Duration::from_secs(3600)).await.unwrap();

    let console = Console::builder(Arc::clone(&inbox))
        .token(TOKEN)
        .secure_cookie(secure_cookie)
        .verifier(&receiver)
        .build()
        .unwrap();
    let app = axum::Router::new().nest("/ops/webhooks", console);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder().redirect(redirect::Policy::none()).build().unwrap();
    Served { inbox, base: format!("http://{address}/ops/webhooks"), http }
}

impl Served {
    async fn get(&self, path: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    /// Logs in through the form: the session cookie and the page's CSRF token.
    async fn log_in(&self) -> (String, String) {
        let (status, headers, _) = self.post("/login", None, &[("token", TOKEN)]).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let set = headers.get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/ops/webhooks"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_owned();
        let (status, _, overview) = self.get("", Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{overview}");
        let csrf = overview.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        (cookie, csrf)
    }
}

fn count_in(html: &str, state: &str) -> u64 {
    let marker = format!("data-state=\"{state}\">");
    html.split(&marker).nth(1).and_then(|rest| rest.split('<').next()).unwrap().parse().unwrap()
}

fn listed_keys(html: &str) -> Vec<String> {
    html.split("<tr class=\"delivery\" data-key=\"")
        .skip(1)
        .map(|row| row.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_console_shows_what_the_inbox_holds_escaped_and_its_actions_act() {
    let served = serve().await;
    let (cookie, csrf) = served.log_in().await;

    // The overview's counts are the inbox's.
    let (_, headers, overview) = served.get("", Some(&cookie)).await;
    let counts = served.inbox.stats().await.unwrap();
    for (state, count) in [("queued", counts.queued), ("done", counts.done), ("dead", counts.dead), ("running", 0)] {
        assert_eq!(count_in(&overview, state), count, "{state}");
    }
    let policy = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'") && !policy.contains("script-src"), "{policy}");

    // Filters show exactly the matching deliveries.
    let (_, _, dead) = served.get("/deliveries?state=dead", Some(&cookie)).await;
    let dead_keys = listed_keys(&dead);
    assert_eq!(dead_keys.len(), 1);
    assert!(dead_keys[0].ends_with(":groq:event:evt_dead"));
    let (_, _, deleted) = served.get("/deliveries?type=resource.deleted", Some(&cookie)).await;
    let expected = served
        .inbox
        .search(&Filter { event_type: Some("resource.deleted".into()), ..Filter::default() }, None, 50)
        .await
        .unwrap();
    assert_eq!(listed_keys(&deleted), expected.deliveries.iter().map(|d| d.key.clone()).collect::<Vec<_>>());
    assert_eq!(listed_keys(&deleted).len(), 2);

    // A page of two, then the next from its link: every delivery once.
    let (_, _, first) = served.get("/deliveries?limit=2", Some(&cookie)).await;
    let next = first.split("id=\"next\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let next = next.strip_prefix("/ops/webhooks").unwrap();
    let (_, _, second) = served.get(next, Some(&cookie)).await;
    let mut seen = listed_keys(&first);
    seen.extend(listed_keys(&second));
    assert_eq!(seen.len(), 4);

    // What a sender wrote shows as text: no element from it.
    let hostile = served.inbox.search(&Filter::default(), None, 50).await.unwrap();
    let hostile = hostile.deliveries.iter().find(|d| d.id == HOSTILE_ID).unwrap().key.clone();
    let link: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
    let (status, _, page) = served.get(&format!("/delivery?key={link}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script") && !page.contains("<img"), "markup from the sender: {page}");
    assert!(page.contains("evt_&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("x-groq-signature</th><td>•••••• (masked)"), "the signature is masked");
    let (_, _, all) = served.get("/deliveries", Some(&cookie)).await;
    assert!(!all.contains("<script") && !all.contains("<b>no</b>") && all.contains("&lt;b&gt;no&lt;/b&gt;"));

    // Replay the dead letters of one filter: counted and confirmed first.
    let (status, _, confirm) = served.post("/replay", Some(&cookie), &[("csrf", &csrf), ("state", "dead")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("data-count=\"1\"") && confirm.contains("Replay 1 deliveries"), "{confirm}");
    assert_eq!(served.inbox.stats().await.unwrap().dead, 1, "counting replays nothing");
    let (status, headers, _) =
        served.post("/replay", Some(&cookie), &[("csrf", &csrf), ("state", "dead"), ("confirm", "yes")]).await;
    // Post, then redirect: reloading the answer replays nothing.
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers.get("location").unwrap(), "/ops/webhooks/replayed?count=1");
    let (_, _, done) = served.get("/replayed?count=1", Some(&cookie)).await;
    assert!(done.contains("Queued again: 1"), "{done}");
    assert_eq!(served.inbox.stats().await.unwrap().dead, 0);

    // Pause and resume a type; retry one delivery.
    let (status, _, _) = served.post("/pause", Some(&cookie), &[("csrf", &csrf), ("type", "resource.deleted")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(served.inbox.paused().await.unwrap(), ["resource.deleted"]);
    let (_, _, overview) = served.get("", Some(&cookie)).await;
    assert!(overview.contains("Resume resource.deleted"));
    served.post("/resume", Some(&cookie), &[("csrf", &csrf), ("type", "resource.deleted")]).await;
    assert!(served.inbox.paused().await.unwrap().is_empty());
    let done_key = served.inbox.list(DeliveryState::Done, 10).await.unwrap()[0].key.clone();
    let (status, _, _) = served.post("/retry", Some(&cookie), &[("csrf", &csrf), ("key", &done_key)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(served.inbox.get(&done_key).await.unwrap().unwrap().state, DeliveryState::Queued);

    // A parameter that does not parse is a 400 that says why.
    let (status, _, page) = served.get("/deliveries?state=gone", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("unknown state"), "{page}");
    let (status, _, page) = served.get("/deliveries?after=yesterday", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("is not a cursor"), "{page}");
}

#[tokio::test]
async fn without_the_token_a_session_or_the_csrf_token_nothing_changes() {
    let served = serve().await;
    let dead = || async { served.inbox.stats().await.unwrap().dead };
    let retry_dead = [("state", "dead"), ("confirm", "yes")];

    // No token: pages send to the login form, actions are refused.
    let (status, headers, _) = served.get("", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers.get("location").unwrap(), "/ops/webhooks/login");
    let (status, _, _) = served.post("/replay", None, &retry_dead).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A wrong token, in the form and as a bearer; a forged cookie.
    let (status, _, page) = served.post("/login", None, &[("token", "console-token-wrong-guess")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("not the console token"));
    let wrong = served
        .http
        .post(format!("{}/replay", served.base))
        .bearer_auth("console-token-wrong-guess")
        .form(&retry_dead)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, _, _) = served.post("/replay", Some("hookroute_console=1700000000.00ff"), &retry_dead).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(dead().await, 1);

    // A session without the CSRF token, with a wrong one, or from another origin.
    let (cookie, csrf) = served.log_in().await;
    let (status, _, _) = served.post("/replay", Some(&cookie), &retry_dead).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut with_wrong = retry_dead.to_vec();
    with_wrong.push(("csrf", "0000"));
    let (status, _, _) = served.post("/replay", Some(&cookie), &with_wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut with_csrf = retry_dead.to_vec();
    with_csrf.push(("csrf", &csrf));
    let mut cross = HeaderMap::new();
    cross.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
    cross.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
    let from_elsewhere =
        served.http.post(format!("{}/replay", served.base)).headers(cross).form(&with_csrf).send().await.unwrap();
    assert_eq!(from_elsewhere.status(), StatusCode::FORBIDDEN);
    assert_eq!(dead().await, 1, "nothing refused changed anything");

    // A script with the token needs no CSRF token.
    let scripted =
        served.http.post(format!("{}/replay", served.base)).bearer_auth(TOKEN).form(&retry_dead).send().await.unwrap();
    assert_eq!(scripted.status(), StatusCode::SEE_OTHER);
    assert_eq!(dead().await, 0);
}

/// Stores a `resource.created` delivery with id `id`, signed with `secret`, under `key`
/// straight in `inbox`, behind any receiver's back.
async fn store_signed(inbox: &dyn Inbox, key: &str, id: &str, secret: &str) {
    let signed = TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": id})).id(id).sign(secret);
    let headers = hookroute::inbox::encode_headers(&signed.headers);
    let new = NewDelivery {
        key,
        id,
        event_type: "resource.created",
        headers: &headers,
        body: &signed.body,
        signed_at: None,
        order: Order::NONE,
    };
    inbox.enqueue(&new).await.unwrap();
}

/// The `data-attempt` and text of each row of a delivery page's attempts table.
fn attempt_rows(html: &str) -> Vec<(String, String)> {
    let table = html.split("<table id=\"attempts\">").nth(1).unwrap().split("</table>").next().unwrap();
    table
        .split("<tr class=\"attempt\" data-attempt=\"")
        .skip(1)
        .map(|row| {
            let (number, rest) = row.split_once('"').unwrap();
            let what = rest.split("<td>").nth(3).unwrap().split('<').next().unwrap();
            (number.to_owned(), what.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_overview_counts_by_type_and_charts_what_happened_and_a_delivery_shows_its_attempts() {
    let served = serve().await;
    let (cookie, csrf) = served.log_in().await;

    // By type, as the inbox counts them; the chart holds the one done and the one failure.
    let (_, _, overview) = served.get("", Some(&cookie)).await;
    let deleted = overview.split("<tr class=\"type\" data-type=\"resource.deleted\">").nth(1).unwrap();
    assert!(deleted.contains("state=queued&amp;type=resource.deleted\">2</a>"), "{deleted}");
    let counts = served.inbox.type_counts().await.unwrap();
    assert_eq!(counts.iter().find(|c| c.event_type == "resource.deleted").map(|c| c.queued), Some(2));
    assert!(overview.contains("<figure id=\"activity\" data-done=\"1\" data-failed=\"1\">"), "{overview}");
    assert!(overview.contains("<svg") && !overview.contains("style=\""), "an SVG with no inline style");

    // The dead letter: attempt 1 failed for good; its signature verifies.
    let dead = served.inbox.list(DeliveryState::Dead, 1).await.unwrap().remove(0);
    let link: String = form_urlencoded::byte_serialize(dead.key.as_bytes()).collect();
    let (_, _, page) = served.get(&format!("/delivery?key={link}"), Some(&cookie)).await;
    assert!(page.contains("data-valid=\"true\">verifies"), "{page}");
    assert_eq!(attempt_rows(&page), [("1".to_owned(), "failed for good: dead letter".to_owned())]);
    // Retried from the page, it fails again: attempt 2 follows 1, and attempt 3 is next.
    let (status, _, _) = served.post("/retry", Some(&cookie), &[("csrf", &csrf), ("key", &dead.key)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut taken = served.inbox.take(std::time::Duration::from_secs(30)).await.unwrap().unwrap();
    while taken.delivery.key != dead.key {
        served.inbox.complete(&taken.lease, std::time::Duration::from_secs(3600)).await.unwrap();
        taken = served.inbox.take(std::time::Duration::from_secs(30)).await.unwrap().unwrap();
    }
    served.inbox.retry(&taken.lease, std::time::Duration::from_secs(600), "still <down>").await.unwrap();
    let (_, _, page) = served.get(&format!("/delivery?key={link}"), Some(&cookie)).await;
    let rows = attempt_rows(&page);
    let rows: Vec<(&str, &str)> = rows.iter().map(|(n, what)| (n.as_str(), what.as_str())).collect();
    assert_eq!(
        rows,
        [
            ("1", "failed for good: dead letter"),
            ("", "replayed by an operator"),
            ("2", "failed: retried"),
            ("3", "next")
        ]
    );
    assert!(page.contains("<th>Attempts</th><td>2</td>") && page.contains("still &lt;down&gt;"), "{page}");

    // A delivery signed with another secret (stored behind the receiver's back) does not verify.
    store_signed(&*served.inbox, "forged:groq:event:evt_forged", "evt_forged", "whsec_someone_else").await;
    let (_, _, page) = served.get("/delivery?key=forged%3Agroq%3Aevent%3Aevt_forged", Some(&cookie)).await;
    assert!(page.contains("data-valid=\"false\">does not verify: "), "{page}");
    // One whose payload went after the retention is not called forged.
    let emptied = NewDelivery {
        key: "forged:groq:event:evt_emptied",
        id: "evt_emptied",
        event_type: "resource.created",
        headers: b"",
        body: b"",
        signed_at: None,
        order: Order::NONE,
    };
    served.inbox.enqueue(&emptied).await.unwrap();
    let (_, _, page) = served.get("/delivery?key=forged%3Agroq%3Aevent%3Aevt_emptied", Some(&cookie)).await;
    assert!(page.contains("not checked: its payload was dropped"), "{page}");

    // Purge done deliveries completed before a date: none before 2000; a date to come
    // or one that does not parse is refused; everything done is older than 0 s.
    let purge = |field: &'static str, value: &'static str| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let served = &served;
        async move { served.post("/purge", Some(&cookie), &[("csrf", &csrf), (field, value)]).await }
    };
    let (status, _, page) = purge("before", "2000-01-01").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-count=\"0\">Purged 0 done deliveries completed before 2000-01-01"), "{page}");
    let (status, _, page) = purge("before", "2999-01-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("is in the future"), "{page}");
    let (status, _, page) = purge("before", "last tuesday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("is not a date"), "{page}");
    let done = served.inbox.stats().await.unwrap().done;
    assert!(done >= 1);
    let (_, _, page) = purge("older_than", "0s").await;
    assert!(page.contains(&format!("data-count=\"{done}\"")), "{page}");
    assert_eq!(served.inbox.stats().await.unwrap().done, 0);
}

#[tokio::test]
async fn a_console_over_a_queue_that_cannot_list_shows_its_counts_and_says_what_it_cannot() {
    let inbox = MemoryInbox::new();
    store_signed(&inbox, "ns:groq:event:evt_q", "evt_q", SECRET).await;
    let console = Console::builder(QueueOnly(inbox)).token(TOKEN).build().unwrap();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().nest("/ops", console)).await });
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{address}/ops{path}")).bearer_auth(TOKEN).send();

    let overview = get("").await.unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    let overview = overview.text().await.unwrap();
    assert_eq!(count_in(&overview, "queued"), 1);
    assert!(overview.contains("Not shown: the memory inbox cannot count its deliveries by event type"), "{overview}");
    for (path, cannot) in [
        ("/deliveries", "cannot search its deliveries"),
        ("/delivery?key=ns%3Agroq%3Aevent%3Aevt_q", "cannot look a delivery up"),
    ] {
        let page = get(path).await.unwrap();
        assert_eq!(page.status(), StatusCode::NOT_IMPLEMENTED, "{path}");
        let page = page.text().await.unwrap();
        assert!(page.contains(cannot) && page.contains("worker protocol only"), "{path}: {page}");
    }
}

#[tokio::test]
async fn a_console_behind_https_marks_its_cookie_secure() {
    let served = serve_with(true).await;
    let (_, headers, _) = served.post("/login", None, &[("token", TOKEN)]).await;
    let set = headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.ends_with("; Secure"), "{set}");
    let (_, headers, _) = serve().await.post("/login", None, &[("token", TOKEN)]).await;
    assert!(!headers.get(SET_COOKIE).unwrap().to_str().unwrap().contains("Secure"));
}

#[test]
fn a_console_without_a_strong_token_is_not_built() {
    let error = Console::builder(MemoryInbox::new()).token("short").build().unwrap_err();
    assert!(error.to_string().contains("at least 16 characters"), "{error}");
    // Without a token or HOOKROUTE_CONSOLE_TOKEN (this test process does not set it).
    if std::env::var_os("HOOKROUTE_CONSOLE_TOKEN").is_none() {
        let error = Console::builder(MemoryInbox::new()).build().unwrap_err();
        assert!(error.to_string().contains("HOOKROUTE_CONSOLE_TOKEN"), "{error}");
    }
}

/// `examples/inbox_receiver` with `CONSOLE_TOKEN` serves the console at `/console` over
/// the inbox its requests fill.
#[tokio::test]
async fn the_inbox_example_serves_the_console_over_its_inbox() {
    let mut command = std::process::Command::new(crate::support::example_path("inbox_receiver"));
    command.env("GROQ_WEBHOOK_SECRET", SECRET).env("CONSOLE_TOKEN", TOKEN).env("WORKERS", "0");
    let (_example, address) = crate::support::Example::start(command);
    let delivery =
        TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).id("evt_example").sign(SECRET);
    let http = reqwest::Client::builder().redirect(redirect::Policy::none()).build().unwrap();
    let mut request = http.post(format!("http://{address}/webhooks/groq")).body(delivery.body.clone());
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_bytes());
    }
    assert_eq!(request.send().await.unwrap().status(), StatusCode::ACCEPTED);
    let page =
        http.get(format!("http://{address}/console/deliveries?state=queued")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert_eq!(listed_keys(&html).len(), 1, "{html}");
    assert!(listed_keys(&html)[0].ends_with(":groq:event:evt_example"));
    let anonymous = http.get(format!("http://{address}/console")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}
