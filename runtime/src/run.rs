//! Running one handler: the path the receiver (inline mode) and the workers (inbox
//! mode) share. The dispatch into the user's method, its panic caught, in its
//! `webhook.handler` span, within its deadline, timed into the metrics, and what it
//! came to as one value each caller maps to its own answer.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt as _;
use tracing::Instrument as _;

use crate::event::EventMeta;
use crate::future::{panic_message, with_deadline};
use crate::handler::{HandlerError, WebhookHandlers};
use crate::observe;

/// What running a handler came to.
pub(crate) enum Ran {
    /// It returned `Ok`.
    Done,
    /// It returned this error.
    Failed(HandlerError),
    /// It panicked, with this message.
    Panicked(String),
    /// It ran past its time limit and was dropped.
    TimedOut(Duration),
}

impl Ran {
    /// `ok`, `error`, `panic` or `timeout`: the `hookroute.handler.result` of metrics.
    fn as_str(&self) -> &'static str {
        match self {
            Self::Done => "ok",
            Self::Failed(_) => "error",
            Self::Panicked(_) => "panic",
            Self::TimedOut(_) => "timeout",
        }
    }
}

/// The span a handler runs in, inside its delivery's (inline) or its attempt's (inbox).
pub(crate) fn handler_span(meta: &EventMeta, attempt: Option<u32>) -> tracing::Span {
    tracing::info_span!("webhook.handler", webhook.event.type = meta.event_type(), webhook.attempt = attempt)
}

/// Runs the handler for `event`, for at most `limit` (none: as long as it takes).
/// `attempt` is the inbox attempt, if any, for its span.
pub(crate) async fn run_handler<H: WebhookHandlers>(
    handlers: &H,
    event: H::Event,
    meta: &EventMeta,
    attempt: Option<u32>,
    limit: Option<Duration>,
) -> Ran {
    let handler =
        AssertUnwindSafe(handlers.dispatch(event, meta)).catch_unwind().instrument(handler_span(meta, attempt));
    let started = observe::Started::now();
    let ran = match limit {
        Some(limit) => with_deadline(limit, handler).await.map_err(|_elapsed| limit),
        None => Ok(handler.await),
    };
    let ran = match ran {
        Ok(Ok(Ok(()))) => Ran::Done,
        Ok(Ok(Err(error))) => Ran::Failed(error),
        Ok(Err(panic)) => Ran::Panicked(panic_message(panic.as_ref())),
        Err(limit) => Ran::TimedOut(limit),
    };
    observe::handler::<H>(meta.event_type(), ran.as_str(), started);
    ran
}
