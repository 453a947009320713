//! Trying a call again until a lease ends, the one helper for it: the receiver marking
//! a processed event done after the store failed, and a worker recording what became
//! of an attempt. Past the lease another claimant may run the event, so there is no
//! point in trying longer, and the caller says so in its log.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// When to stop and how long to pause between tries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UntilLease {
    /// No try starts at or after this, and none runs past it.
    pub(crate) until: Instant,
    /// The first pause; each next one is twice as long, up to `longest`.
    pub(crate) pause: Duration,
    pub(crate) longest: Duration,
    /// Tries made before this helper was called: with one or more, it pauses first.
    pub(crate) tried: u32,
}

/// Why the call never succeeded.
#[derive(Debug)]
pub(crate) enum GaveUp<E> {
    /// An error that another try cannot mend, at the `tries`-th try.
    Final { error: E, tries: u32 },
    /// The next try would not have ended before the lease: the last error (none when
    /// the last try was still waiting at the deadline), after `tries` tries.
    OutOfTime { last: Option<E>, tries: u32 },
}

impl<E> GaveUp<E> {
    /// How many tries were made in all.
    pub(crate) fn tries(&self) -> u32 {
        match self {
            Self::Final { tries, .. } | Self::OutOfTime { tries, .. } => *tries,
        }
    }
}

impl UntilLease {
    /// Calls `call` until it succeeds (answering its value and how many tries it took),
    /// fails with an error `is_final` picks, or the lease would end first. `on_retry`
    /// sees each error that is followed by another try (to log it).
    pub(crate) async fn run<T, E, F>(
        mut self,
        mut call: impl FnMut() -> F,
        is_final: impl Fn(&E) -> bool,
        mut on_retry: impl FnMut(&E),
    ) -> Result<(T, u32), GaveUp<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let mut last = None;
        loop {
            if self.tried > 0 {
                if Instant::now() + self.pause >= self.until {
                    return Err(GaveUp::OutOfTime { last, tries: self.tried });
                }
                if let Some(error) = &last {
                    on_retry(error);
                }
                tokio::time::sleep(self.pause).await;
                self.pause = (self.pause * 2).min(self.longest);
            }
            self.tried += 1;
            last = match tokio::time::timeout_at(self.until, call()).await {
                Ok(Ok(value)) => return Ok((value, self.tried)),
                Ok(Err(error)) if is_final(&error) => return Err(GaveUp::Final { error, tries: self.tried }),
                Ok(Err(error)) => Some(error),
                Err(_) => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn lease(tried: u32) -> UntilLease {
        UntilLease {
            until: Instant::now() + Duration::from_secs(1),
            pause: Duration::from_millis(100),
            longest: Duration::from_millis(400),
            tried,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tries_until_the_call_succeeds_and_counts_the_tries() {
        let calls = AtomicU32::new(0);
        let retried = AtomicU32::new(0);
        let answer = lease(0)
            .run(
                || async {
                    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err("down")
                    } else {
                        Ok("up")
                    }
                },
                |_| false,
                |_| {
                    retried.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await;
        assert_eq!(answer.unwrap(), ("up", 3));
        assert_eq!(retried.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_error_ends_at_once() {
        let calls = AtomicU32::new(0);
        let answer: Result<((), u32), _> = lease(0)
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("lost")
                },
                |error| *error == "lost",
                |_| {},
            )
            .await;
        assert!(matches!(answer, Err(GaveUp::Final { error: "lost", tries: 1 })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Tried once before: pauses of 100, 200 and 400 ms make four tries in all, and a
    /// fourth pause would end past the lease's second.
    #[tokio::test(start_paused = true)]
    async fn stops_before_the_lease_ends_with_the_last_error() {
        let started = Instant::now();
        let answer: Result<((), u32), _> = lease(1).run(|| async { Err("down") }, |_| false, |_| {}).await;
        assert!(matches!(answer, Err(GaveUp::OutOfTime { last: Some("down"), tries: 4 })), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_hangs_ends_at_the_deadline() {
        let answer: Result<((), u32), GaveUp<&str>> = lease(0).run(std::future::pending, |_| false, |_| {}).await;
        assert!(matches!(answer, Err(GaveUp::OutOfTime { last: None, tries: 1 })), "{answer:?}");
    }
}
