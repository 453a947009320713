//! The embedded default store: one process, bounded memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hashbrown::hash_map::Entry as Slot;
use hashbrown::HashMap;

use super::{Claim, ClaimToken, IdempotencyStore, StoreError};

/// How many events a [`MemoryStore`] remembers by default.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// An in-process idempotency store: the default, for a single replica.
///
/// Claims are atomic under a lock, so concurrent deliveries of one event in this
/// process run the handler once. It remembers at most `capacity` events. When full,
/// it first drops expired entries, then forgets the **oldest completed** event (the
/// one least likely to be retried); in-flight claims are never evicted, so when every
/// slot holds a live claim, a new claim fails with [`StoreError::Full`] and the
/// receiver answers 503 (the provider retries later) rather than risk a double run.
///
/// Replicas do not share it: several replicas need a shared store.
///
/// ```
/// use hookroute_runtime::store::MemoryStore;
///
/// let store = MemoryStore::with_capacity(10_000);
/// assert_eq!(store.capacity(), 10_000);
/// assert!(store.is_empty());
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    capacity: usize,
    next_token: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    /// hashbrown's map for its single-lookup `get_key_value_mut` and `entry`, with its
    /// default hasher (foldhash, randomly seeded): keys come only from deliveries whose
    /// signature verified, so a sender cannot pick colliding keys without the secret.
    entries: HashMap<Arc<str>, Entry>,
    /// Completed keys in order of completion, for expiry and eviction. An item is
    /// stale when its key was since claimed again; it is skipped when reached.
    completed: VecDeque<(Arc<str>, Instant)>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    InFlight { token: u64, until: Instant },
    Done { until: Instant },
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store that remembers up to [`DEFAULT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A store that remembers up to `capacity` events (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { state: Mutex::new(State::default()), capacity: capacity.max(1), next_token: AtomicU64::new(1) }
    }

    /// How many events it may remember.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events it remembers now, done or in flight (expired ones included
    /// until they are swept).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it remembers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement, so a panic elsewhere while
        // holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }
}

fn deadline(now: Instant, after: Duration) -> Instant {
    // A huge duration means "practically forever"; never overflow.
    now.checked_add(after).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn parse_token(token: &ClaimToken) -> Option<u64> {
    token.as_str().parse().ok()
}

impl State {
    /// Drops completed entries at the front of the queue that have expired.
    fn sweep_expired(&mut self, now: Instant) {
        while let Some((_, until)) = self.completed.front() {
            if *until > now {
                break;
            }
            self.pop_completed();
        }
    }

    /// Pops the oldest completion and forgets its key if it is still that completion.
    /// Returns whether an entry was removed.
    fn pop_completed(&mut self) -> bool {
        let Some((key, until)) = self.completed.pop_front() else {
            return false;
        };
        match self.entries.entry(key) {
            Slot::Occupied(slot) if matches!(slot.get(), Entry::Done { until: current } if *current == until) => {
                slot.remove();
                true
            }
            _ => false,
        }
    }

    /// Frees one slot: the oldest completed event, else any expired claim.
    fn make_room(&mut self, now: Instant) -> bool {
        while !self.completed.is_empty() {
            if self.pop_completed() {
                return true;
            }
        }
        let before = self.entries.len();
        self.entries.retain(|_, entry| match entry {
            Entry::InFlight { until, .. } | Entry::Done { until } => *until > now,
        });
        self.entries.len() < before
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let token = self.token();
        let mut state = self.lock();
        state.sweep_expired(now);
        let claimed = Entry::InFlight { token, until: deadline(now, lease) };
        if let Some(entry) = state.entries.get_mut(key) {
            match *entry {
                Entry::Done { until } if until > now => return Ok(Claim::Done),
                Entry::InFlight { until, .. } if until > now => return Ok(Claim::InFlight),
                // Expired: the key is free again, and keeps its slot.
                _ => *entry = claimed,
            }
        } else {
            if state.entries.len() >= self.capacity && !state.make_room(now) {
                return Err(StoreError::Full { capacity: self.capacity });
            }
            state.entries.insert(Arc::from(key), claimed);
        }
        Ok(Claim::Acquired(ClaimToken::new(token.to_string())))
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let (now, token) = (Instant::now(), parse_token(token));
        let mut state = self.lock();
        let State { entries, completed } = &mut *state;
        match entries.get_key_value_mut(key) {
            Some((stored, entry)) if matches!(*entry, Entry::InFlight { token: held, .. } if Some(held) == token) => {
                let until = deadline(now, ttl);
                *entry = Entry::Done { until };
                completed.push_back((Arc::clone(stored), until));
                Ok(())
            }
            _ => Err(StoreError::ClaimLost { key: key.to_owned() }),
        }
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let mut state = self.lock();
        match state.entries.get(key) {
            Some(Entry::InFlight { token: held, .. }) if Some(*held) == parse_token(token) => {
                state.entries.remove(key);
                Ok(())
            }
            _ => Err(StoreError::ClaimLost { key: key.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);
    const TTL: Duration = Duration::from_secs(3600);

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
    }

    fn acquire(store: &MemoryStore, key: &str, lease: Duration) -> ClaimToken {
        match block_on(store.claim(key, lease)).unwrap() {
            Claim::Acquired(token) => token,
            other => panic!("expected to acquire {key}, got {other:?}"),
        }
    }

    #[test]
    fn claim_complete_release_cycle() {
        let store = MemoryStore::new();
        let token = acquire(&store, "k", LEASE);
        assert_eq!(block_on(store.claim("k", LEASE)).unwrap(), Claim::InFlight);
        block_on(store.release("k", &token)).unwrap();
        let token = acquire(&store, "k", LEASE);
        block_on(store.complete("k", &token, TTL)).unwrap();
        assert_eq!(block_on(store.claim("k", LEASE)).unwrap(), Claim::Done);
        assert!(matches!(block_on(store.release("k", &token)), Err(StoreError::ClaimLost { .. })));
    }

    #[test]
    fn expired_lease_is_claimable_and_the_stale_token_is_powerless() {
        let store = MemoryStore::new();
        let stale = acquire(&store, "k", Duration::ZERO);
        let fresh = acquire(&store, "k", LEASE);
        assert!(matches!(block_on(store.complete("k", &stale, TTL)), Err(StoreError::ClaimLost { .. })));
        assert!(matches!(block_on(store.release("k", &stale)), Err(StoreError::ClaimLost { .. })));
        assert_eq!(block_on(store.claim("k", LEASE)).unwrap(), Claim::InFlight);
        block_on(store.complete("k", &fresh, TTL)).unwrap();
    }

    #[test]
    fn expired_done_is_claimable_again() {
        let store = MemoryStore::new();
        let token = acquire(&store, "k", LEASE);
        block_on(store.complete("k", &token, Duration::ZERO)).unwrap();
        acquire(&store, "k", LEASE);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn full_store_evicts_the_oldest_completed_event() {
        let store = MemoryStore::with_capacity(3);
        for key in ["a", "b", "c"] {
            let token = acquire(&store, key, LEASE);
            block_on(store.complete(key, &token, TTL)).unwrap();
        }
        acquire(&store, "d", LEASE);
        assert_eq!(store.len(), 3);
        // "a" was forgotten, "b" and "c" are still done.
        assert!(matches!(block_on(store.claim("a", LEASE)).unwrap(), Claim::Acquired(_)));
        assert_eq!(block_on(store.claim("c", LEASE)).unwrap(), Claim::Done);
    }

    #[test]
    fn full_of_live_claims_refuses_rather_than_forgets() {
        let store = MemoryStore::with_capacity(2);
        acquire(&store, "a", LEASE);
        acquire(&store, "b", LEASE);
        assert!(matches!(block_on(store.claim("c", LEASE)), Err(StoreError::Full { capacity: 2 })));
        assert_eq!(block_on(store.claim("a", LEASE)).unwrap(), Claim::InFlight);
    }

    #[test]
    fn full_of_expired_claims_reuses_their_slots() {
        let store = MemoryStore::with_capacity(2);
        acquire(&store, "a", Duration::ZERO);
        acquire(&store, "b", Duration::ZERO);
        acquire(&store, "c", LEASE);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn concurrent_claims_have_one_winner() {
        let store = Arc::new(MemoryStore::new());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let winners = runtime.block_on(async {
            let tasks: Vec<_> = (0..256)
                .map(|_| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move { store.claim("k", LEASE).await.unwrap() })
                })
                .collect();
            let mut winners = 0;
            for task in tasks {
                if matches!(task.await.unwrap(), Claim::Acquired(_)) {
                    winners += 1;
                }
            }
            winners
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let store = MemoryStore::new();
        let token = acquire(&store, "k", Duration::MAX);
        block_on(store.complete("k", &token, Duration::MAX)).unwrap();
        assert_eq!(block_on(store.claim("k", LEASE)).unwrap(), Claim::Done);
    }
}
