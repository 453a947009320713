use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[fallback]
    async fn one(&self, _event: hookroute::UnknownEvent) -> Result<(), HandlerError> {
        Ok(())
    }

    #[fallback]
    async fn two(&self, _event: hookroute::UnknownEvent) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
