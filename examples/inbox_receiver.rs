//! A Groq receiver in inbox mode: a verified delivery is stored and answered
//! `202 {"status":"queued"}` at once; workers run the handlers later, with retries and
//! dead letters.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example inbox_receiver
//! # with a durable inbox shared by replicas and worker processes:
//! HOOKROUTE_INBOX=postgres://app@127.0.0.1/app GROQ_WEBHOOK_SECRET=whsec_dev \
//!     cargo run --example inbox_receiver --features postgres
//! ```
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `PORT` | listen on 127.0.0.1:PORT (0 picks a free one) | 3000 |
//! | `GROQ_WEBHOOK_SECRET` | the signing secret | required |
//! | `HOOKROUTE_INBOX` | `memory:`, `sqlite:PATH`, `redis://…`, `postgres://…`; `inline`: no inbox, handlers run inside the request (to compare) | `memory:` |
//! | `WORKERS` | handlers run at once in this process; `0`: HTTP only | 4 |
//! | `ROLE` | `worker`: workers only, no HTTP | both |
//! | `HANDLER_DELAY_MS` | each handler sleeps this long | 0 |
//! | `RETRY_SCHEDULE_MS` | delays between attempts, e.g. `100,200,400` | Standard Webhooks |
//! | `LEASE_MS` | a worker's lease, renewed while its handler runs | 30000 |
//! | `MAX_WAITING` | deliveries waiting before new ones are refused 503 | 100000 |
//! | `ORDER_KEY` | `1`: each resource's events run one at a time, oldest first (`key = "data.id"`) | unset |
//! | `BROKEN_TYPE` | this event type's handler fails for good (a bug until the next deploy): its deliveries are dead-lettered | unset |
//! | `TAKE_AHEAD` | deliveries a worker takes ahead of its free handlers on a backlog ([`Worker::take_ahead`](hookroute::Worker::take_ahead)) | `WORKERS` |
//! | `REPORT_DRAINED` | `1` with `ROLE=worker`: print `DRAINED <handled> <ms>` once nothing is left to run (bench/inbox) | unset |
//! | `DRAIN_EXPECT` | with `REPORT_DRAINED`: the deliveries the drain expects; the clock stops when this process handled that many, and the inbox is looked at only then | unset |
//! | `CONSOLE_TOKEN` | serve the operator console at `/console` over the same inbox, this its token (feature `console`) | unset |
//!
//! A handler fails its first N attempts when the event's `data` holds `"fail_times": N`,
//! and fails permanently (dead letter at once) with `"fail": "permanent"`. The worker
//! logs `handled event=<id> attempt=<n>`, `failed event=<id> attempt=<n>` and
//! `dead-lettered event=<id>`. SIGTERM or Ctrl-C: stop taking deliveries, let running
//! handlers finish (30 s grace), give the rest back.

use std::process::ExitCode;
use std::time::Duration;

use hookroute::{webhook_handlers, EventMeta, HandlerError};

mod support;
use serde::Deserialize;

/// The `data` of Groq's `resource.*` events, with the knobs of this example.
#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
    /// Fail this many attempts before succeeding.
    #[serde(default)]
    fail_times: u32,
    /// `"permanent"`: fail for good.
    #[serde(default)]
    fail: Option<String>,
}

struct App {
    delay: Duration,
    broken: Option<String>,
}

impl App {
    async fn handle(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        // No timer at 0: tokio rounds a sleep up to its next millisecond tick, so a
        // zero sleep would hold a "no-op" handler up to 1 ms (bench/inbox's drains).
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.broken.as_deref() == Some(meta.event_type()) {
            return Err(HandlerError::permanent(format!("the {} handler is broken", meta.event_type())));
        }
        if data.fail.as_deref() == Some("permanent") {
            return Err(HandlerError::permanent(format!("resource {} cannot be processed", data.id)));
        }
        if meta.attempt().unwrap_or(1) <= data.fail_times {
            return Err(HandlerError::msg(format!("resource {} failed on purpose", data.id)));
        }
        tracing::debug!(event = meta.id(), resource = %data.id, event_type = meta.event_type(), "resource handled");
        support::inbox::handled();
        Ok(())
    }
}

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("resource.updated")]
    async fn updated(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }
}

/// The same handlers, with the events of one resource in an ordered lane
/// (`ORDER_KEY=1`; `bench/inbox` compares the two).
struct Ordered(App);

#[webhook_handlers(provider = "groq")]
impl Ordered {
    #[event("resource.created", key = "data.id")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.handle(data, meta).await
    }

    #[event("resource.updated", key = "data.id")]
    async fn updated(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.handle(data, meta).await
    }

    #[event("resource.deleted", key = "data.id")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        self.0.handle(data, meta).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    support::inbox::main(async {
        let delay = Duration::from_millis(support::inbox::var("HANDLER_DELAY_MS", 0)?);
        let broken = std::env::var("BROKEN_TYPE").ok();
        if support::inbox::var("ORDER_KEY", 0_u8)? == 1 {
            support::inbox::serve(Ordered(App { delay, broken })).await
        } else {
            support::inbox::serve(App { delay, broken }).await
        }
    })
    .await
}
