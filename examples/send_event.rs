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
//! duplicate). The data is a fresh copy of the scheme's sample (new ids), or `$DATA` (JSON). The target is
//! `$WEBHOOK_URL`, or `http://127.0.0.1:$PORT/webhooks/<provider>` (port 3000 by
//! default). Prints the status and the receiver's answer; exits 1 unless it was 2xx.

use std::process::ExitCode;

use hookroute::provider::built_in;
use hookroute::testing::sign_as;
use hookroute::Secret;
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let provider = std::env::var("PROVIDER").unwrap_or_else(|_| "groq".to_owned());
    // Each built-in provider describes itself: its secret's variable and its samples.
    let Some(scheme) = built_in(&provider) else {
        let known = hookroute::provider::BUILT_IN.join(", ");
        eprintln!("error: PROVIDER `{provider}` is not a built-in scheme: {known}");
        return ExitCode::FAILURE;
    };
    let mut args = std::env::args().skip(1);
    let samples = scheme.description().samples;
    let event_type = args.next().unwrap_or_else(|| samples[0].event_type.to_owned());
    let id = args.next();
    // `$DATA`, else a fresh copy of the sample of the type (else of the default type's):
    // new ids, so that a provider deduplicated on its body (GitHub) sees a new event.
    let data =
        std::env::var("DATA").unwrap_or_else(|_| scheme.sample(&event_type).unwrap_or(&samples[0]).fresh().to_string());
    let data = match RawValue::from_string(data) {
        Ok(data) => data,
        Err(error) => {
            eprintln!("error: DATA is not JSON: {error}");
            return ExitCode::FAILURE;
        }
    };
    let secret = match Secret::from_env(scheme.secret_env()) {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let delivery = sign_as(scheme, secret, &event_type, id.as_deref(), &data);
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
