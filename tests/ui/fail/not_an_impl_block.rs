use hookroute::webhook_handlers;

#[webhook_handlers(provider = "groq")]
struct App;

fn main() {}
