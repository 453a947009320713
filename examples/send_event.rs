//! Sends one signed Groq event to a receiver, the way Groq would.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example send_event -- [TYPE] [EVENT_ID]
//! ```
//!
//! `TYPE` defaults to `resource.created`; `EVENT_ID` to a fresh one (send the same id
//! twice to see the duplicate). The target is `$WEBHOOK_URL`, or
//! `http://127.0.0.1:$PORT/webhooks/groq` (port 3000 by default). Prints the status
//! and the receiver's answer; exits 1 unless the answer was 2xx.

use std::process::ExitCode;

use hookroute::testing::TestEvent;
use hookroute::{Groq, Provider, Secret};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let event_type = args.next().unwrap_or_else(|| "resource.created".to_owned());
    let id = args.next();
    let secret = match Secret::from_env(<Groq as Provider>::SECRET_ENV) {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let url = std::env::var("WEBHOOK_URL").unwrap_or_else(|_| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
        format!("http://127.0.0.1:{port}/webhooks/groq")
    });

    let resource_id = format!("res_{}", std::process::id());
    let mut event = TestEvent::<Groq>::new(&event_type, serde_json::json!({ "id": resource_id, "name": "demo" }));
    if let Some(id) = id {
        event = event.id(id);
    }
    let delivery = event.sign(secret);

    let response = reqwest::Client::new().post(&url).headers(delivery.headers).body(delivery.body).send().await;
    match response {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            println!("{} {body}", status.as_u16());
            if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: could not reach {url}: {error}");
            ExitCode::FAILURE
        }
    }
}
