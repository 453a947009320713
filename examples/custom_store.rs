//! Your own idempotency store: implement `IdempotencyStore`, then prove it with the
//! conformance suite every hookroute store passes.
//!
//! ```sh
//! cargo run --example custom_store --features testing    # runs the suite, then a delivery
//! cargo test --example custom_store --features testing   # the suite as one test per check
//! ```
//!
//! The store here keeps records in a map split into shards, each behind its own lock,
//! so claims of different events rarely wait for each other. A store over your
//! database is the same shape: `claim` must be one atomic step (a conditional insert,
//! a compare-and-set), and `complete`/`release` must act only while the token still
//! holds the claim.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hookroute::store::{Claim, ClaimToken, StoreError};
use hookroute::testing::{conformance, TestEvent};
use hookroute::{webhook_handlers, Groq, HandlerError, IdempotencyStore, Receiver};

/// An in-process store split into shards by key hash.
#[derive(Debug)]
pub struct ShardedStore {
    shards: Vec<Mutex<HashMap<String, Record>>>,
    next_token: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// The live claim's token, or `None` once done.
    token: Option<u64>,
    /// When the lease (or, once done, the TTL) runs out.
    until: Instant,
}

impl ShardedStore {
    /// A store of `shards` independently locked maps (at least one).
    pub fn new(shards: usize) -> Self {
        Self { shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(), next_token: AtomicU64::new(1) }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % self.shards.len() as u64).unwrap_or(0);
        self.shards[index].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Acts on the record only if `token` holds its live claim.
    fn with_claim(
        &self,
        key: &str,
        token: &ClaimToken,
        act: impl FnOnce(Entry<'_, String, Record>),
    ) -> Result<(), StoreError> {
        let mut shard = self.shard(key);
        let held =
            shard.get(key).is_some_and(|record| record.token.map(|t| t.to_string()).as_deref() == Some(token.as_str()));
        if !held {
            return Err(StoreError::ClaimLost { key: key.to_owned() });
        }
        act(shard.entry(key.to_owned()));
        Ok(())
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for ShardedStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(key);
        // Check and set under one lock: atomic.
        if let Some(record) = shard.get(key).filter(|record| record.until > now) {
            return Ok(if record.token.is_some() { Claim::InFlight } else { Claim::Done });
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        shard.insert(key.to_owned(), Record { token: Some(token), until: now + lease });
        Ok(Claim::Acquired(ClaimToken::new(token.to_string())))
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        self.with_claim(key, token, |entry| {
            entry.and_modify(|record| *record = Record { token: None, until: Instant::now() + ttl });
        })
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        self.with_claim(key, token, |entry| {
            if let Entry::Occupied(occupied) = entry {
                occupied.remove();
            }
        })
    }
}

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: serde_json::Value) -> Result<(), HandlerError> {
        println!("handler: resource.created {data}");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let store = Arc::new(ShardedStore::new(16));
    println!("running the conformance suite against ShardedStore…");
    conformance::run_all(&store).await;
    println!("conformance: every check passed");

    // The store plugs into a receiver like any other.
    let receiver = match Receiver::builder(App).secret("whsec_example").store(Arc::clone(&store)).build() {
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
    ExitCode::SUCCESS
}

#[cfg(test)]
mod conformance_tests {
    hookroute::store_conformance_tests!(super::ShardedStore::new(16));
}
