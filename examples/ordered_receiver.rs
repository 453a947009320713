//! A Stripe receiver in inbox mode whose subscription events run one at a time per
//! customer, oldest first, across every process sharing the inbox; `charge.succeeded`
//! runs at most two at once fleet-wide.
//!
//! ```sh
//! STRIPE_WEBHOOK_SECRET=whsec_dev cargo run --example ordered_receiver
//! # two HTTP replicas and a worker process on one PostgreSQL inbox:
//! export HOOKROUTE_INBOX=postgres://app@127.0.0.1/app STRIPE_WEBHOOK_SECRET=whsec_dev
//! PORT=3001 WORKERS=0 cargo run --example ordered_receiver --features postgres &
//! PORT=3002 WORKERS=0 cargo run --example ordered_receiver --features postgres &
//! ROLE=worker WORKERS=8 cargo run --example ordered_receiver --features postgres
//! ```
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `PORT` | listen on 127.0.0.1:PORT (0 picks a free one) | 3000 |
//! | `STRIPE_WEBHOOK_SECRET` | the signing secret | required |
//! | `HOOKROUTE_INBOX` | `memory:`, `sqlite:PATH`, `redis://…`, `postgres://…` | `memory:` |
//! | `WORKERS` | handlers run at once in this process; `0`: HTTP only | 4 |
//! | `ROLE` | `worker`: workers only, no HTTP | both |
//! | `HANDLER_DELAY_MS` | each handler sleeps this long | 0 |
//! | `LEASE_MS` | a worker's lease, renewed while its handler runs | 30000 |
//! | `RETRY_SCHEDULE_MS` | delays between attempts, e.g. `100,200,400` | Standard Webhooks |
//!
//! The object's `metadata` (strings, as Stripe's metadata is) steers a run:
//! `delay_ms` overrides the delay, `fail_times` fails the first N attempts, and
//! `hang_attempts` makes the first N attempts hang (for a worker to be killed in).
//!
//! Each run logs `started event=<id> key=<key> attempt=<n>` and, when it ends,
//! `handled event=<id> key=<key or -> created=<created> attempt=<n> stale=<true|false>
//! start_ms=<unix ms> end_ms=<unix ms>` or `failed event=<id> key=<key> attempt=<n>`,
//! on stdout, one line each.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookroute::{webhook_handlers, EventMeta, HandlerError};

mod support;
use serde::Deserialize;

/// `data` of the events handled here: the object, with its metadata.
#[derive(Debug, Deserialize)]
struct Data {
    object: StripeObject,
}

#[derive(Debug, Deserialize)]
struct StripeObject {
    #[serde(default)]
    metadata: HashMap<String, String>,
}

struct App {
    delay: Duration,
}

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis())
}

impl App {
    async fn handle(&self, data: Data, meta: &EventMeta) -> Result<(), HandlerError> {
        let (id, attempt) = (meta.id(), meta.attempt().unwrap_or(1));
        let key = meta.order_key().unwrap_or("-");
        let knob = |name: &str| data.object.metadata.get(name).and_then(|value| value.trim().parse::<u64>().ok());
        let start_ms = unix_ms();
        println!("started event={id} key={key} attempt={attempt}");
        if knob("hang_attempts").is_some_and(|hang| u64::from(attempt) <= hang) {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(knob("delay_ms").map_or(self.delay, Duration::from_millis)).await;
        if knob("fail_times").is_some_and(|fail| u64::from(attempt) <= fail) {
            println!("failed event={id} key={key} attempt={attempt}");
            return Err(HandlerError::msg(format!("event {id} failed on purpose (attempt {attempt})")));
        }
        println!(
            "handled event={id} key={key} created={} attempt={attempt} stale={} start_ms={start_ms} end_ms={}",
            meta.created().unwrap_or("-"),
            meta.superseded(),
            unix_ms()
        );
        Ok(())
    }
}

#[webhook_handlers(provider = "stripe")]
impl App {
    #[event("customer.subscription.created", key = "data.object.customer")]
    async fn subscription_created(&self, data: Data, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("customer.subscription.updated", key = "data.object.customer")]
    async fn subscription_updated(&self, data: Data, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("customer.subscription.deleted", key = "data.object.customer")]
    async fn subscription_deleted(&self, data: Data, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }

    #[event("charge.succeeded", concurrency = 2)]
    async fn charge_succeeded(&self, data: Data, meta: &EventMeta) -> Result<(), HandlerError> {
        self.handle(data, meta).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Ordering needs an inbox: `build()` refuses these handlers without one
    // (`HOOKROUTE_INBOX=inline`).
    support::inbox::main(async {
        let delay = Duration::from_millis(support::inbox::var("HANDLER_DELAY_MS", 0)?);
        support::inbox::serve(App { delay }).await
    })
    .await
}
