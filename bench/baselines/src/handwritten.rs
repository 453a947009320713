//! The hand-written receiver a careful engineer writes for Groq's scheme with no
//! framework, doing the work `examples/groq_receiver.rs` does through hookroute: hex
//! HMAC-SHA256 of `"<timestamp>.<body>"` compared in constant time (`subtle`), the
//! 300 s window, `serde_json` into borrowed types, a `match` on the type, and a
//! mutex-guarded map of event ids (in progress or done) for idempotency.
//!
//! Answers like hookroute: 200 processed or duplicate, 400 bad JSON or data that does
//! not fit its type (the id is released), 401 bad signature or timestamp, 409 in
//! progress elsewhere.
//! The end-to-end run serves it (`handwritten` binary); `benches/receive.rs` calls
//! [`App::receive`] beside hookroute's `Receiver::receive`.

use std::borrow::Cow;
use std::collections::HashMap;
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

/// The receiver's state: its secret, the ids it has seen, and the resources the events
/// told it about.
pub struct App {
    secret: Vec<u8>,
    /// Event id -> done (`true`) or in progress (`false`).
    events: Mutex<HashMap<String, bool>>,
    resources: Mutex<HashMap<String, Option<String>>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("events", &lock(&self.events).len()).finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl App {
    /// A receiver for deliveries signed with `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self { secret: secret.into(), events: Mutex::default(), resources: Mutex::default() }
    }

    /// Receives one delivery: verify, parse, deduplicate, handle; answers the status.
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> StatusCode {
        if !self.verify(headers, body) {
            return StatusCode::UNAUTHORIZED;
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
            return StatusCode::BAD_REQUEST;
        };
        {
            let mut events = lock(&self.events);
            match events.get(envelope.id.as_ref()) {
                Some(true) => return StatusCode::OK,
                Some(false) => return StatusCode::CONFLICT,
                None => {
                    events.insert(envelope.id.to_string(), false);
                }
            }
        }
        let outcome = self.handle(&envelope.event_type, envelope.data.get());
        let mut events = lock(&self.events);
        if outcome.is_ok() {
            events.insert(envelope.id.into_owned(), true);
            StatusCode::OK
        } else {
            // The data does not fit its type: released, so a corrected retry runs.
            events.remove(envelope.id.as_ref());
            StatusCode::BAD_REQUEST
        }
    }

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

/// The axum handler: the body as bytes, then [`App::receive`].
#[allow(clippy::unused_async)] // axum handlers are async
pub async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    app.receive(&headers, &body)
}

/// [`receive`], answering as hookroute does: a JSON body with its `content-type`.
#[allow(clippy::unused_async)] // axum handlers are async
pub async fn receive_json(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(axum::http::header::HeaderName, &'static str); 1], &'static str) {
    let status = app.receive(&headers, &body);
    let answer = match status {
        StatusCode::OK => r#"{"status":"processed"}"#,
        StatusCode::UNAUTHORIZED => r#"{"error":"invalid signature"}"#,
        StatusCode::CONFLICT => r#"{"error":"in flight"}"#,
        _ => r#"{"error":"bad request"}"#,
    };
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(secret: &[u8], timestamp: u64, body: &str) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(format!("{timestamp}.{body}").as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert("x-groq-timestamp", timestamp.into());
        headers.insert("x-groq-signature", hex::encode(mac.finalize().into_bytes()).parse().expect("hex"));
        headers
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
    }

    /// The baseline must do the work it stands for, or the comparison means nothing.
    #[test]
    fn it_verifies_deduplicates_and_handles_like_hookroute() {
        let app = App::new("s");
        let body = r#"{"id":"evt_1","type":"resource.created","created":1,"data":{"id":"r1","name":"a"}}"#;
        let headers = delivery(b"s", now(), body);
        assert_eq!(app.receive(&headers, body.as_bytes()), StatusCode::OK);
        assert_eq!(lock(&app.resources).get("r1"), Some(&Some("a".to_owned())));
        assert_eq!(app.receive(&headers, body.as_bytes()), StatusCode::OK, "the retry");
        assert_eq!(lock(&app.events).get("evt_1"), Some(&true));

        let tampered = body.replace("\"a\"", "\"b\"");
        assert_eq!(app.receive(&headers, tampered.as_bytes()), StatusCode::UNAUTHORIZED);
        assert_eq!(app.receive(&delivery(b"other", now(), body), body.as_bytes()), StatusCode::UNAUTHORIZED);
        let stale = delivery(b"s", now() - 301, body);
        assert_eq!(app.receive(&stale, body.as_bytes()), StatusCode::UNAUTHORIZED);
        let not_json = "{";
        assert_eq!(app.receive(&delivery(b"s", now(), not_json), not_json.as_bytes()), StatusCode::BAD_REQUEST);

        let bad_data = r#"{"id":"evt_2","type":"resource.deleted","data":{"name":"no id"}}"#;
        assert_eq!(app.receive(&delivery(b"s", now(), bad_data), bad_data.as_bytes()), StatusCode::BAD_REQUEST);
        assert_eq!(lock(&app.events).get("evt_2"), None, "a failed event is released");
    }

    #[test]
    fn the_json_answer_has_the_status_of_the_bare_one() {
        let app = Arc::new(App::new("s"));
        let body = r#"{"id":"evt_1","type":"resource.created","data":{"id":"r1"}}"#;
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let answer = |headers: HeaderMap| {
            runtime.block_on(receive_json(State(Arc::clone(&app)), headers, Bytes::from_static(body.as_bytes())))
        };
        let (status, [(name, value)], text) = answer(delivery(b"s", now(), body));
        assert_eq!((status, name, value), (StatusCode::OK, axum::http::header::CONTENT_TYPE, "application/json"));
        assert_eq!(text, r#"{"status":"processed"}"#);
        let (status, _, text) = answer(delivery(b"other", now(), body));
        assert_eq!((status, text), (StatusCode::UNAUTHORIZED, r#"{"error":"invalid signature"}"#));
    }
}
