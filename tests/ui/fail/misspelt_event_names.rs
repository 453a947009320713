use hookroute::{webhook_handlers, HandlerError};

struct CoreweaveApp;

// A misspelt name would be answered `200 ignored`, and the provider never sends a
// delivery again after a 200: every provider with a catalog checks names.
#[webhook_handlers(provider = "coreweave")]
impl CoreweaveApp {
    #[event("resource.craeted")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct StripeApp;

#[webhook_handlers(provider = "stripe")]
impl StripeApp {
    #[event("payment_intent.succeded")]
    async fn paid(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("invoice.paid")]
    async fn invoice(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct ShopifyApp;

#[webhook_handlers(provider = "shopify")]
impl ShopifyApp {
    #[event("orders/created")]
    async fn order(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

struct SlackApp;

#[webhook_handlers(provider = "slack")]
impl SlackApp {
    #[event("app_mentioned")]
    async fn mention(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

// What a user writes next: only the attribute's own errors may show.
fn main() {
    let coreweave = hookroute::Receiver::builder(CoreweaveApp).secret("s").build().unwrap();
    let stripe = hookroute::Receiver::builder(StripeApp).secret("s").build().unwrap();
    let shopify = hookroute::Receiver::builder(ShopifyApp).secret("s").build().unwrap();
    let slack = hookroute::Receiver::builder(SlackApp).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new()
        .route("/webhooks/coreweave", hookroute::axum::post(coreweave))
        .route("/webhooks/stripe", hookroute::axum::post(stripe))
        .route("/webhooks/shopify", hookroute::axum::post(shopify))
        .route("/webhooks/slack", hookroute::axum::post(slack));
}
