//! The `#[webhook_handlers]` attribute of [hookroute](https://docs.rs/hookroute).
//!
//! Use it through the `hookroute` crate, whose docs show it at work. It reads an
//! impl block (`parse`), checks it (`validate`), and writes the event enum, the
//! dispatch and the `WebhookHandlers` impl (`expand`).

#![warn(clippy::unwrap_used)]

mod expand;
mod known;
mod model;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns an impl block of `#[event("type")]` handlers into a webhook handler set.
///
/// See the `hookroute` crate for the whole story.
#[proc_macro_attribute]
pub fn webhook_handlers(args: TokenStream, item: TokenStream) -> TokenStream {
    let output = expand::webhook_handlers(args.into(), &item.into());
    if std::env::var_os("HOOKROUTE_MACROS_DEBUG").is_some() {
        eprintln!("{output}");
    }
    output.into()
}
