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

fn main() {}
