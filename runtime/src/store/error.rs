//! What a store operation fails with.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or failed; the receiver fails closed (503).
    #[error("idempotency store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds as many live claims as it may, none of which can be evicted.
    #[error("idempotency store is full: {capacity} events in flight")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// The store (or inbox) could not be reached when it was set up: a wrong address, a server
    /// that is down, or one that did not answer within the timeout.
    #[error("cannot reach {store} at {target}: {source}")]
    Connect {
        /// The kind of store: `Redis`, `PostgreSQL`, `SQLite`.
        store: &'static str,
        /// Where it was looked for, without any password.
        target: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store was configured wrongly (a bad table name, say).
    #[error("invalid idempotency store configuration: {0}")]
    InvalidConfig(String),
    /// The token does not hold the key's claim any more (its lease ran out and another
    /// caller claimed it, or it was completed or released already).
    #[error("the claim on `{key}` is no longer held by this token")]
    ClaimLost {
        /// The key.
        key: String,
    },
}
