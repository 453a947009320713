//! The embedded default store: one process, bounded memory.

use std::collections::{hash_map, HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use siphasher::sip128::{Hasher128, SipHasher13};

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
/// It keeps a 128-bit keyed fingerprint of each key, not the key: about 90 bytes per
/// event at a million events, whatever the length of the ids. Two keys share a
/// fingerprint with a chance of about n² in 2¹²⁹ for n keys remembered (1 in 10²⁶ at
/// a million); the fingerprint's keys are drawn at random per store, so no sender can
/// aim at one.
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
pub struct MemoryStore {
    state: Mutex<State>,
    capacity: usize,
    next_token: AtomicU64,
    /// SipHash-1-3's 128-bit output under keys drawn at random per store.
    fingerprint: SipHasher13,
    /// The instant the store's millisecond clock counts from.
    epoch: Instant,
}

/// A key's fingerprint.
type Fingerprint = u128;

/// Milliseconds since the store's epoch.
type Millis = u64;

#[derive(Debug, Default)]
struct State {
    /// A fingerprint is already a random number: the table takes its low 64 bits as
    /// the hash.
    entries: HashMap<Fingerprint, Entry, BuildHasherDefault<LowBits>>,
    /// Completed keys in order of completion, for expiry and eviction, as the two
    /// halves of the fingerprint and the end of the TTL (three `u64`s, no padding). An
    /// item is stale when its key was since claimed again; it is skipped when reached.
    completed: VecDeque<[u64; 3]>,
}

/// A claim (`token` > 0) or a done mark (`token` = 0), live until `until`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Millis,
    token: u64,
}

impl Entry {
    const DONE: u64 = 0;

    fn is_done(self) -> bool {
        self.token == Self::DONE
    }
}

/// Hashes a fingerprint to its low 64 bits.
#[derive(Debug, Default)]
struct LowBits(u64);

impl Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used; this keeps any other input well mixed anyway.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[allow(clippy::cast_possible_truncation)] // the low half, on purpose
    fn write_u128(&mut self, fingerprint: u128) {
        self.0 = fingerprint as u64;
    }
}

impl std::fmt::Debug for MemoryStore {
    // Not the fingerprint's keys: with them, one could aim ids at one fingerprint.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("capacity", &self.capacity).finish_non_exhaustive()
    }
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
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            next_token: AtomicU64::new(1),
            // A random SipHash key's hash of nothing is a random number.
            fingerprint: SipHasher13::new_with_keys(RandomState::new().hash_one(()), RandomState::new().hash_one(())),
            epoch: Instant::now(),
        }
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

    fn fingerprint(&self, key: &str) -> Fingerprint {
        let mut hasher = self.fingerprint;
        hasher.write(key.as_bytes());
        hasher.finish128().as_u128()
    }

    /// Now, in milliseconds since the epoch.
    fn now(&self) -> Millis {
        millis(self.epoch.elapsed())
    }
}

/// A duration in whole milliseconds; a huge one means "practically forever" and never
/// overflows.
fn millis(duration: Duration) -> Millis {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2).min(u64::MAX / 2)
}

fn deadline(now: Millis, after: Duration) -> Millis {
    now.saturating_add(millis(after))
}

fn parse_token(token: &ClaimToken) -> Option<u64> {
    token.as_str().parse().ok().filter(|&token| token != Entry::DONE)
}

#[allow(clippy::cast_possible_truncation)] // the two halves, on purpose
fn halves(fingerprint: Fingerprint) -> [u64; 2] {
    [(fingerprint >> 64) as u64, fingerprint as u64]
}

impl State {
    /// Drops completed entries at the front of the queue that have expired.
    fn sweep_expired(&mut self, now: Millis) {
        while let Some(&[_, _, until]) = self.completed.front() {
            if until > now {
                break;
            }
            self.pop_completed();
        }
    }

    /// Pops the oldest completion and forgets its key if it is still that completion.
    /// Returns whether an entry was removed.
    fn pop_completed(&mut self) -> bool {
        let Some([high, low, until]) = self.completed.pop_front() else {
            return false;
        };
        let fingerprint = (u128::from(high) << 64) | u128::from(low);
        match self.entries.entry(fingerprint) {
            hash_map::Entry::Occupied(slot) if slot.get().is_done() && slot.get().until == until => {
                slot.remove();
                true
            }
            _ => false,
        }
    }

    /// Frees one slot: the oldest completed event, else any expired claim.
    fn make_room(&mut self, now: Millis) -> bool {
        while !self.completed.is_empty() {
            if self.pop_completed() {
                return true;
            }
        }
        let before = self.entries.len();
        self.entries.retain(|_, entry| entry.until > now);
        self.entries.len() < before
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let (fingerprint, now, token) = (self.fingerprint(key), self.now(), self.token());
        let mut state = self.lock();
        state.sweep_expired(now);
        let claimed = Entry { until: deadline(now, lease), token };
        if let Some(entry) = state.entries.get_mut(&fingerprint) {
            match *entry {
                Entry { until, token: Entry::DONE } if until > now => return Ok(Claim::Done),
                Entry { until, .. } if until > now => return Ok(Claim::InFlight),
                // Expired: the key is free again, and keeps its slot.
                _ => *entry = claimed,
            }
        } else {
            if state.entries.len() >= self.capacity && !state.make_room(now) {
                return Err(StoreError::Full { capacity: self.capacity });
            }
            state.entries.insert(fingerprint, claimed);
        }
        Ok(Claim::Acquired(ClaimToken::new(token.to_string())))
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        let (fingerprint, now, token) = (self.fingerprint(key), self.now(), parse_token(token));
        let mut state = self.lock();
        let State { entries, completed } = &mut *state;
        match entries.get_mut(&fingerprint) {
            Some(entry) if Some(entry.token) == token => {
                let until = deadline(now, ttl);
                *entry = Entry { until, token: Entry::DONE };
                let [high, low] = halves(fingerprint);
                completed.push_back([high, low, until]);
                Ok(())
            }
            _ => Err(StoreError::ClaimLost { key: key.to_owned() }),
        }
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        let (fingerprint, token) = (self.fingerprint(key), parse_token(token));
        let mut state = self.lock();
        match state.entries.get(&fingerprint) {
            Some(entry) if Some(entry.token) == token => {
                state.entries.remove(&fingerprint);
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
        let store = std::sync::Arc::new(MemoryStore::new());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let winners = runtime.block_on(async {
            let tasks: Vec<_> = (0..256)
                .map(|_| {
                    let store = std::sync::Arc::clone(&store);
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

    /// What one remembered event costs, besides the table's spare slots: a 32-byte
    /// slot and a 24-byte place in the completion queue, whatever the key's length.
    #[test]
    fn an_event_is_a_fingerprint_not_its_key() {
        assert_eq!(std::mem::size_of::<(Fingerprint, Entry)>(), 32);
        assert_eq!(std::mem::size_of::<[u64; 3]>(), 24);
        let store = MemoryStore::new();
        let long = "k".repeat(10_000);
        let token = acquire(&store, &long, LEASE);
        block_on(store.complete(&long, &token, TTL)).unwrap();
        assert_eq!(block_on(store.claim(&long, LEASE)).unwrap(), Claim::Done);
        assert!(matches!(block_on(store.claim(&long[1..], LEASE)).unwrap(), Claim::Acquired(_)));
        // Each store draws its own fingerprint keys.
        assert_ne!(store.fingerprint("groq:event:evt_1"), MemoryStore::new().fingerprint("groq:event:evt_1"));
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let store = MemoryStore::new();
        let token = acquire(&store, "k", Duration::MAX);
        block_on(store.complete("k", &token, Duration::MAX)).unwrap();
        assert_eq!(block_on(store.claim("k", LEASE)).unwrap(), Claim::Done);
    }
}
