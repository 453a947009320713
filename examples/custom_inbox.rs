//! Your own inbox backend: implement `Inbox`, then prove it with the inbox conformance
//! suite every hookroute backend passes.
//!
//! ```sh
//! cargo run --example custom_inbox --features testing    # runs the suite, then a delivery
//! cargo test --example custom_inbox --features testing   # the suite as one test per check
//! ```
//!
//! The backend here is the smallest one that passes: one list of messages behind one
//! lock, scanned in full by each call. It is written in the terms of a message queue
//! with visibility timeouts, so that each method says what it becomes over SQS or NATS
//! `JetStream`: `take` is a receive with a visibility timeout (ack wait), `renew`
//! extends it, `complete` deletes (acks) the message and remembers its key, `retry`
//! makes it visible again later, `dead_letter` moves it to a dead-letter queue. What
//! such a queue does not give you, the deduplication of `enqueue` on the event key
//! over the whole TTL, has to come from a table beside it (`DynamoDB`, a KV bucket).

use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use hookroute::inbox::{
    DeliveryState, Enqueued, Inbox, InboxAdmin, InboxError, InboxStats, Lease, Leased, NewDelivery, StoredDelivery,
};
use hookroute::testing::{inbox_conformance, TestEvent};
use hookroute::{webhook_handlers, EventMeta, Groq, HandlerError, Receiver};

/// A message queue in memory, with visibility timeouts.
#[derive(Debug, Default)]
pub struct QueueInbox {
    messages: Mutex<Vec<Message>>,
}

#[derive(Debug)]
struct Message {
    delivery: StoredDelivery,
    /// Queued, retrying: when it becomes visible. Running: when its lease ends.
    /// Done: when it is forgotten. Dead: never read.
    visible_at: SystemTime,
    /// The receipt of the lease that holds it (SQS's receipt handle).
    receipt: Option<String>,
    /// Arrival order, to hand out the oldest first.
    sequence: u64,
    updated_at: SystemTime,
}

impl QueueInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Message>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn forgotten(message: &Message, now: SystemTime) -> bool {
    message.delivery.state == DeliveryState::Done && message.visible_at <= now
}

/// The message `lease` holds, if its receipt is still the live one.
fn held<'a>(messages: &'a mut [Message], lease: &Lease) -> Result<&'a mut Message, InboxError> {
    messages
        .iter_mut()
        .find(|message| {
            message.delivery.key == lease.key()
                && message.delivery.state == DeliveryState::Running
                && message.receipt.as_deref() == Some(lease.token())
        })
        .ok_or_else(|| InboxError::ClaimLost { key: lease.key().to_owned() })
}

/// Ends the attempt `lease` holds: the message goes to `state`, visible at `at`.
fn settle(
    messages: &mut [Message],
    lease: &Lease,
    state: DeliveryState,
    at: SystemTime,
    error: Option<&str>,
) -> Result<(), InboxError> {
    let message = held(messages, lease)?;
    message.delivery.state = state;
    message.visible_at = at;
    message.receipt = None;
    message.updated_at = SystemTime::now();
    if let Some(error) = error {
        message.delivery.last_error = Some(error.to_owned());
    }
    Ok(())
}

#[async_trait::async_trait]
impl Inbox for QueueInbox {
    // Send, after checking the deduplication table.
    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
        let now = SystemTime::now();
        let mut messages = self.lock();
        messages.retain(|message| !forgotten(message, now));
        if messages.iter().any(|message| message.delivery.key == delivery.key) {
            return Ok(Enqueued::Duplicate);
        }
        let sequence = messages.iter().map(|message| message.sequence + 1).max().unwrap_or(0);
        messages.push(Message {
            delivery: StoredDelivery {
                key: delivery.key.to_owned(),
                id: delivery.id.to_owned(),
                event_type: delivery.event_type.to_owned(),
                headers: delivery.headers.to_owned(),
                body: delivery.body.to_owned(),
                signed_at: delivery.signed_at,
                state: DeliveryState::Queued,
                attempts: 0,
                last_error: None,
                received_at: now,
                // This queue does not order (`Inbox::orders` is false): a receiver
                // whose handlers declare `key = ..` refuses it at `build()`.
                order_key: None,
                created_at: now,
            },
            visible_at: now,
            receipt: None,
            sequence,
            updated_at: now,
        });
        Ok(Enqueued::Queued)
    }

    // Receive one message with a visibility timeout: a running message whose lease
    // ran out is visible again, like any other.
    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        let now = SystemTime::now();
        let mut messages = self.lock();
        let waiting = |state| matches!(state, DeliveryState::Queued | DeliveryState::Retrying | DeliveryState::Running);
        let Some(message) = messages
            .iter_mut()
            .filter(|message| waiting(message.delivery.state) && message.visible_at <= now)
            .min_by_key(|message| (message.visible_at, message.sequence))
        else {
            return Ok(None);
        };
        let receipt = format!("{:016x}", fastrand::u64(..));
        message.delivery.state = DeliveryState::Running;
        message.delivery.attempts += 1;
        message.visible_at = now + lease;
        message.receipt = Some(receipt.clone());
        message.updated_at = now;
        let lease = Lease::new(&message.delivery.key, receipt);
        Ok(Some(Leased { delivery: message.delivery.clone(), lease, superseded: false }))
    }

    // Change the message's visibility timeout.
    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        held(&mut self.lock(), lease)?.visible_at = SystemTime::now() + duration;
        Ok(())
    }

    // Delete the message; keep its key in the deduplication table for the TTL.
    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        settle(&mut self.lock(), lease, DeliveryState::Done, SystemTime::now() + ttl, None)
    }

    // Make it visible again after `delay`.
    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        settle(&mut self.lock(), lease, DeliveryState::Retrying, SystemTime::now() + delay, Some(error))
    }

    // Move it to the dead-letter queue.
    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        settle(&mut self.lock(), lease, DeliveryState::Dead, SystemTime::now(), Some(error))
    }

    // Make it visible now, and do not count the attempt.
    async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
        let mut messages = self.lock();
        let message = held(&mut messages, lease)?;
        message.delivery.attempts = message.delivery.attempts.saturating_sub(1);
        let back = if message.delivery.attempts == 0 { DeliveryState::Queued } else { DeliveryState::Retrying };
        settle(&mut messages, lease, back, SystemTime::now(), None)
    }

    async fn stats(&self) -> Result<InboxStats, InboxError> {
        let now = SystemTime::now();
        let messages = self.lock();
        let mut stats = InboxStats::default();
        for message in messages.iter().filter(|message| !forgotten(message, now)) {
            stats.add(message.delivery.state, 1);
        }
        stats.oldest_due_age = messages
            .iter()
            .filter(|message| matches!(message.delivery.state, DeliveryState::Queued | DeliveryState::Retrying))
            .filter_map(|message| now.duration_since(message.visible_at).ok())
            .max();
        Ok(stats)
    }
}

#[async_trait::async_trait]
impl InboxAdmin for QueueInbox {
    async fn list(&self, state: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let now = SystemTime::now();
        let messages = self.lock();
        let mut found: Vec<&Message> =
            messages.iter().filter(|message| message.delivery.state == state && !forgotten(message, now)).collect();
        found.sort_by_key(|message| (message.updated_at, message.sequence));
        Ok(found.into_iter().take(limit).map(|message| message.delivery.clone()).collect())
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
        Ok(self.lock().iter().find(|message| message.delivery.key == key).map(|message| message.delivery.clone()))
    }

    // Redrive from the dead-letter queue (or send a done one again), with a fresh schedule.
    async fn replay(&self, key: &str) -> Result<bool, InboxError> {
        let now = SystemTime::now();
        let mut messages = self.lock();
        let Some(message) = messages.iter_mut().find(|message| message.delivery.key == key) else { return Ok(false) };
        if message.delivery.state == DeliveryState::Running {
            return Ok(false);
        }
        message.delivery.state = DeliveryState::Queued;
        message.delivery.attempts = 0;
        message.visible_at = now;
        message.updated_at = now;
        Ok(true)
    }

    async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError> {
        let now = SystemTime::now();
        let cutoff = now.checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut messages = self.lock();
        let before = messages.len();
        messages.retain(|message| {
            message.delivery.state != DeliveryState::Done || (message.updated_at > cutoff && !forgotten(message, now))
        });
        Ok((before - messages.len()) as u64)
    }
}

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        println!("handler: resource.created {data}, attempt {}", meta.attempt().unwrap_or(1));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    println!("running the inbox conformance suite against QueueInbox…");
    inbox_conformance::run_all(|| async { QueueInbox::new() }).await;
    println!("conformance: every check passed");

    // The backend plugs into a receiver like any other: answered 202, run by a worker.
    let inbox = Arc::new(QueueInbox::new());
    let receiver = match Receiver::builder(App).secret("whsec_example").inbox(Arc::clone(&inbox)).build() {
        Ok(receiver) => receiver,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let delivery =
        TestEvent::<Groq>::new("resource.created", serde_json::json!({"id": "r1"})).id("evt_1").sign("whsec_example");
    for _ in 0..2 {
        let outcome = receiver.receive(&delivery.headers, &delivery.body).await;
        println!("{} {}", outcome.status().as_u16(), outcome.body());
    }
    let worker = match receiver.worker() {
        Ok(worker) => worker.poll_interval(Duration::from_millis(10)).spawn(),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    while inbox.stats().await.map_or(0, |stats| stats.done) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown().await;
    println!("done: {:?}", inbox.get("groq:event:evt_1").await.ok().flatten().map(|delivery| delivery.state));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod conformance_tests {
    hookroute::inbox_conformance_tests!(super::QueueInbox::new());
}
