//! Readiness: whether a receiver can do its work now, for a `/healthz`-style route.
//!
//! In inbox mode a receiver answers 202 as long as its inbox stores deliveries, even
//! when no worker can take them: a stall that HTTP never shows. [`Receiver::health`]
//! says what an orchestrator or an operator needs: the inbox reachable, this
//! process's workers taking, and how long the delivery due longest has waited.
//!
//! ```
//! use hookroute_runtime::{inbox::MemoryInbox, Receiver};
//! # use hookroute_runtime::__private as p;
//! # struct App;
//! # impl p::WebhookHandlers for App {
//! #     type Provider = hookroute_runtime::Groq; type Event = ();
//! #     const EVENT_TYPES: &'static [&'static str] = &["ping"];
//! #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Handled(())) }
//! #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let receiver = Receiver::builder(App).secret("s3cret").inbox(MemoryInbox::new()).build()?;
//! let workers = receiver.worker()?.spawn();
//! let health = receiver.health().await;
//! assert!(health.is_ready());
//! assert_eq!(health.status(), 200);
//! println!("{}", health.to_json()); // {"ready":true,"inbox":"reachable",...}
//! workers.shutdown().await;
//! # Ok::<(), hookroute_runtime::ConfigError>(())
//! # }).unwrap();
//! ```
//!
//! With axum, `hookroute::axum::health(receiver)` is a `GET` route that answers this
//! JSON with 200 when ready and 503 when not.

use std::time::Duration;

use crate::handler::WebhookHandlers;
use crate::receiver::Receiver;
use crate::store::IdempotencyStore;

/// How long [`Receiver::health`] waits for the inbox to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// What [`Receiver::health`] found. See the [module](self).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// In inbox mode, whether the inbox answered (its
    /// [stats without the done records](crate::inbox::Inbox::stats_without_done)) within 2 s; `None` in
    /// inline mode, where the idempotency store is checked by every delivery.
    pub inbox_reachable: Option<bool>,
    /// The inbox's error when it did not answer.
    pub inbox_error: Option<String>,
    /// This receiver's workers running in this process.
    pub workers: usize,
    /// False once this process's workers have failed to take deliveries for longer
    /// than a few polls (the [stall](crate::Worker::poll_interval) threshold: five
    /// polls, at least 1 s).
    pub workers_taking: bool,
    /// How long the workers' takes have been failing, and the last error.
    pub take_failing_for: Option<Duration>,
    /// The last error a take met, while they fail.
    pub take_error: Option<String>,
    /// How long the delivery due longest has waited for a worker.
    pub oldest_due_age: Option<Duration>,
    /// Deliveries waiting for their first attempt.
    pub queued: u64,
    /// Deliveries waiting for a retry.
    pub retrying: u64,
}

impl Health {
    /// Ready: the inbox (if any) answers and this process's workers (if any) take
    /// deliveries. The oldest due age is reported, not judged: compare it with what
    /// your handlers' pace makes normal.
    pub fn is_ready(&self) -> bool {
        self.inbox_reachable != Some(false) && self.workers_taking
    }

    /// 200 when [ready](Self::is_ready), 503 when not.
    pub fn status(&self) -> u16 {
        if self.is_ready() {
            200
        } else {
            503
        }
    }

    /// The facts as one JSON object: `ready`, `inbox` (`reachable`, `unreachable` or
    /// `none`), `inbox_error`, `workers`, `workers_taking`, `take_failing_for_seconds`,
    /// `take_error`, `oldest_due_age_seconds`, `queued`, `retrying`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "ready": self.is_ready(),
            "inbox": match self.inbox_reachable {
                Some(true) => "reachable",
                Some(false) => "unreachable",
                None => "none",
            },
            "inbox_error": self.inbox_error,
            "workers": self.workers,
            "workers_taking": self.workers_taking,
            "take_failing_for_seconds": self.take_failing_for.map(|age| age.as_secs_f64()),
            "take_error": self.take_error,
            "oldest_due_age_seconds": self.oldest_due_age.map(|age| age.as_secs_f64()),
            "queued": self.queued,
            "retrying": self.retrying,
        })
        .to_string()
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Receiver<H, S> {
    /// Checks whether this receiver can do its work now: in inbox mode, asks the inbox
    /// for its [stats without the done records](crate::inbox::Inbox::stats_without_done)
    /// (within 2 s: the done ones, kept for their TTL, would make a probe's cost grow
    /// with days of traffic) and reads whether this process's workers take deliveries.
    /// See the [module](crate::health).
    pub async fn health(&self) -> Health {
        let Some(mode) = self.inbox_mode() else {
            return Health {
                inbox_reachable: None,
                inbox_error: None,
                workers: 0,
                workers_taking: true,
                take_failing_for: None,
                take_error: None,
                oldest_due_age: None,
                queued: 0,
                retrying: 0,
            };
        };
        let stats =
            tokio::time::timeout(HEALTH_TIMEOUT, mode.call("stats_without_done", mode.inbox.stats_without_done()))
                .await;
        let (stats, inbox_error) = match stats {
            Ok(Ok(stats)) => (Some(stats), None),
            Ok(Err(error)) => (None, Some(error.to_string())),
            Err(_elapsed) => (None, Some(format!("the inbox did not answer within {HEALTH_TIMEOUT:?}"))),
        };
        let (workers, stalled, failing) = mode.taking.snapshot();
        let (take_failing_for, take_error) = failing.map_or((None, None), |(age, error)| (Some(age), Some(error)));
        Health {
            inbox_reachable: Some(stats.is_some()),
            inbox_error,
            workers,
            workers_taking: !stalled,
            take_failing_for,
            take_error,
            oldest_due_age: stats.as_ref().and_then(|stats| stats.oldest_due_age),
            queued: stats.as_ref().map_or(0, |stats| stats.queued),
            retrying: stats.as_ref().map_or(0, |stats| stats.retrying),
        }
    }
}
