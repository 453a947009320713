//! A built-in provider joins the runtime's list (`__with_built_in_providers!`), which the
//! re-exports, the command, `examples/send_event` and the fuzz target derive theirs
//! from, and describes itself (`provider::Describe`); the attribute keeps a table of
//! its own (a proc-macro crate cannot read the runtime's). This holds them together,
//! and every provider with published event types to a catalog.

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

/// Runs `examples/send_event` for `provider` against a listener that records the
/// request head, and checks it is a signed POST to the provider's route.
fn send_event_signs_for(provider: &hookroute::provider::BuiltIn) {
    use std::io::{BufRead as _, Write as _};

    let (name, secret_env) = (provider.name(), provider.secret_env());
    let examples = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples");
    let send_event = examples.join("send_event");
    assert!(send_event.exists(), "{} is built by `cargo test`", send_event.display());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhooks/{name}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim_end().is_empty() {
                break;
            }
            head.push(line.trim_end().to_ascii_lowercase());
        }
        let mut stream = stream;
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").unwrap();
        head
    });
    let output = std::process::Command::new(&send_event)
        .env("PROVIDER", name)
        .env(secret_env, "whsec_providers_test")
        .env("WEBHOOK_URL", &url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    let head = server.join().unwrap();
    assert!(head[0].starts_with(&format!("post /webhooks/{name} ")), "{name}: {head:?}");
    // The scheme's signature header, as it describes itself.
    let signature = provider.description().signature_header;
    assert!(head.iter().any(|line| line.starts_with(&format!("{signature}:"))), "{name}: {head:?}");
}

/// `examples/send_event` signs with each provider's own description: each built-in one
/// must produce a signed request (a provider it lacks is an error, not another
/// provider's signature).
#[test]
fn the_send_event_example_signs_for_every_built_in_provider() {
    assert_eq!(hookroute::provider::PROVIDERS.len(), hookroute::provider::BUILT_IN.len());
    for provider in hookroute::provider::PROVIDERS {
        send_event_signs_for(provider);
    }
}
