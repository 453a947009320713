//! Writing the event enum, the dispatch and the `WebhookHandlers` impl.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, GenericParam, Ident, Item, ItemImpl, Meta, Type, Visibility};

use crate::ctxt::Errors;
use crate::model::{Args, HandlerSet};
use crate::parse;
use crate::validate::{self, UNKNOWN_VARIANT};

/// The whole attribute: parse, validate, expand.
///
/// On error the impl block is still emitted (helper attributes removed) beside the
/// errors, and so is the expansion, from the handlers that passed their checks (with a
/// placeholder provider when the arguments failed), as tokio's and thiserror's macros
/// do: `Receiver::new(App)` and the rest of the crate keep compiling, so the one real
/// mistake is the only error shown, and rust-analyzer keeps working.
pub(crate) fn webhook_handlers(args: TokenStream, item: &TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse::args(args).map_err(|error| errors.push(error)).ok();

    let mut block = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Impl(block)) => block,
        Ok(other) => {
            errors.at_span(
                item_keyword_span(&other),
                "#[webhook_handlers] goes on an inherent impl block: `impl App { #[event(\"resource.created\")] async fn created(&self, data: T) ... }`",
            );
            // A struct or enum still gets an impl without handlers, so code that builds
            // a receiver of it shows no second error.
            let placeholder = placeholder_block(&other);
            let generated =
                placeholder.map(|block| generate(&args_or_placeholder(args), &block, &HandlerSet::default()));
            return with_errors(item, errors, generated);
        }
        Err(error) => {
            errors.push(error);
            return with_errors(item, errors, None::<TokenStream>);
        }
    };
    if let Some((trait_path, _)) = &block.trait_ {
        errors.at(
            trait_path,
            "#[webhook_handlers] goes on an inherent impl block (`impl App { .. }`), not on a trait impl",
        );
        // The helper attributes still come off (rustc knows no `#[event]`), and the type
        // gets an impl without handlers.
        parse::take_marks(&mut block, &mut Errors::default());
        let mut inherent = block.clone();
        inherent.trait_ = None;
        let generated = generate(&args_or_placeholder(args), &inherent, &HandlerSet::default());
        return with_errors(block, errors, generated);
    }

    let marked = parse::take_marks(&mut block, &mut errors);
    if let Some(known) = args.as_ref().and_then(|args| args.known) {
        for marked in &marked {
            if let parse::Mark::Event(event, false, _) = &marked.mark {
                known.check(event, &mut errors);
            }
        }
    }
    let set = validate::handler_set(marked, block.self_ty.span(), &mut errors);
    let generated = generate(&args_or_placeholder(args), &block, &set);
    with_errors(block, errors, generated)
}

/// The item as written, the errors found in it (if any), and what was generated.
fn with_errors(item: impl ToTokens, errors: Errors, generated: impl ToTokens) -> TokenStream {
    let error = errors.finish().map(|e| e.to_compile_error());
    quote!(#item #error #generated)
}

/// The arguments, or when they failed to parse, a stand-in that adds no error of its
/// own: the scheme with no name list, and the default enum name.
fn args_or_placeholder(args: Option<Args>) -> Args {
    args.unwrap_or_else(|| Args {
        provider: quote!(::hookroute::__private::StandardWebhooks),
        known: None,
        event_enum: None,
    })
}

/// `impl Type {}` for a struct or enum the attribute was put on by mistake.
fn placeholder_block(item: &Item) -> Option<ItemImpl> {
    let (ident, generics) = match item {
        Item::Struct(item) => (&item.ident, &item.generics),
        Item::Enum(item) => (&item.ident, &item.generics),
        _ => return None,
    };
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Some(syn::parse_quote!(impl #impl_generics #ident #ty_generics #where_clause {}))
}

/// The span of the keyword that says what an item is (`struct`, `fn`, `trait`, ...).
fn item_keyword_span(item: &Item) -> Span {
    match item {
        Item::Struct(item) => item.struct_token.span,
        Item::Enum(item) => item.enum_token.span,
        Item::Fn(item) => item.sig.fn_token.span,
        Item::Trait(item) => item.trait_token.span,
        Item::Mod(item) => item.mod_token.span,
        other => other.span(),
    }
}

/// What both halves of the expansion need.
struct Names<'a> {
    p: TokenStream,
    provider: &'a TokenStream,
    enum_name: Ident,
    unknown: Ident,
}

fn generate(args: &Args, block: &ItemImpl, set: &HandlerSet) -> TokenStream {
    let enum_name =
        args.event_enum.as_ref().map_or_else(|| default_enum_name(&block.self_ty), |(_, name)| name.clone());
    let names = Names {
        p: quote!(::hookroute::__private),
        provider: &args.provider,
        enum_name,
        unknown: Ident::new(UNKNOWN_VARIANT, Span::call_site()),
    };
    let alias = enum_alias(&names, args, block);
    let event_enum = event_enum(&names, block, set);
    let guard = args.known.and_then(|known| known.guard(&names.p));
    let handlers_impl = handlers_impl(&names, block, set, guard);
    quote! {
        #alias
        const _: () = {
            #event_enum
            #handlers_impl
        };
    }
}

/// The name users know the enum by, outside the block that defines it.
///
/// The enum is the impl's associated `Event` type, so rustc wants it as visible as the
/// impl's self type, which the attribute cannot see. It is therefore declared `pub`
/// inside an anonymous const, where no path reaches it, and named here by an alias of
/// the visibility the user picks (`event_enum = pub Name`; private by default).
fn enum_alias(names: &Names<'_>, args: &Args, block: &ItemImpl) -> TokenStream {
    let Names { p, enum_name, .. } = names;
    let vis = args.event_enum.as_ref().map_or(Visibility::Inherited, |(vis, _)| vis.clone());
    let self_ty = &block.self_ty;
    let params = block.generics.params.iter().map(|param| match param {
        GenericParam::Lifetime(lifetime) => lifetime.lifetime.to_token_stream(),
        GenericParam::Type(ty) => ty.ident.to_token_stream(),
        GenericParam::Const(constant) => {
            let (ident, ty) = (&constant.ident, &constant.ty);
            quote!(const #ident: #ty)
        }
    });
    let generics = if block.generics.params.is_empty() { quote!() } else { quote!(<#(#params),*>) };
    let doc = format!("The typed events of `{}`'s handlers.", self_ty.to_token_stream());
    quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis type #enum_name #generics = <#self_ty as #p::WebhookHandlers>::Event;
    }
}

/// The typed event enum and its inherent impl.
fn event_enum(names: &Names<'_>, block: &ItemImpl, set: &HandlerSet) -> TokenStream {
    let Names { p, provider, enum_name, unknown } = names;
    let events: Vec<_> = set.handlers.iter().map(|h| &h.event).collect();
    let variants: Vec<_> = set.handlers.iter().map(|h| &h.variant).collect();
    let data_tys: Vec<_> = set.handlers.iter().map(|h| &h.data_ty).collect();
    let cfgs: Vec<_> = set.handlers.iter().map(|h| &h.cfgs).collect();
    let variant_docs = events.iter().map(|event| format!("The `{}` event.", event.value()));
    let enum_doc = format!(
        "The events `{}` handles: one variant per `#[event]` handler, and `{UNKNOWN_VARIANT}` for every other type.",
        block.self_ty.to_token_stream()
    );
    let parse_arms = set.handlers.iter().map(|h| {
        let (event, variant, ty, cfgs) = (&h.event, &h.variant, &h.data_ty, &h.cfgs);
        // Spanned at the user's type: a type that is not `Deserialize` is reported there.
        let parse = quote_spanned!(ty.span()=> #p::from_raw::<#ty>(data));
        quote!(#(#cfgs)* #event => return #p::Ok(Self::#variant(#parse?)))
    });
    // The exact type first, then the provider's coarser group (GitHub's `issues` for
    // `issues.opened`). With no handlers there is nothing to look up. Each arm returns
    // on its own, so arms configured out by `#[cfg]` leave no unreachable code.
    let lookup = if set.handlers.is_empty() {
        quote!()
    } else {
        quote! {
            for name in meta.route_names() {
                match name {
                    #(#parse_arms,)*
                    _ => {}
                }
            }
        }
    };
    quote! {
        #[doc = #enum_doc]
        #[allow(clippy::large_enum_variant, private_interfaces)]
        pub enum #enum_name {
            #(#(#cfgs)* #[doc = #variant_docs] #variants(#data_tys),)*
            /// An event of a type no handler names, with its data left raw.
            #unknown(#p::UnknownEvent),
        }

        #[automatically_derived]
        #[allow(dead_code)]
        impl #enum_name {
            /// Every event type a handler names.
            pub const EVENT_TYPES: &'static [&'static str] = &[#(#(#cfgs)* #events),*];

            /// The event's type as the provider sends it (`resource.created`).
            pub fn event_type(&self) -> &str {
                match self {
                    #(#(#cfgs)* Self::#variants(_) => #events,)*
                    Self::#unknown(event) => event.event_type(),
                }
            }

            /// Reads an event from a delivery's headers and raw body. The signature
            /// is not checked here: that is the `Receiver`'s job.
            pub fn parse(headers: &#p::HeaderMap, body: &[u8]) -> #p::Result<Self, #p::EnvelopeError> {
                #p::parse_event::<#provider, Self>(headers, body, Self::from_parts)
            }

            /// Reads an event from a raw body alone (for schemes that keep the
            /// event's id and type in the body).
            pub fn from_slice(body: &[u8]) -> #p::Result<Self, #p::EnvelopeError> {
                Self::parse(&#p::HeaderMap::new(), body)
            }

            fn from_parts(meta: &#p::EventMeta, data: &#p::RawValue) -> #p::Result<Self, #p::serde_json::Error> {
                #lookup
                #p::Ok(Self::#unknown(#p::unknown_event(meta, data)))
            }
        }
    }
}

/// The `WebhookHandlers` impl: parsing into the enum and dispatching to the methods.
///
/// `guard`, for a provider whose type header is not signed, is true for the types its
/// catalog lists: the fallback takes only those (a declared handler takes its own).
fn handlers_impl(names: &Names<'_>, block: &ItemImpl, set: &HandlerSet, guard: Option<TokenStream>) -> TokenStream {
    let Names { p, provider, enum_name, unknown, .. } = names;
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let rules = set.handlers.iter().filter(|h| !h.ordering.is_empty()).map(|h| {
        let (cfgs, rule) = (&h.cfgs, h.ordering.rule(p, &h.event));
        quote!(#(#cfgs)* #rule)
    });
    let dispatch_arms = set.handlers.iter().map(|h| {
        let (variant, method, cfgs) = (&h.variant, &h.method, &h.cfgs);
        let call = match &h.meta_ty {
            None => quote!(self.#method(data)),
            Some(meta_ty) => {
                let meta = quote_spanned!(meta_ty.span()=> <#meta_ty as #p::IsEventMeta>::from_meta(meta));
                quote!(self.#method(data, #meta))
            }
        };
        // Spanned at the return type: a handler that returns something else is reported there.
        let result = quote_spanned!(h.output.0=> #p::into_result(output));
        quote!(#(#cfgs)* #enum_name::#variant(data) => #p::boxed(async move { let output = #call.await; #result }))
    });
    // Which types are handled, from the type alone: the receiver claims only those.
    let listed = if set.handlers.is_empty() {
        quote!(false)
    } else {
        let arms = set.handlers.iter().map(|h| {
            let (event, cfgs) = (&h.event, &h.cfgs);
            quote!(#(#cfgs)* #event => true,)
        });
        quote!(meta.route_names().any(|name| match name { #(#arms)* _ => false }))
    };
    let ignore_unknown =
        quote!(match event { #enum_name::#unknown(_) => #p::Parsed::Ignored, event => #p::Parsed::Handled(event) });
    let (handles, fallback_arm, unknown_parsed) = match &set.fallback {
        Some(fallback) => {
            let (method, ty) = (&fallback.method, &fallback.event_ty);
            let event = quote_spanned!(ty.span()=> <#ty as #p::IsUnknownEvent>::from_unknown(event));
            let result = quote_spanned!(fallback.output.0=> #p::into_result(output));
            let arm = quote!(#enum_name::#unknown(event) => #p::boxed(async move { let output = self.#method(#event).await; #result }));
            // Where the type header is unsigned, the fallback takes only the listed
            // types: a captured body resent under invented types runs at most once per
            // real one.
            let takes = guard.unwrap_or_else(|| quote!(true));
            match cfg_predicate(&fallback.cfgs) {
                None => (
                    quote!((#takes) || #listed),
                    arm,
                    quote!(if #takes { #p::Parsed::Handled(event) } else { #ignore_unknown }),
                ),
                // Under a `#[cfg]`, the fallback's part of each is chosen the same way.
                Some(on) => (
                    quote!((::core::cfg!(#on) && (#takes)) || #listed),
                    quote! {
                        #[cfg(#on)] #arm,
                        #[cfg(not(#on))] #enum_name::#unknown(_) => #p::boxed(async { #p::Ok(()) })
                    },
                    quote!(if ::core::cfg!(#on) && (#takes) { #p::Parsed::Handled(event) } else { #ignore_unknown }),
                ),
            }
        }
        None => (listed, quote!(#enum_name::#unknown(_) => #p::boxed(async { #p::Ok(()) })), ignore_unknown),
    };
    quote! {
        #[automatically_derived]
        impl #impl_generics #p::WebhookHandlers for #self_ty #where_clause {
            type Provider = #provider;
            type Event = #enum_name;
            const EVENT_TYPES: &'static [&'static str] = #enum_name::EVENT_TYPES;
            const RULES: &'static [#p::Rule] = &[#(#rules),*];

            fn parse(
                meta: &#p::EventMeta,
                data: &#p::RawValue,
            ) -> #p::Result<#p::Parsed<#enum_name>, #p::serde_json::Error> {
                let event = #enum_name::from_parts(meta, data)?;
                #p::Ok(#unknown_parsed)
            }

            fn handles(meta: &#p::EventMeta) -> bool {
                let _ = meta;
                #handles
            }

            fn dispatch<'a>(
                &'a self,
                event: #enum_name,
                meta: &'a #p::EventMeta,
            ) -> impl #p::Future<Output = #p::Result<(), #p::HandlerError>> + #p::Send + 'a {
                let _ = meta;
                // Each arm boxed: the receiver's futures hold a box, not the handlers'
                // state machines, so editing one handler's body recompiles that handler
                // and its arm, not the others nor the receiver's code for this impl.
                match event {
                    #(#dispatch_arms,)*
                    #fallback_arm,
                }
            }
        }
    }
}

/// The predicate all of a method's `#[cfg(..)]`s make together, if it has any.
fn cfg_predicate(cfgs: &[Attribute]) -> Option<TokenStream> {
    let predicates: Vec<_> = cfgs
        .iter()
        .filter_map(|attr| match &attr.meta {
            Meta::List(list) => Some(&list.tokens),
            _ => None,
        })
        .collect();
    (!predicates.is_empty()).then(|| quote!(all(#(#predicates),*)))
}

/// `App` → `AppEvent`; `Store<T>` → `StoreEvent`.
fn default_enum_name(self_ty: &Type) -> Ident {
    match self_ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(|| format_ident!("WebhookEvent"), |segment| format_ident!("{}Event", segment.ident)),
        _ => format_ident!("WebhookEvent"),
    }
}
