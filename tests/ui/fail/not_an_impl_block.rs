use hookroute::webhook_handlers;

#[webhook_handlers(provider = "groq")]
struct App;

// What a user writes next: only the attribute's own error may show.
fn main() {
    let receiver = hookroute::Receiver::builder(App).secret("s").build().unwrap();
    let _app: axum::Router = axum::Router::new().route("/webhooks", hookroute::axum::post(receiver));
}
