//! Sends one signed event to a receiver, the way the provider would.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example send_event -- [TYPE] [EVENT_ID]
//! GITHUB_WEBHOOK_SECRET=dev PROVIDER=github cargo run --example send_event -- issues.opened
//! ```
//!
//! `PROVIDER` is a built-in scheme (`groq` by default; `coreweave`, `standard`,
//! `stripe`, `github`, `slack`, `shopify`), signing with the secret in its variable
//! (`GROQ_WEBHOOK_SECRET`, `GITHUB_WEBHOOK_SECRET`, ...). `TYPE` defaults to the
//! scheme's sample type; `EVENT_ID` to a fresh one (send the same id twice to see the
//! duplicate). The data is a sample of the scheme's, or `$DATA` (JSON). The target is
//! `$WEBHOOK_URL`, or `http://127.0.0.1:$PORT/webhooks/<provider>` (port 3000 by
//! default). Prints the status and the receiver's answer; exits 1 unless it was 2xx.

use std::process::ExitCode;

use hookroute::provider::Sign;
use hookroute::testing::{SignedDelivery, TestEvent};
use hookroute::{Coreweave, GitHub, Groq, Secret, Shopify, Slack, StandardWebhooks, Stripe};
use serde_json::{json, Value};

/// A delivery of `P`, signed with the secret in `P`'s variable.
fn sign<P: Sign>(event_type: &str, id: Option<String>, data: Value) -> Result<SignedDelivery, String> {
    let secret = Secret::from_env(P::SECRET_ENV).map_err(|error| error.to_string())?;
    let mut event = TestEvent::<P>::new(event_type, data);
    if let Some(id) = id {
        event = event.id(id);
    }
    Ok(event.sign(secret))
}

/// Each scheme's sample type and data, matching what the example receivers expect.
fn sample(provider: &str) -> Option<(&'static str, Value)> {
    let n = std::process::id();
    Some(match provider {
        "groq" | "coreweave" => ("resource.created", json!({"id": format!("res_{n}"), "name": "demo"})),
        "standard" => ("invoice.paid", json!({"id": format!("in_{n}")})),
        "stripe" => (
            "payment_intent.succeeded",
            json!({"object": {"id": format!("pi_{n}"), "amount": 2000, "currency": "usd", "customer": "cus_1"}}),
        ),
        "github" => {
            ("issues.opened", json!({"issue": {"number": n, "title": "It does not work"}, "ref": "refs/heads/main"}))
        }
        "slack" => ("app_mention", json!({"text": "<@U1> hello", "user": "U2"})),
        "shopify" => ("orders/create", json!({"id": n, "email": "jon@example.com"})),
        _ => return None,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let provider = std::env::var("PROVIDER").unwrap_or_else(|_| "groq".to_owned());
    let Some((sample_type, sample_data)) = sample(&provider) else {
        let known = hookroute::provider::BUILT_IN.join(", ");
        eprintln!("error: PROVIDER `{provider}` is not a built-in scheme: {known}");
        return ExitCode::FAILURE;
    };
    let mut args = std::env::args().skip(1);
    let event_type = args.next().unwrap_or_else(|| sample_type.to_owned());
    let id = args.next();
    let data = match std::env::var("DATA") {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(data) => data,
            Err(error) => {
                eprintln!("error: DATA is not JSON: {error}");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => sample_data,
    };
    let signed = match provider.as_str() {
        "groq" => sign::<Groq>(&event_type, id, data),
        "coreweave" => sign::<Coreweave>(&event_type, id, data),
        "standard" => sign::<StandardWebhooks>(&event_type, id, data),
        "stripe" => sign::<Stripe>(&event_type, id, data),
        "github" => sign::<GitHub>(&event_type, id, data),
        "slack" => sign::<Slack>(&event_type, id, data),
        "shopify" => sign::<Shopify>(&event_type, id, data),
        other => Err(format!("no signer for `{other}` in this example")),
    };
    let delivery = match signed {
        Ok(delivery) => delivery,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let url = std::env::var("WEBHOOK_URL").unwrap_or_else(|_| {
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
        format!("http://127.0.0.1:{port}/webhooks/{provider}")
    });

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
