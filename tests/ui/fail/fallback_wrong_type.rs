use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[fallback]
    async fn other(&self, _event: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
