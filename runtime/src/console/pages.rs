//! What each page of the console shows and what each action does.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};

use super::auth::{csrf_matches, same_origin, Caller, Keys};
use super::html::{button, chart, esc, home, page, query_value, short, stamp, when};
use super::{Answer, Request, Verify};
use crate::inbox::{
    decode_headers, Cursor, DeliveryState, Filter, History, InboxAdmin, InboxError, StepKind, StoredDelivery,
    TypeCounts,
};

/// The most rows a list page shows.
const MAX_LIMIT: usize = 500;

/// How many deliveries a replay of a filter reads and replays at a time.
const REPLAY_BATCH: usize = 500;

/// Headers whose values are credentials or signatures: shown masked.
const MASKED: [&str; 9] =
    ["signature", "authorization", "token", "secret", "cookie", "api-key", "apikey", "hmac", "password"];

/// A request refused before any page runs: not logged in, or a state-changing request
/// without its CSRF token or from another origin.
pub(super) fn guard(request: &Request, headers: &HeaderMap) -> Option<Answer> {
    if request.method != Method::GET && request.method != Method::POST {
        return Some(error(request, StatusCode::METHOD_NOT_ALLOWED, "Only GET and POST are answered here."));
    }
    let posting = request.method == Method::POST;
    if posting && !matches!(request.caller, Caller::Bearer) && !same_origin(headers) {
        return Some(error(request, StatusCode::FORBIDDEN, "Refused: this request came from another site."));
    }
    if request.path == "/login" {
        return None;
    }
    match &request.caller {
        Caller::Anonymous if posting => {
            Some(error(request, StatusCode::UNAUTHORIZED, "Refused: log in first (or send the console token)."))
        }
        Caller::Anonymous => Some(Answer::SeeOther(format!("{}/login", request.prefix))),
        Caller::Session { csrf } if posting => {
            let offered = request.field("csrf").unwrap_or_default();
            (!csrf_matches(csrf, offered)).then(|| {
                error(
                    request,
                    StatusCode::FORBIDDEN,
                    "Refused: the form's CSRF token is missing or wrong. Reload the page.",
                )
            })
        }
        Caller::Session { .. } | Caller::Bearer => None,
    }
}

/// The page or action at the request's path.
pub(super) async fn answer(inbox: &dyn InboxAdmin, keys: &Keys, verify: Option<&Verify>, request: &Request) -> Answer {
    let result = match (&request.method, request.path.as_str()) {
        (&Method::GET, "/login") => Ok(login(request, None)),
        (&Method::POST, "/login") => Ok(log_in(keys, request)),
        (&Method::POST, "/logout") => Ok(Answer::LoggedOut(format!("{}/login", request.prefix))),
        (&Method::GET, "/" | "") => overview(inbox, request).await,
        (&Method::GET, "/deliveries") => deliveries(inbox, request).await,
        (&Method::GET, "/delivery") => delivery(inbox, verify, request).await,
        (&Method::POST, "/retry") => retry(inbox, request).await,
        (&Method::POST, "/replay") => replay(inbox, request).await,
        (&Method::GET, "/replayed") => replayed(request),
        (&Method::POST, "/purge") => purge(inbox, request).await,
        (&Method::POST, "/pause") => switch(inbox, request, true).await,
        (&Method::POST, "/resume") => switch(inbox, request, false).await,
        _ => Ok(error(request, StatusCode::NOT_FOUND, "There is no such page.")),
    };
    result.unwrap_or_else(|failure| match failure {
        Failure::BadRequest(why) => error(request, StatusCode::BAD_REQUEST, &why),
        Failure::Inbox(err @ InboxError::Unsupported { .. }) => error(
            request,
            StatusCode::NOT_IMPLEMENTED,
            &format!("Not shown: {err}. It implements the worker protocol only; the overview shows its counts."),
        ),
        Failure::Inbox(err) => error(request, StatusCode::SERVICE_UNAVAILABLE, &format!("The inbox failed: {err}")),
    })
}

enum Failure {
    BadRequest(String),
    Inbox(InboxError),
}

impl From<InboxError> for Failure {
    fn from(err: InboxError) -> Self {
        Self::Inbox(err)
    }
}

fn csrf(request: &Request) -> Option<&str> {
    match &request.caller {
        Caller::Session { csrf } => Some(csrf),
        _ => None,
    }
}

fn error(request: &Request, status: StatusCode, why: &str) -> Answer {
    let title = status.canonical_reason().unwrap_or("Error");
    Answer::Page(status, page(&request.prefix, title, csrf(request), &format!("<p class=\"error\">{}</p>", esc(why))))
}

fn login(request: &Request, wrong: Option<&str>) -> Answer {
    let mut body = String::new();
    if let Some(wrong) = wrong {
        let _ = write!(body, "<p class=\"error\">{}</p>", esc(wrong));
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{}/login\"><label>Console token <input type=\"password\" name=\"token\" \
         autocomplete=\"current-password\" required></label> <button type=\"submit\">Log in</button></form>",
        esc(&request.prefix)
    );
    let status = if wrong.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    Answer::Page(status, page(&request.prefix, "Log in", None, &body))
}

fn log_in(keys: &Keys, request: &Request) -> Answer {
    match request.field("token") {
        Some(token) if keys.is_token(token) => {
            Answer::LoggedIn(home(&request.prefix), keys.new_session(SystemTime::now()))
        }
        _ => login(request, Some("That is not the console token.")),
    }
}

async fn overview(inbox: &dyn InboxAdmin, request: &Request) -> Result<Answer, Failure> {
    // Each read apart, at once: on PostgreSQL the counts by state and by type each
    // read the table, on separate connections.
    let (start, period, periods) = chart_window(SystemTime::now());
    let (stats, keys, paused, types, activity) = tokio::join!(
        inbox.stats(),
        inbox.key_stats(),
        inbox.paused(),
        inbox.type_counts(),
        inbox.activity(start, period, periods)
    );
    let (stats, keys, paused, activity) = (stats?, keys?, paused?, activity?);
    let csrf = csrf(request).unwrap_or_default();
    let p = &request.prefix;
    let mut body = format!(
        "<p>Inbox: {}</p><table class=\"counts\"><tr><th>State</th><th>Deliveries</th></tr>",
        esc(inbox.backend())
    );
    for (state, count) in [
        (DeliveryState::Queued, stats.queued),
        (DeliveryState::Running, stats.running),
        (DeliveryState::Retrying, stats.retrying),
        (DeliveryState::Dead, stats.dead),
        (DeliveryState::Done, stats.done),
    ] {
        let _ = write!(
            body,
            "<tr><td><a href=\"{}/deliveries?state={state}\">{state}</a></td><td class=\"count\" data-state=\"{state}\">{count}</td></tr>",
            esc(p)
        );
    }
    body.push_str("</table>");
    let oldest = stats.oldest_due_age.map_or_else(|| "none waiting".to_owned(), short);
    let _ = write!(
        body,
        "<p>Oldest queued delivery (due longest) has waited: <span id=\"oldest\">{}</span></p>",
        esc(&oldest)
    );
    match types {
        Ok(counts) => body.push_str(&by_type(p, &counts)),
        Err(err @ InboxError::Unsupported { .. }) => {
            let _ = write!(
                body,
                "<h2>By event type</h2><p class=\"unsupported\">Not shown: {}.</p>",
                esc(&err.to_string())
            );
        }
        Err(err) => return Err(err.into()),
    }
    body.push_str("<h2>The last 6 hours</h2>");
    match activity {
        Some(activity) => body.push_str(&chart(&activity)),
        None => body.push_str("<p>This inbox does not count completions and failures over time.</p>"),
    }
    if let Some(keys) = keys {
        let _ = write!(
            body,
            "<p>Ordering keys with deliveries waiting: {}; held by a retrying delivery: {}</p>",
            keys.waiting, keys.held_by_retry
        );
    }
    body.push_str("<h2>Paused event types</h2>");
    if paused.is_empty() {
        body.push_str("<p>None: every type runs.</p>");
    } else {
        body.push_str("<ul>");
        for event_type in &paused {
            let resume = button(p, "resume", csrf, &[("type", event_type)], &format!("Resume {event_type}"));
            let _ = write!(body, "<li>{} {resume}</li>", esc(event_type));
        }
        body.push_str("</ul>");
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{p}/pause\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">\
         <label>Event type <input name=\"type\" required></label> <button type=\"submit\">Pause this type</button></form>\
         <h2>Search</h2>{search}\
         <h2>Purge</h2><form method=\"post\" action=\"{p}/purge\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">\
         <label>Done deliveries completed before <input type=\"date\" name=\"before\" value=\"{week_ago}\" required></label> \
         <button type=\"submit\">Purge done deliveries</button></form>",
        p = esc(p),
        c = esc(csrf),
        search = search_form(request),
        week_ago = esc(&day_of(SystemTime::now() - Duration::from_secs(7 * 86_400))),
    );
    Ok(Answer::Page(StatusCode::OK, page(p, "Overview", Some(csrf), &body)))
}

/// The chart's periods: 24 of 15 minutes, the last one holding `now`.
fn chart_window(now: SystemTime) -> (SystemTime, Duration, usize) {
    const PERIOD: Duration = Duration::from_secs(15 * 60);
    const PERIODS: u32 = 24;
    let since = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let current = SystemTime::UNIX_EPOCH + Duration::from_secs(since - since % PERIOD.as_secs());
    (current.checked_sub(PERIOD * (PERIODS - 1)).unwrap_or(SystemTime::UNIX_EPOCH), PERIOD, PERIODS as usize)
}

/// The counts by event type, each a link to its deliveries in that state.
fn by_type(prefix: &str, counts: &[TypeCounts]) -> String {
    let mut html = String::from("<h2>By event type</h2>");
    if counts.is_empty() {
        html.push_str("<p>No delivery is queued, running, retrying or dead.</p>");
        return html;
    }
    html.push_str(
        "<table id=\"types\"><tr><th>Type</th><th>queued</th><th>running</th><th>retrying</th><th>dead</th></tr>",
    );
    for counted in counts {
        let link = query_value(&counted.event_type);
        let _ = write!(
            html,
            "<tr class=\"type\" data-type=\"{}\"><td>{}</td>",
            esc(&counted.event_type),
            esc(&counted.event_type)
        );
        for (state, count) in [
            (DeliveryState::Queued, counted.queued),
            (DeliveryState::Running, counted.running),
            (DeliveryState::Retrying, counted.retrying),
            (DeliveryState::Dead, counted.dead),
        ] {
            let _ = write!(
                html,
                "<td class=\"count\" data-state=\"{state}\"><a href=\"{}/deliveries?state={state}&amp;type={}\">{count}</a></td>",
                esc(prefix),
                esc(&link)
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// The filter in `pairs` (a query or a form); a value that does not parse is a 400
/// that says why.
fn filter_of(field: impl Fn(&str) -> Option<String>) -> Result<Filter, Failure> {
    let state = match field("state") {
        Some(state) => Some(state.parse::<DeliveryState>().map_err(Failure::BadRequest)?),
        None => None,
    };
    let now = SystemTime::now();
    let ago = |name: &str| -> Result<Option<SystemTime>, Failure> {
        field(name)
            .map(|text| {
                let by = humantime::parse_duration(&text).map_err(|err| {
                    Failure::BadRequest(format!("`{name}={text}` is not a duration like 2h or 30m: {err}"))
                })?;
                Ok(now.checked_sub(by).unwrap_or(SystemTime::UNIX_EPOCH))
            })
            .transpose()
    };
    Ok(Filter {
        state,
        event_type: field("type"),
        order_key: field("key"),
        error: field("error"),
        received_from: ago("since")?,
        received_until: ago("older_than")?,
    })
}

/// The filter's fields as name/value pairs, to carry it in a link or a form.
fn filter_fields(request_field: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    ["state", "type", "key", "error", "since", "older_than"]
        .into_iter()
        .filter_map(|name| request_field(name).map(|value| (name, value)))
        .collect()
}

fn search_form(request: &Request) -> String {
    let value = |name: &str| esc(request.query(name).unwrap_or_default());
    let mut states = String::from("<option value=\"\">any</option>");
    for state in DeliveryState::ALL {
        let selected = if request.query("state") == Some(state.as_str()) { " selected" } else { "" };
        let _ = write!(states, "<option value=\"{state}\"{selected}>{state}</option>");
    }
    format!(
        "<form method=\"get\" action=\"{}/deliveries\"><label>State <select name=\"state\">{states}</select></label> \
         <label>Type <input name=\"type\" value=\"{}\"></label> <label>Key <input name=\"key\" value=\"{}\"></label> \
         <label>Error contains <input name=\"error\" value=\"{}\"></label> \
         <label>Received within <input name=\"since\" size=\"5\" value=\"{}\" placeholder=\"2h\"></label> \
         <label>Older than <input name=\"older_than\" size=\"5\" value=\"{}\"></label> \
         <button type=\"submit\">Search</button></form>",
        esc(&request.prefix),
        value("type"),
        value("key"),
        value("error"),
        value("since"),
        value("older_than"),
    )
}

async fn deliveries(inbox: &dyn InboxAdmin, request: &Request) -> Result<Answer, Failure> {
    let query = |name: &str| request.query(name).map(str::to_owned);
    let filter = filter_of(query)?;
    let after = match request.query("after") {
        Some(cursor) => Some(cursor.parse::<Cursor>().map_err(Failure::BadRequest)?),
        None => None,
    };
    let limit = match request.query("limit") {
        Some(limit) => match limit.parse::<usize>() {
            Ok(limit @ 1..=MAX_LIMIT) => limit,
            _ => return Err(Failure::BadRequest(format!("`limit={limit}` is not a number from 1 to {MAX_LIMIT}"))),
        },
        None => 50,
    };
    let found = inbox.search(&filter, after.as_ref(), limit).await?;
    let p = esc(&request.prefix);
    let mut body = search_form(request);
    let _ = write!(
        body,
        "<table id=\"deliveries\"><tr><th>Received</th><th>Event</th><th>Type</th><th>State</th><th>Attempts</th>\
         <th>Key</th><th>Last error</th></tr>"
    );
    for delivery in &found.deliveries {
        let _ = write!(
            body,
            "<tr class=\"delivery\" data-key=\"{key}\" data-state=\"{state}\"><td>{received}</td>\
             <td><a href=\"{p}/delivery?key={link}\">{id}</a></td><td>{event_type}</td><td>{state}</td>\
             <td>{attempts}</td><td>{order_key}</td><td>{error}</td></tr>",
            key = esc(&delivery.key),
            state = delivery.state,
            received = esc(&when(delivery.received_at)),
            link = esc(&query_value(&delivery.key)),
            id = esc(&delivery.id),
            event_type = esc(&delivery.event_type),
            attempts = delivery.attempts,
            order_key = esc(delivery.order_key.as_deref().unwrap_or("")),
            error = esc(delivery.last_error.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</table>");
    let fields = filter_fields(query);
    let _ = write!(body, "<p>{} shown, newest first.", found.deliveries.len());
    if let Some(next) = &found.next {
        let mut link = form_urlencoded::Serializer::new(String::new());
        link.extend_pairs(fields.iter().map(|(name, value)| (*name, value.as_str())));
        link.append_pair("limit", &limit.to_string()).append_pair("after", &next.to_string());
        let _ = write!(body, " <a id=\"next\" href=\"{p}/deliveries?{}\">Next page</a>", esc(&link.finish()));
    }
    body.push_str("</p>");
    if let (true, Some(csrf)) = (filter.narrows(), csrf(request)) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
        body.push_str(&button(&request.prefix, "replay", csrf, &fields, "Replay every delivery this search matches"));
    }
    Ok(Answer::Page(StatusCode::OK, page(&request.prefix, "Deliveries", csrf(request), &body)))
}

async fn delivery(inbox: &dyn InboxAdmin, verify: Option<&Verify>, request: &Request) -> Result<Answer, Failure> {
    let key = request.query("key").ok_or_else(|| Failure::BadRequest("`key` is missing: which delivery?".into()))?;
    let Some(delivery) = inbox.get(key).await? else {
        return Ok(error(request, StatusCode::NOT_FOUND, &format!("There is no delivery `{key}`.")));
    };
    let history = inbox.history(&delivery.key).await?;
    let mut body = facts(&delivery, history.as_ref(), verify);
    if delivery.state != DeliveryState::Running {
        if let Some(csrf) = csrf(request) {
            body.push_str(&button(&request.prefix, "retry", csrf, &[("key", &delivery.key)], "Retry this delivery"));
        }
    }
    body.push_str(&attempts(&delivery, history.as_ref()));
    body.push_str("<h2>Headers</h2><table id=\"headers\">");
    match decode_headers(&delivery.headers) {
        Ok(headers) => {
            for (name, value) in &headers {
                let masked = MASKED.iter().any(|word| name.as_str().contains(word));
                let value = if masked {
                    "•••••• (masked)".to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(name.as_str()), esc(&value));
            }
        }
        Err(err) => {
            let _ = write!(body, "<tr><td class=\"error\">{}</td></tr>", esc(&err.to_string()));
        }
    }
    body.push_str("</table><h2>Body</h2><pre id=\"body\">");
    let pretty = serde_json::from_slice::<serde_json::Value>(&delivery.body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&delivery.body).into_owned());
    body.push_str(&esc(&pretty));
    body.push_str("</pre>");
    Ok(Answer::Page(StatusCode::OK, page(&request.prefix, &format!("Delivery {}", delivery.id), csrf(request), &body)))
}

fn facts(delivery: &StoredDelivery, history: Option<&History>, verify: Option<&Verify>) -> String {
    let attempts = history.map_or(delivery.attempts, |history| history.latest_attempt(delivery));
    let mut rows = vec![
        ("Key", esc(&delivery.key)),
        ("Event id", esc(&delivery.id)),
        ("Type", esc(&delivery.event_type)),
        ("State", delivery.state.to_string()),
        ("Attempts", attempts.to_string()),
        ("Received", esc(&when(delivery.received_at))),
        ("Created", esc(&when(delivery.created_at))),
    ];
    if let Some(order_key) = &delivery.order_key {
        rows.push(("Ordering key", esc(order_key)));
    }
    if let Some(signed) = delivery.signed_at {
        rows.push(("Signed at", esc(&when(SystemTime::UNIX_EPOCH + Duration::from_secs(signed)))));
    }
    rows.push(("Last error", esc(delivery.last_error.as_deref().unwrap_or("none"))));
    // As `hookroute inbox verify` says: the signature as of when it arrived.
    let forgotten = delivery.body.is_empty() && delivery.headers.is_empty();
    let signature = match verify.filter(|_| !forgotten).map(|verify| verify(delivery)) {
        Some(Ok(())) => "<span id=\"signature\" data-valid=\"true\">verifies (as of when it arrived)</span>".to_owned(),
        Some(Err(why)) => {
            format!("<span id=\"signature\" class=\"error\" data-valid=\"false\">does not verify: {}</span>", esc(&why))
        }
        None if forgotten => {
            "<span id=\"signature\">not checked: its payload was dropped after the payload retention</span>".to_owned()
        }
        None => "<span id=\"signature\">not checked: the console was given no secret (ConsoleBuilder::verifier)</span>"
            .to_owned(),
    };
    rows.push(("Signature", signature));
    let mut html = String::from("<table id=\"facts\">");
    for (name, value) in rows {
        let _ = write!(html, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    html.push_str("</table>");
    html
}

/// Every attempt, numbered across replays: the failed ones with their time and error,
/// the replays, the one running or done, and the ones whose worker never answered.
fn attempts(delivery: &StoredDelivery, history: Option<&History>) -> String {
    let Some(history) = history else {
        return format!(
            "<h2>Attempts</h2><p>This inbox keeps no history of attempts: {} so far.</p>",
            delivery.attempts
        );
    };
    let latest = history.latest_attempt(delivery);
    let mut rows = AttemptRows { html: String::new(), answered: 0 };
    for step in &history.steps {
        let at = when(step.at);
        match step.kind {
            StepKind::Replayed => {
                // A replay of a done delivery follows its successful attempt.
                if step.from == Some(DeliveryState::Done) && step.attempt > rows.answered {
                    rows.attempt(step.attempt, "", "done", "");
                }
                rows.lost_until(step.attempt);
                rows.push("", &at, "replayed by an operator", "");
            }
            kind => {
                let what = if kind == StepKind::Dead { "failed for good: dead letter" } else { "failed: retried" };
                rows.attempt(step.attempt, &at, what, step.error.as_deref().unwrap_or(""));
            }
        }
    }
    let current = match delivery.state {
        DeliveryState::Running => Some("running now"),
        DeliveryState::Done => Some("done"),
        _ => None,
    };
    match current {
        Some(what) if latest > rows.answered => {
            rows.attempt(latest, &history.changed_at.map(when).unwrap_or_default(), what, "");
        }
        _ => rows.lost_until(latest),
    }
    if matches!(delivery.state, DeliveryState::Queued | DeliveryState::Retrying) {
        rows.push(&(latest + 1).to_string(), "", "next", "");
    }
    format!(
        "<h2>Attempts</h2><table id=\"attempts\"><tr><th>Attempt</th><th>When</th><th>What</th><th>Error</th></tr>{}</table>",
        rows.html
    )
}

/// The rows of a delivery's attempts table, each attempt once: one that left no step
/// before a later one gets a row saying its worker never answered.
struct AttemptRows {
    html: String,
    /// The highest attempt with a row.
    answered: u32,
}

impl AttemptRows {
    fn push(&mut self, attempt: &str, at: &str, what: &str, error: &str) {
        let _ = write!(
            self.html,
            "<tr class=\"attempt\" data-attempt=\"{attempt}\"><td>{attempt}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(at),
            esc(what),
            esc(error)
        );
    }

    /// Attempt `number`'s row, after the rows of the attempts before it that left none.
    fn attempt(&mut self, number: u32, at: &str, what: &str, error: &str) {
        self.lost_until(number.saturating_sub(1));
        self.push(&number.to_string(), at, what, error);
        self.answered = self.answered.max(number);
    }

    /// A row for each attempt up to `upto` not shown yet: its worker never answered.
    fn lost_until(&mut self, upto: u32) {
        for number in (self.answered + 1)..=upto {
            self.push(
                &number.to_string(),
                "",
                "no answer: its worker stopped (crashed, was killed or hung past its lease)",
                "",
            );
        }
        self.answered = self.answered.max(upto);
    }
}

async fn retry(inbox: &dyn InboxAdmin, request: &Request) -> Result<Answer, Failure> {
    let key = request.field("key").ok_or_else(|| Failure::BadRequest("`key` is missing: which delivery?".into()))?;
    if !inbox.replay(key).await? {
        return Ok(error(
            request,
            StatusCode::CONFLICT,
            &format!("`{key}` is running now, or there is no such delivery."),
        ));
    }
    Ok(Answer::SeeOther(format!("{}/delivery?key={}", request.prefix, query_value(key))))
}

async fn replay(inbox: &dyn InboxAdmin, request: &Request) -> Result<Answer, Failure> {
    let field = |name: &str| request.field(name).map(str::to_owned);
    let filter = filter_of(field)?;
    if !filter.narrows() {
        return Err(Failure::BadRequest(
            "A replay needs a state, a type, a key or an error text: it would run every delivery again.".into(),
        ));
    }
    let csrf = csrf(request).unwrap_or_default();
    let fields = filter_fields(field);
    if request.field("confirm") != Some("yes") {
        let count = inbox.count(&filter).await?;
        let mut confirm: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
        confirm.push(("confirm", "yes"));
        let described: Vec<String> = fields.iter().map(|(name, value)| format!("{name} {value}")).collect();
        let body = format!(
            "<p id=\"count\" data-count=\"{count}\">{count} deliveries match ({}).</p>{}",
            esc(&described.join(", ")),
            button(&request.prefix, "replay", csrf, &confirm, &format!("Replay {count} deliveries"))
        );
        return Ok(Answer::Page(StatusCode::OK, page(&request.prefix, "Replay?", Some(csrf), &body)));
    }
    let replayed = inbox.replay_matching(&filter, REPLAY_BATCH).await?;
    // Post, then redirect: reloading the answer does not replay again.
    Ok(Answer::SeeOther(format!("{}/replayed?count={replayed}", request.prefix)))
}

/// What a replay queued again (where its post redirects).
fn replayed(request: &Request) -> Result<Answer, Failure> {
    let count = request.query("count").unwrap_or_default();
    let count: u64 =
        count.parse().map_err(|_| Failure::BadRequest(format!("`count={count}` is not a number of deliveries")))?;
    let body = format!("<p id=\"replayed\" data-count=\"{count}\">Queued again: {count}.</p>");
    Ok(Answer::Page(StatusCode::OK, page(&request.prefix, "Replayed", csrf(request), &body)))
}

/// `YYYY-MM-DD` of a time, in UTC.
fn day_of(at: SystemTime) -> String {
    stamp(at).chars().take(10).collect()
}

/// Purges the done deliveries completed before `before` (a date, `2026-12-01`, midnight
/// UTC; or a time, `2026-12-01T12:00:00Z`), or older than `older_than` (`7d`).
async fn purge(inbox: &dyn InboxAdmin, request: &Request) -> Result<Answer, Failure> {
    let now = SystemTime::now();
    let (older_than, said) = match (request.field("before"), request.field("older_than")) {
        (Some(before), _) => {
            let time = if before.len() == 10 { format!("{before}T00:00:00Z") } else { before.to_owned() };
            let at = humantime::parse_rfc3339_weak(&time).map_err(|err| {
                Failure::BadRequest(format!("`before={before}` is not a date like 2026-12-01: {err}"))
            })?;
            let age = now.duration_since(at).map_err(|_| {
                Failure::BadRequest(format!("`before={before}` is in the future: every done delivery would go"))
            })?;
            (age, format!("completed before {before}"))
        }
        (None, Some(text)) => {
            let age = humantime::parse_duration(text)
                .map_err(|err| Failure::BadRequest(format!("`older_than={text}` is not a duration like 7d: {err}")))?;
            (age, format!("older than {text}"))
        }
        (None, None) => {
            return Err(Failure::BadRequest("`before` is missing: purge what was done before when?".into()))
        }
    };
    let purged = inbox.purge_done(older_than).await?;
    let body = format!("<p id=\"purged\" data-count=\"{purged}\">Purged {purged} done deliveries {}.</p>", esc(&said));
    Ok(Answer::Page(StatusCode::OK, page(&request.prefix, "Purged", csrf(request), &body)))
}

async fn switch(inbox: &dyn InboxAdmin, request: &Request, pause: bool) -> Result<Answer, Failure> {
    let event_type =
        request.field("type").ok_or_else(|| Failure::BadRequest("`type` is missing: which event type?".into()))?;
    if pause {
        inbox.pause(event_type).await?;
    } else {
        inbox.resume(event_type).await?;
    }
    Ok(Answer::SeeOther(home(&request.prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::HistoryLine;

    fn delivery(state: DeliveryState, attempts: u32) -> StoredDelivery {
        StoredDelivery {
            key: "ns:groq:event:evt_1".into(),
            id: "evt_1".into(),
            event_type: "resource.created".into(),
            headers: Vec::new(),
            body: Vec::new(),
            signed_at: None,
            state,
            attempts,
            last_error: None,
            received_at: SystemTime::UNIX_EPOCH,
            order_key: None,
            created_at: SystemTime::UNIX_EPOCH,
        }
    }

    /// (attempt, what) of each row of the attempts table.
    fn rows(html: &str) -> Vec<(String, String)> {
        html.split("<tr class=\"attempt\" data-attempt=\"")
            .skip(1)
            .map(|row| {
                let (number, rest) = row.split_once('"').unwrap();
                (number.to_owned(), rest.split("<td>").nth(3).unwrap().split('<').next().unwrap().to_owned())
            })
            .collect()
    }

    #[test]
    fn each_attempt_has_one_row_across_replays() {
        // Done at attempt 1, replayed, then attempt 2 lost (its worker died), attempt 3 failed, running 4.
        let mut text = HistoryLine::replayed(1, 1_000, DeliveryState::Done);
        text += &HistoryLine::failed(2, 3_000, false, "boom");
        let history = HistoryLine::read(&text, Some(4_000));
        let html = attempts(&delivery(DeliveryState::Running, 3), Some(&history));
        let got = rows(&html);
        let got: Vec<(&str, &str)> = got.iter().map(|(n, what)| (n.as_str(), what.as_str())).collect();
        assert_eq!(
            got,
            [
                ("1", "done"),
                ("", "replayed by an operator"),
                ("2", "no answer: its worker stopped (crashed, was killed or hung past its lease)"),
                ("3", "failed: retried"),
                ("4", "running now"),
            ]
        );
    }
}
