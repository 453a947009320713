//! Checking each handler's signature and the handlers as a whole.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::{format_ident, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, LitStr, ReceiverKind, ReturnType, Safety, Signature, Type};

use crate::ctxt::Errors;
use crate::model::{Fallback, Handler, HandlerSet, ReturnSpan};
use crate::parse::{Mark, Marked};

/// The variant that carries events no handler names.
pub(crate) const UNKNOWN_VARIANT: &str = "Unknown";

/// Checks every marked method and returns the handler set; every mistake goes to
/// `errors`.
pub(crate) fn handler_set(marked: Vec<Marked>, block_span: Span, errors: &mut Errors) -> HandlerSet {
    let mut handlers: Vec<Handler> = Vec::new();
    let mut fallback: Option<Fallback> = None;
    let mut first_fallback: Option<Ident> = None;
    // Each name (and variant) with the `#[cfg]`s of the handlers that took it: two
    // handlers of one type are alternatives only when both carry different `#[cfg]`s.
    let mut by_event: HashMap<String, Vec<(String, Span)>> = HashMap::new();
    let mut by_variant: HashMap<String, Vec<(String, LitStr)>> = HashMap::new();
    let clash = |taken: &str, cfg: &str| taken.is_empty() || cfg.is_empty() || taken == cfg;

    for Marked { mark, sig, cfgs } in marked {
        let cfg_key = cfgs.iter().map(|attr| attr.to_token_stream().to_string()).collect::<Vec<_>>().join(" ");
        let checked = common(&sig, errors);
        match mark {
            Mark::Event(event, _, ordering) => {
                let variant = variant_name(&event, errors);
                let params = checked.and_then(|output| event_params(&sig, errors).map(|params| (output, params)));
                let taken = by_event.entry(event.value()).or_default();
                if let Some((_, first)) = taken.iter().find(|(taken, _)| clash(taken, &cfg_key)) {
                    let mut error = syn::Error::new(
                        event.span(),
                        format!("two handlers for event type `{}`: each event type has one handler", event.value()),
                    );
                    error
                        .combine(syn::Error::new(*first, format!("the first handler for `{}` is here", event.value())));
                    errors.push(error);
                    continue;
                }
                taken.push((cfg_key.clone(), event.span()));
                let Some(variant) = variant else { continue };
                let taken = by_variant.entry(variant.to_string()).or_default();
                if let Some((_, other)) = taken.iter().find(|(taken, _)| clash(taken, &cfg_key)) {
                    errors.at(
                        &event,
                        format!(
                            "event types `{}` and `{}` both map to the enum variant `{variant}`: rename one handler's \
                             event type, or handle both in one",
                            other.value(),
                            event.value(),
                        ),
                    );
                    continue;
                }
                taken.push((cfg_key, event.clone()));
                if let Some((output, (data_ty, meta_ty))) = params {
                    let method = sig.ident.clone();
                    handlers.push(Handler { event, variant, method, data_ty, meta_ty, output, cfgs, ordering });
                }
            }
            Mark::Fallback(span) => {
                if let Some(first) = &first_fallback {
                    let mut error = syn::Error::new(span, "two `#[fallback]` handlers: there can be one at most");
                    error.combine(syn::Error::new(first.span(), "the first `#[fallback]` handler is here"));
                    errors.push(error);
                    continue;
                }
                first_fallback = Some(sig.ident.clone());
                let event_ty = fallback_param(&sig, errors);
                if let (Some(output), Some(event_ty)) = (checked, event_ty) {
                    fallback = Some(Fallback { method: sig.ident.clone(), event_ty, output, cfgs });
                }
            }
        }
    }
    // Malformed helper attributes were reported already; "no handlers" would be noise.
    if by_event.is_empty() && first_fallback.is_none() && errors.len() == 0 {
        errors.at_span(
            block_span,
            "no handlers: mark a method `#[event(\"resource.created\")]` (and optionally one `#[fallback]`)",
        );
    }
    HandlerSet { handlers, fallback }
}

/// Checks what every handler shares: `async`, not generic, `&self`, a return type.
fn common(sig: &Signature, errors: &mut Errors) -> Option<ReturnSpan> {
    let before = errors.len();
    let name = &sig.ident;
    if let Some(constness) = &sig.constness {
        errors.at(constness, format!("handler `{name}` cannot be `const`"));
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        errors.at(unsafety, format!("handler `{name}` cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi, format!("handler `{name}` cannot have an `extern` ABI"));
    }
    if sig.asyncness.is_none() {
        errors.at(
            sig.fn_token,
            format!("handler `{name}` must be `async fn`: write `async fn {name}(&self, data: T) -> Result<(), E>`"),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.at(
            &sig.generics,
            format!("handler `{name}` cannot be generic: the event type decides which handler runs, so its data type must be concrete"),
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            match &receiver.kind {
                ReceiverKind::Reference(_, _, None) => {}
                ReceiverKind::Reference(_, _, Some(mutability)) => errors.at(
                    mutability,
                    format!("handler `{name}` must take `&self`, not `&mut self`: events are handled concurrently; keep mutable state behind a `Mutex` or an atomic"),
                ),
                ReceiverKind::Value => errors.at(
                    receiver,
                    format!("handler `{name}` must take `&self`, not `self` by value: the receiver keeps the handlers and calls them for every event"),
                ),
                _ => errors.at(receiver, format!("handler `{name}` must take `&self`, not a typed `self`")),
            }
        }
        _ => errors.at_span(
            sig.paren_token.span.join(),
            format!("handler `{name}` must take `&self` first: `async fn {name}(&self, data: T)`"),
        ),
    }
    if let ReturnType::Default = sig.output {
        errors.at_span(
            sig.paren_token.span.close(),
            format!("handler `{name}` must return `Result<(), E>`: add `-> Result<(), hookroute::HandlerError>` (or any error type that implements `Display`)"),
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(ReturnSpan(match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    }))
}

/// The typed parameters after `self`.
fn typed_params(sig: &Signature) -> Vec<&syn::PatType> {
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// `(data: T)` or `(data: T, meta: &EventMeta)`: the data type and the meta referent.
fn event_params(sig: &Signature, errors: &mut Errors) -> Option<(Type, Option<Type>)> {
    let name = &sig.ident;
    let params = typed_params(sig);
    match params.as_slice() {
        [] => {
            errors.at_span(
                sig.paren_token.span.join(),
                format!("handler `{name}` takes no event data: write `async fn {name}(&self, data: T)` where `T: Deserialize`"),
            );
            None
        }
        [data] => Some((data_type(name, data, errors)?, None)),
        [data, meta] => {
            let data_ty = data_type(name, data, errors);
            let meta_ty = meta_type(name, meta, errors);
            Some((data_ty?, Some(meta_ty?)))
        }
        [_, _, extra @ ..] => {
            for param in extra {
                errors.at(
                    param,
                    format!("handler `{name}` has too many parameters: it takes `(&self, data: T)` or `(&self, data: T, meta: &hookroute::EventMeta)`"),
                );
            }
            None
        }
    }
}

fn data_type(name: &Ident, param: &syn::PatType, errors: &mut Errors) -> Option<Type> {
    match &*param.ty {
        Type::Reference(reference) => {
            errors.at(
                reference,
                format!("handler `{name}` must take its event data by value: the data is parsed for this call and handed over"),
            );
            None
        }
        Type::ImplTrait(_) | Type::Infer(_) => {
            errors.at(&param.ty, format!("handler `{name}` needs a concrete data type that implements `Deserialize`"));
            None
        }
        ty => Some(ty.clone()),
    }
}

fn meta_type(name: &Ident, param: &syn::PatType, errors: &mut Errors) -> Option<Type> {
    match &*param.ty {
        Type::Reference(reference) if reference.mutability.is_none() => Some((*reference.elem).clone()),
        ty => {
            errors.at(
                ty,
                format!("handler `{name}`'s second parameter must be `&hookroute::EventMeta`: the event's facts are lent to the handler"),
            );
            None
        }
    }
}

/// `(event: UnknownEvent)`: the fallback's one parameter.
fn fallback_param(sig: &Signature, errors: &mut Errors) -> Option<Type> {
    let name = &sig.ident;
    let usage =
        format!("a `#[fallback]` handler is `async fn {name}(&self, event: hookroute::UnknownEvent) -> Result<(), E>`");
    match typed_params(sig).as_slice() {
        [event] => Some((*event.ty).clone()),
        [] => {
            errors.at_span(sig.paren_token.span.join(), usage);
            None
        }
        [_, extra @ ..] => {
            for param in extra {
                errors.at(param, &usage);
            }
            None
        }
    }
}

/// `resource.created` → `ResourceCreated`; records an error for a malformed type.
fn variant_name(event: &LitStr, errors: &mut Errors) -> Option<Ident> {
    let value = event.value();
    let shape =
        "event types look like `resource.created`: letters, digits, `_` and `-`, in parts joined by `.`, `/` or `:`";
    if value.is_empty() {
        errors.at(event, format!("the event type is empty; {shape}"));
        return None;
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-/:".contains(*c))) {
        errors.at(event, format!("the event type `{value}` contains {bad:?}; {shape}"));
        return None;
    }
    let parts: Vec<&str> = value.split(['.', '/', ':']).collect();
    if parts.iter().any(|part| part.is_empty()) {
        errors.at(event, format!("the event type `{value}` has an empty part; {shape}"));
        return None;
    }
    let mut name = String::new();
    for word in parts.iter().flat_map(|part| part.split(['_', '-'])) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    if name.is_empty() {
        errors.at(event, format!("the event type `{value}` has no letters or digits; {shape}"));
        return None;
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "Event");
    }
    if name == UNKNOWN_VARIANT {
        errors.at(
            event,
            format!("the event type `{value}` maps to the variant `{UNKNOWN_VARIANT}`, which holds events no handler names; handle it with `#[fallback]`"),
        );
        return None;
    }
    Some(format_ident!("{}", name, span = event.span()))
}
