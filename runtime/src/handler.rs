//! The contract between `#[webhook_handlers]` and the `Receiver`.

use std::fmt;
use std::future::Future;

use serde_json::value::RawValue;

use crate::event::{EventMeta, UnknownEvent};
use crate::inbox::Rule;
use crate::provider::Provider;

/// A set of typed event handlers: what `#[webhook_handlers]` implements for an impl
/// block. `Receiver` verifies a delivery, parses it with [`parse`](Self::parse),
/// claims it and hands it to [`dispatch`](Self::dispatch).
///
/// Implementing it by hand is possible, but the attribute writes the same code with
/// its checks.
pub trait WebhookHandlers: Send + Sync + 'static {
    /// The signature scheme deliveries are verified with.
    type Provider: Provider;

    /// The typed event enum: one variant per handled event type.
    type Event: Send + 'static;

    /// Every event type a handler names.
    const EVENT_TYPES: &'static [&'static str];

    /// What the handlers declared about ordering and limits (`key = ..`,
    /// `concurrency = ..`), one rule per event type that declared any. A receiver
    /// with rules needs an inbox that [orders](crate::inbox::Inbox::orders).
    const RULES: &'static [Rule] = &[];

    /// The rule of `event_type`, if its handler declared one.
    fn rule(event_type: &str) -> Option<&'static Rule> {
        Self::RULES.iter().find(|rule| rule.event_type == event_type)
    }

    /// Parses an event's data into the handler's type. [`Parsed::Ignored`] when no
    /// handler (and no fallback) takes the type; an error when the data does not fit
    /// the handler's type.
    fn parse(meta: &EventMeta, data: &RawValue) -> Result<Parsed<Self::Event>, serde_json::Error>;

    /// Whether a handler (or a fallback) takes the event, from its type alone, before
    /// its data is read. The receiver claims only such events, and parses the data only
    /// of an event it claimed: a duplicate's data is never read.
    ///
    /// The default takes every event, which is always correct: an event that
    /// [`parse`](Self::parse) then ignores is released unprocessed. The code
    /// `#[webhook_handlers]` generates answers exactly, so ignored types cost no store
    /// call.
    fn handles(meta: &EventMeta) -> bool {
        let _ = meta;
        true
    }

    /// Runs the handler for a parsed event.
    fn dispatch<'a>(
        &'a self,
        event: Self::Event,
        meta: &'a EventMeta,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

/// Handlers shared with the rest of the application are handlers too.
impl<H: WebhookHandlers> WebhookHandlers for std::sync::Arc<H> {
    type Provider = H::Provider;
    type Event = H::Event;
    const EVENT_TYPES: &'static [&'static str] = H::EVENT_TYPES;
    const RULES: &'static [Rule] = H::RULES;

    fn parse(meta: &EventMeta, data: &RawValue) -> Result<Parsed<Self::Event>, serde_json::Error> {
        H::parse(meta, data)
    }

    fn handles(meta: &EventMeta) -> bool {
        H::handles(meta)
    }

    fn dispatch<'a>(
        &'a self,
        event: Self::Event,
        meta: &'a EventMeta,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a {
        (**self).dispatch(event, meta)
    }
}

/// The result of [`WebhookHandlers::parse`].
#[derive(Debug)]
pub enum Parsed<E> {
    /// A handler takes this event.
    Handled(E),
    /// No handler takes this type: acknowledge and move on.
    Ignored,
}

/// A handler's failure: the event is released and the provider's retry runs it
/// again (inline mode), or it is retried on the receiver's schedule (inbox mode).
/// [`HandlerError::permanent`] says that no retry can help: in inbox mode the
/// delivery goes to the dead letters at once.
///
/// Handlers may return `Result<(), E>` for any `E: Display` (`anyhow::Error`,
/// `Box<dyn Error>`, your own error enum, `String`); `HandlerError` is there for
/// those who want one ready-made, and `?` converts any standard error into it.
///
/// ```
/// use hookroute_runtime::HandlerError;
///
/// fn check(qty: u32) -> Result<(), HandlerError> {
///     if qty == 0 {
///         return Err(HandlerError::msg("quantity must be positive"));
///     }
///     let _n: u32 = "12".parse()?;
///     Ok(())
/// }
/// assert_eq!(check(0).unwrap_err().to_string(), "quantity must be positive");
/// ```
pub struct HandlerError {
    message: String,
    permanent: bool,
    releases_key: bool,
}

impl HandlerError {
    /// A failure with a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self { message: message.to_string(), permanent: false, releases_key: false }
    }

    /// A failure no retry can mend (the event refers to something that will never
    /// exist, say). In inbox mode the delivery is dead-lettered at once, with this
    /// message; in inline mode it is answered 500 like any failure, since only the
    /// provider can retry.
    ///
    /// ```
    /// use hookroute_runtime::HandlerError;
    ///
    /// let error = HandlerError::permanent("unknown customer cus_9");
    /// assert!(error.is_permanent());
    /// assert!(!HandlerError::msg("database busy").is_permanent());
    /// ```
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self { message: message.to_string(), permanent: true, releases_key: false }
    }

    /// Whether no retry can help.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// In inbox mode, for a handler with an ordering key: the retry does not hold the
    /// key. By default a delivery waiting for its retry holds its key, and the key's
    /// later events wait behind it; with this, they run while it waits, and it takes
    /// its place in the key's order again once its retry is due.
    ///
    /// ```
    /// use hookroute_runtime::HandlerError;
    ///
    /// let error = HandlerError::msg("the CRM is down").releasing_key();
    /// assert!(error.releases_key());
    /// ```
    #[must_use]
    pub fn releasing_key(mut self) -> Self {
        self.releases_key = true;
        self
    }

    /// Whether the retry lets the key's later events run (see
    /// [`releasing_key`](Self::releasing_key)).
    pub fn releases_key(&self) -> bool {
        self.releases_key
    }

    /// The failure's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_tuple("HandlerError");
        debug.field(&self.message);
        if self.permanent {
            debug.field(&"permanent");
        }
        if self.releases_key {
            debug.field(&"releasing_key");
        }
        debug.finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        // Keep the whole chain of causes in the message.
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self { message, permanent: false, releases_key: false }
    }
}

/// What a handler may return: `Result<(), E>` with an error that can be shown.
#[diagnostic::on_unimplemented(
    message = "a webhook handler must return `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "this return type is not `Result<(), E>`",
    note = "return `Ok(())` when the event was handled and `Err(..)` to have the provider retry it; \
            `hookroute::HandlerError`, `anyhow::Error` or your own error type all work"
)]
pub trait HandlerOutput {
    /// Turns the handler's result into the receiver's.
    fn into_result(self) -> Result<(), HandlerError>;
}

impl<E: fmt::Display + 'static> HandlerOutput for Result<(), E> {
    fn into_result(self) -> Result<(), HandlerError> {
        self.map_err(|error| {
            // A `HandlerError` is passed on as it is, so that `permanent` survives.
            let mut slot = Some(error);
            if let Some(handler_error) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<HandlerError>>() {
                if let Some(error) = handler_error.take() {
                    return error;
                }
            }
            // `{:#}` shows the chain of causes for error types that print it that way (anyhow).
            slot.map_or_else(
                || HandlerError::msg("handler failed"),
                |error| HandlerError::msg(format_args!("{error:#}")),
            )
        })
    }
}

/// A type a handler can take as its event data: anything `serde` can deserialize.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be webhook event data: it does not implement `serde::Deserialize`",
    label = "this type does not implement `serde::Deserialize`",
    note = "add `#[derive(serde::Deserialize)]` to `{Self}`, or take `serde_json::Value`"
)]
pub trait EventData: serde::de::DeserializeOwned + Send + 'static {}

impl<T: serde::de::DeserializeOwned + Send + 'static> EventData for T {}

/// Marks `EventMeta`, the only type a handler's second parameter may borrow.
#[diagnostic::on_unimplemented(
    message = "a handler's second parameter must be `&hookroute::EventMeta`, not `&{Self}`",
    label = "expected `EventMeta` here",
    note = "handlers take `(&self, data: T)` or `(&self, data: T, meta: &hookroute::EventMeta)`"
)]
pub trait IsEventMeta {
    /// The meta, as the handler's parameter type.
    fn from_meta(meta: &EventMeta) -> &Self;
}

impl IsEventMeta for EventMeta {
    fn from_meta(meta: &EventMeta) -> &Self {
        meta
    }
}

/// Marks `UnknownEvent`, the only type a `#[fallback]` handler may take.
#[diagnostic::on_unimplemented(
    message = "a `#[fallback]` handler takes `hookroute::UnknownEvent`, not `{Self}`",
    label = "expected `UnknownEvent` here",
    note = "a fallback handler is `async fn(&self, event: hookroute::UnknownEvent) -> Result<(), E>`"
)]
pub trait IsUnknownEvent {
    /// The event, as the fallback's parameter type.
    fn from_unknown(event: UnknownEvent) -> Self;
}

impl IsUnknownEvent for UnknownEvent {
    fn from_unknown(event: UnknownEvent) -> Self {
        event
    }
}
