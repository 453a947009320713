use hookroute::{webhook_handlers, HandlerError};

struct App;

// Handlers of one type are alternatives only under different `#[cfg]`s; a handler
// without one clashes with every other handler of its type.
#[webhook_handlers(provider = "groq")]
impl App {
    #[cfg(debug_assertions)]
    #[event("resource.created")]
    async fn created_in_debug_builds(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

// What a user writes next: only the attribute's own error may show.
fn main() {
    let receiver = hookroute::Receiver::builder(App).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new().route("/webhooks", hookroute::axum::post(receiver));
}
