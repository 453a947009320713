//! `hookroute providers`: the schemes, their headers and their replay protection.

use crate::scheme as schemes;

pub(crate) fn run(json: bool) {
    if json {
        let rows: Vec<_> = schemes::PROVIDERS
            .iter()
            .map(|info| {
                serde_json::json!({
                    "name": info.name,
                    "signature": info.signature,
                    "timestamp": info.timestamp,
                    "id_and_type": info.id_and_type,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!("{:<10} {:<48} {:<26} id / type", "provider", "signature", "timestamp (±300 s)");
    for info in schemes::PROVIDERS {
        println!("{:<10} {:<48} {:<26} {}", info.name, info.signature, info.timestamp, info.id_and_type);
    }
}
