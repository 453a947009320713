//! A Stripe webhook receiver: `Stripe-Signature` verified (every `v1`, 300 s window),
//! each event processed once (by its `evt_` id), routed by type.
//!
//! ```sh
//! STRIPE_WEBHOOK_SECRET=whsec_dev cargo run --example stripe_receiver
//! # in a second terminal:
//! STRIPE_WEBHOOK_SECRET=whsec_dev PROVIDER=stripe cargo run --example send_event -- payment_intent.succeeded
//! ```
//!
//! Listens on 127.0.0.1:$PORT (default 3000) at `/webhooks/stripe`. With the Stripe
//! CLI: `stripe listen --forward-to localhost:3000/webhooks/stripe` prints the secret.

use std::process::ExitCode;

use hookroute::{webhook_handlers, EventMeta, HandlerError};
use serde::Deserialize;

mod support;

/// A Stripe event's `data`: the object the event is about.
#[derive(Debug, Deserialize)]
struct Data<T> {
    object: T,
}

#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    amount: i64,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct Subscription {
    id: String,
    customer: String,
}

struct App;

#[webhook_handlers(provider = "stripe")]
impl App {
    #[event("payment_intent.succeeded")]
    async fn paid(&self, data: Data<PaymentIntent>, meta: &EventMeta) -> Result<(), HandlerError> {
        let intent = data.object;
        tracing::info!(event = meta.id(), intent = %intent.id, amount = intent.amount, currency = %intent.currency, "payment succeeded");
        Ok(())
    }

    #[event("payment_intent.payment_failed")]
    async fn failed(&self, data: Data<PaymentIntent>, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::warn!(event = meta.id(), intent = %data.object.id, "payment failed");
        Ok(())
    }

    #[event("customer.subscription.deleted")]
    async fn cancelled(&self, data: Data<Subscription>, meta: &EventMeta) -> Result<(), HandlerError> {
        let subscription = data.object;
        tracing::info!(event = meta.id(), subscription = %subscription.id, customer = %subscription.customer, "subscription cancelled");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    support::serve(App).await
}
