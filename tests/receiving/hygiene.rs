//! The generated code is a guest in the user's crate: it compiles under strict lints
//! and with common names shadowed. `cargo clippy --all-targets -- -D warnings` checks
//! this file with clippy's pedantic group too.
#![deny(warnings, unused_qualifications)]
#![warn(clippy::pedantic)]
#![allow(dead_code)]

mod shadowed {
    // Names a careless expansion would pick up from the user's scope.
    mod core {}
    mod std {}
    struct Result;
    struct Ok;
    struct Err;
    struct Option;
    struct Some;
    struct None;
    struct Box;
    struct String;
    struct Vec;
    struct Send;
    struct Future;
    struct HeaderMap;
    struct RawValue;

    #[derive(::serde::Deserialize)]
    pub(super) struct Resource {
        pub(super) id: ::std::string::String,
    }

    pub(super) struct App;

    #[::hookroute::webhook_handlers(provider = "groq")]
    impl App {
        #[event("resource.created")]
        async fn created(&self, data: Resource) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            let _ = data.id;
            ::core::result::Result::Ok(())
        }

        #[event("resource.deleted")]
        async fn deleted(
            &self,
            _data: Resource,
            _meta: &::hookroute::EventMeta,
        ) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            ::core::result::Result::Ok(())
        }

        #[fallback]
        async fn other(
            &self,
            _event: ::hookroute::UnknownEvent,
        ) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            ::core::result::Result::Ok(())
        }
    }

    pub(super) struct Configured;

    // Handlers and a fallback under `#[cfg]`: the generated `cfg!` checks use absolute
    // paths too.
    #[::hookroute::webhook_handlers(provider = "groq")]
    impl Configured {
        #[cfg(test)]
        #[event("resource.created")]
        async fn created(&self, _data: Resource) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            ::core::result::Result::Ok(())
        }

        #[cfg(not(test))]
        #[event("resource.deleted")]
        async fn deleted(&self, _data: Resource) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            ::core::result::Result::Ok(())
        }

        #[cfg(test)]
        #[fallback]
        async fn other(
            &self,
            _event: ::hookroute::UnknownEvent,
        ) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            ::core::result::Result::Ok(())
        }
    }

    pub(super) struct AllConfiguredOut;

    // Every handler configured out: the lookup must leave no unreachable code behind
    // (`deny(warnings)` above).
    #[::hookroute::webhook_handlers(provider = "groq")]
    impl AllConfiguredOut {
        #[cfg(not(test))]
        #[event("resource.created")]
        async fn created(&self, _data: Resource) -> ::core::result::Result<(), ::hookroute::HandlerError> {
            ::core::result::Result::Ok(())
        }
    }
}

#[test]
fn the_expansion_compiles_with_names_shadowed_and_lints_denied() {
    fn assert_handlers<H: hookroute::WebhookHandlers>() {}
    assert_handlers::<shadowed::App>();
    assert_handlers::<shadowed::Configured>();
    assert_handlers::<shadowed::AllConfiguredOut>();
}
