//! Workers: run the handlers of deliveries a receiver in inbox mode stored.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::event::EventMeta;
use crate::handler::{HandlerError, Parsed, WebhookHandlers};
use crate::inbox::mode::InboxMode;
use crate::inbox::{decode_headers, Inbox, InboxError, Lease, Leased, StoredDelivery};
use crate::observe;
use crate::provider::{ConfigError, Provider};
use crate::receiver::Receiver;
use crate::retry::{GaveUp, UntilLease};
use crate::run::{run_handler, Ran};
use crate::store::IdempotencyStore;

/// How long a worker's lease lasts by default; it is renewed every third of it while
/// the handler runs.
pub const DEFAULT_WORKER_LEASE: Duration = Duration::from_secs(30);

/// The longest a worker waits between two tries to reach an inbox that does not answer.
const MAX_TAKE_BACKOFF: Duration = Duration::from_secs(2);

/// How often a worker reads the inbox's stats into the metrics' gauges by default.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(15);

/// How many handlers one worker runs at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Runs the handlers of the deliveries in a receiver's inbox: takes one with a lease,
/// parses the stored body through the generated dispatch, runs the handler while
/// renewing the lease, then marks it done or schedules the retry (or the dead letter).
///
/// Workers may run in the HTTP server's process ([`spawn`](Self::spawn) it beside the
/// server) or in processes of their own ([`run`](Self::run) with no server); any
/// number share one inbox. A worker that dies stops renewing its leases, and another
/// takes its deliveries when they run out. Such a lost attempt counts: a delivery
/// that kills every worker running it is dead-lettered, unrun, once the retry
/// schedule's attempts are used up.
///
/// On shutdown a worker stops taking deliveries, lets its running handlers finish
/// within the [`grace`](Self::grace) period, and gives the rest back to the inbox
/// unattempted.
///
/// ```
/// use std::time::Duration;
/// use hookroute_runtime::{inbox::MemoryInbox, Receiver};
/// # use hookroute_runtime::__private as p;
/// # struct App;
/// # impl p::WebhookHandlers for App {
/// #     type Provider = hookroute_runtime::Groq; type Event = ();
/// #     const EVENT_TYPES: &'static [&'static str] = &["ping"];
/// #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Handled(())) }
/// #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
/// # }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let receiver = Receiver::builder(App).secret("s3cret").inbox(MemoryInbox::new()).build()?;
/// let workers = receiver.worker()?.concurrency(8).spawn();
/// // ... serve `receiver` over HTTP; on SIGTERM, stop the server, then:
/// workers.shutdown().await;
/// # Ok::<(), hookroute_runtime::ConfigError>(())
/// # }).unwrap();
/// ```
pub struct Worker<H: WebhookHandlers, S: IdempotencyStore> {
    receiver: Receiver<H, S>,
    settings: WorkerSettings,
}

#[derive(Debug, Clone, Copy)]
struct WorkerSettings {
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    grace: Duration,
    handler_timeout: Option<Duration>,
    /// How long a done delivery is remembered: the receiver's TTL.
    ttl: Duration,
    /// How often the inbox's stats are read into the metrics' gauges.
    stats_interval: Duration,
    /// How many deliveries to take ahead on a backlog; `None`: the concurrency.
    take_ahead: Option<usize>,
}

impl<H: WebhookHandlers, S: IdempotencyStore> fmt::Debug for Worker<H, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("provider", &<H::Provider as Provider>::NAME)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Receiver<H, S> {
    /// A worker for this receiver's inbox, with its handlers, retry schedule, TTL and
    /// [handler timeout](crate::ReceiverBuilder::handler_timeout) (30 s unless set),
    /// and its [lease](crate::ReceiverBuilder::lease) where one was set. Fails when
    /// the receiver is not in inbox mode.
    pub fn worker(&self) -> Result<Worker<H, S>, ConfigError> {
        if self.inbox_mode().is_none() {
            return Err(ConfigError::Invalid(
                "this receiver has no inbox: build it with `.inbox(..)` to run workers".to_owned(),
            ));
        }
        Ok(Worker {
            receiver: self.clone(),
            settings: WorkerSettings {
                concurrency: DEFAULT_CONCURRENCY,
                lease: if self.settings().lease_set { self.settings().lease } else { DEFAULT_WORKER_LEASE },
                poll_interval: Duration::from_millis(200),
                grace: Duration::from_secs(30),
                handler_timeout: Some(self.settings().handler_timeout),
                ttl: self.settings().ttl,
                stats_interval: DEFAULT_STATS_INTERVAL,
                take_ahead: None,
            },
        })
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Worker<H, S> {
    /// How many handlers run at once ([`DEFAULT_CONCURRENCY`] unless set; at least 1).
    #[must_use]
    pub fn concurrency(mut self, handlers: usize) -> Self {
        self.settings.concurrency = handlers.max(1);
        self
    }

    /// How long a delivery is leased (the receiver's [lease](crate::ReceiverBuilder::lease)
    /// where one was set, else [`DEFAULT_WORKER_LEASE`]): renewed every third of it
    /// while the handler runs, so only a dead worker loses it.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How many deliveries to take ahead of free handlers while the inbox has a backlog
    /// (as many as [run at once](Self::concurrency) unless set; 0: none): one take then
    /// serves the handlers that free up next, which makes a drain of quick handlers
    /// cheaper (on PostgreSQL, 6.9 k → 8.9 k a second with 16 handlers; BENCHMARKS.md).
    /// Those taken ahead are leased to this worker and wait for its handlers: with slow
    /// handlers and several workers, fewer (or 0) lets the others take them. One that
    /// waited a third of its lease is renewed before it starts; what still waits when
    /// the worker stops is given back.
    #[must_use]
    pub fn take_ahead(mut self, deliveries: usize) -> Self {
        self.settings.take_ahead = Some(deliveries);
        self
    }

    /// How often an idle worker asks the inbox for work (200 ms unless set). A
    /// delivery queued by a receiver in the same process wakes it at once.
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.settings.poll_interval = every;
        self
    }

    /// How long running handlers may take to finish once shutdown begins (30 s unless
    /// set); those still running then are stopped and their deliveries given back.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.settings.grace = grace;
        self
    }

    /// Stops a handler that runs longer than `limit` and counts it as a failed attempt
    /// (retried on the schedule, dead-lettered when the attempts are used up). The
    /// receiver's [handler timeout](crate::ReceiverBuilder::handler_timeout) by default
    /// (30 s): a handler that hangs does not hold its worker for ever. `None`: no limit,
    /// the lease is renewed for as long as the handler runs.
    #[must_use]
    pub fn handler_timeout(mut self, limit: Option<Duration>) -> Self {
        self.settings.handler_timeout = limit;
        self
    }

    /// How often the inbox's [stats](crate::inbox::Inbox::stats_without_done) are read
    /// into the `hookroute.inbox.depth` and `hookroute.inbox.oldest_age` gauges
    /// ([`DEFAULT_STATS_INTERVAL`] unless set; at least 100 ms). Only with feature
    /// `metrics`; every worker reads them. The done records, kept for their TTL and each
    /// read to be counted, are counted one read in 20 (every 5 minutes by default).
    #[must_use]
    pub fn stats_interval(mut self, every: Duration) -> Self {
        self.settings.stats_interval = every.max(Duration::from_millis(100));
        self
    }

    /// Runs the worker in a task of its own; [`WorkerHandle::shutdown`] stops it.
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        WorkerHandle { stop: Some(stop), task }
    }

    /// Runs until `shutdown` completes, then stops taking deliveries, lets running
    /// handlers finish within the grace period and gives back what still runs.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let Self { receiver, settings } = self;
        let Some(mode) = receiver.inbox_mode() else { return };
        let permits = Arc::new(Semaphore::new(settings.concurrency));
        let (abort, aborted) = watch::channel(false);
        let mut running = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::debug!(concurrency = settings.concurrency, lease = ?settings.lease, "inbox worker started");
        // Ends with this function, however it ends (dropped mid-way too).
        #[cfg(feature = "metrics")]
        let _stats = AbortOnDrop(tokio::spawn(read_stats(
            Arc::clone(&mode.inbox),
            receiver.namespace().to_owned(),
            settings.stats_interval,
        )));
        // Payloads past their retention go while the worker runs.
        let _forget = AbortOnDrop(tokio::spawn(forget_payloads(
            Arc::clone(&mode.inbox),
            receiver.settings().payload_retention.min(settings.ttl),
        )));
        // Counted as running in the receiver's health while this function runs.
        mode.taking.started();
        let _counted = StoppedOnDrop(&mode.taking);
        // Takes failing for this long are a stall: an error, a gauge, and not ready.
        let stall_after = (settings.poll_interval * 5).max(Duration::from_secs(1));
        // While the inbox cannot be reached: how long to wait before asking again,
        // doubling up to MAX_TAKE_BACKOFF, and one warning per outage, not per poll.
        let mut backoff: Option<Duration> = None;
        let mut ahead = Ahead::default();
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_closed) => break,
                },
            };
            // Every handler free now gets a delivery: those taken ahead first, the
            // rest from the same round trip.
            let mut permits_held = vec![permit];
            while let Ok(more) = Arc::clone(&permits).try_acquire_owned() {
                permits_held.push(more);
            }
            let mut start = ahead.pop(permits_held.len(), mode, settings.lease).await;
            let wanted = permits_held.len() - start.len();
            let most_ahead = settings.take_ahead.unwrap_or(settings.concurrency);
            if wanted == 0 && !ahead.low(most_ahead) {
                start_each(&mut running, &receiver, start, permits_held, settings, &aborted).await;
                while running.try_join_next().is_some() {}
                continue;
            }
            let ask = wanted + ahead.room(most_ahead);
            let taken = match mode.bound(receiver.namespace()).await {
                Ok(()) => mode.call("take", mode.inbox.take_many(settings.lease, ask)).await,
                Err(refused) => Err(refused),
            };
            if taken.is_ok() {
                let stall_ended = mode.taking.took();
                if stall_ended {
                    observe::workers_stalled::<H>(receiver.namespace(), false);
                }
                if backoff.take().is_some() || stall_ended {
                    tracing::info!("the inbox can be reached again; taking deliveries");
                }
            }
            let taken = taken.map(|taken| ahead.keep(taken, wanted, ask));
            match taken {
                Ok(taken) if !taken.is_empty() || !start.is_empty() => {
                    start.extend(taken);
                    start_each(&mut running, &receiver, start, permits_held, settings, &aborted).await;
                    while running.try_join_next().is_some() {}
                    continue;
                }
                Ok(_) => drop(permits_held),
                Err(error) => {
                    // What was taken ahead still runs; the take is tried again after
                    // the back-off.
                    start_each(&mut running, &receiver, start, permits_held, settings, &aborted).await;
                    let stalled = mode.taking.failed(&error.to_string(), stall_after);
                    if stalled {
                        observe::workers_stalled::<H>(receiver.namespace(), true);
                    }
                    backoff = Some(after_failed_take(backoff, &error, stalled.then_some(stall_after), settings));
                }
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = mode.wake.notified(), if backoff.is_none() => {}
                () = tokio::time::sleep(backoff.unwrap_or(settings.poll_interval)) => {}
            }
        }
        ahead.give_back(mode).await;
        let in_flight = running.len();
        if in_flight > 0 {
            tracing::info!(in_flight, grace = ?settings.grace, "inbox worker stopping: letting running handlers finish");
        }
        let drained =
            tokio::time::timeout(settings.grace, async { while running.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            let _ = abort.send(true);
            while running.join_next().await.is_some() {}
        }
        tracing::debug!("inbox worker stopped");
    }
}

/// Says that a take failed with `error` (an error once takes have failed for
/// `stalled_after`, a warning at the first failure), and answers how long to wait
/// before taking again: a poll interval, doubling up to [`MAX_TAKE_BACKOFF`].
fn after_failed_take(
    backoff: Option<Duration>,
    error: &InboxError,
    stalled_after: Option<Duration>,
    settings: WorkerSettings,
) -> Duration {
    if let Some(failing_for) = stalled_after {
        tracing::error!(
            %error,
            ?failing_for,
            "inbox workers cannot take deliveries: they stay queued, unhandled, while HTTP answers 202 \
             (see Receiver::health); trying again until the inbox answers"
        );
    }
    match backoff {
        None => {
            tracing::warn!(%error, "could not take a delivery from the inbox; trying again until it answers");
            settings.poll_interval
        }
        Some(pause) => {
            tracing::debug!(%error, "could not take a delivery from the inbox");
            (pause * 2).min(MAX_TAKE_BACKOFF.max(settings.poll_interval))
        }
    }
}

/// Deliveries taken ahead of free handlers while the inbox has a backlog, oldest first:
/// a take round trip then serves the handlers that free up next too (with handlers
/// that finish quickly, a worker otherwise takes one or two at a time, and the round
/// trips are the cost of a drain). One that waited a third of its lease or more is
/// renewed before it starts, and dropped if its lease was lost meanwhile.
#[derive(Default)]
struct Ahead {
    waiting: std::collections::VecDeque<(Instant, Leased)>,
    /// Whether the last take answered all it was asked for: there may be more.
    backlog: bool,
}

impl Ahead {
    /// Up to `most` deliveries to start now, the lease of each that has waited a third
    /// of it renewed (one whose renewal fails is left: its lease is lost).
    async fn pop(&mut self, most: usize, mode: &InboxMode, lease: Duration) -> Vec<Leased> {
        let mut start = Vec::with_capacity(most.min(self.waiting.len()));
        while start.len() < most {
            let Some((taken_at, leased)) = self.waiting.pop_front() else { break };
            if taken_at.elapsed() >= lease / 3 {
                if let Err(error) = mode.call("renew", mode.inbox.renew(&leased.lease, lease)).await {
                    tracing::debug!(%error, event = %leased.delivery.id, "a delivery taken ahead lost its lease");
                    continue;
                }
            }
            start.push(leased);
        }
        start
    }

    /// Whether to take more before those waiting run out (the inbox has a backlog and
    /// half of `most` or fewer wait): the handlers that free up meanwhile do not wait
    /// for a take.
    fn low(&self, most: usize) -> bool {
        self.backlog && most > 0 && self.waiting.len() <= most / 2
    }

    /// How many more to ask for than the handlers free: up to `most` waiting, while the
    /// inbox has a backlog.
    fn room(&self, most: usize) -> usize {
        if self.backlog {
            most.saturating_sub(self.waiting.len())
        } else {
            0
        }
    }

    /// Of what a take asked for `ask` answered, the `wanted` to start now; keeps the
    /// rest (an inbox that answered more than asked gets the excess back unattempted
    /// from `start_each`, as before).
    fn keep(&mut self, mut taken: Vec<Leased>, wanted: usize, ask: usize) -> Vec<Leased> {
        self.backlog = taken.len() >= ask;
        let kept = taken.len().min(ask).saturating_sub(wanted);
        let now = Instant::now();
        let rest = taken.split_off(wanted.min(taken.len()));
        let mut rest = rest.into_iter();
        self.waiting.extend(rest.by_ref().take(kept).map(|leased| (now, leased)));
        taken.extend(rest);
        taken
    }

    /// Gives back, unattempted, what still waits (the worker stops).
    async fn give_back(&mut self, mode: &InboxMode) {
        for (_, leased) in self.waiting.drain(..) {
            if let Err(error) = mode.call("release", mode.inbox.release(&leased.lease)).await {
                tracing::warn!(%error, "could not give back a delivery taken ahead; it runs again when its lease ends");
            }
        }
    }
}

/// Runs each taken delivery in a task of its own, holding one of `permits`; those
/// left over go back. An inbox that answered more than there are permits gets the
/// rest back, unattempted.
async fn start_each<H: WebhookHandlers, S: IdempotencyStore>(
    running: &mut JoinSet<()>,
    receiver: &Receiver<H, S>,
    mut taken: Vec<Leased>,
    permits: Vec<OwnedSemaphorePermit>,
    settings: WorkerSettings,
    aborted: &watch::Receiver<bool>,
) {
    let Some(mode) = receiver.inbox_mode() else { return };
    for extra in taken.split_off(taken.len().min(permits.len())) {
        if let Err(error) = mode.call("release", mode.inbox.release(&extra.lease)).await {
            tracing::warn!(%error, "could not give back a delivery the inbox answered beyond those asked for");
        }
    }
    for (leased, permit) in taken.into_iter().zip(permits) {
        let (receiver, aborted) = (receiver.clone(), aborted.clone());
        running.spawn(async move {
            run_one(&receiver, leased, settings, aborted).await;
            drop(permit);
        });
    }
}

/// Counts a worker as stopped in its receiver's health when dropped.
struct StoppedOnDrop<'a>(&'a crate::inbox::taking::Taking);

impl Drop for StoppedOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

/// A task stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drops the payloads of done deliveries older than `retention`, every quarter of it
/// (between 1 s and a minute), until aborted.
async fn forget_payloads(inbox: Arc<dyn Inbox>, retention: Duration) {
    let every = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match observe::call(
            observe::Backend::Inbox(inbox.backend()),
            "forget_payloads",
            inbox.forget_payloads(retention),
        )
        .await
        {
            Ok(0) => {}
            Ok(forgotten) => tracing::debug!(forgotten, "dropped the payloads of done deliveries past their retention"),
            Err(error) => tracing::debug!(%error, "could not drop the payloads of done deliveries"),
        }
    }
}

/// One read in this many counts the done records too (every 5 minutes by default).
#[cfg(feature = "metrics")]
const DONE_EVERY: u64 = 20;

/// Reads the inbox's stats into the gauges, every `interval`, until aborted.
#[cfg(feature = "metrics")]
async fn read_stats(inbox: Arc<dyn Inbox>, namespace: String, interval: Duration) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for tick in 0_u64.. {
        every.tick().await;
        // A failure is counted in `hookroute.inbox.errors`; the take loop says it.
        let backend = observe::Backend::Inbox(inbox.backend());
        // The done records (days of traffic, each read to be counted) every
        // `DONE_EVERY` reads only.
        let stats = if tick % DONE_EVERY == 0 {
            observe::call(backend, "stats", inbox.stats()).await.map(|stats| (stats, true))
        } else {
            observe::call(backend, "stats_without_done", inbox.stats_without_done()).await.map(|stats| (stats, false))
        };
        if let Ok((stats, done_counted)) = stats {
            observe::inbox_stats(inbox.backend(), &namespace, &stats, done_counted);
        }
        if let Ok(Some(keys)) = observe::call(backend, "key_stats", inbox.key_stats()).await {
            observe::inbox_key_stats(inbox.backend(), &namespace, keys);
        }
    }
}

/// A worker running in a task of its own, from [`Worker::spawn`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops the worker as [`Worker::run`] describes and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// What became of one attempt.
enum AttemptOutcome {
    /// The handler succeeded, or no handler takes the type any more.
    Done,
    /// The handler failed; retried unless `permanent` or out of attempts, holding its
    /// ordering key unless `releases_key`.
    Failed { error: String, permanent: bool, releases_key: bool },
    /// Shutdown's grace ran out: given back.
    Stopped,
}

impl AttemptOutcome {
    /// A failure the schedule retries, holding its ordering key.
    fn retried(error: String) -> Self {
        Self::Failed { error, permanent: false, releases_key: false }
    }
}

/// Takes one leased delivery to its next state, in a `webhook.process` span; a failed
/// attempt sets its `error.type` (`retry`, `dead`, `lost`) and `otel.status_code`.
async fn run_one<H: WebhookHandlers, S: IdempotencyStore>(
    receiver: &Receiver<H, S>,
    leased: Leased,
    settings: WorkerSettings,
    aborted: watch::Receiver<bool>,
) {
    let span = tracing::info_span!(
        "webhook.process",
        webhook.provider = <H::Provider as Provider>::NAME,
        webhook.event.type = leased.delivery.event_type.as_str(),
        webhook.event.id = %leased.delivery.id.escape_debug(),
        webhook.attempt = leased.delivery.attempts,
        hookroute.attempt.result = tracing::field::Empty,
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    // A delivery with an ordering key or a type cap held something the deliveries
    // waiting behind it need: once it is settled, the take loop looks again at once.
    let held = leased.delivery.order_key.is_some() || H::rule(&leased.delivery.event_type).is_some();
    run_attempt(receiver, leased, settings, aborted).instrument(span).await;
    if held {
        if let Some(mode) = receiver.inbox_mode() {
            mode.wake.notify_one();
        }
    }
}

async fn run_attempt<H: WebhookHandlers, S: IdempotencyStore>(
    receiver: &Receiver<H, S>,
    leased: Leased,
    settings: WorkerSettings,
    mut aborted: watch::Receiver<bool>,
) {
    let Some(mode) = receiver.inbox_mode() else { return };
    let Leased { delivery, lease, superseded } = leased;
    let attempt = delivery.attempts;
    let id = delivery.id.as_str();
    let allowed = mode.schedule.attempts();
    // The earlier attempts never reported back: their workers died or hung past the
    // lease. A delivery that kills its worker must not do so for ever; it is not even
    // parsed again.
    let prepared = if attempt > allowed {
        Err(format!(
            "all {allowed} attempts were used, the last without an answer: its worker stopped (crashed, was killed or hung past its lease){}",
            delivery.last_error.as_deref().map(|last| format!("; the last error reported: {last}")).unwrap_or_default()
        ))
    } else {
        prepare::<H>(&delivery, superseded)
    };
    let outcome = match prepared {
        Err(error) => AttemptOutcome::Failed { error, permanent: true, releases_key: false },
        Ok(None) => AttemptOutcome::Done,
        Ok(Some((event, meta))) => {
            let handler = run_handler(receiver.handlers(), event, &meta, Some(attempt), settings.handler_timeout);
            let mut handler = std::pin::pin!(handler);
            let mut renewals = tokio::time::interval_at(Instant::now() + settings.lease / 3, settings.lease / 3);
            loop {
                tokio::select! {
                    biased;
                    ran = &mut handler => break match ran {
                        Ran::Done => AttemptOutcome::Done,
                        Ran::Failed(error) => failed(&error),
                        Ran::Panicked(message) => {
                            AttemptOutcome::retried(format!("panicked: {message}"))
                        }
                        Ran::TimedOut(limit) => {
                            AttemptOutcome::retried(format!("did not finish within {limit:?}"))
                        }
                    },
                    () = stopped(&mut aborted) => break AttemptOutcome::Stopped,
                    _ = renewals.tick() => match mode.call("renew", mode.inbox.renew(&lease, settings.lease)).await {
                        Ok(()) => {}
                        Err(InboxError::ClaimLost { .. }) => {
                            // Another worker holds the delivery now: stop, and let it be.
                            tracing::warn!(event = id, attempt, "the lease ran out and another worker took the delivery; handler stopped");
                            return;
                        }
                        Err(error) => tracing::warn!(event = id, %error, "could not renew the lease; trying again"),
                    },
                }
            }
        }
    };
    let result = settle(mode, &lease, id, attempt, outcome, settings).await;
    let span = tracing::Span::current();
    span.record("hookroute.attempt.result", result);
    if matches!(result, "retry" | "dead" | "lost") {
        span.record("error.type", result);
        span.record("otel.status_code", "ERROR");
    }
    observe::attempt::<H>(&delivery.event_type, result);
}

/// Completes once shutdown's grace ran out (never, if the worker is dropped).
async fn stopped(aborted: &mut watch::Receiver<bool>) {
    if aborted.wait_for(|&abort| abort).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn failed(error: &HandlerError) -> AttemptOutcome {
    AttemptOutcome::Failed {
        error: error.message().to_owned(),
        permanent: error.is_permanent(),
        releases_key: error.releases_key(),
    }
}

/// The stored delivery as the handler's event: `None` when no handler takes its type.
/// An error (a stored record that does not read back, data that does not fit the
/// handler's type) cannot be mended by a retry.
fn prepare<H: WebhookHandlers>(
    delivery: &StoredDelivery,
    superseded: bool,
) -> Result<Option<(H::Event, EventMeta)>, String> {
    if delivery.headers.is_empty() && delivery.body.is_empty() {
        return Err("its payload was dropped after the payload retention (a replay of a done delivery past it): \
                    nothing is left to run"
            .to_owned());
    }
    let headers = decode_headers(&delivery.headers).map_err(|error| error.to_string())?;
    let envelope = H::Provider::envelope(&headers, &delivery.body).map_err(|error| error.to_string())?;
    let (meta, data) = envelope.into_meta("", <H::Provider as Provider>::NAME, delivery.signed_at);
    let meta = meta.with_attempt(delivery.attempts).with_order(delivery.order_key.as_deref(), superseded);
    if superseded && H::rule(meta.event_type()).is_some_and(|rule| rule.skip_stale) {
        // `stale = "skip"`: a newer event of its key was handled; acknowledged unrun.
        tracing::info!(event.id = meta.id(), key = meta.order_key(), "stale: a newer event of its key was handled");
        return Ok(None);
    }
    match H::parse(&meta, &data) {
        Ok(Parsed::Handled(event)) => Ok(Some((event, meta))),
        Ok(Parsed::Ignored) => Ok(None),
        Err(error) => Err(format!("data does not fit the handler's type: {error}")),
    }
}

/// Records what became of the attempt. A store that fails is asked again until the
/// lease would have run out: a done delivery must not run again because the store
/// blinked while it was being marked. Answers `done`, `retry`, `dead` or `stopped`,
/// or `lost` when the attempt could not be recorded.
async fn settle(
    mode: &InboxMode,
    lease: &Lease,
    id: &str,
    attempt: u32,
    outcome: AttemptOutcome,
    settings: WorkerSettings,
) -> &'static str {
    let inbox = &*mode.inbox;
    let retry_in = match &outcome {
        AttemptOutcome::Failed { permanent: false, .. } => mode.schedule.delay_after(attempt),
        _ => None,
    };
    let retry = UntilLease {
        until: Instant::now() + settings.lease,
        pause: Duration::from_millis(50),
        longest: Duration::from_secs(2),
        tried: 0,
    };
    let recorded = retry
        .run(
            || match (&outcome, retry_in) {
                (AttemptOutcome::Done, _) => mode.call("complete", inbox.complete(lease, settings.ttl)),
                (AttemptOutcome::Failed { error, releases_key: true, .. }, Some(delay)) => {
                    mode.call("retry", inbox.retry_releasing(lease, delay, error))
                }
                (AttemptOutcome::Failed { error, .. }, Some(delay)) => {
                    mode.call("retry", inbox.retry(lease, delay, error))
                }
                (AttemptOutcome::Failed { error, .. }, None) => {
                    mode.call("dead_letter", inbox.dead_letter(lease, error))
                }
                (AttemptOutcome::Stopped, _) => mode.call("release", inbox.release(lease)),
            },
            |error| matches!(error, InboxError::ClaimLost { .. }),
            |error| tracing::warn!(event = id, attempt, %error, "could not record the attempt; trying again"),
        )
        .await;
    match recorded {
        Ok(((), _)) => {}
        Err(GaveUp::Final { error, .. }) => {
            // Another worker took the delivery after the lease ran out, or an earlier
            // try that seemed to fail (its answer lost) went through.
            tracing::warn!(event = id, attempt, %error, "the lease on the delivery is gone; leaving it as it is");
            return "lost";
        }
        Err(GaveUp::OutOfTime { last, .. }) => {
            let error = last.map_or_else(|| "no answer".to_owned(), |error| error.to_string());
            tracing::error!(
                event = id,
                attempt,
                %error,
                "could not record the attempt before the lease ran out; another worker will run it again"
            );
            return "lost";
        }
    }
    match (&outcome, retry_in) {
        (AttemptOutcome::Done, _) => {
            tracing::info!("handled event={id} attempt={attempt}");
            "done"
        }
        (AttemptOutcome::Failed { error, .. }, Some(delay)) => {
            tracing::warn!(%error, retry_in = ?delay, "failed event={id} attempt={attempt}");
            "retry"
        }
        (AttemptOutcome::Failed { error, permanent, .. }, None) => {
            tracing::error!(%error, permanent, "failed event={id} attempt={attempt}; dead-lettered event={id}");
            "dead"
        }
        (AttemptOutcome::Stopped, _) => {
            tracing::info!("stopped event={id} attempt={attempt}; given back to the inbox");
            "stopped"
        }
    }
}
