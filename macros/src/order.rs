//! The ordering arguments of `#[event(..)]`: `key = "data.object.customer"`,
//! `in_flight = 1`, `concurrency = 2`, `rate = "10/s"`, `stale = "skip"`. A leaf: it
//! reads tokens and writes the runtime's `Rule`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::ParseStream;
use syn::{Ident, LitInt, LitStr};

/// What one handler declared, checked.
#[derive(Default)]
pub(crate) struct Ordering {
    key: Option<(Vec<String>, Span)>,
    in_flight: Option<u32>,
    concurrency: Option<u32>,
    interval_ms: Option<u64>,
    skip_stale: bool,
}

/// The names `#[event(..)]` takes after the event type.
pub(crate) const NAMES: &str = "`unlisted`, `key = \"data.object.customer\"`, `in_flight = 1`, `concurrency = 2`, \
                                `rate = \"10/s\"` and `stale = \"skip\"`";

impl Ordering {
    /// Whether anything was declared.
    pub(crate) fn is_empty(&self) -> bool {
        self.key.is_none() && self.concurrency.is_none()
    }

    /// Reads `name = value` for one of the ordering names; `Ok(false)` for another name.
    pub(crate) fn parse_one(&mut self, name: &Ident, input: ParseStream<'_>) -> syn::Result<bool> {
        let text = name.to_string();
        if !matches!(text.as_str(), "key" | "in_flight" | "concurrency" | "rate" | "stale") {
            return Ok(false);
        }
        input.parse::<syn::Token![=]>()?;
        match text.as_str() {
            "key" => {
                let lit: LitStr = input.parse()?;
                self.key = Some((key_path(&lit)?, lit.span()));
            }
            "in_flight" => self.in_flight = Some(positive(&input.parse()?, "in_flight")?),
            "concurrency" => self.concurrency = Some(positive(&input.parse()?, "concurrency")?),
            "rate" => self.interval_ms = Some(rate(&input.parse()?)?),
            _ => {
                let lit: LitStr = input.parse()?;
                self.skip_stale = match lit.value().as_str() {
                    "skip" => true,
                    "run" => false,
                    other => {
                        return Err(syn::Error::new(
                            lit.span(),
                            format!("`stale = \"{other}\"`: write `stale = \"skip\"` (acknowledge a superseded event without running it) or `stale = \"run\"` (the default)"),
                        ))
                    }
                };
            }
        }
        Ok(true)
    }

    /// Checks what needs a key has one; `span` is the event type's.
    pub(crate) fn check(&self, span: Span) -> syn::Result<()> {
        if self.key.is_none() {
            let needs = [
                (self.in_flight.is_some(), "`in_flight` (deliveries of one key at once)"),
                (self.interval_ms.is_some(), "`rate` (starts per key)"),
                (self.skip_stale, "`stale` (newer events of one key)"),
            ];
            if let Some((_, what)) = needs.iter().find(|(set, _)| *set) {
                return Err(syn::Error::new(
                    span,
                    format!("{what} needs an ordering key: add `key = \"data.object.customer\"` (the path of the key in the JSON body)"),
                ));
            }
        }
        Ok(())
    }

    /// The runtime's `Rule` for `event_type`, through the facade path `p`.
    pub(crate) fn rule(&self, p: &TokenStream, event_type: &LitStr) -> TokenStream {
        let steps = self.key.iter().flat_map(|(steps, _)| steps.iter());
        let in_flight = self.in_flight.unwrap_or(1);
        let option =
            |value: Option<TokenStream>| value.map_or_else(|| quote!(#p::None), |value| quote!(#p::Some(#value)));
        let concurrency = option(self.concurrency.map(|n| quote!(#n)));
        let interval = option(self.interval_ms.map(|n| quote!(#n)));
        let skip_stale = self.skip_stale;
        quote! {
            #p::Rule {
                event_type: #event_type,
                key: &[#(#steps),*],
                limits: #p::Limits { in_flight: #in_flight, type_concurrency: #concurrency, key_interval_ms: #interval },
                skip_stale: #skip_stale,
            }
        }
    }
}

/// `data.object.customer`: names (or array indexes) joined by dots.
fn key_path(lit: &LitStr) -> syn::Result<Vec<String>> {
    let path = lit.value();
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let steps: Vec<String> = path.split('.').map(str::to_owned).collect();
    if path.is_empty() || steps.iter().any(|step| step.is_empty() || !step.chars().all(plain)) {
        return Err(syn::Error::new(
            lit.span(),
            format!("malformed key path `{path}`: write the path of the ordering key in the JSON body as names joined by dots, `data.object.customer` (letters, digits, `_` and `-`; an array index is a number, `items.0.id`)"),
        ));
    }
    Ok(steps)
}

fn positive(lit: &LitInt, name: &str) -> syn::Result<u32> {
    match lit.base10_parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(syn::Error::new(lit.span(), format!("`{name}` is a whole number of at least 1: `{name} = 2`"))),
    }
}

/// `"10/s"`, `"600/min"`, `"1/h"`: the least time between two starts, in ms.
fn rate(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let wrong = || {
        syn::Error::new(
            lit.span(),
            format!("malformed rate `{text}`: write starts per key per second, minute or hour, `\"10/s\"`, `\"600/min\"` or `\"1/h\"`"),
        )
    };
    let (count, per) = text.split_once('/').ok_or_else(wrong)?;
    let count: u64 = count.trim().parse().ok().filter(|&n| n > 0).ok_or_else(wrong)?;
    let per_ms: u64 = match per.trim() {
        "s" | "sec" | "second" => 1_000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        _ => return Err(wrong()),
    };
    if count > per_ms {
        return Err(syn::Error::new(lit.span(), format!("rate `{text}` is more than one start per millisecond")));
    }
    Ok(per_ms / count)
}
