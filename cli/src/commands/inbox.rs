//! `hookroute inbox`: look into a receiver's inbox and act on it, as an operator does.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use hookroute_runtime::inbox::{
    self, decode_headers, DeliveryState, Inbox, InboxAdmin, PostgresInbox, RedisInbox, StoredDelivery,
};

use crate::{scheme, secret, Failure, SecretArgs};

#[derive(Args)]
pub(crate) struct InboxArgs {
    /// The inbox: `redis://…`, `postgres://…`, `sqlite:PATH` (what the receiver's
    /// `HOOKROUTE_INBOX` says).
    #[arg(long, env = "HOOKROUTE_INBOX")]
    url: String,
    /// PostgreSQL: the inbox's table, when the receiver set one.
    #[arg(long)]
    table: Option<String>,
    /// Redis: the inbox's key prefix, when the receiver set one.
    #[arg(long)]
    prefix: Option<String>,
    /// The receiver's namespace, to look an event id up under (by default the one the
    /// inbox belongs to).
    #[arg(long)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: InboxCommand,
}

/// Which deliveries `search` and `replay` look at.
#[derive(Args)]
struct FilterArgs {
    /// queued, running, retrying, done or dead.
    #[arg(long)]
    state: Option<DeliveryState>,
    /// An event type, exactly (`invoice.paid`).
    #[arg(long = "type")]
    event_type: Option<String>,
    /// An ordering key, exactly (`cus_123`).
    #[arg(long)]
    key: Option<String>,
    /// Text the last error contains, in any case.
    #[arg(long)]
    error: Option<String>,
    /// Received within this long before now (`2h`, `30m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Received longer ago than this (`1h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    older_than: Option<Duration>,
}

impl FilterArgs {
    /// The filter, `since` and `older_than` measured back from now.
    fn filter(self) -> inbox::Filter {
        let now = std::time::SystemTime::now();
        let ago = |by: Duration| now.checked_sub(by).unwrap_or(std::time::UNIX_EPOCH);
        inbox::Filter {
            state: self.state,
            event_type: self.event_type,
            order_key: self.key,
            error: self.error,
            received_from: self.since.map(ago),
            received_until: self.older_than.map(ago),
        }
    }
}

#[derive(Subcommand)]
enum InboxCommand {
    /// How many deliveries are in each state, and how long the oldest due one has waited.
    Stats,
    /// The deliveries in one state, oldest first; or, with --key, the pending
    /// deliveries of one ordering key in the order they run.
    List {
        /// queued, running, retrying, done or dead.
        #[arg(long, required_unless_present = "key", conflicts_with = "key")]
        state: Option<DeliveryState>,
        /// An ordering key (`cus_123` for a handler declared with
        /// `key = "data.object.customer"`): its queued, retrying and running deliveries.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Deliveries by state, event type, ordering key, error text and time received,
    /// newest first, a page at a time (the last line gives the next page's `--after`).
    Search {
        #[command(flatten)]
        filter: FilterArgs,
        /// Where the page starts: the `next` the previous page printed.
        #[arg(long)]
        after: Option<inbox::Cursor>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Run again every delivery a filter matches (not running ones), a batch at a time:
    /// without `--yes` it only counts them.
    Replay {
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay them; without it, say how many would be.
        #[arg(long)]
        yes: bool,
        /// How many to read and replay at a time.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Pause an event type: workers leave its deliveries queued (new ones too) until
    /// `resume`, while every other type runs. The switch for an incident in one handler.
    Pause {
        /// The event type, exactly (`invoice.paid`).
        event_type: String,
    },
    /// Let workers take a paused event type's deliveries again.
    Resume {
        /// The event type, exactly.
        event_type: String,
    },
    /// Serve the operator console over this inbox (see, search, replay, pause in a
    /// browser) until Ctrl-C. Log in with the console token.
    Console {
        /// Where to listen; keep it on loopback unless a proxy with TLS is in front.
        #[arg(long, default_value = "127.0.0.1:8025")]
        listen: std::net::SocketAddr,
        /// The console token (at least 16 characters).
        #[arg(long, env = "HOOKROUTE_CONSOLE_TOKEN", hide_env_values = true)]
        token: String,
        /// The signing secret each delivery's page checks its signature with, as
        /// `verify` does (else the provider's variable, e.g. `GROQ_WEBHOOK_SECRET`).
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// One delivery: its facts, last error, headers and body as received.
    Show {
        /// The event id, or the whole key `list` prints (`<namespace>:groq:event:evt_1`,
        /// `<namespace>:github:body:<digest>`).
        id: String,
    },
    /// Run a delivery again now, with a fresh retry schedule (no timestamp window:
    /// it was verified when it arrived).
    Retry {
        /// The event id, or the whole key.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all_dead: bool,
    },
    /// Delete done deliveries older than a duration (their ids are forgotten: a
    /// redelivery of one would run again).
    Purge {
        /// e.g. `7d`, `24h`, `30m`.
        #[arg(long, value_parser = humantime::parse_duration)]
        done_older_than: Duration,
    },
    /// Check a stored delivery's signature again, as of when it arrived.
    Verify {
        /// The event id, or the whole key.
        id: String,
        #[command(flatten)]
        secret: SecretArgs,
        /// The replay window in seconds, measured from when the delivery arrived.
        #[arg(long, default_value_t = 300)]
        tolerance: u64,
    },
}

pub(crate) fn run(args: InboxArgs, json: bool) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let inbox = open(&args).await?;
        let fail = |error: inbox::InboxError| format!("{}: {error}", args.url);
        let mut out = std::io::stdout().lock();
        let mut print = |text: String| {
            let _ = writeln!(out, "{text}");
        };
        match args.command {
            InboxCommand::Stats => {
                let stats = inbox.stats().await.map_err(fail)?;
                let keys = inbox.key_stats().await.map_err(fail)?;
                let paused = inbox.paused().await.map_err(fail)?;
                stats_lines(&stats, keys, &paused, json).into_iter().for_each(&mut print);
            }
            InboxCommand::List { state: Some(state), limit, .. } => {
                let found = inbox.list(state, limit).await.map_err(fail)?;
                list_lines(&found, state, json).into_iter().for_each(&mut print);
            }
            InboxCommand::List { state: None, key, limit } => {
                let key = key.unwrap_or_default();
                let found = inbox.list_key(&key, limit).await.map_err(fail)?;
                key_lines(&found, &key, json).into_iter().for_each(&mut print);
            }
            InboxCommand::Search { filter, after, limit } => {
                let filter = filter.filter();
                let page = inbox.search(&filter, after.as_ref(), limit.max(1)).await.map_err(fail)?;
                search_lines(&page, json).into_iter().for_each(&mut print);
            }
            InboxCommand::Replay { filter, yes, batch } => {
                let Some(said) = replay(&*inbox, filter.filter(), yes, batch, json).await.map_err(fail)? else {
                    return Ok(ExitCode::from(2));
                };
                print(said);
            }
            InboxCommand::Pause { event_type: t } => print(switch(&*inbox, &t, true, json).await.map_err(fail)?),
            InboxCommand::Resume { event_type: t } => print(switch(&*inbox, &t, false, json).await.map_err(fail)?),
            InboxCommand::Console { listen, token, secret } => {
                drop(out);
                return serve_console(inbox, listen, token, secret).await;
            }
            InboxCommand::Show { id } => {
                let Some(delivery) = find(&*inbox, &id, args.namespace.as_deref()).await.map_err(fail)? else {
                    return Ok(not_found(&id));
                };
                let history = inbox.history(&delivery.key).await.map_err(fail)?;
                if json {
                    print(show_json(&delivery, history.as_ref()).to_string());
                } else {
                    show(&delivery, history.as_ref(), print);
                }
            }
            InboxCommand::Retry { id: Some(id), .. } => {
                let Some(delivery) = find(&*inbox, &id, args.namespace.as_deref()).await.map_err(fail)? else {
                    return Ok(not_found(&id));
                };
                let Some(said) = retry_one(&*inbox, &delivery, json).await.map_err(fail)? else {
                    eprintln!("{} is running now; a worker has it", delivery.key);
                    return Ok(ExitCode::FAILURE);
                };
                print(said);
            }
            InboxCommand::Retry { id: None, .. } => {
                let replayed = inbox.replay_dead().await.map_err(fail)?;
                print(if json {
                    serde_json::json!({ "queued_again": replayed }).to_string()
                } else {
                    format!("queued again: {replayed} dead letters")
                });
            }
            InboxCommand::Purge { done_older_than } => {
                let purged = inbox.purge_done(done_older_than).await.map_err(fail)?;
                let older_than = humantime::format_duration(done_older_than).to_string();
                print(if json {
                    serde_json::json!({ "purged": purged, "older_than": older_than }).to_string()
                } else {
                    format!("purged {purged} done deliveries older than {older_than}")
                });
            }
            InboxCommand::Verify { id, secret, tolerance } => {
                let Some(delivery) = find(&*inbox, &id, args.namespace.as_deref()).await.map_err(fail)? else {
                    return Ok(not_found(&id));
                };
                return verify(&delivery, &secret, Duration::from_secs(tolerance), json, print);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Every fact of a stored delivery, its headers one per line, then its body; control
/// characters escaped (a signed event can carry ESC sequences that would retitle or
/// clear the operator's terminal).
fn show(delivery: &StoredDelivery, history: Option<&inbox::History>, mut print: impl FnMut(String)) {
    print(format!("key:        {}", line(&delivery.key)));
    print(format!("id:         {}", line(&delivery.id)));
    print(format!("type:       {}", line(&delivery.event_type)));
    print(format!("state:      {}", delivery.state));
    print(format!("attempts:   {}", history.map_or(delivery.attempts, |history| history.latest_attempt(delivery))));
    for step in history.map(|history| history.steps.as_slice()).unwrap_or_default() {
        let at = humantime::format_rfc3339_millis(step.at);
        let error = step.error.as_deref().map(|error| format!(": {}", line(error))).unwrap_or_default();
        print(format!("  attempt {} {} at {at}{error}", step.attempt, step.kind.as_str()));
    }
    print(format!("received:   {}", received(delivery)));
    if let Some(signed_at) = delivery.signed_at {
        print(format!("signed at:  {signed_at}"));
    }
    print(format!("last error: {}", line(delivery.last_error.as_deref().unwrap_or("-"))));
    print("headers:".to_owned());
    match decode_headers(&delivery.headers) {
        Ok(headers) => {
            for (name, value) in &headers {
                print(format!("  {name}: {}", line(&String::from_utf8_lossy(value.as_bytes()))));
            }
        }
        Err(error) => print(format!("  (stored headers do not read: {})", line(&error.to_string()))),
    }
    print(format!("body ({} bytes):", delivery.body.len()));
    print(text(&String::from_utf8_lossy(&delivery.body)).into_owned());
}

/// `value` for one line of a terminal: every control character (C0, DEL, C1, line
/// breaks too) written as an escape.
fn line(value: &str) -> std::borrow::Cow<'_, str> {
    escape(value, false)
}

/// `value` as lines of text: control characters escaped, but for line breaks and tabs.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    escape(value, true)
}

fn escape(value: &str, keep_lines: bool) -> std::borrow::Cow<'_, str> {
    let escaped = |c: char| c.is_control() && !(keep_lines && matches!(c, '\n' | '\t'));
    if !value.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `stats`: a line per state and the oldest wait, or one JSON object.
fn stats_lines(stats: &inbox::InboxStats, keys: Option<inbox::KeyStats>, paused: &[String], json: bool) -> Vec<String> {
    if json {
        let oldest = stats.oldest_due_age.map(|age| age.as_secs_f64());
        return vec![serde_json::json!({
            "queued": stats.queued,
            "running": stats.running,
            "retrying": stats.retrying,
            "done": stats.done,
            "dead": stats.dead,
            "oldest_due_age_secs": oldest,
            "keys_waiting": keys.map(|keys| keys.waiting),
            "keys_held_by_retry": keys.map(|keys| keys.held_by_retry),
            "paused": paused,
        })
        .to_string()];
    }
    let mut lines: Vec<String> = [
        ("queued", stats.queued),
        ("running", stats.running),
        ("retrying", stats.retrying),
        ("done", stats.done),
        ("dead", stats.dead),
    ]
    .iter()
    .map(|(name, count)| format!("{name:<9} {count}"))
    .collect();
    let oldest = stats.oldest_due_age.map_or_else(|| "-".to_owned(), |age| format!("{age:.1?}"));
    lines.push(format!("oldest due waited {oldest}"));
    if let Some(keys) = keys {
        lines.push(format!("ordering keys with deliveries waiting {}", keys.waiting));
        lines.push(format!("ordering keys held by a retrying delivery {}", keys.held_by_retry));
    }
    if !paused.is_empty() {
        let names: Vec<_> = paused.iter().map(|name| line(name)).collect();
        lines.push(format!("paused (left queued) {}", names.join(", ")));
    }
    lines
}

/// `list`: a table and a count, or one JSON object.
fn list_lines(found: &[StoredDelivery], state: DeliveryState, json: bool) -> Vec<String> {
    if json {
        let rows = table_json(found, false);
        return vec![serde_json::json!({ "state": state.to_string(), "deliveries": rows }).to_string()];
    }
    let mut lines = table(found, false);
    lines.push(format!("{} {state}", found.len()));
    lines
}

/// `console`: serves the operator console over `inbox` on `listen` until Ctrl-C.
async fn serve_console(
    inbox: Box<dyn InboxAdmin>,
    listen: std::net::SocketAddr,
    token: String,
    secret: SecretArgs,
) -> Result<ExitCode, Failure> {
    let verify = move |delivery: &StoredDelivery| match verdict(delivery, &secret, Duration::from_secs(300)) {
        Ok((_, verdict)) => verdict.map(|_| ()),
        Err(why) => Err(why),
    };
    let console = hookroute_runtime::console::Console::builder(inbox)
        .token(token)
        .verify_with(verify)
        .build()
        .map_err(|err| err.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    let address = listener.local_addr().map_err(|err| err.to_string())?;
    println!("console on http://{address}/ (log in with the console token; Ctrl-C stops it)");
    hookroute_runtime::axum_adapter::serve(listener, console)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|err| err.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// `replay`: counts what `filter` matches, or with `yes` replays it; `None` (said on
/// stderr) for a filter that would match every delivery.
async fn replay(
    inbox: &dyn InboxAdmin,
    filter: inbox::Filter,
    yes: bool,
    batch: usize,
    json: bool,
) -> Result<Option<String>, inbox::InboxError> {
    if !filter.narrows() {
        eprintln!("replay needs --state, --type, --key or --error: it would run every delivery again");
        return Ok(None);
    }
    if yes {
        let replayed = inbox.replay_matching(&filter, batch).await?;
        return Ok(Some(if json {
            serde_json::json!({ "queued_again": replayed }).to_string()
        } else {
            format!("queued again: {replayed}")
        }));
    }
    let count = inbox.count(&filter).await?;
    Ok(Some(if json {
        serde_json::json!({ "matching": count }).to_string()
    } else {
        format!("{count} deliveries match; run again with --yes to replay them")
    }))
}

/// `retry <id>`: replays the delivery and says so; `None` when it is running. Its
/// attempts are numbered across replays: after a delivery's attempt 3, attempt 4.
async fn retry_one(
    inbox: &dyn InboxAdmin,
    delivery: &StoredDelivery,
    json: bool,
) -> Result<Option<String>, inbox::InboxError> {
    let history = inbox.history(&delivery.key).await?;
    let attempts = history.map_or(delivery.attempts, |history| history.latest_attempt(delivery));
    if !inbox.replay(&delivery.key).await? {
        return Ok(None);
    }
    let (key, was, next) = (&delivery.key, delivery.state, attempts + 1);
    Ok(Some(if json {
        let was = was.to_string();
        serde_json::json!({ "queued_again": key, "was": was, "attempts": attempts, "next_attempt": next }).to_string()
    } else {
        format!("queued again: {} (was {was} after {attempts} attempts; next: attempt {next})", line(key))
    }))
}

/// `pause` (`pausing`) or `resume`, and what it prints.
async fn switch(
    inbox: &dyn InboxAdmin,
    event_type: &str,
    pausing: bool,
    json: bool,
) -> Result<String, inbox::InboxError> {
    // Whether the type was not paused (pause) or was (resume).
    let changed = if pausing { inbox.pause(event_type).await? } else { inbox.resume(event_type).await? };
    let name = line(event_type);
    Ok(match (json, pausing, changed) {
        (true, true, _) => serde_json::json!({ "paused": event_type, "was_paused": !changed }).to_string(),
        (true, false, _) => serde_json::json!({ "resumed": event_type, "was_paused": changed }).to_string(),
        (false, true, true) => {
            format!("paused {name}: its deliveries stay queued until `hookroute inbox resume {name}`")
        }
        (false, true, false) => format!("{name} was paused already"),
        (false, false, true) => format!("resumed {name}: workers take its deliveries again"),
        (false, false, false) => format!("{name} was not paused"),
    })
}

fn search_lines(page: &inbox::Page, json: bool) -> Vec<String> {
    let next = page.next.as_ref().map(ToString::to_string);
    if json {
        let rows = table_json(&page.deliveries, true);
        return vec![serde_json::json!({ "deliveries": rows, "next": next }).to_string()];
    }
    let mut lines = table(&page.deliveries, true);
    let shown = page.deliveries.len();
    lines.push(match next {
        // Quoted for a shell: the key holds the event id, which the sender chose.
        Some(next) => {
            format!("{shown} shown, newest first; next page: --after '{}'", line(&next).replace('\'', "'\\''"))
        }
        None => format!("{shown} shown, newest first; no more"),
    });
    lines
}

/// The rows `list` and `search` print (`search` with each delivery's state), as JSON.
fn table_json(found: &[StoredDelivery], with_state: bool) -> Vec<serde_json::Value> {
    let row = |delivery: &StoredDelivery| {
        let mut row = row_json(delivery);
        row["received"] = received(delivery).into();
        if with_state {
            row["state"] = delivery.state.to_string().into();
            row["order_key"] = delivery.order_key.clone().into();
        }
        row
    };
    found.iter().map(row).collect()
}

/// The rows `list` and `search` print, under a header.
fn table(found: &[StoredDelivery], with_state: bool) -> Vec<String> {
    let state = |text: &str| if with_state { format!(" {text:<9}") } else { String::new() };
    let mut lines = vec![format!(
        "{:<40} {:<24} {:<24}{} {:>8} {:<20} last error",
        "key",
        "id",
        "type",
        state("state"),
        "attempts",
        "received"
    )];
    for delivery in found {
        lines.push(format!(
            "{:<40} {:<24} {:<24}{} {:>8} {:<20} {}",
            line(&delivery.key),
            line(&delivery.id),
            line(&delivery.event_type),
            state(delivery.state.as_str()),
            delivery.attempts,
            received(delivery),
            line(delivery.last_error.as_deref().unwrap_or("-"))
        ));
    }
    lines
}

/// What `list` and `list --key` print of every delivery, as JSON.
fn row_json(delivery: &StoredDelivery) -> serde_json::Value {
    serde_json::json!({
        "key": delivery.key,
        "id": delivery.id,
        "type": delivery.event_type,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
    })
}

/// `list --key`: the key's pending deliveries in the order they run, or one JSON object.
fn key_lines(found: &[StoredDelivery], key: &str, json: bool) -> Vec<String> {
    let created = |delivery: &StoredDelivery| {
        delivery.created_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis())
    };
    if json {
        let rows: Vec<_> = found
            .iter()
            .map(|delivery| {
                let mut row = row_json(delivery);
                row["state"] = delivery.state.to_string().into();
                row["created_ms"] = serde_json::json!(created(delivery));
                row
            })
            .collect();
        return vec![serde_json::json!({ "order_key": key, "deliveries": rows }).to_string()];
    }
    let mut lines =
        vec![format!("{:<24} {:<24} {:<9} {:>8} {:>15} last error", "id", "type", "state", "attempts", "created (ms)")];
    for delivery in found {
        lines.push(format!(
            "{:<24} {:<24} {:<9} {:>8} {:>15} {}",
            line(&delivery.id),
            line(&delivery.event_type),
            delivery.state,
            delivery.attempts,
            created(delivery),
            line(delivery.last_error.as_deref().unwrap_or("-"))
        ));
    }
    lines.push(format!("{} pending for key {}", found.len(), line(key)));
    lines
}

/// `show` as one JSON object.
fn show_json(delivery: &StoredDelivery, history: Option<&inbox::History>) -> serde_json::Value {
    let steps: Option<Vec<serde_json::Value>> = history.map(|history| {
        let step = |step: &inbox::Step| {
            serde_json::json!({
                "attempt": step.attempt,
                "what": step.kind.as_str(),
                "at": humantime::format_rfc3339_millis(step.at).to_string(),
                "error": step.error,
            })
        };
        history.steps.iter().map(step).collect()
    });
    let mut out = serde_json::json!({
        "key": delivery.key,
        "id": delivery.id,
        "type": delivery.event_type,
        "state": delivery.state.to_string(),
        "attempts": history.map_or(delivery.attempts, |history| history.latest_attempt(delivery)),
        "history": steps,
        "received": received(delivery),
        "signed_at": delivery.signed_at,
        "last_error": delivery.last_error,
        "body": String::from_utf8_lossy(&delivery.body),
        "body_bytes": delivery.body.len(),
    });
    match decode_headers(&delivery.headers) {
        Ok(headers) => {
            let headers: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into()))
                .collect();
            out["headers"] = headers.into();
        }
        Err(error) => out["headers_error"] = error.to_string().into(),
    }
    out
}

/// Checks a stored delivery's signature with the scheme its key names, as of when it
/// arrived.
/// A signature's timestamp when it verifies, else why not.
type Verdict = Result<Option<u64>, String>;

/// The delivery's scheme, and whether its signature verifies with the secret
/// `secret_args` give (else the scheme's variable), as of when it arrived.
fn verdict(
    delivery: &StoredDelivery,
    secret_args: &SecretArgs,
    tolerance: Duration,
) -> Result<(Box<dyn crate::scheme::Scheme>, Verdict), Failure> {
    let scheme = scheme(provider_of(&delivery.key))?;
    let secret = secret(secret_args, &*scheme)?;
    let headers = decode_headers(&delivery.headers)
        .map_err(|error| format!("the stored headers of {} do not read: {error}", delivery.key))?;
    let verdict = scheme.verify(secret, tolerance, &headers, &delivery.body, delivery.received_at);
    Ok((scheme, verdict))
}

fn verify(
    delivery: &StoredDelivery,
    secret_args: &SecretArgs,
    tolerance: Duration,
    json: bool,
    mut print: impl FnMut(String),
) -> Result<ExitCode, Failure> {
    let (scheme, verdict) = verdict(delivery, secret_args, tolerance)?;
    if json {
        let mut out = serde_json::json!({
            "valid": verdict.is_ok(),
            "provider": scheme.name(),
            "received": received(delivery),
        });
        if let Err(reason) = &verdict {
            out["reason"] = reason.clone().into();
        }
        print(out.to_string());
        return Ok(if verdict.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    match verdict {
        Ok(_) => {
            print(format!("valid: {} signature, as received at {}", scheme.name(), received(delivery)));
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            print(format!("invalid: {reason}"));
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The inbox `args` names, with the table or prefix it was given: only one that exists
/// (no command here creates storage; a misspelt table or prefix is an error that names
/// the inboxes that are there).
async fn open(args: &InboxArgs) -> Result<Box<dyn InboxAdmin>, Failure> {
    let url = args.url.as_str();
    let kind = hookroute_runtime::backend::Kind::of(url).map(|kind| kind.name);
    let (postgres, redis) = (kind == Some("postgres"), kind == Some("redis"));
    let opened = match (&args.table, &args.prefix) {
        (Some(_), _) if !postgres => return Err("--table is for a PostgreSQL inbox".to_owned()),
        (_, Some(_)) if !redis => return Err("--prefix is for a Redis inbox".to_owned()),
        (Some(table), _) => PostgresInbox::builder(url)
            .table(table)
            .sweep_every(None)
            .existing_only()
            .connect()
            .await
            .map(|inbox| Box::new(inbox) as Box<dyn InboxAdmin>),
        (_, Some(prefix)) => RedisInbox::builder(url)
            .prefix(prefix)
            .existing_only()
            .connect()
            .await
            .map(|inbox| Box::new(inbox) as Box<dyn InboxAdmin>),
        (None, None) => inbox::connect_existing(url).await,
    };
    opened.map_err(|error| format!("{url}: {error}"))
}

/// The delivery under a whole key, as `list` prints it (`billing:groq:event:evt_1`,
/// `billing:github:body:<digest>`), or with the event id `id` under the inbox's
/// namespace (the one given, else the one the inbox is bound to) for any provider: one
/// record read per provider, never a scan of the inbox.
async fn find(
    inbox: &dyn InboxAdmin,
    id: &str,
    namespace: Option<&str>,
) -> Result<Option<StoredDelivery>, inbox::InboxError> {
    if id.contains(":event:") || id.contains(":body:") {
        return inbox.get(id).await;
    }
    let namespace = match namespace {
        Some(namespace) => Some(namespace.to_owned()),
        None => inbox.owner().await?,
    };
    for provider in hookroute_runtime::provider::BUILT_IN {
        let under = namespace.iter().map(|namespace| format!("{namespace}:{provider}:event:{id}"));
        // Keys without a namespace, as receivers wrote them before namespaces.
        for key in under.chain(std::iter::once(format!("{provider}:event:{id}"))) {
            if let Some(delivery) = inbox.get(&key).await? {
                return Ok(Some(delivery));
            }
        }
    }
    Ok(None)
}

/// The provider a key names: `groq` in `billing:groq:event:evt_1` and `groq:event:evt_1`,
/// `github` in `billing:github:body:<digest>` (schemes that do not sign the id).
fn provider_of(key: &str) -> &str {
    let before =
        [":event:", ":body:"].iter().find_map(|infix| key.split_once(infix).map(|(before, _)| before)).unwrap_or(key);
    before.rsplit(':').next().unwrap_or_default()
}

fn not_found(id: &str) -> ExitCode {
    eprintln!(
        "no delivery `{}` in this inbox (an event id is looked up under the inbox's namespace; give the whole key \
         `inbox list` prints, or --namespace)",
        line(id)
    );
    ExitCode::FAILURE
}

/// When a delivery arrived, to the second, in UTC.
fn received(delivery: &StoredDelivery) -> String {
    humantime::format_rfc3339_seconds(delivery.received_at).to_string()
}

#[cfg(test)]
mod tests {
    use super::provider_of;

    #[test]
    fn keys_name_their_provider_in_every_shape() {
        assert_eq!(provider_of("groq:event:evt_1"), "groq");
        assert_eq!(provider_of("a1b2c3d4e5f6:groq:event:evt:with:colons"), "groq");
        assert_eq!(provider_of("billing/eu:stripe:event:evt_1"), "stripe");
        assert_eq!(provider_of("a1b2c3d4e5f6:github:body:0123abcd"), "github");
    }
}
