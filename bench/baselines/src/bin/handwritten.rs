//! The end-to-end benchmark's baseline: the receiver a careful engineer writes by hand
//! for Groq's scheme with no framework, doing the work `examples/groq_receiver.rs` does
//! through hookroute: hex HMAC-SHA256 of `"<timestamp>.<body>"` compared in constant
//! time (`subtle`), the 300 s window, `serde_json` into borrowed types, a `match` on the
//! type, and a mutex-guarded map of event ids (in progress or done) for idempotency.
//!
//! Answers like hookroute: 200 processed or duplicate, 400 bad JSON, 401 bad signature
//! or timestamp, 409 in progress elsewhere, 500 handler failed (the id is released).
//!
//! `GROQ_WEBHOOK_SECRET=… PORT=3000 cargo run --release -p hookroute-bench-baselines --bin handwritten`

use std::borrow::Cow;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const TOLERANCE_SECS: u64 = 300;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

struct App {
    secret: Vec<u8>,
    /// Event id -> done (`true`) or in progress (`false`).
    events: Mutex<HashMap<String, bool>>,
    resources: Mutex<HashMap<String, Option<String>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> bool {
        let Some(timestamp) = headers.get("x-groq-timestamp").and_then(|value| value.to_str().ok()) else {
            return false;
        };
        let Ok(sent) = timestamp.parse::<u64>() else { return false };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        if now.abs_diff(sent) > TOLERANCE_SECS {
            return false;
        }
        let Some(signature) = headers.get("x-groq-signature") else { return false };
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(signature.as_bytes(), &mut expected).is_err() {
            return false;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().as_slice().ct_eq(&expected).into()
    }

    fn handle(&self, event_type: &str, data: &str) -> Result<(), serde_json::Error> {
        match event_type {
            "resource.created" | "resource.updated" => {
                let resource: Resource = serde_json::from_str(data)?;
                lock(&self.resources).insert(resource.id, resource.name);
            }
            "resource.deleted" => {
                let resource: Resource = serde_json::from_str(data)?;
                lock(&self.resources).remove(&resource.id);
            }
            _ => {}
        }
        Ok(())
    }
}

async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !app.verify(&headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    {
        let mut events = lock(&app.events);
        match events.get(envelope.id.as_ref()) {
            Some(true) => return StatusCode::OK,
            Some(false) => return StatusCode::CONFLICT,
            None => {
                events.insert(envelope.id.to_string(), false);
            }
        }
    }
    let outcome = app.handle(&envelope.event_type, envelope.data.get());
    let mut events = lock(&app.events);
    if outcome.is_ok() {
        events.insert(envelope.id.into_owned(), true);
        StatusCode::OK
    } else {
        events.remove(envelope.id.as_ref());
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(secret) = std::env::var("GROQ_WEBHOOK_SECRET") else {
        eprintln!("error: set GROQ_WEBHOOK_SECRET");
        return ExitCode::FAILURE;
    };
    let app = Arc::new(App { secret: secret.into_bytes(), events: Mutex::default(), resources: Mutex::default() });
    let router = axum::Router::new().route("/webhooks/groq", axum::routing::post(receive)).with_state(app);
    hookroute_bench_baselines::serve(router).await
}
