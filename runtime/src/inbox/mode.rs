//! Inbox mode's part of a receiver: what it shares with its workers (the inbox, the
//! schedule, the wake-up, the health of the takes), and storing a verified delivery.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::event::EventMeta;
use crate::inbox::InboxError;
use crate::inbox::{created_ms, encode_headers, Enqueued, Inbox, NewDelivery, Order, RetrySchedule, Rule};
use crate::observe;
use crate::provider::Provider;
use crate::receiver::claim::body_key;
use crate::receiver::outcome::{Delivered, DeliveredKind, Rejection};

/// What a receiver in inbox mode shares with its workers.
pub(crate) struct InboxMode {
    pub(crate) inbox: Arc<dyn Inbox>,
    pub(crate) schedule: RetrySchedule,
    /// Wakes this process's workers when a delivery was queued here.
    pub(crate) wake: tokio::sync::Notify,
    /// Whether this process's workers can take deliveries.
    pub(crate) taking: crate::inbox::taking::Taking,
    /// Set once the inbox accepted this receiver's namespace ([`Inbox::bind`]).
    pub(crate) bound: tokio::sync::OnceCell<()>,
    /// The most deliveries waiting (queued or retrying) before new ones are refused.
    pub(crate) max_waiting: u64,
    /// How many were waiting when last counted, and when.
    pub(crate) waiting: std::sync::Mutex<Option<(tokio::time::Instant, u64)>>,
    /// Set while one request counts them again.
    pub(crate) counting: std::sync::atomic::AtomicBool,
    /// The namespaces this receiver answered to under its other secrets.
    pub(crate) also: Vec<String>,
}

impl InboxMode {
    /// Refuses a new delivery while the inbox holds `max_waiting` deliveries waiting,
    /// counted ([`Inbox::waiting`]) at most 5 s before (1 s once past half the limit).
    /// A count that fails refuses nothing: the enqueue says whether the inbox is up.
    async fn room(&self) -> Result<(), Rejection> {
        use std::sync::atomic::Ordering;
        if self.max_waiting == u64::MAX {
            return Ok(());
        }
        let last = *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh_for = match last {
            Some((_, waiting)) if waiting < self.max_waiting / 2 => Duration::from_secs(5),
            // Not more often: a count reads every waiting record (100,000 by default
            // here), which on PostgreSQL under a backlog costs ~130 ms of a core.
            _ => Duration::from_secs(1),
        };
        let stale = last.is_none_or(|(at, _)| at.elapsed() >= fresh_for);
        let mut counted = last;
        if stale && !self.counting.swap(true, Ordering::AcqRel) {
            match self.call("waiting", self.inbox.waiting(self.max_waiting)).await {
                Ok(waiting) => {
                    counted = Some((tokio::time::Instant::now(), waiting));
                    *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = counted;
                }
                Err(error) => tracing::debug!(%error, "could not count the deliveries waiting in the inbox"),
            }
            self.counting.store(false, Ordering::Release);
        }
        match counted {
            Some((_, waiting)) if waiting >= self.max_waiting => {
                Err(Rejection::InboxFull { waiting, limit: self.max_waiting })
            }
            _ => Ok(()),
        }
    }

    /// Counts one more delivery waiting, until the next count.
    fn queued_one(&self) {
        if let Some((_, waiting)) = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
            *waiting += 1;
        }
    }

    /// Binds the inbox to `namespace` once (see [`Inbox::bind`]); a refusal is logged
    /// each time it is met and answered again on the next call.
    pub(crate) async fn bound(&self, namespace: &str) -> Result<(), InboxError> {
        let bound = self.bound.get_or_try_init(|| self.call("bind", self.inbox.bind(namespace, &self.also))).await;
        if let Err(error @ InboxError::InvalidConfig(_)) = &bound {
            tracing::error!(%error, "the inbox refused this receiver");
        }
        bound.map(|&()| ())
    }

    /// Runs one call to the inbox, timed and counted (feature `metrics`).
    pub(crate) fn call<'a, T: 'a>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, InboxError>> + 'a,
    ) -> impl Future<Output = Result<T, InboxError>> + 'a {
        observe::call(observe::Backend::Inbox(self.inbox.backend()), operation, call)
    }
}

/// Inbox mode: stores the delivery, raw, unless its key is known (for schemes that do
/// not sign the id, the key of its signed bytes); the answer waits for the store to
/// make it durable, never for a handler.
pub(crate) async fn enqueue<P: Provider>(
    mode: &InboxMode,
    namespace: &str,
    headers: &HeaderMap,
    body: &[u8],
    meta: EventMeta,
    rule: Option<&Rule>,
) -> Result<Delivered, Rejection> {
    let headers = encode_headers(headers);
    let order_key = rule.and_then(|rule| rule.key_of(body));
    if let (Some(rule), None) = (rule, &order_key) {
        if !rule.key.is_empty() {
            tracing::warn!(
                event.id = meta.id(),
                event.type = meta.event_type(),
                key = %rule.key_path(),
                "the delivery has no ordering key at `{}`: it runs in no lane, unordered",
                rule.key_path()
            );
        }
    }
    let order = match rule {
        Some(rule) => {
            Order { key: order_key.as_deref(), created_ms: meta.created().and_then(created_ms), limits: rule.limits }
        }
        None => Order::NONE,
    };
    // An id the signature does not cover cannot tell a replay from a new event: the
    // signed bytes can.
    let body_key = (!P::SIGNS_ID).then(|| body_key(namespace, &meta, body));
    let delivery = NewDelivery {
        key: body_key.as_deref().unwrap_or(meta.store_key()),
        id: meta.id(),
        event_type: meta.event_type(),
        headers: &headers,
        body,
        signed_at: meta.timestamp(),
        order,
    };
    if let Err(error) = mode.bound(namespace).await {
        return Err(Rejection::Inbox(error));
    }
    mode.room().await?;
    match mode.call("enqueue", mode.inbox.enqueue(&delivery)).await {
        Ok(Enqueued::Queued) => {
            mode.queued_one();
            mode.wake.notify_one();
            Ok(Delivered::new(DeliveredKind::Queued, meta))
        }
        Ok(Enqueued::Duplicate) => Ok(Delivered::new(DeliveredKind::Duplicate, meta)),
        Err(error) => Err(Rejection::Inbox(error)),
    }
}
