//! Future utilities shared by the receiver, the HTTP service and the workers:
//! deadlines that cost no timer when the work is ready at once, and the message of a
//! caught panic.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use tokio::time::error::Elapsed;

/// Runs `future` for at most `limit`. One that finishes when first polled (a handler
/// that never waits) sets no timer; the deadline counts from the start either way.
pub(crate) async fn with_deadline<F: Future>(limit: Duration, future: F) -> Result<F::Output, Elapsed> {
    by_deadline(tokio::time::Instant::now().checked_add(limit), future).await
}

/// Runs `future` until `deadline` (`None`: past what the clock can hold, no deadline, as
/// `tokio::time::timeout` does). One that finishes when first polled (a handler that
/// never waits, a body frame already read) sets no timer: making and dropping one is
/// a thread-local lookup and a trip to the timer wheel.
pub(crate) async fn by_deadline<F: Future>(
    deadline: Option<tokio::time::Instant>,
    future: F,
) -> Result<F::Output, Elapsed> {
    let mut future = std::pin::pin!(future);
    if let Poll::Ready(output) = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        return Ok(output);
    }
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await,
        None => Ok(future.await),
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "handler panicked".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Poll;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_counts_from_the_start_and_holds_for_futures_that_wait() {
        // Pending forever: elapses at the limit.
        let pending = with_deadline(Duration::from_secs(5), std::future::pending::<()>());
        let started = tokio::time::Instant::now();
        assert!(pending.await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(5));

        // Waits once, then finishes in time.
        let mut waited = false;
        let once = std::future::poll_fn(|cx| {
            if waited {
                Poll::Ready(7)
            } else {
                waited = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        assert_eq!(with_deadline(Duration::from_secs(5), once).await, Ok(7));
    }

    #[tokio::test]
    async fn a_limit_past_what_the_clock_holds_means_no_deadline() {
        assert_eq!(with_deadline(Duration::MAX, async { 1 }).await, Ok(1));
        let later = async {
            tokio::task::yield_now().await;
            2
        };
        assert_eq!(with_deadline(Duration::MAX, later).await, Ok(2));
    }
}
