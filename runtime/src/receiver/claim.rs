//! Claims in the idempotency store: why one was not acquired, the key of a body for
//! schemes that do not sign the id, completing after a failed first try, and the
//! guard that releases claims when a delivery's future is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::event::EventMeta;
use crate::handler::WebhookHandlers;
use crate::retry::UntilLease;
use crate::store::{Claim, ClaimToken, IdempotencyStore, StoreError};

use super::{Delivered, DeliveredKind, Inner, Rejection};

/// Why a claim was not acquired: the answer the delivery gets.
pub(super) enum NotAcquired {
    Done,
    InFlight,
    Store(StoreError),
}

impl NotAcquired {
    /// The claim's token, or why there is none.
    pub(super) fn check(claim: Result<Claim, StoreError>) -> Result<ClaimToken, Self> {
        match claim {
            Ok(Claim::Acquired(token)) => Ok(token),
            Ok(Claim::Done) => Err(Self::Done),
            Ok(Claim::InFlight) => Err(Self::InFlight),
            Err(error) => Err(Self::Store(error)),
        }
    }

    /// A duplicate (200), in flight elsewhere (409), or the store failed (503).
    pub(super) fn answer(self, meta: EventMeta) -> Result<Delivered, Rejection> {
        match self {
            Self::Done => Ok(Delivered::new(DeliveredKind::Duplicate, meta)),
            Self::InFlight => Err(Rejection::InFlight { meta: Box::new(meta) }),
            Self::Store(error) => Err(Rejection::Store(error)),
        }
    }
}

/// The key of a delivery's signed bytes, for schemes that do not sign the id:
/// `<namespace>:<provider>:body:<hex SHA-256 of the type, a NUL and the body>`.
pub(crate) fn body_key(namespace: &str, meta: &EventMeta, body: &[u8]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    digest.update(meta.event_type().as_bytes());
    digest.update([0]);
    digest.update(body);
    format!("{namespace}:{}:body:{}", meta.provider(), hex::encode(digest.finalize()))
}

/// Records a processed event as done after a first try failed: again and again, backing
/// off up to a second, until the store takes it or the claim's lease is over (then a
/// retry of the delivery can run the event again, and the log says so).
pub(super) async fn complete_until<H: WebhookHandlers, S: IdempotencyStore>(
    inner: Arc<Inner<H, S>>,
    key: String,
    token: ClaimToken,
    until: tokio::time::Instant,
) {
    let retry = UntilLease { until, pause: Duration::from_millis(25), longest: Duration::from_secs(1), tried: 1 };
    let completed = retry
        .run(
            || inner.store_call("complete", inner.store.complete(&key, &token, inner.settings.ttl)),
            |_| false,
            |error| tracing::debug!(key = %key, error = %error, "recording the event as done failed again"),
        )
        .await;
    match completed {
        Ok(((), tries)) => tracing::info!(key = %key, tries, "event recorded as done"),
        Err(gave_up) => tracing::error!(
            key = %key,
            tries = gave_up.tries(),
            "event processed but not recorded as done before its lease ended; a retry of it may run it again"
        ),
    }
}

/// Releases the claims of a delivery whose handler future was dropped mid-way (the
/// client hung up), so the provider's retry need not wait for the lease.
pub(super) struct ClaimGuard<'a, H: WebhookHandlers, S: IdempotencyStore> {
    pub(super) inner: &'a Arc<Inner<H, S>>,
    /// The event's key, and its body's for schemes that do not sign the id.
    pub(super) held: [Option<(&'a str, ClaimToken)>; 2],
}

impl<'a, H: WebhookHandlers, S: IdempotencyStore> ClaimGuard<'a, H, S> {
    /// Hands the claims back to the caller, who completes them.
    pub(super) fn disarm(mut self) -> [Option<(&'a str, ClaimToken)>; 2] {
        std::mem::take(&mut self.held)
    }

    /// Gives the claims back unprocessed, so the provider's retry can run the event.
    /// Armed until the store answers: dropped mid-way, it still releases.
    ///
    /// Boxed: only a failed delivery releases, and unboxed, its state would sit in
    /// every delivery's future.
    pub(super) fn release(self) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.release_in_place())
    }

    async fn release_in_place(mut self) {
        for (key, token) in self.held.iter().flatten() {
            if let Err(error) = self.inner.store_call("release", self.inner.store.release(key, token)).await {
                tracing::warn!(key = %key, error = %error, "could not release the claim; it frees when its lease ends");
            }
        }
        self.held = [None, None];
    }
}

impl<H: WebhookHandlers, S: IdempotencyStore> Drop for ClaimGuard<'_, H, S> {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.held);
        if held.iter().all(Option::is_none) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(self.inner);
        let held = held.map(|claim| claim.map(|(key, token)| (key.to_owned(), token)));
        runtime.spawn(async move {
            // Released only if these tokens still hold the claims.
            for (key, token) in held.into_iter().flatten() {
                let _ = inner.store_call("release", inner.store.release(&key, &token)).await;
            }
        });
    }
}
