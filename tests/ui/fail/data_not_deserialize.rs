use hookroute::{webhook_handlers, HandlerError};

struct Resource {
    id: String,
}

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource) -> Result<(), HandlerError> {
        let _ = data.id;
        Ok(())
    }
}

// What a user writes next: only the attribute's own error may show.
fn main() {
    let receiver = hookroute::Receiver::builder(App).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new().route("/webhooks", hookroute::axum::post(receiver));
}
