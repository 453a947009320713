use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "stripe")]
impl App {
    #[event("customer.subscription.updated", key = "data.object.customer", rate = "ten a second")]
    async fn updated(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

// What a user writes next: only the attribute's own error may show.
fn main() {
    let receiver = hookroute::Receiver::builder(App).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new().route("/webhooks", hookroute::axum::post(receiver));
}
