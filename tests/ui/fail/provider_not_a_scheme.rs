use hookroute::{webhook_handlers, HandlerError};

struct NotAScheme;

struct App;

#[webhook_handlers(provider = NotAScheme)]
impl App {
    #[event("order.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
