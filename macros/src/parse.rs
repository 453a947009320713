//! Reading the attribute's arguments and the handlers' helper attributes.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, ImplItem, ItemImpl, LitStr, Meta, Signature};

use crate::ctxt::{edit_distance, Errors};
use crate::known::PROVIDERS;
use crate::model::Args;

/// The keys the attribute takes.
const KEYS: &str = "`provider = \"groq\"` (or `provider = path::To::Scheme`) and `event_enum = Name`";

/// Parses `provider = "groq", event_enum = pub Name`.
pub(crate) fn args(tokens: TokenStream) -> syn::Result<Args> {
    let span = if tokens.is_empty() { Span::call_site() } else { tokens.span() };
    let mut provider = None;
    let mut known = None;
    let mut event_enum = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("provider") {
            let value = meta.value()?;
            if value.peek(LitStr) {
                let lit: LitStr = value.parse()?;
                known = crate::known::for_provider(&lit.value());
                provider = Some(provider_path(&lit)?);
            } else {
                // A scheme of the user's own: any type implementing `Provider`.
                let path: syn::Path = value.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected a built-in provider's name, `provider = \"groq\"`, or the path of a type implementing `hookroute::Provider`, `provider = my::Scheme`",
                    )
                })?;
                if let Some(ident) = path.get_ident() {
                    let name = ident.to_string();
                    if PROVIDERS.iter().any(|known| known.name == name) {
                        return Err(syn::Error::new(
                            ident.span(),
                            format!("a built-in provider is named by a string: `provider = \"{name}\"`"),
                        ));
                    }
                }
                provider = Some(quote!(#path));
            }
            Ok(())
        } else if meta.path.is_ident("event_enum") {
            let value = meta.value()?;
            let vis = value.parse()?;
            let name = value.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected the event enum's name: `event_enum = AppEvent` or `event_enum = pub AppEvent`",
                )
            })?;
            event_enum = Some((vis, name));
            Ok(())
        } else {
            let path = &meta.path;
            let key = quote!(#path).to_string().replace(' ', "");
            Err(meta.error(format_args!("unknown key `{key}`: #[webhook_handlers] takes {KEYS}")))
        }
    });
    syn::parse::Parser::parse2(parser, tokens)?;
    let provider = provider.ok_or_else(|| {
        syn::Error::new(
            span,
            format!("missing provider: write `#[webhook_handlers(provider = \"groq\")]`; {}", known_list()),
        )
    })?;
    Ok(Args { provider, known, event_enum })
}

fn known_list() -> String {
    let names: Vec<String> = PROVIDERS.iter().map(|known| format!("`{}`", known.name)).collect();
    format!("known providers: {}", names.join(", "))
}

fn provider_path(lit: &LitStr) -> syn::Result<TokenStream> {
    let name = lit.value();
    if let Some(known) = PROVIDERS.iter().find(|known| known.name == name) {
        let ty = syn::Ident::new(known.ty, lit.span());
        return Ok(quote!(::hookroute::__private::#ty));
    }
    let mut message = format!("unknown provider `{name}`; {}", known_list());
    if let Some(close) = PROVIDERS.iter().find(|known| edit_distance(known.name, &name.to_lowercase()) <= 2) {
        message = format!("{message}\nhelp: did you mean `{}`?", close.name);
    }
    Err(syn::Error::new(lit.span(), message))
}

/// What marks a method as a handler.
pub(crate) enum Mark {
    /// `#[event("resource.created")]`, whether it says `unlisted` (not checked
    /// against the provider's known event types), and its ordering and limits.
    Event(LitStr, bool, crate::order::Ordering),
    /// `#[fallback]`, with the attribute's span.
    Fallback(Span),
}

/// A method carrying a helper attribute, with its signature.
pub(crate) struct Marked {
    pub(crate) mark: Mark,
    pub(crate) sig: Signature,
    /// The method's `#[cfg(..)]` attributes.
    pub(crate) cfgs: Vec<Attribute>,
}

/// Takes the `#[event]` and `#[fallback]` attributes off the block's methods, so the
/// block can be emitted as it is, and returns the marked methods.
pub(crate) fn take_marks(block: &mut ItemImpl, errors: &mut Errors) -> Vec<Marked> {
    let mut marked = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        let mut marks = Vec::new();
        method.attrs.retain(|attr| match helper(attr, errors) {
            Some(mark) => {
                marks.push((mark, attr.clone()));
                false
            }
            None => !is_helper(attr),
        });
        let mut marks = marks.into_iter();
        if let Some((mark, _)) = marks.next() {
            let cfgs = method.attrs.iter().filter(|attr| attr.path().is_ident("cfg")).cloned().collect();
            marked.push(Marked { mark, sig: method.sig.clone(), cfgs });
            // Handlers must be `async`, so a handler that never awaits is no mistake.
            method.attrs.push(syn::parse_quote!(#[allow(clippy::unused_async)]));
        }
        for (_, attr) in marks {
            errors.at(attr, "a method handles one event type: remove this second attribute, or write a second handler");
        }
    }
    marked
}

fn is_helper(attr: &Attribute) -> bool {
    attr.path().is_ident("event") || attr.path().is_ident("fallback")
}

/// Reads one helper attribute; `None` for other attributes and for malformed helpers
/// (whose error is recorded).
fn helper(attr: &Attribute, errors: &mut Errors) -> Option<Mark> {
    const USAGE: &str = "expected the event type as a string: `#[event(\"resource.created\")]`";
    if attr.path().is_ident("fallback") {
        if let Meta::Path(path) = &attr.meta {
            return Some(Mark::Fallback(path.span()));
        }
        errors.at(&attr.meta, "`#[fallback]` takes no arguments");
        return None;
    }
    if !attr.path().is_ident("event") {
        return None;
    }
    match &attr.meta {
        Meta::List(list) => match list.parse_args_with(event_args) {
            Ok((event, unlisted, ordering)) => return Some(Mark::Event(event, unlisted, ordering)),
            Err(error) if !error.to_string().starts_with("expected string literal") => errors.push(error),
            Err(_) => errors.at(&list.tokens, USAGE),
        },
        Meta::Path(path) => errors.at(path, USAGE),
        Meta::NameValue(name_value) => errors.at(&name_value.value, USAGE),
    }
    None
}

/// `"resource.created"`, then any of `unlisted`, `key = ".."`, `in_flight = N`,
/// `concurrency = N`, `rate = ".."`, `stale = ".."`.
fn event_args(input: syn::parse::ParseStream<'_>) -> syn::Result<(LitStr, bool, crate::order::Ordering)> {
    let event: LitStr = input.parse()?;
    let (mut unlisted, mut ordering) = (false, crate::order::Ordering::default());
    let after = || format!("after the event type, `#[event]` takes {}", crate::order::NAMES);
    while !input.is_empty() {
        input.parse::<syn::Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let word: syn::Ident = input.parse().map_err(|error| syn::Error::new(error.span(), after()))?;
        if word == "unlisted" {
            unlisted = true;
        } else if !ordering.parse_one(&word, input)? {
            return Err(syn::Error::new(word.span(), format!("unknown `{word}`: {}", after())));
        }
    }
    ordering.check(event.span())?;
    Ok((event, unlisted, ordering))
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("groq", "groq"), 0);
        assert_eq!(edit_distance("groq", "grok"), 1);
        assert_eq!(edit_distance("coreweave", "corewave"), 1);
        assert_eq!(edit_distance("groq", "stripe"), 5);
    }
}
