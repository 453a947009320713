//! What an inbox operation fails with.

use crate::store::error::StoreError;

/// Why an inbox operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// The inbox could not be reached or failed; the receiver answers 503 and the
    /// provider sends the delivery again.
    #[error("inbox unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The inbox could not be reached when it was set up: a wrong address, a server
    /// that is down, or one that did not answer within the timeout.
    #[error("cannot reach the {backend} inbox at {target}: {source}")]
    Connect {
        /// The kind of server: `Redis`, `PostgreSQL`, `SQLite`.
        backend: &'static str,
        /// Where it was looked for, without any password.
        target: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The inbox was configured wrongly (a bad table name, a URL of the wrong kind,
    /// one that does not exist for an operator's tool).
    #[error("invalid inbox configuration: {0}")]
    InvalidConfig(String),
    /// The inbox cannot do what was asked (a backend without that operation).
    #[error("the {backend} inbox cannot {what}")]
    Unsupported {
        /// The backend's name (`Inbox::backend`).
        backend: &'static str,
        /// What it cannot do: `pause an event type`.
        what: &'static str,
    },
    /// The lease does not hold the delivery any more (it ran out and another worker
    /// took the delivery, or it was settled already).
    #[error("the lease on `{key}` is no longer held")]
    ClaimLost {
        /// The delivery's key.
        key: String,
    },
}

/// The drivers' layer (`backend/`) speaks in store errors; an inbox says them as its own.
impl From<StoreError> for InboxError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Connect { store, target, source } => Self::Connect { backend: store, target, source },
            StoreError::InvalidConfig(message) => Self::InvalidConfig(message),
            StoreError::ClaimLost { key } => Self::ClaimLost { key },
            StoreError::Unavailable(source) => Self::Unavailable(source),
            full @ StoreError::Full { .. } => Self::Unavailable(Box::new(full)),
        }
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
impl crate::backend::DriverError for InboxError {
    fn into_cause(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        match self {
            Self::Unavailable(source) => Ok(source),
            Self::InvalidConfig(_) => Err(self),
            other => Ok(Box::new(other)),
        }
    }
}
