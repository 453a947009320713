//! `hookroute providers`: the schemes, their headers and their replay protection, as
//! each provider describes itself (`hookroute_runtime::provider::PROVIDERS`).

use hookroute_runtime::provider::PROVIDERS;

pub(crate) fn run(json: bool) {
    if json {
        let rows: Vec<_> = PROVIDERS
            .iter()
            .map(|provider| {
                let about = provider.description();
                serde_json::json!({
                    "name": provider.name(),
                    "signature": about.signature,
                    "timestamp": about.timestamp,
                    "id_and_type": about.id_and_type,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!("{:<10} {:<48} {:<26} id / type", "provider", "signature", "timestamp (±300 s)");
    for provider in PROVIDERS {
        let about = provider.description();
        println!("{:<10} {:<48} {:<26} {}", provider.name(), about.signature, about.timestamp, about.id_and_type);
    }
}
