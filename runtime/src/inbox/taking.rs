//! Whether the workers of one receiver in this process take deliveries: the workers
//! (`worker.rs`) write it, the readiness check (`health.rs`) reads it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Whether the workers of one receiver in this process can take deliveries.
#[derive(Debug, Default)]
pub(crate) struct Taking {
    /// Workers running now.
    workers: AtomicUsize,
    /// While takes fail: since when, the last error, and whether it has lasted long
    /// enough to be called a stall.
    failing: Mutex<Option<Failing>>,
}

#[derive(Debug, Clone)]
struct Failing {
    since: Instant,
    error: String,
    stalled: bool,
}

impl Taking {
    pub(crate) fn started(&self) {
        self.workers.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn stopped(&self) {
        self.workers.fetch_sub(1, Ordering::AcqRel);
    }

    fn failing(&self) -> std::sync::MutexGuard<'_, Option<Failing>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A take succeeded. True when it ends a stall.
    pub(crate) fn took(&self) -> bool {
        self.failing().take().is_some_and(|failing| failing.stalled)
    }

    /// A take failed with `error`. True when the failures have now lasted `stall_after`
    /// for the first time (a stall begins).
    pub(crate) fn failed(&self, error: &str, stall_after: Duration) -> bool {
        let mut failing = self.failing();
        let failing =
            failing.get_or_insert_with(|| Failing { since: Instant::now(), error: String::new(), stalled: false });
        error.clone_into(&mut failing.error);
        let begins = !failing.stalled && failing.since.elapsed() >= stall_after;
        failing.stalled |= begins;
        begins
    }

    /// Workers running, whether takes are stalled, and since how long and why they fail.
    pub(crate) fn snapshot(&self) -> (usize, bool, Option<(Duration, String)>) {
        let failing = self.failing().clone();
        let stalled = failing.as_ref().is_some_and(|failing| failing.stalled);
        (self.workers.load(Ordering::Acquire), stalled, failing.map(|failing| (failing.since.elapsed(), failing.error)))
    }
}
