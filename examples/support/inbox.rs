//! What the inbox examples (`inbox_receiver`, `ordered_receiver`) share: their
//! variables (`PORT`, `HOOKROUTE_INBOX`, `WORKERS`, `ROLE`, `LEASE_MS`,
//! `RETRY_SCHEDULE_MS`, `MAX_WAITING`, `TTL_S`, `CONSOLE_TOKEN`, `TAKE_AHEAD`,
//! `REPORT_DRAINED`, `DRAIN_EXPECT`), HTTP replicas and worker processes, the operator
//! console, and a graceful stop on Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookroute::inbox::{InboxAdmin, RetrySchedule};
use hookroute::{Provider, Receiver, WebhookHandlers};

/// Reads a variable, or its default when unset; a value that does not parse is an error.
pub(crate) fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => text.trim().parse().map_err(|_| format!("{name}=`{text}` is not valid")),
    }
}

/// Deliveries whose handler succeeded in this process (`REPORT_DRAINED`).
static HANDLED: AtomicU64 = AtomicU64::new(0);

/// Deliveries a drain expects (`DRAIN_EXPECT`, 0 when unset), and the signal that
/// this process handled that many.
static EXPECTED: AtomicU64 = AtomicU64::new(0);
static HANDLED_ALL: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Counts a delivery handled, for `REPORT_DRAINED`.
pub(crate) fn handled() {
    if HANDLED.fetch_add(1, Ordering::Relaxed) + 1 == EXPECTED.load(Ordering::Relaxed) {
        HANDLED_ALL.notify_one();
    }
}

/// With `REPORT_DRAINED=1` a worker process prints `DRAINED <handled> <ms>` once it has
/// handled something and nothing is queued, running or retrying, `ms` counted from
/// `started` (as bench/inbox's Node peers report their drains). It looks every 100 ms,
/// counting only what is not done: a count of the done deliveries too grows with the
/// drain and would be work the drained server does for the looking. With
/// `DRAIN_EXPECT=<n>` the clock stops when this process handled `n`, and the inbox is
/// looked at only from then on (each look took 12 ms of PostgreSQL's core in a drain of
/// 20,000, a tenth of the drain's time).
async fn report_drained(inbox: Arc<dyn InboxAdmin>, started: Instant) {
    let clock = if EXPECTED.load(Ordering::Relaxed) > 0 {
        HANDLED_ALL.notified().await;
        Some(started.elapsed())
    } else {
        None
    };
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let handled = HANDLED.load(Ordering::Relaxed);
        match inbox.stats_without_done().await {
            Ok(stats) if handled > 0 && stats.queued + stats.running + stats.retrying == 0 => {
                println!("DRAINED {handled} {}", clock.unwrap_or_else(|| started.elapsed()).as_millis());
                return;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not count the deliveries left"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Logs, runs `run`, and says its error on stderr.
pub(crate) async fn main(run: impl std::future::Future<Output = Result<(), String>>) -> ExitCode {
    super::init_logs();
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The operator console at `/console` over `inbox` when `CONSOLE_TOKEN` is set (an
/// empty router otherwise); each delivery's signature checked with `receiver`'s secrets.
fn console_over<H: WebhookHandlers>(
    inbox: &Arc<dyn InboxAdmin>,
    receiver: &Receiver<H>,
) -> Result<axum::Router, String> {
    let Ok(token) = std::env::var("CONSOLE_TOKEN") else { return Ok(axum::Router::new()) };
    #[cfg(feature = "console")]
    {
        let console = hookroute::console::Console::builder(Arc::clone(inbox)).token(token).verifier(receiver).build();
        let console = console.map_err(|error| format!("CONSOLE_TOKEN: {error}"))?;
        tracing::info!("the operator console is at /console");
        Ok(axum::Router::new().nest("/console", console))
    }
    #[cfg(not(feature = "console"))]
    {
        let _ = (inbox, receiver, token);
        Err("CONSOLE_TOKEN is set: build with `--features console` for the console".to_owned())
    }
}

/// The receiver in inbox mode (or inline with `HOOKROUTE_INBOX=inline`), as the
/// variables of the inbox examples say: an HTTP server on `/webhooks/<provider>`, and
/// workers in the same process unless `WORKERS=0`; `ROLE=worker`: workers only.
pub(crate) async fn serve<H: WebhookHandlers>(app: H) -> Result<(), String> {
    let port: u16 = var("PORT", 3000)?;
    let workers: usize = var("WORKERS", hookroute::DEFAULT_CONCURRENCY)?;
    let worker_only = match std::env::var("ROLE").unwrap_or_default().as_str() {
        "" | "both" | "http" => false,
        "worker" => true,
        other => return Err(format!("ROLE=`{other}`: use `worker` (workers only) or leave it unset")),
    };
    let lease = Duration::from_millis(var("LEASE_MS", 30_000)?);
    let take_ahead = std::env::var("TAKE_AHEAD").ok().map(|_| var("TAKE_AHEAD", 0_usize)).transpose()?;
    let schedule = match std::env::var("RETRY_SCHEDULE_MS") {
        Ok(list) => RetrySchedule::from_millis_list(&list).map_err(|error| format!("RETRY_SCHEDULE_MS: {error}"))?,
        Err(_) => RetrySchedule::standard(),
    };
    let url = std::env::var("HOOKROUTE_INBOX").unwrap_or_default();
    let inline = url == "inline";
    let mut builder = Receiver::builder(app).max_waiting(var("MAX_WAITING", hookroute::DEFAULT_MAX_WAITING)?);
    // How long a done delivery is remembered; the accepted window, twice the
    // tolerance, shrinks to fit it (the soak run keeps 5 minutes).
    if let Some(ttl) = std::env::var("TTL_S").ok().map(|_| var("TTL_S", 0_u64)).transpose()? {
        let ttl = Duration::from_secs(ttl);
        builder = builder.ttl(ttl).tolerance((ttl / 2).min(Duration::from_secs(300)));
    }
    let mut inbox = None;
    if !inline {
        let connected: Arc<dyn InboxAdmin> =
            hookroute::inbox::connect(&url).await.map_err(|error| format!("HOOKROUTE_INBOX: {error}"))?.into();
        builder = builder.inbox(Arc::clone(&connected)).retry_schedule(schedule);
        inbox = Some(connected);
    } else if worker_only {
        return Err("ROLE=worker needs an inbox, not HOOKROUTE_INBOX=inline".to_owned());
    }
    let receiver = builder.build().map_err(|error| error.to_string())?;
    let console = match &inbox {
        Some(inbox) => console_over(inbox, &receiver)?,
        None => axum::Router::new(),
    };

    EXPECTED.store(var("DRAIN_EXPECT", 0_u64)?, Ordering::Relaxed);
    let started = Instant::now();
    let worker = (!inline && (workers > 0 || worker_only))
        .then(|| {
            receiver.worker().map(|worker| {
                let worker = worker.concurrency(workers.max(1)).lease(lease);
                match take_ahead {
                    Some(deliveries) => worker.take_ahead(deliveries),
                    None => worker,
                }
                .spawn()
            })
        })
        .transpose()
        .map_err(|error| error.to_string())?;
    if worker_only {
        tracing::info!(workers = workers.max(1), "inbox worker running");
        if let (Some(inbox), 1) = (&inbox, var("REPORT_DRAINED", 0_u8)?) {
            tokio::spawn(report_drained(Arc::clone(inbox), started));
        }
        stop_signal().await;
    } else {
        let route = format!("/webhooks/{}", <H::Provider as Provider>::NAME);
        let app = axum::Router::new().route(&route, hookroute::axum::post(receiver)).merge(console);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
        let address = listener.local_addr().map_or_else(|_| format!("127.0.0.1:{port}"), |a| a.to_string());
        tracing::info!(workers, "listening on http://{address}{route}");
        hookroute::axum::serve(listener, app)
            .with_graceful_shutdown(stop_signal())
            .await
            .map_err(|error| format!("server stopped: {error}"))?;
    }
    if let Some(worker) = worker {
        worker.shutdown().await;
    }
    Ok(())
}
