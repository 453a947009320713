use hookroute::webhook_handlers;

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    fn helper(&self) {}
}

// What a user writes next: only the attribute's own error may show.
fn main() {
    let receiver = hookroute::Receiver::builder(App).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new().route("/webhooks", hookroute::axum::post(receiver));
}
