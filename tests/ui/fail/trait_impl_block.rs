use hookroute::{webhook_handlers, HandlerError};

trait Handlers {
    async fn created(&self, data: serde_json::Value) -> Result<(), HandlerError>;
}

struct App;

#[webhook_handlers(provider = "groq")]
impl Handlers for App {
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
