//! The `#[webhook_handlers]` attribute of [hookroute](https://docs.rs/hookroute).
//!
//! Use it through the `hookroute` crate, whose docs show it at work. It reads an
//! impl block (`parse`), checks it (`validate`), and writes the event enum, the
//! dispatch and the `WebhookHandlers` impl (`expand`).

#![warn(clippy::unwrap_used)]

mod ctxt;
mod expand;
mod known;
mod model;
mod order;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns an impl block of `#[event("type")]` handlers into a webhook handler set.
///
/// Use it as `hookroute::webhook_handlers`, whose page is the attribute's full
/// reference: keys, handler forms, what is generated, and what mistakes say.
#[proc_macro_attribute]
pub fn webhook_handlers(args: TokenStream, item: TokenStream) -> TokenStream {
    let output = expand::webhook_handlers(args.into(), &item.into());
    if std::env::var_os("HOOKROUTE_MACROS_DEBUG").is_some() {
        eprintln!("{output}");
    }
    output.into()
}

/// `&[(name, has_catalog)]` for every provider the attribute knows by name, so a test
/// can hold it against the runtime's list. Not for users.
#[doc(hidden)]
#[proc_macro]
pub fn __built_in_providers(_: TokenStream) -> TokenStream {
    let rows = known::PROVIDERS.iter().map(|provider| {
        let (name, catalog) = (provider.name, provider.known.is_some());
        quote::quote!((#name, #catalog))
    });
    quote::quote!(&[#(#rows),*]).into()
}
