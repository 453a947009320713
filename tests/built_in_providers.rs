//! Adding a built-in provider touches the runtime's list (`__with_built_in_providers!`),
//! which the command and the fuzz target derive theirs from; the attribute keeps a
//! list of its own (a proc-macro crate cannot read the runtime's). This holds them
//! together, and every provider with published event types to a catalog.

#[test]
fn the_attribute_knows_every_built_in_provider_and_no_other() {
    let mut attribute: Vec<&str> = hookroute::__built_in_providers!().iter().map(|(name, _)| *name).collect();
    let mut runtime = hookroute::provider::BUILT_IN.to_vec();
    attribute.sort_unstable();
    runtime.sort_unstable();
    assert_eq!(attribute, runtime);
}

#[test]
fn every_provider_with_published_event_types_has_a_catalog() {
    for (name, catalog) in hookroute::__built_in_providers!() {
        // Standard Webhooks' types are the sender's own.
        assert_eq!(*catalog, *name != "standard", "{name}: catalog in macros/catalogs/");
    }
}
