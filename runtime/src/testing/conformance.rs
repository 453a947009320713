//! The checks every [`IdempotencyStore`] must pass (feature `testing`).
//!
//! hookroute runs them against each of its backends; run them against yours. Each
//! check uses keys of its own (`conformance:<run>:<check>:<n>`), so they may share one
//! store and one server, and run in parallel. A check panics, naming itself and what
//! the store answered, when the store gets it wrong.
//!
//! The quickest way is one test per check, from
//! [`store_conformance_tests!`](crate::store_conformance_tests); the
//! expression makes the store under test (it may `.await`) and is evaluated per check:
//!
//! ```
//! mod memory_store {
//!     hookroute_runtime::store_conformance_tests!(hookroute_runtime::MemoryStore::new());
//! }
//! # fn main() {}
//! ```
//!
//! or all of them in one test with [`run_all`]:
//!
//! ```
//! use std::sync::Arc;
//! use hookroute_runtime::{testing::conformance, MemoryStore};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! conformance::run_all(&Arc::new(MemoryStore::new())).await;
//! # });
//! ```
//!
//! Lease and TTL checks wait for short leases (1 s) to run out, so the suite takes a
//! few seconds. Timing only ever loosens an assertion (an answer given after a lease
//! could have run out is not held against the store), so a slow machine cannot make a
//! correct store fail.

// Every check panics when the store gets it wrong; that is what a check is for.
#![allow(clippy::missing_panics_doc)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};

use crate::store::{Claim, ClaimToken, IdempotencyStore, StoreError};

/// A lease long enough never to run out during a check.
const LONG: Duration = Duration::from_secs(300);
/// A lease or TTL the checks wait out.
const SHORT: Duration = Duration::from_secs(1);
/// How long past a short lease or TTL the checks wait, for clocks and rounding.
const MARGIN: Duration = Duration::from_millis(300);

/// How many callers race for one key in [`concurrent_claims_have_one_winner`].
pub const RACERS: usize = 256;
/// How many keys [`concurrent_claims_have_one_winner`] races on, one after another.
pub const RACES: usize = 16;
/// How many keys [`many_distinct_keys`] uses.
pub const MANY_KEYS: usize = 1_000;

/// Runs every check, one after another.
pub async fn run_all<S: IdempotencyStore>(store: &Arc<S>) {
    first_claim_wins(store).await;
    second_claim_sees_in_flight(store).await;
    complete_makes_it_done(store).await;
    release_makes_it_claimable(store).await;
    lease_expiry_makes_it_claimable(store).await;
    ttl_expiry_makes_it_claimable(store).await;
    stale_claimant_cannot_touch_newer_claim(store).await;
    concurrent_claims_have_one_winner(store).await;
    many_distinct_keys(store).await;
}

/// The first claim of a fresh key is acquired, with a token.
pub async fn first_claim_wins<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "first_claim_wins";
    let key = key(check, 0);
    acquire(check, &**store, &key, LONG).await;
}

/// While a claim is live, every other claim of the key sees it in flight, and
/// claiming again does not take it over.
pub async fn second_claim_sees_in_flight<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "second_claim_sees_in_flight";
    let key = key(check, 0);
    let token = acquire(check, &**store, &key, LONG).await;
    for _ in 0..3 {
        expect(check, "a claim while another is live", &claim(check, &**store, &key, LONG).await, &Claim::InFlight);
    }
    ok(check, "completing with the first token", store.complete(&key, &token, LONG).await);
}

/// Once completed, every later claim sees the key done; completing or releasing it
/// again fails with [`StoreError::ClaimLost`].
pub async fn complete_makes_it_done<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "complete_makes_it_done";
    let key = key(check, 0);
    let token = acquire(check, &**store, &key, LONG).await;
    ok(check, "complete", store.complete(&key, &token, LONG).await);
    for _ in 0..3 {
        expect(check, "a claim after complete", &claim(check, &**store, &key, LONG).await, &Claim::Done);
    }
    claim_lost(check, "completing twice", store.complete(&key, &token, LONG).await);
    claim_lost(check, "releasing after complete", store.release(&key, &token).await);
    expect(check, "a claim after those", &claim(check, &**store, &key, LONG).await, &Claim::Done);
}

/// After a release the key can be claimed again (with a new token); releasing twice
/// fails with [`StoreError::ClaimLost`].
pub async fn release_makes_it_claimable<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "release_makes_it_claimable";
    let key = key(check, 0);
    let first = acquire(check, &**store, &key, LONG).await;
    ok(check, "release", store.release(&key, &first).await);
    claim_lost(check, "releasing twice", store.release(&key, &first).await);
    let second = acquire(check, &**store, &key, LONG).await;
    assert_ne!(first, second, "conformance `{check}`: a new claim reused the released claim's token");
    ok(check, "completing the new claim", store.complete(&key, &second, LONG).await);
    expect(check, "a claim after that", &claim(check, &**store, &key, LONG).await, &Claim::Done);
}

/// A claimant that never completes nor releases holds the key only for its lease.
pub async fn lease_expiry_makes_it_claimable<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "lease_expiry_makes_it_claimable";
    let key = key(check, 0);
    let started = Instant::now();
    acquire(check, &**store, &key, SHORT).await;
    let again = claim(check, &**store, &key, SHORT).await;
    if started.elapsed() < SHORT {
        expect(check, "a claim within the lease", &again, &Claim::InFlight);
    }
    tokio::time::sleep_until((started + SHORT + MARGIN).into()).await;
    acquire(check, &**store, &key, LONG).await;
}

/// A completed key is remembered for its TTL, then can be claimed again.
pub async fn ttl_expiry_makes_it_claimable<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "ttl_expiry_makes_it_claimable";
    let key = key(check, 0);
    let token = acquire(check, &**store, &key, LONG).await;
    let completed = Instant::now();
    ok(check, "complete", store.complete(&key, &token, SHORT).await);
    let again = claim(check, &**store, &key, LONG).await;
    if completed.elapsed() < SHORT {
        expect(check, "a claim within the TTL", &again, &Claim::Done);
    }
    tokio::time::sleep_until((completed + SHORT + MARGIN).into()).await;
    acquire(check, &**store, &key, LONG).await;
}

/// A claimant whose lease ran out and whose key was claimed again cannot complete or
/// release the newer claim; the newer claimant still can.
pub async fn stale_claimant_cannot_touch_newer_claim<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "stale_claimant_cannot_touch_newer_claim";
    let key = key(check, 0);
    let started = Instant::now();
    let stale = acquire(check, &**store, &key, SHORT).await;
    tokio::time::sleep_until((started + SHORT + MARGIN).into()).await;
    let fresh = acquire(check, &**store, &key, LONG).await;
    assert_ne!(stale, fresh, "conformance `{check}`: the newer claim got the stale claim's token");
    claim_lost(check, "the stale claimant completing", store.complete(&key, &stale, LONG).await);
    claim_lost(check, "the stale claimant releasing", store.release(&key, &stale).await);
    expect(
        check,
        "a claim after the stale claimant's attempts",
        &claim(check, &**store, &key, LONG).await,
        &Claim::InFlight,
    );
    ok(check, "the newer claimant completing", store.complete(&key, &fresh, LONG).await);
    expect(check, "a claim after that", &claim(check, &**store, &key, LONG).await, &Claim::Done);
}

/// [`RACERS`] claims of one key at once, on several tasks: exactly one wins, the
/// others see it in flight. Raced on [`RACES`] keys in turn, after a warm-up that
/// opens the store's connections (a pool that connects lazily would otherwise line
/// the racers up one by one, and a race that never happens proves nothing).
pub async fn concurrent_claims_have_one_winner<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "concurrent_claims_have_one_winner";
    let warm_up: Vec<String> = (0..RACERS).map(|n| key("concurrent_claims_warm_up", n)).collect();
    stream::iter(&warm_up)
        .for_each_concurrent(RACERS, |key| async move {
            acquire(check, &**store, key, LONG).await;
        })
        .await;
    for race in 0..RACES {
        let key: Arc<str> = key(check, race).into();
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (store, key, start) = (Arc::clone(store), Arc::clone(&key), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    store.claim(&key, LONG).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            match racer.await {
                Ok(Ok(Claim::Acquired(token))) => winners.push(token),
                Ok(Ok(Claim::InFlight)) => {}
                Ok(other) => {
                    panic!("conformance `{check}`: a racing claim answered {other:?}, not Acquired or InFlight")
                }
                Err(join) => panic!("conformance `{check}`: a racing claim panicked: {join}"),
            }
        }
        assert_eq!(winners.len(), 1, "conformance `{check}`: {} of {RACERS} racing claims won", winners.len());
        ok(check, "the winner completing", store.complete(&key, &winners[0], LONG).await);
    }
}

/// [`MANY_KEYS`] distinct keys, claimed and completed 64 at a time, do not interfere.
pub async fn many_distinct_keys<S: IdempotencyStore>(store: &Arc<S>) {
    let check = "many_distinct_keys";
    let keys: Vec<String> = (0..MANY_KEYS).map(|n| key(check, n)).collect();
    let claimed: Vec<(usize, Claim)> = stream::iter(keys.iter().enumerate())
        .map(|(n, key)| async move { (n, claim(check, &**store, key, LONG).await) })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut tokens = vec![None; MANY_KEYS];
    for (n, claim) in claimed {
        match claim {
            Claim::Acquired(token) => tokens[n] = Some(token),
            other => panic!("conformance `{check}`: fresh key {n} answered {other:?}, not Acquired"),
        }
    }
    let completions: Vec<_> = stream::iter(keys.iter().zip(&tokens))
        .map(|(key, token)| async move {
            let token = token.as_ref().expect("every key was acquired");
            (key, store.complete(key, token, LONG).await)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for (key, completed) in completions {
        ok(check, &format!("completing {key}"), completed);
    }
    for key in keys.iter().step_by(97) {
        expect(check, "a claim of a completed key", &claim(check, &**store, key, LONG).await, &Claim::Done);
    }
}

/// A key no other check or run uses.
fn key(check: &str, n: usize) -> String {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    format!("conformance:{}-{nanos:x}-{run}:{check}:{n}", std::process::id())
}

async fn claim<S: IdempotencyStore + ?Sized>(check: &str, store: &S, key: &str, lease: Duration) -> Claim {
    match store.claim(key, lease).await {
        Ok(claim) => claim,
        Err(err) => panic!("conformance `{check}`: claim of `{key}` failed: {err}"),
    }
}

async fn acquire<S: IdempotencyStore + ?Sized>(check: &str, store: &S, key: &str, lease: Duration) -> ClaimToken {
    match claim(check, store, key, lease).await {
        Claim::Acquired(token) => token,
        other => panic!("conformance `{check}`: claim of `{key}` answered {other:?}, expected Acquired"),
    }
}

#[track_caller]
fn expect(check: &str, what: &str, got: &Claim, want: &Claim) {
    assert_eq!(got, want, "conformance `{check}`: {what} answered {got:?}, expected {want:?}");
}

#[track_caller]
fn ok(check: &str, what: &str, result: Result<(), StoreError>) {
    if let Err(err) = result {
        panic!("conformance `{check}`: {what} failed: {err}");
    }
}

#[track_caller]
fn claim_lost(check: &str, what: &str, result: Result<(), StoreError>) {
    match result {
        Err(StoreError::ClaimLost { .. }) => {}
        other => panic!("conformance `{check}`: {what} answered {other:?}, expected Err(ClaimLost)"),
    }
}

/// Writes one `#[tokio::test]` per conformance check for the store that `$make`
/// builds (an expression, evaluated in an `async` block for each check, so it may
/// `.await`). Needs `tokio` with the `macros` and `rt-multi-thread` features among
/// the caller's dev-dependencies.
///
/// ```ignore
/// mod redis_store {
///     hookroute::store_conformance_tests!(
///         hookroute::store::RedisStore::connect(&std::env::var("REDIS_URL").unwrap()).await.unwrap()
///     );
/// }
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@checks ($make)
            first_claim_wins second_claim_sees_in_flight complete_makes_it_done
            release_makes_it_claimable lease_expiry_makes_it_claimable ttl_expiry_makes_it_claimable
            stale_claimant_cannot_touch_newer_claim concurrent_claims_have_one_winner many_distinct_keys);
    };
    (@checks ($make:expr) $($check:ident)+) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let store = ::std::sync::Arc::new($make);
                $crate::testing::conformance::$check(&store).await;
            }
        )+
    };
}
