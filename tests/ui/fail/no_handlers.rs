use hookroute::webhook_handlers;

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    fn helper(&self) {}
}

fn main() {}
