//! What the attribute reads from an impl block, once parsed and checked.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Ident, LitStr, Type, Visibility};

/// The attribute's arguments.
pub(crate) struct Args {
    /// The runtime type of the provider, as an absolute path.
    pub(crate) provider: TokenStream,
    /// The event types a built-in provider is known to send, if it publishes them.
    pub(crate) known: Option<&'static crate::known::Known>,
    /// `event_enum = pub Name`: the generated enum's visibility and name, if given.
    pub(crate) event_enum: Option<(Visibility, Ident)>,
}

/// One `#[event("...")]` handler.
pub(crate) struct Handler {
    /// The event type string.
    pub(crate) event: LitStr,
    /// The enum variant the type maps to.
    pub(crate) variant: Ident,
    /// The method's name.
    pub(crate) method: Ident,
    /// The data parameter's type.
    pub(crate) data_ty: Type,
    /// The type behind the `meta` reference, when the handler takes one.
    pub(crate) meta_ty: Option<Type>,
    /// The return type, checked against `HandlerOutput` at its span.
    pub(crate) output: ReturnSpan,
    /// The method's `#[cfg(..)]` attributes, repeated on everything generated for it.
    pub(crate) cfgs: Vec<Attribute>,
    /// Its ordering key and limits, if it declared any.
    pub(crate) ordering: crate::order::Ordering,
}

/// The `#[fallback]` handler for event types no handler names.
pub(crate) struct Fallback {
    pub(crate) method: Ident,
    pub(crate) event_ty: Type,
    pub(crate) output: ReturnSpan,
    /// The method's `#[cfg(..)]` attributes: when they are false, unknown types are
    /// ignored as if there were no fallback.
    pub(crate) cfgs: Vec<Attribute>,
}

/// Where a handler's return type is, for errors about it.
#[derive(Clone, Copy)]
pub(crate) struct ReturnSpan(pub(crate) Span);

/// The handlers of an impl block that passed their checks (all of them when it
/// compiles; the others are left out beside their errors).
#[derive(Default)]
pub(crate) struct HandlerSet {
    pub(crate) handlers: Vec<Handler>,
    pub(crate) fallback: Option<Fallback>,
}
