use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "github")]
impl App {
    #[event("pul_request.opened")]
    async fn opened(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("isues")]
    async fn issues(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("quantum_entanglement")]
    async fn unheard_of(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

// What a user writes next: only the attribute's own error may show.
fn main() {
    let receiver = hookroute::Receiver::builder(App).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new().route("/webhooks", hookroute::axum::post(receiver));
}
