//! What a delivery becomes: acknowledged ([`Delivered`]) or rejected ([`Rejection`]),
//! as an [`Outcome`] with the HTTP status and JSON body that say so.

use std::borrow::Cow;
use std::time::Duration;

use http::StatusCode;

use crate::event::EventMeta;
use crate::provider::{EnvelopeError, VerifyError};
use crate::store::StoreError;

/// The result of receiving one delivery: acknowledged or rejected, with the HTTP
/// status and JSON body that say so.
#[derive(Debug)]
#[must_use]
pub struct Outcome(pub(crate) Result<Delivered, Rejection>);

// Moved from the delivery to its report and its answer: kept to a few vector moves, as
// `EventMeta` is.
const _: () = assert!(std::mem::size_of::<Outcome>() <= 128);

impl Outcome {
    /// Wraps a result, for adapters that reject before the receiver runs.
    pub fn new(result: Result<Delivered, Rejection>) -> Self {
        Self(result)
    }

    /// The HTTP status: 202 when queued in the inbox, 200 when otherwise
    /// acknowledged, else the rejection's.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            Ok(delivered) if delivered.kind == DeliveredKind::Queued => StatusCode::ACCEPTED,
            Ok(_) => StatusCode::OK,
            Err(rejection) => rejection.status(),
        }
    }

    /// The JSON body: `{"status":"processed"}` (or `queued`, `duplicate`, `ignored`) when
    /// acknowledged, a fixed text that costs no allocation; `{"challenge":".."}` for a
    /// provider's check of the endpoint; `{"error":".."}` otherwise.
    /// Never holds a secret or a handler's error text.
    pub fn body(&self) -> Cow<'static, str> {
        match &self.0 {
            Ok(delivered) => Cow::Borrowed(match delivered.kind {
                DeliveredKind::Processed => r#"{"status":"processed"}"#,
                DeliveredKind::Queued => r#"{"status":"queued"}"#,
                DeliveredKind::Duplicate => r#"{"status":"duplicate"}"#,
                DeliveredKind::Ignored => r#"{"status":"ignored"}"#,
                DeliveredKind::Challenge => {
                    let challenge = delivered.challenge.as_deref().unwrap_or_default();
                    // A string: serializing cannot fail.
                    let challenge = serde_json::to_string(challenge).unwrap_or_default();
                    return Cow::Owned(format!(r#"{{"challenge":{challenge}}}"#));
                }
            }),
            Err(rejection) => {
                // A string: serializing cannot fail.
                let error = serde_json::to_string(&rejection.public_message()).unwrap_or_default();
                Cow::Owned(format!(r#"{{"error":{error}}}"#))
            }
        }
    }

    /// The acknowledged delivery, if it was one.
    pub fn delivered(&self) -> Option<&Delivered> {
        self.0.as_ref().ok()
    }

    /// The rejection, if it was one.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.0.as_ref().err()
    }

    /// The outcome as a `Result`.
    pub fn into_result(self) -> Result<Delivered, Rejection> {
        self.0
    }

    /// `processed`, `queued`, `duplicate`, `ignored`, or the rejection's
    /// [`kind`](Rejection::kind): the `hookroute.outcome` of metrics and spans.
    pub fn as_str(&self) -> &'static str {
        match &self.0 {
            Ok(delivered) => delivered.kind.as_str(),
            Err(rejection) => rejection.kind(),
        }
    }

    /// The event's facts, when the delivery got as far as naming its event.
    pub(crate) fn meta(&self) -> Option<&EventMeta> {
        match &self.0 {
            Ok(delivered) => Some(&delivered.meta),
            Err(Rejection::Data { meta, .. } | Rejection::InFlight { meta } | Rejection::Handler { meta, .. }) => {
                Some(meta)
            }
            Err(_) => None,
        }
    }

    /// Logs the outcome, once, at the level it deserves: what an operator must act on
    /// (a failed handler, a store or inbox down) as an error; what a sender got wrong
    /// or the server refused to hold as a warning; the rest as information.
    pub(crate) fn log(&self) {
        match &self.0 {
            Ok(delivered) => tracing::info!(
                outcome = delivered.kind().as_str(),
                id = %delivered.meta().id().escape_debug(),
                event_type = delivered.meta().event_type(),
                "webhook delivered"
            ),
            Err(rejection @ (Rejection::Handler { .. } | Rejection::Store(_) | Rejection::Inbox(_))) => {
                tracing::error!(status = rejection.status().as_u16(), "{rejection}");
            }
            Err(rejection @ Rejection::InFlight { .. }) => {
                tracing::info!(status = rejection.status().as_u16(), "{rejection}");
            }
            Err(rejection) => tracing::warn!(status = rejection.status().as_u16(), "{rejection}"),
        }
    }
}

/// How a delivery was acknowledged (2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveredKind {
    /// A handler ran and succeeded.
    Processed,
    /// Inbox mode: stored durably; a worker will run the handler (202).
    Queued,
    /// The event was processed before; nothing ran.
    Duplicate,
    /// No handler takes this event type; nothing ran.
    Ignored,
    /// The provider checked the endpoint (Slack's `url_verification`): answered
    /// `{"challenge": ..}`; nothing ran, nothing was stored.
    Challenge,
}

impl DeliveredKind {
    /// `processed`, `queued`, `duplicate`, `ignored` or `challenge`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Queued => "queued",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Challenge => "challenge",
        }
    }
}

/// An acknowledged delivery.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub(crate) kind: DeliveredKind,
    pub(crate) meta: EventMeta,
    /// The challenge to echo, for [`DeliveredKind::Challenge`].
    pub(crate) challenge: Option<Box<str>>,
}

impl Delivered {
    pub(crate) fn new(kind: DeliveredKind, meta: EventMeta) -> Self {
        Self { kind, meta, challenge: None }
    }

    /// Processed, queued, duplicate, ignored, or a challenge answered.
    pub fn kind(&self) -> DeliveredKind {
        self.kind
    }

    /// The event's facts.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }
}

/// Why a handler did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerFailure {
    /// It returned an error, with its message.
    Error(String),
    /// It panicked, with the panic's message.
    Panic(String),
    /// It ran longer than the handler timeout.
    Timeout(Duration),
}

impl HandlerFailure {
    /// `error`, `panic` or `timeout`: the `hookroute.handler.result` of metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Error(_) => "error",
            Self::Panic(_) => "panic",
            Self::Timeout(_) => "timeout",
        }
    }
}

impl std::fmt::Display for HandlerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Error(message) => write!(f, "returned an error: {message}"),
            Self::Panic(message) => write!(f, "panicked: {message}"),
            Self::Timeout(after) => write!(f, "did not finish within {after:?}"),
        }
    }
}

/// Why a delivery was not acknowledged. [`status`](Self::status) says which HTTP
/// status tells the provider whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The body is over the size limit (413).
    #[error("body is larger than the {limit} byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The signature or timestamp did not verify (401).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The body is not a valid event envelope (400).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The event's data does not fit its handler's type (400).
    #[error("data of `{}` event `{}` does not fit its handler's type: {error}", meta.event_type(), meta.id())]
    Data {
        /// The event's facts.
        meta: Box<EventMeta>,
        /// What serde said.
        error: serde_json::Error,
    },
    /// Another worker is processing this event right now (409: retry later).
    #[error("event `{}` is being processed by another worker; retry later", meta.id())]
    InFlight {
        /// The event's facts.
        meta: Box<EventMeta>,
    },
    /// The handler failed; the event was released for the retry (500).
    #[error("handler for `{}` event `{}` {failure}; the event was released for a retry", meta.event_type(), meta.id())]
    Handler {
        /// The event's facts.
        meta: Box<EventMeta>,
        /// What went wrong.
        failure: HandlerFailure,
    },
    /// The idempotency store failed; nothing ran (503).
    #[error(transparent)]
    Store(StoreError),
    /// Inbox mode: the inbox could not store the delivery; nothing was acknowledged (503).
    #[error("could not store the delivery in the inbox: {0}")]
    Inbox(crate::inbox::InboxError),
    /// The body could not be read from the connection (400).
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The body did not arrive whole within the body timeout (408).
    #[error("the request body did not arrive within {after:?}")]
    BodyTimeout {
        /// The body timeout.
        after: Duration,
    },
    /// Inbox mode: the inbox holds as many deliveries waiting as it may; nothing was
    /// stored (503).
    #[error("the inbox holds {waiting} deliveries waiting, its limit is {limit}; retry later")]
    InboxFull {
        /// Deliveries queued or retrying when last counted.
        waiting: u64,
        /// The receiver's [`max_waiting`](crate::ReceiverBuilder::max_waiting).
        limit: u64,
    },
    /// The body arrived slower than the floor rate (408).
    #[error("the request body arrived slower than {rate} bytes a second")]
    BodyTooSlow {
        /// The floor rate, bytes a second.
        rate: u32,
    },
    /// Too many bytes of unverified bodies are held already; nothing was read (503).
    #[error("too many request bodies are being received at once; retry later")]
    Overloaded,
}

impl Rejection {
    /// A short fixed name for the cause, for metrics, spans and dashboards:
    /// `too_large`, `unverified`, `bad_envelope`, `bad_data`, `in_flight`,
    /// `handler_failed`, `store_unavailable`, `inbox_unavailable`, `body_read_failed`,
    /// `body_timeout`, `body_too_slow`, `inbox_full` or `overloaded`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Verify(_) => "unverified",
            Self::Envelope(_) => "bad_envelope",
            Self::Data { .. } => "bad_data",
            Self::InFlight { .. } => "in_flight",
            Self::Handler { .. } => "handler_failed",
            Self::Store(_) => "store_unavailable",
            Self::Inbox(_) => "inbox_unavailable",
            Self::BodyRead(_) => "body_read_failed",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::BodyTooSlow { .. } => "body_too_slow",
            Self::InboxFull { .. } => "inbox_full",
            Self::Overloaded => "overloaded",
        }
    }

    /// The HTTP status for this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::Envelope(_) | Self::Data { .. } | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::InFlight { .. } => StatusCode::CONFLICT,
            Self::Handler { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BodyTimeout { .. } | Self::BodyTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Store(_) | Self::Inbox(_) | Self::InboxFull { .. } | Self::Overloaded => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The message sent to the provider. Handler details stay in the server's log.
    fn public_message(&self) -> String {
        match self {
            Self::Handler { meta, .. } => {
                format!("handler for event `{}` failed; the event was released for a retry", meta.id())
            }
            Self::Store(_) => "idempotency store unavailable; nothing was processed, retry later".to_owned(),
            Self::Inbox(_) => "inbox unavailable; nothing was queued, retry later".to_owned(),
            other => other.to_string(),
        }
    }
}
