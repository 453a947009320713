use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
